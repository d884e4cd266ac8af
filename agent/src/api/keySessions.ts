// Every open connection an API key authenticated (JSON-RPC WebSockets, execution and terminal streams,
// relayed exposure connections), so that revoking the key ends them all at once: a key that no longer
// authenticates a new request must not keep working on a socket it opened before.
import type { Access } from '../core/access';

export type EndSession = () => void;

export class KeySessions {
  private readonly byKey = new Map<string, Set<EndSession>>();

  /** Remembers a connection of `access` until the returned function is called (when it closes). The
   * admin's connections are not tracked: its token is not revocable. */
  track(access: Access, end: EndSession): () => void {
    const keyId = access.keyId;
    if (keyId === null) return () => {};
    let set = this.byKey.get(keyId);
    if (!set) this.byKey.set(keyId, (set = new Set()));
    set.add(end);
    return () => {
      set.delete(end);
      if (set.size === 0 && this.byKey.get(keyId) === set) this.byKey.delete(keyId);
    };
  }

  /** Ends every connection of a revoked key; returns how many there were. */
  revoke(keyId: string): number {
    const set = this.byKey.get(keyId);
    this.byKey.delete(keyId);
    for (const end of set ?? []) end();
    return set?.size ?? 0;
  }
}
