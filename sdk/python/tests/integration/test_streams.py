"""An execution's output stream cut mid-way (the TCP connection dropped) resumes from its last sequence
number: every line arrives once, in order."""

from __future__ import annotations

from urllib.parse import urlparse

from forkspace import FaaSPlatformClient

from .conftest import StackInfo
from .proxy import CuttableProxy

LINES = 60


async def test_stream_resumes_after_the_connection_is_cut(stack: StackInfo) -> None:
    agent = urlparse(stack.url)
    async with CuttableProxy(agent.hostname or "127.0.0.1", agent.port or 80) as proxy:
        # Runs go through the proxy (the executor URL); everything else straight to the agent.
        async with FaaSPlatformClient(api_key=stack.key, platform_url=stack.url, executor_url=proxy.url) as client:
            handle = await client.start(f"for i in $(seq 1 {LINES}); do echo line $i; sleep 0.02; done", environment="busybox")
            stream = handle.output
            chunks = []
            cuts = 0
            async for chunk in stream:
                chunks.append(chunk)
                if len(chunks) in (5, 20, 35) and proxy.cut():
                    cuts += 1
            result = stream.execution.raise_for_error() if stream.execution else None
    text = "".join(c.data for c in chunks)
    assert text == "".join(f"line {i}\n" for i in range(1, LINES + 1)), "output was lost or duplicated"
    assert [c.seq for c in chunks] == list(range(1, len(chunks) + 1))
    assert cuts == 3 and stream.connections >= 4, f"the stream was not cut and resumed ({cuts} cuts, {stream.connections} connections)"
    assert result is not None and result.stdout == text


async def test_reattach_from_a_seq(client: FaaSPlatformClient) -> None:
    handle = await client.start("for i in 1 2 3 4; do echo $i; sleep 0.05; done", environment="busybox")
    await handle.wait()
    all_chunks = [c async for c in client.executions.stream(handle.exec_id)]
    assert "".join(c.data for c in all_chunks) == "1\n2\n3\n4\n" and len(all_chunks) >= 3
    later = [c async for c in client.executions.stream(handle.exec_id, after=all_chunks[1].seq)]
    assert later == all_chunks[2:]
