// When and how long to wait before trying a request again: only transient failures (HTTP 503, a refused
// or reset connection), and only calls that may safely run twice (GET, PUT, DELETE, and POST/PATCH with
// an Idempotency-Key, which the SDK adds by itself). Exponential backoff with full jitter.
import { ForkspaceError } from './errors';

export interface RetryOptions {
  /** Tries after the first one. Default 4; 0 turns retries off. */
  maxRetries?: number;
  /** The first wait's ceiling. Default 200 ms. */
  baseDelayMs?: number;
  /** No wait is longer. Default 5000 ms. */
  maxDelayMs?: number;
}

export const DEFAULT_RETRY: Required<RetryOptions> = { maxRetries: 4, baseDelayMs: 200, maxDelayMs: 5000 };

/** Full jitter: uniform in [0, min(max, base * 2^attempt)]; a server's Retry-After (seconds) is a floor. */
export function backoffDelay(attempt: number, options: Required<RetryOptions>, retryAfterS?: number, random: () => number = Math.random): number {
  const ceiling = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** attempt);
  const jittered = random() * ceiling;
  return retryAfterS !== undefined && Number.isFinite(retryAfterS) ? Math.min(options.maxDelayMs, Math.max(jittered, retryAfterS * 1000)) : jittered;
}

export function shouldRetry(error: unknown, attempt: number, options: Required<RetryOptions>, safeToRepeat: boolean): boolean {
  if (attempt >= options.maxRetries) return false;
  if (!(error instanceof ForkspaceError) || !error.transient) return false;
  return safeToRepeat;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(t);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });
}
