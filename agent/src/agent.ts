// forkspace-agent: composes the runtime connection, the services and the listeners.
import * as fs from 'node:fs';
import type * as net from 'node:net';
import type { WebSocketServer } from 'ws';
import { RtInfo, RtSandboxChanged, RtShutdown } from './protocol/runtime';
import type { AgentConfig } from './config';
import type { Logger } from './log';
import { EnvironmentService } from './core/environments';
import { ExecService } from './core/exec';
import { CacheService } from './core/cache';
import { FileService } from './core/files';
import { ModeService } from './core/modes';
import { TerminalService } from './core/terminals';
import { PortService } from './core/ports';
import { HttpServer } from './api/httpServer';
import { Authenticator } from './api/auth';
import { RestApi } from './api/restApi';
import { RestStreams } from './api/restStreams';
import { ApiKeyStore } from './core/apiKeys';
import { ExecutionService } from './core/executions';
import type { ExecObserver, ParsedExecRun } from './core/exec';
import { IdempotencyStore } from './core/idempotency';
import { DEFAULT_MAX_MESSAGE_BYTES, type ExecResult } from './protocol';
import { SandboxService } from './core/sandboxes';
import { InstanceService } from './core/instances';
import { Ownership } from './core/ownership';
import type { Access } from './core/access';
import { KeySessions } from './api/keySessions';
import { SshService } from './core/ssh';
import * as path from 'node:path';
import { forwardRuntimeEvents } from './api/events';
import { RuntimeClient } from './runtime/runtimeClient';
import { AGENT_VERSION, registerHandlers } from './api/handlers';
import { listenUnix, listenWebSocket, loadToken } from './api/listeners';
import { RpcServer } from './api/rpcServer';

export class Agent {
  readonly runtime: RuntimeClient;
  readonly environments: EnvironmentService;
  readonly exec: ExecService;
  readonly sandboxes: SandboxService;
  readonly modes: ModeService;
  readonly files: FileService;
  readonly cache: CacheService;
  readonly terminals: TerminalService;
  readonly ports: PortService;
  readonly ownership: Ownership;
  readonly instances: InstanceService;
  readonly ssh: SshService;
  readonly executions: ExecutionService;
  readonly apiKeys: ApiKeyStore;
  /** Open connections per API key, ended when the key is revoked. */
  readonly keySessions = new KeySessions();
  private httpServer: HttpServer | undefined;
  readonly rpc: RpcServer;
  private unixServer: net.Server | undefined;
  private wsServer: WebSocketServer | undefined;
  private readonly startedAt = Date.now();
  private stopping: Promise<void> | undefined;
  private readonly stoppedCallbacks: (() => void)[] = [];

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
  ) {
    this.runtime = new RuntimeClient(config, log);
    this.environments = new EnvironmentService(this.runtime);
    this.exec = new ExecService(this.runtime, this.environments);
    this.sandboxes = new SandboxService(this.runtime);
    this.ownership = new Ownership(this.runtime);
    this.instances = new InstanceService(this.sandboxes);
    this.ssh = new SshService(this.runtime, this.sandboxes, this.exec, path.join(config.dataDir, 'ssh', 'keys'), config.dropbear);
    this.modes = new ModeService(this.sandboxes, this.exec, this.ownership.agentOwner, this.environments);
    this.files = new FileService(this.runtime, this.sandboxes);
    this.cache = new CacheService(this.runtime, this.environments, this.exec);
    this.executions = new ExecutionService((p, observer, signal, access) => this.runExecution(p, observer, signal, access));
    this.apiKeys = new ApiKeyStore(config.apiKeysFile);
    this.apiKeys.onRevoked((keyId) => {
      const n = this.keySessions.revoke(keyId);
      if (n) log(`API key ${keyId} revoked: closed its ${n} open connection(s)`);
    });
    this.terminals = new TerminalService(this.runtime, config.orphanGraceMs);
    this.ports = new PortService(this.runtime, this.sandboxes, (name) => `http://${config.httpHost}:${this.httpServer?.port ?? config.httpPort}/v1/expose/${name}/`);
    this.rpc = new RpcServer(log, (peer) => {
      this.terminals.closeOwnedBy(peer);
      void this.ownership.peerClosed(peer);
    });
    registerHandlers(this.rpc, this);
    forwardRuntimeEvents(this.runtime, this.rpc, this.sandboxes);
    // An exposure ends with its sandbox (the runtime closed its socket already).
    this.runtime.onRuntimeNotification(RtSandboxChanged, (p) => {
      if (p.state !== 'running' && p.state !== 'paused') this.ports.sandboxGone(p.sandboxId);
    });
  }

  async start(): Promise<void> {
    // The unix socket last: once it accepts, every listener is up (clients and tests wait for it alone).
    const token = loadToken(this.config.tokenFile);
    const auth = new Authenticator(token, this.apiKeys);
    if (this.config.wsPort > 0) {
      this.wsServer = await listenWebSocket(this.config.wsHost, this.config.wsPort, auth, this.rpc, this.keySessions, this.log);
    }
    const rest = new RestApi(this.rpc, new IdempotencyStore(), this.config.httpMaxBodyBytes || DEFAULT_MAX_MESSAGE_BYTES, AGENT_VERSION, this.log);
    const streams = new RestStreams(this.executions, this.terminals, this.keySessions);
    this.httpServer = new HttpServer(auth, this.ports, rest, streams, this.keySessions, this.log);
    await this.httpServer.listen(this.config.httpHost, this.config.httpPort);
    this.unixServer = await listenUnix(this.config.agentSocket, this.rpc, this.log);
    // Don't wait: bringing the runtime up (or learning why it cannot come up) must not delay the socket.
    void this.runtime.connection().catch((e: Error) => this.log(`runtime not available yet: ${e.message}`));
  }

  /** The execution modes: what exec/run, exec/start and sandbox/exec run, once registered as executions. */
  private async runExecution(p: ParsedExecRun & { execId: string }, observer: ExecObserver, signal: AbortSignal, access: Access): Promise<ExecResult> {
    if (p.mode === 'checkpointed') return this.modes.checkpointed(p, observer, signal, access);
    if (p.mode === 'cached') return this.cache.run(p, observer, signal, access);
    if (p.mode === 'persistent') {
      const sandboxId = p.sandboxId as string;
      const { sandbox } = await this.sandboxes.get(sandboxId, access);
      return this.exec.runIn({ ...p, sandboxId }, sandbox.environment, observer, signal);
    }
    return this.exec.run(p, observer, signal);
  }

  /** The HTTP listener's port (the Direct HTTP API; chosen by the system when configured as 0). */
  get httpPort(): number | undefined {
    return this.httpServer?.port;
  }

  /** The WebSocket listener's port (useful when configured as 0-chosen in tests). */
  get webSocketPort(): number | undefined {
    const a = this.wsServer?.address();
    return a && typeof a !== 'string' ? a.port : undefined;
  }

  async status() {
    let info: Record<string, unknown> | undefined;
    let error = this.runtime.error;
    try {
      info = await this.runtime.request(RtInfo, {});
    } catch (e) {
      error = (e as Error).message;
    }
    return {
      pid: process.pid,
      version: AGENT_VERSION,
      node: process.version,
      uptimeMs: Date.now() - this.startedAt,
      connections: this.rpc.connectionCount,
      runningExecutions: typeof info?.running === 'number' ? info.running : 0,
      runtime: { connected: info !== undefined, ...(error && !info ? { error } : {}), ...(info ? { info } : {}) },
    };
  }

  onStopped(callback: () => void): void {
    this.stoppedCallbacks.push(callback);
  }

  stop(options: { stopRuntime: boolean } = { stopRuntime: false }): Promise<void> {
    this.stopping ??= this.doStop(options);
    return this.stopping;
  }

  private async doStop({ stopRuntime }: { stopRuntime: boolean }): Promise<void> {
    this.log(`stopping${stopRuntime ? ' (and forkspace-rt)' : ''}`);
    this.rpc.closeAll();
    await new Promise<void>((r) => (this.unixServer ? this.unixServer.close(() => r()) : r()));
    await new Promise<void>((r) => (this.wsServer ? this.wsServer.close(() => r()) : r()));
    await this.httpServer?.close();
    this.executions.close();
    this.terminals.dispose();
    this.apiKeys.close();
    fs.rmSync(this.config.agentSocket, { force: true });
    if (stopRuntime && this.runtime.connected) {
      await this.runtime.request(RtShutdown, {}).catch(() => {});
    }
    this.runtime.close();
    this.stoppedCallbacks.forEach((c) => c());
  }
}
