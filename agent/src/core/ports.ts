// Port forwards (through the runtime) and named HTTP exposures (on the agent's HTTP listener).
//   A forward is a TCP listener on the host that the user asked for (like `docker -p`); it belongs to
//   the key of its sandbox. An exposure has no TCP listener at all: the runtime relays a unix socket
//   that only its user can reach to the sandbox port, and the agent serves it under /v1/expose/NAME/ to
//   requests carrying the key that made it (or the admin's token). Names are per key. Both end with
//   their sandbox: the runtime closes its sockets when the sandbox stops, exits or is destroyed, and
//   the agent forgets the exposure then (sandboxGone), so a later request is a plain 404.
import { ErrorCodes, ProtocolError } from '../protocol';
import { RtPortExpose, RtPortForward, RtPortList, RtPortUnforward } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import { isAdmin, normalizingNotFound, notFound, scopeOf, sees, type Access } from './access';
import type { SandboxService } from './sandboxes';

interface Exposure {
  name: string;
  scope: string;
  sandboxId: string;
  port: number;
  forwardId: string;
  socketPath: string;
}

/** Where the agent relays an exposure's requests. */
export interface ExposureTarget {
  socketPath: string;
}

export class PortService {
  /** By scope and name. */
  private readonly exposures = new Map<string, Exposure>();

  constructor(
    private readonly runtime: RuntimeClient,
    private readonly sandboxes: SandboxService,
    private readonly url: (name: string) => string,
  ) {}

  async forward(sandboxId: string, port: number, hostPort: number | undefined, hostAddress: string | undefined, access: Access) {
    await this.sandboxes.checkSandbox(sandboxId, access);
    return this.runtime.request(RtPortForward, { sandboxId, port, hostPort, hostAddress });
  }

  async unforward(forwardId: string, access: Access) {
    if (!isAdmin(access)) {
      const f = (await this.runtime.request(RtPortList, {})).forwards.find((x) => x.forwardId === forwardId);
      if (!f || !(await this.visible(f.sandboxId, access))) throw notFound.forward(forwardId);
    }
    return normalizingNotFound(this.runtime.request(RtPortUnforward, { forwardId }), ErrorCodes.ExecNotFound, () => notFound.forward(forwardId));
  }

  async list(sandboxId: string | undefined, access: Access) {
    const { forwards } = await this.runtime.request(RtPortList, { sandboxId });
    if (isAdmin(access)) return { forwards };
    const mine = await Promise.all(forwards.map((f) => this.visible(f.sandboxId, access)));
    return { forwards: forwards.filter((_, i) => mine[i]) };
  }

  async expose(sandboxId: string, port: number, name: string, access: Access) {
    await this.sandboxes.checkSandbox(sandboxId, access);
    const scope = scopeOf(access);
    const taken = this.exposures.get(keyOf(scope, name));
    if (taken) {
      throw new ProtocolError(ErrorCodes.InvalidParams, `"${name}" is already exposed (${taken.sandboxId}:${taken.port}); hide it first or pick another name`);
    }
    const e = await this.runtime.request(RtPortExpose, { sandboxId, port });
    if (this.exposures.has(keyOf(scope, name))) {
      await this.runtime.request(RtPortUnforward, { forwardId: e.forwardId }).catch(() => {});
      throw new ProtocolError(ErrorCodes.InvalidParams, `"${name}" was exposed by another request just now; hide it first or pick another name`);
    }
    this.exposures.set(keyOf(scope, name), { name, scope, sandboxId, port, forwardId: e.forwardId, socketPath: e.socketPath });
    return { name, sandboxId, port, url: this.url(name) };
  }

  async hide(name: string, access: Access) {
    const e = this.find(name, access);
    if (!e) throw notFound.exposure(name);
    this.drop(e);
    return { removed: true };
  }

  listExposures(access: Access) {
    const visible = [...this.exposures.values()].filter((e) => isAdmin(access) || e.scope === scopeOf(access));
    return { exposures: visible.map((e) => ({ name: e.name, sandboxId: e.sandboxId, port: e.port, url: this.url(e.name) })) };
  }

  /** Where a request for `name` from `access` goes, if anywhere. */
  target(name: string, access: Access): ExposureTarget | undefined {
    const e = this.find(name, access);
    return e && { socketPath: e.socketPath };
  }

  /** The runtime closed an exposure's socket (its sandbox went, or the runtime restarted). */
  gone(target: ExposureTarget): void {
    for (const e of this.exposures.values()) if (e.socketPath === target.socketPath) this.drop(e);
  }

  /** A sandbox stopped, exited or was destroyed: its exposures end with it. */
  sandboxGone(sandboxId: string): void {
    for (const e of [...this.exposures.values()]) if (e.sandboxId === sandboxId) this.drop(e);
  }

  private drop(e: Exposure): void {
    this.exposures.delete(keyOf(e.scope, e.name));
    void this.runtime.request(RtPortUnforward, { forwardId: e.forwardId }).catch(() => {});
  }

  /** The caller's own exposure of that name; for the admin its own, else the only one of that name. */
  private find(name: string, access: Access): Exposure | undefined {
    const own = this.exposures.get(keyOf(scopeOf(access), name));
    if (own || !isAdmin(access)) return own;
    const named = [...this.exposures.values()].filter((e) => e.name === name);
    return named.length === 1 ? named[0] : undefined;
  }

  private async visible(sandboxId: string, access: Access): Promise<boolean> {
    return sees(access, await this.sandboxes.principalOfSandbox(sandboxId));
  }
}

function keyOf(scope: string, name: string): string {
  return `${scope}\0${name}`;
}
