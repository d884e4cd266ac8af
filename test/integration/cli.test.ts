// The forkspace CLI end to end (bin/forkspace → agent → runtime), including the acceptance lines.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ROOT, useStack } from './stack';

describe('forkspace CLI (real agent and runtime)', function () {
  const env = useStack();

  it('busybox: prints pid 1, a sandbox hostname and the sandbox rootfs', async () => {
    const r = await env.stack().cli(['run', '--env', 'busybox', '--', 'sh', '-c', 'echo $$; hostname; ls /']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '1');
    assert.match(lines[1], /^sbx-[0-9a-f]{12}$/);
    for (const d of ['bin', 'dev', 'etc', 'proc', 'tmp']) assert.ok(lines.includes(d), `ls / lacks ${d}`);
  });

  it('python: prints 45', async () => {
    const r = await env.stack().cli(['run', '--env', 'python', '--', 'python3', '-c', 'print(sum(range(10)))']);
    assert.deepEqual([r.code, r.stdout], [0, '45\n'], r.stderr);
  });

  it('reports an OOM kill with a 64M limit', async () => {
    const r = await env.stack().cli(['run', '--env', 'python', '--memory', '64M', '--', 'python3', '-c', 'b=bytearray(512<<20)']);
    assert.equal(r.code, 137);
    assert.match(r.stderr, /ran out of memory \(limit 64 MiB\)/);
  });

  it('passes exit codes and signals through', async () => {
    assert.equal((await env.stack().cli(['run', '--env', 'busybox', '--', 'sh', '-c', 'exit 42'])).code, 42);
    const seg = await env.stack().cli(['run', '--env', 'python', '--', 'python3', '-c', 'import ctypes; ctypes.string_at(0)']);
    assert.equal(seg.code, 139);
  });

  it('kills at --timeout and says so', async () => {
    const t0 = Date.now();
    const r = await env.stack().cli(['run', '--env', 'busybox', '--timeout', '1s', '--', 'sleep', '10']);
    assert.equal(r.code, 124);
    assert.match(r.stderr, /timed out after 1s/);
    assert.ok(Date.now() - t0 < 6000);
  });

  it('sends stdin with -i, sets variables, places files', async () => {
    const local = path.join(env.stack().dir, 'greet.py');
    fs.writeFileSync(local, 'import os, sys\nprint(os.environ["NAME"], sys.stdin.read().strip())\n');
    const r = await env.stack().cli(['run', '-i', '-e', 'NAME=hello', '--cwd', '/app', '--file', local, '--', 'python3', 'greet.py'], 'world\n');
    assert.deepEqual([r.code, r.stdout], [0, 'hello world\n'], r.stderr);
  });

  it('exits 127 for a missing command and 2 for usage errors', async () => {
    const missing = await env.stack().cli(['run', '--env', 'busybox', '--', 'no-such-command']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /no-such-command: command not found/);
    const usage = await env.stack().cli(['run', '--memory', 'lots', '--', 'true']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /not a size/);
    const unknownEnv = await env.stack().cli(['run', '--env', 'python:2.7', '--', 'true']);
    assert.equal(unknownEnv.code, 125);
    assert.match(unknownEnv.stderr, /unknown environment "python:2\.7"; known environments: busybox, python:3\.11, python, python:3\.9, python:3\.13/);
  });

  it('cancels on Ctrl-C and leaves nothing behind', async () => {
    const child = spawn(path.join(ROOT, 'bin', 'forkspace'), ['run', '--env', 'busybox', '--', 'sh', '-c', 'echo ready; sleep 30'], {
      env: { ...env.stack().env, FORKSPACE_NODE: process.execPath },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()));
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    assert.equal(code, 130, stderr);
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(await env.stack().leftovers(), []);
  });

  it('lists environments and shows agent status', async () => {
    const envs = await env.stack().cli(['env', 'list']);
    assert.equal(envs.code, 0);
    assert.match(envs.stdout, /^busybox\s+built/m);
    assert.match(envs.stdout, /^python:3\.11, python\s+built/m);
    assert.match(envs.stdout, /^python:3\.13/m);
    const status = await env.stack().cli(['agent', 'status']);
    assert.equal(status.code, 0);
    assert.match(status.stdout, /agent: running/);
    assert.match(status.stdout, /runtime: running \(pid \d+, cgroups (v1|v2|hybrid), criu 4\.\d/);
  });
});
