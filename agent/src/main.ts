// forkspace-agent entry point (bundled to dist/agent.js). Runs in the foreground; `forkspace agent
// start` runs it detached with its output in the log directory.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Agent } from './agent';
import { resolveConfig } from './config';
import { createLogger } from './log';

async function main(): Promise<void> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) {
    process.stderr.write(`forkspace-agent needs Node.js >= 22 (this is ${process.version}); run scripts/setup.sh, which installs Node 24\n`);
    process.exit(2);
  }
  const config = resolveConfig();
  const log = createLogger('forkspace-agent');
  const agent = new Agent(config, log);
  const pidFile = path.join(config.runDir, 'agent.pid');
  agent.onStopped(() => {
    fs.rmSync(pidFile, { force: true });
    log('stopped');
    process.exit(0);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void agent.stop());
  try {
    await agent.start();
  } catch (e) {
    process.stderr.write(`forkspace-agent: ${(e as Error).message}\n`);
    process.exit(1);
  }
  fs.writeFileSync(pidFile, `${process.pid}\n`);
  log(`ready (pid ${process.pid}, node ${process.version})`);
}

void main();
