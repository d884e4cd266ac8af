// The scenario ops through the CLI (bin/forkspace), parsing what it prints (--json where it has it). The
// CLI shows messages, not error names: failures are a non-zero exit and the message on stderr.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CliResult } from '../integration/stack';
import { StepError, type Driver } from './scenarios';

export type Cli = (args: string[]) => Promise<CliResult>;

const str = (v: unknown) => v as string;

export function cliDriver(cli: Cli): Driver {
  const ok = async (args: string[]): Promise<CliResult> => {
    const r = await cli(args);
    if (r.code === 125 || r.code === 2 || (r.code !== 0 && /^forkspace: /m.test(r.stderr))) throw new StepError(r.stderr.replace(/^forkspace: /gm, '').trim());
    return r;
  };
  const json = async (args: string[]) => JSON.parse((await ok([...args, '--json'])).stdout);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-scn-'));
  let n = 0;
  return {
    run: async (a) => {
      const flags = ['run', '--json'];
      if (a.environment) flags.push('--env', str(a.environment));
      if (a.mode === 'cached') flags.push('--cached');
      if (a.mode === 'checkpointed') flags.push(...(a.checkpoint ? ['--checkpoint', str(a.checkpoint)] : ['--checkpointed']));
      const r = await ok([...flags, '--', 'sh', '-c', str(a.command)]);
      const j = JSON.parse(r.stdout);
      return { exitCode: r.code, stdout: j.stdout, stderr: j.stderr, cached: j.cached, checkpointId: j.checkpointId };
    },
    sandbox: async (a) => ({ bind: (await ok(['sandbox', 'start', '--env', str(a.environment)])).stdout.trim() }),
    exec: async (a) => {
      const r = await ok(['exec', str(a.sandbox), '--', 'sh', '-c', str(a.command)]);
      return { exitCode: r.code, stdout: r.stdout, stderr: r.stderr };
    },
    snapshot: async (a) => ({ bind: (await json(['snapshot', str(a.sandbox), ...(a.label ? ['--label', str(a.label)] : [])])).snapshot.id }),
    restore: async (a) => ({ bind: (await ok(['restore', str(a.snapshot)])).stdout.split(/\s/)[0] }),
    branch: async (a) => ({ bind: (await json(['branch', str(a.snapshot), '-n', String(a.count)])).branches.map((b: { sandboxId: string }) => b.sandboxId) }),
    diff: async (a) => ({ changes: (await json(['diff', str(a.a), str(a.b)])).changes }),
    merge: async (a) => {
      const r = await cli(['merge', str(a.from), str(a.into), '--json', ...(a.strategy ? ['--strategy', str(a.strategy)] : [])]);
      if (r.code !== 0) throw new StepError(r.stderr.replace(/^forkspace: /gm, '').trim());
      return { applied: JSON.parse(r.stdout).applied };
    },
    write: async (a) => {
      const local = path.join(tmp, `w${n++}`);
      fs.writeFileSync(local, str(a.content));
      await ok(['cp', local, `${str(a.sandbox)}:${str(a.path)}`]);
      return {};
    },
    read: async (a) => ({ content: (await ok(['cp', `${str(a.id)}:${str(a.path)}`, '-'])).stdout }),
    destroy: async (a) => (await ok(['destroy', str(a.sandbox)]), {}),
    deleteSnapshot: async (a) => (await ok(['snapshot', 'rm', str(a.snapshot)]), {}),
  };
}
