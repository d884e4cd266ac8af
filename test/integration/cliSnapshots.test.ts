// The CLI's sandbox, snapshot and branch commands end to end.
import { strict as assert } from 'node:assert';
import { useStack } from './stack';

describe('forkspace CLI: sandboxes, snapshots, branches (real CRIU)', function () {
  this.timeout(120_000);
  const env = useStack();
  const cli = async (...args: string[]) => {
    const r = await env.stack().cli(args);
    return r;
  };
  const ok = async (...args: string[]) => {
    const r = await cli(...args);
    assert.equal(r.code, 0, `forkspace ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  it('starts, snapshots, branches, diffs, merges, pauses, stops and shows the tree', async () => {
    const id = (await ok('sandbox', 'start', '--env', 'busybox')).trim();
    assert.match(id, /^sbx-[0-9a-f]{12}$/);
    assert.equal(await ok('exec', id, '--', 'sh', '-c', 'echo base > /root/f; cat /root/f'), 'base\n');
    assert.equal((await cli('exec', id, '--', 'sh', '-c', 'exit 3')).code, 3);
    const snapLine = await ok('snapshot', id, '--label', 'first');
    const snap = snapLine.split(' ')[0];
    assert.match(snapLine, /^snap-[0-9a-f]{12} +\(paused [\d.]+ ms, total [\d.]+ ms\)/);
    const restored = (await ok('restore', snap)).split(' ')[0];
    assert.equal(await ok('exec', restored, '--', 'cat', '/root/f'), 'base\n');
    const branchOut = await ok('branch', snap, '-n', '2');
    const [a, b] = branchOut.trim().split('\n').slice(0, 2).map((l) => l.split(' ')[0]);
    assert.match(branchOut, /2 branch\(es\) of snap-\w+ running in [\d.]+ ms/);
    await ok('exec', a, '--', 'sh', '-c', 'echo from-a > /root/a');
    await ok('exec', b, '--', 'sh', '-c', 'echo from-b > /root/b; echo changed > /root/f');
    const diff = await ok('diff', a, b);
    assert.match(diff, new RegExp(`base ${snap}`));
    assert.match(diff, /A:added +B:unchanged +\/root\/a/);
    assert.match(diff, /A:unchanged +B:modified +\/root\/f/);
    assert.match(await ok('merge', b, a), /merged 2 path\(s\)/);
    assert.equal(await ok('exec', a, '--', 'cat', '/root/a', '/root/b', '/root/f'), 'from-a\nfrom-b\nchanged\n');
    await ok('exec', a, '--', 'sh', '-c', 'echo a-side > /root/f');
    await ok('exec', b, '--', 'sh', '-c', 'echo b-side > /root/f');
    const conflict = await cli('merge', b, a);
    assert.equal(conflict.code, 1);
    assert.match(conflict.stdout, /conflict \/root\/f/);
    assert.match(await ok('pause', a), /paused/);
    assert.match(await ok('resume', a), /running/);
    assert.match(await ok('stop', b), /stopped at snap-/);
    assert.match(await ok('sandbox', 'start', b), new RegExp(`${b} started from snap-`));
    const tree = await ok('tree');
    assert.match(tree, /^busybox$/m);
    assert.match(tree, new RegExp(`└─ ${id} \\(running\\)`));
    assert.match(tree, new RegExp(`${snap} "first"`));
    for (const x of [a, b, restored]) assert.ok(tree.includes(x), `the tree lacks ${x}`);
    assert.match(await ok('snapshots'), new RegExp(`${snap} +of ${id}`));
    assert.match(await ok('sandbox', 'ls'), new RegExp(`${a} +running`));
    for (const x of [id, a, b, restored]) assert.match(await ok('destroy', x), /destroyed/);
    await ok('snapshot', 'rm', snap);
    const missing = await cli('restore', snap);
    assert.equal(missing.code, 125);
    assert.match(missing.stderr, /no snapshot/);
  });

  it('manages instances and lifecycle policies', async () => {
    const id = (await ok('instance', 'start', '--env', 'busybox', '--idle-timeout', '10m', '--on-expiry', 'pause')).trim();
    assert.match(id, /^sbx-/);
    assert.match(await ok('instance', 'ls'), new RegExp(`${id}  running .*idle 600s, then pause`));
    assert.match(await ok('instance', 'stop', id), new RegExp(`${id} stopped at snap-`));
    assert.match(await ok('instance', 'resume', id), new RegExp(`${id} running`));
    assert.match(await ok('policy', id, '--ttl', '1h', '--idle-timeout', 'none'), /"ttlMs":3600000,"idleTimeoutMs":null/);
    // CLI-made sandboxes are detached (the CLI exits at once), unless asked otherwise.
    const sbx = (await ok('sandbox', 'start', '--env', 'busybox', '--ttl', '30s')).trim();
    assert.match(await ok('sandbox', 'ls'), new RegExp(`${sbx}  running .*\\(ttl 30s\\)`));
    const bad = await cli('sandbox', 'start', '--env', 'busybox', '--on-expiry', 'explode');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--on-expiry is one of/);
    assert.match(await ok('instance', 'rm', id), /destroyed/);
    await ok('destroy', sbx);
  });
});
