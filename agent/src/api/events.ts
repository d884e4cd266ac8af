// Runtime events every client may want (sandbox consoles, state changes, snapshots), relayed to every
// initialized connection that may see the sandbox or snapshot (core/access.ts: an API key's connection
// hears only of its own), with console bytes decoded per sandbox and stream.
import { TextDecoder } from 'node:util';
import { SandboxChanged, SandboxExpired, SandboxOutput, SnapshotChanged } from '../protocol';
import { RtSandboxChanged, RtSandboxExpired, RtSandboxOutput, RtSnapshotChanged } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { isAdmin, sees, type Access } from '../core/access';
import type { SandboxService } from '../core/sandboxes';
import type { RpcServer } from './rpcServer';

type Audience = (access: Access) => boolean;

export function forwardRuntimeEvents(runtime: RuntimeClient, rpc: RpcServer, sandboxes: SandboxService): void {
  const decoders = new Map<string, TextDecoder>();
  const ordered = new InOrder();
  /** Sends to the admin's connections and to the connections of the key that owns the object. Finding
   * the owner may take a runtime call (the first event of a sandbox the agent did not make); events of
   * one object keep their order meanwhile. */
  const deliver = (object: string, principalOf: () => Promise<string | null | undefined>, known: string | null | undefined, send: (to: Audience) => void) => {
    if (!rpc.hasKeyPeers) return ordered.run(object, () => send(isAdmin));
    if (known !== undefined) return ordered.run(object, () => send((a) => sees(a, known)));
    ordered.run(object, async () => {
      const principal = await principalOf().catch(() => undefined);
      // Nothing in the catalog (an ephemeral run's sandbox): the admin's only.
      send(principal === undefined ? isAdmin : (a) => sees(a, principal));
    });
  };
  const ofSandbox = (id: string, send: (to: Audience) => void) =>
    deliver(id, () => sandboxes.principalOfSandbox(id), sandboxes.sandboxPrincipals.get(id), send);

  runtime.onRuntimeNotification(RtSandboxOutput, (p) => {
    const key = `${p.sandboxId}/${p.stream}`;
    let d = decoders.get(key);
    if (!d) decoders.set(key, (d = new TextDecoder('utf-8')));
    const data = d.decode(Buffer.from(p.dataBase64, 'base64'), { stream: true });
    if (data) ofSandbox(p.sandboxId, (to) => rpc.broadcast(SandboxOutput, { sandboxId: p.sandboxId, stream: p.stream, data, seq: p.seq }, to));
  });
  runtime.onRuntimeNotification(RtSandboxChanged, (p) => {
    if (p.state !== 'running' && p.state !== 'paused') {
      decoders.delete(`${p.sandboxId}/stdout`);
      decoders.delete(`${p.sandboxId}/stderr`);
    }
    ofSandbox(p.sandboxId, (to) => rpc.broadcast(SandboxChanged, { sandboxId: p.sandboxId, state: p.state as never }, to));
  });
  runtime.onRuntimeNotification(RtSandboxExpired, (p) => ofSandbox(p.sandboxId, (to) => rpc.broadcast(SandboxExpired, p, to)));
  runtime.onRuntimeNotification(RtSnapshotChanged, (p) =>
    deliver(p.snapshotId, () => sandboxes.principalOfSnapshot(p.snapshotId), sandboxes.snapshotPrincipals.get(p.snapshotId), (to) =>
      rpc.broadcast(SnapshotChanged, { snapshotId: p.snapshotId, state: p.state as never }, to),
    ),
  );
}

/** Runs tasks one after another per key: at once when nothing of that key is waiting, else after it. */
class InOrder {
  private readonly tails = new Map<string, Promise<void>>();

  run(key: string, task: () => void | Promise<void>): void {
    const tail = this.tails.get(key);
    if (!tail) {
      const r = task();
      if (r instanceof Promise) this.track(key, r);
      return;
    }
    this.track(key, tail.then(task));
  }

  private track(key: string, p: Promise<void>): void {
    const settled = p.catch(() => {});
    this.tails.set(key, settled);
    void settled.then(() => {
      if (this.tails.get(key) === settled) this.tails.delete(key);
    });
  }
}
