// The extension's pure parts: tree items and their contextValue, command arguments, language → environment,
// and where the agent is.
import { strict as assert } from 'node:assert';
import type { Sandbox, Snapshot, TreeNode } from '../../agent/src/protocol';
import { agentSocketPath, CACHED_NODE, diagnose, nodeForAgent } from '../../extension/agent/agentLocation';
import { parseCount, parseExposureName, parsePort, sandboxIdOf, snapshotIdOf } from '../../extension/commands/args';
import { runnableFor } from '../../extension/model/languages';
import { contextValueOf, itemFor, lifetimeOf, presence, walk } from '../../extension/model/treeItems';

const NOW = 1_800_000_000_000;
const policy = { ttlMs: null, idleTimeoutMs: null, onExpiry: 'snapshot-then-stop' as const, instance: false, detached: true };
const spec = { argv: ['/bin/sh'], env: {}, cwd: null, memoryBytes: 256 << 20, cpus: null, pids: null, diskBytes: 10 * 1024 ** 3 };
const sandbox = (id: string, state: Sandbox['state'], extra: Partial<Sandbox> = {}): Sandbox => ({
  id,
  environment: 'python:3.11',
  state,
  originSnapshot: null,
  lastSnapshot: null,
  spec,
  labels: {},
  exitCode: state === 'exited' ? 3 : null,
  createdAtMs: NOW - 90_000,
  updatedAtMs: NOW,
  policy,
  ...extra,
});
const snapshot: Snapshot = { id: 'snap-1', sandboxId: 'sbx-a', parentSnapshot: null, environment: 'python:3.11', label: 'before', memoryBytes: 5 << 20, fsBytes: 2048, createdAtMs: NOW - 30_000 };
const node = (s: Sandbox, children: TreeNode[] = []): TreeNode => ({ kind: 'sandbox', id: s.id, sandbox: s, children });

describe('extension: branch tree items', () => {
  it('gives each sandbox state its own contextValue, so menus fit the state', () => {
    const states: Sandbox['state'][] = ['running', 'paused', 'stopped', 'exited', 'failed', 'destroyed'];
    assert.deepEqual(
      states.map((st) => contextValueOf(node(sandbox('sbx-a', st)))),
      ['runningSandbox', 'pausedSandbox', 'stoppedSandbox', 'exitedSandbox', 'failedSandbox', 'destroyedSandbox'],
    );
    assert.equal(contextValueOf({ kind: 'snapshot', id: 'snap-1', snapshot, children: [] }), 'snapshot');
    assert.equal(contextValueOf({ kind: 'environment', id: 'python:3.11', children: [] }), 'environment');
  });

  it('labels, describes and explains sandboxes and snapshots', () => {
    const running = itemFor(node(sandbox('sbx-a', 'running', { policy: { ...policy, ttlMs: 3_600_000, instance: true } })), NOW);
    assert.equal(running.label, 'sbx-a');
    assert.equal(running.description, 'running · 2m ago · instance · ttl 60m');
    assert.equal(running.icon.id, 'vm-running');
    assert.match(running.tooltip, /memory limit: 256 MB/);
    assert.match(running.tooltip, /lifecycle: instance, ttl 60m, then snapshot-then-stop/);
    assert.equal(itemFor(node(sandbox('sbx-b', 'exited')), NOW).description.split(' · ')[0], 'exited (3)');
    const snap = itemFor({ kind: 'snapshot', id: 'snap-1', snapshot, children: [node(sandbox('sbx-c', 'paused'))] }, NOW);
    assert.equal(snap.label, 'snap-1 "before"');
    assert.equal(snap.description, '30s ago · 5 MB memory · 2 KB files');
    assert.equal(snap.hasChildren, true);
    assert.equal(snap.expanded, true);
  });

  it('walks the whole tree and shows an instance\'s remaining TTL', () => {
    const tree: TreeNode[] = [{ kind: 'environment', id: 'python:3.11', children: [node(sandbox('sbx-a', 'running'), [{ kind: 'snapshot', id: 'snap-1', snapshot, children: [node(sandbox('sbx-b', 'paused'))] }])] }];
    assert.deepEqual([...walk(tree)].map((n) => n.id), ['python:3.11', 'sbx-a', 'snap-1', 'sbx-b']);
    const inst = sandbox('sbx-i', 'running', { createdAtMs: NOW - 60_000, policy: { ...policy, ttlMs: 600_000, idleTimeoutMs: 120_000, instance: true } });
    assert.equal(lifetimeOf(inst, NOW), 'running · 9m left · idle timeout 2m · then snapshot-then-stop');
    assert.equal(lifetimeOf(sandbox('sbx-s', 'stopped'), NOW), 'stopped');
  });
});

describe('extension: command arguments', () => {
  it('takes ids from tree nodes, strings and objects, and nothing from anything else', () => {
    const n = { node: node(sandbox('sbx-a', 'running')) };
    assert.equal(sandboxIdOf(n), 'sbx-a');
    assert.equal(sandboxIdOf('sbx-b'), 'sbx-b');
    assert.equal(sandboxIdOf({ sandboxId: 'sbx-c' }), 'sbx-c');
    assert.equal(sandboxIdOf(undefined), undefined);
    assert.equal(sandboxIdOf('snap-1'), undefined);
    assert.equal(sandboxIdOf({ node: { kind: 'snapshot', id: 'snap-1', children: [] } }), undefined);
    assert.equal(snapshotIdOf({ node: { kind: 'snapshot', id: 'snap-1', children: [] } }), 'snap-1');
    assert.equal(snapshotIdOf('snap-2'), 'snap-2');
    assert.equal(snapshotIdOf(n), undefined);
  });

  it('validates counts, ports and exposure names as typed', () => {
    assert.equal(parseCount(' 4 '), 4);
    for (const bad of ['0', '65', '2.5', 'x', '']) assert.equal(typeof parseCount(bad), 'string', bad);
    assert.equal(parsePort('8000'), 8000);
    for (const bad of ['0', '70000', 'http']) assert.equal(typeof parsePort(bad), 'string', bad);
    assert.equal(parseExposureName('web-1'), 'web-1');
    assert.deepEqual(typeof parseExposureName('Web_1'), 'object');
  });

  it('picks the environment for a language', () => {
    assert.deepEqual(runnableFor('python', 'print(1)', 'python:3.13'), { environment: 'python:3.13', code: 'print(1)' });
    assert.deepEqual(runnableFor('python', 'print(1)', 'busybox'), { environment: 'python', code: 'print(1)' });
    assert.deepEqual(runnableFor('shellscript', 'echo hi', 'busybox'), { environment: 'busybox', code: 'echo hi' });
    assert.deepEqual(runnableFor('shellscript', 'echo hi', 'python'), { environment: 'python', command: ['/bin/sh', '-c', 'echo hi'] });
    const js = runnableFor('javascript', 'x', 'python');
    assert.ok('error' in js && /cannot run javascript/.test(js.error));
  });
});

describe('extension: finding and starting the agent', () => {
  it('resolves the socket from the setting, then the environment, then the default', () => {
    assert.equal(agentSocketPath({ socket: '/s' }, { FORKSPACE_AGENT_SOCKET: '/e' }), '/s');
    assert.equal(agentSocketPath({}, { FORKSPACE_AGENT_SOCKET: '/e' }), '/e');
    assert.equal(agentSocketPath({}, { FORKSPACE_RUN_DIR: '/tmp/r' }), '/tmp/r/agent.sock');
    assert.equal(agentSocketPath({}, {}), '/run/forkspace/agent.sock');
  });

  it('runs the agent on a Node >= 22 and never on Electron', () => {
    const host = (version: string, electron = false) => ({ execPath: '/host/node', version, electron });
    const none = () => false;
    assert.equal(nodeForAgent({ nodePath: '/mine' }, {}, host('v20.1.0'), none), '/mine');
    assert.equal(nodeForAgent({}, { FORKSPACE_NODE: '/env' }, host('v20.1.0'), none), '/env');
    assert.equal(nodeForAgent({}, {}, host('v24.21.0'), none), '/host/node');
    assert.equal(nodeForAgent({}, {}, host('v22.0.0', true), none), undefined);
    assert.equal(nodeForAgent({}, {}, host('v20.20.2'), (p) => p === CACHED_NODE), CACHED_NODE);
  });

  it('turns runtime failures into a message and a fix', () => {
    assert.equal(diagnose('forkspace-rt needs root (the runtime needs root for namespaces)').fix, 'sudo forkspace agent start');
    assert.equal(diagnose('criu 3.17 is too old').fix, 'sudo scripts/setup.sh');
    assert.equal(diagnose('something odd').fix, undefined);
  });
});

describe('extension: which side of a diff has the file', () => {
  it('a side that did not touch a file has it unless the other side added it', () => {
    assert.deepEqual(presence({ a: 'modified', b: 'unchanged' }), { a: true, b: true });
    assert.deepEqual(presence({ a: 'unchanged', b: 'added' }), { a: false, b: true });
    assert.deepEqual(presence({ a: 'added', b: 'added' }), { a: true, b: true });
    assert.deepEqual(presence({ a: 'deleted', b: 'unchanged' }), { a: false, b: true });
    assert.deepEqual(presence({ a: 'deleted', b: 'modified' }), { a: false, b: true });
  });
});
