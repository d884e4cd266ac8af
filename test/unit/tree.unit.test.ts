import { strict as assert } from 'node:assert';
import { buildTree } from '../../agent/src/core/sandboxes';
import { renderTree } from '../../agent/src/cli/format';
import type { Sandbox, Snapshot } from '../../agent/src/protocol';

const spec = { argv: ['sh'], env: {}, cwd: null, memoryBytes: null, cpus: null, pids: null, diskBytes: null };
const sandbox = (id: string, state: Sandbox['state'], originSnapshot: string | null = null): Sandbox => ({
  id,
  environment: 'busybox',
  state,
  originSnapshot,
  lastSnapshot: null,
  spec,
  labels: {},
  exitCode: state === 'exited' ? 0 : null,
  createdAtMs: 0,
  updatedAtMs: 0,
  policy: { ttlMs: null, idleTimeoutMs: null, onExpiry: 'snapshot-then-stop', instance: false, detached: true },
});
const snapshot = (id: string, sandboxId: string): Snapshot => ({
  id,
  sandboxId,
  parentSnapshot: null,
  environment: 'busybox',
  label: null,
  memoryBytes: 1024,
  fsBytes: 0,
  createdAtMs: Date.now(),
});

describe('branch tree', () => {
  it('nests environment → sandbox → snapshot → branches, and hides destroyed leaves', () => {
    const roots = buildTree(
      [sandbox('sbx-a', 'running'), sandbox('sbx-b', 'paused', 'snap-1'), sandbox('sbx-c', 'exited', 'snap-1'), sandbox('sbx-d', 'destroyed', 'snap-1'), sandbox('sbx-e', 'destroyed')],
      [snapshot('snap-1', 'sbx-a'), snapshot('snap-2', 'sbx-b')],
      false,
    );
    assert.equal(roots.length, 1);
    assert.equal(roots[0].id, 'busybox');
    assert.deepEqual(roots[0].children.map((n) => n.id), ['sbx-a']);
    const snap1 = roots[0].children[0].children[0];
    assert.equal(snap1.id, 'snap-1');
    assert.deepEqual(snap1.children.map((n) => n.id), ['sbx-b', 'sbx-c']);
    assert.deepEqual(snap1.children[0].children.map((n) => n.id), ['snap-2']);
    const text = renderTree(roots);
    assert.match(text, /^busybox\n└─ sbx-a \(running\)\n   └─ snap-1 1 KiB, \d+s ago\n      ├─ sbx-b \(paused\)\n      │  └─ snap-2/);
    assert.match(text, /└─ sbx-c \(exited 0\)/);
    const all = buildTree([sandbox('sbx-e', 'destroyed')], [], true);
    assert.equal(all[0].children[0].id, 'sbx-e');
  });

  it('keeps a destroyed sandbox whose snapshots still exist, so their branches stay reachable', () => {
    const roots = buildTree([sandbox('sbx-gone', 'destroyed'), sandbox('sbx-kid', 'running', 'snap-x')], [snapshot('snap-x', 'sbx-gone')], false);
    assert.equal(roots[0].children[0].id, 'sbx-gone');
    assert.equal(roots[0].children[0].children[0].children[0].id, 'sbx-kid');
  });
});
