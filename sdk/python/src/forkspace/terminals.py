"""Interactive terminals (a pty in a sandbox) over the terminal WebSocket: keystrokes and resizes go up,
output comes down with sequence numbers and resumes after a dropped connection like execution output."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType

from websockets.exceptions import ConnectionClosed

from ._core import Core
from .errors import SandboxNotFoundError, ExecNotFoundError
from .streaming import STREAM_RECONNECT, ResumableStream


class TerminalStream(ResumableStream):
    """Output of a terminal as text; ends when its program exits (:attr:`exit_code` is then set)."""

    def __init__(self, core: Core, terminal_id: str, *, after: int = 0) -> None:
        super().__init__(core.platform, f"/v1/terminals/{terminal_id}/stream", after=after, reconnect=STREAM_RECONNECT)
        self.terminal_id = terminal_id
        self.exit_code: int | None = None
        self.exited = False

    def __aiter__(self) -> AsyncIterator[str]:
        return self

    async def __anext__(self) -> str:
        while not self.done:
            frame = await self._next_frame()
            kind = frame.get("type")
            if kind == "output":
                if self._seen(int(frame["seq"])):
                    continue
                return str(frame["data"])
            if kind == "gap":
                self._gap(frame)
            elif kind == "exit":
                code = frame.get("exitCode")
                self.exit_code = code if isinstance(code, int) else None
                self.exited = True
                self.done = True
                await self.aclose()
        raise StopAsyncIteration

    async def send(self, frame: Mapping[str, object]) -> bool:
        """Sends a client frame on the open socket; False when none is open (the caller then uses REST)."""
        ws = self._ws
        if ws is None:
            return False
        try:
            await ws.send(json.dumps(frame))
        except ConnectionClosed:
            return False
        return True


class Terminal:
    """A pty session: ``await term.write("ls\\n")``, ``async for text in term``, ``await term.resize(120, 40)``,
    ``await term.close()``; ``async with`` closes it."""

    def __init__(self, core: Core, terminal_id: str, sandbox_id: str) -> None:
        self._core = core
        self.terminal_id = terminal_id
        self.sandbox_id = sandbox_id
        self.output = TerminalStream(core, terminal_id)

    def __repr__(self) -> str:
        return f"Terminal({self.terminal_id!r}, sandbox={self.sandbox_id!r})"

    def __aiter__(self) -> AsyncIterator[str]:
        return self.output

    @property
    def exit_code(self) -> int | None:
        return self.output.exit_code

    async def write(self, data: str) -> None:
        """Types into the terminal (control characters as they are: "\\x03" is Ctrl-C)."""
        if not await self.output.send({"type": "input", "data": data}):
            await self._core.call("terminal/input", {"terminalId": self.terminal_id, "data": data})

    async def resize(self, cols: int, rows: int) -> None:
        if not await self.output.send({"type": "resize", "cols": cols, "rows": rows}):
            await self._core.call("terminal/resize", {"terminalId": self.terminal_id, "cols": cols, "rows": rows})

    async def read_until(self, text: str, *, limit: int = 1 << 20) -> str:
        """Reads output until ``text`` appears (or the program exits); returns what was read."""
        seen = ""
        async for data in self.output:
            seen += data
            if text in seen or len(seen) > limit:
                break
        return seen

    async def close(self) -> None:
        """Ends the terminal's program (nothing happens if it already ended)."""
        await self.output.aclose()
        try:
            await self._core.call("terminal/close", {"terminalId": self.terminal_id})
        except (ExecNotFoundError, SandboxNotFoundError):
            pass

    async def __aenter__(self) -> Terminal:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def open_terminal(
    core: Core,
    sandbox_id: str,
    *,
    cols: int = 80,
    rows: int = 24,
    command: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    terminal_id: str | None = None,
) -> Terminal:
    params: dict[str, object] = {"sandboxId": sandbox_id, "cols": cols, "rows": rows}
    if command is not None:
        params["command"] = list(command)
    if env:
        params["env"] = dict(env)
    if cwd:
        params["cwd"] = cwd
    if terminal_id:
        params["terminalId"] = terminal_id
    w = await core.call("terminal/open", params)
    return Terminal(core, str(w["terminalId"]), str(w["sandboxId"]))
