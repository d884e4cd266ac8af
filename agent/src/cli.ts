// forkspace: the command line (bundled to dist/cli.js; bin/forkspace runs it on Node >= 22).
import { ProtocolError } from './protocol';
import { resolveConfig } from './config';
import { AGENT_USAGE, agentCommand } from './cli/agentCommand';
import { UsageError } from './cli/args';
import { connectAgent } from './cli/connect';
import { ENV_USAGE, envCommand } from './cli/envCommand';
import { RUN_USAGE, runCommand } from './cli/runCommand';
import { SANDBOX_COMMANDS, SANDBOX_USAGE } from './cli/sandboxCommands';
import { cpCommand, filesCommand, FILES_USAGE } from './cli/filesCommand';
import { fail, warn } from './cli/ui';
import { KEYS_USAGE, keysCommand } from './cli/keysCommand';
import { SSH_USAGE, sshCommand, sshConfigCommand, sshPrepareCommand, sshProxyCommand } from './cli/sshCommands';

const USAGE = `forkspace: sandboxes you can checkpoint, restore and branch

usage: forkspace <command> [options]

commands:
  run [options] -- CMD...   run a command in a fresh sandbox (see forkspace run --help)
  agent start|stop|status   manage the background agent
  env list|build NAME       list or build environments
  version                   print versions

${RUN_USAGE.split('\n')[0]}
${AGENT_USAGE.split('\n')[0]}
${ENV_USAGE}

${SANDBOX_USAGE}

${FILES_USAGE}

${SSH_USAGE}

${KEYS_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const config = resolveConfig();
  const client = () =>
    connectAgent(config, { autoStart: true, onStart: () => warn('starting the agent (first use)') });
  switch (command) {
    case 'run':
      if (rest[0] === '--help' || rest[0] === '-h') return print(RUN_USAGE);
      return withClient(await client(), (c) => runCommand(c, rest));
    case 'agent':
      return agentCommand(config, rest);
    case 'env':
      if (rest[0] === '--help' || rest[0] === '-h' || rest.length === 0) return print(ENV_USAGE);
      return withClient(await client(), (c) => envCommand(c, rest));
    case 'version':
    case '--version':
      return print(`forkspace 0.1.0 (node ${process.version})`);
    case 'cp':
      return withClient(await client(), (c) => cpCommand(c, rest));
    case 'files':
      return withClient(await client(), (c) => filesCommand(c, rest));
    case 'ssh':
      return withClient(await client(), (c) => sshCommand(c, rest));
    case 'ssh-proxy':
      return withClient(await client(), (c) => sshProxyCommand(c, rest));
    case 'ssh-prepare':
      return withClient(await client(), (c) => sshPrepareCommand(c, rest));
    case 'keys':
      if (rest[0] === '--help' || rest[0] === '-h' || rest.length === 0) return print(KEYS_USAGE);
      return withClient(await client(), (c) => keysCommand(c, rest));
    case 'ssh-config':
      return sshConfigCommand(config, rest);
    case 'ls':
      return withClient(await client(), (c) => SANDBOX_COMMANDS.sandbox(c, ['list', ...rest]));
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      return print(USAGE);
    default:
      if (command in SANDBOX_COMMANDS) {
        if (rest[0] === '--help' || rest[0] === '-h') return print(SANDBOX_USAGE);
        return withClient(await client(), (c) => SANDBOX_COMMANDS[command](c, rest));
      }
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

async function withClient<T>(c: import('./protocol').RpcClient, f: (c: import('./protocol').RpcClient) => Promise<T>): Promise<T> {
  try {
    return await f(c);
  } finally {
    c.close();
  }
}

function print(text: string): number {
  console.log(text);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof UsageError) {
      fail(e.message);
      process.exitCode = 2;
    } else {
      fail(e instanceof ProtocolError || e instanceof Error ? e.message : String(e));
      process.exitCode = 125;
    }
  },
);
