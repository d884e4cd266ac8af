// The scenario ops through the TypeScript SDK.
import { FaaSPlatformClient, ForkspaceError, type ExecResult } from '../../sdk/ts/src';
import { StepError, type Driver, type Outcome } from './scenarios';

const str = (v: unknown) => v as string;

export function sdkDriver(client: FaaSPlatformClient): Driver {
  const wrap = async (f: () => Promise<Outcome>): Promise<Outcome> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof ForkspaceError) throw new StepError(e.message, e.codeName);
      throw e;
    }
  };
  const result = (r: ExecResult): Outcome => ({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, cached: r.cached, checkpointId: r.checkpointId });
  return {
    run: (a) =>
      wrap(async () =>
        result(
          await client.run(str(a.command), {
            environment: a.environment as string | undefined,
            mode: a.mode as 'cached' | undefined,
            ...(a.checkpoint ? { checkpointId: str(a.checkpoint) } : {}),
          }),
        ),
      ),
    sandbox: (a) => wrap(async () => ({ bind: (await client.sandboxes.create({ environment: str(a.environment) })).id })),
    exec: (a) => wrap(async () => result(await client.executePersistent(str(a.command), str(a.sandbox)))),
    snapshot: (a) => wrap(async () => ({ bind: (await client.call('snapshot/create', { sandboxId: str(a.sandbox), label: a.label as string | undefined })).snapshot.id })),
    restore: (a) => wrap(async () => ({ bind: (await client.snapshots.ref(str(a.snapshot)).restore()).id })),
    branch: (a) => wrap(async () => ({ bind: (await client.snapshots.ref(str(a.snapshot)).branch(a.count as number)).map((s) => s.id) })),
    diff: (a) => wrap(async () => ({ changes: (await client.branches.diff(str(a.a), str(a.b))).changes })),
    merge: (a) => wrap(async () => ({ applied: (await client.branches.merge(str(a.from), str(a.into), { strategy: a.strategy as 'theirs' | undefined })).applied })),
    write: (a) => wrap(async () => (await (await client.sandboxes.get(str(a.sandbox))).files.write(str(a.path), str(a.content)), {})),
    read: (a) => wrap(async () => ({ content: await client.snapshots.ref(str(a.id)).files.readText(str(a.path)) })),
    destroy: (a) => wrap(async () => (await client.call('sandbox/destroy', { sandboxId: str(a.sandbox) }), {})),
    deleteSnapshot: (a) => wrap(async () => (await client.snapshots.ref(str(a.snapshot)).delete(), {})),
  };
}
