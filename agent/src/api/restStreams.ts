// The Direct HTTP API's WebSocket streams: an execution's output (/v1/executions/{execId}/stream) and a
// terminal's (/v1/terminals/{terminalId}/stream). Each frame is one JSON text message. A client that
// lost its connection reconnects with ?after=<the last seq it got> and receives exactly the frames after
// it: the agent replays them from the stream's log, then follows live; the last frame says it ended.
// A key reaches only its own executions and terminals, and its streams close (KEY_REVOKED_CLOSE) the
// moment it is revoked.
import type * as http from 'node:http';
import type * as net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { ErrorCodes, ExecStream, KEY_REVOKED_CLOSE, ProtocolError, TerminalClientFrame, TerminalStream } from '../protocol';
import { Ref } from '../protocol/common';
import type { TerminalStreamFrame } from '../protocol';
import { matchRoute, queryFieldTypes, ROUTES } from '../protocol/routes';
import type { ExecutionService } from '../core/executions';
import type { TerminalService } from '../core/terminals';
import type { Unsubscribe } from '../core/streamLog';
import type { Access } from '../core/access';
import { refuseUpgrade } from './httpAnswers';
import type { KeySessions } from './keySessions';

const MAX_CLIENT_FRAME = 1 << 20;
/** Frames queued for one slow reader before its connection is cut. */
const MAX_BUFFERED_BYTES = 16 << 20;

export class RestStreams {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_FRAME });

  constructor(
    private readonly executions: ExecutionService,
    private readonly terminals: TerminalService,
    private readonly sessions: KeySessions,
  ) {}

  /** Takes over an authenticated upgrade request under /v1/ (not /v1/expose/). */
  upgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer, url: URL, access: Access): void {
    try {
      const match = matchRoute(ROUTES, 'GET', url.pathname);
      if (!match || 'allow' in match || match.route.target.kind !== 'stream') {
        throw new ProtocolError(ErrorCodes.MethodNotFound, `no WebSocket stream at ${url.pathname}; streams are /v1/executions/{execId}/stream and /v1/terminals/{terminalId}/stream`);
      }
      const target = match.route.target;
      checkPathParams(match.pathParams, target.name);
      const after = afterOf(url, target.query);
      const open =
        target === ExecStream
          ? this.execStream(match.pathParams.execId, after, access)
          : target === TerminalStream
            ? this.terminalStream(match.pathParams.terminalId, after, access)
            : undefined;
      if (!open) throw new ProtocolError(ErrorCodes.MethodNotFound, `no stream handler for ${target.name}`);
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const untrack = this.sessions.track(access, () => ws.close(KEY_REVOKED_CLOSE.code, KEY_REVOKED_CLOSE.reason));
        ws.on('close', untrack);
        open(ws);
      });
    } catch (e) {
      refuseUpgrade(socket, e instanceof ProtocolError ? e : new ProtocolError(ErrorCodes.InternalError, String(e)));
    }
  }

  close(): void {
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  /** Checks the execution exists (and is the caller's) before upgrading, so an unknown id is a 404, not a
   * closed socket. */
  private execStream(execId: string, after: number, access: Access): (ws: WebSocket) => void {
    this.executions.check(execId, access);
    return (ws) =>
      follow(ws, (sendFrame, close) =>
        this.executions.subscribe(execId, after, {
          item: (c) => sendFrame({ type: 'output', execId, stream: c.stream, data: c.data, seq: c.seq }),
          gap: (from, to) => sendFrame({ type: 'gap', execId, from, to }),
          end: (execution) => {
            sendFrame({ type: 'end', execution });
            close('ended');
          },
        }, access),
      );
  }

  private terminalStream(terminalId: string, after: number, access: Access): (ws: WebSocket) => void {
    this.terminals.check(terminalId, access);
    return (ws) => {
      ws.on('message', (data, isBinary) => {
        if (ws.readyState !== ws.OPEN) return; // closing (revoked, say): no more keystrokes
        const frame = isBinary ? undefined : parseClientFrame(data.toString());
        if (!frame) {
          ws.close(1008, 'send JSON text frames {"type":"input","data"} or {"type":"resize","cols","rows"}');
          return;
        }
        const done = (async () =>
          frame.type === 'input' ? this.terminals.input(terminalId, frame.data, access) : this.terminals.resize(terminalId, frame.cols, frame.rows, access))();
        done.catch((e: Error) => ws.close(1011, e.message.slice(0, 120)));
      });
      follow<TerminalStreamFrame>(ws, (sendFrame, close) =>
        this.terminals.subscribe(terminalId, after, {
          item: (c) => sendFrame({ type: 'output', terminalId, data: c.data, seq: c.seq }),
          gap: (from, to) => sendFrame({ type: 'gap', terminalId, from, to }),
          end: (e) => {
            sendFrame({ type: 'exit', terminalId, exitCode: e.exitCode });
            close('exited');
          },
        }, access),
      );
    };
  }
}

/** `{execId}` and `{terminalId}` are references like any other (protocol/common.ts Ref). */
function checkPathParams(params: Record<string, string>, stream: string): void {
  for (const [k, v] of Object.entries(params)) {
    const r = Ref.safeParse(v);
    if (!r.success) {
      throw new ProtocolError(ErrorCodes.InvalidParams, `invalid params for ${stream}: ${k}: ${r.error.issues.map((i) => i.message).join('; ')}`, {
        issues: r.error.issues.map((i) => ({ path: [k], message: i.message })),
      });
    }
  }
}

/** Sends a log's frames on a socket until the log ends (then closes it normally) or the socket closes. */
function follow<F>(ws: WebSocket, subscribe: (send: (f: F) => void, close: (reason: string) => void) => Unsubscribe): void {
  let unsubscribe: Unsubscribe = () => {};
  let closed = false;
  ws.on('close', () => ((closed = true), unsubscribe()));
  ws.on('error', () => unsubscribe());
  try {
    const u = subscribe(
      (f) => {
        if (ws.readyState !== ws.OPEN) return;
        // A reader that cannot keep up is cut rather than buffered without bound; it resumes from its
        // last sequence number (from the log, or told of a gap).
        if (ws.bufferedAmount > MAX_BUFFERED_BYTES) return void ws.terminate();
        ws.send(JSON.stringify(f));
      },
      (reason) => ws.close(1000, reason),
    );
    if (closed) u();
    else unsubscribe = u;
  } catch (e) {
    ws.close(1011, (e as Error).message.slice(0, 120));
  }
}

function parseClientFrame(text: string) {
  try {
    const r = TerminalClientFrame.safeParse(JSON.parse(text));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** `?after=N` (and nothing else the stream does not take). */
function afterOf(url: URL, query: typeof ExecStream.query): number {
  const types = queryFieldTypes(query);
  const raw: Record<string, unknown> = {};
  for (const [k, v] of url.searchParams) raw[k] = types[k] === 'integer' && /^\d+$/.test(v) ? Number(v) : v;
  const r = query.safeParse(raw);
  if (!r.success) {
    throw new ProtocolError(
      ErrorCodes.InvalidParams,
      `invalid stream query: ${r.error.issues.map((i) => `${i.path.join('.') || 'query'}: ${i.message}`).join('; ')}; use ?after=<last seq received>`,
    );
  }
  return (r.data as { after?: number }).after ?? 0;
}
