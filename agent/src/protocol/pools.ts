// Warm pools: per environment, sandboxes made ahead of time (mounts, cgroup, namespaces, a waiting first
// process) so exec/run only hands over the command. Each pool sizes itself between min and max with
// demand; snapshot pools keep restored, frozen copies of a hot snapshot so a branch is a thaw.
import { z } from 'zod';
import { Ref } from './common';
import { request } from './messages';

export const PoolInfo = z.object({
  environment: z.string(),
  min: z.number(),
  max: z.number(),
  /** What the pool fills to now: grows when runs find it empty, shrinks after a quiet minute. */
  target: z.number(),
  ready: z.number(),
  filling: z.number(),
  hits: z.number(),
  misses: z.number(),
});

export const PoolConfigure = request(
  'pool/configure',
  z.strictObject({ environment: Ref, min: z.number().int().min(0).max(64), max: z.number().int().min(0).max(64) }).refine((p) => p.min <= p.max, {
    message: 'min must not exceed max',
  }),
  PoolInfo,
  'Sizes the warm pool of an environment (max 0 turns it off).',
  { http: 'PUT /v1/pools/{environment}' },
);

export const SnapshotPoolInfo = z.object({
  snapshotId: z.string(),
  /** How many frozen copies the pool keeps. */
  size: z.number(),
  ready: z.number(),
  filling: z.number(),
  /** Branches (and restores) served from the pool. */
  hits: z.number(),
});

export const PoolList = request(
  'pool/list',
  z.strictObject({}),
  z.object({ pools: z.array(PoolInfo), snapshots: z.array(SnapshotPoolInfo) }),
  'Warm pools of environments and snapshots, with their hit counts.',
  { http: 'GET /v1/pools' },
);

export const PoolSnapshot = request(
  'pool/snapshot',
  z.strictObject({ snapshotId: Ref, size: z.number().int().min(0).max(64) }),
  SnapshotPoolInfo,
  'Keeps N copies of a snapshot restored and frozen, so branches and restores of it are a thaw (0 removes the pool).',
  { http: 'PUT /v1/snapshots/{snapshotId}/pool' },
);
