// Port forwarding into sandboxes (and their branches), and named HTTP/WebSocket exposures behind the key.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as http from 'node:http';
import WebSocket from 'ws';
import {
  HttpExpose,
  HttpHide,
  PortForwardCreate,
  PortList,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SnapshotBranch,
  SnapshotCreate,
  type RpcClient,
} from '../../agent/src/protocol';
import { sleep, useStack } from './stack';
import { sh } from './snapshots.test';

/** A minimal WebSocket echo server on port 8001 plus a static HTTP server on 8000, stdlib only. */
const SERVERS = `
import base64, hashlib, http.server, socket, socketserver, struct, threading, os
os.chdir("/srv")
threading.Thread(target=lambda: http.server.ThreadingHTTPServer(("127.0.0.1", 8000), http.server.SimpleHTTPRequestHandler).serve_forever(), daemon=True).start()
class WS(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\\r\\n\\r\\n" not in head: head += self.request.recv(1024)
        key = [l.split(b":", 1)[1].strip() for l in head.split(b"\\r\\n") if l.lower().startswith(b"sec-websocket-key")][0]
        accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
        self.request.sendall(b"HTTP/1.1 101 Switching Protocols\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Accept: " + accept + b"\\r\\n\\r\\n")
        while True:
            b1, b2 = self.request.recv(2)
            n = b2 & 127
            if n == 126: n = struct.unpack(">H", self.request.recv(2))[0]
            mask = self.request.recv(4)
            data = bytearray(self.request.recv(n))
            for i in range(n): data[i] ^= mask[i % 4]
            reply = b"echo:" + bytes(data)
            self.request.sendall(bytes([0x81, len(reply)]) + reply)
socketserver.ThreadingTCPServer.allow_reuse_address = True
print("serving", flush=True)
socketserver.ThreadingTCPServer(("127.0.0.1", 8001), WS).serve_forever()
`;

function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    }).on('error', reject);
  });
}

async function waitServing(c: RpcClient, sandboxId: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await c.request(SandboxExec, { sandboxId, command: "python3 -c \"import socket; socket.create_connection(('127.0.0.1', 8001)); socket.create_connection(('127.0.0.1', 8000))\"" });
    if (r.exitCode === 0) return;
    await sleep(100);
  }
  throw new Error('the servers never came up');
}

describe('ports and HTTP exposure (real sandboxes)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();
  const made: string[] = [];
  env.beforeStop(async () => {
    for (const id of made) await c().request(SandboxDestroy, { sandboxId: id }).catch(() => {});
  });

  it('forwards a host port to a sandbox HTTP server, and each branch gets its own', async () => {
    const { sandbox } = await c().request(SandboxCreate, {
      environment: 'python',
      command: ['python3', '-c', SERVERS],
      files: [{ path: '/srv/index.html', content: 'hello from the sandbox\n' }],
    });
    made.push(sandbox.id);
    await waitServing(c(), sandbox.id);
    const f = await c().request(PortForwardCreate, { sandboxId: sandbox.id, port: 8000 });
    assert.equal(f.hostAddress, '127.0.0.1');
    assert.deepEqual(await get(`http://127.0.0.1:${f.hostPort}/`), { status: 200, body: 'hello from the sandbox\n' });

    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 });
    made.push(...branches.map((b) => b.sandboxId));
    const ports: number[] = [];
    for (const b of branches) {
      await sh(c(), b.sandboxId, `echo ${b.sandboxId} > /srv/index.html`);
      ports.push((await c().request(PortForwardCreate, { sandboxId: b.sandboxId, port: 8000 })).hostPort);
    }
    for (const [i, b] of branches.entries()) assert.equal((await get(`http://127.0.0.1:${ports[i]}/`)).body, `${b.sandboxId}\n`);
    assert.equal((await get(`http://127.0.0.1:${f.hostPort}/`)).body, 'hello from the sandbox\n');
    const listed = (await c().request(PortList, { sandboxId: branches[0].sandboxId })).forwards;
    assert.deepEqual(listed.map((x) => x.port), [8000]);
    // A destroyed sandbox's forwards go with it.
    await c().request(SandboxDestroy, { sandboxId: branches[1].sandboxId });
    assert.deepEqual((await c().request(PortList, { sandboxId: branches[1].sandboxId })).forwards, []);
    await assert.rejects(get(`http://127.0.0.1:${ports[1]}/`));
  });

  it('exposes HTTP and WebSocket at a named URL that refuses requests without the key', async () => {
    const sandboxId = made[0];
    const e = await c().request(HttpExpose, { sandboxId, port: 8000, name: 'site' });
    assert.match(e.url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/expose\/site\/$/);
    const token = fs.readFileSync(env.stack().config.tokenFile, 'utf8').trim();
    assert.equal((await get(e.url)).status, 401);
    assert.equal((await get(e.url, { Authorization: 'Bearer wrong' })).status, 401);
    const ok = await get(e.url, { Authorization: `Bearer ${token}` });
    assert.deepEqual(ok, { status: 200, body: 'hello from the sandbox\n' });
    const missing = await get(e.url + 'nope.html', { Authorization: `Bearer ${token}` });
    assert.equal(missing.status, 404, 'paths are passed through to the sandbox server');

    const ws = await c().request(HttpExpose, { sandboxId, port: 8001, name: 'echo' });
    const wsUrl = ws.url.replace(/^http/, 'ws');
    await assert.rejects(
      new Promise((resolve, reject) => {
        const s = new WebSocket(wsUrl);
        s.once('open', resolve);
        s.once('unexpected-response', (_q, res) => reject(new Error(`HTTP ${res.statusCode}`)));
        s.once('error', reject);
      }),
      /401/,
    );
    const socket = new WebSocket(wsUrl, { headers: { Authorization: `Bearer ${token}` } });
    await new Promise((resolve, reject) => (socket.once('open', resolve), socket.once('error', reject)));
    const reply = new Promise<string>((resolve) => socket.once('message', (d) => resolve(d.toString())));
    socket.send('ping');
    assert.equal(await reply, 'echo:ping');
    socket.close();

    await c().request(HttpHide, { name: 'site' });
    assert.equal((await get(e.url, { Authorization: `Bearer ${token}` })).status, 404);
  });
});
