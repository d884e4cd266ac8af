// Where the agent is and how to start it, decided from settings, the environment and the extension's
// own files. Pure except for existence checks of files: unit-tested without VS Code.
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Settings {
  /** forkspace.agent.socket */
  socket?: string;
  /** forkspace.agent.nodePath */
  nodePath?: string;
}

export function agentSocketPath(settings: Settings, env: NodeJS.ProcessEnv): string {
  if (settings.socket) return settings.socket;
  if (env.FORKSPACE_AGENT_SOCKET) return env.FORKSPACE_AGENT_SOCKET;
  return path.join(env.FORKSPACE_RUN_DIR ?? '/run/forkspace', 'agent.sock');
}

export function agentLogDir(env: NodeJS.ProcessEnv): string {
  return env.FORKSPACE_LOG_DIR ?? path.join(env.FORKSPACE_DATA_DIR ?? '/var/lib/forkspace', 'logs');
}

/** Node 24 that the project's setup installs when the system Node is too old. */
export const CACHED_NODE = '/var/cache/forkspace/node24/node_modules/node/bin/node';

/**
 * A Node.js >= 22 to run the agent with: the setting, $FORKSPACE_NODE, the extension host's own Node when
 * it is a plain Node that new (code-server 4.1xx), the project's cached Node 24, else undefined. An
 * Electron extension host (desktop VS Code) is never used: it would need ELECTRON_RUN_AS_NODE and its
 * own quirks.
 */
export function nodeForAgent(
  settings: Settings,
  env: NodeJS.ProcessEnv,
  host: { execPath: string; version: string; electron: boolean },
  exists: (p: string) => boolean = fs.existsSync,
): string | undefined {
  if (settings.nodePath) return settings.nodePath;
  if (env.FORKSPACE_NODE) return env.FORKSPACE_NODE;
  const major = Number(host.version.replace(/^v/, '').split('.')[0]);
  if (!host.electron && major >= 22) return host.execPath;
  if (exists(CACHED_NODE)) return CACHED_NODE;
  return undefined;
}

export interface Diagnosis {
  message: string;
  /** A command line that fixes it, to copy. */
  fix?: string;
}

/** Turns the agent's report of why the runtime is unavailable into something a user can act on. */
export function diagnose(runtimeError: string): Diagnosis {
  const e = runtimeError.toLowerCase();
  if (e.includes('needs root') || e.includes('permission denied') || e.includes('eacces')) {
    return {
      message: 'The Forkspace runtime needs root (namespaces, mounts, cgroups). Start the agent as root.',
      fix: 'sudo forkspace agent start',
    };
  }
  if (e.includes('criu')) {
    return { message: 'CRIU (4.1 or newer, with the kernel-6.16 fix) is missing or broken on this host.', fix: 'sudo scripts/setup.sh' };
  }
  if (e.includes('not built') || e.includes('does not exist')) {
    return { message: `The Forkspace runtime is not built: ${runtimeError}`, fix: 'sudo scripts/setup.sh' };
  }
  if (e.includes('kernel') || e.includes('cgroup') || e.includes('overlay')) {
    return { message: `This kernel lacks what the runtime needs: ${runtimeError}`, fix: 'sudo forkspace-rt check' };
  }
  return { message: `The Forkspace runtime is not available: ${runtimeError}` };
}
