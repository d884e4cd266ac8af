import { z } from 'zod';
import { AbsolutePath, Arg, Command, EnvVars, Id, Limits, Ref, SandboxPath } from './common';
import { notification, request, stream } from './messages';

export const FileInput = z.strictObject({
  /** Absolute, or relative to `cwd`. Resolved inside the sandbox; it cannot escape its root. */
  path: SandboxPath,
  content: z.string(),
  encoding: z.enum(['utf8', 'base64']).default('utf8'),
  mode: z.number().int().min(0).max(0o7777).optional(),
});
export type FileInput = z.input<typeof FileInput>;

export const ExecRunParams = z
  .strictObject({
    /** Tags this run's exec/output notifications; chosen by the caller so output can be matched before
     * the response arrives. Generated when absent. Ids are per API key: another key's "job-1" is not yours. */
    execId: Id.optional(),
    /** Source code in the environment's language (Python for python*, sh for busybox). */
    code: z.string().optional(),
    /** A shell command line (run with /bin/sh -c) or an argv array (run directly). */
    command: Command.optional(),
    /** Environment name, e.g. `python`, `python:3.11`, `busybox`. Default `python`. */
    environment: Ref.optional(),
    limits: Limits.optional(),
    /** Wall-clock limit; the sandbox is killed when it passes and the result says `timedOut`. */
    timeoutMs: z.number().int().positive().max(7 * 24 * 3600 * 1000).optional(),
    env: EnvVars.optional(),
    /** Working directory inside the sandbox; created if missing. Default /root. */
    cwd: AbsolutePath.optional(),
    files: z.array(FileInput).max(1000).optional(),
    /** Sent to the command's stdin, then closed. Absent: stdin is /dev/null. */
    stdin: z.string().optional(),
    /** Bytes of stdout and of stderr kept in the result (streaming is never cut). Default 8 MiB. */
    maxOutputBytes: z.number().int().min(0).max(256 * 1024 * 1024).optional(),
    /** ephemeral (default): a fresh sandbox, destroyed after. checkpointed: start from `checkpointId` (or a
     * fresh sandbox), run, and snapshot the result; the result carries the new `checkpointId`. cached: a
     * result stored for the same code, environment content, inputs and files returns without running.
     * persistent: run inside the existing sandbox `sandboxId`. */
    mode: z.enum(['ephemeral', 'checkpointed', 'cached', 'persistent']).optional(),
    /** With mode persistent: the running sandbox or instance to run in (state carries over between runs). */
    sandboxId: Ref.optional(),
    /** With mode checkpointed: the snapshot to start from. */
    checkpointId: Ref.optional(),
    /** With mode cached: use (default) a stored result, refresh it (run and store), or off (run, store nothing). */
    cache: z.enum(['use', 'refresh', 'off']).optional(),
    /** Files to return with the result (read when the command ends), at most 16 MiB in all. */
    collect: z.array(SandboxPath).max(100).optional(),
  })
  .refine((p) => (p.code === undefined) !== (p.command === undefined), {
    message: 'give exactly one of `code` or `command`',
  })
  .refine((p) => p.checkpointId === undefined || p.mode === 'checkpointed', {
    message: '`checkpointId` needs mode "checkpointed"',
    path: ['checkpointId'],
  })
  .refine((p) => p.cache === undefined || p.mode === 'cached', { message: '`cache` needs mode "cached"', path: ['cache'] })
  .refine((p) => (p.sandboxId !== undefined) === (p.mode === 'persistent'), {
    message: 'mode "persistent" needs `sandboxId` (and `sandboxId` needs mode "persistent")',
    path: ['sandboxId'],
  })
  .refine((p) => p.mode !== 'persistent' || (p.environment === undefined && p.limits === undefined && p.collect === undefined), {
    message: 'mode "persistent" runs in the sandbox as it is: `environment`, `limits` and `collect` do not apply',
  });
export type ExecRunParams = z.input<typeof ExecRunParams>;

export const ExecResult = z.object({
  execId: z.string(),
  sandboxId: z.string(),
  environment: z.string(),
  /** The exit code, or 128 + the signal number when a signal ended the command. */
  exitCode: z.number().int(),
  /** The signal that ended the command (e.g. SIGKILL), or null. */
  signal: z.string().nullable(),
  stdout: z.string(),
  stderr: z.string(),
  stdoutTruncated: z.boolean(),
  stderrTruncated: z.boolean(),
  durationMs: z.number(),
  /** The memory limit was hit and the kernel killed a process of the sandbox. */
  oomKilled: z.boolean(),
  timedOut: z.boolean(),
  /** The process limit was reached at some point (fork failed with EAGAIN). */
  pidsLimitHit: z.boolean(),
  memoryPeakBytes: z.number().nullable(),
  cpuTimeMs: z.number().nullable(),
  /** mode checkpointed: the snapshot taken after the run. */
  checkpointId: z.string().optional(),
  /** The sandbox came ready from a warm pool (see pool/configure). */
  pooled: z.boolean().optional(),
  /** mode cached: true when this is a stored result and nothing ran. */
  cached: z.boolean().optional(),
  /** The files asked for with `collect` (content base64), read after the command ended. Only regular
   * files are collected: for a path that holds something else (a FIFO, socket, device, directory, or a
   * symlink, which is not followed), `found` is false and `error` says what it is; the run's result
   * stands. A path with nothing at it has `found: false` and no `error`. */
  files: z
    .array(
      z.object({
        path: z.string(),
        content: z.string(),
        size: z.number(),
        truncated: z.boolean(),
        found: z.boolean(),
        error: z.string().optional(),
      }),
    )
    .optional(),
});
export type ExecResult = z.infer<typeof ExecResult>;

export const ExecRun = request(
  'exec/run',
  ExecRunParams,
  ExecResult,
  'Runs code or a command in a fresh sandbox that is destroyed afterwards (ephemeral mode), streaming exec/output; answers when it ends.',
  { http: 'POST /v1/executions/run' },
);

export const ExecStarted = notification(
  'exec/started',
  z.object({ execId: z.string(), sandboxId: z.string(), environment: z.string() }),
  'The sandbox of an execution is running its command.',
);

export const ExecOutput = notification(
  'exec/output',
  z.object({
    execId: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    data: z.string(),
    /** 1, 2, 3... across both streams of one execution, in the order the output was read. */
    seq: z.number().int().positive(),
  }),
  'A chunk of an execution\'s output.',
);
export type ExecOutputParams = z.infer<typeof ExecOutput.params>;

export const ExecBranchParams = z
  .strictObject({
    snapshotId: Ref,
    code: z.string().optional(),
    command: Command.optional(),
    /** map: one branch per input, which the command gets on stdin and as $FORKSPACE_INPUT. */
    inputs: z.array(Arg).min(1).max(64).optional(),
    /** race: how many identical branches run the command. */
    count: z.number().int().min(1).max(64).optional(),
    /** map: every branch runs to the end. race: the first to exit 0 wins and the rest are stopped. */
    strategy: z.enum(['map', 'race']),
    env: EnvVars.optional(),
    cwd: AbsolutePath.optional(),
    timeoutMs: z.number().int().positive().max(7 * 24 * 3600 * 1000).optional(),
    maxOutputBytes: z.number().int().min(0).max(256 * 1024 * 1024).optional(),
    /** Keep the branches after the run (default: destroy them). */
    keep: z.boolean().optional(),
  })
  .refine((p) => (p.code === undefined) !== (p.command === undefined), { message: 'give exactly one of `code` or `command`' })
  .refine((p) => (p.inputs === undefined) !== (p.count === undefined), { message: 'give `inputs` (one branch each) or `count`, not both' });

export const ExecBranch = request(
  'exec/branch',
  ExecBranchParams,
  z.object({
    snapshotId: z.string(),
    strategy: z.enum(['map', 'race']),
    /** One per branch, in input order; a race's losers are marked cancelled (exitCode from SIGKILL). */
    results: z.array(ExecResult),
    /** race: the index of the winner, or null when no branch exited 0. */
    winner: z.number().int().nullable(),
    branchTimeMs: z.number(),
  }),
  'Runs a command in N branches of a snapshot in parallel (the branched mode): map or race.',
  { http: 'POST /v1/snapshots/{snapshotId}/run' },
);

/** What became of an execution: running; finished (the command ended, whatever its exit code; `result`);
 * failed (it could not run or the agent failed; `error`); cancelled (`error` is RequestCancelled). */
export const ExecutionState = z.enum(['running', 'finished', 'failed', 'cancelled']);

export const ExecError = z.object({ code: z.number().int(), name: z.string(), message: z.string(), data: z.unknown().optional() });

export const Execution = z.object({
  execId: z.string(),
  state: ExecutionState,
  startedAtMs: z.number(),
  endedAtMs: z.number().nullable(),
  /** The highest output sequence number so far (0: no output yet). */
  lastSeq: z.number().int(),
  result: ExecResult.optional(),
  error: ExecError.optional(),
});
export type Execution = z.infer<typeof Execution>;

export const ExecStart = request(
  'exec/start',
  ExecRunParams,
  z.object({ execId: z.string(), state: ExecutionState }),
  'Starts what exec/run runs, in any mode, and answers at once with its execId; exec/get (or the stream) gives the result.',
  { http: 'POST /v1/executions' },
);

const ExecRef = z.strictObject({ execId: Ref });

export const ExecGet = request(
  'exec/get',
  z.strictObject({
    execId: Ref,
    /** Wait up to this long for a running execution to end before answering (long poll). Default 0. */
    waitMs: z.number().int().min(0).max(120_000, 'at most 120000 (2 minutes); ask again for longer').optional(),
  }),
  Execution,
  'The state of an execution, with its result once it ended (kept for 10 minutes after).',
  { http: 'GET /v1/executions/{execId}' },
);

export const ExecCancel = request(
  'exec/cancel',
  ExecRef,
  z.object({ execId: z.string(), cancelled: z.boolean() }),
  'Cancels a running execution (its sandbox is killed); false when it had already ended.',
  { http: 'POST /v1/executions/{execId}/cancel' },
);

export const OutputChunk = z.object({ stream: z.enum(['stdout', 'stderr']), data: z.string(), seq: z.number().int().positive() });

export const ExecLog = request(
  'exec/log',
  z.strictObject({
    execId: Ref,
    /** Chunks with a sequence number above this one. Default 0: from the start. */
    after: z.number().int().min(0).default(0),
    limit: z.number().int().min(1).max(10_000).default(1000),
  }),
  z.object({
    execId: z.string(),
    chunks: z.array(OutputChunk),
    /** The oldest sequence number still kept (older output was dropped: the buffer holds 4 MiB). */
    firstSeq: z.number().int(),
    lastSeq: z.number().int(),
    /** The execution ended: no chunk will follow the last one. */
    done: z.boolean(),
  }),
  'The output an execution printed so far, from a sequence number on (what the stream replays on resume).',
  { http: 'GET /v1/executions/{execId}/output' },
);

export const StreamQuery = z.strictObject({
  /** Resume: frames with a sequence number above this one (the last one received). Default 0. */
  after: z.number().int().min(0).optional(),
});

export const ExecStreamFrame = z.discriminatedUnion('type', [
  z.object({ type: z.literal('output'), execId: z.string(), stream: z.enum(['stdout', 'stderr']), data: z.string(), seq: z.number().int().positive() }),
  /** Output `from`..`to` is no longer kept (it exceeded the buffer); the result still has it, up to maxOutputBytes. */
  z.object({ type: z.literal('gap'), execId: z.string(), from: z.number().int(), to: z.number().int() }),
  /** The last frame: the execution ended. */
  z.object({ type: z.literal('end'), execution: Execution }),
]);
export type ExecStreamFrame = z.infer<typeof ExecStreamFrame>;

export const ExecStream = stream(
  'exec/stream',
  'GET /v1/executions/{execId}/stream',
  StreamQuery,
  ExecStreamFrame,
  'WebSocket: an execution\'s output as JSON text frames in sequence order, then an end frame; reconnect with ?after=<last seq> to resume without loss or duplicates.',
);
