// The WebSocket listener: the same JSON-RPC, with the agent's bearer token or an API key (which may not
// call the admin methods, as on the Direct HTTP API).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import WebSocket from 'ws';
import { ErrorCodes, ExecOutput, ExecRun, Initialize, KeyCreate, KeyRevoke, PROTOCOL_VERSION, RpcClient, WebSocketTransport, type ProtocolError } from '../../agent/src/protocol';
import { freePort, useStack } from './stack';

function open(url: string, headers: Record<string, string>): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

describe('WebSocket JSON-RPC (real agent)', function () {
  let url = '';
  const env = useStack({
    wsPort: async () => {
      const port = await freePort();
      url = `ws://127.0.0.1:${port}`;
      return port;
    },
  });

  it('refuses connections without the token or with a wrong one', async () => {
    await assert.rejects(open(url, {}), /HTTP 401/);
    await assert.rejects(open(url, { Authorization: 'Bearer nope' }), /HTTP 401/);
  });

  it('keeps the token file owner-only and serves executions with the token', async () => {
    assert.equal(fs.statSync(env.stack().config.tokenFile).mode & 0o777, 0o600);
    assert.equal(fs.statSync(env.stack().config.agentSocket).mode & 0o777, 0o600);
    const token = fs.readFileSync(env.stack().config.tokenFile, 'utf8').trim();
    const client = new RpcClient(new WebSocketTransport(await open(url, { Authorization: `Bearer ${token}` })));
    await client.request(Initialize, { protocolVersion: PROTOCOL_VERSION });
    const seen: string[] = [];
    client.onNotification(ExecOutput, (o) => seen.push(o.data));
    const r = await client.request(ExecRun, { environment: 'busybox', command: 'echo over websocket' });
    assert.equal(r.stdout, 'over websocket\n');
    assert.equal(seen.join(''), r.stdout);
    client.close();
  });

  it('serves an API key all but the admin methods, and refuses it once revoked', async () => {
    const { key, secret } = await env.client().request(KeyCreate, { name: 'websocket-test' });
    const client = new RpcClient(new WebSocketTransport(await open(url, { Authorization: `Bearer ${secret}` })));
    await client.request(Initialize, { protocolVersion: PROTOCOL_VERSION });
    assert.equal((await client.request(ExecRun, { environment: 'busybox', command: 'echo with a key' })).stdout, 'with a key\n');
    await assert.rejects(client.request(KeyCreate, {}), (e: ProtocolError) => e.code === ErrorCodes.Forbidden && /admin only/.test(e.message));
    client.close();
    await env.client().request(KeyRevoke, { keyId: key.id });
    await assert.rejects(open(url, { Authorization: `Bearer ${secret}` }), /HTTP 401/);
  });
});
