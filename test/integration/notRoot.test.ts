// Without root, every layer says what is wrong and what to do, instead of failing obscurely.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DIST, requireRoot, ROOT, Stack } from './stack';

const NOBODY = 65534;

function runAs(uid: number, cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { uid, gid: uid, env, cwd: '/' });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('errors without root', function () {
  let stack: Stack;

  before(async function () {
    requireRoot(this);
    try {
      fs.accessSync(path.join(DIST, 'cli.js'), fs.constants.R_OK);
      // the files nobody must read: the bundles, bin/forkspace and node
      for (const p of [ROOT, DIST, process.execPath]) {
        if ((fs.statSync(p).mode & 0o005) !== 0o005) {
          console.log(`    (skipped: ${p} is not readable by other users, so these checks cannot run as nobody here)`);
          this.skip();
        }
      }
    } catch {
      this.skip();
    }
    stack = await Stack.start();
  });

  after(async () => {
    if (stack) assert.deepEqual(await stack.stop(), []);
  });

  it('forkspace-rt refuses to serve and says how to fix it', async () => {
    const r = await runAs(NOBODY, path.join(DIST, 'forkspace-rt'), ['serve', '--data-dir', '/nonexistent', '--socket', '/nonexistent/s'], {});
    assert.equal(r.code, 2);
    assert.match(r.stderr, /not running as root/);
    assert.match(r.stderr, /Fix: start it with sudo/);
  });

  it('the CLI explains a root-owned agent socket', async () => {
    const r = await runAs(NOBODY, path.join(ROOT, 'bin', 'forkspace'), ['run', '--', 'true'], { ...stack.env, FORKSPACE_NODE: process.execPath, HOME: '/tmp' });
    assert.equal(r.code, 125);
    assert.match(r.stderr, /permission denied on .*agent\.sock.*run forkspace with sudo/);
  });

  it('an unprivileged agent explains that it cannot start the runtime', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fs-nobody-'));
    fs.chmodSync(dir, 0o777);
    const env = {
      FORKSPACE_DATA_DIR: path.join(dir, 'data'),
      FORKSPACE_RUN_DIR: path.join(dir, 'run'),
      FORKSPACE_LOG_DIR: path.join(dir, 'logs'),
      FORKSPACE_ENV_DIR: path.join(dir, 'envs'),
      FORKSPACE_WS_PORT: '0',
      FORKSPACE_HTTP_PORT: '0',
      FORKSPACE_NODE: process.execPath,
      HOME: dir,
    };
    try {
      const r = await runAs(NOBODY, path.join(ROOT, 'bin', 'forkspace'), ['run', '--', 'true'], env);
      assert.equal(r.code, 125, r.stderr);
      assert.match(r.stderr, /forkspace-rt is not running .* runs as uid 65534 so it cannot start it/);
      assert.match(r.stderr, /Start the agent as root/);
    } finally {
      await runAs(NOBODY, path.join(ROOT, 'bin', 'forkspace'), ['agent', 'stop'], env);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
