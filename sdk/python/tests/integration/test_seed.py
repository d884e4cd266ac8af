"""The seed's Python Direct-flow example, verbatim apart from the URL (FORKSPACE_URL) and the key, against a
python:3.9 snapshot labelled `snapshot-123` that holds train.py."""

from __future__ import annotations

import pytest

from forkspace import FaaSPlatformClient

from .conftest import StackInfo

TRAIN_PY = """\
import os, sys
steps = int(open('/root/steps').read()) if os.path.exists('/root/steps') else 0
steps += 1
open('/root/steps', 'w').write(str(steps))
print(f"python {sys.version_info.major}.{sys.version_info.minor} step {steps}")
"""


@pytest.fixture(scope="session")
async def snapshot_123(stack: StackInfo) -> str:
    """A python:3.9 sandbox with /root/train.py, snapshotted with the label `snapshot-123`."""
    async with FaaSPlatformClient(api_key=stack.key, platform_url=stack.url) as client:
        await client.environments.build("python:3.9")
        async with await client.create_sandbox("python:3.9") as sbx:
            await sbx.files.write("/root/train.py", TRAIN_PY)
            snap = await sbx.snapshot(label="snapshot-123")
        return snap.snapshot.id


async def test_seed_python_direct_flow(stack: StackInfo, snapshot_123: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORKSPACE_URL", stack.url)
    # --- the seed (FaaS Platform API Flows, Flow 1, Python), with a real key -----------------------------
    async with FaaSPlatformClient(api_key=stack.key) as client:
        # Direct execution
        result = await client.execute_checkpointed(
            'python train.py',
            checkpoint='snapshot-123'
        )
    # ---------------------------------------------------------------------------------------------------
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "python 3.9 step 1\n"
    assert result.environment.startswith("python:3.9")
    assert result.checkpoint_id and result.checkpoint_id.startswith("snap-") and result.checkpoint_id != snapshot_123


async def test_checkpoints_chain_and_the_label_stays_put(stack: StackInfo, snapshot_123: str) -> None:
    async with FaaSPlatformClient(api_key=stack.key, platform_url=stack.url) as client:
        first = await client.execute_checkpointed("python train.py", checkpoint="snapshot-123")
        second = await client.execute_checkpointed("python train.py", checkpoint=first.checkpoint_id)
        again = await client.execute_checkpointed("python train.py", checkpoint=snapshot_123)
        assert (first.stdout, second.stdout, again.stdout) == ("python 3.9 step 1\n", "python 3.9 step 2\n", "python 3.9 step 1\n")
        snap = await client.snapshots.get("snapshot-123")
        assert snap.id == snapshot_123 and snap.environment.startswith("python:3.9") and snap.label == "snapshot-123"
        assert second.checkpoint_id is not None
        assert (await client.files.read_text(second.checkpoint_id, "/root/steps")) == "2"
