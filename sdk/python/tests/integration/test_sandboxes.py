"""Sandboxes, the fluent builder, async with, snapshots, branches, diff and merge, instances, files, ports,
HTTP exposure, terminals: each against the real agent and runtime."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from forkspace import FaaSPlatformClient, MergeConflictError, SandboxNotFoundError

from .conftest import StackInfo


class Boom(Exception):
    pass


async def assert_gone(client: FaaSPlatformClient, sandbox_id: str) -> None:
    try:
        info = await (await client.sandboxes.get(sandbox_id)).refresh()
    except SandboxNotFoundError:
        return
    assert info.state == "destroyed", f"{sandbox_id} is {info.state}, not destroyed"


async def test_async_with_destroys_the_sandbox_even_when_the_body_raises(client: FaaSPlatformClient) -> None:
    seen: list[str] = []
    with pytest.raises(Boom):
        async with client.sandbox("busybox").with_memory("64M") as sbx:
            seen.append(sbx.id)
            r = await sbx.exec("echo inside")
            assert r.stdout == "inside\n"
            assert sbx.info is not None and sbx.info.spec.memory_bytes == 64 << 20
            raise Boom("the body failed")
    await assert_gone(client, seen[0])
    with pytest.raises(Boom):
        async with await client.create_sandbox("busybox") as sbx2:
            seen.append(sbx2.id)
            raise Boom()
    await assert_gone(client, seen[1])
    assert seen[0] != seen[1]


async def test_fluent_run_applies_limits_and_timeout(client: FaaSPlatformClient) -> None:
    r = await client.sandbox("python:3.11").with_memory("512M").with_timeout(30_000).run("python -c 'print(40 + 2)'")
    assert r.exit_code == 0 and r.stdout == "42\n" and r.environment.startswith("python")
    slow = await client.sandbox("busybox").with_timeout(300).run("sleep 5")
    assert slow.timed_out and not slow.ok and slow.duration_ms < 4000
    oom = await client.sandbox("python").with_memory("32M").run(["python3", "-c", "b = bytearray(256 << 20)"])
    assert oom.oom_killed and not oom.ok


async def test_persistent_state_snapshot_branch_diff_merge(client: FaaSPlatformClient) -> None:
    async with await client.create_sandbox("busybox") as base:
        await base.exec("mkdir -p /work && printf 'a\\nb\\nc\\n' > /work/shared.txt && echo one > /work/keep.txt")
        assert (await base.exec("cat /work/keep.txt")).stdout == "one\n"
        snap = await base.snapshot(label="merge-base")
        assert snap.timings.pause_ms >= 0 and snap.snapshot.label == "merge-base"
        a, b = await client.snapshots.branch(snap.snapshot.id, 2)
        async with a, b:
            await a.exec("printf 'A\\nb\\nc\\n' > /work/shared.txt && echo new > /work/only-a.txt")
            await b.exec("printf 'a\\nb\\nC\\n' > /work/shared.txt && echo fromb > /work/only-b.txt")
            d = await a.diff(b)
            changes = {c.path: (c.a, c.b) for c in d.changes}
            assert changes["/work/only-a.txt"] == ("added", "unchanged") and changes["/work/only-b.txt"] == ("unchanged", "added")
            assert d.base == snap.snapshot.id
            m = await a.merge_from(b)
            assert not m.aborted and m.conflicts == [] and "/work/only-b.txt" in m.applied
            assert (await a.exec("cat /work/shared.txt /work/only-b.txt")).stdout == "A\nb\nC\nfromb\n"

            await b.exec("printf 'X\\nb\\nC\\n' > /work/shared.txt")
            conflicted = await a.merge_from(b, raise_on_conflict=False)
            assert conflicted.aborted and [c.path for c in conflicted.conflicts] == ["/work/shared.txt"]
            assert (await a.exec("cat /work/shared.txt")).stdout == "A\nb\nC\n", "a failed merge changed files"
            with pytest.raises(MergeConflictError) as info:
                await a.merge_from(b)
            assert info.value.conflicts[0].path == "/work/shared.txt" and info.value.status == 409
            theirs = await a.merge_from(b, "theirs")
            assert not theirs.aborted and (await a.exec("head -n1 /work/shared.txt")).stdout == "X\n"
        tree = await client.tree()
        assert any(n.id == "busybox" for n in tree)


async def test_instances_start_pause_resume_stop(client: FaaSPlatformClient) -> None:
    inst = await client.instances.start(environment="busybox", command="sh -c 'i=0; while true; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done'")
    try:
        assert inst.info is not None and inst.info.policy.instance
        await asyncio.sleep(0.3)
        await inst.pause()
        assert inst.info.state == "paused"
        n1 = (await inst.files.read_text("/tmp/n")).strip()
        await asyncio.sleep(0.3)
        assert (await inst.files.read_text("/tmp/n")).strip() == n1, "a paused instance kept running"
        await inst.resume()
        stopped = await inst.stop()
        assert stopped.snapshot_id.startswith("snap-") and stopped.instance.state == "stopped"
        await inst.resume()
        assert inst.info.state == "running"
        await asyncio.sleep(0.3)
        assert int((await inst.files.read_text("/tmp/n")).strip()) > int(n1), "the resumed instance did not continue"
        assert inst.id in [i.id for i in await client.instances.list()]
    finally:
        await inst.destroy()


async def test_files_round_trip_in_chunks(client: FaaSPlatformClient, tmp_path: os.PathLike[str]) -> None:
    data = os.urandom(3 * 1024 * 1024 + 12345)
    src = os.path.join(tmp_path, "in.bin")
    dst = os.path.join(tmp_path, "out.bin")
    with open(src, "wb") as f:
        f.write(data)
    client.files.chunk_size = 1024 * 1024  # four chunks each way
    async with await client.create_sandbox("busybox") as sbx:
        assert await sbx.files.upload(src, "/root/data.bin") == len(data)
        r = await sbx.exec("wc -c < /root/data.bin")
        assert int(r.stdout) == len(data)
        assert await sbx.files.download("/root/data.bin", dst) == len(data)
        with open(dst, "rb") as f:
            assert f.read() == data
        await sbx.files.write("/root/dir/hello.txt", "hi\n")
        names = {e.name: e.kind for e in await sbx.files.list("/root")}
        assert names["dir"] == "dir" and names["data.bin"] == "file"
        assert await sbx.files.remove("/root/dir", recursive=True)
        snap = await sbx.snapshot()
        assert await client.files.read(snap.snapshot.id, "/root/data.bin") == data


async def test_ports_and_http_exposure(client: FaaSPlatformClient, stack: StackInfo) -> None:
    server = "mkdir -p /srv && echo hello-from-sandbox > /srv/index.html && exec httpd -f -p 8000 -h /srv"
    async with await client.create_sandbox("busybox", command=["sh", "-c", server]) as sbx:
        fwd = await sbx.forward_port(8000)
        assert fwd.host_address == "127.0.0.1" and fwd.host_port > 0
        async with httpx.AsyncClient() as http:
            for _ in range(50):
                try:
                    r = await http.get(f"http://127.0.0.1:{fwd.host_port}/")
                    break
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
            assert r.text == "hello-from-sandbox\n"
            exp = await sbx.expose_http(8000, "py-sdk-web")
            assert exp.url.endswith("/v1/expose/py-sdk-web/")
            ok = await http.get(exp.url, headers={"authorization": f"Bearer {stack.key}"})
            assert ok.status_code == 200 and ok.text == "hello-from-sandbox\n"
            assert (await http.get(exp.url)).status_code == 401
            assert await client.http.hide("py-sdk-web")
        assert await client.ports.unforward(fwd.forward_id)


async def test_terminal(client: FaaSPlatformClient) -> None:
    async with await client.create_sandbox("busybox") as sbx:
        async with await sbx.terminal(cols=100, rows=30) as term:
            first = await asyncio.wait_for(term.read_until("#"), 10)
            assert "#" in first
            await term.write("stty size; echo $((6*7))\n")
            out = await asyncio.wait_for(term.read_until("42"), 10)
            assert "30 100" in out and "42" in out
            await term.write("exit 3\n")
            rest = [t async for t in term]
            assert term.exit_code == 3, rest


async def test_list_filters_and_batch_destroy(client: FaaSPlatformClient) -> None:
    made = [await client.create_sandbox("busybox", labels={"suite": "py-filters", "n": str(i)}) for i in range(3)]
    try:
        mine = await client.sandboxes.list(label="suite=py-filters", state="running")
        assert sorted(s.id for s in mine) == sorted(s.id for s in made)
        assert [s.id for s in await client.sandboxes.list(label="n=1")] == [made[1].id]
        snap = await made[0].snapshot(label="py-filter-snap")
        assert [s.id for s in await client.snapshots.list(sandbox_id=made[0].id)] == [snap.id]
        assert [s.id for s in await client.snapshots.list(label="py-filter-snap")] == [snap.id]
    finally:
        items = await client.sandboxes.destroy_many([s.id for s in made] + ["sbx-000000000000"])
    assert [i.value for i in items] == [True, True, True, False]
    assert await client.sandboxes.list(label="suite=py-filters", state="running") == []
