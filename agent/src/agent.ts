// forkspace-agent: composes the runtime connection, the services and the listeners.
import * as fs from 'node:fs';
import type * as net from 'node:net';
import type { WebSocketServer } from 'ws';
import { RtInfo, RtShutdown } from './protocol/runtime';
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
import { SandboxService } from './core/sandboxes';
import { InstanceService } from './core/instances';
import { Ownership } from './core/ownership';
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
    this.modes = new ModeService(this.runtime, this.sandboxes, this.exec, this.ownership.agentOwner);
    this.files = new FileService(this.runtime);
    this.cache = new CacheService(this.runtime, this.environments, this.exec);
    this.terminals = new TerminalService(this.runtime);
    this.ports = new PortService(this.runtime, (name) => `http://${config.httpHost}:${this.httpServer?.port ?? config.httpPort}/v1/expose/${name}/`);
    this.rpc = new RpcServer(log, (peer) => {
      this.terminals.closeOwnedBy(peer);
      void this.ownership.peerClosed(peer);
    });
    registerHandlers(this.rpc, this);
    forwardRuntimeEvents(this.runtime, this.rpc);
  }

  async start(): Promise<void> {
    this.unixServer = await listenUnix(this.config.agentSocket, this.rpc, this.log);
    const token = loadToken(this.config.tokenFile);
    if (this.config.wsPort > 0) {
      this.wsServer = await listenWebSocket(this.config.wsHost, this.config.wsPort, token, this.rpc, this.log);
    }
    this.httpServer = new HttpServer(token, (name) => this.ports.target(name), this.log);
    await this.httpServer.listen(this.config.httpHost, this.config.httpPort);
    // Don't wait: bringing the runtime up (or learning why it cannot come up) must not delay the socket.
    void this.runtime.connection().catch((e: Error) => this.log(`runtime not available yet: ${e.message}`));
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
    fs.rmSync(this.config.agentSocket, { force: true });
    if (stopRuntime && this.runtime.connected) {
      await this.runtime.request(RtShutdown, {}).catch(() => {});
    }
    this.runtime.close();
    this.stoppedCallbacks.forEach((c) => c());
  }
}
