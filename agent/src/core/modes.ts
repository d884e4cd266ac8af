// The checkpointed and branched execution modes, composed from sandboxes, snapshots and exec.
//   checkpointed: start from a snapshot (or a fresh sandbox), run, snapshot the result, and return the new
//                 snapshot id with the output; the sandbox itself is temporary.
//   branched:     restore N branches of a snapshot and run the command in all of them at once; map gives
//                 each branch its own input, race stops the others when the first exits 0.
import type { z } from 'zod';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { ExecResult } from '../protocol';
import type { ExecBranchParams } from '../protocol/exec';
import { newExecId, type ExecObserver, type ExecService, type ParsedExecRun } from './exec';
import type { EnvironmentService } from './environments';
import { DEFAULT_ENVIRONMENT } from './languages';
import { ADMIN, type Access } from './access';
import { policyFor, type SandboxService } from './sandboxes';

type ParsedBranch = z.output<typeof ExecBranchParams>;

export class ModeService {
  constructor(
    private readonly sandboxes: SandboxService,
    private readonly exec: ExecService,
    /** Owner of the temporary sandboxes: reaped by the runtime if the agent dies mid-run. */
    private readonly owner: string,
    /** Knows environment aliases (to check a checkpoint's environment against the one asked for). */
    private readonly environments?: EnvironmentService,
  ) {}

  async checkpointed(p: ParsedExecRun, observer: ExecObserver, signal: AbortSignal | undefined, access: Access): Promise<ExecResult> {
    let sandboxId: string;
    let environment: string;
    if (p.checkpointId) {
      const { snapshot } = await this.sandboxes.getSnapshot(p.checkpointId, access);
      environment = snapshot.environment;
      if (p.environment !== undefined && !(await this.sameEnvironment(p.environment, environment))) {
        throw new ProtocolError(
          ErrorCodes.InvalidParams,
          `checkpoint ${p.checkpointId} (${snapshot.id}) is of environment ${environment}, not ${p.environment}; leave environment out or give ${environment}`,
          { checkpointId: snapshot.id, environment },
        );
      }
      sandboxId = (await this.sandboxes.restore(snapshot.id, policyFor({}, this.owner, access), ADMIN)).sandboxId;
    } else {
      environment = p.environment ?? DEFAULT_ENVIRONMENT;
      sandboxId = (await this.sandboxes.create({ environment, limits: p.limits }, this.owner, access)).sandbox.id;
    }
    try {
      const result = await this.exec.runIn({ ...p, sandboxId }, environment, observer, signal);
      // Stopping takes the snapshot and ends the processes in one step: nothing runs on after it.
      const { snapshot } = await this.sandboxes.stop(sandboxId, ADMIN);
      return { ...result, checkpointId: snapshot.id };
    } finally {
      await this.sandboxes.destroy(sandboxId, ADMIN).catch(() => {});
    }
  }

  /** Two names of one environment (`python` and `python:3.11`, say)? */
  private async sameEnvironment(a: string, b: string): Promise<boolean> {
    if (a === b) return true;
    const known = this.environments ? await this.environments.list() : [];
    const canonical = (n: string) => known.find((e) => e.name === n || e.aliases.includes(n))?.name ?? n;
    return canonical(a) === canonical(b);
  }

  async branched(p: ParsedBranch, observer: ExecObserver, signal: AbortSignal | undefined, access: Access) {
    const { snapshot } = await this.sandboxes.getSnapshot(p.snapshotId, access);
    const inputs: (string | undefined)[] = p.inputs ?? Array.from({ length: p.count ?? 1 }, () => undefined);
    const t0 = performance.now();
    // Kept branches outlive the run (and the agent); the others are the agent's until destroyed.
    const branched = await this.sandboxes.branch(snapshot.id, inputs.length, policyFor({ detached: p.keep }, this.owner, access), ADMIN);
    const branchTimeMs = performance.now() - t0;
    const ids = branched.branches.map((b) => b.sandboxId);
    const execIds = ids.map(() => newExecId());
    // A race's losers are killed (not cancelled): they answer with their SIGKILL results like any other run.
    const losers = ids.map(() => new AbortController());
    let winner: number | null = null;
    try {
      const runs = ids.map((sandboxId, i) =>
        this.exec
          .runIn(
            {
              sandboxId,
              execId: execIds[i],
              code: p.code,
              command: p.command,
              cwd: p.cwd,
              env: inputs[i] === undefined ? p.env : { ...p.env, FORKSPACE_INPUT: inputs[i] as string },
              stdin: inputs[i],
              timeoutMs: p.timeoutMs,
              maxOutputBytes: p.maxOutputBytes,
            },
            snapshot.environment,
            observer,
            signal,
            losers[i].signal,
          )
          .then((r) => {
            if (p.strategy === 'race' && winner === null && r.exitCode === 0) {
              winner = i;
              losers.forEach((l, j) => j !== i && l.abort());
            }
            return r;
          }),
      );
      const results = await Promise.all(runs);
      if (signal?.aborted) throw new ProtocolError(ErrorCodes.RequestCancelled, 'exec/branch was cancelled');
      return { snapshotId: snapshot.id, strategy: p.strategy, results, winner, branchTimeMs };
    } finally {
      if (!p.keep) await Promise.all(ids.map((id) => this.sandboxes.destroy(id, ADMIN).catch(() => {})));
    }
  }
}
