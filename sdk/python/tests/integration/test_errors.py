"""Agent answers map to the right classes, with messages that say what to do; keys are checked on every
call and a revoked key is refused at once."""

from __future__ import annotations

import pytest

from forkspace import (
    AuthenticationError,
    EnvironmentUnknownError,
    FaaSPlatformClient,
    ForkspaceConnectionError,
    InvalidParamsError,
    NO_RETRY,
    PermissionDeniedError,
    SandboxFileNotFoundError,
    SandboxNotFoundError,
    SnapshotNotFoundError,
    ExecNotFoundError,
)

from .conftest import StackInfo


async def test_not_found_errors(client: FaaSPlatformClient) -> None:
    with pytest.raises(SandboxNotFoundError) as e1:
        await client.sandboxes.get("sbx-nope")
    assert e1.value.status == 404 and e1.value.code == -33005 and "sbx-nope" in str(e1.value)
    with pytest.raises(SnapshotNotFoundError):
        await client.execute_checkpointed("true", checkpoint="no-such-label")
    with pytest.raises(ExecNotFoundError):
        await client.executions.get("never-started")
    async with await client.create_sandbox("busybox") as sbx:
        with pytest.raises(SandboxFileNotFoundError):
            await sbx.files.read("/no/such/file")


async def test_invalid_input(client: FaaSPlatformClient) -> None:
    with pytest.raises(EnvironmentUnknownError) as e:
        await client.execute("true", environment="cobol:85")
    assert isinstance(e.value.data, dict) and "busybox" in e.value.data.get("known", [])
    with pytest.raises(InvalidParamsError) as e2:
        await client.execute("true", timeout_ms=-5)
    assert "timeoutMs" in str(e2.value) and e2.value.status == 400


async def test_wrong_missing_and_revoked_keys(stack: StackInfo) -> None:
    for key in ("fsk_wrong", ""):
        async with FaaSPlatformClient(api_key=key, platform_url=stack.url, retry=NO_RETRY) as bad:
            with pytest.raises(AuthenticationError) as e:
                await bad.snapshots.list()
            assert e.value.status == 401
    async with FaaSPlatformClient(api_key=stack.admin_token, platform_url=stack.url) as admin:
        meta, secret = await admin.keys.create("short-lived")
        async with FaaSPlatformClient(api_key=secret, platform_url=stack.url) as user:
            assert isinstance(await user.snapshots.list(), list)
            with pytest.raises(PermissionDeniedError):
                await user.keys.list()
            await admin.keys.revoke(meta.id)
            with pytest.raises(AuthenticationError):
                await user.snapshots.list()
        assert any(k.id == meta.id and k.revoked_at_ms for k in await admin.keys.list())


async def test_stream_refused_without_a_key(stack: StackInfo, client: FaaSPlatformClient) -> None:
    handle = await client.start("echo hi", environment="busybox")
    await handle.wait()
    async with FaaSPlatformClient(api_key="fsk_wrong", platform_url=stack.url) as bad:
        with pytest.raises(AuthenticationError):
            [c async for c in bad.executions.stream(handle.exec_id)]


async def test_nothing_listening() -> None:
    async with FaaSPlatformClient(api_key="k", platform_url="http://127.0.0.1:9", retry=NO_RETRY) as nobody:
        with pytest.raises(ForkspaceConnectionError, match="could not connect"):
            await nobody.status()


async def test_any_method_by_name(client: FaaSPlatformClient) -> None:
    pools = await client.call("pool/list")
    assert isinstance(pools["pools"], list) and isinstance(pools["snapshots"], list)
    with pytest.raises(SandboxNotFoundError):
        await client.call("sandbox/pause", {"sandboxId": "sbx-000000000000"})
