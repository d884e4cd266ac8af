// SSH from the CLI: `forkspace ssh ID`, and the pieces that make plain `ssh forkspace-<id>` (and VS Code
// Remote-SSH) work: `ssh-config` writes a Host block whose ProxyCommand is `forkspace ssh-proxy %h`.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { SshPrepare, type RpcClient } from '../protocol';
import type { AgentConfig } from '../config';
import { parseArgs, UsageError } from './args';

export const SSH_USAGE = `ssh:
  forkspace ssh ID [-- CMD...]     a shell (or CMD) in a sandbox over SSH (starts sshd in it on first use)
  forkspace ssh-config [--file F]  add a "Host forkspace-*" entry to ~/.ssh/config: then \`ssh forkspace-ID\`
                                   and VS Code Remote-SSH reach sandboxes
  forkspace ssh-proxy HOST         the ProxyCommand of that entry (stdin/stdout to the sandbox's sshd)`;

/** ssh options for a target reached over a local, authenticated path (the agent's forward): the host key
 * adds nothing there, and branches share their parent's. */
const CLIENT_OPTIONS = ['StrictHostKeyChecking=no', 'UserKnownHostsFile=/dev/null', 'LogLevel=ERROR', 'IdentitiesOnly=yes'];

function sandboxIdOf(host: string): string {
  return host.startsWith('forkspace-') ? host.slice('forkspace-'.length) : host;
}

export async function sshCommand(client: RpcClient, argv: string[]): Promise<number> {
  const { positionals } = parseArgs(argv, {});
  const [id, ...command] = positionals;
  if (!id) throw new UsageError(SSH_USAGE);
  const t = await client.request(SshPrepare, { sandboxId: sandboxIdOf(id) });
  client.close();
  const args = [...CLIENT_OPTIONS.flatMap((o) => ['-o', o]), '-i', t.identityFile, '-p', String(t.port), `${t.user}@${t.host}`, ...command];
  return new Promise((resolve) => {
    const child = spawn('ssh', args, { stdio: 'inherit' });
    child.once('error', (e) => {
      console.error(`forkspace: cannot run ssh: ${e.message}; install openssh-client`);
      resolve(127);
    });
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1)));
  });
}

/** Prepares the sandbox, then relays stdin/stdout to its sshd until either side closes. */
export async function sshProxyCommand(client: RpcClient, argv: string[]): Promise<number> {
  const host = argv[0];
  if (!host || argv.length !== 1) throw new UsageError('usage: forkspace ssh-proxy HOST (HOST = forkspace-<sandbox id>)');
  const t = await client.request(SshPrepare, { sandboxId: sandboxIdOf(host) });
  client.close();
  return new Promise((resolve) => {
    const sock = net.connect(t.port, t.host);
    sock.once('connect', () => {
      process.stdin.pipe(sock);
      sock.pipe(process.stdout);
    });
    process.stdin.once('end', () => sock.end());
    sock.once('error', (e) => {
      console.error(`forkspace ssh-proxy: ${e.message}`);
      resolve(1);
    });
    sock.once('close', () => resolve(0));
  });
}

/** `Match exec` target: makes the key exist before ssh loads it (ProxyCommand runs too late for that). */
export async function sshPrepareCommand(client: RpcClient, argv: string[]): Promise<number> {
  if (argv.length !== 1) throw new UsageError('usage: forkspace ssh-prepare HOST');
  await client.request(SshPrepare, { sandboxId: sandboxIdOf(argv[0]) });
  return 0;
}

const BEGIN = '# >>> forkspace (managed by `forkspace ssh-config`) >>>';
const END = '# <<< forkspace <<<';

export function sshConfigBlock(forkspaceBin: string, keyDir: string): string {
  const q = (s: string) => (/[\s"]/.test(s) ? `"${s.replace(/"/g, '\\"')}"` : s);
  return [
    BEGIN,
    'Host forkspace-*',
    '  User root',
    `  ProxyCommand ${q(forkspaceBin)} ssh-proxy %h`,
    `  IdentityFile ${q(path.join(keyDir, '%h'))}`,
    ...CLIENT_OPTIONS.map((o) => `  ${o.replace('=', ' ')}`),
    // Evaluated while ssh reads its config, before it loads keys: the sandbox's key exists by then.
    `Match host forkspace-* exec "${forkspaceBin.replace(/"/g, '\\"')} ssh-prepare %h"`,
    END,
  ].join('\n');
}

/** Puts the block into an ssh config file, replacing an earlier one; everything else stays. */
export function writeSshConfig(file: string, block: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const old = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const start = old.indexOf(BEGIN);
  const end = old.indexOf(END);
  const rest = start >= 0 && end > start ? old.slice(0, start) + old.slice(end + END.length).replace(/^\n/, '') : old;
  // Host and Match blocks run to the next one: ours goes first so it cannot swallow the user's options.
  const text = `${block}\n${rest.length && !rest.startsWith('\n') ? '\n' : ''}${rest}`;
  fs.writeFileSync(`${file}.forkspace-tmp`, text, { mode: 0o600 });
  fs.renameSync(`${file}.forkspace-tmp`, file);
}

export function sshConfigCommand(config: AgentConfig, argv: string[]): number {
  const { flags } = parseArgs(argv, { file: { value: true }, print: {} }, false);
  const bin = process.env.FORKSPACE_BIN ?? 'forkspace';
  const block = sshConfigBlock(bin, path.join(config.dataDir, 'ssh', 'keys'));
  if (flags.print) {
    console.log(block);
    return 0;
  }
  const file = typeof flags.file === 'string' ? flags.file : path.join(os.homedir(), '.ssh', 'config');
  writeSshConfig(file, block);
  console.log(`wrote the forkspace-* entry to ${file}; try: ssh forkspace-<sandbox id> echo ok`);
  return 0;
}
