// `forkspace agent start|stop|status`.
import * as fs from 'node:fs';
import { AgentStatus, AgentStop } from '../protocol';
import type { AgentConfig } from '../config';
import { parseArgs, UsageError } from './args';
import { AgentNotRunning, agentLogPath, connectAgent, startAgent } from './connect';

export const AGENT_USAGE = `usage: forkspace agent start | stop [--runtime] | status [--json]

  start    start the agent in the background (it starts forkspace-rt when needed)
  stop     stop the agent; with --runtime also stop forkspace-rt and every sandbox it runs
  status   show the agent's and the runtime's state`;

export async function agentCommand(config: AgentConfig, argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'start':
      return start(config);
    case 'stop':
      return stop(config, parseArgs(rest, { runtime: {} }).flags.runtime === true);
    case 'status':
      return status(config, parseArgs(rest, { json: {} }).flags.json === true);
    default:
      throw new UsageError(AGENT_USAGE);
  }
}

async function start(config: AgentConfig): Promise<number> {
  const running = await connectIfRunning(config);
  if (running) {
    const s = await running.request(AgentStatus, {});
    running.close();
    console.log(`the agent is already running (pid ${s.pid})`);
    return 0;
  }
  await startAgent(config);
  const client = await connectAgent(config, { autoStart: false });
  // Waiting for the runtime here means problems (not root, no cgroups) show now, not on first run.
  const deadline = Date.now() + 15_000;
  let s = await client.request(AgentStatus, {});
  while (!s.runtime.connected && !s.runtime.error && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    s = await client.request(AgentStatus, {});
  }
  client.close();
  console.log(`agent started (pid ${s.pid}); log: ${agentLogPath(config)}`);
  if (!s.runtime.connected) {
    console.error(`forkspace-rt is not available:\n${s.runtime.error ?? 'it did not answer in time'}`);
    return 1;
  }
  console.log(`runtime ready (pid ${String(s.runtime.info?.pid)})`);
  return 0;
}

/** A connection to the running agent, or undefined when none runs. */
async function connectIfRunning(config: AgentConfig) {
  try {
    return await connectAgent(config, { autoStart: false });
  } catch (e) {
    if (e instanceof AgentNotRunning) return undefined;
    throw e;
  }
}

async function stop(config: AgentConfig, stopRuntime: boolean): Promise<number> {
  const client = await connectIfRunning(config);
  if (!client) {
    console.log('the agent is not running');
    return 0;
  }
  await client.request(AgentStop, { stopRuntime });
  client.close();
  const deadline = Date.now() + 10_000;
  while (fs.existsSync(config.agentSocket) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (stopRuntime) {
    while (fs.existsSync(config.runtimeSocket) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  console.log(stopRuntime ? 'agent and runtime stopped' : 'agent stopped');
  return 0;
}

async function status(config: AgentConfig, json: boolean): Promise<number> {
  const client = await connectIfRunning(config);
  if (!client) {
    console.log(json ? JSON.stringify({ running: false }) : 'agent: not running');
    return 3;
  }
  const s = await client.request(AgentStatus, {});
  client.close();
  if (json) {
    console.log(JSON.stringify({ running: true, ...s }, null, 2));
    return 0;
  }
  console.log(`agent: running (pid ${s.pid}, ${s.version}, node ${s.node}, up ${Math.round(s.uptimeMs / 1000)} s, ${s.connections} connection(s))`);
  if (s.runtime.connected) {
    const i = s.runtime.info ?? {};
    const cg = (i.cgroups as { mode?: string } | undefined)?.mode;
    const criu = (i.criu as { version?: string } | undefined)?.version;
    console.log(`runtime: running (pid ${String(i.pid)}, cgroups ${cg}, criu ${criu ?? 'missing'}, ${String(i.running)} running sandbox(es))`);
  } else {
    console.log(`runtime: not available: ${s.runtime.error ?? 'unknown'}`);
  }
  return 0;
}
