"""WebSocket output streams that survive a dropped connection.

An execution's (or a terminal's) output arrives as JSON text frames with sequence numbers 1, 2, 3...
When the socket drops before the last frame, the stream reconnects with ``?after=<last seq received>``:
the agent replays what came after, so nothing is lost, and anything at or below the last seq is skipped,
so nothing arrives twice. A ``gap`` frame says the agent's buffer no longer held some output (the result
of the execution still has it, up to ``max_output_bytes``); gaps are recorded in :attr:`gaps`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from ._wire import from_wire
from .errors import (
    ForkspaceConnectionError,
    ForkspaceError,
    ProtocolMismatchError,
    error_from_wire,
)
from .models import ExecResult, OutputChunk
from .retry import RetryPolicy, is_transient
from .transport import Transport

ExecutionState = Literal["running", "finished", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class ExecError:
    code: int
    name: str
    message: str
    data: Any = None


@dataclass(frozen=True, slots=True)
class Execution:
    """An execution as the agent keeps it: its state, and its result once it ended."""

    exec_id: str
    state: ExecutionState
    started_at_ms: float
    ended_at_ms: float | None
    #: The highest output sequence number so far.
    last_seq: int
    result: ExecResult | None = None
    error: ExecError | None = None

    def raise_for_error(self) -> ExecResult:
        """The result, or the execution's error raised as its :class:`ForkspaceError` subclass."""
        if self.error is not None:
            e = self.error
            raise error_from_wire({"error": {"code": e.code, "name": e.name, "message": e.message, "data": e.data}})
        if self.result is None:
            raise ProtocolMismatchError(f"execution {self.exec_id} is {self.state} but carries neither result nor error")
        return self.result


@dataclass(frozen=True, slots=True)
class Gap:
    """Output ``from_``..``to`` (sequence numbers) was no longer kept by the agent."""

    from_: int
    to: int


#: How a stream reconnects: attempts in a row without a frame received, and the backoff between them.
STREAM_RECONNECT = RetryPolicy(max_attempts=8, base_delay=0.1, max_delay=2.0)


class ResumableStream:
    """The reconnecting socket under :class:`ExecutionStream` and terminal streams. Subclasses turn frames
    into items (``_frame``) and say when the stream is over (``done``)."""

    def __init__(
        self,
        transport: Transport,
        path: str,
        *,
        after: int = 0,
        reconnect: RetryPolicy = STREAM_RECONNECT,
        open_timeout: float = 10.0,
    ) -> None:
        self._transport = transport
        self._path = path
        self.last_seq = after
        self.gaps: list[Gap] = []
        #: How many times the socket was opened (1 + reconnects), for logs and tests.
        self.connections = 0
        self.done = False
        self._reconnect = reconnect
        self._open_timeout = open_timeout
        self._ws: ClientConnection | None = None
        self._closed = False

    async def _connect(self) -> ClientConnection:
        url, headers = self._transport.stream_url(self._path, {"after": self.last_seq})
        failures = 0
        while True:
            try:
                ws = await websockets.connect(
                    url,
                    additional_headers=headers,
                    open_timeout=self._open_timeout,
                    max_size=None,
                    compression=None,
                    proxy=None,
                )
                self.connections += 1
                return ws
            except InvalidStatus as e:
                err = _handshake_error(e, url)
            except (OSError, InvalidHandshake, asyncio.TimeoutError, TimeoutError) as e:
                err = ForkspaceConnectionError(f"could not open the output stream {url} ({type(e).__name__}: {e})")
            failures += 1
            if not is_transient(err) or failures >= self._reconnect.max_attempts:
                raise err
            await asyncio.sleep(self._reconnect.delay(failures))

    async def _next_frame(self) -> Mapping[str, Any]:
        """The next frame, reconnecting (with ``after=last_seq``) when the socket drops before the end."""
        drops = 0
        while True:
            if self._closed:
                raise StopAsyncIteration
            if self._ws is None:
                self._ws = await self._connect()
            try:
                raw = await self._ws.recv()
            except ConnectionClosed as e:
                self._ws = None
                drops += 1
                if drops >= self._reconnect.max_attempts:
                    raise ForkspaceConnectionError(
                        f"the output stream {self._path} kept closing before its end ({drops} times in a row; "
                        f"last close code {e.rcvd.code if e.rcvd else 'none'})"
                    ) from e
                await asyncio.sleep(self._reconnect.delay(drops))
                continue
            try:
                frame = json.loads(raw)
            except ValueError as e:
                raise ProtocolMismatchError(f"the stream {self._path} sent a frame that is not JSON: {str(raw)[:200]!r}") from e
            if not isinstance(frame, Mapping):
                raise ProtocolMismatchError(f"the stream {self._path} sent a frame that is not an object: {str(raw)[:200]!r}")
            return frame

    def _seen(self, seq: int) -> bool:
        """True for a frame already delivered (a replay after reconnecting); else records it."""
        if seq <= self.last_seq:
            return True
        self.last_seq = seq
        return False

    def _gap(self, frame: Mapping[str, Any]) -> None:
        gap = Gap(int(frame.get("from", 0)), int(frame.get("to", 0)))
        if gap.to > self.last_seq:
            self.gaps.append(gap)
            self.last_seq = gap.to

    async def aclose(self) -> None:
        self._closed = True
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    def _drop_connection(self) -> None:
        """Aborts the socket as a network failure would (tests use it to check resuming)."""
        if self._ws is not None:
            self._ws.transport.abort()


class ExecutionStream(ResumableStream):
    """``async for chunk in stream`` yields :class:`OutputChunk` in sequence order; once it ends,
    :attr:`execution` holds how the execution ended (:meth:`result` raises its error, if any)."""

    def __init__(self, transport: Transport, exec_id: str, *, after: int = 0, reconnect: RetryPolicy = STREAM_RECONNECT) -> None:
        super().__init__(transport, f"/v1/executions/{exec_id}/stream", after=after, reconnect=reconnect)
        self.exec_id = exec_id
        self.execution: Execution | None = None

    def __aiter__(self) -> AsyncIterator[OutputChunk]:
        return self

    async def __anext__(self) -> OutputChunk:
        while not self.done:
            frame = await self._next_frame()
            kind = frame.get("type")
            if kind == "output":
                seq = int(frame["seq"])
                if self._seen(seq):
                    continue
                return OutputChunk(exec_id=self.exec_id, stream=frame["stream"], data=str(frame["data"]), seq=seq)
            if kind == "gap":
                self._gap(frame)
            elif kind == "end":
                self.execution = from_wire(Execution, frame.get("execution"))
                self.done = True
                await self.aclose()
            else:
                raise ProtocolMismatchError(f"the stream {self._path} sent an unknown frame type {kind!r}")
        raise StopAsyncIteration

    async def result(
        self,
        on_stdout: Callable[[str], object] | None = None,
        on_stderr: Callable[[str], object] | None = None,
    ) -> ExecResult:
        """Reads the rest of the stream (passing chunks to the callbacks) and returns the result."""
        async for chunk in self:
            cb = on_stdout if chunk.stream == "stdout" else on_stderr
            if cb is not None:
                out = cb(chunk.data)
                if asyncio.iscoroutine(out):
                    await out
        assert self.execution is not None
        return self.execution.raise_for_error()


def _handshake_error(e: InvalidStatus, url: str) -> ForkspaceError:
    status = e.response.status_code
    body: Any = e.response.body.decode(errors="replace") if e.response.body else ""
    try:
        body = json.loads(body)
    except ValueError:
        pass
    err = error_from_wire(body, status)
    if not isinstance(body, Mapping):
        err.message = f"the agent refused the stream {url} with HTTP {status}"
    return err


__all__ = ["STREAM_RECONNECT", "ExecError", "Execution", "ExecutionStream", "Gap", "ResumableStream"]
