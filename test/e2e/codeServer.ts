// A code-server (the real VS Code workbench, server and Node extension host) installed by
// scripts/install-editor.sh, run in a directory of its own: its HOME, XDG dirs, TMPDIR, user data and
// extensions all live there, so nothing is written to the machine's home or /tmp. Started in its own
// process group, which `stop()` kills whole (extension hosts otherwise linger for hours).
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../integration/stack';

export const CACHE = process.env.FORKSPACE_CACHE ?? '/var/cache/forkspace';

export interface Install {
  version: string;
  node: string;
  entry: string;
}

/** The installed code-server `version`, or why it is missing. */
export function installed(version: string): Install | { missing: string } {
  const prefix = path.join(CACHE, 'code-server', version);
  if (!fs.existsSync(path.join(prefix, '.ok'))) return { missing: `code-server ${version} is not installed: run scripts/install-editor.sh ${version}` };
  const node = fs.readFileSync(path.join(prefix, 'node'), 'utf8').trim();
  return { version, node, entry: path.join(prefix, 'node_modules', 'code-server', 'out', 'node', 'entry.js') };
}

/** User settings that keep the workbench quiet and the terminal readable from the DOM. */
const SETTINGS = {
  'workbench.startupEditor': 'none',
  'telemetry.telemetryLevel': 'off',
  'workbench.tips.enabled': false,
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'terminal.integrated.gpuAcceleration': 'off',
  'chat.disableAIFeatures': true,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'security.workspace.trust.enabled': false,
  'update.mode': 'none',
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
};

export class CodeServer {
  private child: ChildProcess | undefined;
  url = '';

  constructor(
    readonly install: Install,
    /** Holds home/, ud/ (user data), ext/ (extensions), tmp/ and cs.log. */
    readonly dir: string,
  ) {
    for (const d of ['home/.config', 'home/.local/share', 'tmp', 'ud/User', 'ext']) fs.mkdirSync(path.join(dir, d), { recursive: true });
    fs.writeFileSync(path.join(dir, 'ud', 'User', 'settings.json'), JSON.stringify(SETTINGS, null, 2));
  }

  get major(): number {
    return Number(this.install.version.split('.')[1]);
  }

  private processEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    return {
      ...env,
      HOME: path.join(this.dir, 'home'),
      XDG_CONFIG_HOME: path.join(this.dir, 'home', '.config'),
      XDG_DATA_HOME: path.join(this.dir, 'home', '.local', 'share'),
      TMPDIR: path.join(this.dir, 'tmp'),
      PATH: `${path.dirname(this.install.node)}:${env.PATH ?? '/usr/bin:/bin'}`,
    };
  }

  private dirs(): string[] {
    return ['--user-data-dir', path.join(this.dir, 'ud'), '--extensions-dir', path.join(this.dir, 'ext')];
  }

  async installExtension(vsix: string): Promise<void> {
    await promisify(execFile)(this.install.node, [this.install.entry, ...this.dirs(), '--install-extension', vsix], { env: this.processEnv() });
  }

  /** Starts the server; its extension hosts (and what they spawn) see `env`. */
  async start(env: NodeJS.ProcessEnv): Promise<void> {
    const port = await freePort();
    const log = fs.openSync(path.join(this.dir, 'cs.log'), 'a');
    // VS Code >= ~1.10x web honours the test payload (extensionDevelopmentPath/extensionTestsPath) in a
    // built workbench only with the smoke-test driver on; 1.100 needs (and knows) no such option.
    const extra = this.major >= 139 ? ['--vscode-option', 'enable-smoke-test-driver'] : [];
    this.child = spawn(
      this.install.node,
      [this.install.entry, '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', ...this.dirs(), ...extra],
      { env: this.processEnv(env), stdio: ['ignore', log, log], detached: true },
    );
    fs.closeSync(log);
    this.url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (!(await healthy(`${this.url}/healthz`))) {
      if (this.child.exitCode !== null) throw new Error(`code-server exited with ${this.child.exitCode}; see ${path.join(this.dir, 'cs.log')}`);
      if (Date.now() > deadline) throw new Error(`code-server did not answer on ${this.url} within 60 s; see ${path.join(this.dir, 'cs.log')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Kills the server's whole process group (server, extension hosts, pty host, file watcher). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child?.pid || child.exitCode !== null) return;
    const gone = new Promise((r) => child.once('exit', r));
    killGroup(child.pid, 'SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 3_000))]);
    killGroup(child.pid, 'SIGKILL');
    this.child = undefined;
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function healthy(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => (res.resume(), resolve(res.statusCode === 200)));
    req.on('error', () => resolve(false));
    req.setTimeout(2_000, () => (req.destroy(), resolve(false)));
  });
}

