// SSH into sandboxes against a real sshd (static dropbear) inside them: `forkspace ssh`, the ssh-config
// entry with its ProxyCommand (what VS Code Remote-SSH uses), branches, and SSH as idle-timeout activity.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { InstanceDestroy, InstanceGet, InstanceStart, InstanceStop, SandboxCreate, SandboxDestroy, SnapshotBranch, SnapshotCreate, SnapshotDelete, SshPrepare } from '../../agent/src/protocol';
import { ROOT, useStack, type CliResult } from './stack';

const DROPBEAR = process.env.FORKSPACE_DROPBEAR ?? '/var/cache/forkspace/dropbear/bin/dropbear';

describe('ssh into sandboxes (real sshd)', function () {
  this.timeout(180_000);
  const env = useStack();
  const c = () => env.client();
  let configFile: string;

  before(async function () {
    if (!fs.existsSync(DROPBEAR)) {
      console.log(`    (skipped: ${DROPBEAR} is missing; scripts/setup.sh builds it)`);
      this.skip();
    }
    configFile = path.join(env.stack().dir, 'ssh_config');
    const w = await env.stack().cli(['ssh-config', '--file', configFile]);
    assert.equal(w.code, 0, w.stderr);
  });

  /** The system ssh client, with this stack's environment (its ProxyCommand reaches this stack's agent). */
  function ssh(args: string[]): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = spawn('ssh', ['-F', configFile, ...args], { env: { ...env.stack().env, FORKSPACE_NODE: process.execPath, FORKSPACE_BIN: path.join(ROOT, 'bin', 'forkspace') } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end();
      child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  it('forkspace ssh runs a command in the sandbox, in python and busybox environments', async () => {
    for (const environment of ['python', 'busybox']) {
      const { sandbox } = await c().request(SandboxCreate, { environment });
      const r = await env.stack().cli(['ssh', sandbox.id, '--', 'echo', 'ok;', 'hostname']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `ok\n${sandbox.id}\n`);
      const failed = await env.stack().cli(['ssh', sandbox.id, '--', 'exit 7']);
      assert.equal(failed.code, 7, 'the remote exit code comes back');
      await c().request(SandboxDestroy, { sandboxId: sandbox.id });
    }
  });

  it('ssh forkspace-<id> works through the ssh-config entry (ProxyCommand), with a per-sandbox key', async () => {
    const mine = path.join(env.stack().dir, 'users_ssh_config');
    fs.writeFileSync(mine, 'Host other\n  User someone\n');
    for (let i = 0; i < 2; i++) assert.equal((await env.stack().cli(['ssh-config', '--file', mine])).code, 0);
    const text = fs.readFileSync(mine, 'utf8');
    assert.match(text, /^Host forkspace-\*$/m);
    assert.match(text, /ProxyCommand .*forkspace ssh-proxy %h/);
    assert.match(text, /^Host other\n {2}User someone$/m, 'the rest of the file stays');
    assert.equal(text.split('Host forkspace-*').length, 2, 'written once, however often it runs');

    const { sandbox: a } = await c().request(SandboxCreate, { environment: 'python' });
    const { sandbox: b } = await c().request(SandboxCreate, { environment: 'python' });
    const r = await ssh([`forkspace-${a.id}`, 'echo', 'ok']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'ok\n');
    // Keys are per sandbox: a's key does not open b.
    const tb = await c().request(SshPrepare, { sandboxId: b.id });
    const ta = await c().request(SshPrepare, { sandboxId: a.id });
    assert.notEqual(fs.readFileSync(`${ta.identityFile}.pub`, 'utf8'), fs.readFileSync(`${tb.identityFile}.pub`, 'utf8'));
    const wrongKey = await new Promise<number>((resolve) => {
      const child = spawn('ssh', ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', ta.identityFile, '-p', String(tb.port), 'root@127.0.0.1', 'true'], { stdio: 'ignore' });
      child.on('close', (code) => resolve(code ?? -1));
    });
    assert.equal(wrongKey, 255, "a's key is refused by b's sshd");
    for (const s of [a, b]) await c().request(SandboxDestroy, { sandboxId: s.id });
  });

  it('branches of a sandbox with sshd are each reachable; a stopped instance is woken by ssh', async () => {
    const { instance } = await c().request(InstanceStart, { environment: 'busybox' });
    await c().request(SshPrepare, { sandboxId: instance.id });
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: instance.id });
    const { branches } = await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 });
    for (const br of branches) {
      const r = await ssh([`forkspace-${br.sandboxId}`, 'hostname']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), br.sandboxId);
    }
    await c().request(InstanceStop, { instanceId: instance.id });
    const r = await ssh([`forkspace-${instance.id}`, 'echo', 'awake']);
    assert.equal(r.stdout, 'awake\n', r.stderr);
    assert.equal((await c().request(InstanceGet, { instanceId: instance.id })).instance.state, 'running');
    for (const br of branches) await c().request(SandboxDestroy, { sandboxId: br.sandboxId });
    await c().request(InstanceDestroy, { instanceId: instance.id });
    await c().request(SnapshotDelete, { snapshotId: snapshot.id });
  });

  it('an SSH session is activity: the idle timeout waits for it to end', async () => {
    const { instance } = await c().request(InstanceStart, { environment: 'busybox', idleTimeoutMs: 1000 });
    const r = await ssh([`forkspace-${instance.id}`, 'sleep 3; echo still-here']);
    assert.equal(r.stdout, 'still-here\n', r.stderr);
    await c().request(InstanceDestroy, { instanceId: instance.id });
  });
});
