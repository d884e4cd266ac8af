"""UnifiedFaaSClient on the real agent: direct runs go to it; a run that needs Tangle raises (the
unit tests check that nothing reaches the direct client then)."""

from __future__ import annotations

import pytest

from forkspace import TangleNotConfiguredError, UnifiedFaaSClient

from .conftest import StackInfo


async def test_unified_auto(stack: StackInfo) -> None:
    async with UnifiedFaaSClient(mode="auto", api_key=stack.key, platform_url=stack.url) as u:
        assert u.direct is not None
        r = await u.execute("echo direct", environment="busybox")
        assert r.stdout == "direct\n"
        with pytest.raises(TangleNotConfiguredError, match="verifiable"):
            await u.execute("echo never", environment="busybox", verifiable=True)
    with pytest.raises(TangleNotConfiguredError):
        UnifiedFaaSClient(mode="tangle", api_key=stack.key, keypair={"suri": "//Alice"})
