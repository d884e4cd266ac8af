// Where the agent and the runtime keep their sockets, state and logs. Every path can be overridden by a
// FORKSPACE_* environment variable (tests run a private agent + runtime pair side by side with a
// user's), and the defaults are the system locations a root daemon uses.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface AgentConfig {
  /** Runtime state: sandboxes, snapshots, catalog, logs. */
  dataDir: string;
  /** Built environments (a cache shared by runtimes). */
  envDir: string;
  /** Sockets, pid files and the WebSocket token. */
  runDir: string;
  agentSocket: string;
  runtimeSocket: string;
  /** forkspace-rt binary. */
  runtimeBin: string;
  criu: string;
  cgroupParent: string;
  /** WebSocket JSON-RPC listener; port 0 disables it. */
  wsHost: string;
  wsPort: number;
  tokenFile: string;
  logDir: string;
  /** HTTP listener (the Direct HTTP API and exposed sandbox services); port 0 picks a free one. */
  httpHost: string;
  httpPort: number;
  /** Largest Direct HTTP API request body; bigger ones get 413. */
  httpMaxBodyBytes: number;
  /** API keys of the Direct HTTP API (hashed; mode 0600). */
  apiKeysFile: string;
  /** How long what a gone client owned lives on (the runtime's orphan grace; HTTP terminals use it too). */
  orphanGraceMs: number;
  /** The static dropbear that `forkspace ssh` starts inside sandboxes (scripts/install-dropbear.sh). */
  dropbear: string;
  /** Warm pools the runtime starts with: ENV=MIN-MAX,... ('' for none). */
  pools: string;
}

const DEFAULT_WS_PORT = 7811;
const DEFAULT_HTTP_PORT = 7812;
/** One ready sandbox per built default environment, up to four when runs come faster than that. */
const DEFAULT_POOLS = 'python=1-4,busybox=1-4';

export function resolveConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const dataDir = env.FORKSPACE_DATA_DIR ?? '/var/lib/forkspace';
  const runDir = env.FORKSPACE_RUN_DIR ?? '/run/forkspace';
  return {
    dataDir,
    envDir: env.FORKSPACE_ENV_DIR ?? path.join(dataDir, 'envs'),
    runDir,
    agentSocket: env.FORKSPACE_AGENT_SOCKET ?? path.join(runDir, 'agent.sock'),
    runtimeSocket: env.FORKSPACE_RT_SOCKET ?? path.join(runDir, 'rt.sock'),
    runtimeBin: env.FORKSPACE_RT_BIN ?? findRuntimeBinary(),
    criu: env.FORKSPACE_CRIU ?? '/var/cache/forkspace/criu/bin/criu',
    cgroupParent: env.FORKSPACE_CGROUP_PARENT ?? 'forkspace',
    wsHost: env.FORKSPACE_WS_HOST ?? '127.0.0.1',
    wsPort: env.FORKSPACE_WS_PORT !== undefined ? Number(env.FORKSPACE_WS_PORT) : DEFAULT_WS_PORT,
    tokenFile: env.FORKSPACE_TOKEN_FILE ?? path.join(runDir, 'agent.token'),
    logDir: env.FORKSPACE_LOG_DIR ?? path.join(dataDir, 'logs'),
    httpHost: env.FORKSPACE_HTTP_HOST ?? '127.0.0.1',
    httpPort: env.FORKSPACE_HTTP_PORT !== undefined ? Number(env.FORKSPACE_HTTP_PORT) : DEFAULT_HTTP_PORT,
    httpMaxBodyBytes: env.FORKSPACE_HTTP_MAX_BODY_BYTES !== undefined ? Number(env.FORKSPACE_HTTP_MAX_BODY_BYTES) : 16 * 1024 * 1024,
    apiKeysFile: env.FORKSPACE_API_KEYS_FILE ?? path.join(dataDir, 'api-keys.json'),
    orphanGraceMs: env.FORKSPACE_ORPHAN_GRACE_MS !== undefined ? Number(env.FORKSPACE_ORPHAN_GRACE_MS) : 60_000,
    dropbear: env.FORKSPACE_DROPBEAR ?? '/var/cache/forkspace/dropbear/bin/dropbear',
    pools: env.FORKSPACE_POOLS ?? DEFAULT_POOLS,
  };
}

/** The runtime binary shipped next to the bundle (dist/forkspace-rt), else the repository's build. */
export function findRuntimeBinary(): string {
  const candidates = [
    path.join(__dirname, 'forkspace-rt'),
    path.resolve(__dirname, '..', 'dist', 'forkspace-rt'),
    path.resolve(__dirname, '..', '..', '..', 'dist', 'forkspace-rt'),
    path.resolve(__dirname, '..', 'agent-native', 'target', 'release', 'forkspace-rt'),
  ];
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0];
}

/** The bundled agent entry point, next to the running bundle (dist/agent.js). */
export function findAgentEntry(): string {
  const candidates = [path.join(__dirname, 'agent.js'), path.resolve(__dirname, '..', '..', '..', 'dist', 'agent.js')];
  return candidates.find((c) => fs.existsSync(c)) ?? candidates[0];
}
