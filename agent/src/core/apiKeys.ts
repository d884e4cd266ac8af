// API keys of the Direct HTTP API. A key is 32 random bytes shown once when made; the agent keeps only
// its sha256, in one file of the data dir (mode 0600, replaced atomically: written beside, synced, then
// renamed over), so a crash leaves the old list or the new one, never half of either. Revocation takes
// effect at once: every request looks its key up in the in-memory table this file mirrors.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCodes, ProtocolError, type ApiKey } from '../protocol';

interface StoredKey extends ApiKey {
  sha256: string;
}

interface KeyFile {
  version: 1;
  keys: StoredKey[];
}

const SECRET_PREFIX = 'fsk_';
/** lastUsedAtMs is written back at most this often (a request must not cost a file write). */
const LAST_USED_FLUSH_MS = 60_000;

export function hashKey(secret: string): string {
  return createHash('sha256').update(secret, 'utf8').digest('hex');
}

export class ApiKeyStore {
  private keys: StoredKey[] = [];
  private byHash = new Map<string, StoredKey>();
  private flushTimer: NodeJS.Timeout | undefined;
  private readonly revokedListeners: ((keyId: string) => void)[] = [];

  constructor(readonly file: string) {
    this.load();
  }

  create(name?: string): { key: ApiKey; secret: string } {
    const secret = SECRET_PREFIX + randomBytes(32).toString('base64url');
    const stored: StoredKey = {
      id: `key-${randomBytes(6).toString('hex')}`,
      name: name ?? null,
      prefix: secret.slice(0, SECRET_PREFIX.length + 6),
      createdAtMs: Date.now(),
      lastUsedAtMs: null,
      revokedAtMs: null,
      sha256: hashKey(secret),
    };
    this.save([...this.keys, stored]);
    return { key: publicKey(stored), secret };
  }

  list(): { keys: ApiKey[] } {
    return { keys: this.keys.map(publicKey) };
  }

  revoke(keyId: string): { key: ApiKey } {
    const k = this.keys.find((x) => x.id === keyId);
    if (!k) throw new ProtocolError(ErrorCodes.KeyNotFound, `no API key ${keyId}; \`forkspace keys list\` shows the keys there are`);
    if (k.revokedAtMs === null) this.save(this.keys.map((x) => (x === k ? { ...x, revokedAtMs: Date.now() } : x)));
    // Also when it was revoked before: whatever it still holds open ends now.
    for (const l of this.revokedListeners) l(keyId);
    return { key: publicKey(this.keys.find((x) => x.id === keyId) as StoredKey) };
  }

  /** Told the id of each key revoked, right after the revocation is stored. */
  onRevoked(listener: (keyId: string) => void): void {
    this.revokedListeners.push(listener);
  }

  /** The key exists and is not revoked (for connections that outlive the request that opened them). */
  isActive(keyId: string): boolean {
    const k = this.keys.find((x) => x.id === keyId);
    return k !== undefined && k.revokedAtMs === null;
  }

  /** The key a request presents, if it is one of ours and not revoked. */
  verify(secret: string): ApiKey | undefined {
    if (!secret.startsWith(SECRET_PREFIX)) return undefined;
    const digest = hashKey(secret);
    const k = this.byHash.get(digest);
    if (!k || k.revokedAtMs !== null) return undefined;
    // The map lookup already matched; the constant-time compare keeps it so if the lookup ever changes.
    if (!timingSafeEqual(Buffer.from(k.sha256, 'hex'), Buffer.from(digest, 'hex'))) return undefined;
    k.lastUsedAtMs = Date.now();
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = undefined;
      try {
        this.save(this.keys);
      } catch {
        // lastUsedAtMs is informative; the next flush tries again
      }
    }, LAST_USED_FLUSH_MS).unref();
    return publicKey(k);
  }

  close(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
      try {
        this.save(this.keys);
      } catch {
        // shutting down; lastUsedAtMs may be a minute old
      }
    }
  }

  private load(): void {
    let text: string;
    try {
      text = fs.readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return this.adopt([]);
      throw new Error(`cannot read the API key file ${this.file}: ${(e as Error).message}`);
    }
    let parsed: KeyFile;
    try {
      parsed = JSON.parse(text) as KeyFile;
      if (parsed.version !== 1 || !Array.isArray(parsed.keys)) throw new Error('not a version-1 key file');
    } catch (e) {
      throw new Error(`the API key file ${this.file} is damaged (${(e as Error).message}); move it away to start with no keys`);
    }
    this.adopt(parsed.keys);
  }

  private save(keys: StoredKey[]): void {
    fs.mkdirSync(path.dirname(this.file), { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    const fd = fs.openSync(tmp, 'w', 0o600);
    try {
      fs.writeSync(fd, JSON.stringify({ version: 1, keys } satisfies KeyFile, null, 2) + '\n');
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, this.file);
    const dir = fs.openSync(path.dirname(this.file), 'r');
    try {
      fs.fsyncSync(dir);
    } finally {
      fs.closeSync(dir);
    }
    this.adopt(keys);
  }

  private adopt(keys: StoredKey[]): void {
    this.keys = keys;
    this.byHash = new Map(keys.map((k) => [k.sha256, k]));
  }
}

function publicKey(k: StoredKey): ApiKey {
  return { id: k.id, name: k.name, prefix: k.prefix, createdAtMs: k.createdAtMs, lastUsedAtMs: k.lastUsedAtMs, revokedAtMs: k.revokedAtMs };
}
