// The CLI's way to the agent: its unix socket, starting the agent in the background when it is not
// running (for commands that need it).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { connectUnixSocket, Initialize, PROTOCOL_VERSION, RpcClient, type NdjsonTransport } from '../protocol';
import { findAgentEntry, type AgentConfig } from '../config';
import { makePrivateDir } from '../privateDir';

export class AgentNotRunning extends Error {}

const START_TIMEOUT_MS = 15_000;

export async function connectAgent(config: AgentConfig, options: { autoStart: boolean; onStart?: () => void }): Promise<RpcClient> {
  let transport: NdjsonTransport;
  try {
    transport = await connectUnixSocket(config.agentSocket);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES') {
      throw new Error(`permission denied on ${config.agentSocket}: the agent runs as root and its socket is owner-only; run forkspace with sudo`);
    }
    if (!options.autoStart) throw new AgentNotRunning(`the agent is not running (no socket at ${config.agentSocket}); start it with \`forkspace agent start\``);
    options.onStart?.();
    await startAgent(config);
    transport = await connectUnixSocket(config.agentSocket);
  }
  const client = new RpcClient(transport);
  await client.request(Initialize, { protocolVersion: PROTOCOL_VERSION, clientName: 'forkspace-cli', clientVersion: '0.1.0' });
  return client;
}

export function agentLogPath(config: AgentConfig): string {
  return path.join(config.logDir, 'forkspace-agent.log');
}

/** Starts the agent daemon detached and waits until its socket accepts connections. */
export async function startAgent(config: AgentConfig): Promise<void> {
  makePrivateDir(config.logDir);
  const logPath = agentLogPath(config);
  const logFd = fs.openSync(logPath, 'a', 0o600);
  const offset = fs.fstatSync(logFd).size;
  const child = spawn(process.execPath, [findAgentEntry()], { detached: true, stdio: ['ignore', logFd, logFd], env: process.env });
  fs.closeSync(logFd);
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline && exited === undefined) {
    try {
      (await connectUnixSocket(config.agentSocket)).close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const tail = fs.readFileSync(logPath).subarray(offset).toString('utf8').trim().split('\n').slice(-10).join('\n');
  throw new Error(`the agent did not start${exited !== undefined ? ` (exit ${exited})` : ''}; ${logPath} says:\n${tail}`);
}
