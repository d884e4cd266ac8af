// How the Direct HTTP API writes answers: JSON results, and JSON errors `{error:{code,name,message,data}}`
// whose HTTP status comes from the protocol's one table (HTTP_STATUS).
import { STATUS_CODES, type ServerResponse } from 'node:http';
import type * as net from 'node:net';
import { errorCodeName, httpStatusOf, ProtocolError } from '../protocol';

export interface Answer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

export function errorBody(code: number, message: string, data?: unknown): string {
  return JSON.stringify({ error: { code, name: errorCodeName(code) ?? 'InternalError', message, ...(data === undefined ? {} : { data }) } });
}

export function errorAnswer(e: ProtocolError, headers?: Record<string, string>): Answer {
  return { status: httpStatusOf(e.code), body: errorBody(e.code, e.message, e.data), ...(headers ? { headers } : {}) };
}

export function send(res: ServerResponse, a: Answer): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  res.writeHead(a.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(a.body), ...a.headers });
  res.end(a.body);
}

/** Refuses a WebSocket upgrade with a JSON error (the socket is not upgraded yet: plain HTTP). */
export function refuseUpgrade(socket: net.Socket, e: ProtocolError): void {
  const a = errorAnswer(e);
  const reason = `${a.status} ${STATUS_CODES[a.status] ?? 'Error'}`;
  socket.end(`HTTP/1.1 ${reason}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(a.body)}\r\nconnection: close\r\n\r\n${a.body}`);
}
