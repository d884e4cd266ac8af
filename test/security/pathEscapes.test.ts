// Path escapes through every route that touches a sandbox's files from the host: a sandbox plants symlinks
// to the host's root, /etc, /proc/self/root and /proc/1/root, relative `..` chains and links straight at host
// files, and tries hard links; then files/read, files/write, files/list, files/remove, exec collect, exec
// files, forkspace cp both ways, branch diff and merge, and snapshot reads go through them. Marker files
// planted on the host (in the stack dir, /root and /tmp) must never come back, change or disappear, and no
// host file may appear. A NUL byte in a path is a bad request (InvalidParams), not a runtime failure.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BranchDiff,
  BranchMerge,
  ExecRun,
  FilesList,
  FilesRead,
  FilesRemove,
  FilesWrite,
  SandboxExec,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotDelete,
} from '../../agent/src/protocol';
import { useStack } from '../integration/stack';
import { assertNone, cliWithin, expectInvalidParams, HostMarkers, Sandboxes, shOk, unique } from './battery';

/** Symlinks a sandbox makes, each pointing somewhere that would be the host if resolved on the host. */
const LINKS = (stackDir: string) => [
  'ln -s / /tmp/hostroot',
  'ln -s /etc /tmp/etc',
  'ln -s ../../../../../../../../.. /tmp/up',
  'ln -s /proc/self/root /tmp/selfroot',
  'ln -s /proc/1/root /tmp/p1root',
  'ln -s /proc/1/cwd /tmp/p1cwd',
  `ln -s ${stackDir} /tmp/stackdir`,
  'ln -s /root /tmp/rootdir',
  'mkdir -p /tmp/a/b/c && ln -s ../../../../../../.. /tmp/a/b/c/up',
];

/** Ways to name host path `p` from inside a sandbox. */
function variants(p: string): string[] {
  return [
    p,
    `/tmp/hostroot${p}`,
    `/tmp/up${p}`,
    `/tmp/a/b/c/up${p}`,
    `../../../../../../..${p}`,
    `/tmp/../../../..${p}`,
    `/tmp/selfroot${p}`,
    `/tmp/p1root${p}`,
    `/tmp/p1cwd/../../..${p}`,
    `/proc/self/root${p}`,
    `/proc/1/root${p}`,
    `/proc/self/cwd/../../..${p}`,
  ];
}

describe('security: path escapes in every file route (real runtime)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  let markers: HostMarkers;
  let box = '';
  /** Every way to reach a marker: the variants of its path, and direct symlinks made in the sandbox. */
  let targets: string[] = [];

  before(async () => {
    markers = new HostMarkers(env.stack().dir);
    markers.plant();
    box = await boxes.create({ environment: 'busybox' });
    const direct = markers.paths.map((p, i) => `ln -s ${p} /tmp/m${i}`);
    await shOk(c(), box, [...LINKS(env.stack().dir), ...direct].join(' && '));
    targets = [...markers.paths.flatMap(variants), ...markers.paths.map((_, i) => `/tmp/m${i}`), ...markers.paths.map((p) => `/tmp/stackdir/${path.basename(p)}`)];
  });
  /** Fails when a host marker was changed or removed (and plants it again for the next attempt). */
  function assertMarkersIntact(route: string): void {
    const changed = markers.changes();
    if (changed.length) markers.plant();
    assertNone(changed, `${route} touched host files through a sandbox path`);
  }
  after(() => markers?.remove());
  env.beforeStop(() => boxes.destroyAll());

  it('files/read through symlinks, `..` and /proc links returns no host file', async () => {
    // Control: the links work, inside the sandbox's root.
    await shOk(c(), box, 'echo control > /tmp/control');
    for (const t of ['/tmp/hostroot/tmp/control', '/tmp/up/tmp/control', '/tmp/a/b/c/up/tmp/control']) {
      assert.equal((await c().request(FilesRead, { id: box, path: t, encoding: 'utf8' })).content, 'control\n', `files/read ${t} did not resolve inside the sandbox`);
    }
    for (const t of targets) {
      const r = await c().request(FilesRead, { id: box, path: t, encoding: 'utf8' }).catch(() => undefined);
      if (r) markers.assertNotIn(r.content, `files/read ${t}`);
    }
    assertMarkersIntact('files/read');
  });

  it('files/write through them changes no host file and creates none', async () => {
    const fresh = `/tmp/${unique('.battery-created')}`;
    for (const t of [...targets, ...variants(fresh), ...variants(path.join(env.stack().dir, path.basename(fresh)))]) {
      await c().request(FilesWrite, { sandboxId: box, path: t, content: 'OWNED\n' }).catch(() => undefined);
    }
    const created = [fresh, path.join(env.stack().dir, path.basename(fresh))].filter((p) => fs.existsSync(p));
    created.forEach((p) => fs.rmSync(p, { force: true }));
    assertNone(created, 'files/write through sandbox paths created host files');
    assertMarkersIntact('files/write');
  });

  it('files/list through them lists no host directory', async () => {
    // Fresh host files that no earlier attempt can have written inside the sandbox under the same name.
    const fresh = [path.join(env.stack().dir, unique('.battery-listed')), path.join('/tmp', unique('.battery-listed')), path.join('/root', unique('.battery-listed'))];
    fresh.forEach((f) => fs.writeFileSync(f, 'listed\n'));
    try {
      const names = fresh.map((f) => path.basename(f));
      const dirs = [...new Set(fresh.flatMap((f) => variants(path.dirname(f)))), '/tmp/stackdir', '/tmp/rootdir', '/tmp/hostroot/tmp', '/tmp/up/tmp', '/tmp/up/root'];
      const seen: string[] = [];
      for (const d of dirs) {
        const r = await c().request(FilesList, { id: box, path: d }).catch(() => undefined);
        for (const e of r?.entries ?? []) if (names.includes(e.name)) seen.push(`${d}/${e.name}`);
      }
      assertNone(seen, 'files/list showed host files');
      assertMarkersIntact('files/list');
    } finally {
      fresh.forEach((f) => fs.rmSync(f, { force: true }));
    }
  });

  it('files/remove through them removes no host file or directory', async () => {
    // A host directory of our own for the recursive attempts: nothing else of the host is put at risk.
    const tree = path.join(env.stack().dir, unique('battery-tree'));
    fs.mkdirSync(tree);
    fs.writeFileSync(path.join(tree, 'inner'), markers.content);
    try {
      for (const t of targets) await c().request(FilesRemove, { sandboxId: box, path: t }).catch(() => undefined);
      for (const t of [...variants(tree), `/tmp/stackdir/${path.basename(tree)}`]) {
        await c().request(FilesRemove, { sandboxId: box, path: t, recursive: true }).catch(() => undefined);
      }
      assert.ok(fs.existsSync(path.join(tree, 'inner')), `files/remove recursive through a sandbox path removed the host directory ${tree}`);
      assertMarkersIntact('files/remove');
    } finally {
      fs.rmSync(tree, { recursive: true, force: true });
    }
  });

  it('exec/run collect through them returns no host file', async () => {
    const r = await c().request(ExecRun, {
      environment: 'busybox',
      command: [...LINKS(env.stack().dir), ...markers.paths.map((p, i) => `ln -s ${p} /tmp/m${i}`)].join(' && '),
      collect: targets.slice(0, 100),
    });
    for (const f of r.files ?? []) markers.assertNotIn(Buffer.from(f.content, 'base64').toString('latin1'), `collect ${f.path}`);
    assertMarkersIntact('exec/run collect');
  });

  it('files in exec specs through them change no host file (sandbox/exec, exec/run)', async () => {
    // One path per request, so a path refused early does not hide the others.
    for (const t of targets) await c().request(SandboxExec, { sandboxId: box, command: 'true', files: [{ path: t, content: 'OWNED\n' }] }).catch(() => undefined);
    for (const t of markers.paths.flatMap(variants)) {
      await c().request(ExecRun, { environment: 'busybox', command: 'true', files: [{ path: t, content: 'OWNED\n' }] }).catch(() => undefined);
    }
    assertMarkersIntact('files in exec specs');
  });

  it('forkspace cp into a sandbox through them changes no host file', async () => {
    const local = path.join(env.stack().dir, unique('cp-src'));
    fs.writeFileSync(local, 'OWNED\n');
    try {
      for (const t of [...markers.paths.map((_, i) => `/tmp/m${i}`), `/tmp/hostroot${markers.paths[0]}`, `/tmp/up${markers.paths[1]}`, `/proc/1/root${markers.paths[2]}`]) {
        await cliWithin(env.stack(), ['cp', local, `${box}:${t}`], 30_000);
      }
      assertMarkersIntact('forkspace cp into a sandbox');
    } finally {
      fs.rmSync(local, { force: true });
    }
  });

  it('forkspace cp out of a sandbox through them copies no host file', async () => {
    for (const t of [...markers.paths.map((_, i) => `/tmp/m${i}`), `/tmp/hostroot${markers.paths[0]}`, `/tmp/up${markers.paths[1]}`, `/proc/1/root${markers.paths[2]}`, `/tmp/stackdir/${path.basename(markers.paths[0])}`]) {
      const r = await cliWithin(env.stack(), ['cp', `${box}:${t}`, '-'], 30_000);
      markers.assertNotIn(r.stdout + r.stderr, `forkspace cp ${box}:${t} -`);
    }
    assertMarkersIntact('forkspace cp out of a sandbox');
  });

  it('branch diff and merge of branches full of escaping links touch and reveal no host file', async () => {
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: box });
    try {
      const [a, b] = (await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 })).branches.map((x) => boxes.adopt(x.sandboxId));
      // A turns a directory into a link to the host's stack dir and writes through its links; B changes the
      // same names as plain files, so the merge must write A's and B's versions across each other.
      await shOk(c(), a, `mkdir -p /tmp/d && echo a > /tmp/d/${path.basename(markers.paths[0])} && rm -rf /tmp/e && ln -s ${env.stack().dir} /tmp/e && ln -s ${markers.paths[0]} /tmp/leak && echo a > /tmp/conflict`);
      await shOk(c(), b, `rm -rf /tmp/d && ln -s ${env.stack().dir} /tmp/d && mkdir -p /tmp/e && echo b > /tmp/e/${path.basename(markers.paths[0])} && cp /tmp/m0 /tmp/leak 2>/dev/null; echo b > /tmp/conflict; ln -sf ${markers.paths[1]} /tmp/conflict2`);
      const out: string[] = [];
      out.push(JSON.stringify(await c().request(BranchDiff, { a, b }).catch((e) => String(e))));
      for (const [from, into] of [[a, b], [b, a]]) {
        for (const strategy of ['fail', 'theirs'] as const) {
          out.push(JSON.stringify(await c().request(BranchMerge, { from, into, strategy }).catch((e) => `${String(e)} ${JSON.stringify((e as { data?: unknown }).data ?? '')}`)));
        }
      }
      markers.assertNotIn(out.join('\n'), 'branch/diff and branch/merge');
      assertMarkersIntact('branch/diff and branch/merge');
      await boxes.destroy(a);
      await boxes.destroy(b);
    } finally {
      await c().request(SnapshotDelete, { snapshotId: snapshot.id }).catch(() => {});
    }
  });

  it('files/read of a snapshot through them returns no host file', async () => {
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: box });
    try {
      for (const t of targets) {
        const r = await c().request(FilesRead, { id: snapshot.id, path: t, encoding: 'utf8' }).catch(() => undefined);
        if (r) markers.assertNotIn(r.content, `files/read ${snapshot.id}:${t}`);
      }
      assertMarkersIntact('files/read of a snapshot');
    } finally {
      await c().request(SnapshotDelete, { snapshotId: snapshot.id }).catch(() => {});
    }
  });

  it('hard links to host files cannot be made from inside', async () => {
    const before = markers.paths.map((p) => fs.statSync(p).nlink);
    const r = await c().request(SandboxExec, {
      sandboxId: box,
      command: markers.paths.flatMap((p, i) => [`ln ${p} /tmp/hl${i}a`, `ln /proc/1/root${p} /tmp/hl${i}b`, `ln /tmp/m${i} /tmp/hl${i}c`, `ln -L /tmp/m${i} /tmp/hl${i}d`]).map((x) => `${x} 2>/dev/null`).join('; ') + '; cat /tmp/hl* 2>/dev/null; true',
    });
    markers.assertNotIn(r.stdout, 'reading hard links made inside the sandbox');
    const after = markers.paths.map((p) => fs.statSync(p).nlink);
    assert.deepEqual(after, before, `host marker files gained hard links: ${JSON.stringify({ before, after })}`);
  });

  describe('a NUL byte in a path is a bad request', () => {
    it('files/write with a NUL byte in its path: InvalidParams, and nothing written', async () => {
      await expectInvalidParams(c().request(FilesWrite, { sandboxId: box, path: '/tmp/nul\u0000.txt', content: 'x' }), 'files/write with a NUL byte');
      const r = await shOk(c(), box, 'ls /tmp | grep -c "^nul" || true');
      assert.equal(r.trim(), '0', 'files/write with a NUL byte wrote a file');
    });

    it('files/read, files/list and files/remove with a NUL byte in their path: InvalidParams', async () => {
      await expectInvalidParams(c().request(FilesRead, { id: box, path: '/etc/hostname\u0000/../passwd' }), 'files/read with a NUL byte');
      await expectInvalidParams(c().request(FilesList, { id: box, path: '/tmp\u0000' }), 'files/list with a NUL byte');
      await expectInvalidParams(c().request(FilesRemove, { sandboxId: box, path: '/tmp/x\u0000' }), 'files/remove with a NUL byte');
    });

    it('exec collect and exec files with a NUL byte in a path: InvalidParams', async () => {
      await expectInvalidParams(c().request(ExecRun, { environment: 'busybox', command: 'true', collect: ['/etc/hostname\u0000'] }), 'exec/run collect with a NUL byte');
      await expectInvalidParams(c().request(ExecRun, { environment: 'busybox', command: 'true', files: [{ path: '/tmp/a\u0000b', content: 'x' }] }), 'exec/run files with a NUL byte');
    });
  });
});
