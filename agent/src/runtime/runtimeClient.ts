// The agent's connection to forkspace-rt: connects on first use (starting the runtime if it is not
// running), reconnects after the runtime restarts, and routes the runtime's notifications to whoever
// waits for that execution or environment.
import { connectUnixSocket, ErrorCodes, ProtocolError, RpcClient } from '../protocol';
import type { NotificationType, RequestOptions, RequestType } from '../protocol';
import { RtEnvProgress, RtExecOutput, RtExecStarted } from '../protocol/runtime';
import type { z } from 'zod';
import type { AgentConfig } from '../config';
import type { Logger } from '../log';
import { startRuntime } from './runtimeProcess';

/** Runtime methods that change nothing, so that asking twice is harmless. */
const READ_ONLY = /\/(get|list|info|diff)$/;

/** Runtime messages may carry inline files (base64); allow more than client connections. */
const RUNTIME_MAX_MESSAGE_BYTES = 96 * 1024 * 1024;

export interface ExecListener {
  started?(params: z.infer<typeof RtExecStarted.params>): void;
  output?(params: z.infer<typeof RtExecOutput.params>): void;
}

export class RuntimeClient {
  private client: RpcClient | undefined;
  private connecting: Promise<RpcClient> | undefined;
  private lastError: string | undefined;
  private readonly execListeners = new Map<string, ExecListener>();
  private readonly progressListeners = new Map<string, Set<(message: string) => void>>();
  /** Listeners for notifications that are not tied to one request (sandbox consoles, state changes). */
  private readonly eventListeners: { type: NotificationType<unknown>; listener: (p: unknown) => void }[] = [];

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {}

  get connected(): boolean {
    return this.client !== undefined && !this.client.transport.closed;
  }

  get error(): string | undefined {
    return this.lastError;
  }

  async request<P, R, PIn>(type: RequestType<P, R, PIn>, params: PIn, options?: RequestOptions): Promise<R> {
    const client = await this.connection();
    try {
      return await client.request(type, params, options);
    } catch (e) {
      // A request sent just as the runtime died (before its socket's close reached us) is lost with it.
      // One that only reads is asked again of the runtime started in its place; anything else is the
      // caller's to judge, since it may or may not have run.
      if (!(e instanceof ProtocolError && e.code === ErrorCodes.ConnectionClosed && READ_ONLY.test(type.method))) throw e;
      this.log(`forkspace-rt closed the connection before answering ${type.method}; asking again`);
      return (await this.connection()).request(type, params, options);
    }
  }

  onExec(execId: string, listener: ExecListener): { dispose(): void } {
    this.execListeners.set(execId, listener);
    return { dispose: () => this.execListeners.delete(execId) };
  }

  onEnvProgress(name: string, listener: (message: string) => void): { dispose(): void } {
    let set = this.progressListeners.get(name);
    if (!set) this.progressListeners.set(name, (set = new Set()));
    set.add(listener);
    return { dispose: () => set.delete(listener) };
  }

  /** Listens to a runtime notification on this and every later connection. */
  onRuntimeNotification<P>(type: NotificationType<P>, listener: (params: P) => void): void {
    const entry = { type: type as NotificationType<unknown>, listener: listener as (p: unknown) => void };
    this.eventListeners.push(entry);
    this.client?.onNotification(entry.type, entry.listener);
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  /** The live connection, connecting (and starting forkspace-rt) when there is none. */
  connection(): Promise<RpcClient> {
    if (this.client && !this.client.transport.closed) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async connect(): Promise<RpcClient> {
    let transport;
    try {
      transport = await connectUnixSocket(this.config.runtimeSocket, RUNTIME_MAX_MESSAGE_BYTES);
    } catch {
      this.log(`forkspace-rt is not running at ${this.config.runtimeSocket}; starting ${this.config.runtimeBin}`);
      try {
        await startRuntime(this.config);
        transport = await connectUnixSocket(this.config.runtimeSocket, RUNTIME_MAX_MESSAGE_BYTES);
      } catch (e) {
        this.lastError = (e as Error).message;
        throw e instanceof ProtocolError ? e : new ProtocolError(ErrorCodes.RuntimeUnavailable, this.lastError);
      }
    }
    const client = new RpcClient(transport, false);
    client.onNotification(RtExecStarted, (p) => this.execListeners.get(p.execId)?.started?.(p));
    client.onNotification(RtExecOutput, (p) => this.execListeners.get(p.execId)?.output?.(p));
    client.onNotification(RtEnvProgress, (p) => this.progressListeners.get(p.name)?.forEach((l) => l(p.message)));
    for (const { type, listener } of this.eventListeners) client.onNotification(type, listener);
    client.transport.onClose(() => {
      if (this.client === client) {
        this.client = undefined;
        this.log('connection to forkspace-rt closed');
      }
    });
    this.client = client;
    this.lastError = undefined;
    this.log(`connected to forkspace-rt at ${this.config.runtimeSocket}`);
    return client;
  }
}
