// The files API: byte-exact round trips at 1 KB and 200 MB in chunks, reading from snapshots, listing,
// removing, and the escapes it must refuse; special files the sandbox plants (FIFOs, sockets, symlinks)
// are refused at once with a clear error, for the files API, `collect` and `forkspace cp`, while
// everything else keeps answering; setuid/setgid modes and control characters in paths are refused.
import { strict as assert } from 'node:assert';
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ErrorCodes,
  ExecRun,
  FilesList,
  FilesRead,
  FilesRemove,
  FilesWrite,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxList,
  SnapshotCreate,
  type RpcClient,
} from '../../agent/src/protocol';
import { envRootfs, useStack } from './stack';
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
    // A final symlink is never followed (not even inside the sandbox): reading or writing it is refused
    // with what it is and where it points.
    await sh(c(), sandboxId, `ln -sf ${secret} /root/to-host && ln -sf ../../../../${secret} /root/relative-to-host`);
    for (const link of ['/root/to-host', '/root/relative-to-host']) {
      await assert.rejects(c().request(FilesRead, { id: sandboxId, path: link }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /is a symbolic link \(to .*host-secret\)/.test(e.message));
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

  it('writes over a file of the environment through the overlay, leaving the shared environment as it was', async () => {
    const shared = path.join(envRootfs('busybox'), 'etc/hosts');
    const before = fs.readFileSync(shared, 'utf8');
    await c().request(FilesWrite, { sandboxId, path: '/etc/hosts', content: '10.0.0.1 replaced\n' });
    assert.equal(await sh(c(), sandboxId, 'cat /etc/hosts'), '10.0.0.1 replaced\n');
    await c().request(FilesWrite, { sandboxId, path: '/etc/hosts', content: 'appended\n', offset: 18 });
    assert.equal((await c().request(FilesRead, { id: sandboxId, path: '/etc/hosts', encoding: 'utf8' })).content, '10.0.0.1 replaced\nappended\n');
    assert.equal(fs.readFileSync(shared, 'utf8'), before);
  });

  it('refuses oversized chunks and bad input with clear errors', async () => {
    await assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/data/big.bin', length: 9 * 1024 * 1024 }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await assert.rejects(c().request(FilesWrite, { sandboxId, path: '/x', content: '!!!', encoding: 'base64' }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams);
    await assert.rejects(c().request(FilesRead, { id: 'sbx-000000000000', path: '/x' }), (e: ProtocolError) => e.code === ErrorCodes.SandboxNotFound);
    await assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/no/such/file' }), (e: ProtocolError) => e.code === ErrorCodes.FileNotFound && /no\/such\/file/.test(e.message));
  });

  describe('special files the sandbox plants', () => {
    /** Settles `p` or fails: a host-side open of a FIFO would block for good, so waiting is the test. */
    const promptly = <T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> =>
      Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms: blocked on a FIFO?`)), ms).unref())]);
    const refused = (pattern: RegExp) => (e: ProtocolError) => {
      assert.equal(e.code, ErrorCodes.InvalidParams, e.message);
      assert.match(e.message, pattern);
      return true;
    };

    before(async () => {
      await sh(c(), sandboxId, 'mkdir -p /sp && mkfifo /sp/fifo && ln -s fifo /sp/to-fifo && nc -lU /sp/sock >/dev/null 2>&1 & sleep 0.2; true');
    });

    it('refuses FIFOs, sockets and symlinks to them for read, write and list, promptly, with what they are', async () => {
      const fifo = /^\/sp\/fifo is a FIFO, not a regular file: only regular files can be read or written$/;
      await promptly(assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/sp/fifo' }), refused(fifo)), 'files/read of a FIFO');
      await promptly(assert.rejects(c().request(FilesWrite, { sandboxId, path: '/sp/fifo', content: 'x' }), refused(fifo)), 'files/write to a FIFO');
      await promptly(assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/sp/to-fifo' }), refused(/is a symbolic link \(to fifo\)/)), 'a symlink to a FIFO');
      await promptly(assert.rejects(c().request(FilesList, { id: sandboxId, path: '/sp/fifo' }), refused(/is a FIFO, not a directory/)), 'files/list of a FIFO');
      if ((await sh(c(), sandboxId, 'test -S /sp/sock && echo yes || echo no')).trim() === 'yes') {
        await promptly(assert.rejects(c().request(FilesRead, { id: sandboxId, path: '/sp/sock' }), refused(/is a socket, not a regular file/)), 'files/read of a socket');
      }
      // Still a FIFO: nothing wrote through it or replaced it; removing it works (unlink opens nothing).
      assert.equal((await sh(c(), sandboxId, 'test -p /sp/fifo && echo fifo')).trim(), 'fifo');
    });

    it('keeps the API answering while several reads of FIFOs are refused at once', async () => {
      const clients = await Promise.all([1, 2, 3, 4].map(() => env.stack().client()));
      const reads = clients.map((k) => k.request(FilesRead, { id: sandboxId, path: '/sp/fifo' }).then(() => 'read', (e: ProtocolError) => e.code));
      const list = clients[0].request(SandboxList, {});
      assert.deepEqual(await promptly(Promise.all(reads), 'concurrent FIFO reads'), Array(4).fill(ErrorCodes.InvalidParams));
      assert.ok((await promptly(list, 'sandbox/list alongside them')).sandboxes.some((s) => s.id === sandboxId));
      clients.forEach((k) => k.close());
    });

    it('collects around a FIFO: the entry says what it is, the run and other runs are unaffected', async () => {
      const run = () =>
        c().request(ExecRun, {
          environment: 'busybox',
          command: 'mkfifo /tmp/f && echo result > /tmp/out && ln -s out /tmp/link',
          collect: ['/tmp/f', '/tmp/out', '/tmp/missing', '/tmp/link'],
        });
      const [a, b] = await promptly(Promise.all([run(), run()]), 'two runs collecting a FIFO');
      const other = await promptly(c().request(ExecRun, { environment: 'busybox', command: 'echo still here' }), 'a third run');
      assert.equal(other.stdout, 'still here\n');
      for (const r of [a, b]) {
        assert.equal(r.exitCode, 0);
        const [f, out, missing, link] = r.files ?? [];
        assert.deepEqual([f.path, f.found, f.content], ['/tmp/f', false, '']);
        assert.match(f.error ?? '', /^\/tmp\/f is a FIFO, not a regular file/);
        assert.deepEqual([out.found, Buffer.from(out.content, 'base64').toString(), out.error], [true, 'result\n', undefined]);
        assert.deepEqual([missing.found, missing.error], [false, undefined], 'nothing there: not found, no error');
        assert.deepEqual([link.found, /symbolic link \(to out\)/.test(link.error ?? '')], [false, true]);
      }
    });

    it('`forkspace cp` from and to a FIFO fails at once, saying what it is', async () => {
      const local = path.join(env.stack().dir, 'copied');
      const from = await promptly(env.stack().cli(['cp', `${sandboxId}:/sp/fifo`, local]), 'forkspace cp ID:/fifo');
      assert.notEqual(from.code, 0);
      assert.match(from.stderr, /\/sp\/fifo is a FIFO, not a regular file/);
      assert.ok(!fs.existsSync(local) || fs.statSync(local).size === 0);
      fs.writeFileSync(local, 'data');
      const to = await promptly(env.stack().cli(['cp', local, `${sandboxId}:/sp/fifo`]), 'forkspace cp to a FIFO');
      assert.notEqual(to.code, 0);
      assert.match(to.stderr, /\/sp\/fifo is a FIFO, not a regular file/);
    });

    it('refuses setuid and setgid modes, naming the field; the sticky bit stays allowed', async () => {
      for (const mode of [0o4755, 0o2755, 0o6755]) {
        await assert.rejects(c().request(FilesWrite, { sandboxId, path: '/sp/suid', content: '#!/bin/sh\n', mode }), refused(/^mode = 0[0-7]+ has the set-user-ID or set-group-ID bit/));
      }
      assert.equal((await sh(c(), sandboxId, 'test -e /sp/suid && echo there || echo absent')).trim(), 'absent', 'nothing was written');
      await c().request(FilesWrite, { sandboxId, path: '/sp/sticky', content: '', mode: 0o1777 });
      assert.equal(await sh(c(), sandboxId, 'stat -c %a /sp/sticky'), '1777\n');
      await assert.rejects(
        c().request(ExecRun, { environment: 'busybox', command: 'true', files: [{ path: 'ok', content: '' }, { path: 'tool', content: '', mode: 0o4755 }] }),
        refused(/^files\[1\]\.mode = 04755 has the set-user-ID/),
      );
    });

    it('answers NUL and other control characters in paths with InvalidParams, never an internal error', async () => {
      // The agent refuses these first (protocol/common.ts); the runtime's own refusal is unit-tested in sandbox_path.rs.
      for (const bad of ['/tmp/a\u0000b', '/tmp/new\nline', '/tmp/\u001b[31m']) {
        await assert.rejects(c().request(FilesWrite, { sandboxId, path: bad, content: 'x' }), refused(/control character/));
        await assert.rejects(c().request(FilesRead, { id: sandboxId, path: bad }), refused(/control character/));
        await assert.rejects(c().request(FilesList, { id: sandboxId, path: bad }), refused(/control character/));
        await assert.rejects(c().request(FilesRemove, { sandboxId, path: bad }), refused(/control character/));
      }
      await assert.rejects(c().request(ExecRun, { environment: 'busybox', command: 'true', collect: ['/tmp/\u0000x'] }), refused(/collect(\[0\]|\.0)/));
      await assert.rejects(c().request(ExecRun, { environment: 'busybox', command: 'true', files: [{ path: 'a\u0007b', content: '' }] }), refused(/files(\[0\]|\.0)\.path/));
    });
  });
});
