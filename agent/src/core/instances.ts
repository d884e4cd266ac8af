// Persistent instances: detached sandboxes with `autostart`, so the runtime starts them again after a
// restart if they were running. Stop snapshots first; resume thaws a paused instance or starts a
// stopped one from that snapshot.
import type { z } from 'zod';
import { ErrorCodes, ProtocolError } from '../protocol';
import type { InstanceStart } from '../protocol/instances';
import { policyFor, type SandboxService } from './sandboxes';

type StartParams = z.output<typeof InstanceStart.params>;

export class InstanceService {
  constructor(private readonly sandboxes: SandboxService) {}

  async start(p: StartParams) {
    const lifecycle = { ttlMs: p.ttlMs, idleTimeoutMs: p.idleTimeoutMs, onExpiry: p.onExpiry };
    if (p.snapshotId !== undefined) {
      const { sandboxId } = await this.sandboxes.restore(p.snapshotId, policyFor(lifecycle, undefined, true));
      return this.get(sandboxId);
    }
    const { sandbox } = await this.sandboxes.create({ ...p, ...lifecycle, detached: true }, undefined, true);
    return { instance: sandbox };
  }

  async get(instanceId: string) {
    const { sandbox } = await this.sandboxes.get(instanceId);
    if (!sandbox.policy.instance) {
      throw new ProtocolError(
        ErrorCodes.SandboxNotFound,
        `${instanceId} is a sandbox, not an instance; use the sandbox/* methods, or make it one with sandbox/policy { instance: true }`,
      );
    }
    return { instance: sandbox };
  }

  async list() {
    const { sandboxes } = await this.sandboxes.list();
    return { instances: sandboxes.filter((s) => s.policy.instance && s.state !== 'destroyed') };
  }

  async stop(instanceId: string) {
    await this.get(instanceId);
    const { snapshot } = await this.sandboxes.stop(instanceId);
    return { ...(await this.get(instanceId)), snapshotId: snapshot.id };
  }

  async pause(instanceId: string) {
    await this.get(instanceId);
    await this.sandboxes.pause(instanceId);
    return this.get(instanceId);
  }

  async resume(instanceId: string) {
    const { instance } = await this.get(instanceId);
    if (instance.state === 'paused') await this.sandboxes.resume(instanceId);
    else if (instance.state === 'stopped' || instance.state === 'failed') await this.sandboxes.start(instanceId);
    else if (instance.state !== 'running') {
      throw new ProtocolError(ErrorCodes.SandboxState, `instance ${instanceId} is ${instance.state}; only a paused or stopped instance can be resumed`);
    }
    return this.get(instanceId);
  }

  async destroy(instanceId: string) {
    await this.get(instanceId);
    const r = await this.sandboxes.destroy(instanceId);
    return { instanceId, state: r.state };
  }
}
