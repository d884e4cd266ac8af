// Ephemeral execution through the agent's API against the real runtime: output, exit codes, stdin,
// environment, working dir, files, limits, timeouts, cancellation and streaming.
import { strict as assert } from 'node:assert';
import { ErrorCodes, ExecOutput, ExecRun, ExecStarted, ProtocolError, type ExecRunParams } from '../../agent/src/protocol';
import { useStack } from './stack';

describe('ephemeral execution (real runtime)', function () {
  const env = useStack();

  const run = (params: ExecRunParams) => env.client().request(ExecRun, { environment: 'busybox', ...params });

  it('passes stdout, stderr and the exit code through', async () => {
    const r = await run({ command: 'echo out; echo err >&2; exit 7' });
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.stderr, 'err\n');
    assert.equal(r.exitCode, 7);
    assert.equal(r.signal, null);
    assert.equal(r.environment, 'busybox');
    assert.match(r.sandboxId, /^sbx-[0-9a-f]{12}$/);
  });

  it('runs argv directly, without a shell', async () => {
    const r = await run({ command: ['echo', '$HOME', 'a b'] });
    assert.equal(r.stdout, '$HOME a b\n');
  });

  it('feeds stdin and closes it', async () => {
    const r = await run({ command: 'wc -c; cat', stdin: 'hello\n' });
    assert.match(r.stdout, /^\s*6\n$/);
  });

  it('sets environment variables and the working directory (created if missing)', async () => {
    const r = await run({ command: 'echo "$GREETING"; pwd; echo $HOSTNAME', env: { GREETING: 'hi there' }, cwd: '/work/project' });
    const [greeting, cwd, host] = r.stdout.trim().split('\n');
    assert.equal(greeting, 'hi there');
    assert.equal(cwd, '/work/project');
    assert.equal(host, r.sandboxId);
  });

  it('refuses limits.pids above the host\'s pid_max, saying the maximum', async () => {
    const pidMax = Number((await import('node:fs')).readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    if (pidMax >= 4194304) return; // the protocol's own bound is the host's: nothing above it to refuse
    await assert.rejects(run({ command: 'true', limits: { pids: pidMax + 1 } }), (e: ProtocolError) => {
      assert.equal(e.code, ErrorCodes.InvalidParams);
      assert.match(e.message, new RegExp(`limits\\.pids = ${pidMax + 1} is more than this host's maximum .*pid_max.*use at most ${pidMax}`));
      return true;
    });
    assert.equal((await run({ command: 'echo ok', limits: { pids: pidMax } })).stdout, 'ok\n');
  });

  it('places files before the command runs, relative to cwd, with their mode', async () => {
    const r = await run({
      command: 'cat data/in.txt; ls -l run.sh | cut -c1-10; ./run.sh',
      cwd: '/app',
      files: [
        { path: 'data/in.txt', content: 'file content\n' },
        { path: 'run.sh', content: Buffer.from('#!/bin/sh\necho ran\n').toString('base64'), encoding: 'base64', mode: 0o755 },
      ],
    });
    assert.equal(r.stdout, 'file content\n-rwxr-xr-x\nran\n');
  });

  it('runs Python code from `code` in the default environment', async () => {
    const r = await env.client().request(ExecRun, { code: 'import sys\nprint(sys.version_info[:2])\nprint(sum(range(10)))' });
    assert.equal(r.environment, 'python:3.11');
    assert.equal(r.stdout, '(3, 11)\n45\n');
  });

  it('reports a Python traceback with the real line number', async () => {
    const r = await env.client().request(ExecRun, { code: 'x = 1\nraise ValueError("bad")\n' });
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /main\.py", line 2/);
    assert.match(r.stderr, /ValueError: bad/);
  });

  it('reports an OOM kill as such', async () => {
    const r = await env.client().request(ExecRun, {
      environment: 'python',
      command: ['python3', '-c', 'b = bytearray(512 << 20)'],
      limits: { memoryBytes: 64 * 1024 * 1024 },
    });
    assert.equal(r.oomKilled, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.exitCode, 137);
    assert.ok(r.memoryPeakBytes !== null && r.memoryPeakBytes <= 64 * 1024 * 1024, `peak ${r.memoryPeakBytes}`);
  });

  it('passes a fatal signal of the command through', async () => {
    const r = await env.client().request(ExecRun, { environment: 'python', code: 'import ctypes\nctypes.string_at(0)' });
    assert.equal(r.signal, 'SIGSEGV');
    assert.equal(r.exitCode, 139);
    assert.equal(r.oomKilled, false);
  });

  it('kills the sandbox at the timeout and says so', async () => {
    const t0 = Date.now();
    const r = await run({ command: 'echo started; sleep 30', timeoutMs: 500 });
    assert.equal(r.timedOut, true);
    assert.equal(r.signal, 'SIGKILL');
    assert.equal(r.stdout, 'started\n');
    assert.ok(Date.now() - t0 < 5000, 'the timeout did not stop it promptly');
  });

  it('holds the pids limit against a fork bomb', async () => {
    const counted = await run({
      command: 'i=0; while [ $i -lt 200 ]; do sleep 60 & i=$((i+1)); done 2>/dev/null; ls /proc | grep -c "^[0-9]"',
      limits: { pids: 32 },
      timeoutMs: 20_000,
    });
    assert.ok(Number(counted.stdout.trim()) <= 32, `saw ${counted.stdout.trim()} processes with pids=32`);
    assert.equal(counted.pidsLimitHit, true);
    const bomb = await run({ command: 'b() { b | b & }; b; sleep 30', limits: { pids: 64 }, timeoutMs: 2000 });
    assert.equal(bomb.timedOut, true);
    assert.equal(bomb.pidsLimitHit, true);
  });

  it('limits CPU with a quota', async () => {
    const r = await run({ command: 'timeout 1 sh -c "while :; do :; done"; true', limits: { cpus: 0.2 } });
    assert.ok(r.cpuTimeMs !== null && r.cpuTimeMs < 600, `a 0.2-CPU sandbox used ${r.cpuTimeMs} ms of CPU in 1 s`);
  });

  it('streams ordered, numbered output that adds up to the result', async () => {
    const chunks: { stream: string; data: string; seq: number }[] = [];
    const started: string[] = [];
    const execId = 'stream-test-1';
    const subs = [
      env.client().onNotification(ExecOutput, (o) => o.execId === execId && chunks.push(o)),
      env.client().onNotification(ExecStarted, (s) => s.execId === execId && started.push(s.sandboxId)),
    ];
    const r = await run({ execId, command: 'for i in $(seq 1 200); do echo $i; echo e$i >&2; done' });
    subs.forEach((s) => s.dispose());
    assert.deepEqual(started, [r.sandboxId]);
    assert.deepEqual(chunks.map((c) => c.seq), chunks.map((_, i) => i + 1));
    assert.equal(chunks.filter((c) => c.stream === 'stdout').map((c) => c.data).join(''), r.stdout);
    assert.equal(chunks.filter((c) => c.stream === 'stderr').map((c) => c.data).join(''), r.stderr);
    assert.equal(r.stdout.split('\n').length, 201);
  });

  it('decodes UTF-8 and caps the kept output while streaming all of it', async () => {
    let streamed = 0;
    const sub = env.client().onNotification(ExecOutput, (o) => (streamed += o.data.length));
    const r = await run({ command: "printf '\\342\\202\\254\\n'; head -c 3000000 /dev/zero | tr '\\0' a", maxOutputBytes: 1_000_000 });
    sub.dispose();
    assert.ok(r.stdout.startsWith('€\n'));
    assert.equal(r.stdout.length, 1_000_000 - 2);
    assert.equal(r.stdoutTruncated, true);
    assert.equal(streamed, 3_000_002);
  });

  it('cancels a running execution and removes its sandbox', async () => {
    const controller = new AbortController();
    const sub = env.client().onNotification(ExecStarted, (s) => s.execId === 'cancel-me' && controller.abort());
    const t0 = Date.now();
    await assert.rejects(
      env.client().request(ExecRun, { environment: 'busybox', execId: 'cancel-me', command: 'sleep 30' }, { signal: controller.signal }),
      (e: ProtocolError) => e.code === ErrorCodes.RequestCancelled,
    );
    sub.dispose();
    assert.ok(Date.now() - t0 < 5000);
    assert.deepEqual(await env.stack().leftovers(), []);
  });

  it('explains a missing command, an unknown environment and bad limits', async () => {
    await assert.rejects(run({ command: ['no-such-tool'] }), (e: ProtocolError) => e.code === ErrorCodes.CommandNotFound && /no-such-tool/.test(e.message));
    await assert.rejects(
      env.client().request(ExecRun, { environment: 'python:3.12', command: 'true' }),
      (e: ProtocolError) =>
        e.code === ErrorCodes.EnvironmentUnknown && /python:3\.13/.test(e.message) && Array.isArray((e.data as { known: string[] }).known),
    );
    await assert.rejects(run({ command: 'true', limits: { memoryBytes: 1024 } }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /memoryBytes/.test(e.message));
    await assert.rejects(run({ command: 'true', limits: { cpus: 1000 } }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /cpus/.test(e.message));
    await assert.rejects(run({ command: 'true', code: 'x' }), (e: ProtocolError) => e.code === ErrorCodes.InvalidParams && /exactly one/.test(e.message));
  });

  it('refuses a second run with the id of a running one', async () => {
    const first = run({ execId: 'dup-id', command: 'sleep 1' });
    await new Promise((r) => setTimeout(r, 300));
    await assert.rejects(run({ execId: 'dup-id', command: 'true' }), (e: ProtocolError) => e.code === ErrorCodes.ExecIdInUse);
    assert.equal((await first).exitCode, 0);
  });

  it('runs concurrent executions independently', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => run({ command: `echo ${i}; hostname` })));
    results.forEach((r, i) => assert.equal(r.stdout.split('\n')[0], String(i)));
    assert.equal(new Set(results.map((r) => r.sandboxId)).size, 8);
  });
});
