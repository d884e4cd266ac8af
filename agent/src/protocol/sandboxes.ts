// Persistent sandboxes: created from an environment (or restored from a snapshot), commands run inside,
// paused, stopped (snapshot + end) and started again, destroyed.
import { z } from 'zod';
import { AbsolutePath, Command, EnvVars, Expiry, Id, Labels, Lifecycle, Limits, Policy, PolicyChange, Ref } from './common';
import { ExecResult, FileInput } from './exec';
import { notification, request } from './messages';

export const SandboxState = z.enum(['running', 'paused', 'stopped', 'exited', 'failed', 'destroyed']);
export type SandboxState = z.infer<typeof SandboxState>;

export const Sandbox = z.object({
  id: z.string(),
  environment: z.string(),
  state: SandboxState,
  /** The snapshot it was restored or branched from: its parent in the branch tree. */
  originSnapshot: z.string().nullable(),
  lastSnapshot: z.string().nullable(),
  spec: z.object({
    argv: z.array(z.string()),
    env: z.record(z.string(), z.string()),
    cwd: z.string().nullable(),
    memoryBytes: z.number().nullable(),
    cpus: z.number().nullable(),
    pids: z.number().nullable(),
    /** The disk limit of its writable layer, the default filled in (what `limits.diskBytes` asked for,
     * or its snapshot's sandbox's); null where the runtime enforces none (--fs-store copy). */
    diskBytes: z.number().nullable(),
  }),
  labels: z.record(z.string(), z.string()),
  exitCode: z.number().nullable(),
  createdAtMs: z.number(),
  updatedAtMs: z.number(),
  policy: Policy,
});
export type Sandbox = z.infer<typeof Sandbox>;

const SandboxRef = z.strictObject({ sandboxId: Ref });

export const SandboxCreate = request(
  'sandbox/create',
  z.strictObject({
    environment: Ref.optional(),
    /** pid 1: a shell command line or an argv. Absent: an idle shell, so commands run with sandbox/exec. */
    command: Command.optional(),
    env: EnvVars.optional(),
    cwd: AbsolutePath.optional(),
    limits: Limits.optional(),
    files: z.array(FileInput).max(1000).optional(),
    labels: Labels.optional(),
    ...Lifecycle,
  }),
  z.object({ sandbox: Sandbox }),
  'Creates a persistent sandbox and starts its first process.',
  { http: 'POST /v1/sandboxes' },
);

export const SandboxExecParams = z
  .strictObject({
    sandboxId: Ref,
    execId: Id.optional(),
    code: z.string().optional(),
    command: Command.optional(),
    env: EnvVars.optional(),
    cwd: AbsolutePath.optional(),
    files: z.array(FileInput).max(1000).optional(),
    stdin: z.string().optional(),
    timeoutMs: z.number().int().positive().max(7 * 24 * 3600 * 1000).optional(),
    maxOutputBytes: z.number().int().min(0).max(256 * 1024 * 1024).optional(),
  })
  .refine((p) => (p.code === undefined) !== (p.command === undefined), { message: 'give exactly one of `code` or `command`' });

export const SandboxExec = request(
  'sandbox/exec',
  SandboxExecParams,
  ExecResult,
  'Runs code or a command inside a running sandbox (the persistent mode), streaming exec/output.',
  { http: 'POST /v1/sandboxes/{sandboxId}/exec' },
);

export const SandboxGet = request('sandbox/get', SandboxRef, z.object({ sandbox: Sandbox }), 'One sandbox.', { http: 'GET /v1/sandboxes/{sandboxId}' });
export const SandboxList = request(
  'sandbox/list',
  z.strictObject({
    /** Only sandboxes in this state. */
    state: SandboxState.optional(),
    /** Only sandboxes of this environment (as named when created). */
    environment: Ref.optional(),
    /** Only sandboxes carrying this label, as `key=value` (or `key` for any value). */
    label: Ref.optional(),
  }),
  z.object({ sandboxes: z.array(Sandbox) }),
  'Every sandbox (an API key: every one it made), destroyed ones included (they stay in the branch tree), or those matching the filters.',
  { http: 'GET /v1/sandboxes' },
);

const StateResult = z.object({ sandboxId: z.string(), state: SandboxState });
export const SandboxPause = request('sandbox/pause', SandboxRef, StateResult, 'Freezes every process of a sandbox.', { http: 'POST /v1/sandboxes/{sandboxId}/pause' });
export const SandboxResume = request('sandbox/resume', SandboxRef, StateResult, 'Thaws a paused sandbox.', { http: 'POST /v1/sandboxes/{sandboxId}/resume' });
export const SandboxDestroy = request('sandbox/destroy', SandboxRef, StateResult, 'Destroys a sandbox (its snapshots stay).', { http: 'DELETE /v1/sandboxes/{sandboxId}' });

export const SandboxPolicy = request(
  'sandbox/policy',
  z.strictObject({ sandboxId: Ref, ...PolicyChange }),
  z.object({ sandboxId: z.string(), policy: Policy }),
  'Changes what ends a sandbox: TTL, idle timeout, expiry action, ownership.',
  { http: 'PATCH /v1/sandboxes/{sandboxId}/policy' },
);

export const SandboxWatch = request(
  'sandbox/watch',
  z.strictObject({ sandboxId: Ref }),
  z.object({ watchId: z.string(), sandboxId: z.string() }),
  'Keeps a sandbox active (no idle timeout) until sandbox/unwatch or until this connection closes.',
);

export const SandboxUnwatch = request(
  'sandbox/unwatch',
  z.strictObject({ watchId: Ref }),
  z.object({ released: z.boolean() }),
  'Ends a watch; the idle timeout counts from now.',
);

export const SandboxExpired = notification(
  'sandbox/expired',
  z.object({ sandboxId: z.string(), reason: z.enum(['ttl', 'idle', 'orphaned']), action: Expiry }),
  'A TTL or idle timeout passed, or the owning connection stayed gone past the grace period.',
);

export const SandboxChanged = notification(
  'sandbox/changed',
  z.object({ sandboxId: z.string(), state: SandboxState }),
  'A sandbox changed state (created, paused, stopped, exited, destroyed...).',
);

export const SandboxOutput = notification(
  'sandbox/output',
  z.object({ sandboxId: z.string(), stream: z.enum(['stdout', 'stderr']), data: z.string(), seq: z.number().int().positive() }),
  'Console output of a sandbox\'s first process.',
);

export { ExecResult };
