// The command table against package.json, and commands run with a fake agent (the seam: the real agent is
// exercised by the real-editor suite, test/editor/).
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { SandboxList, SandboxPause, SandboxDestroy, SnapshotBranch, type RequestType } from '../../agent/src/protocol';
import { COMMANDS, registerCommands } from '../../extension/commands/registerCommands';
import type { Services } from '../../extension/commands/services';
import { contextValueOf } from '../../extension/model/treeItems';
import { answers, shown } from './vscode-stub';

const ROOT = path.resolve(__dirname, '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const nls = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.nls.json'), 'utf8'));

/** An agent that answers from a table and records what it was asked. */
function fakeAgent(answersByMethod: Record<string, unknown>) {
  const calls: { method: string; params: unknown }[] = [];
  return {
    calls,
    output: { appendLine: () => {} },
    async request(type: RequestType<unknown, unknown, unknown>, params: unknown) {
      calls.push({ method: type.method, params });
      if (!(type.method in answersByMethod)) throw new Error(`unexpected ${type.method}`);
      return answersByMethod[type.method];
    },
  };
}

function services(agent: ReturnType<typeof fakeAgent>): Services {
  const view = { refreshSoon: () => {}, refresh: () => {}, reveal: async () => {} };
  return { agent, branches: view, instances: view, runs: [], shells: [], lastError: undefined, context: {} } as unknown as Services;
}

describe('extension commands (vscode stub)', () => {
  it('registers exactly the commands package.json contributes, each with a title and category', () => {
    const contributed = pkg.contributes.commands.map((c: { command: string }) => c.command).sort();
    assert.deepEqual(COMMANDS.map((c) => c.id).sort(), contributed);
    for (const c of COMMANDS) assert.match(c.id, /^forkspace\.[a-z]+\.[a-zA-Z]+$/);
    for (const c of pkg.contributes.commands) {
      assert.ok(nls[c.title.slice(1, -1)], `no string for ${c.title}`);
      assert.equal(c.category, '%forkspace.category%');
    }
  });

  it('menus name only contributed commands and contextValues the tree produces', () => {
    const ids = new Set(COMMANDS.map((c) => c.id));
    const producible = new Set<string>(
      (['running', 'paused', 'stopped', 'exited', 'failed', 'destroyed'] as const).map((state) =>
        contextValueOf({ kind: 'sandbox', id: 'x', sandbox: { state } as never, children: [] }),
      ),
    );
    producible.add('snapshot');
    for (const [menu, items] of Object.entries(pkg.contributes.menus as Record<string, { command: string; when?: string }[]>)) {
      for (const item of items) {
        assert.ok(ids.has(item.command), `${menu} names unknown ${item.command}`);
        for (const m of (item.when ?? '').matchAll(/viewItem == (\w+)/g)) assert.ok(producible.has(m[1]), `${menu}: ${m[1]} is never a contextValue`);
      }
    }
    const text = JSON.stringify(pkg);
    for (const m of text.matchAll(/%([\w.]+)%/g)) assert.ok(nls[m[1]], `package.nls.json lacks ${m[1]}`);
  });

  it('acts on the tree node it is given, without asking', async () => {
    const agent = fakeAgent({ 'sandbox/pause': { sandboxId: 'sbx-a', state: 'paused' } });
    const ctx = { subscriptions: [] as { dispose(): void }[] };
    registerCommands(ctx as never, services(agent));
    const r = await vscode.commands.executeCommand('forkspace.sandbox.pause', { node: { kind: 'sandbox', id: 'sbx-a', children: [] } });
    assert.deepEqual(r, { sandboxId: 'sbx-a', state: 'paused' });
    assert.deepEqual(agent.calls, [{ method: SandboxPause.method, params: { sandboxId: 'sbx-a' } }]);
    ctx.subscriptions.forEach((d) => d.dispose());
  });

  it('asks with a QuickPick of sandboxes in the right state when run from the palette', async () => {
    const sandboxes = [
      { id: 'sbx-run', state: 'running', environment: 'busybox', createdAtMs: 2 },
      { id: 'sbx-paused', state: 'paused', environment: 'busybox', createdAtMs: 1 },
    ];
    const agent = fakeAgent({ 'sandbox/list': { sandboxes }, 'sandbox/pause': { sandboxId: 'sbx-run', state: 'paused' } });
    const ctx = { subscriptions: [] as { dispose(): void }[] };
    registerCommands(ctx as never, services(agent));
    let offered: string[] = [];
    answers.quickPick = (items) => {
      offered = items.map((i: { label: string }) => i.label);
      return items[0];
    };
    await vscode.commands.executeCommand('forkspace.sandbox.pause');
    assert.deepEqual(offered, ['sbx-run'], 'only running sandboxes can be paused');
    assert.deepEqual(agent.calls.map((c) => c.method), [SandboxList.method, SandboxPause.method]);
    answers.quickPick = () => undefined; // Escape: nothing happens
    agent.calls.length = 0;
    assert.equal(await vscode.commands.executeCommand('forkspace.sandbox.pause'), undefined);
    assert.deepEqual(agent.calls.map((c) => c.method), [SandboxList.method]);
    ctx.subscriptions.forEach((d) => d.dispose());
  });

  it('confirms deletes (a modal), branches with a validated count, and shows failures', async () => {
    const agent = fakeAgent({
      'sandbox/destroy': { sandboxId: 'sbx-a', state: 'destroyed' },
      'snapshot/branch': { snapshotId: 'snap-1', branches: [{ sandboxId: 'sbx-b' }, { sandboxId: 'sbx-c' }], totalMs: 9 },
    });
    const s = services(agent);
    const ctx = { subscriptions: [] as { dispose(): void }[] };
    registerCommands(ctx as never, s);
    answers.warning = undefined; // the user dismissed the modal
    assert.equal(await vscode.commands.executeCommand('forkspace.sandbox.delete', 'sbx-a'), undefined);
    assert.equal(agent.calls.length, 0);
    assert.match(shown.warning.at(-1) ?? '', /Delete sandbox sbx-a\?/);
    answers.warning = 'Delete';
    await vscode.commands.executeCommand('forkspace.sandbox.delete', 'sbx-a');
    assert.deepEqual(agent.calls.at(-1), { method: SandboxDestroy.method, params: { sandboxId: 'sbx-a' } });

    answers.inputBox = '2';
    assert.deepEqual(await vscode.commands.executeCommand('forkspace.snapshot.branch', { node: { kind: 'snapshot', id: 'snap-1', children: [] } }), ['sbx-b', 'sbx-c']);
    assert.deepEqual(agent.calls.at(-1), { method: SnapshotBranch.method, params: { snapshotId: 'snap-1', count: 2, detached: true } });

    assert.equal(await vscode.commands.executeCommand('forkspace.sandbox.resume', 'sbx-zzz'), undefined);
    assert.match(s.lastError ?? '', /unexpected sandbox\/resume/);
    assert.match(shown.error.at(-1) ?? '', /^Forkspace: /);
    ctx.subscriptions.forEach((d) => d.dispose());
  });
});
