// Interactive terminals on a pty of the sandbox: sizes, resize, Ctrl-C, exit, and cleanup with the client.
import { strict as assert } from 'node:assert';
import {
  ErrorCodes,
  ProtocolError,
  SandboxCreate,
  SandboxDestroy,
  SandboxExec,
  SandboxGet,
  SnapshotCreate,
  TerminalClose,
  TerminalExit,
  TerminalInput,
  TerminalOpen,
  TerminalOutput,
  TerminalResize,
  type RpcClient,
} from '../../agent/src/protocol';
import { useStack } from './stack';

/** Collects a terminal's output and waits for text to appear in it. */
function screen(c: RpcClient, terminalId: string) {
  let text = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  c.onNotification(TerminalOutput, (o) => {
    if (o.terminalId !== terminalId) return;
    text += o.data;
    for (const w of waiters.splice(0)) (w.re.test(text) ? w.resolve : () => waiters.push(w))();
  });
  return {
    get text() {
      return text;
    },
    until(re: RegExp, ms = 10_000): Promise<void> {
      if (re.test(text)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ${re} in terminal output:\n${text}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

describe('terminals (real pty in a sandbox)', function () {
  this.timeout(60_000);
  const env = useStack();
  const c = () => env.client();
  let sandboxId = '';
  before(async () => {
    sandboxId = (await c().request(SandboxCreate, { environment: 'busybox' })).sandbox.id;
  });
  env.beforeStop(async () => sandboxId && c().request(SandboxDestroy, { sandboxId }));

  it('refuses, at once, a sandbox whose pty multiplexer is not its devpts ptmx (a FIFO in a chroot)', async () => {
    // pid 1 chroots into a tree it made, with a FIFO where /dev/pts/ptmx should be: the runtime opens
    // the multiplexer through pid 1's root, so an open that followed it would block for good.
    const jail =
      'mkdir -p /jail/dev/pts /jail/bin && cp /bin/busybox /jail/bin/ && ln -s busybox /jail/bin/sh && ln -s busybox /jail/bin/sleep && ' +
      'mkfifo /jail/dev/pts/ptmx && exec chroot /jail /bin/sh -c "while :; do sleep 3600; done"';
    const { sandbox } = await c().request(SandboxCreate, { environment: 'busybox', command: ['/bin/sh', '-c', jail] });
    try {
      const deadline = Date.now() + 10_000;
      while (!(await c().request(SandboxExec, { sandboxId: sandbox.id, command: 'readlink /proc/1/root' })).stdout.includes('/jail')) {
        if (Date.now() > deadline) throw new Error('pid 1 never chrooted');
        await new Promise((r) => setTimeout(r, 50));
      }
      const opened = c().request(TerminalOpen, { sandboxId: sandbox.id, terminalId: 'term-jail', cols: 80, rows: 24 });
      const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('terminal/open blocked on the FIFO')), 10_000).unref());
      await assert.rejects(Promise.race([opened, late]), (e: ProtocolError) => e.code === ErrorCodes.SandboxState && /is a FIFO, not its pty multiplexer/.test(e.message));
      assert.ok((await c().request(SandboxGet, { sandboxId: sandbox.id })).sandbox.state === 'running', 'the runtime keeps answering');
    } finally {
      await c().request(SandboxDestroy, { sandboxId: sandbox.id });
    }
  });

  it('runs stty size with the sizes sent, follows resizes, and exits with the shell', async () => {
    const terminalId = 'term-test-1';
    const out = screen(c(), terminalId);
    const exited = new Promise<number | null>((resolve) => c().onNotification(TerminalExit, (e) => e.terminalId === terminalId && resolve(e.exitCode)));
    await c().request(TerminalOpen, { sandboxId, terminalId, cols: 91, rows: 37 });
    await c().request(TerminalInput, { terminalId, data: 'stty size; tty\n' });
    await out.until(/37 91\r?\n/);
    await out.until(/\/dev\/pts\/\d+/);
    await c().request(TerminalResize, { terminalId, cols: 120, rows: 50 });
    await c().request(TerminalInput, { terminalId, data: 'stty size\n' });
    await out.until(/50 120\r?\n/);
    await c().request(TerminalInput, { terminalId, data: 'sleep 100; echo after-sleep\n' });
    await new Promise((r) => setTimeout(r, 300));
    await c().request(TerminalInput, { terminalId, data: '\u0003' });
    await c().request(TerminalInput, { terminalId, data: 'echo interrupted-$((1+1))\n' });
    await out.until(/interrupted-2/);
    assert.doesNotMatch(out.text, /^after-sleep\r?$/m, 'Ctrl-C reached the foreground process');
    await c().request(TerminalInput, { terminalId, data: 'exit 7\n' });
    assert.equal(await exited, 7);
    // With the terminal gone, nothing runs inside any more: a snapshot is allowed again.
    await c().request(SnapshotCreate, { sandboxId });
  });

  it('ends a terminal when its client goes away, and closes on request', async () => {
    const other = await env.stack().client();
    await other.request(TerminalOpen, { sandboxId, terminalId: 'term-orphan', cols: 80, rows: 24 });
    other.close();
    await new Promise((r) => setTimeout(r, 500));
    await c().request(SnapshotCreate, { sandboxId }); // refused while a terminal still ran
    const exited = new Promise<void>((resolve) => c().onNotification(TerminalExit, (e) => e.terminalId === 'term-closed' && resolve()));
    await c().request(TerminalOpen, { sandboxId, terminalId: 'term-closed', cols: 80, rows: 24 });
    await c().request(TerminalClose, { terminalId: 'term-closed' });
    await exited;
    await assert.rejects(c().request(TerminalInput, { terminalId: 'term-closed', data: 'x' }), /no open terminal/);
    await assert.rejects(c().request(TerminalOpen, { sandboxId, cols: 0, rows: 24 }), /cols/);
  });
});
