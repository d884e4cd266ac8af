// Sizes and durations as people write them: '512M', '1.5G', 30_000 (ms), '30s'.
import { InvalidArgumentError } from './errors';

const SIZE: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** '512M', '1G', '64MiB', 1048576 → bytes (powers of 1024). */
export function parseSize(size: string | number): number {
  if (typeof size === 'number') return size;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(size);
  if (!m) throw new InvalidArgumentError(`"${size}" is not a size; use e.g. '512M', '1G' or a number of bytes`);
  return Math.round(Number(m[1]) * SIZE[m[2].toLowerCase()]);
}

const DURATION: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** 30_000 (ms), '30s', '500ms', '2m' → milliseconds. */
export function parseDuration(d: string | number): number {
  if (typeof d === 'number') return d;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(d);
  if (!m) throw new InvalidArgumentError(`"${d}" is not a duration; use milliseconds (30_000) or e.g. '30s', '2m'`);
  return Math.round(Number(m[1]) * DURATION[m[2]]);
}
