// `forkspace:/<sandbox or snapshot id>/<path>`: files of sandboxes and snapshots, read-only, for the diff
// editor and for opening files from a sandbox. Read in chunks through the agent (files/read, files/list).
import * as vscode from 'vscode';
import { ErrorCodes, FilesList, FilesRead, ProtocolError, type FileEntry } from '../../agent/src/protocol';
import type { AgentConnection } from '../agent/agentConnection';

export const SCHEME = 'forkspace';
const CHUNK = 4 * 1024 * 1024;

/** `absent`: the file does not exist on that side of a diff; it reads as empty instead of failing. */
export function sandboxUri(id: string, filePath: string, absent = false): vscode.Uri {
  return vscode.Uri.from({ scheme: SCHEME, path: `/${id}/${filePath.replace(/^\/+/, '')}`, query: absent ? ABSENT : '' });
}

const ABSENT = 'absent';

/** forkspace:/sbx-1/root/a.txt → ["sbx-1", "/root/a.txt"] */
export function parseUri(uri: vscode.Uri): [string, string] {
  const [, id, ...rest] = uri.path.split('/');
  return [id, `/${rest.join('/')}`];
}

export class SandboxFileSystem implements vscode.FileSystemProvider {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;

  constructor(private readonly agent: AgentConnection) {}

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => {});
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    if (uri.query === ABSENT) return { type: vscode.FileType.File, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    const [id, p] = parseUri(uri);
    if (p === '/') return { type: vscode.FileType.Directory, ctime: 0, mtime: 0, size: 0, permissions: vscode.FilePermission.Readonly };
    const parent = p.slice(0, p.lastIndexOf('/')) || '/';
    const name = p.slice(p.lastIndexOf('/') + 1);
    const entry = (await this.list(uri, id, parent)).find((e) => e.name === name);
    if (!entry) throw vscode.FileSystemError.FileNotFound(uri);
    return { type: fileType(entry), ctime: entry.mtimeMs, mtime: entry.mtimeMs, size: entry.size, permissions: vscode.FilePermission.Readonly };
  }

  async readDirectory(uri: vscode.Uri): Promise<[string, vscode.FileType][]> {
    const [id, p] = parseUri(uri);
    return (await this.list(uri, id, p)).map((e) => [e.name, fileType(e)]);
  }

  async readFile(uri: vscode.Uri): Promise<Uint8Array> {
    if (uri.query === ABSENT) return new Uint8Array();
    const [id, p] = parseUri(uri);
    const parts: Buffer[] = [];
    for (let offset = 0; ; ) {
      const r = await this.agent.request(FilesRead, { id, path: p, offset, length: CHUNK, encoding: 'base64' }).catch((e) => {
        throw toFsError(e, uri);
      });
      const chunk = Buffer.from(r.content, 'base64');
      parts.push(chunk);
      offset += chunk.length;
      if (r.eof || chunk.length === 0) break;
    }
    return Buffer.concat(parts);
  }

  private list(uri: vscode.Uri, id: string, p: string): Promise<FileEntry[]> {
    return this.agent.request(FilesList, { id, path: p }).then(
      (r) => r.entries,
      (e) => {
        throw toFsError(e, uri);
      },
    );
  }

  createDirectory(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  writeFile(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  delete(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  rename(uri: vscode.Uri): never {
    throw vscode.FileSystemError.NoPermissions(uri);
  }
}

function fileType(e: FileEntry): vscode.FileType {
  if (e.kind === 'dir') return vscode.FileType.Directory;
  if (e.kind === 'symlink') return vscode.FileType.SymbolicLink | vscode.FileType.File;
  return vscode.FileType.File;
}

function toFsError(e: unknown, uri: vscode.Uri): Error {
  if (e instanceof ProtocolError && (e.code === ErrorCodes.FileNotFound || e.code === ErrorCodes.SandboxNotFound || e.code === ErrorCodes.SnapshotNotFound)) {
    return vscode.FileSystemError.FileNotFound(uri);
  }
  return e as Error;
}
