// What a sandbox leaves on the host's disk, attacked from the host by an unprivileged user (nobody): a
// setuid-root binary a sandbox wrote must not run as root from any host path (rootfs mount, upper layer,
// snapshot layer); setuid bits cannot come in through the files API; and the data dir keeps everything
// (catalog with env values, CRIU page images with process memory, the pool image with every sandbox's
// files, console logs) away from other host users.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ExecRun, FilesRead, FilesWrite, SandboxCreate, SandboxExec, SnapshotCreate, SnapshotDelete, KeyCreate } from '../../agent/src/protocol';
import { useStack } from '../integration/stack';
import {
  asNobody,
  assertNone,
  expectInvalidParams,
  exposeStackDirLikeVarLib,
  hostMountsUnder,
  octal,
  runtimeFiles,
  Sandboxes,
  shOk,
  unique,
  upperDirOf,
  HOST_PYTHON,
} from './battery';

describe('security: host files and the data dir, attacked by an unprivileged host user (real runtime)', function () {
  this.timeout(120_000);
  const env = useStack();
  exposeStackDirLikeVarLib(() => env.stack());
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  const dataDir = () => env.stack().config.dataDir;

  const envSecret = unique('ENVSECRET');
  const memSecret = unique('MEMSECRET');
  const fileSecret = unique('FILESECRET');
  const consoleSecret = unique('CONSOLESECRET');
  const contentMarker = unique('.battery-content');
  const rootShell = unique('rb');
  let box = '';
  let snapshotId = '';

  before(async () => {
    // One sandbox holds a secret in its env, in its memory, in a file and on its console, and a setuid-root
    // copy of bash; a snapshot of it puts them into CRIU images and a snapshot layer too.
    const code = `import time, sys\nsecret = ${JSON.stringify(memSecret)} * 64\nprint(${JSON.stringify(consoleSecret)}, flush=True)\nwhile True: time.sleep(1)`;
    box = await boxes.create({
      environment: 'python',
      command: ['python3', '-c', code],
      env: { BATTERY_SECRET: envSecret },
      files: [
        { path: `/${contentMarker}`, content: '' },
        { path: '/battery-secret', content: fileSecret + '\n', mode: 0o644 },
      ],
    });
    await shOk(c(), box, `cp /bin/bash /tmp/${rootShell} && chmod 6755 /tmp/${rootShell} && sync`);
    snapshotId = (await c().request(SnapshotCreate, { sandboxId: box })).snapshot.id;
    await c().request(KeyCreate, { name: 'battery' });
  });
  env.beforeStop(async () => {
    await boxes.destroyAll();
    if (snapshotId) await c().request(SnapshotDelete, { snapshotId }).catch(() => {});
  });

  /** The overlay mounted on the host for the sandbox (the contract's <dataDir>/sandboxes/<id>/rootfs). */
  const rootfsOf = (id: string): string =>
    hostMountsUnder(dataDir()).find((m) => m.fsType === 'overlay' && m.mountPoint.includes(id))?.mountPoint ?? path.join(dataDir(), 'sandboxes', id, 'rootfs');

  /** Runs a binary as nobody the way the attacker did; returns the effective uid and gid it got. */
  function runAsNobody(binary: string): { euid: string; egid: string; out: string } {
    const r = asNobody([binary, '-p', '-c', 'id -u; id -g']);
    const [euid = '', egid = ''] = r.stdout.trim().split('\n');
    return { euid, egid, out: `exit ${r.code}: ${r.stdout}${r.stderr}`.trim() };
  }

  function assertNotRoot(binary: string, where: string): void {
    const r = runAsNobody(binary);
    assert.ok(r.euid !== '0' && r.egid !== '0', `an unprivileged host user got root (euid ${r.euid}, egid ${r.egid}) from a setuid binary a sandbox wrote, through ${where}: ${binary}`);
  }

  it('a setuid-root shell a sandbox wrote gives a host user no root through the sandbox\'s rootfs mount', () => {
    assertNotRoot(path.join(rootfsOf(box), 'tmp', rootShell), 'its rootfs mount');
  });

  it('a setuid-root shell a sandbox wrote gives a host user no root through its upper layer', () => {
    assertNotRoot(path.join(upperDirOf(rootfsOf(box)), 'tmp', rootShell), 'its upper layer');
  });

  it('a setuid-root shell kept in a snapshot layer gives a host user no root', () => {
    const copies = findUnder(dataDir(), (p) => p.endsWith(`/tmp/${rootShell}`) && p.includes(snapshotId));
    assert.ok(copies.length > 0, `the snapshot layer of ${snapshotId} holds no copy of /tmp/${rootShell}: did the layout change?`);
    for (const p of copies) assertNotRoot(p, 'a snapshot layer');
  });

  it('files/write refuses setuid and setgid bits and writes nothing', async () => {
    for (const mode of [0o4755, 0o2755, 0o6755]) {
      const file = `/tmp/${unique('suid')}`;
      await expectInvalidParams(c().request(FilesWrite, { sandboxId: box, path: file, content: 'x', mode }), `files/write with mode ${octal(mode)}`);
      const left = await c().request(FilesRead, { id: box, path: file }).then(() => true, () => false);
      assert.equal(left, false, `files/write with mode ${octal(mode)} was refused but still wrote ${file}`);
    }
  });

  it('files in exec specs refuse setuid and setgid bits (exec/run, sandbox/create, sandbox/exec)', async () => {
    const file = { path: '/tmp/battery-suid', content: 'x', mode: 0o4755 };
    await expectInvalidParams(c().request(ExecRun, { environment: 'busybox', command: 'true', files: [file] }), 'exec/run with a 04755 file');
    let made = '';
    try {
      await expectInvalidParams(
        c()
          .request(SandboxCreate, { environment: 'busybox', files: [{ ...file, mode: 0o2755 }] })
          .then((r) => ((made = boxes.adopt(r.sandbox.id)), r)),
        'sandbox/create with a 02755 file',
      );
    } finally {
      if (made) await boxes.destroy(made);
    }
    await expectInvalidParams(c().request(SandboxExec, { sandboxId: box, command: 'true', files: [{ ...file, mode: 0o6755 }] }), 'sandbox/exec with a 06755 file');
    const left = await c().request(FilesRead, { id: box, path: file.path }).then(() => true, () => false);
    assert.equal(left, false, 'sandbox/exec was refused but still wrote its file');
  });

  it('the sandbox overlays and the btrfs pool are mounted nosuid,nodev on the host', () => {
    const mounts = hostMountsUnder(dataDir());
    assert.ok(mounts.length > 0, 'nothing is mounted under the data dir: nothing was checked');
    const weak = mounts.filter((m) => !m.options.includes('nosuid') || !m.options.includes('nodev'));
    assertNone(weak.map((m) => `${m.fsType} ${m.mountPoint} (${m.options.join(',')})`), 'mounted without nosuid,nodev on the host');
  });

  it('the data dir and its directories are 0700; catalog, pool image and CRIU images are 0600', () => {
    const files = runtimeFiles(dataDir(), contentMarker, path.join(dataDir(), 'fs'));
    const criuDirs = new Set(files.filter((f) => !f.dir && path.basename(f.path) === 'inventory.img').map((f) => path.dirname(f.path)));
    assert.ok(criuDirs.size > 0, 'no CRIU image directory found under the data dir: nothing was checked for them');
    const secretFile = (f: string) => /^catalog\.sqlite/.test(path.basename(f)) || path.basename(f) === 'fs.img' || criuDirs.has(path.dirname(f)) || path.basename(f) === 'api-keys.json';
    const open = files.filter((f) => (f.dir || secretFile(f.path)) && (f.mode & 0o077) !== 0);
    assertNone(
      open.map((f) => `${octal(f.mode)} ${f.path}`),
      'open to group or others on the host (directories must be 0700; catalog, fs.img, CRIU images and api-keys.json 0600)',
    );
  });

  it('a host user cannot read sandboxes\' env values from the catalog', () => {
    const catalog = fs.readdirSync(dataDir()).filter((f) => f.startsWith('catalog.sqlite')).map((f) => path.join(dataDir(), f));
    assert.ok(catalog.length > 0, 'no catalog.sqlite* in the data dir');
    const asRoot = grepFiles(catalog, envSecret);
    assert.ok(asRoot.length > 0, 'the env value is not in the catalog even for root: the test checks nothing');
    const r = asNobody(['grep', '-a', '-l', '-F', envSecret, ...catalog]);
    assert.ok(!r.stdout.includes('catalog'), `an unprivileged host user read a sandbox's env value from ${r.stdout.trim()}`);
  });

  it('a host user cannot read process memory from CRIU page images', () => {
    const images = findUnder(dataDir(), (p) => p.includes(snapshotId) && /\/pages-\d+\.img$/.test(p));
    assert.ok(images.length > 0, `no CRIU page images of ${snapshotId} found`);
    assert.ok(grepFiles(images, memSecret).length > 0, 'the memory secret is not in the page images even for root: the test checks nothing');
    const r = asNobody(['grep', '-a', '-l', '-F', memSecret, ...images]);
    assert.ok(!r.stdout.trim(), `an unprivileged host user read a sandbox's memory from ${r.stdout.trim()}`);
  });

  it('a host user cannot read the pool image that holds every sandbox\'s files', () => {
    const images = poolImages(dataDir());
    assert.ok(images.length > 0, 'no loop-mounted pool image under the data dir');
    for (const img of images) {
      const r = asNobody(['head', '-c', '65536', img]);
      assert.notEqual(r.code, 0, `an unprivileged host user can read ${img}, the filesystem image that holds every sandbox's files`);
    }
  });

  it('a host user cannot read a sandbox\'s files through its rootfs mount or upper layer', () => {
    const rootfs = rootfsOf(box);
    for (const p of [path.join(rootfs, 'battery-secret'), path.join(upperDirOf(rootfs), 'battery-secret')]) {
      const r = asNobody(['cat', p]);
      assert.ok(!r.stdout.includes(fileSecret), `an unprivileged host user read a sandbox's file at ${p}`);
    }
  });

  it('a host user cannot read a sandbox\'s console output', () => {
    const logs = findUnder(dataDir(), (p) => p.includes(box) && p.endsWith('.log'));
    assert.ok(grepFiles(logs, consoleSecret).length > 0, `the console output is not in ${logs.join(', ') || 'any log under the data dir'} even for root: the test checks nothing`);
    const r = asNobody(['grep', '-a', '-l', '-F', consoleSecret, ...logs]);
    assert.ok(!r.stdout.trim(), `an unprivileged host user read a sandbox's console from ${r.stdout.trim()}`);
  });

  it('a host user cannot read the agent\'s token or API keys, or connect to the agent or runtime sockets', () => {
    const cfg = env.stack().config;
    const leaks: string[] = [];
    for (const f of [cfg.tokenFile, cfg.apiKeysFile]) {
      assert.ok(fs.existsSync(f), `${f} does not exist: nothing to check`);
      if (asNobody(['cat', f]).code === 0) leaks.push(`read ${f}`);
    }
    for (const sock of [cfg.agentSocket, cfg.runtimeSocket]) {
      const r = asNobody([HOST_PYTHON, '-c', 'import socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\nprint("connected")', sock]);
      if (r.stdout.includes('connected')) leaks.push(`connected to ${sock}`);
    }
    assertNone(leaks, 'an unprivileged host user reached the agent');
  });
});

/** Files under `root` (not entering other filesystems' mounts) whose path matches. */
function findUnder(root: string, match: (p: string) => boolean, maxDepth = 9): string[] {
  const mounts = new Set(hostMountsUnder(root).filter((m) => m.fsType === 'overlay').map((m) => m.mountPoint));
  const out: string[] = [];
  const visit = (dir: string, depth: number) => {
    if (depth > maxDepth || mounts.has(dir)) return;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) visit(p, depth + 1);
      else if (match(p)) out.push(p);
    }
  };
  visit(root, 0);
  return out;
}

/** The files of `files` that contain `text` (read as root). */
function grepFiles(files: string[], text: string): string[] {
  return files.filter((f) => {
    try {
      return fs.readFileSync(f).includes(text);
    } catch {
      return false;
    }
  });
}

/** Backing files of loop devices under the data dir. */
function poolImages(dataDir: string): string[] {
  const out = execFileSync('losetup', ['-a', '-O', 'BACK-FILE', '-n'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().replace(/ \(deleted\)$/, ''))
    .filter((l) => l.startsWith(dataDir));
}
