// Snapshots (CRIU process tree + filesystem layer, taken while the sandbox keeps running), restores,
// branches (N running copies), stop/start.
import { z } from 'zod';
import { Lifecycle, Ref, RestoreLimits, Text } from './common';
import { notification, request } from './messages';
import { Sandbox } from './sandboxes';

export const Snapshot = z.object({
  id: z.string(),
  /** The sandbox it was taken from. */
  sandboxId: z.string(),
  /** That sandbox's own origin snapshot: this snapshot's grandparent in the branch tree. */
  parentSnapshot: z.string().nullable(),
  environment: z.string(),
  label: z.string().nullable(),
  /** Bytes of memory pages captured. */
  memoryBytes: z.number(),
  /** Bytes of files in its layer (the changes over the environment). */
  fsBytes: z.number(),
  createdAtMs: z.number(),
});
export type Snapshot = z.infer<typeof Snapshot>;

export const SnapshotTimings = z.object({
  /** How long the sandbox's processes were frozen. */
  pauseMs: z.number(),
  dumpMs: z.number(),
  fsMs: z.number(),
  totalMs: z.number(),
});

const SnapshotRef = z.strictObject({ snapshotId: Ref });
const Created = z.object({ snapshot: Snapshot, timings: SnapshotTimings });

export const SnapshotCreate = request(
  'snapshot/create',
  z.strictObject({
    sandboxId: Ref,
    /** Default true: the sandbox keeps running. False: it stops at the snapshot (sandbox/start resumes it). */
    leaveRunning: z.boolean().optional(),
    label: Text.max(200).optional(),
  }),
  Created,
  'Snapshots a running sandbox: processes, memory and files, consistently.',
  { http: 'POST /v1/sandboxes/{sandboxId}/snapshots' },
);

export const Restored = z.object({
  sandboxId: z.string(),
  snapshotId: z.string(),
  /** Memory pages arrive on demand (large images); the processes already run. */
  lazy: z.boolean(),
  timeToRunningMs: z.number(),
  /** A frozen copy from the snapshot's pool was thawed (no CRIU restore). */
  pooled: z.boolean().optional(),
});

export const SnapshotRestore = request(
  'snapshot/restore',
  z.strictObject({ snapshotId: Ref, limits: RestoreLimits.optional(), ...Lifecycle }),
  Restored,
  'Restores a snapshot into a new running sandbox.',
  { http: 'POST /v1/snapshots/{snapshotId}/restore' },
);

export const SnapshotBranch = request(
  'snapshot/branch',
  z.strictObject({ snapshotId: Ref, count: z.number().int().min(1).max(64), limits: RestoreLimits.optional(), ...Lifecycle }),
  z.object({ snapshotId: z.string(), branches: z.array(Restored), totalMs: z.number() }),
  'Restores a snapshot into N independent running sandboxes at once (all or nothing).',
  { http: 'POST /v1/snapshots/{snapshotId}/branch' },
);

export const SnapshotGet = request('snapshot/get', SnapshotRef, z.object({ snapshot: Snapshot }), 'One snapshot (by id or unique label; an API key\'s labels resolve among its own snapshots).', {
  http: 'GET /v1/snapshots/{snapshotId}',
});
export const SnapshotList = request(
  'snapshot/list',
  z.strictObject({
    /** Only snapshots taken of this sandbox. */
    sandboxId: Ref.optional(),
    /** Only snapshots with this label. */
    label: Ref.optional(),
  }),
  z.object({ snapshots: z.array(Snapshot) }),
  'Every snapshot (an API key: those of its own sandboxes), or those matching the filters.',
  { http: 'GET /v1/snapshots' },
);
export const SnapshotDelete = request(
  'snapshot/delete',
  SnapshotRef,
  z.object({ snapshotId: z.string(), deleted: z.boolean() }),
  'Deletes a snapshot (sandboxes made from it keep running).',
  { http: 'DELETE /v1/snapshots/{snapshotId}' },
);

export const SandboxStop = request(
  'sandbox/stop',
  z.strictObject({ sandboxId: Ref }),
  Created,
  'Stops a sandbox: snapshots it and ends its processes; sandbox/start brings it back as it was.',
  { http: 'POST /v1/sandboxes/{sandboxId}/stop' },
);

export const SandboxStart = request(
  'sandbox/start',
  z.strictObject({ sandboxId: Ref }),
  Restored,
  'Starts a stopped sandbox again from its last snapshot, under the same id.',
  { http: 'POST /v1/sandboxes/{sandboxId}/start' },
);

export const SnapshotChanged = notification(
  'snapshot/changed',
  z.object({ snapshotId: z.string(), state: z.enum(['ready', 'deleted']) }),
  'A snapshot was completed or deleted.',
);

export { Sandbox };
