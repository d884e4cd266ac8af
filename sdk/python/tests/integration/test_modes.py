"""Every execution mode, streaming callbacks and handles, map/race/batch, against the real agent."""

from __future__ import annotations

import time

import pytest

from forkspace import CommandNotFoundError, ExecutionMode, FaaSPlatformClient


async def test_ephemeral_collect_and_stdin(client: FaaSPlatformClient) -> None:
    r = await client.execute_ephemeral(
        "cat > /root/out.txt; wc -c < /root/out.txt; echo $GREETING >&2", "busybox", stdin="12345", env={"GREETING": "hi"},
        collect=["/root/out.txt"],
    )
    assert r.exit_code == 0 and r.stdout.strip() == "5" and r.stderr == "hi\n"
    assert r.files is not None and r.files[0].data() == b"12345"
    code = await client.execute(code="import sys; print(sys.argv[0] != None)", environment="python")
    assert code.stdout == "True\n"
    failed = await client.execute("exit 3", environment="busybox")
    assert failed.exit_code == 3 and not failed.ok


async def test_cached_mode_returns_the_stored_result(client: FaaSPlatformClient) -> None:
    cmd = f"echo cached-{time.time_ns()}; cat /proc/sys/kernel/random/uuid"
    first = await client.execute_cached(cmd, "busybox")
    second = await client.execute_cached(cmd, "busybox")
    assert not first.cached and second.cached and second.stdout == first.stdout
    refreshed = await client.execute_cached(cmd, "busybox", refresh=True)
    assert not refreshed.cached and refreshed.stdout != first.stdout


async def test_checkpointed_from_fresh_then_from_its_checkpoint(client: FaaSPlatformClient) -> None:
    first = await client.execute_checkpointed("echo 1 >> /root/log; cat /root/log", "busybox")
    assert first.checkpoint_id
    second = await client.execute_checkpointed("echo 2 >> /root/log; cat /root/log", checkpoint=first.checkpoint_id)
    assert second.stdout == "1\n2\n" and second.checkpoint_id not in (None, first.checkpoint_id)


async def test_persistent_mode_keeps_state(client: FaaSPlatformClient) -> None:
    async with await client.create_sandbox("busybox") as sbx:
        await client.execute_persistent(sbx, "echo kept > /root/state")
        r = await client.execute("cat /root/state", mode=ExecutionMode.PERSISTENT, sandbox_id=sbx.id)
        assert r.stdout == "kept\n" and r.sandbox_id == sbx.id


async def test_branched_map_and_race(client: FaaSPlatformClient) -> None:
    async with await client.create_sandbox("busybox") as sbx:
        await sbx.exec("echo base > /root/base")
        snap = (await sbx.snapshot()).snapshot.id
    run = await client.execute_branched(snap, 'echo "$(cat /root/base) $FORKSPACE_INPUT"', inputs=["x", "y", "z"])
    assert [r.stdout for r in run.results] == ["base x\n", "base y\n", "base z\n"]
    assert len({r.sandbox_id for r in run.results}) == 3
    race = await client.execute_branched(snap, "sleep 0.$((RANDOM % 5)); exit 0", count=3, strategy="race")
    assert race.winner is not None and race.winning_result is not None and race.winning_result.exit_code == 0


async def test_map_and_race_over_sandboxes(client: FaaSPlatformClient) -> None:
    async with await client.create_sandbox("busybox") as sbx:
        await sbx.exec("echo 10 > /root/n")
        snap = (await sbx.snapshot()).snapshot.id
    results = await client.map([1, 2, 3], lambda i: f"echo $(( $(cat /root/n) * {i} ))", snapshot=snap, concurrency=3)
    assert [r.stdout for r in results] == ["10\n", "20\n", "30\n"]
    fresh = await client.map(["a", "b"], lambda s: ["echo", s], environment="busybox")
    assert [r.stdout for r in fresh] == ["a\n", "b\n"]
    t0 = time.monotonic()
    race = await client.race(["sleep 30; exit 0", "sleep 0.2; exit 0", "exit 1"], environment="busybox")
    assert race.winner == 1 and race.result is not None and race.result.exit_code == 0
    assert race.results[2] is not None and race.results[2].exit_code == 1
    assert time.monotonic() - t0 < 20, "the losing 30 s sleep was not cancelled"


async def test_batch(client: FaaSPlatformClient) -> None:
    items = await client.execute_batch(["echo a", "echo b", "exit 7"], environment="busybox", concurrency=2)
    assert [i.unwrap().stdout for i in items[:2]] == ["a\n", "b\n"] and items[2].unwrap().exit_code == 7


async def test_streaming_callbacks_and_handles(client: FaaSPlatformClient) -> None:
    out: list[str] = []
    err: list[str] = []
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.05; done"
    r = await client.execute(script, environment="busybox", on_stdout=out.append, on_stderr=err.append)
    assert "".join(out) == "out1\nout2\nout3\n" and "".join(err) == "err1\nerr2\nerr3\n"
    assert r.stdout == "out1\nout2\nout3\n"

    handle = await client.start("for i in $(seq 1 5); do echo $i; sleep 0.05; done", environment="busybox")
    chunks = [c async for c in handle]
    assert "".join(c.data for c in chunks) == "1\n2\n3\n4\n5\n"
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert (await handle.wait()).exit_code == 0
    log = await handle.log()
    assert log.done and "".join(c.data for c in log.chunks) == "1\n2\n3\n4\n5\n"

    long = await client.start("sleep 60", environment="busybox")
    assert await long.cancel()
    state = await long.get(wait_ms=10_000)
    assert state.state == "cancelled"

    async with await client.create_sandbox("busybox") as sbx:
        lines: list[str] = []
        r2 = await sbx.exec("echo one; echo two", on_stdout=lines.append)
        assert "".join(lines) == "one\ntwo\n" and r2.sandbox_id == sbx.id


async def test_a_missing_command_is_an_error_not_a_result(client: FaaSPlatformClient) -> None:
    with pytest.raises(CommandNotFoundError, match="no-such-program"):
        await client.execute(["no-such-program"], environment="busybox")
    handle = await client.start(["no-such-program"], environment="busybox")
    with pytest.raises(CommandNotFoundError):
        await handle.result()
    assert (await handle.get()).state == "failed"
