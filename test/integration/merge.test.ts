// Branch diff and three-way merge on real sandboxes, and the checkpointed and branched modes.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BranchDiff,
  BranchMerge,
  ErrorCodes,
  ExecBranch,
  ExecRun,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SnapshotBranch,
  SnapshotCreate,
  type RpcClient,
} from '../../agent/src/protocol';
import { useStack } from './stack';
import { sh } from './snapshots.test';

const BASE_TEXT = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta', 'eta', 'theta'].join('\n') + '\n';

/** A snapshot with a few files, and two running branches of it. */
async function twoBranches(c: RpcClient): Promise<{ a: string; b: string; all: string[] }> {
  const { sandbox } = await c.request(SandboxCreate, {
    environment: 'busybox',
    files: [
      { path: '/w/text.txt', content: BASE_TEXT },
      { path: '/w/keep.txt', content: 'keep\n' },
      { path: '/w/gone.txt', content: 'to be deleted\n' },
      { path: '/w/blob.bin', content: Buffer.from([0, 1, 2, 3, 255]).toString('base64'), encoding: 'base64' },
    ],
  });
  const { snapshot } = await c.request(SnapshotCreate, { sandboxId: sandbox.id });
  const { branches } = await c.request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 });
  const [a, b] = branches.map((x) => x.sandboxId);
  return { a, b, all: [sandbox.id, a, b] };
}

/** Every file of a sandbox's /w with its content, to prove nothing changed. */
async function tree(c: RpcClient, id: string): Promise<string> {
  return sh(c, id, 'cd /w && find . -type f | sort | while read f; do echo "== $f"; od -c "$f"; done');
}

describe('branch diff and merge (real sandboxes)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();
  const made: string[] = [];
  afterEach(async () => {
    for (const id of made.splice(0)) await c().request(SandboxDestroy, { sandboxId: id }).catch(() => {});
  });

  it('merges changes that do not conflict: disjoint lines, new, deleted and binary files', async () => {
    const { a, b, all } = await twoBranches(c());
    made.push(...all);
    await sh(c(), a, "sed -i 's/alpha/ALPHA/' /w/text.txt && echo from-a > /w/new-a.txt");
    await sh(c(), b, "sed -i 's/theta/THETA/' /w/text.txt && rm /w/gone.txt && printf '\\001\\002' > /w/blob.bin && mkdir -p /w/dir && echo x > /w/dir/inner");
    const diff = await c().request(BranchDiff, { a, b });
    const byPath = Object.fromEntries(diff.changes.map((ch) => [ch.path, ch]));
    assert.deepEqual([byPath['/w/text.txt'].a, byPath['/w/text.txt'].b, byPath['/w/text.txt'].conflict], ['modified', 'modified', false]);
    assert.equal(byPath['/w/gone.txt'].b, 'deleted');
    assert.equal(byPath['/w/new-a.txt'].a, 'added');
    assert.ok(!('/w/keep.txt' in byPath));
    const merged = await c().request(BranchMerge, { from: b, into: a, strategy: 'fail' });
    assert.deepEqual(merged.conflicts, []);
    assert.ok(merged.applied.includes('/w/text.txt') && merged.applied.includes('/w/gone.txt'));
    assert.equal(await sh(c(), a, 'cat /w/text.txt'), BASE_TEXT.replace('alpha', 'ALPHA').replace('theta', 'THETA'));
    assert.equal(await sh(c(), a, 'test -e /w/gone.txt && echo present || echo absent'), 'absent\n');
    assert.equal(await sh(c(), a, 'cat /w/new-a.txt /w/dir/inner; od -An -tx1 /w/blob.bin'), 'from-a\nx\n 01 02\n');
    // The source is untouched by a merge into the target.
    assert.equal(await sh(c(), b, 'test -e /w/new-a.txt && echo present || echo absent'), 'absent\n');
  });

  it('never makes setuid or setgid files, copies large files whole, and leaves FIFOs and symlinks in the source alone', async () => {
    const { a, b, all } = await twoBranches(c());
    made.push(...all);
    // In the source: a setuid and a setgid file, a 6 MiB file (past the line-merge size), a FIFO, and a
    // symlink pointing at a host path (copied as a link, never followed).
    await sh(
      c(),
      b,
      'printf "#!/bin/sh\\n" > /w/suid && chmod 4755 /w/suid && printf x > /w/sgid && chmod 2711 /w/sgid && ' +
        'dd if=/dev/urandom of=/w/large bs=1M count=6 2>/dev/null && mkfifo /w/fifo && ln -s /etc/shadow /w/link && md5sum /w/large > /w/large.md5',
    );
    const merged = await c().request(BranchMerge, { from: b, into: a, strategy: 'fail' });
    assert.deepEqual(merged.conflicts, []);
    assert.deepEqual([...merged.setIdStripped].sort(), ['/w/sgid', '/w/suid']);
    assert.equal(await sh(c(), a, 'stat -c "%a %n" /w/suid /w/sgid'), '755 /w/suid\n711 /w/sgid\n');
    assert.equal(await sh(c(), a, 'md5sum /w/large'), await sh(c(), b, 'cat /w/large.md5'));
    assert.equal(await sh(c(), a, 'readlink /w/link; test -e /w/fifo && echo fifo || echo no-fifo'), '/etc/shadow\nno-fifo\n');
  });

  it('reports conflicting edits of the same lines with both sides, and applies nothing with `fail`', async () => {
    const { a, b, all } = await twoBranches(c());
    made.push(...all);
    await sh(c(), a, "sed -i 's/gamma/GAMMA-from-a/' /w/text.txt && echo a-only > /w/new-a.txt");
    await sh(c(), b, "sed -i 's/gamma/gamma-from-b/' /w/text.txt && echo b-only > /w/new-b.txt");
    const before = await tree(c(), a);
    const err = await c().request(BranchMerge, { from: b, into: a, strategy: 'fail' }).then(
      () => assert.fail('a conflicting merge with `fail` must not succeed'),
      (e: ProtocolError) => e,
    );
    assert.equal(err.code, ErrorCodes.MergeConflict);
    const data = err.data as { conflicts: { path: string; detail: string }[]; applied: string[]; aborted: boolean };
    assert.equal(data.aborted, true);
    assert.deepEqual(data.applied, []);
    assert.deepEqual(data.conflicts.map((x) => x.path), ['/w/text.txt']);
    assert.match(data.conflicts[0].detail, /GAMMA-from-a/);
    assert.match(data.conflicts[0].detail, /gamma-from-b/);
    assert.match(data.conflicts[0].detail, /<<<<<<<[\s\S]*=======[\s\S]*>>>>>>>/);
    assert.equal(await tree(c(), a), before, 'nothing may change on `fail`');
  });

  it('treats deleted-versus-modified as a conflict, both ways', async () => {
    const { a, b, all } = await twoBranches(c());
    made.push(...all);
    await sh(c(), a, 'rm /w/keep.txt && echo a-changed >> /w/gone.txt');
    await sh(c(), b, 'echo b-changed >> /w/keep.txt && rm /w/gone.txt');
    const before = await tree(c(), a);
    const err = (await c().request(BranchMerge, { from: b, into: a, strategy: 'fail' }).catch((e: ProtocolError) => e)) as ProtocolError;
    assert.equal(err.code, ErrorCodes.MergeConflict);
    const conflicts = (err.data as { conflicts: { path: string; reason: string }[] }).conflicts;
    assert.deepEqual(conflicts.map((x) => x.path).sort(), ['/w/gone.txt', '/w/keep.txt']);
    assert.match(conflicts.find((x) => x.path === '/w/keep.txt')!.reason, /deleted in the target, changed in the source/);
    assert.match(conflicts.find((x) => x.path === '/w/gone.txt')!.reason, /changed in the target, deleted in the source/);
    assert.equal(await tree(c(), a), before);
  });

  it('resolves conflicts with `ours` (keep the target) or `theirs` (take the source)', async () => {
    const { a, b, all } = await twoBranches(c());
    made.push(...all);
    await sh(c(), a, "sed -i 's/delta/DELTA-a/' /w/text.txt && echo a > /w/keep.txt");
    await sh(c(), b, "sed -i 's/delta/DELTA-b/' /w/text.txt && echo b > /w/keep.txt && echo new > /w/only-b.txt");
    const ours = await c().request(BranchMerge, { from: b, into: a, strategy: 'ours' });
    assert.deepEqual(ours.conflicts.map((x) => x.path).sort(), ['/w/keep.txt', '/w/text.txt']);
    assert.equal(await sh(c(), a, 'grep DELTA /w/text.txt; cat /w/keep.txt /w/only-b.txt'), 'DELTA-a\na\nnew\n');
    const theirs = await c().request(BranchMerge, { from: b, into: a, strategy: 'theirs' });
    assert.equal(theirs.conflicts.length, 2);
    assert.equal(await sh(c(), a, 'grep DELTA /w/text.txt; cat /w/keep.txt'), 'DELTA-b\nb\n');
  });
});

describe('checkpointed and branched modes (real sandboxes)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();

  it('checkpointed: runs from a checkpoint and returns a new one; the old one stays as it was', async () => {
    const first = await c().request(ExecRun, { mode: 'checkpointed', environment: 'python', code: 'open("/root/state", "w").write("1")\nprint("saved")' });
    assert.equal(first.stdout, 'saved\n');
    assert.match(first.checkpointId ?? '', /^snap-/);
    const step = 'n = int(open("/root/state").read()) + 1\nopen("/root/state", "w").write(str(n))\nprint(n)';
    const second = await c().request(ExecRun, { mode: 'checkpointed', checkpointId: first.checkpointId, code: step });
    assert.equal(second.stdout, '2\n');
    const third = await c().request(ExecRun, { mode: 'checkpointed', checkpointId: second.checkpointId, code: step });
    assert.equal(third.stdout, '3\n');
    const again = await c().request(ExecRun, { mode: 'checkpointed', checkpointId: first.checkpointId, code: step });
    assert.equal(again.stdout, '2\n', 'a checkpoint is immutable: running from it again starts from its state');
    await assert.rejects(c().request(ExecRun, { checkpointId: first.checkpointId, code: 'pass' }), /needs mode "checkpointed"/);
  });

  it('branched map: one input per branch, results in input order', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox', files: [{ path: '/root/greeting', content: 'hello' }] });
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    const r = await c().request(ExecBranch, {
      snapshotId: snapshot.id,
      strategy: 'map',
      inputs: ['one', 'two', 'three'],
      command: 'echo "$(cat /root/greeting) $FORKSPACE_INPUT $(cat)"',
    });
    assert.deepEqual(r.results.map((x) => x.stdout), ['hello one one\n', 'hello two two\n', 'hello three three\n']);
    assert.equal(new Set(r.results.map((x) => x.sandboxId)).size, 3);
    assert.equal(r.winner, null);
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });

  it('branched race: the first success wins and the others are stopped', async () => {
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox' });
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: sandbox.id });
    const t0 = Date.now();
    const r = await c().request(ExecBranch, {
      snapshotId: snapshot.id,
      strategy: 'race',
      inputs: ['30', '0.2', '30'],
      command: 'sleep $FORKSPACE_INPUT && echo done $FORKSPACE_INPUT',
    });
    assert.equal(r.winner, 1);
    assert.equal(r.results[1].stdout, 'done 0.2\n');
    assert.equal(r.results[0].signal, 'SIGKILL');
    assert.equal(r.results[2].signal, 'SIGKILL');
    assert.ok(Date.now() - t0 < 15_000, 'the losers were not stopped');
    await c().request(SandboxDestroy, { sandboxId: sandbox.id });
  });
});

describe('copied, stacked layers (the fallback without btrfs)', function () {
  this.timeout(180_000);
  const env = useStack({ env: { FORKSPACE_FS_STORE: 'copy' } });
  const c = () => env.client();

  it('snapshots, branches and flattens a chain deeper than 8 layers', async () => {
    let { sandbox } = await c().request(SandboxCreate, { environment: 'busybox', files: [{ path: '/root/gen', content: '0\n' }] });
    const made = [sandbox.id];
    const snapshots: string[] = [];
    for (let gen = 1; gen <= 10; gen++) {
      await sh(c(), sandbox.id, `echo ${gen} >> /root/gen && rm -f /root/tmp-${gen - 1} && echo x > /root/tmp-${gen}`);
      snapshots.push((await c().request(SnapshotCreate, { sandboxId: sandbox.id })).snapshot.id);
      const next = (await c().request(SnapshotBranch, { snapshotId: snapshots[snapshots.length - 1], count: 1 })).branches[0].sandboxId;
      made.push(next);
      sandbox = { ...sandbox, id: next };
    }
    // Whiteouts survive the stack and its flattening: deleted files stay deleted.
    assert.equal(await sh(c(), sandbox.id, 'cat /root/gen; ls /root'), '0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\ngen\ntmp-10\n');
    const dirs = snapshots.map((id) => path.join(env.stack().config.dataDir, 'layers', 'snapshots', id));
    const flattened = dirs.filter((d) => fs.existsSync(path.join(d, 'flat')));
    assert.equal(flattened.length, 1, 'the chain was flattened once, when it passed 8 layers');
    assert.ok(dirs.indexOf(flattened[0]) === 8, `flattened at generation ${dirs.indexOf(flattened[0]) + 1}, expected 9`);
    for (const id of made) await c().request(SandboxDestroy, { sandboxId: id });
  });
});
