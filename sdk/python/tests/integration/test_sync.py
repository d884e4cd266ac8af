"""The blocking wrapper against the real agent."""

from __future__ import annotations

import asyncio

import pytest

import forkspace
import forkspace.sync

from .conftest import StackInfo


def test_sync_client(stack: StackInfo) -> None:
    with forkspace.sync.FaaSPlatformClient(api_key=stack.key, platform_url=stack.url) as client:
        assert client.execute("echo sync", environment="busybox").stdout == "sync\n"
        r = client.sandbox("busybox").with_memory("64M").with_timeout(10_000).run("echo fluent")
        assert r.stdout == "fluent\n"
        ids: list[str] = []
        with pytest.raises(ZeroDivisionError):
            with client.sandbox("busybox") as sbx:
                ids.append(sbx.id)
                sbx.files.write("/root/x", "y")
                assert sbx.exec("cat /root/x").stdout == "y"
                1 / 0
        with pytest.raises(forkspace.SandboxNotFoundError):
            client.run(client.aio.sandboxes.get(ids[0]))


def test_sync_inside_a_loop_is_refused(stack: StackInfo) -> None:
    async def inside() -> None:
        with pytest.raises(RuntimeError, match="async client"):
            forkspace.sync.FaaSPlatformClient(api_key=stack.key, platform_url=stack.url)

    asyncio.run(inside())
