// Files into and out of sandboxes, and out of snapshots, in chunks (at most 8 MiB each): large files are
// never held whole by the agent or the runtime. Paths resolve inside the sandbox; `..` and symlinks
// cannot leave it.
import { z } from 'zod';
import { Ref, SandboxPath } from './common';
import { request } from './messages';

export const MAX_FILE_CHUNK = 8 * 1024 * 1024;

export const FilesWrite = request(
  'files/write',
  z.strictObject({
    sandboxId: Ref,
    path: SandboxPath,
    content: z.string(),
    encoding: z.enum(['utf8', 'base64']).default('utf8'),
    /** Where this chunk goes in the file. */
    offset: z.number().int().min(0).default(0),
    /** Start the file afresh. Default: true for a chunk at offset 0, false otherwise. */
    truncate: z.boolean().optional(),
    mode: z.number().int().min(0).max(0o7777).optional(),
  }),
  z.object({ path: z.string(), written: z.number(), end: z.number() }),
  'Writes a file (or one chunk of it) into a running or paused sandbox.',
  { http: 'POST /v1/sandboxes/{sandboxId}/files' },
);

export const FilesRead = request(
  'files/read',
  z.strictObject({
    /** A sandbox or a snapshot. */
    id: Ref,
    path: SandboxPath,
    offset: z.number().int().min(0).default(0),
    length: z.number().int().min(0).max(MAX_FILE_CHUNK).default(MAX_FILE_CHUNK),
    encoding: z.enum(['utf8', 'base64']).default('base64'),
  }),
  z.object({ content: z.string(), encoding: z.enum(['utf8', 'base64']), offset: z.number(), size: z.number(), eof: z.boolean() }),
  'Reads a file (or one chunk of it) from a sandbox or a snapshot.',
  { http: 'GET /v1/files/{id}/content' },
);

export const FileEntry = z.object({
  name: z.string(),
  kind: z.enum(['file', 'dir', 'symlink', 'other']),
  size: z.number(),
  mode: z.number(),
  mtimeMs: z.number(),
});
export type FileEntry = z.infer<typeof FileEntry>;

export const FilesList = request(
  'files/list',
  z.strictObject({ id: Ref, path: SandboxPath.default('/') }),
  z.object({ entries: z.array(FileEntry) }),
  'Lists a directory of a sandbox or a snapshot.',
  { http: 'GET /v1/files/{id}/list' },
);

export const FilesRemove = request(
  'files/remove',
  z.strictObject({ sandboxId: Ref, path: SandboxPath, recursive: z.boolean().default(false) }),
  z.object({ removed: z.boolean() }),
  'Removes a file, or a directory (non-empty ones with recursive).',
  { http: 'DELETE /v1/sandboxes/{sandboxId}/files' },
);
