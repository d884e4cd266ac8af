"""A running execution: its output as an async iterator, its result, cancelling it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from ._core import Core
from .errors import ForkspaceTimeoutError
from .models import ExecResult, OutputChunk
from .streaming import Execution, ExecutionStream

#: exec/get waits at most this long per request (the agent's limit is 120 s).
_LONG_POLL_MS = 30_000


@dataclass(frozen=True, slots=True)
class OutputLog:
    exec_id: str
    chunks: list[OutputChunk]
    #: The oldest sequence number the agent still keeps.
    first_seq: int
    last_seq: int
    #: The execution ended: nothing follows the last chunk.
    done: bool


class ExecutionHandle:
    """Returned by ``client.start(...)`` and ``sandbox.start(...)``: the command runs on the agent whether or
    not anyone listens. ``async for chunk in handle`` streams its output (resuming after dropped
    connections); :meth:`result` waits for the end."""

    def __init__(self, core: Core, exec_id: str) -> None:
        self._core = core
        self.exec_id = exec_id
        self._stream: ExecutionStream | None = None

    def __repr__(self) -> str:
        return f"ExecutionHandle({self.exec_id!r})"

    def stream(self, after: int = 0) -> ExecutionStream:
        """A new output stream from sequence number ``after`` on (0: from the start)."""
        return ExecutionStream(self._core.executor, self.exec_id, after=after)

    @property
    def output(self) -> ExecutionStream:
        """The handle's own stream (created on first use): iterating the handle iterates it."""
        if self._stream is None:
            self._stream = self.stream()
        return self._stream

    def __aiter__(self) -> AsyncIterator[OutputChunk]:
        return self.output

    async def result(
        self,
        on_stdout: Callable[[str], object] | None = None,
        on_stderr: Callable[[str], object] | None = None,
    ) -> ExecResult:
        """Streams the remaining output to the callbacks and returns the result (raising the execution's
        error if it failed to run, e.g. :class:`~forkspace.errors.CommandNotFoundError`)."""
        return await self.output.result(on_stdout, on_stderr)

    async def get(self, wait_ms: int = 0) -> Execution:
        """The execution's state, waiting up to ``wait_ms`` for it to end."""
        params = {"execId": self.exec_id, "waitMs": wait_ms} if wait_ms else {"execId": self.exec_id}
        timeout = None if not wait_ms else wait_ms / 1000 + 30
        return await self._core.call_as(Execution, "exec/get", params, timeout=timeout)

    async def wait(self, timeout_ms: int | None = None) -> ExecResult:
        """Waits for the end without reading the output (long polls, so no socket stays open)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout_ms is None else loop.time() + timeout_ms / 1000
        while True:
            left = _LONG_POLL_MS if deadline is None else int(max(0.0, deadline - loop.time()) * 1000)
            execution = await self.get(wait_ms=max(1, min(_LONG_POLL_MS, left)))
            if execution.state != "running":
                return execution.raise_for_error()
            if deadline is not None and loop.time() >= deadline:
                raise ForkspaceTimeoutError(f"execution {self.exec_id} still runs after {timeout_ms} ms (it goes on: cancel() stops it)")

    async def cancel(self) -> bool:
        """Stops the execution (its sandbox is killed); False when it had already ended."""
        result = await self._core.call("exec/cancel", {"execId": self.exec_id})
        return bool(result.get("cancelled"))

    async def log(self, after: int = 0, limit: int = 1000) -> OutputLog:
        """The output kept so far, from sequence number ``after`` on (what a stream replays)."""
        w = await self._core.call("exec/log", {"execId": self.exec_id, "after": after, "limit": limit})
        chunks = [OutputChunk(exec_id=self.exec_id, stream=c["stream"], data=c["data"], seq=c["seq"]) for c in w.get("chunks", [])]
        return OutputLog(self.exec_id, chunks, int(w["firstSeq"]), int(w["lastSeq"]), bool(w["done"]))

    async def aclose(self) -> None:
        if self._stream is not None:
            await self._stream.aclose()


__all__ = ["ExecutionHandle", "OutputLog"]
