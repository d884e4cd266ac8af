// SSH into sandboxes: a real sshd (the static dropbear of scripts/install-dropbear.sh) started inside the
// sandbox on its own loopback, reached through a runtime port forward, and a key pair per sandbox that
// the agent generates with ssh-keygen. `prepare` makes all of that true and is idempotent, so the CLI's
// `ssh`, `ssh-proxy` and the `Match exec` line of `ssh-config` can all call it.
//   Branches inherit the running sshd and the parent's authorized key; their own key is added on their
//   first prepare. A stopped instance is started and a paused one resumed: connecting wakes it.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { ErrorCodes, ProtocolError } from '../protocol';
import { RtFilesWrite, RtPortForward, RtPortList } from '../protocol/runtime';
import type { RuntimeClient } from '../runtime/runtimeClient';
import type { ExecService } from './exec';
import type { SandboxService } from './sandboxes';
import { ADMIN } from './access';

const SSHD = '/opt/forkspace/bin/dropbear';
const SSHD_PORT = 22;
const MISSING_SSHD = 3;

/** Starts dropbear unless its pid file names a live process; authorizes $KEY once. */
const START_SSHD = `
set -e
mkdir -p /root/.ssh /etc/dropbear /run
chmod 700 /root/.ssh
touch /root/.ssh/authorized_keys && chmod 600 /root/.ssh/authorized_keys
grep -qxF "$KEY" /root/.ssh/authorized_keys || echo "$KEY" >> /root/.ssh/authorized_keys
pid=/run/forkspace-sshd.pid
if [ -f $pid ] && kill -0 "$(cat $pid)" 2>/dev/null; then exit 0; fi
[ -x ${SSHD} ] || exit ${MISSING_SSHD}
# -R: host keys made on first use; -s: no passwords; -p: loopback only (reached through the forward)
${SSHD} -R -s -p 127.0.0.1:${SSHD_PORT} -P $pid </dev/null >/dev/null 2>&1
`;

export interface SshTarget {
  sandboxId: string;
  /** The Host alias `forkspace ssh-config` sets up. */
  alias: string;
  user: string;
  host: string;
  port: number;
  identityFile: string;
}

export function aliasOf(sandboxId: string): string {
  return `forkspace-${sandboxId}`;
}

/** forkspace-sbx-0123 → sbx-0123 (a plain id passes through). */
export function sandboxIdOf(host: string): string {
  return host.startsWith('forkspace-') ? host.slice('forkspace-'.length) : host;
}

export class SshService {
  constructor(
    private readonly runtime: RuntimeClient,
    private readonly sandboxes: SandboxService,
    private readonly exec: ExecService,
    private readonly keyDir: string,
    private readonly dropbear: string,
  ) {}

  identityFile(sandboxId: string): string {
    return path.join(this.keyDir, aliasOf(sandboxId));
  }

  private readonly inflight = new Map<string, Promise<SshTarget>>();

  /** Makes the sandbox reachable over SSH (one preparation per sandbox at a time); the caller checked
   * that it may. */
  prepare(sandboxId: string): Promise<SshTarget> {
    let p = this.inflight.get(sandboxId);
    if (!p) {
      p = this.doPrepare(sandboxId).finally(() => this.inflight.delete(sandboxId));
      this.inflight.set(sandboxId, p);
    }
    return p;
  }

  private async doPrepare(sandboxId: string): Promise<SshTarget> {
    const { sandbox } = await this.sandboxes.get(sandboxId, ADMIN);
    if (sandbox.state === 'paused') await this.sandboxes.resume(sandboxId, ADMIN);
    else if (sandbox.state === 'stopped') await this.sandboxes.start(sandboxId, ADMIN);
    else if (sandbox.state !== 'running') {
      throw new ProtocolError(ErrorCodes.SandboxState, `sandbox ${sandboxId} is ${sandbox.state}; SSH needs a running, paused or stopped one`);
    }
    const publicKey = await this.ensureKey(sandboxId);
    let r = await this.startSshd(sandboxId, sandbox.environment, publicKey);
    if (r.exitCode === MISSING_SSHD) {
      await this.installSshd(sandboxId);
      r = await this.startSshd(sandboxId, sandbox.environment, publicKey);
    }
    if (r.exitCode !== 0) {
      throw new ProtocolError(ErrorCodes.RuntimeFailed, `starting sshd in ${sandboxId} failed (exit ${r.exitCode}): ${r.stderr.trim() || r.stdout.trim()}`);
    }
    const port = await this.forwardPort(sandboxId);
    return { sandboxId, alias: aliasOf(sandboxId), user: 'root', host: '127.0.0.1', port, identityFile: this.identityFile(sandboxId) };
  }

  /** The sandbox's key pair (made once), returning the public key line. */
  private async ensureKey(sandboxId: string): Promise<string> {
    const file = this.identityFile(sandboxId);
    if (!fs.existsSync(`${file}.pub`)) {
      fs.mkdirSync(this.keyDir, { recursive: true, mode: 0o700 });
      const tmp = `${file}.tmp-${process.pid}`;
      fs.rmSync(tmp, { force: true });
      fs.rmSync(`${tmp}.pub`, { force: true });
      await promisify(execFile)('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', aliasOf(sandboxId), '-f', tmp]).catch((e: Error) => {
        throw new ProtocolError(ErrorCodes.RuntimeFailed, `ssh-keygen failed: ${e.message}. Install openssh-client (scripts/install-system.sh does).`);
      });
      // Private key first: a .pub is the mark of a complete pair.
      fs.renameSync(tmp, file);
      fs.renameSync(`${tmp}.pub`, `${file}.pub`);
    }
    return fs.readFileSync(`${file}.pub`, 'utf8').trim();
  }

  private startSshd(sandboxId: string, environment: string, key: string) {
    return this.exec.runIn({ sandboxId, command: ['/bin/sh', '-c', START_SSHD], env: { KEY: key }, timeoutMs: 15_000 }, environment);
  }

  private async installSshd(sandboxId: string): Promise<void> {
    if (!fs.existsSync(this.dropbear)) {
      throw new ProtocolError(ErrorCodes.Unsupported, `no sshd to put in the sandbox: ${this.dropbear} is missing. Run scripts/setup.sh (it builds dropbear), or set FORKSPACE_DROPBEAR.`);
    }
    const dataBase64 = fs.readFileSync(this.dropbear).toString('base64');
    await this.runtime.request(RtFilesWrite, { sandboxId, path: SSHD, offset: 0, dataBase64, mode: 0o755, truncate: true });
  }

  /** The host port of the sandbox's forward to its sshd, made on first use. */
  private async forwardPort(sandboxId: string): Promise<number> {
    const { forwards } = await this.runtime.request(RtPortList, { sandboxId });
    const existing = forwards.find((f) => f.port === SSHD_PORT);
    if (existing) return existing.hostPort;
    return (await this.runtime.request(RtPortForward, { sandboxId, port: SSHD_PORT })).hostPort;
  }
}
