// Port forwards (through the runtime) and named HTTP exposures (on the agent's HTTP listener).
import { ErrorCodes, ProtocolError } from '../protocol';
import { RtPortForward, RtPortList, RtPortUnforward } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';

interface Exposure {
  name: string;
  sandboxId: string;
  port: number;
  forwardId: string;
  hostPort: number;
}

export class PortService {
  private readonly exposures = new Map<string, Exposure>();

  constructor(
    private readonly runtime: RuntimeClient,
    private readonly url: (name: string) => string,
  ) {}

  forward(sandboxId: string, port: number, hostPort?: number, hostAddress?: string) {
    return this.runtime.request(RtPortForward, { sandboxId, port, hostPort, hostAddress });
  }

  unforward(forwardId: string) {
    return this.runtime.request(RtPortUnforward, { forwardId });
  }

  list(sandboxId?: string) {
    return this.runtime.request(RtPortList, { sandboxId });
  }

  async expose(sandboxId: string, port: number, name: string) {
    if (this.exposures.has(name)) {
      throw new ProtocolError(ErrorCodes.InvalidParams, `"${name}" is already exposed (${this.exposures.get(name)!.sandboxId}:${this.exposures.get(name)!.port}); hide it first or pick another name`);
    }
    const f = await this.forward(sandboxId, port);
    this.exposures.set(name, { name, sandboxId, port, forwardId: f.forwardId, hostPort: f.hostPort });
    return { name, sandboxId, port, url: this.url(name) };
  }

  async hide(name: string) {
    const e = this.exposures.get(name);
    if (!e) throw new ProtocolError(ErrorCodes.ExecNotFound, `nothing is exposed as "${name}"`);
    this.exposures.delete(name);
    await this.unforward(e.forwardId).catch(() => {});
    return { removed: true };
  }

  listExposures() {
    return { exposures: [...this.exposures.values()].map((e) => ({ name: e.name, sandboxId: e.sandboxId, port: e.port, url: this.url(e.name) })) };
  }

  target(name: string): { hostPort: number } | undefined {
    const e = this.exposures.get(name);
    return e ? { hostPort: e.hostPort } : undefined;
  }
}
