// A sandbox must not be able to freeze or crash the runtime that serves every other sandbox. Host-side
// opens of sandbox paths (collect, files/read, files/write, forkspace cp, snapshot reads) meet FIFOs,
// sockets and device nodes the sandbox made: they must answer at once with an error (found: false for
// collect), never block a runtime worker in open(2) or open a device as host root; and a directory tree
// deep enough to overflow a recursive walk must not bring the runtime down.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  BranchDiff,
  ErrorCodes,
  ProtocolError,
  BranchMerge,
  ExecRun,
  FilesList,
  FilesRead,
  FilesRemove,
  FilesWrite,
  SandboxExec,
  SandboxList,
  SnapshotBranch,
  SnapshotCreate,
  SnapshotDelete,
} from '../../agent/src/protocol';
import { sleep, useStack } from '../integration/stack';
import { assertNone, cliWithin, findFifos, releaseFifos, Sandboxes, shOk, unique, until, within } from './battery';

/** How long a request may take when a sandbox offers it a FIFO (it should take milliseconds). */
const PROMPT_MS = 10_000;

describe('security: a sandbox cannot freeze or crash the runtime (real runtime)', function () {
  this.timeout(120_000);
  const env = useStack();
  const c = () => env.client();
  const boxes = new Sandboxes(c);
  const dataDir = () => env.stack().config.dataDir;
  let box = '';

  /** Waits for `p` up to PROMPT_MS; if it has not answered, unblocks the runtime (opening the FIFOs from the
   * host), waits for the late answer and fails. */
  async function prompt<T>(p: Promise<T>, what: string): Promise<{ value?: T; error?: unknown }> {
    const r = await within(p, PROMPT_MS);
    if (r.settled) return r;
    await releaseFifos(dataDir(), p);
    await within(p, 30_000);
    assert.fail(`${what} did not answer within ${PROMPT_MS} ms: the runtime was blocked in open(2) on a FIFO the sandbox made`);
  }

  before(async () => {
    box = await boxes.create({ environment: 'python' });
    // A bound unix socket's file stays after its process ends.
    await shOk(
      c(),
      box,
      `python3 -c 'import os, socket\nos.mkfifo("/tmp/battery.fifo")\nos.makedirs("/tmp/specials")\nfor n in ("a", "b"): os.mkfifo("/tmp/specials/battery-%s.fifo" % n)\nsocket.socket(socket.AF_UNIX).bind("/tmp/specials/battery.sock")'`,
    );
  });
  env.beforeStop(() => boxes.destroyAll());

  it('exec/run collecting a FIFO answers at once, with found: false', async () => {
    const run = c().request(ExecRun, { environment: 'busybox', command: 'mkfifo /tmp/battery.fifo', collect: ['/tmp/battery.fifo'] });
    const r = await prompt(run, 'exec/run with collect: ["/tmp/battery.fifo"]');
    assert.ok(!r.error, `exec/run failed: ${String(r.error)}`);
    const file = r.value!.files?.[0];
    assert.equal(file?.found, false, `collect reported a FIFO as a file: ${JSON.stringify(file)}`);
  });

  it('two runs collecting FIFOs do not freeze the API: other requests keep answering', async () => {
    const before = new Set(findFifos(dataDir()));
    const runs = [1, 2].map(() => c().request(ExecRun, { environment: 'busybox', command: 'mkfifo /tmp/battery-pair.fifo', collect: ['/tmp/battery-pair.fifo'] }));
    let ended = false;
    const all = Promise.allSettled(runs).finally(() => (ended = true));
    try {
      // Both commands have made their FIFO (they end right after, so the runtime is collecting now), or
      // both runs have already answered.
      const made = () => findFifos(dataDir()).filter((f) => f.includes('battery-pair') && !before.has(f)).length;
      await until(() => (made() >= 2 || ended ? true : undefined), 20_000, 'both FIFOs').catch(() => undefined);
      const list = await within(c().request(SandboxList, {}), PROMPT_MS);
      const run = list.settled ? await within(c().request(ExecRun, { environment: 'busybox', command: 'echo alive' }), PROMPT_MS) : { settled: false as const };
      assert.ok(list.settled && run.settled, `with two sandboxes offering FIFOs to collect, sandbox/list ${list.settled ? 'answered' : 'hung'} and exec/run ${run.settled ? 'answered' : 'hung'} for ${PROMPT_MS} ms`);
    } finally {
      await releaseFifos(dataDir(), all);
      await within(all, 30_000);
    }
  });

  it('files/read of a FIFO answers at once with an error', async () => {
    const r = await prompt(c().request(FilesRead, { id: box, path: '/tmp/battery.fifo' }), 'files/read of a FIFO');
    assert.ok(r.error, `files/read of a FIFO returned content: ${JSON.stringify(r.value)}`);
  });

  it('files/write into a FIFO answers at once with an error', async () => {
    const r = await prompt(c().request(FilesWrite, { sandboxId: box, path: '/tmp/battery.fifo', content: 'x' }), 'files/write into a FIFO');
    assert.ok(r.error, `files/write into a FIFO succeeded: ${JSON.stringify(r.value)}`);
  });

  it('files/read of a FIFO kept in a snapshot answers at once with an error', async () => {
    const src = await boxes.create({ environment: 'busybox', command: ['sh', '-c', 'mkfifo /tmp/battery-snap.fifo; while true; do sleep 1; done'] });
    await until(async () => ((await c().request(FilesList, { id: src, path: '/tmp' })).entries.some((e) => e.name === 'battery-snap.fifo') ? true : undefined), 10_000, 'the FIFO');
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: src });
    try {
      await boxes.destroy(src);
      const r = await prompt(c().request(FilesRead, { id: snapshot.id, path: '/tmp/battery-snap.fifo' }), 'files/read of a FIFO in a snapshot');
      assert.ok(r.error, `files/read of a FIFO in a snapshot returned content: ${JSON.stringify(r.value)}`);
    } finally {
      await c().request(SnapshotDelete, { snapshotId: snapshot.id }).catch(() => {});
    }
  });

  it('forkspace cp out of a FIFO ends at once with an error', async () => {
    const dest = path.join(env.stack().dir, unique('cp-out'));
    const r = await cliWithin(env.stack(), ['cp', `${box}:/tmp/battery.fifo`, dest], PROMPT_MS);
    if (r.timedOut) await releaseFifos(dataDir(), sleep(1500));
    fs.rmSync(dest, { force: true });
    assert.ok(!r.timedOut, `forkspace cp ${box}:/tmp/battery.fifo hung for ${PROMPT_MS} ms (killed)`);
    assert.notEqual(r.code, 0, `forkspace cp out of a FIFO succeeded: ${r.stdout}${r.stderr}`);
  });

  it('forkspace cp into a FIFO ends at once with an error', async () => {
    const src = path.join(env.stack().dir, unique('cp-in'));
    fs.writeFileSync(src, 'data\n');
    const r = await cliWithin(env.stack(), ['cp', src, `${box}:/tmp/battery.fifo`], PROMPT_MS);
    if (r.timedOut) await releaseFifos(dataDir(), sleep(1500));
    fs.rmSync(src, { force: true });
    assert.ok(!r.timedOut, `forkspace cp into ${box}:/tmp/battery.fifo hung for ${PROMPT_MS} ms (killed)`);
    assert.notEqual(r.code, 0, `forkspace cp into a FIFO succeeded: ${r.stdout}${r.stderr}`);
  });

  it('files/list of FIFOs and sockets, and reads of a socket, answer at once', async () => {
    const listing = await prompt(c().request(FilesList, { id: box, path: '/tmp/specials' }), 'files/list of a directory of FIFOs');
    assert.ok(!listing.error, `files/list failed: ${String(listing.error)}`);
    const fifo = await prompt(c().request(FilesList, { id: box, path: '/tmp/battery.fifo' }), 'files/list of a FIFO');
    assert.ok(fifo.error, 'files/list of a FIFO listed it as a directory');
    const sock = await prompt(c().request(FilesRead, { id: box, path: '/tmp/specials/battery.sock' }), 'files/read of a socket');
    assert.ok(sock.error, `files/read of a socket returned content: ${JSON.stringify(sock.value)}`);
  });

  it('diff and merge between branches where one made FIFOs answer at once', async () => {
    const src = await boxes.create({ environment: 'busybox', command: ['sh', '-c', 'while true; do sleep 1; done'] });
    const { snapshot } = await c().request(SnapshotCreate, { sandboxId: src });
    try {
      const [a, b] = (await c().request(SnapshotBranch, { snapshotId: snapshot.id, count: 2 })).branches.map((x) => boxes.adopt(x.sandboxId));
      await shOk(c(), a, 'mkfifo /root/battery-diff.fifo; echo text > /root/plain');
      const diff = await prompt(c().request(BranchDiff, { a, b }), 'branch/diff with a FIFO on one side');
      assert.ok(!diff.error, `branch/diff failed: ${String(diff.error)}`);
      const merge = await prompt(c().request(BranchMerge, { from: a, into: b, strategy: 'theirs' }), 'branch/merge of a FIFO');
      void merge; // answering is the point: a conflict or a refusal of the FIFO is fine
      await boxes.destroy(a);
      await boxes.destroy(b);
    } finally {
      await boxes.destroy(src);
      await c().request(SnapshotDelete, { snapshotId: snapshot.id }).catch(() => {});
    }
  });

  it('files/read, files/write and collect never open device nodes as host root', async () => {
    const opened: string[] = [];
    const w = await prompt(c().request(FilesWrite, { sandboxId: box, path: '/dev/null', content: 'x' }), 'files/write to /dev/null');
    if (!w.error) opened.push('files/write /dev/null');
    for (const dev of ['/dev/zero', '/dev/urandom']) {
      const r = await prompt(c().request(FilesRead, { id: box, path: dev, length: 64 }), `files/read of ${dev}`);
      if (!r.error) opened.push(`files/read ${dev}`);
    }
    const run = await prompt(c().request(ExecRun, { environment: 'busybox', command: 'true', collect: ['/dev/zero', '/dev/urandom', '/dev/tty'] }), 'collect of devices');
    for (const f of run.value?.files ?? []) if (f.found) opened.push(`collect ${f.path}`);
    assertNone(opened, 'the runtime opened device nodes of the sandbox as host root (the host devices behind them)');
  });

  describe('last: attempts that could take the runtime down', () => {
    it('a directory tree 15000 levels deep does not crash the runtime when removed with files/remove', async () => {
      const id = await boxes.create({ environment: 'python' });
      const r = await c().request(SandboxExec, { sandboxId: id, code: 'import os\nos.makedirs("/tmp/deep", exist_ok=True)\nos.chdir("/tmp/deep")\nfor i in range(15000):\n    os.mkdir("d"); os.chdir("d")\nprint("built")' });
      assert.equal(r.stdout.trim(), 'built', r.stderr);
      const pid = env.stack().runtimePid();
      const removal = await within(c().request(FilesRemove, { sandboxId: id, path: '/tmp/deep', recursive: true }), 60_000);
      // A runtime that dies closes the connection first; its process may take a moment to be gone.
      const closed = removal.settled && removal.error instanceof ProtocolError && removal.error.code === ErrorCodes.ConnectionClosed;
      const gone = (): boolean => {
        try {
          return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
        } catch {
          return true;
        }
      };
      if (closed) await until(() => (gone() ? true : undefined), 20_000, 'the dead runtime to be gone').catch(() => undefined);
      const log = readTail(path.join(env.stack().config.logDir, 'forkspace-rt.log'));
      const outcome = removal.settled ? (removal.error ? `error: ${String(removal.error)}` : 'removed') : 'no answer';
      assert.ok(!closed && !gone(), `the runtime died while removing a deep directory a sandbox made (every sandbox died with it; files/remove: ${outcome}): ${log}`);
      assert.ok(removal.settled, 'files/remove of a deep directory did not answer in 60 s');
      const list = await within(c().request(SandboxList, {}), PROMPT_MS);
      assert.ok(list.settled && !list.error, 'the API stopped answering after files/remove of a deep directory');
      await boxes.destroy(id);
    });
  });
});

function readTail(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-4).join(' | ');
  } catch {
    return `(no log at ${file}: ${os.EOL})`;
  }
}
