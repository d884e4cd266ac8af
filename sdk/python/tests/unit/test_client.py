"""The client's call shapes through the Transport seam: what each method sends, and what it returns."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import forkspace.sync
from forkspace import (
    ExecutionMode,
    FaaSPlatformClient,
    MergeConflictError,
    SandboxNotFoundError,
    TangleNotConfiguredError,
    UnifiedFaaSClient,
)
from forkspace.errors import error_from_wire

from .fakes import FakeTransport, exec_result, sandbox_wire


def client_with(handlers: dict[str, Any]) -> tuple[FaaSPlatformClient, FakeTransport]:
    t = FakeTransport(handlers)
    return FaaSPlatformClient("k", transport=t), t


async def test_execute_checkpointed_as_in_the_seed() -> None:
    client, t = client_with({"exec/run": exec_result(checkpointId="snap-2", stdout="trained\n")})
    async with client:
        result = await client.execute_checkpointed("python train.py", checkpoint="snapshot-123")
    assert result.checkpoint_id == "snap-2" and result.stdout == "trained\n"
    assert t.calls[0].params == {"command": "python train.py", "mode": "checkpointed", "checkpointId": "snapshot-123"}
    assert t.closed


async def test_execute_checkpointed_positional_like_the_ts_seed() -> None:
    client, t = client_with({"exec/run": exec_result()})
    await client.execute_checkpointed("python train.py", "python:3.9", "snapshot-123")
    assert t.calls[0].params["checkpointId"] == "snapshot-123" and "environment" not in t.calls[0].params
    await client.execute_checkpointed("python train.py", "python:3.9")
    assert t.calls[1].params["environment"] == "python:3.9" and "checkpointId" not in t.calls[1].params


async def test_modes() -> None:
    client, t = client_with({"exec/run": exec_result(cached=True), "exec/branch": {"snapshotId": "s", "strategy": "race", "results": [exec_result(), exec_result(exitCode=137)], "winner": 0, "branchTimeMs": 3}})
    await client.execute_cached("ls", "busybox", refresh=True)
    assert t.calls[-1].params == {"command": "ls", "mode": "cached", "environment": "busybox", "cache": "refresh"}
    await client.execute_persistent("sbx-9", code="print(1)")
    assert t.calls[-1].params == {"code": "print(1)", "mode": "persistent", "sandboxId": "sbx-9"}
    run = await client.execute_branched("s", "sh -c 'exit 0'", count=2, strategy="race")
    assert run.winner == 0 and run.winning_result is not None and run.results[1].exit_code == 137
    assert t.calls[-1].params == {"command": "sh -c 'exit 0'", "snapshotId": "s", "strategy": "race", "count": 2}
    with pytest.raises(ValueError, match="branched"):
        await client.execute("ls", mode=ExecutionMode.BRANCHED)
    with pytest.raises(ValueError, match="sandbox_id"):
        await client.execute("ls", mode="persistent")


async def test_fluent_chain() -> None:
    client, t = client_with({"exec/run": exec_result()})
    await client.sandbox("python:3.11").with_memory("512M").with_timeout(30_000).run("python train.py")
    assert t.calls[0].params == {
        "command": "python train.py", "mode": "ephemeral", "environment": "python:3.11",
        "limits": {"memoryBytes": 512 << 20}, "timeoutMs": 30_000,
    }


async def test_with_disk_sends_the_disk_limit_next_to_the_others() -> None:
    client, t = client_with({"exec/run": exec_result(), "sandbox/create": {"sandbox": {"id": "sbx-9"}}})
    await client.sandbox("python").with_memory("256M").with_disk("2G").run("true")
    assert t.calls[0].params["limits"] == {"memoryBytes": 256 << 20, "diskBytes": 2 << 30}
    base = client.sandbox("python").with_disk(64 << 20)
    assert base.limits.disk_bytes == 64 << 20 and base.with_cpus(1).limits.disk_bytes == 64 << 20


async def test_builders_are_immutable() -> None:
    client, _ = client_with({})
    base = client.sandbox("python").with_memory("256M")
    a = base.with_cpus(0.5)
    assert base.limits.cpus is None and a.limits.cpus == 0.5 and a.limits.memory_bytes == 256 << 20


class Boom(Exception):
    pass


async def test_async_with_destroys_the_sandbox_when_the_body_raises() -> None:
    client, t = client_with({"sandbox/create": {"sandbox": sandbox_wire("sbx-7")}, "sandbox/destroy": {"sandboxId": "sbx-7", "state": "destroyed"}})
    with pytest.raises(Boom):
        async with client.sandbox("python").with_memory("128M") as sbx:
            assert sbx.id == "sbx-7"
            raise Boom()
    assert t.methods() == ["sandbox/create", "sandbox/destroy"]
    assert t.calls[0].params == {"environment": "python", "limits": {"memoryBytes": 128 << 20}}
    assert t.calls[1].params == {"sandboxId": "sbx-7"}


async def test_destroy_failure_does_not_hide_the_body_error() -> None:
    client, t = client_with({"sandbox/create": {"sandbox": sandbox_wire("sbx-8")}, "sandbox/destroy": RuntimeError("agent gone")})
    with pytest.raises(Boom) as info:
        async with await client.create_sandbox("python"):
            raise Boom()
    assert any("sbx-8" in n for n in getattr(info.value, "__notes__", []))


async def test_destroying_a_gone_sandbox_is_fine() -> None:
    gone = error_from_wire({"error": {"code": -33005, "message": "no sandbox"}}, 404)
    client, t = client_with({"sandbox/create": {"sandbox": sandbox_wire("sbx-9")}, "sandbox/destroy": gone})
    async with await client.create_sandbox():
        pass
    assert t.methods() == ["sandbox/create", "sandbox/destroy"]
    assert isinstance(gone, SandboxNotFoundError)


async def test_merge_conflicts_as_data_or_raised() -> None:
    data = {"from": "b", "into": "a", "base": "s", "strategy": "fail", "applied": [], "aborted": True,
            "conflicts": [{"path": "/f", "into": "modified", "from": "modified", "reason": "same lines", "detail": "<<<"}]}
    conflict = error_from_wire({"error": {"code": -33013, "name": "MergeConflict", "message": "1 conflict", "data": data}}, 409)
    client, t = client_with({"branch/merge": conflict})
    m = await client.merge("b", "a", raise_on_conflict=False)
    assert m.aborted and m.conflicts[0].path == "/f" and m.base == "s" and m.applied == []
    with pytest.raises(MergeConflictError) as info:
        await client.merge("b", "a")
    assert info.value.conflicts[0].reason == "same lines"
    assert t.calls[0].params == {"from": "b", "into": "a", "strategy": "fail"}


async def test_map_runs_each_input_and_keeps_order() -> None:
    def run(p: dict[str, Any]) -> dict[str, Any]:
        return exec_result(stdout=p["command"])

    client, t = client_with({"exec/run": run})
    results = await client.map([3, 1, 2], lambda x: f"echo {x}", environment="busybox", concurrency=2)
    assert [r.stdout for r in results] == ["echo 3", "echo 1", "echo 2"]
    assert all(c.params["environment"] == "busybox" for c in t.calls)


async def test_batch_settles_every_call() -> None:
    client, _ = client_with({"exec/run": lambda p: exec_result() if p["command"] != "bad" else RuntimeError("no")})
    items = await client.execute_batch(["a", "bad", "c"])
    assert [i.ok for i in items] == [True, False, True] and [i.index for i in items] == [0, 1, 2]
    with pytest.raises(RuntimeError):
        items[1].unwrap()


async def test_snapshot_batch_delete() -> None:
    gone = error_from_wire({"error": {"code": -33009, "message": "no snapshot"}}, 404)
    client, _ = client_with({"snapshot/delete": lambda p: gone if p["snapshotId"] == "x" else {"snapshotId": p["snapshotId"], "deleted": True}})
    items = await client.snapshots.delete_many(["a", "x"])
    assert [i.value for i in items] == [True, False]


async def test_unified_rule() -> None:
    direct, t = client_with({"exec/run": exec_result(stdout="direct\n")})
    u = UnifiedFaaSClient(mode="auto", direct=direct)
    assert (await u.execute("echo direct")).stdout == "direct\n"
    for flag in ("verifiable", "decentralized", "economic_incentives"):
        with pytest.raises(TangleNotConfiguredError, match=flag):
            await u.execute("echo x", **{flag: True})
    assert len(t.calls) == 1, "a Tangle run fell back to the direct client"
    with pytest.raises(TangleNotConfiguredError, match="mode='tangle'"):
        UnifiedFaaSClient(mode="tangle", keypair=object())


async def test_unified_with_a_tangle_plugin() -> None:
    class Tangle:
        async def execute(self, command: Any, options: Any) -> Any:
            return ("tangle", command, options.verifiable)

    u = UnifiedFaaSClient(mode="tangle", tangle=Tangle())
    assert u.direct is None and u.flow_for(__import__("forkspace").ExecutionOptions()) == "tangle"
    assert await u.execute("job", verifiable=True) == ("tangle", "job", True)


def test_sync_wrapper() -> None:
    t = FakeTransport({"exec/run": exec_result(stdout="sync\n"), "sandbox/create": {"sandbox": sandbox_wire("s1")},
                       "sandbox/exec": exec_result(stdout="in\n"), "sandbox/destroy": {}})
    with forkspace.sync.FaaSPlatformClient("k", transport=t) as client:
        assert client.execute("echo sync").stdout == "sync\n"
        assert client.sandbox("python:3.11").with_memory("512M").with_timeout(30_000).run("x").stdout == "sync\n"
        with pytest.raises(Boom):
            with client.sandbox("python") as sbx:
                assert sbx.exec("true").stdout == "in\n"
                raise Boom()
    assert t.methods() == ["exec/run", "exec/run", "sandbox/create", "sandbox/exec", "sandbox/destroy"]
    assert t.calls[1].params["limits"] == {"memoryBytes": 512 << 20} and t.closed


async def test_sync_wrapper_refuses_a_running_loop() -> None:
    client = forkspace.sync.FaaSPlatformClient.__new__(forkspace.sync.FaaSPlatformClient)
    client._r = forkspace.sync._Runner()
    with pytest.raises(RuntimeError, match="async client"):
        client.run(asyncio.sleep(0))
    client._r.close()


def test_default_url_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORKSPACE_URL", "http://10.1.2.3:9/")
    monkeypatch.setenv("FORKSPACE_API_KEY", "env-key")
    c = FaaSPlatformClient()
    assert c.platform_url == "http://10.1.2.3:9" and c.executor_url == c.platform_url and c.api_key == "env-key"
    monkeypatch.delenv("FORKSPACE_URL")
    assert FaaSPlatformClient("k").platform_url == "http://127.0.0.1:7812"
    split = FaaSPlatformClient("k", platform_url="http://a:1", executor_url="http://b:2")
    assert split._core.platform is not split._core.executor
    assert split._core.transport_for("exec/run") is split._core.executor
    assert split._core.transport_for("snapshot/list") is split._core.platform
