// Who owns the sandboxes the agent makes, and the watches that keep them active.
//   Each connection (peer) is an owner: sandboxes it makes without `detached` belong to it, and when it
//   closes the runtime is told, which destroys them after its grace period unless the connection's
//   client claims them again first (sandbox/policy detached: false from a new connection).
//   The agent itself owns the temporary sandboxes of execution modes: if the agent dies mid-run, its
//   runtime connection closes and they are reaped the same way.
//   A watch is a runtime hold: the sandbox counts as active until the watch ends or its connection closes.
import { randomUUID } from 'node:crypto';
import { RtOwnerGone, RtSandboxHold, RtSandboxRelease } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { isAdmin, notFound, scopeOf, type Access } from './access';

export interface OwnerPeer {
  readonly id: number;
  /** An HTTP request: owns nothing, so what it makes is detached. */
  readonly stateless?: boolean;
  readonly access: Access;
}

export class Ownership {
  /** Distinguishes this agent process's owners from an earlier one's (peer ids restart at 1). */
  private readonly boot = randomUUID().slice(0, 8);
  private readonly watches = new Map<string, OwnerPeer>();

  constructor(private readonly runtime: RuntimeClient) {}

  /** The owner of what `peer` makes; none (detached) for HTTP requests, which have no connection to end. */
  ownerOf(peer: OwnerPeer): string | undefined {
    return peer.stateless ? undefined : `peer-${this.boot}-${peer.id}`;
  }

  /** Owner of the agent's own temporary sandboxes. */
  get agentOwner(): string {
    return `agent-${this.boot}`;
  }

  async watch(sandboxId: string, peer: OwnerPeer) {
    const watchId = `watch-${randomUUID().slice(0, 12)}`;
    await this.runtime.request(RtSandboxHold, { holdId: watchId, sandboxId });
    this.watches.set(watchId, peer);
    return { watchId, sandboxId };
  }

  /** Ends a watch of the caller's key (the admin may end any). */
  async unwatch(watchId: string, caller?: OwnerPeer) {
    const holder = this.watches.get(watchId);
    if (caller && !isAdmin(caller.access) && (!holder || scopeOf(holder.access) !== scopeOf(caller.access))) throw notFound.watch(watchId);
    const r = await this.runtime.request(RtSandboxRelease, { holdId: watchId });
    this.watches.delete(watchId);
    return r;
  }

  /** A connection closed: its watches end and its sandboxes start their grace period. */
  async peerClosed(peer: OwnerPeer): Promise<void> {
    const mine = [...this.watches].filter(([, p]) => p === peer).map(([id]) => id);
    await Promise.all(mine.map((id) => this.unwatch(id).catch(() => this.watches.delete(id))));
    const owner = this.ownerOf(peer);
    if (owner && this.runtime.connected) await this.runtime.request(RtOwnerGone, { owner }).catch(() => {});
  }
}
