// Every command of the extension, run inside a real VS Code extension host (code-server) against the
// real agent and runtime that the extension itself starts (the runner gives it a private data dir,
// sockets and cgroup parent through FORKSPACE_* variables). Tests tagged @smoke also run on the oldest
// supported VS Code.
import { strict as assert } from 'node:assert';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import * as vscode from 'vscode';
import { ErrorCodes, FilesWrite, InstanceDestroy, InstanceStart, type ProtocolError, SandboxCreate, SandboxGet, SandboxList } from '../../../agent/src/protocol';

interface MergeResult {
  applied: string[];
  conflicts: { path: string }[];
}
import type { ForkspaceApi } from '../../../extension/extension';
import type { RunTerminal } from '../../../extension/terminal/runTerminal';
import type { SandboxTerminal } from '../../../extension/terminal/sandboxTerminal';
import { agentToken, eventually, forkspace, treeItem, treeNode, workspaceDir, writeWorkspaceFile } from './helpers';

const exec = promisify(execFile);
const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '..', '..', '..', 'package.json'), 'utf8'));

let api: ForkspaceApi;
const made: string[] = [];

/** Runs a command the way a menu or keybinding does. */
function run<T>(id: string, ...args: unknown[]): Promise<T> {
  return vscode.commands.executeCommand<T>(id, ...args) as Promise<T>;
}

async function state(sandboxId: string): Promise<string> {
  return (await api.services.agent.request(SandboxGet, { sandboxId })).sandbox.state;
}

async function writeFile(sandboxId: string, file: string, text: string): Promise<void> {
  await api.services.agent.request(FilesWrite, { sandboxId, path: file, content: text });
}

async function readSandboxFile(id: string, file: string): Promise<string> {
  const bytes = await vscode.workspace.fs.readFile(vscode.Uri.from({ scheme: 'forkspace', path: `/${id}${file}` }));
  return Buffer.from(bytes).toString('utf8');
}

describe('Forkspace in a real VS Code', function () {
  before(async () => {
    api = await forkspace();
  });

  after(async () => {
    // Sandboxes the commands made; the runner then stops the agent and checks nothing is left.
    for (const id of made) await run('forkspace.sandbox.delete', id, { confirmed: true }).catch(() => {});
  });

  it('@smoke activates, starts the bundled agent and runtime, and reports them connected', async () => {
    await eventually(() => api.services.agent.state.kind === 'connected' || (api.services.agent.state.kind === 'error' && api.services.agent.state), 'the agent connection', 60_000);
    assert.equal(api.services.agent.state.kind, 'connected', JSON.stringify(api.services.agent.state));
    const st = await run<{ runtime: { connected: boolean }; version: string }>('forkspace.agent.showStatus');
    assert.equal(st.runtime.connected, true, 'the runtime is connected');
    assert.equal(api.services.agent.state.kind === 'connected' && api.services.agent.state.runtimeError, undefined);
  });

  it('shows the agent\'s and runtime\'s logs in the Forkspace output channel', async () => {
    await eventually(() => api.agentLog.recent().some((l) => /^\[agent\] .*forkspace-agent: ready \(pid \d+/.test(l)), 'the agent\'s start in the channel');
    await eventually(() => api.agentLog.recent().some((l) => /^\[runtime\] .*forkspace-rt: serving on/.test(l)), 'the runtime\'s start in the channel');
  });

  it('@smoke registers every contributed command', async () => {
    const registered = new Set(await vscode.commands.getCommands(true));
    for (const c of pkg.contributes.commands as { command: string }[]) assert.ok(registered.has(c.command), `${c.command} is not registered`);
  });

  it('@smoke Run Current File runs a Python file and streams its output into a terminal', async () => {
    // One write per line (unbuffered print writes each argument apart, and stderr is another pipe, so
    // `print("a", 42)` could arrive with stderr between its pieces).
    const uri = writeWorkspaceFile('hello.py', 'import sys\nprint(f"hello from {6 * 7}")\nprint("to stderr", file=sys.stderr)\n');
    await vscode.window.showTextDocument(uri);
    const pty = await run<RunTerminal>('forkspace.file.run');
    const r = await pty.result;
    assert.equal(r?.exitCode, 0, pty.text);
    assert.match(pty.text, /hello from 42/);
    assert.match(pty.text, /to stderr/);
    assert.match(pty.text, /\[exit code 0, \d+ ms\]/);
    assert.ok(vscode.window.terminals.some((t) => t.name === 'Forkspace: hello.py'), 'a terminal named after the run');
  });

  it('Run Selection runs only the selected code', async () => {
    const uri = writeWorkspaceFile('select.py', 'print("not this")\nprint("only", "this")\n');
    const editor = await vscode.window.showTextDocument(uri);
    editor.selection = new vscode.Selection(1, 0, 1, 21);
    const pty = await run<RunTerminal>('forkspace.selection.run');
    const r = await pty.result;
    assert.equal(r?.exitCode, 0);
    assert.match(pty.text, /only this/);
    assert.doesNotMatch(pty.text, /not this/);
  });

  it('Run Command… reports the exit code, and stderr arrives coloured', async () => {
    const pty = await run<RunTerminal>('forkspace.command.run', 'echo out; echo err >&2; exit 3', 'busybox');
    const r = await pty.result;
    assert.equal(r?.exitCode, 3);
    // stdout and stderr are two pipes: each line arrives whole, in either order.
    assert.match(pty.text, /^out$/m);
    assert.match(pty.text, /^err$/m);
    assert.match(pty.text, /\[exit code 3/);
  });

  it('Ctrl-C in a run terminal cancels the run and removes its sandbox', async () => {
    const pty = await run<RunTerminal>('forkspace.command.run', 'echo started; sleep 60', 'busybox');
    await eventually(() => pty.text.includes('started') && pty.sandboxId, 'the run to start');
    const terminal = vscode.window.terminals.find((t) => t.name === 'Forkspace: echo started; sleep 60');
    assert.ok(terminal, 'the run has a terminal');
    terminal.sendText('\x03', false); // what typing Ctrl-C in it sends
    assert.equal(await pty.result, undefined);
    assert.match(pty.text, /\[cancelled\]/);
    const id = pty.sandboxId!;
    await eventually(async () => {
      const { sandboxes } = await api.services.agent.request(SandboxList, {});
      const s = sandboxes.find((x) => x.id === id);
      return !s || s.state === 'destroyed';
    }, `the cancelled run's sandbox ${id} to go`);
  });

  it('Run Checkpointed runs a file and checkpoints the result into the tree', async () => {
    const uri = writeWorkspaceFile('counter.py', 'open("/root/state", "w").write("7")\nprint("checkpointed run")\n');
    const pty = await run<RunTerminal>('forkspace.file.runCheckpointed', uri);
    const r = await pty.result;
    assert.equal(r?.exitCode, 0, pty.text);
    assert.match(r?.checkpointId ?? '', /^snap-/);
    assert.match(pty.text, new RegExp(`checkpoint ${r!.checkpointId}`));
    const node = await eventually(() => treeNode(api, r!.checkpointId!), 'the checkpoint in the tree');
    assert.equal(node.kind, 'snapshot');
  });

  describe('a sandbox, its snapshot and three branches', () => {
    let sbx: string;
    let snap: string;
    let branches: string[];

    it('@smoke Start Sandbox starts one, shown running in the tree', async () => {
      sbx = await run<string>('forkspace.sandbox.start', 'python');
      made.push(sbx);
      assert.match(sbx, /^sbx-/);
      const item = await eventually(() => treeItem(api, sbx), 'the sandbox in the tree');
      assert.equal(item.contextValue, 'runningSandbox');
      assert.match(String(item.description), /^running/);
      assert.equal(item.label, sbx);
    });

    it('Upload and Download move files in and out, byte for byte', async () => {
      const local = writeWorkspaceFile('upload.bin', '');
      const data = Buffer.alloc(300_000);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
      fs.writeFileSync(local.fsPath, data);
      assert.equal(await run('forkspace.file.upload', sbx, local, '/root/upload.bin'), '/root/upload.bin');
      const back = vscode.Uri.file(path.join(workspaceDir(), 'download.bin'));
      await run('forkspace.file.download', sbx, '/root/upload.bin', back);
      assert.ok(fs.readFileSync(back.fsPath).equals(data), 'the download equals the upload');
    });

    it('Checkpoint puts the snapshot under its sandbox', async () => {
      await writeFile(sbx, '/root/shared.txt', 'line 1\nline 2\nline 3\n');
      snap = await run<string>('forkspace.sandbox.checkpoint', sbx, 'e2e');
      assert.match(snap, /^snap-/);
      const parent = await eventually(async () => {
        const n = await treeNode(api, sbx);
        return n?.children.some((c) => c.id === snap) && n;
      }, 'the snapshot under its sandbox');
      assert.equal(parent.children.find((c) => c.id === snap)?.kind, 'snapshot');
      const item = await treeItem(api, snap);
      assert.equal(item?.contextValue, 'snapshot');
      assert.match(String(item?.label), /"e2e"/);
    });

    it('Branch Snapshot… into 3 shows 3 running branch nodes under the snapshot, the first revealed', async () => {
      await vscode.commands.executeCommand('workbench.view.extension.forkspace');
      branches = await run<string[]>('forkspace.snapshot.branch', snap, 3);
      made.push(...branches);
      assert.equal(branches.length, 3);
      const node = await eventually(async () => {
        const n = await treeNode(api, snap);
        return n && n.children.length === 3 && n;
      }, '3 branches under the snapshot');
      assert.deepEqual(node.children.map((c) => c.id).sort(), [...branches].sort());
      for (const b of branches) assert.equal((await treeItem(api, b))?.contextValue, 'runningSandbox');
      await eventually(() => api.services.branches.selected()[0] === branches[0], 'the first branch to be revealed and selected');
    });

    it('Diff Branches opens the diff editor on what the branches changed', async () => {
      const [a, b] = branches;
      await writeFile(a, '/root/shared.txt', 'line 1\nline 2 from A\nline 3\n');
      await writeFile(b, '/root/only-b.txt', 'made in B\n');
      const diffTab = async (file: string) => {
        const tab = await eventually(() => {
          const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
          return input instanceof vscode.TabInputTextDiff && input.original.path.endsWith(file) && input;
        }, `a diff editor on ${file}`);
        assert.equal(tab.original.scheme, 'forkspace');
        assert.equal(tab.original.path.split('/')[1], a);
        assert.equal(tab.modified.path.split('/')[1], b);
        return [(await vscode.workspace.openTextDocument(tab.original)).getText(), (await vscode.workspace.openTextDocument(tab.modified)).getText()];
      };
      const d = await run<{ changes: { path: string; a: string; b: string }[] }>('forkspace.branch.diff', a, b, '/root/shared.txt');
      assert.deepEqual(
        d.changes.filter((c) => c.a !== 'unchanged' || c.b !== 'unchanged').map((c) => c.path).sort(),
        ['/root/only-b.txt', '/root/shared.txt'],
      );
      assert.deepEqual(await diffTab('/root/shared.txt'), ['line 1\nline 2 from A\nline 3\n', 'line 1\nline 2\nline 3\n']);
      // A file only one side has: the other side shows empty.
      await run('forkspace.branch.diff', a, b, '/root/only-b.txt');
      assert.deepEqual(await diffTab('/root/only-b.txt'), ['', 'made in B\n']);
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    it('Merge Branch Into… applies disjoint changes and reports conflicts without applying them', async () => {
      const [a, b, c] = branches;
      const m = await run<MergeResult>('forkspace.branch.merge', b, a, 'fail');
      assert.deepEqual(m.applied, ['/root/only-b.txt']);
      assert.equal(await readSandboxFile(a, '/root/only-b.txt'), 'made in B\n');
      // c changes the same line as a: a conflict, nothing applied.
      await writeFile(c, '/root/shared.txt', 'line 1\nline 2 from C\nline 3\n');
      const conflict = await run<{ conflicts: { path: string }[] }>('forkspace.branch.merge', c, a, 'fail');
      assert.deepEqual(conflict.conflicts.map((x) => x.path), ['/root/shared.txt']);
      assert.equal(await readSandboxFile(a, '/root/shared.txt'), 'line 1\nline 2 from A\nline 3\n');
      const theirs = await run<MergeResult>('forkspace.branch.merge', c, a, 'theirs');
      assert.ok(theirs.applied.includes('/root/shared.txt'));
      assert.equal(await readSandboxFile(a, '/root/shared.txt'), 'line 1\nline 2 from C\nline 3\n');
    });

    it('Pause and Resume freeze and thaw a branch; its menu context follows', async () => {
      const [a] = branches;
      await run('forkspace.sandbox.pause', a);
      assert.equal(await state(a), 'paused');
      assert.equal((await eventually(async () => (await treeItem(api, a))?.contextValue === 'pausedSandbox' && true, 'pausedSandbox in the tree')), true);
      await run('forkspace.sandbox.resume', a);
      assert.equal(await state(a), 'running');
      assert.equal((await treeItem(api, a))?.contextValue, 'runningSandbox');
    });

    it('Open Terminal in Sandbox gives an interactive shell with resize', async () => {
      const [a] = branches;
      const pty = await run<SandboxTerminal>('forkspace.terminal.open', a);
      await pty.opened;
      const terminal = await eventually(() => vscode.window.terminals.find((t) => t.name === `Forkspace: ${a}`), 'the sandbox terminal');
      terminal.sendText('echo term-$((6*7)); hostname');
      await eventually(() => pty.text.includes('term-42'), 'the shell to answer', 20_000);
      await eventually(() => pty.text.includes(a), 'the branch hostname', 5_000);
      pty.setDimensions({ columns: 101, rows: 33 });
      await eventually(() => {
        terminal.sendText('stty size');
        return new Promise<boolean>((r) => setTimeout(() => r(pty.text.includes('33 101')), 500));
      }, 'stty to see the new size', 20_000);
      terminal.dispose();
    });

    it('Stop ends a branch at a snapshot and Start brings it back', async () => {
      const [, , c] = branches;
      await run('forkspace.sandbox.stop', c);
      assert.equal(await state(c), 'stopped');
      assert.equal((await treeItem(api, c))?.contextValue, 'stoppedSandbox');
      assert.equal(await run('forkspace.sandbox.start', c), c);
      assert.equal(await state(c), 'running');
      assert.equal(await readSandboxFile(c, '/root/shared.txt'), 'line 1\nline 2 from C\nline 3\n');
    });

    it('Restore Snapshot makes one more running sandbox from it', async () => {
      const id = await run<string>('forkspace.snapshot.restore', snap);
      made.push(id);
      assert.equal(await state(id), 'running');
      assert.equal(await readSandboxFile(id, '/root/shared.txt'), 'line 1\nline 2\nline 3\n');
    });

    it('Delete removes a sandbox (confirmed) and a snapshot', async () => {
      const [, b] = branches;
      assert.equal(await run('forkspace.sandbox.delete', b, { confirmed: true }).then((r) => (r as { state: string }).state), 'destroyed');
      await eventually(async () => !(await treeNode(api, b)) || (await treeItem(api, b))?.contextValue === 'destroyedSandbox', 'the deleted sandbox to leave the live tree');
      const extra = await run<string>('forkspace.sandbox.checkpoint', branches[0], null);
      const r = await run<{ deleted: boolean }>('forkspace.snapshot.delete', extra, { confirmed: true });
      assert.equal(r.deleted, true);
      await eventually(async () => !(await treeNode(api, extra)), 'the deleted snapshot to leave the tree');
    });
  });

  describe('access to a sandbox service', () => {
    let web: string;

    before(async () => {
      const { sandbox } = await api.services.agent.request(SandboxCreate, {
        environment: 'python',
        command: ['python3', '-m', 'http.server', '8000', '--bind', '127.0.0.1', '--directory', '/etc'],
        detached: true,
      });
      web = sandbox.id;
      made.push(web);
    });

    it('Forward Port… relays a host port into the sandbox', async () => {
      const f = await eventually(async () => {
        const r = await run<{ hostPort: number; localUri: string }>('forkspace.port.forward', web, 8000);
        const status = await httpStatus(`http://127.0.0.1:${r.hostPort}/hostname`);
        return status === 200 && r;
      }, 'the forwarded server to answer');
      assert.ok(f.localUri.length > 0, 'an external URI for remote windows');
    });

    it('Expose HTTP Service… serves it behind the agent key', async () => {
      const e = await run<{ url: string; externalUrl: string }>('forkspace.http.expose', web, 8000, 'e2e-web');
      assert.match(e.url, /\/v1\/expose\/e2e-web\/$/);
      assert.equal(await httpStatus(`${e.url}hostname`), 401);
      assert.equal(await eventually(async () => (await httpStatus(`${e.url}hostname`, agentToken())) === 200 && 200, 'the exposed service'), 200);
    });

    it('Copy SSH Command copies a command line that logs into the sandbox', async () => {
      const line = await run<string>('forkspace.ssh.copyCommand', web);
      assert.equal(await vscode.env.clipboard.readText(), line);
      const args = line.split(' ').slice(1);
      const { stdout } = await exec('ssh', ['-o', 'BatchMode=yes', ...args, 'hostname'], { timeout: 30_000 });
      assert.equal(stdout.trim(), web);
    });

    it('Open in Remote-SSH says what it needs when Remote - SSH is absent', async () => {
      assert.equal(vscode.extensions.getExtension('ms-vscode-remote.remote-ssh'), undefined, 'this editor has no Remote - SSH');
      assert.equal(await run('forkspace.ssh.openRemote', web), undefined);
    });
  });

  it('the Instances view shows an instance with its TTL countdown', async () => {
    const r = await api.services.agent.request(InstanceStart, { environment: 'busybox', ttlMs: 3_600_000, idleTimeoutMs: 600_000 });
    const id = r.instance.id;
    try {
      api.services.instances.refresh();
      const items = await eventually(async () => {
        const children = await api.services.instances.getChildren();
        return children.some((c) => c.sandboxId === id) && children;
      }, 'the instance in the view');
      const item = api.services.instances.getTreeItem(items.find((c) => c.sandboxId === id)!);
      assert.match(String(item.description), /^running · (59|60)m left · idle timeout 10m · then snapshot-then-stop$/);
      assert.equal(item.contextValue, 'runningSandbox');
    } finally {
      await api.services.agent.request(InstanceDestroy, { instanceId: id }).catch(() => {});
    }
  });

  it('Refresh reloads the views; Configure Tangle keeps the mnemonic out of settings', async () => {
    await run('forkspace.view.refresh');
    assert.equal(await run('forkspace.tangle.configure', 'ws://127.0.0.1:9944', 'word '.repeat(11) + 'word'), 'ws://127.0.0.1:9944');
    const config = vscode.workspace.getConfiguration('forkspace');
    assert.equal(config.get('tangle.endpoint'), 'ws://127.0.0.1:9944');
    assert.equal(await api.services.context.secrets.get('forkspace.tangle.mnemonic'), 'word '.repeat(11) + 'word');
    assert.doesNotMatch(JSON.stringify(config), /word word/);
    await config.update('tangle.endpoint', undefined, vscode.ConfigurationTarget.Global);
    await api.services.context.secrets.delete('forkspace.tangle.mnemonic');
  });

  it('connects by WebSocket (forkspace.agent.url) with the key from SecretStorage; a wrong key is an actionable error', async function () {
    const port = process.env.FORKSPACE_WS_PORT;
    if (!port || port === '0') this.skip();
    const url = `ws://127.0.0.1:${port}`;
    const config = vscode.workspace.getConfiguration('forkspace');
    const agent = api.services.agent;
    try {
      await run('forkspace.agent.setKey', 'not-the-key');
      await config.update('agent.url', url, vscode.ConfigurationTarget.Global);
      const refused = await eventually(() => agent.state.kind === 'error' && agent.state, 'the wrong key to be refused');
      assert.match(refused.message, /refused the key in SecretStorage \(HTTP 401\).*Set Agent Key/);
      assert.equal(await run('forkspace.agent.setKey', agentToken()), 'connected');
      assert.equal(agent.state.kind === 'connected' && agent.state.via, url);
      const pty = await run<RunTerminal>('forkspace.command.run', 'echo over-websocket', 'busybox');
      assert.equal((await pty.result)?.exitCode, 0);
      assert.match(pty.text, /over-websocket/);
    } finally {
      await config.update('agent.url', undefined, vscode.ConfigurationTarget.Global);
      await run('forkspace.agent.setKey', '');
      await eventually(() => agent.state.kind === 'connected' && agent.state.via !== url, 'the socket connection back');
    }
  });

  it('a command on an unknown sandbox shows the agent error and changes nothing', async () => {
    const before = (await api.services.agent.request(SandboxList, {})).sandboxes.length;
    assert.equal(await run('forkspace.sandbox.pause', 'sbx-doesnotexist'), undefined);
    assert.match(api.services.lastError ?? '', /sbx-doesnotexist/);
    assert.equal((await api.services.agent.request(SandboxList, {})).sandboxes.length, before);
    await assert.rejects(api.services.agent.request(SandboxGet, { sandboxId: 'sbx-doesnotexist' }), (e: unknown) => (e as ProtocolError).code === ErrorCodes.SandboxNotFound); // the bundle has its own ProtocolError class
  });
});

function httpStatus(url: string, token?: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: token ? { authorization: `Bearer ${token}` } : {} }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.setTimeout(5_000, () => req.destroy(new Error(`no answer from ${url}`)));
  });
}
