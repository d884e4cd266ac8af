// The agent's JSON-RPC over in-memory streams: handshake, errors, cancellation, streaming, framing.
import { strict as assert } from 'node:assert';
import { z } from 'zod';
import { RpcServer } from '../../agent/src/api/rpcServer';
import {
  ErrorCodes,
  Initialize,
  notification,
  PROTOCOL_VERSION,
  ProtocolError,
  request,
  RpcClient,
  Shutdown,
} from '../../agent/src/protocol';
import { silentLogger } from '../../agent/src/log';
import { transportPair } from './memoryTransport';

const Echo = request('test/echo', z.strictObject({ text: z.string(), times: z.number().int().min(1).optional() }), z.object({ text: z.string() }), 'echo');
const Wait = request('test/wait', z.strictObject({}), z.object({}), 'waits until cancelled');
const Boom = request('test/boom', z.strictObject({}), z.object({}), 'throws');
const Tick = notification('test/tick', z.object({ n: z.number() }), 'progress');

function setup(maxMessageBytes?: number) {
  const server = new RpcServer(silentLogger);
  const seen: { aborted: boolean } = { aborted: false };
  server.on(Echo, (p, { peer }) => {
    for (let n = 1; n <= (p.times ?? 1); n++) peer.notify(Tick, { n });
    return { text: p.text };
  });
  server.on(Wait, (_p, { signal }) => new Promise((_resolve, reject) => {
    signal.addEventListener('abort', () => {
      seen.aborted = true;
      reject(new Error('stopped'));
    });
  }));
  server.on(Boom, () => {
    throw new TypeError('kaboom');
  });
  server.on(Initialize, (_p, { peer }) => {
    peer.state = 'ready';
    return { protocolVersion: PROTOCOL_VERSION, serverName: 't', serverVersion: '0', capabilities: { executionModes: [], streaming: true, cancellation: true } };
  });
  const [clientSide, serverSide, rawClient] = transportPair(maxMessageBytes);
  server.attach(serverSide);
  const client = new RpcClient(clientSide);
  return { server, client, clientSide, serverSide, rawClient, seen };
}

async function initialized(maxMessageBytes?: number) {
  const s = setup(maxMessageBytes);
  await s.client.request(Initialize, { protocolVersion: PROTOCOL_VERSION });
  return s;
}

async function expectError(p: Promise<unknown>, code: number, match?: RegExp): Promise<ProtocolError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof ProtocolError, `expected a ProtocolError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (match) assert.match(e.message, match);
    return e;
  }
  assert.fail('expected the request to fail');
}

/** Sends raw text and resolves with the next response (not notification) the server sends back. */
function raw(s: ReturnType<typeof setup>, text: string): Promise<{ id: unknown; error?: { code: number; message: string } }> {
  return new Promise((resolve) => {
    s.clientSide.onMessage((m) => {
      if (!(typeof m === 'object' && m !== null && 'method' in m)) resolve(m as never);
    });
    s.clientSide.onInvalid(() => {});
    s.rawClient.write(text);
  });
}

describe('protocol over in-memory streams', () => {
  it('refuses requests before initialize, then serves them', async () => {
    const s = setup();
    await expectError(s.client.request(Echo, { text: 'hi' }), ErrorCodes.ServerNotInitialized, /initialize/);
    await s.client.request(Initialize, { protocolVersion: PROTOCOL_VERSION });
    assert.deepEqual(await s.client.request(Echo, { text: 'hi' }), { text: 'hi' });
  });

  it('names the unknown method', async () => {
    const s = await initialized();
    const Nope = request('no/such', z.object({}), z.object({}), '');
    await expectError(s.client.request(Nope, {}), ErrorCodes.MethodNotFound, /no\/such/);
  });

  it('refuses unknown fields and wrong types, naming the field', async () => {
    const s = await initialized();
    const Loose = request<unknown, unknown>('test/echo', z.unknown(), z.unknown(), '');
    const e1 = await expectError(s.client.request(Loose, { text: 'x', colour: 'red' }), ErrorCodes.InvalidParams, /colour/);
    assert.ok(Array.isArray((e1.data as { issues: unknown[] }).issues));
    await expectError(s.client.request(Loose, { text: 5 }), ErrorCodes.InvalidParams, /text/);
    await expectError(s.client.request(Loose, { text: 'x', times: 0 }), ErrorCodes.InvalidParams, /times/);
  });

  it('streams notifications in order before the response', async () => {
    const s = await initialized();
    const ticks: number[] = [];
    s.client.onNotification(Tick, (t) => ticks.push(t.n));
    await s.client.request(Echo, { text: 'x', times: 50 });
    assert.deepEqual(ticks, Array.from({ length: 50 }, (_, i) => i + 1));
  });

  it('answers a cancelled request with RequestCancelled and aborts the handler', async () => {
    const s = await initialized();
    const controller = new AbortController();
    const pending = s.client.request(Wait, {}, { signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    await expectError(pending, ErrorCodes.RequestCancelled, /cancelled/);
    assert.equal(s.seen.aborted, true);
    assert.deepEqual(await s.client.request(Echo, { text: 'still here' }), { text: 'still here' });
  });

  it('turns an unexpected handler failure into InternalError without dropping the connection', async () => {
    const s = await initialized();
    await expectError(s.client.request(Boom, {}), ErrorCodes.InternalError, /kaboom/);
    assert.deepEqual(await s.client.request(Echo, { text: 'ok' }), { text: 'ok' });
  });

  it('answers malformed JSON with ParseError and keeps serving', async () => {
    const s = await initialized();
    const reply = await raw(s, '{"jsonrpc":"2.0","id":1,"method":\n');
    assert.equal(reply.id, null);
    assert.equal(reply.error?.code, ErrorCodes.ParseError);
    assert.deepEqual(await s.client.request(Echo, { text: 'after' }), { text: 'after' });
  });

  it('answers a request object without a method with InvalidRequest', async () => {
    const s = await initialized();
    const reply = await raw(s, '{"jsonrpc":"2.0","id":7,"params":{}}\n');
    assert.equal(reply.error?.code, ErrorCodes.InvalidRequest);
  });

  it('refuses an oversized message and keeps the connection usable', async () => {
    const s = await initialized(1024);
    const big = JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'test/echo', params: { text: 'x'.repeat(5000) } });
    const reply = await raw(s, big + '\n');
    assert.equal(reply.error?.code, ErrorCodes.PayloadTooLarge);
    assert.match(reply.error?.message ?? '', /1024-byte limit/);
    assert.deepEqual(await s.client.request(Echo, { text: 'small' }), { text: 'small' });
  });

  it('serves batches', async () => {
    const s = await initialized();
    const reply = await raw(
      s,
      JSON.stringify([
        { jsonrpc: '2.0', id: 1, method: 'test/echo', params: { text: 'a' } },
        { jsonrpc: '2.0', id: 2, method: 'test/echo', params: { text: 'b' } },
      ]) + '\n',
    );
    assert.deepEqual((reply as unknown as { result: unknown }[]).map((r) => r.result), [{ text: 'a' }, { text: 'b' }]);
  });

  it('after shutdown takes only exit, and exit closes the connection', async () => {
    const s = await initialized();
    const waiting = s.client.request(Wait, {});
    await s.client.request(Shutdown, {});
    await expectError(waiting, ErrorCodes.RequestCancelled);
    await expectError(s.client.request(Echo, { text: 'x' }), ErrorCodes.ShuttingDown);
    const closed = new Promise<void>((r) => s.serverSide.onClose(r));
    s.client.notify({ kind: 'notification', method: 'exit', direction: 'clientToServer', params: z.object({}), description: '' }, {});
    await closed;
  });

  it('aborts a connection\'s running requests when it closes', async () => {
    const s = await initialized();
    void s.client.request(Wait, {}).catch(() => {});
    await new Promise((r) => setTimeout(r, 10));
    s.clientSide.close();
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(s.seen.aborted, true);
  });

  it('fails pending calls with ConnectionClosed when the peer goes away', async () => {
    const s = await initialized();
    const pending = s.client.request(Wait, {});
    s.serverSide.close();
    await expectError(pending, ErrorCodes.ConnectionClosed, /test\/wait/);
  });
});
