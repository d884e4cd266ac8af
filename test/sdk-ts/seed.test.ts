// The seed's TypeScript Direct-flow example, verbatim apart from the URL and the key, against the real
// agent: a python:3.9 snapshot labelled `snapshot-123` holding train.py is prepared first with the same API
// key (the seed's `checkpoint_id: 'snapshot-123'`; a key sees only its own snapshots), and `python train.py`
// runs from it and is checkpointed.
import { strict as assert } from 'node:assert';
import { EnvBuild, EnvProgress } from '../../agent/src/protocol';
import { FaaSPlatformClient } from '../../sdk/ts/src';
import { useSdkStack } from './sdkStack';

const TRAIN_PY = `import sys, json
with open('/root/steps') as f:
    steps = int(f.read())
steps += 1
with open('/root/steps', 'w') as f:
    f.write(str(steps))
print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'steps': steps}))
`;

describe('seed example: Direct flow, TypeScript (real agent)', function () {
  // python:3.9 is built once (debootstrap, about a minute) into the shared environment cache.
  this.timeout(20 * 60_000);
  const s = useSdkStack();
  let snapshotId = '';

  before(async () => {
    const rpc = s.client();
    const progress = rpc.onNotification(EnvProgress, (p) => process.stdout.write(`      [${p.name}] ${p.message}\n`));
    await rpc.request(EnvBuild, { name: 'python:3.9' });
    progress.dispose();
    const sandbox = await s.sdk().sandboxes.create({ environment: 'python:3.9' });
    try {
      await sandbox.files.write('/root/train.py', TRAIN_PY);
      await sandbox.files.write('/root/steps', '0');
      snapshotId = (await sandbox.snapshot({ label: 'snapshot-123' })).id;
    } finally {
      await sandbox.destroy();
    }
  });

  it('runs `client.executeCheckpointed(\'python train.py\', \'python:3.9\', \'snapshot-123\')` as written', async () => {
    const apiKey = s.apiKey();
    const platformUrl = s.url();

    // TypeScript
    const client = new FaaSPlatformClient({
      apiKey: apiKey,
      platformUrl: platformUrl,
      executorUrl: platformUrl
    });

    // Direct execution
    const result = await client.executeCheckpointed(
      'python train.py',
      'python:3.9',
      'snapshot-123'
    );

    assert.equal(result.exitCode, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { python: '3.9', steps: 1 });
    assert.equal(result.environment, 'python:3.9');
    assert.match(result.checkpointId ?? '', /^snap-/);
    assert.notEqual(result.checkpointId, snapshotId);
    // The new checkpoint holds the trained state; running from it continues.
    const again = await client.executeCheckpointed('python train.py', 'python:3.9', result.checkpointId);
    assert.deepEqual(JSON.parse(again.stdout), { python: '3.9', steps: 2 });
    // And the labelled snapshot is unchanged.
    assert.deepEqual(JSON.parse((await client.executeCheckpointed('python train.py', 'python:3.9', 'snapshot-123')).stdout).steps, 1);
  });
});
