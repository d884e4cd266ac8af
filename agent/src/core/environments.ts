// Environments through the runtime: listing, and building once on first use with progress. Concurrent
// requests for the same environment share one build. Names and aliases are the runtime's: it is the one
// place that knows them.
import { ErrorCodes, ProtocolError } from '../protocol';
import type { EnvironmentInfo, ResultOf } from '../protocol';
import { RtEnvBuild, RtEnvList } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';

type BuildResult = ResultOf<typeof RtEnvBuild>;

export class EnvironmentService {
  private readonly builds = new Map<string, Promise<BuildResult>>();

  constructor(private readonly runtime: RuntimeClient) {}

  async list(): Promise<EnvironmentInfo[]> {
    return (await this.runtime.request(RtEnvList, {})).environments;
  }

  /** Builds `name` unless built; `onProgress` gets each line while this call waits. */
  async build(name: string, onProgress?: (message: string) => void): Promise<BuildResult> {
    const info = (await this.list()).find((e) => e.name === name || e.aliases.includes(name));
    const canonical = info?.name ?? name; // an unknown name gets the runtime's error below
    const sub = onProgress ? this.runtime.onEnvProgress(canonical, onProgress) : undefined;
    try {
      let build = this.builds.get(canonical);
      if (!build) {
        build = this.runtime.request(RtEnvBuild, { name: canonical }).finally(() => this.builds.delete(canonical));
        this.builds.set(canonical, build);
      }
      return await build;
    } catch (e) {
      if (e instanceof ProtocolError) throw e;
      throw new ProtocolError(ErrorCodes.EnvironmentBuildFailed, `building ${name} failed: ${(e as Error).message}`);
    } finally {
      sub?.dispose();
    }
  }
}
