// Small, strict argument parsing for the CLI: flags with values, repeated flags, `--` and the first
// positional end the options (so `forkspace run python3 -c ...` needs no `--`).

export class UsageError extends Error {}

export interface FlagSpec {
  /** Takes a value (`--env NAME` or `--env=NAME`). */
  value?: boolean;
  /** May repeat; values collect into an array. */
  repeat?: boolean;
  alias?: string;
}

export interface Parsed {
  flags: Record<string, string | string[] | boolean>;
  positionals: string[];
}

export function parseArgs(argv: string[], spec: Record<string, FlagSpec>, stopAtPositional = true): Parsed {
  const byAlias = new Map<string, string>();
  for (const [name, s] of Object.entries(spec)) if (s.alias) byAlias.set(s.alias, name);
  const flags: Parsed['flags'] = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (stopAtPositional) {
        positionals.push(...argv.slice(i));
        break;
      }
      positionals.push(arg);
      continue;
    }
    const [rawName, inline] = arg.startsWith('--') ? splitOnce(arg.slice(2), '=') : [byAlias.get(arg.slice(1)) ?? arg.slice(1), undefined];
    const name = byAlias.get(rawName) ?? rawName;
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option ${arg}`);
    let value: string | boolean = true;
    if (s.value) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`option --${name} needs a value`);
      value = v;
    } else if (inline !== undefined) {
      throw new UsageError(`option --${name} takes no value`);
    }
    if (s.repeat) flags[name] = [...((flags[name] as string[] | undefined) ?? []), String(value)];
    else flags[name] = value;
  }
  return { flags, positionals };
}

function splitOnce(s: string, sep: string): [string, string | undefined] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, undefined] : [s.slice(0, i), s.slice(i + 1)];
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** "256M", "1.5G", "64MiB", "1048576" → bytes (powers of 1024). */
export function parseSize(text: string, what = 'size'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) throw new UsageError(`${what} "${text}" is not a size; use e.g. 256M, 1G or 1048576`);
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()]);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "10s", "500ms", "2m", "1h", "30" (seconds) → milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new UsageError(`${what} "${text}" is not a duration; use e.g. 10s, 500ms, 2m`);
  return Math.round(Number(m[1]) * DURATION_UNITS[m[2] ?? 's']);
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(1)} ${units[i]}`;
}
