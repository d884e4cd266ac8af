// The files API: byte-exact round trips at 1 KB and 200 MB in chunks, reading from snapshots, listing,
// removing, and the escapes it must refuse.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ErrorCodes,
  FilesList,
  FilesRead,
  FilesRemove,
  FilesWrite,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SnapshotCreate,
  type RpcClient,
} from '../../agent/src/protocol';
import { useStack } from './stack';
import { sh } from './snapshots.test';

const CHUNK = 4 * 1024 * 1024;

/** Writes `size` bytes of a seeded stream in chunks, returning the sha256 of what was sent. */
async function upload(c: RpcClient, sandboxId: string, file: string, size: number): Promise<string> {
  const hash = createHash('sha256');
  let offset = 0;
  const block = randomBytes(CHUNK);
  while (offset < size) {
    const n = Math.min(CHUNK, size - offset);
    const chunk = block.subarray(0, n);
    block.writeUInt32LE(offset >>> 0, 0); // every chunk differs, so misplaced chunks are caught
    hash.update(chunk);
    await c.request(FilesWrite, { sandboxId, path: file, content: chunk.toString('base64'), encoding: 'base64', offset });
    offset += n;
  }
  return hash.digest('hex');
}

async function download(c: RpcClient, id: string, file: string): Promise<{ sha: string; size: number }> {
  const hash = createHash('sha256');
  let offset = 0;
  for (;;) {
    const r = await c.request(FilesRead, { id, path: file, offset, length: CHUNK });
    const bytes = Buffer.from(r.content, 'base64');
    hash.update(bytes);
    offset += bytes.length;
    if (r.eof) return { sha: hash.digest('hex'), size: offset };
  }
}

describe('files API (real sandboxes)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  let sandboxId = '';

  before(async () => {
    sandboxId = (await c().request(SandboxCreate, { environment: 'busybox', limits: { memoryBytes: 256 * 1024 * 1024 } })).sandbox.id;
  });
  env.beforeStop(async () => sandboxId && c().request(SandboxDestroy, { sandboxId }));

  it('round-trips 1 KB byte for byte, and the sandbox sees the same bytes', async () => {
    const data = randomBytes(1024);
    await c().request(FilesWrite, { sandboxId, path: '/data/small.bin', content: data.toString('base64'), encoding: 'base64', mode: 0o600 });
    const r = await c().request(FilesRead, { id: sandboxId, path: '/data/small.bin' });
    assert.ok(Buffer.from(r.content, 'base64').equals(data));
    assert.deepEqual([r.size, r.eof], [1024, true]);
    assert.equal((await sh(c(), sandboxId, 'sha256sum /data/small.bin')).split(' ')[0], createHash('sha256').update(data).digest('hex'));
    assert.equal(await sh(c(), sandboxId, 'stat -c %a /data/small.bin'), '600\n');
  });

  it('round-trips 200 MB in chunks without holding it whole', async () => {
    const size = 200 * 1024 * 1024;
    const sent = await upload(c(), sandboxId, '/data/big.bin', size);
    const inside = (await sh(c(), sandboxId, 'sha256sum /data/big.bin')).split(' ')[0];
    assert.equal(inside, sent);
    const back = await download(c(), sandboxId, '/data/big.bin');
    assert.deepEqual(back, { sha: sent, size });
  });

  it('lists directories and removes files and trees', async () => {
    await c().request(FilesWrite, { sandboxId, path: '/tree/a/b.txt', content: 'b' });
    await c().request(FilesWrite, { sandboxId, path: '/tree/c.txt', content: 'cc' });
    const { entries } = await c().request(FilesList, { id: sandboxId, path: '/tree' });
    assert.deepEqual(entries.map((e) => [e.name, e.kind, e.kind === 'file' ? e.size : 0]), [['a', 'dir', 0], ['c.txt', 'file', 2]]);
    await assert.rejects(c().request(FilesRemove, { sandboxId, path: '/tree' }), /ENOTEMPTY|Directory not empty/);
    await c().request(FilesRemove, { sandboxId, path: '/tree', recursive: true });
    await assert.rejects(c().request(FilesList, { id: sandboxId, path: '/tree' }), (e: ProtocolError) => e.code === ErrorCodes.FileNotFound);
  });

  it('reads from a snapshot as it was when taken', async () => {
    await c().request(FilesWrite, { sandboxId, path: '/root/state', content: 'at snapshot' });
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId });
    await c().request(FilesWrite, { sandboxId, path: '/root/state', content: 'changed after' });
    const r = await c().request(FilesRead, { id: snapshot.id, path: '/root/state', encoding: 'utf8' });
    assert.equal(r.content, 'at snapshot');
    assert.ok((await c().request(FilesList, { id: snapshot.id, path: '/root' })).entries.some((e) => e.name === 'state'));
    await assert.rejects(c().request(FilesWrite, { sandboxId: snapshot.id, path: '/x', content: 'x' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound);
  });

  it('keeps `..` and symlinks inside the sandbox', async () => {
    const secret = path.join(env.stack().dir, 'host-secret');
    fs.writeFileSync(secret, 'HOST SECRET');
    // `..` climbs no higher than the sandbox root.
    await c().request(FilesWrite, { sandboxId, path: '../../../../../tmp/escaped', content: 'inside' });
    assert.equal(await sh(c(), sandboxId, 'cat /tmp/escaped'), 'inside');
    assert.ok(!fs.existsSync('/tmp/escaped'));
    await sh(c(), sandboxId, 'echo sandbox-passwd > /etc/passwd');
    const up = await c().request(FilesRead, { id: sandboxId, path: '/../../../etc/passwd', encoding: 'utf8' });
    assert.equal(up.content, 'sandbox-passwd\n');
    // A symlink to a host path resolves inside the sandbox, where that path does not exist.
    await sh(c(), sandboxId, `ln -sf ${secret} /root/to-host && ln -sf ../../../../${secret} /root/relative-to-host`);
    for (const link of ['/root/to-host', '/root/relative-to-host']) {
      await assert.rejects(c().request(FilesRead, { id: sandboxId, path: link }), (e: ProtocolError) => e.code === ErrorCodes.FileNotFound);
      await c().request(FilesWrite, { sandboxId, path: link, content: 'overwrite?' }).catch(() => {});
    }
    assert.equal(fs.readFileSync(secret, 'utf8'), 'HOST SECRET');
    // Magic links of /proc (a way out for a plain chroot) are refused.
    await assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/proc/self/root/etc/passwd' }));
    // Writing through a directory symlink to the host's / lands in the sandbox's /.
    await sh(c(), sandboxId, 'ln -sfn / /root/rootlink');
    await c().request(FilesWrite, { sandboxId, path: '/root/rootlink/etc/written-via-link', content: 'x' });
    assert.equal(await sh(c(), sandboxId, 'cat /etc/written-via-link'), 'x');
    assert.ok(!fs.existsSync('/etc/written-via-link'));
  });

  it('refuses oversized chunks and bad input with clear errors', async () => {
    await assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/data/big.bin', length: 9 * 1024 * 1024 }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await assert.rejects(c().request(FilesWrite, { sandboxId, path: '/x', content: '!!!', encoding: 'base64' }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await assert.rejects(c().request(FilesRead, { id: 'sbx-000000000000', path: '/x' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound);
    await assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/no/such/file' }), (e: ProtocolError) => e.code === ErrorCodes.FileNotFound && /no\/such\/file/.test(e.message));
  });
});
