"""Against the real agent: a POST whose connection breaks mid-request is retried with the same
Idempotency-Key, and the agent runs it once (the retry gets the first one's answer)."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

from forkspace import FaaSPlatformClient, RetryPolicy

from .conftest import StackInfo
from .proxy import CuttableProxy


async def test_a_cut_post_is_retried_and_runs_once(stack: StackInfo, client: FaaSPlatformClient) -> None:
    agent = urlparse(stack.url)
    async with await client.create_sandbox("busybox") as sbx:
        async with CuttableProxy(agent.hostname or "127.0.0.1", agent.port or 80) as proxy:
            retry = RetryPolicy(max_attempts=3, base_delay=0.05, max_delay=0.1)
            async with FaaSPlatformClient(api_key=stack.key, platform_url=stack.url, executor_url=proxy.url, retry=retry) as via_proxy:
                run = asyncio.ensure_future(via_proxy.execute_persistent(sbx.id, "echo ran >> /root/count; sleep 1; echo done"))
                for _ in range(100):
                    if proxy.pipes:
                        break
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.3)
                assert proxy.cut() > 0, "the request was not in flight"
                result = await asyncio.wait_for(run, 30)
            assert proxy.accepted >= 2, "the SDK did not reconnect"
        assert result.exit_code == 0 and result.stdout == "done\n"
        assert (await sbx.exec("cat /root/count")).stdout == "ran\n", "the retried POST ran twice"
