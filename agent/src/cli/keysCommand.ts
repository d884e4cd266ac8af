// `forkspace keys create|list|revoke`: API keys of the Direct HTTP API, managed through the agent (so a
// revocation holds from the next request on).
import { KeyCreate, KeyList, KeyRevoke } from '../protocol';
import type { ApiKey, RpcClient } from '../protocol';
import { parseArgs, UsageError } from './args';
import { age } from './format';
import { dim } from './ui';

export const KEYS_USAGE = `API keys (Direct HTTP API):
  forkspace keys create [--name NAME]   make a key; it is printed once (stdout), only its hash is kept
  forkspace keys list [--json]          list keys (never their secrets)
  forkspace keys revoke ID              refuse the key from now on`;

export async function keysCommand(client: RpcClient, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'create') {
    const { flags, positionals } = parseArgs(rest, { name: { value: true } }, false);
    if (positionals.length) throw new UsageError(KEYS_USAGE);
    const r = await client.request(KeyCreate, { name: typeof flags.name === 'string' ? flags.name : undefined });
    console.log(r.secret);
    process.stderr.write(dim(`${r.key.id}${r.key.name ? ` "${r.key.name}"` : ''}: shown only now; send it as Authorization: Bearer <key>\n`));
    return 0;
  }
  if (sub === 'list' || sub === 'ls') {
    const { flags } = parseArgs(rest, { json: {} }, false);
    const { keys } = await client.request(KeyList, {});
    console.log(flags.json ? JSON.stringify(keys, null, 2) : keys.map(keyLine).join('\n') || 'no API keys (forkspace keys create makes one)');
    return 0;
  }
  if (sub === 'revoke' && rest.length === 1) {
    const { key } = await client.request(KeyRevoke, { keyId: rest[0] });
    console.log(`${key.id} revoked`);
    return 0;
  }
  throw new UsageError(KEYS_USAGE);
}

function keyLine(k: ApiKey): string {
  const state = k.revokedAtMs !== null ? `revoked ${age(k.revokedAtMs)}` : k.lastUsedAtMs !== null ? `used ${age(k.lastUsedAtMs)}` : 'never used';
  return `${k.id}  ${`${k.prefix}…`.padEnd(12)} ${(k.name ?? '').padEnd(16)} created ${age(k.createdAtMs).padEnd(9)} ${state}`;
}
