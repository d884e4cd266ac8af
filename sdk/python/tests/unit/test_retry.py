"""Retries against a real HTTP server on 127.0.0.1: on 503 and connection resets, never on 400; POSTs carry
one Idempotency-Key across their retries."""

from __future__ import annotations

import random
import time

import pytest

from forkspace import (
    AuthenticationError,
    FaaSPlatformClient,
    ForkspaceConnectionError,
    InvalidParamsError,
    RetryPolicy,
    ServiceUnavailableError,
)
from forkspace.transport import HttpTransport

from .fakes import ScriptedServer, error_body, exec_result

FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)
UNAVAILABLE = (503, error_body(-32803, "ShuttingDown", "shutting down"))
OK_RUN = (200, exec_result(stdout="ok\n"))


async def run_against(server: ScriptedServer, retry: RetryPolicy = FAST) -> str:
    async with FaaSPlatformClient("k", platform_url=server.url, retry=retry) as client:
        return (await client.execute("echo ok")).stdout


async def test_retries_503_then_succeeds_with_one_idempotency_key() -> None:
    async with ScriptedServer([UNAVAILABLE, UNAVAILABLE, OK_RUN]) as server:
        assert await run_against(server) == "ok\n"
    assert [r.path for r in server.requests] == ["/v1/executions/run"] * 3
    keys = {r.headers["idempotency-key"] for r in server.requests}
    assert len(keys) == 1 and len(keys.pop()) >= 16
    assert all(r.headers["authorization"] == "Bearer k" for r in server.requests)


async def test_retries_a_reset_connection() -> None:
    async with ScriptedServer(["reset", "reset", OK_RUN]) as server:
        assert await run_against(server) == "ok\n"
    assert len(server.requests) == 3
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1


async def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    async with ScriptedServer([(503, {"error": {"message": "busy"}})]) as server:
        with pytest.raises(ServiceUnavailableError, match="busy"):
            await run_against(server)
    assert len(server.requests) == FAST.max_attempts


async def test_resets_to_the_end_raise_a_connection_error() -> None:
    async with ScriptedServer(["reset"]) as server:
        with pytest.raises(ForkspaceConnectionError, match="broke"):
            await run_against(server)
    assert len(server.requests) == FAST.max_attempts


@pytest.mark.parametrize(
    ("answer", "cls"),
    [((400, error_body(-32602, "InvalidParams", "timeoutMs: expected a number")), InvalidParamsError),
     ((401, error_body(-32805, "Unauthorized", "missing key")), AuthenticationError)],
)
async def test_never_retries_a_client_error(answer: tuple[int, dict[str, object]], cls: type[Exception]) -> None:
    async with ScriptedServer([answer, OK_RUN]) as server:
        with pytest.raises(cls):
            await run_against(server)
    assert len(server.requests) == 1


async def test_get_is_retried_without_a_key() -> None:
    async with ScriptedServer(["reset", (200, {"snapshots": []})]) as server:
        async with FaaSPlatformClient("k", platform_url=server.url, retry=FAST) as client:
            assert await client.snapshots.list(label="x") == []
    assert [r.method for r in server.requests] == ["GET", "GET"]
    assert server.requests[1].path == "/v1/snapshots?label=x"
    assert "idempotency-key" not in server.requests[1].headers


async def test_retry_after_is_honoured() -> None:
    async with ScriptedServer([(503, {"error": {"message": "later"}}, {"retry-after": "0.3"}), OK_RUN]) as server:
        t0 = time.monotonic()
        await run_against(server, RetryPolicy(max_attempts=2, base_delay=0.0, max_delay=1.0))
        assert time.monotonic() - t0 >= 0.3


async def test_refused_connection_names_the_url() -> None:
    async with ScriptedServer([OK_RUN]) as server:
        url = server.url
    transport = HttpTransport(url, "k", retry=RetryPolicy(max_attempts=2, base_delay=0.01))
    with pytest.raises(ForkspaceConnectionError, match="127.0.0.1.*is it running"):
        await transport.call("agent/status", {})
    await transport.aclose()


def test_backoff_is_exponential_capped_and_jittered() -> None:
    p = RetryPolicy(max_attempts=10, base_delay=0.1, max_delay=1.0, rng=random.Random(7))
    delays = [[p.delay(n) for _ in range(200)] for n in (1, 2, 3, 4, 5, 6)]
    for n, ds in enumerate(delays, start=1):
        cap = min(1.0, 0.1 * 2 ** (n - 1))
        assert all(0 <= d <= cap for d in ds)
        assert max(ds) > cap * 0.8 and len(set(ds)) > 150, "delays are not spread over [0, cap]"
    assert p.delay(3, retry_after=7) == 1.0


def test_policy_validation() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
