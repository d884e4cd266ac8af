// Shapes shared by several messages.
import { z } from 'zod';

/** Ids callers may choose (execIds): safe as file names and log keys. */
export const Id = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'use 1-64 characters of A-Z a-z 0-9 . _ -');

// Text that names something (a path, an id, a label) never holds C0 control characters or DEL: a NUL
// cannot reach a system call at all, and the others only serve to confuse logs and terminals. Every
// such field of every method is one of these, so JSON-RPC and REST refuse them alike (InvalidParams,
// naming the field) before anything reaches the runtime.
const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const NO_CONTROL_MESSAGE = 'must not contain NUL or other control characters (U+0000-U+001F, U+007F)';
const NO_NUL = /^[^\u0000]*$/;
const NO_NUL_MESSAGE = 'must not contain NUL (U+0000): a program argument or environment value cannot carry it';

/** Printable text: labels, names. */
export const Text = z.string().regex(NO_CONTROL, NO_CONTROL_MESSAGE);
/** A reference to something the agent or runtime keeps: a sandbox, snapshot (id or label), execution,
 * terminal, forward, environment. */
export const Ref = z.string().min(1).regex(NO_CONTROL, NO_CONTROL_MESSAGE);
/** A path inside a sandbox or snapshot (absolute, or relative to the working directory). */
export const SandboxPath = z.string().min(1).regex(NO_CONTROL, NO_CONTROL_MESSAGE);
/** An absolute path inside a sandbox (working directories). */
export const AbsolutePath = SandboxPath.startsWith('/', 'must be an absolute path');
/** A program argument or environment value: anything but NUL (newlines and tabs are fine). */
export const Arg = z.string().regex(NO_NUL, NO_NUL_MESSAGE);
/** An environment variable's name and value. */
export const EnvVars = z.record(Text, Arg);
/** pid 1 or a command: a shell command line (run with /bin/sh -c) or an argv. */
export const Command = z.union([Arg.min(1), z.array(Arg).min(1)]);
/** Labels of a sandbox: printable keys and values. */
export const Labels = z.record(Ref, Text);
const DiskBytes = z.number().int().min(16 * 1024 * 1024, 'at least 16 MiB').max(Number.MAX_SAFE_INTEGER);

export const Limits = z.strictObject({
  /** Memory limit in bytes; exceeding it OOM-kills the sandbox. Default 512 MiB. */
  memoryBytes: z.number().int().min(8 * 1024 * 1024, 'at least 8 MiB').optional(),
  /** CPU quota in cores (0.5 = half a core). Default: no quota. */
  cpus: z.number().positive().max(1024).optional(),
  /** Maximum number of processes and threads. Default 1024; more than the host's
   * /proc/sys/kernel/pid_max is refused. */
  pids: z.number().int().min(1).max(4194304).optional(),
  /** Bytes the sandbox may add to its files over its environment (its writable layer); writing past it
   * fails inside the sandbox with EDQUOT ("Disk quota exceeded"). Default 10 GiB (a quarter of the
   * runtime's disk pool when that is smaller). Refused where the runtime cannot enforce it (a runtime
   * started with --fs-store copy). */
  diskBytes: DiskBytes.optional(),
});
export type Limits = z.infer<typeof Limits>;

/** What a sandbox made from a snapshot may set for itself; memory, CPU and pids come with its
 * processes. Default: the limits of the snapshot's sandbox. */
export const RestoreLimits = z.strictObject({
  diskBytes: DiskBytes.optional(),
});
export type RestoreLimits = z.infer<typeof RestoreLimits>;

export const Empty = z.strictObject({});
export type Empty = z.infer<typeof Empty>;

/** What a TTL or idle timeout does: stop (processes end, files stay), pause (freeze),
 * snapshot-then-stop (snapshot, then end; start brings it back as it was) or destroy. */
export const Expiry = z.enum(['stop', 'pause', 'snapshot-then-stop', 'destroy']);
export type Expiry = z.infer<typeof Expiry>;

const YEAR_MS = 365 * 24 * 3600 * 1000;
const Timeout = z.number().int().min(1).max(YEAR_MS, 'at most a year');

/** Lifecycle options of anything that makes a running sandbox. */
export const Lifecycle = {
  /** Absolute lifetime from creation; `onExpiry` happens when it passes, busy or not. */
  ttlMs: Timeout.optional(),
  /** Lifetime without activity: no command or terminal running, no watch stream, no forwarded
   * connection (SSH included). API calls that run nothing do not count. */
  idleTimeoutMs: Timeout.optional(),
  /** Default snapshot-then-stop: nothing is lost. */
  onExpiry: Expiry.optional(),
  /** Default false: the sandbox belongs to this connection and is destroyed when the connection has been
   * gone for the agent's grace period (60 s by default). True: it lives until stopped, destroyed or
   * expired. */
  detached: z.boolean().optional(),
};

/** A sandbox's lifecycle as it stands. */
export const Policy = z.object({
  ttlMs: z.number().nullable(),
  idleTimeoutMs: z.number().nullable(),
  onExpiry: Expiry,
  /** An instance: started again when the runtime restarts, if it was running. */
  instance: z.boolean(),
  /** Not owned by any connection. */
  detached: z.boolean(),
});
export type Policy = z.infer<typeof Policy>;

/** A policy change: absent fields stay, null clears a timeout. */
export const PolicyChange = {
  ttlMs: Timeout.nullable().optional(),
  idleTimeoutMs: Timeout.nullable().optional(),
  onExpiry: Expiry.optional(),
  /** true: the sandbox no longer belongs to any connection. false: it now belongs to this one. */
  detached: z.boolean().optional(),
  /** true: make it an instance (detached, started again after a runtime restart). */
  instance: z.boolean().optional(),
};
