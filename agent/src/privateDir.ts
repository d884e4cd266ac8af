// The agent's directories (sockets and token, logs, keys) are root's alone: 0700 even when they existed
// before with looser modes. Files in them are made 0600 where they are created.
import * as fs from 'node:fs';

export function makePrivateDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  if ((fs.statSync(dir).mode & 0o077) !== 0) fs.chmodSync(dir, 0o700);
}
