// `forkspace run`: one command in a fresh sandbox, output streamed, exit code passed through.
import * as fs from 'node:fs';
import { ErrorCodes, EnvProgress, ExecOutput, ExecRun, ProtocolError } from '../protocol';
import type { ExecRunParams, RpcClient } from '../protocol';
import { formatBytes, parseArgs, parseDuration, parseSize, UsageError } from './args';
import { dim, warn } from './ui';

export const RUN_USAGE = `usage: forkspace run [options] [--] COMMAND [ARGS...]

Runs COMMAND in a fresh sandbox (destroyed afterwards), streams its output, and exits with its exit code.

options:
  --env NAME         environment (busybox, python, python:3.9, python:3.11, python:3.13); default python
  --memory SIZE      memory limit, e.g. 256M, 1G (default 512M); exceeding it OOM-kills the sandbox
  --cpus N           CPU quota in cores, e.g. 0.5
  --pids N           process limit (default 1024; at most the host's pid_max)
  --disk SIZE        disk limit of the sandbox's files, e.g. 512M, 20G (default 10G); writes past it fail
                     inside with "Disk quota exceeded"
  --timeout DUR      wall-clock limit, e.g. 10s, 500ms, 2m
  --cwd DIR          working directory inside the sandbox (default /root)
  -e, --setenv K=V   environment variable (repeatable)
  --file LOCAL[:PATH] copy a local file into the sandbox (repeatable; PATH defaults to its name in --cwd)
  -i, --stdin        send this process's stdin to the command
  --json             print the result as JSON on stdout instead of streaming
  --checkpoint SNAP  start from snapshot SNAP (id or unique label) and checkpoint the result (prints its id)
  --checkpointed     run in a fresh sandbox and checkpoint the result
  --cached           return a stored result of the same run (content-addressed) without running; store one

exit status: the command's, 128+N when signal N ended it, 124 on --timeout, 125 when forkspace itself failed,
127 when the command does not exist in the sandbox.`;

export async function runCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, {
    env: { value: true },
    memory: { value: true },
    cpus: { value: true },
    pids: { value: true },
    disk: { value: true },
    timeout: { value: true },
    cwd: { value: true },
    setenv: { value: true, repeat: true, alias: 'e' },
    file: { value: true, repeat: true },
    stdin: { alias: 'i' },
    json: {},
    checkpoint: { value: true },
    checkpointed: {},
    cached: {},
  });
  if (positionals.length === 0) throw new UsageError(`give the command to run\n\n${RUN_USAGE}`);
  const params: ExecRunParams = { command: positionals };
  if (typeof flags.env === 'string') params.environment = flags.env;
  const limits: NonNullable<ExecRunParams['limits']> = {};
  if (typeof flags.memory === 'string') limits.memoryBytes = parseSize(flags.memory, '--memory');
  if (typeof flags.cpus === 'string') limits.cpus = Number(flags.cpus);
  if (typeof flags.pids === 'string') limits.pids = Number(flags.pids);
  if (typeof flags.disk === 'string') limits.diskBytes = parseSize(flags.disk, '--disk');
  if (Object.keys(limits).length) params.limits = limits;
  if (typeof flags.timeout === 'string') params.timeoutMs = parseDuration(flags.timeout, '--timeout');
  if (typeof flags.cwd === 'string') params.cwd = flags.cwd;
  const env: Record<string, string> = {};
  for (const kv of (flags.setenv as string[] | undefined) ?? []) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new UsageError(`-e ${kv}: use KEY=VALUE`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (Object.keys(env).length) params.env = env;
  const files = ((flags.file as string[] | undefined) ?? []).map((spec) => {
    const [local, remote] = spec.split(/:(.*)/s, 2);
    return { path: remote || local.split('/').pop()!, content: fs.readFileSync(local).toString('base64'), encoding: 'base64' as const };
  });
  if (files.length) params.files = files;
  if (flags.stdin) params.stdin = fs.readFileSync(0, 'utf8');
  if ([flags.checkpoint !== undefined || flags.checkpointed === true, flags.cached === true].filter(Boolean).length > 1) {
    throw new UsageError('--cached and --checkpoint/--checkpointed are different modes; give one');
  }
  if (typeof flags.checkpoint === 'string') params.checkpointId = flags.checkpoint;
  if (flags.checkpoint !== undefined || flags.checkpointed) params.mode = 'checkpointed';
  if (flags.cached) params.mode = 'cached';

  const json = flags.json === true;
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = (): void => {
    if (++interrupts > 1) process.exit(130);
    warn('cancelling (Ctrl-C again to quit without waiting)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  const subs = [
    client.onNotification(ExecOutput, (o) => {
      if (!json) (o.stream === 'stdout' ? process.stdout : process.stderr).write(o.data);
    }),
    client.onNotification(EnvProgress, (p) => process.stderr.write(dim(`[${p.name}] ${p.message}`) + '\n')),
  ];
  try {
    const result = await client.request(ExecRun, params, { signal: controller.signal });
    if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    else if (result.checkpointId) process.stderr.write(dim(`checkpoint ${result.checkpointId}`) + '\n');
    else if (result.cached) process.stderr.write(dim('(cached result: nothing ran)') + '\n');
    if (result.oomKilled) {
      warn(`the sandbox ran out of memory${limits.memoryBytes ? ` (limit ${formatBytes(limits.memoryBytes)})` : ''} and the kernel killed it`);
    }
    if (result.timedOut) {
      warn(`timed out after ${flags.timeout}; the sandbox was killed`);
      return 124;
    }
    return result.exitCode;
  } catch (e) {
    if (e instanceof ProtocolError && e.code === ErrorCodes.RequestCancelled) {
      warn('cancelled');
      return 130;
    }
    if (e instanceof ProtocolError && e.code === ErrorCodes.CommandNotFound) {
      warn(e.message);
      return 127;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    subs.forEach((s) => s.dispose());
  }
}
