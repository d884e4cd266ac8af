// Files of a sandbox (read and write) or a snapshot (read), moved in chunks so a file of any size never
// has to fit in one request.
import type { FileEntry } from './api.gen';
import type { HttpTransport } from './http';

const CHUNK = 4 * 1024 * 1024;

export class Files {
  constructor(
    private readonly transport: HttpTransport,
    /** A sandbox id, a snapshot id or a unique snapshot label. */
    readonly id: string,
  ) {}

  /** Writes a whole file (text as UTF-8), creating its directories; `mode` like 0o755. */
  async write(path: string, content: string | Uint8Array, options: { mode?: number } = {}): Promise<{ size: number }> {
    const bytes = typeof content === 'string' ? new TextEncoder().encode(content) : content;
    let offset = 0;
    do {
      const chunk = bytes.subarray(offset, offset + CHUNK);
      await this.transport.call('files/write', {
        sandboxId: this.id,
        path,
        content: Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('base64'),
        encoding: 'base64',
        offset,
        ...(options.mode === undefined ? {} : { mode: options.mode }),
      });
      offset += chunk.length;
    } while (offset < bytes.length);
    return { size: bytes.length };
  }

  async read(path: string): Promise<Uint8Array> {
    const parts: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const r = await this.transport.call('files/read', { id: this.id, path, offset, length: CHUNK, encoding: 'base64' });
      const b = Buffer.from(r.content, 'base64');
      parts.push(b);
      offset += b.length;
      if (r.eof || b.length === 0) break;
    }
    return new Uint8Array(Buffer.concat(parts));
  }

  async readText(path: string): Promise<string> {
    return new TextDecoder().decode(await this.read(path));
  }

  async list(path = '/'): Promise<FileEntry[]> {
    return (await this.transport.call('files/list', { id: this.id, path })).entries;
  }

  async remove(path: string, options: { recursive?: boolean } = {}): Promise<boolean> {
    return (await this.transport.call('files/remove', { sandboxId: this.id, path, recursive: options.recursive ?? false })).removed;
  }
}
