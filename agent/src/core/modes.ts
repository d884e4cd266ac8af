// The checkpointed and branched execution modes, composed from sandboxes, snapshots and exec.
//   checkpointed: start from a snapshot (or a fresh sandbox), run, snapshot the result, and return the new
//                 snapshot id with the output; the sandbox itself is temporary.
//   branched:     restore N branches of a snapshot and run the command in all of them at once; map gives
//                 each branch its own input, race stops the others when the first exits 0.
import type { z } from 'zod';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { ExecResult } from '../protocol';
import type { ExecBranchParams } from '../protocol/exec';
import { RtExecKill } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { newExecId, type ExecObserver, type ExecService, type ParsedExecRun } from './exec';
import { DEFAULT_ENVIRONMENT } from './languages';
import { policyFor, type SandboxService } from './sandboxes';

type ParsedBranch = z.output<typeof ExecBranchParams>;

export class ModeService {
  constructor(
    private readonly runtime: RuntimeClient,
    private readonly sandboxes: SandboxService,
    private readonly exec: ExecService,
    /** Owner of the temporary sandboxes: reaped by the runtime if the agent dies mid-run. */
    private readonly owner: string,
  ) {}

  async checkpointed(p: ParsedExecRun, observer: ExecObserver, signal?: AbortSignal): Promise<ExecResult> {
    let sandboxId: string;
    let environment: string;
    if (p.checkpointId) {
      environment = (await this.sandboxes.getSnapshot(p.checkpointId)).snapshot.environment;
      sandboxId = (await this.sandboxes.restore(p.checkpointId, policyFor({}, this.owner))).sandboxId;
    } else {
      environment = p.environment ?? DEFAULT_ENVIRONMENT;
      sandboxId = (await this.sandboxes.create({ environment, limits: p.limits }, this.owner)).sandbox.id;
    }
    try {
      const result = await this.exec.runIn({ ...p, sandboxId }, environment, observer, signal);
      // Stopping takes the snapshot and ends the processes in one step: nothing runs on after it.
      const { snapshot } = await this.sandboxes.stop(sandboxId);
      return { ...result, checkpointId: snapshot.id };
    } finally {
      await this.sandboxes.destroy(sandboxId).catch(() => {});
    }
  }

  async branched(p: ParsedBranch, observer: ExecObserver, signal?: AbortSignal) {
    const { snapshot } = await this.sandboxes.getSnapshot(p.snapshotId);
    const inputs: (string | undefined)[] = p.inputs ?? Array.from({ length: p.count ?? 1 }, () => undefined);
    const t0 = performance.now();
    // Kept branches outlive the run (and the agent); the others are the agent's until destroyed.
    const branched = await this.sandboxes.branch(p.snapshotId, inputs.length, policyFor({ detached: p.keep }, this.owner));
    const branchTimeMs = performance.now() - t0;
    const ids = branched.branches.map((b) => b.sandboxId);
    const execIds = ids.map(() => newExecId());
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
          )
          .then((r) => {
            if (p.strategy === 'race' && winner === null && r.exitCode === 0) {
              winner = i;
              // The losers are killed, and answer with their (SIGKILL) results like any other run.
              execIds.forEach((id, j) => j !== i && this.runtime.request(RtExecKill, { execId: id }).catch(() => {}));
            }
            return r;
          }),
      );
      const results = await Promise.all(runs);
      if (signal?.aborted) throw new ProtocolError(ErrorCodes.RequestCancelled, 'exec/branch was cancelled');
      return { snapshotId: p.snapshotId, strategy: p.strategy, results, winner, branchTimeMs };
    } finally {
      if (!p.keep) await Promise.all(ids.map((id) => this.sandboxes.destroy(id).catch(() => {})));
    }
  }
}
