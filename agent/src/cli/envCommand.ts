// `forkspace env list|build`.
import { EnvBuild, EnvList, EnvProgress } from '../protocol';
import type { RpcClient } from '../protocol';
import { formatBytes, parseArgs, UsageError } from './args';
import { dim } from './ui';

export const ENV_USAGE = `usage: forkspace env list [--json] | build NAME`;

export async function envCommand(client: RpcClient, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') {
    const { environments } = await client.request(EnvList, {});
    if (parseArgs(rest, { json: {} }).flags.json) {
      console.log(JSON.stringify(environments, null, 2));
      return 0;
    }
    for (const e of environments) {
      const names = [e.name, ...e.aliases].join(', ');
      const state = e.manifest ? `built, ${formatBytes(e.manifest.sizeBytes)}` : 'not built (builds on first use)';
      console.log(`${names.padEnd(22)} ${state.padEnd(34)} ${e.description}`);
    }
    return 0;
  }
  if (sub === 'build' && rest.length === 1) {
    const sub = client.onNotification(EnvProgress, (p) => process.stderr.write(dim(p.message) + '\n'));
    try {
      const r = await client.request(EnvBuild, { name: rest[0] });
      console.log(`${r.name}: built (${r.manifest.version}, ${formatBytes(r.manifest.sizeBytes)})`);
      return 0;
    } finally {
      sub.dispose();
    }
  }
  throw new UsageError(ENV_USAGE);
}
