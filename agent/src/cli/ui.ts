// Terminal output helpers: colour only on a TTY.
const tty = process.stderr.isTTY;

export function dim(s: string): string {
  return tty ? `\x1b[2m${s}\x1b[0m` : s;
}

export function warn(message: string): void {
  process.stderr.write(`${tty ? '\x1b[33mforkspace:\x1b[0m' : 'forkspace:'} ${message}\n`);
}

export function fail(message: string): void {
  process.stderr.write(`${tty ? '\x1b[31mforkspace:\x1b[0m' : 'forkspace:'} ${message}\n`);
}
