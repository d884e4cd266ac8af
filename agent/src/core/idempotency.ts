// Idempotency keys for the Direct HTTP API: a POST (or PUT/PATCH) sent again with the same
// `Idempotency-Key` gets the answer the first one got, without running again, so a client may retry a
// call that creates something after a timeout or a reset connection. A retry that arrives while the
// first is still running waits for it. The same key with a different request is refused. Answers are
// kept per API key for 24 hours (at most 10 000), in memory: an agent restart forgets them. An answer
// of 503 is not kept (nothing happened: the retry should run).
import { createHash } from 'node:crypto';
import { ErrorCodes, ProtocolError } from '../protocol';

export interface StoredAnswer {
  status: number;
  body: string;
  headers?: Record<string, string>;
}

interface Entry {
  fingerprint: string;
  atMs: number;
  answer: Promise<StoredAnswer>;
}

export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
const MAX_ENTRIES = 10_000;

export function fingerprintOf(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex');
}

export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly ttlMs = IDEMPOTENCY_TTL_MS,
    private readonly maxEntries = MAX_ENTRIES,
  ) {}

  /** Runs `call` once per (scope, key); later calls with the same key get its answer. */
  async run(scope: string, key: string, fingerprint: string, call: () => Promise<StoredAnswer>): Promise<{ answer: StoredAnswer; replayed: boolean }> {
    this.expire();
    const id = `${scope}\0${key}`;
    const existing = this.entries.get(id);
    if (existing) {
      if (existing.fingerprint !== fingerprint) {
        throw new ProtocolError(
          ErrorCodes.IdempotencyKeyReused,
          `Idempotency-Key "${key}" was already used for a different request; use a new key for each distinct request`,
        );
      }
      return { answer: await existing.answer, replayed: true };
    }
    const answer = call();
    this.entries.set(id, { fingerprint, atMs: Date.now(), answer });
    try {
      const a = await answer;
      if (a.status === 503) this.entries.delete(id);
      return { answer: a, replayed: false };
    } catch (e) {
      this.entries.delete(id);
      throw e;
    }
  }

  private expire(): void {
    const now = Date.now();
    for (const [id, e] of this.entries) {
      if (now - e.atMs <= this.ttlMs && this.entries.size <= this.maxEntries) break; // oldest first
      this.entries.delete(id);
    }
  }
}
