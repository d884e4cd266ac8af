// Starting forkspace-rt when it is not running: detached, so sandboxes outlive agent restarts, with its
// stderr in the log directory; and explaining, from that log, why it did not come up.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectUnixSocket, ErrorCodes, ProtocolError } from '../protocol';
import type { AgentConfig } from '../config';
import { makePrivateDir } from '../privateDir';

const START_TIMEOUT_MS = 15_000;

export function runtimeLogPath(config: AgentConfig): string {
  return path.join(config.logDir, 'forkspace-rt.log');
}

/** Starts forkspace-rt and resolves once its socket accepts connections. */
export async function startRuntime(config: AgentConfig): Promise<void> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw unavailable(
      `forkspace-rt is not running at ${config.runtimeSocket}, and this agent runs as uid ${process.getuid()} so it cannot start it ` +
        '(the runtime needs root for namespaces, mounts and cgroups). Start the agent as root (sudo forkspace agent start), ' +
        `or start the runtime as root: sudo ${config.runtimeBin} serve`,
    );
  }
  if (!fs.existsSync(config.runtimeBin)) {
    throw unavailable(`forkspace-rt is not built: ${config.runtimeBin} does not exist. Run scripts/setup.sh (it builds agent-native/), or set FORKSPACE_RT_BIN.`);
  }
  makePrivateDir(config.logDir);
  const logPath = runtimeLogPath(config);
  const logFd = fs.openSync(logPath, 'a', 0o600);
  const startOffset = fs.fstatSync(logFd).size;
  const args = [
    'serve',
    '--data-dir', config.dataDir,
    '--env-dir', config.envDir,
    '--socket', config.runtimeSocket,
    '--cgroup-parent', config.cgroupParent,
    '--criu', config.criu,
    '--pools', config.pools,
  ];
  const child = spawn(config.runtimeBin, args, { detached: true, stdio: ['ignore', logFd, logFd] });
  fs.closeSync(logFd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.once('error', () => (exited = -1));
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    try {
      (await connectUnixSocket(config.runtimeSocket)).close();
      return;
    } catch {
      if (exited !== undefined) break;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const tail = readFrom(logPath, startOffset).trim().split('\n').slice(-15).join('\n');
  if (exited === undefined) child.kill('SIGKILL');
  throw unavailable(
    exited === undefined
      ? `forkspace-rt did not open ${config.runtimeSocket} within ${START_TIMEOUT_MS / 1000} s. Its log (${logPath}) says:\n${tail}`
      : `forkspace-rt could not start (exit ${exited}):\n${tail}`,
  );
}

function readFrom(file: string, offset: number): string {
  try {
    const buf = fs.readFileSync(file);
    return buf.subarray(offset).toString('utf8');
  } catch {
    return '';
  }
}

function unavailable(message: string): ProtocolError {
  return new ProtocolError(ErrorCodes.RuntimeUnavailable, message);
}
