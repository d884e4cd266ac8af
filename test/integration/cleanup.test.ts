// Nothing of a sandbox outlives it: not after 100 runs, not after the agent or the runtime is killed.
import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import { ErrorCodes, ExecRun, ExecStarted, ProtocolError } from '../../agent/src/protocol';
import { netnsInodes, processesInCgroup, sleep, useStack, waitFor } from './stack';

describe('cleanup (real runtime)', function () {
  const env = useStack();

  it('leaves no mount, cgroup, netns or process after 100 sequential runs', async () => {
    const client = await env.stack().client();
    const netnsBefore = netnsInodes();
    for (let i = 0; i < 100; i++) {
      const r = await client.request(ExecRun, { environment: 'busybox', command: 'echo $$ > /tmp/x; cat /tmp/x' });
      assert.equal(r.stdout, '1\n');
    }
    assert.deepEqual(await env.stack().leftovers(), []);
    const leakedNetns = [...netnsInodes()].filter((ino) => !netnsBefore.has(ino));
    assert.deepEqual(leakedNetns, [], 'network namespaces outlived their sandboxes');
  });

  it('kills a run whose client disconnects', async () => {
    const client = await env.stack().client();
    const started = new Promise<void>((r) => client.onNotification(ExecStarted, () => r()));
    void client.request(ExecRun, { environment: 'busybox', command: 'sleep 60' }).catch(() => {});
    await started;
    assert.equal((await processesInCgroup(env.stack().cgroupParent)).length, 1);
    client.close();
    await waitFor(async () => (await env.stack().leftovers()).length === 0, 5000, 'the orphaned run to be removed');
  });

  it('kills a run whose agent is SIGKILLed, and keeps the runtime serving', async () => {
    const client = await env.stack().client();
    const started = new Promise<void>((r) => client.onNotification(ExecStarted, () => r()));
    void client.request(ExecRun, { environment: 'busybox', command: 'sleep 60' }).catch(() => {});
    await started;
    await env.stack().killAgent();
    await waitFor(async () => (await env.stack().leftovers()).length === 0, 5000, 'the run of the killed agent to be removed');
    await env.stack().startAgent();
    const r = await (await env.stack().client()).request(ExecRun, { environment: 'busybox', command: 'echo back' });
    assert.equal(r.stdout, 'back\n');
  });

  it('cleans up after a SIGKILLed runtime when it next starts', async () => {
    const client = await env.stack().client();
    const started = new Promise<void>((r) => client.onNotification(ExecStarted, () => r()));
    const running = client.request(ExecRun, { environment: 'busybox', command: 'sleep 60' });
    await started;
    const rtPid = Number(fs.readFileSync(`${env.stack().config.dataDir}/rt.lock`, 'utf8'));
    process.kill(rtPid, 'SIGKILL');
    await assert.rejects(running, (e: ProtocolError) => e.code === ErrorCodes.ConnectionClosed);
    // The runtime's overlay mount, cgroup and directory are left for its successor to find.
    await sleep(200);
    const r = await client.request(ExecRun, { environment: 'busybox', command: 'echo restarted' });
    assert.equal(r.stdout, 'restarted\n');
    assert.deepEqual(await env.stack().leftovers(), []);
  });
});
