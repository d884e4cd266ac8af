// The files API through the runtime: chunks pass through, text is encoded for the wire. Reads work on
// sandboxes and snapshots, writes and removals on sandboxes; either only on what the caller may see.
import type { z } from 'zod';
import { ErrorCodes, ProtocolError, type FileEntry } from '../protocol';
import type { FilesRead, FilesWrite } from '../protocol/files';
import { RtFilesList, RtFilesRead, RtFilesRemove, RtFilesWrite } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import type { Access } from './access';
import type { SandboxService } from './sandboxes';

export class FileService {
  constructor(
    private readonly runtime: RuntimeClient,
    private readonly sandboxes: SandboxService,
  ) {}

  async write(p: z.output<typeof FilesWrite.params>, access: Access) {
    await this.sandboxes.checkSandbox(p.sandboxId, access);
    const dataBase64 = p.encoding === 'base64' ? p.content : Buffer.from(p.content, 'utf8').toString('base64');
    return this.runtime.request(RtFilesWrite, {
      sandboxId: p.sandboxId,
      path: p.path,
      offset: p.offset,
      dataBase64,
      mode: p.mode,
      truncate: p.truncate ?? p.offset === 0,
    });
  }

  async read(p: z.output<typeof FilesRead.params>, access: Access) {
    const r = await this.runtime.request(RtFilesRead, { id: await this.sandboxes.refOf(p.id, access), path: p.path, offset: p.offset, length: p.length });
    if (p.encoding === 'base64') return { content: r.dataBase64, encoding: 'base64' as const, offset: r.offset, size: r.size, eof: r.eof };
    const bytes = Buffer.from(r.dataBase64, 'base64');
    const text = new TextDecoder('utf-8', { fatal: true });
    try {
      return { content: text.decode(bytes), encoding: 'utf8' as const, offset: r.offset, size: r.size, eof: r.eof };
    } catch {
      throw new ProtocolError(ErrorCodes.InvalidParams, `${p.path} is not UTF-8 text (or the chunk splits a character); read it with encoding "base64"`);
    }
  }

  async list(id: string, path: string, access: Access): Promise<{ entries: FileEntry[] }> {
    const r = await this.runtime.request(RtFilesList, { id: await this.sandboxes.refOf(id, access), path });
    return { entries: r.entries as FileEntry[] };
  }

  async remove(sandboxId: string, path: string, recursive: boolean, access: Access) {
    await this.sandboxes.checkSandbox(sandboxId, access);
    return this.runtime.request(RtFilesRemove, { id: sandboxId, path, recursive });
  }
}
