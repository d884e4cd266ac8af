// The extension's one connection to the local agent: found through settings, started when absent
// (the bundled dist/agent.js on a Node >= 22), re-established when it drops (a few times, then it waits
// for the user), with its state for the status bar and its log in an output channel. Everything else asks
// it for requests and notifications and never sees the socket.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  AgentStatus,
  connectUnixSocket,
  Initialize,
  PROTOCOL_VERSION,
  RpcClient,
  type MessageTransport,
  type NotificationType,
  type RequestOptions,
  type RequestType,
} from '../../agent/src/protocol';
import { agentLogDir, agentSocketPath, diagnose, nodeForAgent, type Diagnosis } from './agentLocation';
import { AgentRefused, connectWebSocket } from './connectWebSocket';

/** Where the key for `forkspace.agent.url` is kept: SecretStorage, never settings. */
export const AGENT_KEY_SECRET = 'forkspace.agent.key';

export type AgentState =
  | { kind: 'connecting' }
  | { kind: 'starting' }
  | { kind: 'connected'; version: string; via: string; runtimeError?: Diagnosis }
  | { kind: 'error'; message: string; fix?: string };

const START_TIMEOUT_MS = 20_000;
/** Reconnections allowed within RESTART_WINDOW_MS before the extension stops trying on its own. */
const MAX_RESTARTS = 3;
const RESTART_WINDOW_MS = 60_000;

export class AgentConnection implements vscode.Disposable {
  private client: RpcClient | undefined;
  private connecting: Promise<RpcClient> | undefined;
  private restarts: number[] = [];
  private readonly subscriptions: { type: NotificationType<unknown>; listener: (p: unknown) => void }[] = [];
  private readonly stateEmitter = new vscode.EventEmitter<AgentState>();
  private readonly connectedEmitter = new vscode.EventEmitter<void>();
  private current: AgentState = { kind: 'connecting' };
  private disposed = false;

  /** State changes (for the status bar). */
  readonly onDidChangeState = this.stateEmitter.event;
  /** Each (re)connection: views reload. */
  readonly onDidConnect = this.connectedEmitter.event;

  constructor(
    private readonly extensionPath: string,
    readonly output: vscode.OutputChannel,
    private readonly secrets: vscode.SecretStorage,
  ) {}

  get state(): AgentState {
    return this.current;
  }

  async request<P, R, PIn>(type: RequestType<P, R, PIn>, params: PIn, options?: RequestOptions): Promise<R> {
    const client = await this.connection();
    return client.request(type, params, options);
  }

  /** Listens to an agent notification on this and every later connection. */
  on<P>(type: NotificationType<P>, listener: (params: P) => void): vscode.Disposable {
    const entry = { type: type as NotificationType<unknown>, listener: listener as (p: unknown) => void };
    this.subscriptions.push(entry);
    const sub = this.client?.onNotification(entry.type, entry.listener);
    return new vscode.Disposable(() => {
      sub?.dispose();
      const i = this.subscriptions.indexOf(entry);
      if (i >= 0) this.subscriptions.splice(i, 1);
    });
  }

  connection(): Promise<RpcClient> {
    if (this.client && !this.client.transport.closed) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** After an error: try again from scratch (the Retry button). */
  retry(): Promise<RpcClient> {
    this.restarts = [];
    return this.connection();
  }

  /** Drops the connection and connects again, with the settings and key as they are now. */
  async reconnect(): Promise<RpcClient> {
    await this.connecting?.catch(() => {});
    const old = this.client;
    this.client = undefined; // so its close is not taken for a drop
    old?.close();
    return this.retry();
  }

  private settings() {
    const c = vscode.workspace.getConfiguration('forkspace');
    return {
      url: c.get<string>('agent.url') || undefined,
      socket: c.get<string>('agent.socket') || undefined,
      nodePath: c.get<string>('agent.nodePath') || undefined,
      autoStart: c.get<boolean>('agent.autoStart', true),
    };
  }

  private async connect(): Promise<RpcClient> {
    const settings = this.settings();
    const socket = agentSocketPath(settings, process.env);
    const via = settings.url ?? socket;
    this.setState({ kind: 'connecting' });
    try {
      const transport = await this.openTransport(settings, socket);
      const client = new RpcClient(transport);
      const init = await client.request(Initialize, { protocolVersion: PROTOCOL_VERSION, clientName: 'vscode', clientVersion: vscode.version });
      for (const s of this.subscriptions) client.onNotification(s.type, s.listener);
      transport.onClose(() => this.onClosed(client));
      this.client = client;
      const status = await client.request(AgentStatus, {});
      const runtimeError = status.runtime.connected || !status.runtime.error ? undefined : diagnose(status.runtime.error);
      this.output.appendLine(`connected to ${init.serverName} ${init.serverVersion} at ${via}${runtimeError ? `; runtime: ${runtimeError.message}` : ''}`);
      this.setState({ kind: 'connected', version: init.serverVersion, via, runtimeError });
      this.connectedEmitter.fire();
      return client;
    } catch (e) {
      const err = e instanceof AgentError ? e : new AgentError((e as Error).message);
      this.output.appendLine(`agent: ${err.message}`);
      this.setState({ kind: 'error', message: err.message, fix: err.fix });
      throw err;
    }
  }

  /** The agent at `forkspace.agent.url`, else at the socket, started first when absent (and allowed). */
  private async openTransport(settings: ReturnType<AgentConnection['settings']>, socket: string): Promise<MessageTransport> {
    if (settings.url) {
      return connectWebSocket(settings.url, await this.secrets.get(AGENT_KEY_SECRET)).catch((e) => {
        if (e instanceof AgentRefused) throw new AgentError(`${e.message} Set the key with "Forkspace: Set Agent Key…".`, 'forkspace keys create');
        throw new AgentError(`${(e as Error).message}. Is the agent running there (forkspace agent status)? Clear forkspace.agent.url to use the local socket.`);
      });
    }
    try {
      return await connectUnixSocket(socket);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EACCES') {
        throw new AgentError(
          `Permission denied on ${socket}: the agent runs as root and its socket is owner-only. Run the editor's server as root, or set forkspace.agent.url to the agent's WebSocket with a key.`,
          'sudo forkspace agent start',
        );
      }
      if (!settings.autoStart) throw new AgentError(`No Forkspace agent at ${socket}, and forkspace.agent.autoStart is off.`, 'forkspace agent start');
      this.setState({ kind: 'starting' });
      await this.startAgent(socket, settings);
      return connectUnixSocket(socket);
    }
  }

  private onClosed(client: RpcClient): void {
    if (this.client !== client || this.disposed) return;
    this.client = undefined;
    const now = Date.now();
    this.restarts = this.restarts.filter((t) => now - t < RESTART_WINDOW_MS);
    if (this.restarts.length >= MAX_RESTARTS) {
      this.setState({ kind: 'error', message: `The agent connection dropped ${MAX_RESTARTS} times in a minute; not reconnecting on its own.`, fix: 'forkspace agent status' });
      return;
    }
    this.restarts.push(now);
    this.output.appendLine('agent connection closed; reconnecting');
    setTimeout(() => void this.connection().catch(() => {}), 500 * this.restarts.length);
  }

  /** Starts the bundled agent detached and waits for its socket; its log goes to the output channel on failure. */
  private async startAgent(socket: string, settings: { nodePath?: string }): Promise<void> {
    const entry = path.join(this.extensionPath, 'dist', 'agent.js');
    if (!fs.existsSync(entry)) throw new AgentError(`The bundled agent is missing (${entry}); reinstall the extension.`);
    const node = nodeForAgent(settings, process.env, { execPath: process.execPath, version: process.version, electron: !!process.versions.electron });
    if (!node) {
      throw new AgentError('Starting the agent needs Node.js 22 or newer: set forkspace.agent.nodePath, or start it yourself.', 'forkspace agent start');
    }
    const logDir = agentLogDir(process.env);
    fs.mkdirSync(logDir, { recursive: true });
    const logPath = path.join(logDir, 'forkspace-agent.log');
    const logFd = fs.openSync(logPath, 'a', 0o600);
    const offset = fs.fstatSync(logFd).size;
    this.output.appendLine(`starting the agent: ${node} ${entry} (log ${logPath})`);
    const env = { ...process.env, FORKSPACE_AGENT_SOCKET: socket, ELECTRON_RUN_AS_NODE: undefined };
    const child = spawn(node, [entry], { detached: true, stdio: ['ignore', logFd, logFd], env });
    fs.closeSync(logFd);
    let exited: number | null | undefined;
    child.once('exit', (code) => (exited = code));
    child.once('error', () => (exited = -1));
    child.unref();
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (Date.now() < deadline && exited === undefined) {
      try {
        (await connectUnixSocket(socket)).close();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    const tail = fs.readFileSync(logPath).subarray(offset).toString('utf8').trim().split('\n').slice(-10).join('\n');
    this.output.appendLine(tail);
    throw new AgentError(`The agent did not start${exited !== undefined ? ` (exit ${exited})` : ''}; see the Forkspace output.`, 'forkspace agent start');
  }

  private setState(s: AgentState): void {
    this.current = s;
    this.stateEmitter.fire(s);
  }

  dispose(): void {
    this.disposed = true;
    this.client?.close();
    this.stateEmitter.dispose();
    this.connectedEmitter.dispose();
  }
}

export class AgentError extends Error {
  constructor(
    message: string,
    readonly fix?: string,
  ) {
    super(message);
  }
}
