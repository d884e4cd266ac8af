// What a sandbox must not see or do: host processes, files, network, devices, kernel settings, its
// environment's read-only image. Each case runs in a real sandbox as root-in-sandbox.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { ExecRun, type ExecRunParams } from '../../agent/src/protocol';
import { envRootfs, useStack } from '../integration/stack';

describe('sandbox isolation (real runtime)', function () {
  const env = useStack();

  const sh = (command: string, extra: Partial<ExecRunParams> = {}) => env.client().request(ExecRun, { environment: 'busybox', command, ...extra });

  it('is pid 1 of its own pid namespace and sees none of the host\'s processes', async () => {
    const r = await sh('echo $$; ls /proc | grep -c "^[0-9]"; cat /proc/1/cmdline | tr "\\0" " "');
    const [pid, count, cmdline] = r.stdout.trim().split('\n');
    assert.equal(pid, '1');
    assert.ok(Number(count) <= 4, `saw ${count} processes`);
    assert.match(cmdline, /^\/bin\/sh -c /);
    const host = await sh(`test -e /proc/${process.pid} && echo visible || echo hidden`);
    assert.equal(host.stdout.trim(), process.pid > 4 ? 'hidden' : host.stdout.trim());
  });

  it('has its own hostname, and its root is the environment, not the host', async () => {
    fs.writeFileSync(path.join(env.stack().dir, 'host-marker'), 'secret');
    const r = await sh(`hostname; ls /; test -e ${env.stack().dir}/host-marker && echo LEAK || echo no-marker; test -e /work && echo LEAK || echo no-work`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], r.sandboxId);
    assert.ok(lines.includes('bin') && lines.includes('proc'));
    assert.ok(lines.includes('no-marker') && lines.includes('no-work'), r.stdout);
    assert.ok(!r.stdout.includes('LEAK'));
  });

  it('sees only its own loopback network, not the host\'s', async () => {
    const server = net.createServer((s) => s.end('host service\n'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const r = await sh(`cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; echo x | nc -w 1 127.0.0.1 ${port} || echo refused`);
      const lines = r.stdout.trim().split('\n');
      assert.deepEqual(lines.slice(0, -1), ['lo']);
      assert.equal(lines[lines.length - 1], 'refused');
      assert.ok(!r.stdout.includes('host service'));
    } finally {
      server.close();
    }
  });

  it('serves on its own loopback', async () => {
    const r = await env.client().request(ExecRun, {
      environment: 'python',
      code: [
        'import socket, threading',
        's = socket.socket(); s.bind(("127.0.0.1", 8000)); s.listen()',
        'threading.Thread(target=lambda: s.accept()[0].sendall(b"inside"), daemon=True).start()',
        'c = socket.create_connection(("127.0.0.1", 8000)); print(c.recv(16).decode())',
      ].join('\n'),
    });
    assert.equal(r.stdout, 'inside\n');
  });

  it('cannot mount, reconfigure the host kernel, or load modules', async () => {
    const r = await sh(
      'mount -t tmpfs none /mnt 2>/dev/null && echo MOUNTED || echo mount-denied; ' +
        '(echo 1 > /proc/sys/vm/drop_caches) 2>/dev/null && echo WROTE || echo sysctl-denied; ' +
        '(echo "|/bin/sh" > /proc/sys/kernel/core_pattern) 2>/dev/null && echo WROTE || echo core-pattern-denied; ' +
        'grep CapEff /proc/self/status',
    );
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 3), ['mount-denied', 'sysctl-denied', 'core-pattern-denied']);
    const capEff = BigInt('0x' + lines[3].split(/\s+/)[1]);
    for (const [name, bit] of [['SYS_ADMIN', 21n], ['SYS_MODULE', 16n], ['SYS_RAWIO', 17n], ['SYS_PTRACE', 19n], ['NET_ADMIN', 12n], ['SYS_TIME', 25n]] as const) {
      assert.equal((capEff >> bit) & 1n, 0n, `CAP_${name} must be dropped`);
    }
  });

  it('cannot reach the host\'s disk through a device node', async () => {
    const dev = fs.statSync('/').dev;
    const major = (dev >> 8) & 0xfff;
    const minor = (dev & 0xff) | ((dev >> 12) & 0xfff00);
    const r = await sh(`mknod /tmp/disk b ${major} ${minor} 2>&1; head -c 512 /tmp/disk >/dev/null 2>&1 && echo READ || echo read-denied`);
    assert.equal(r.stdout.trim().split('\n').pop(), 'read-denied', r.stdout);
  });

  it('writes only to its own layer: the environment image and the host stay untouched', async () => {
    const envHosts = path.join(envRootfs('busybox'), 'etc', 'hosts');
    const before = fs.readFileSync(envHosts, 'utf8');
    const hostBefore = fs.readFileSync('/etc/hosts', 'utf8');
    const r = await sh('echo hacked >> /etc/hosts; rm -f /bin/ls; cat /etc/hosts | tail -1');
    assert.equal(r.stdout, 'hacked\n');
    assert.equal(fs.readFileSync(envHosts, 'utf8'), before);
    assert.equal(fs.readFileSync('/etc/hosts', 'utf8'), hostBefore);
    assert.ok(fs.existsSync(path.join(envRootfs('busybox'), 'bin', 'ls')));
    const next = await sh('tail -1 /etc/hosts; test -e /bin/ls && echo ls-present');
    assert.ok(!next.stdout.includes('hacked') && next.stdout.includes('ls-present'), 'a write leaked into the next sandbox');
  });

  it('refuses files that try to escape the rootfs', async () => {
    const r = await sh('ls /escape-test 2>/dev/null; cat /etc/escaped 2>/dev/null', {
      files: [{ path: '../../../../etc/escaped', content: 'x' }],
    });
    assert.equal(r.stdout, 'x');
    assert.ok(!fs.existsSync('/etc/escaped'));
  });

  it('cannot see the host through /proc/1/root or the runtime\'s fds', async () => {
    const r = await sh('ls /proc/1/root/ | head -3; ls /proc/self/fd | wc -l');
    const lines = r.stdout.trim().split('\n');
    assert.ok(!lines.includes('work') && !lines.includes('vmlinuz'));
    assert.ok(Number(lines[lines.length - 1]) <= 5, `the sandbox inherited ${lines[lines.length - 1]} fds`);
  });
});
