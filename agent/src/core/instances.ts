// Persistent instances: detached sandboxes with `autostart`, so the runtime starts them again after a
// restart if they were running. Stop snapshots first; resume thaws a paused instance or starts a
// stopped one from that snapshot.
import type { z } from 'zod';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { InstanceStart } from '../protocol/instances';
import type { Access } from './access';
import { policyFor, type SandboxService } from './sandboxes';

type StartParams = z.output<typeof InstanceStart.params>;

export class InstanceService {
  constructor(private readonly sandboxes: SandboxService) {}

  async start(p: StartParams, access: Access) {
    const lifecycle = { ttlMs: p.ttlMs, idleTimeoutMs: p.idleTimeoutMs, onExpiry: p.onExpiry };
    if (p.snapshotId !== undefined) {
      const { sandboxId } = await this.sandboxes.restore(p.snapshotId, policyFor(lifecycle, undefined, access, true), access);
      return this.get(sandboxId, access);
    }
    const { sandbox } = await this.sandboxes.create({ ...p, ...lifecycle, detached: true }, undefined, access, true);
    return { instance: sandbox };
  }

  async get(instanceId: string, access: Access) {
    const { sandbox } = await this.sandboxes.get(instanceId, access);
    if (!sandbox.policy.instance) {
      throw new ProtocolError(
        ErrorCodes.SandboxNotFound,
        `${instanceId} is a sandbox, not an instance; use the sandbox/* methods, or make it one with sandbox/policy { instance: true }`,
      );
    }
    return { instance: sandbox };
  }

  async list(access: Access) {
    const { sandboxes } = await this.sandboxes.list({}, access);
    return { instances: sandboxes.filter((s) => s.policy.instance && s.state !== 'destroyed') };
  }

  async stop(instanceId: string, access: Access) {
    await this.get(instanceId, access);
    const { snapshot } = await this.sandboxes.stop(instanceId, access);
    return { ...(await this.get(instanceId, access)), snapshotId: snapshot.id };
  }

  async pause(instanceId: string, access: Access) {
    await this.get(instanceId, access);
    await this.sandboxes.pause(instanceId, access);
    return this.get(instanceId, access);
  }

  async resume(instanceId: string, access: Access) {
    const { instance } = await this.get(instanceId, access);
    if (instance.state === 'paused') await this.sandboxes.resume(instanceId, access);
    else if (instance.state === 'stopped' || instance.state === 'failed') await this.sandboxes.start(instanceId, access);
    else if (instance.state !== 'running') {
      throw new ProtocolError(ErrorCodes.SandboxState, `instance ${instanceId} is ${instance.state}; only a paused or stopped instance can be resumed`);
    }
    return this.get(instanceId, access);
  }

  async destroy(instanceId: string, access: Access) {
    await this.get(instanceId, access);
    const r = await this.sandboxes.destroy(instanceId, access);
    return { instanceId, state: r.state };
  }
}
