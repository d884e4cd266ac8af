"""Resumable output streams against a real WebSocket server on 127.0.0.1 that drops connections."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from forkspace import AuthenticationError, ExecNotFoundError, ForkspaceConnectionError, RetryPolicy
from forkspace.streaming import ExecutionStream
from forkspace.transport import HttpTransport

from .fakes import exec_result

N = 40


def end_frame(exec_id: str = "e1", **result: Any) -> dict[str, Any]:
    return {"type": "end", "execution": {"execId": exec_id, "state": "finished", "startedAtMs": 1, "endedAtMs": 2, "lastSeq": N,
                                         "result": exec_result(execId=exec_id, **result)}}


def output(seq: int) -> dict[str, Any]:
    return {"type": "output", "execId": "e1", "stream": "stdout" if seq % 3 else "stderr", "data": f"line {seq}\n", "seq": seq}


class FlakyStreamServer:
    """Serves N output frames then an end frame. The first ``drops`` connections are aborted (a TCP-level
    failure, no close frame) after ``drop_after`` frames; each connection replays from two frames before
    ``after`` (so the client must skip duplicates)."""

    def __init__(self, drops: int, drop_after: int = 7) -> None:
        self.drops = drops
        self.drop_after = drop_after
        self.afters: list[int] = []

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        after = int(parse_qs(urlparse(ws.request.path).query).get("after", ["0"])[0])
        self.afters.append(after)
        dropping = len(self.afters) <= self.drops
        sent = 0
        for seq in range(max(1, after - 1), N + 1):
            await ws.send(json.dumps(output(seq)))
            sent += 1
            if dropping and sent == self.drop_after:
                ws.transport.abort()
                return
        await ws.send(json.dumps(end_frame(stdout="all")))
        await ws.close()


@asynccontextmanager
async def running(handler: Any, process_request: Any = None) -> AsyncIterator[HttpTransport]:
    async with serve(handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        t = HttpTransport(f"http://127.0.0.1:{port}", "k")
        yield t
        await t.aclose()


class RecordingStream(ExecutionStream):
    """Records the last seq it had each time it (re)connected."""

    asked: list[int]

    async def _connect(self) -> Any:
        self.asked = getattr(self, "asked", []) + [self.last_seq]
        return await super()._connect()


FAST = RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05)


@pytest.mark.parametrize("drops", [0, 1, 3])
async def test_resumes_without_loss_or_duplicates(drops: int) -> None:
    server = FlakyStreamServer(drops)
    async with running(server.handler) as t:
        stream = RecordingStream(t, "e1", reconnect=FAST)
        chunks = [c async for c in stream]
    assert [c.seq for c in chunks] == list(range(1, N + 1))
    assert "".join(c.data for c in chunks) == "".join(f"line {i}\n" for i in range(1, N + 1))
    assert [c.stream for c in chunks[:3]] == ["stdout", "stdout", "stderr"]
    assert stream.connections == drops + 1
    assert server.afters == stream.asked, "reconnects did not ask for after=<last seq received>"
    assert stream.asked[0] == 0 and stream.asked == sorted(set(stream.asked))
    assert stream.execution is not None and stream.execution.raise_for_error().stdout == "all"


async def test_result_feeds_the_callbacks() -> None:
    server = FlakyStreamServer(1)
    out: list[str] = []
    err: list[str] = []
    async with running(server.handler) as t:
        result = await ExecutionStream(t, "e1", reconnect=FAST).result(out.append, err.append)
    assert result.stdout == "all"
    assert len(out) + len(err) == N and len(err) == N // 3


async def test_gap_frames_are_recorded() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps(output(1)))
        await ws.send(json.dumps({"type": "gap", "execId": "e1", "from": 2, "to": 9}))
        await ws.send(json.dumps(output(10)))
        await ws.send(json.dumps(end_frame()))

    async with running(handler) as t:
        stream = ExecutionStream(t, "e1")
        assert [c.seq async for c in stream] == [1, 10]
    assert [(g.from_, g.to) for g in stream.gaps] == [(2, 9)]


async def test_failed_execution_raises_its_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(json.dumps({"type": "end", "execution": {"execId": "e1", "state": "failed", "startedAtMs": 1, "endedAtMs": 2, "lastSeq": 0,
                                                               "error": {"code": -33007, "name": "CommandNotFound", "message": "nope: not found"}}}))

    async with running(handler) as t:
        from forkspace import CommandNotFoundError

        with pytest.raises(CommandNotFoundError, match="nope"):
            await ExecutionStream(t, "e1").result()


def refuse(status: int, code: int, name: str) -> Any:
    def process_request(conn: ServerConnection, request: Request) -> Response:
        r = conn.respond(status, json.dumps({"error": {"code": code, "name": name, "message": f"{name} here"}}))
        return r

    return process_request


@pytest.mark.parametrize(("status", "code", "name", "cls"), [(401, -32805, "Unauthorized", AuthenticationError), (404, -33006, "ExecNotFound", ExecNotFoundError)])
async def test_refused_handshake_maps_to_the_error(status: int, code: int, name: str, cls: type[Exception]) -> None:
    async def never(ws: ServerConnection) -> None:
        raise AssertionError("the handshake should have been refused")

    async with running(never, refuse(status, code, name)) as t:
        with pytest.raises(cls, match=name):
            [c async for c in ExecutionStream(t, "e1", reconnect=FAST)]


async def test_a_stream_that_keeps_dropping_gives_up() -> None:
    async def handler(ws: ServerConnection) -> None:
        ws.transport.abort()

    async with running(handler) as t:
        stream = ExecutionStream(t, "e1", reconnect=FAST)
        with pytest.raises(ForkspaceConnectionError, match="kept closing"):
            [c async for c in stream]
        assert stream.connections == FAST.max_attempts
