// Who is asking, and what they may see. The admin (the agent's own token, the unix socket, the CLI and
// the editor extension) sees and acts on everything. An API key sees and acts only on what it made:
// sandboxes (and the instances, branches and restores among them), the snapshots of those sandboxes,
// executions, terminals, port forwards and exposures. Whatever a key does not own is answered exactly
// as if it did not exist: the not-found errors below are the only ones a key gets for an id, whether
// nothing has that id or something of another key does.
//
// Sandboxes carry their key durably in the runtime's catalog (`policy.principal`, set when made and never
// changed), so ownership survives agent and runtime restarts; a snapshot belongs to the key of the
// sandbox it was taken of. Executions, terminals and exposures live in the agent and carry their key in
// memory; ids the caller chooses for them (execId, terminalId, exposure name) are per key.
import { ErrorCodes, ProtocolError } from '../protocol';

export interface Access {
  /** null: the admin. */
  readonly keyId: string | null;
}

export const ADMIN: Access = Object.freeze({ keyId: null });

export function keyAccess(keyId: string): Access {
  return Object.freeze({ keyId });
}

export function isAdmin(access: Access): boolean {
  return access.keyId === null;
}

/** The namespace of the ids a caller chooses: one per key, one for the admin. */
export function scopeOf(access: Access): string {
  return access.keyId ?? 'admin';
}

/** May `access` see what `principal` (a key id; absent: the admin's) made? */
export function sees(access: Access, principal: string | null | undefined): boolean {
  return access.keyId === null || access.keyId === principal;
}

/** The principal to record on what `access` makes (absent for the admin). */
export function principalOf(access: Access): string | undefined {
  return access.keyId ?? undefined;
}

/** The answers for an id that names nothing visible to the caller. */
export const notFound = {
  sandbox: (id: string) =>
    new ProtocolError(ErrorCodes.SandboxNotFound, `no sandbox ${JSON.stringify(id)} (sandbox/list lists them; a destroyed one stays listed as destroyed)`, { kind: 'runtime' }),
  instance: (id: string) => notFound.sandbox(id),
  snapshot: (ref: string) =>
    new ProtocolError(ErrorCodes.SnapshotNotFound, `no snapshot with id or label "${ref}"; list them with snapshot/list (forkspace snapshots)`),
  execution: (id: string, retentionMinutes: number) =>
    new ProtocolError(
      ErrorCodes.ExecNotFound,
      `no execution ${id}: it never ran here, or ended more than ${retentionMinutes} minutes ago (results are kept that long)`,
    ),
  terminal: (id: string) =>
    new ProtocolError(ErrorCodes.ExecNotFound, `no open terminal ${JSON.stringify(id)} (it was closed, its program ended, or it never was); open one with terminal/open`),
  forward: (id: string) => new ProtocolError(ErrorCodes.ExecNotFound, `no port forward ${JSON.stringify(id)}`, { kind: 'runtime' }),
  exposure: (name: string) => new ProtocolError(ErrorCodes.ExecNotFound, `nothing is exposed as "${name}" (GET /v1/exposures lists what is)`),
  watch: (id: string) => new ProtocolError(ErrorCodes.ExecNotFound, `no watch ${JSON.stringify(id)} (it was released, or its connection closed)`, { kind: 'runtime' }),
};

/** Runs a runtime call whose not-found answer for `id` must read like the agent's own (so a key cannot
 * tell a missing id from another key's by the wording). */
export async function normalizingNotFound<T>(call: Promise<T>, code: number, answer: () => ProtocolError): Promise<T> {
  try {
    return await call;
  } catch (e) {
    if (e instanceof ProtocolError && e.code === code) throw answer();
    throw e;
  }
}
