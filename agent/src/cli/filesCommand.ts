// `forkspace cp` and `forkspace files`: files in and out of sandboxes (and out of snapshots), streamed in
// chunks, so a file of any size never sits whole in memory.
import * as fs from 'node:fs';
import { FilesList, FilesRead, FilesRemove, FilesWrite, MAX_FILE_CHUNK } from '../protocol';
import type { RpcClient } from '../protocol';
import { formatBytes, parseArgs, UsageError } from './args';

export const FILES_USAGE = `files:
  forkspace cp LOCAL ID:PATH            copy a local file into a sandbox
  forkspace cp ID:PATH LOCAL            copy a file out of a sandbox or snapshot (- for stdout)
  forkspace files ls ID[:PATH]          list a directory
  forkspace files rm [-r] ID:PATH       remove a file (or a directory with -r)`;

const CHUNK = 4 * 1024 * 1024;

function remote(spec: string): { id: string; path: string } | undefined {
  const m = /^((?:sbx|snap)-[0-9a-f]+):(.*)$/.exec(spec);
  return m ? { id: m[1], path: m[2] || '/' } : undefined;
}

export async function cpCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { positionals } = parseArgs(argv, {}, false);
  if (positionals.length !== 2) throw new UsageError(FILES_USAGE);
  const [src, dst] = positionals;
  const from = remote(src);
  const to = remote(dst);
  if (!from && to) {
    const fd = fs.openSync(src, 'r');
    const mode = fs.fstatSync(fd).mode & 0o7777;
    const buf = Buffer.alloc(CHUNK);
    let offset = 0;
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, CHUNK, offset);
        if (n === 0 && offset > 0) break;
        await client.request(FilesWrite, { sandboxId: to.id, path: to.path, content: buf.subarray(0, n).toString('base64'), encoding: 'base64', offset, mode });
        offset += n;
        if (n < CHUNK) break;
      }
    } finally {
      fs.closeSync(fd);
    }
    console.error(`copied ${formatBytes(offset)} to ${dst}`);
    return 0;
  }
  if (from && !to) {
    const out = dst === '-' ? 1 : fs.openSync(dst, 'w');
    let offset = 0;
    try {
      for (;;) {
        const r = await client.request(FilesRead, { id: from.id, path: from.path, offset, length: Math.min(CHUNK, MAX_FILE_CHUNK) });
        const bytes = Buffer.from(r.content, 'base64');
        fs.writeSync(out, bytes);
        offset += bytes.length;
        if (r.eof || bytes.length === 0) break;
      }
    } finally {
      if (out !== 1) fs.closeSync(out);
    }
    if (dst !== '-') console.error(`copied ${formatBytes(offset)} to ${dst}`);
    return 0;
  }
  throw new UsageError(`one side must be a sandbox path (sbx-…:/path), the other a local file\n\n${FILES_USAGE}`);
}

export async function filesCommand(client: RpcClient, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { flags, positionals } = parseArgs(rest, { recursive: { alias: 'r' } }, false);
  if (sub === 'ls' && positionals.length === 1) {
    const target = remote(positionals[0]) ?? { id: positionals[0], path: '/' };
    const { entries } = await client.request(FilesList, { id: target.id, path: target.path });
    for (const e of entries) console.log(`${e.kind.padEnd(7)} ${(e.mode & 0o7777).toString(8).padStart(4, '0')} ${formatBytes(e.size).padStart(10)}  ${e.name}`);
    return 0;
  }
  if (sub === 'rm' && positionals.length === 1) {
    const target = remote(positionals[0]);
    if (!target) throw new UsageError('usage: forkspace files rm [-r] ID:PATH');
    await client.request(FilesRemove, { sandboxId: target.id, path: target.path, recursive: flags.recursive === true });
    return 0;
  }
  throw new UsageError(FILES_USAGE);
}
