// FORKSPACE_API_KEY=$(forkspace keys create) node --import tsx sdk/ts/examples/quickstart.ts
import { FaaSPlatformClient } from '../src'; // '@forkspace/sdk' once installed

async function main(): Promise<void> {
  const client = new FaaSPlatformClient({ apiKey: process.env.FORKSPACE_API_KEY, platformUrl: process.env.FORKSPACE_URL ?? 'http://127.0.0.1:7812' });

  // A fresh sandbox with limits, destroyed after the run.
  const r = await client.sandbox('python:3.11').withMemory('512M').withTimeout(30_000).run('python -c "print(6 * 7)"');
  console.log('ephemeral:', r.stdout.trim(), `(exit ${r.exitCode}, ${r.durationMs.toFixed(1)} ms)`);

  // A persistent sandbox: `await using` destroys it when the block ends, also when it throws.
  {
    await using sbx = await client.sandboxes.create({ environment: 'python' });
    await sbx.files.write('/root/train.py', 'import pathlib\np = pathlib.Path("/root/steps")\nn = int(p.read_text()) + 1 if p.exists() else 1\np.write_text(str(n))\nprint("step", n)\n');
    await sbx.snapshot({ label: `quickstart-${Date.now()}` }).then((s) => console.log('snapshot:', s.id, `(paused ${s.timings.pauseMs.toFixed(1)} ms)`));

    // The seed's call: run from a checkpoint (an id or a unique label), checkpoint the result.
    const snapshots = await client.snapshots.list({ sandboxId: sbx.id });
    const first = await client.executeCheckpointed('python train.py', 'python', snapshots[0].id, { onStdout: (d) => process.stdout.write(`  | ${d}`) });
    const second = await client.executeCheckpointed('python train.py', 'python', first.checkpointId);
    console.log('checkpointed:', first.stdout.trim(), '->', second.stdout.trim(), `(now ${second.checkpointId})`);

    // Three branches of that checkpoint at once, one input each.
    const map = await client.snapshots.ref(second.checkpointId as string).map(['a', 'b', 'c'], 'echo "$FORKSPACE_INPUT: $(cat /root/steps)"');
    console.log('branched:', map.results.map((x) => x.stdout.trim()).join(', '), `(${map.branchTimeMs.toFixed(1)} ms to branch)`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
