// Persistent instances (the seed's InstanceManager): long-running sandboxes started from a snapshot or
// an environment, not owned by any connection, that come back when the runtime restarts. Stop takes a
// snapshot first, so resume continues where the instance was.
import { z } from 'zod';
import { AbsolutePath, Command, EnvVars, Labels, Lifecycle, Limits, Ref } from './common';
import { request } from './messages';
import { Sandbox } from './sandboxes';

const { detached: _detached, ...InstanceLifecycle } = Lifecycle;
const InstanceRef = z.strictObject({ instanceId: Ref });
const InstanceResult = z.object({ instance: Sandbox });

export const InstanceStart = request(
  'instance/start',
  z
    .strictObject({
      /** Start from this snapshot (processes and files as they were)... */
      snapshotId: Ref.optional(),
      /** ...or fresh from an environment. Default: `python`. */
      environment: Ref.optional(),
      /** pid 1 of a fresh instance: a shell command line or an argv. Default: an idle shell. */
      command: Command.optional(),
      env: EnvVars.optional(),
      cwd: AbsolutePath.optional(),
      limits: Limits.optional(),
      labels: Labels.optional(),
      ...InstanceLifecycle,
    })
    .refine((p) => p.snapshotId === undefined || (p.environment === undefined && p.command === undefined && p.limits === undefined), {
      message: 'an instance from a snapshot takes its environment, command and limits from the snapshot',
    }),
  InstanceResult,
  'Starts a persistent instance from a snapshot or an environment.',
  { http: 'POST /v1/instances' },
);

export const InstanceStop = request(
  'instance/stop',
  InstanceRef,
  z.object({ instance: Sandbox, snapshotId: z.string() }),
  'Snapshots an instance and ends its processes; instance/resume continues from there.',
  { http: 'POST /v1/instances/{instanceId}/stop' },
);
export const InstancePause = request('instance/pause', InstanceRef, InstanceResult, 'Freezes an instance (memory stays).', {
  http: 'POST /v1/instances/{instanceId}/pause',
});
export const InstanceResume = request('instance/resume', InstanceRef, InstanceResult, 'Thaws a paused instance or starts a stopped one from its snapshot.', {
  http: 'POST /v1/instances/{instanceId}/resume',
});
export const InstanceGet = request('instance/get', InstanceRef, InstanceResult, 'One instance.', { http: 'GET /v1/instances/{instanceId}' });
export const InstanceList = request('instance/list', z.strictObject({}), z.object({ instances: z.array(Sandbox) }), 'Every instance not destroyed (an API key: its own).', {
  http: 'GET /v1/instances',
});
export const InstanceDestroy = request(
  'instance/destroy',
  InstanceRef,
  z.object({ instanceId: z.string(), state: z.string() }),
  'Destroys an instance (its snapshots stay).',
  { http: 'DELETE /v1/instances/{instanceId}' },
);
