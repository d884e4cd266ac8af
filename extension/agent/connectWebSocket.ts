// A JSON-RPC connection to an agent over WebSocket (`forkspace.agent.url`): for an agent this extension
// host cannot reach by its unix socket (another user's, another machine's through a tunnel). The key goes
// in the Authorization header; a refusal says which key to set.
import WebSocket from 'ws';
import { WebSocketTransport } from '../../agent/src/protocol';

export class AgentRefused extends Error {}

export function connectWebSocket(url: string, key: string | undefined, timeoutMs = 10_000): Promise<WebSocketTransport> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { headers: key ? { Authorization: `Bearer ${key}` } : {}, handshakeTimeout: timeoutMs });
    socket.once('open', () => resolve(new WebSocketTransport(socket)));
    socket.once('unexpected-response', (_req, res) => {
      socket.terminate();
      if (res.statusCode === 401 || res.statusCode === 403) {
        reject(new AgentRefused(`The agent at ${url} refused ${key ? 'the key in SecretStorage' : 'a connection without a key'} (HTTP ${res.statusCode}).`));
      } else reject(new Error(`The agent at ${url} answered HTTP ${res.statusCode} instead of a WebSocket upgrade.`));
    });
    socket.once('error', (e) => reject(new Error(`Cannot reach the agent at ${url}: ${e.message}`)));
  });
}
