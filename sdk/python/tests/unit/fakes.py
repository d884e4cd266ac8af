"""Fakes for unit tests: a recording Transport (the client's seam), a raw HTTP/1.1 server on 127.0.0.1
that answers from a script (503s, 400s, connection resets), and a WebSocket server with sequenced frames."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Call:
    method: str
    params: dict[str, Any]


class FakeTransport:
    """Answers calls from ``handlers`` (method -> function of params, or a value); records every call."""

    def __init__(self, handlers: Mapping[str, Any] | None = None) -> None:
        self.handlers: dict[str, Any] = dict(handlers or {})
        self.calls: list[Call] = []
        self.closed = False

    async def call(self, method: str, params: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        self.calls.append(Call(method, dict(params)))
        h = self.handlers.get(method)
        if h is None:
            raise AssertionError(f"unexpected call {method} {dict(params)}")
        out = h(dict(params)) if callable(h) else h
        if isinstance(out, BaseException):
            raise out
        return out

    def stream_url(self, path: str, query: Mapping[str, str | int] | None = None) -> tuple[str, dict[str, str]]:
        return "ws://127.0.0.1:1" + path, {}

    async def aclose(self) -> None:
        self.closed = True

    def methods(self) -> list[str]:
        return [c.method for c in self.calls]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


# A scripted answer: (status, json body, extra headers), or "reset" to drop the connection with a TCP RST.
Answer = Any


@dataclass
class ScriptedServer:
    """A minimal HTTP/1.1 server: answer N comes from ``script[N]`` (the last one repeats)."""

    script: list[Answer]
    requests: list[Request] = field(default_factory=list)
    server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> ScriptedServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Request(method, path, headers, body))
                answer = self.script[min(len(self.requests) - 1, len(self.script) - 1)]
                if answer == "reset":
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()
                    return
                status, payload, extra = answer if len(answer) == 3 else (*answer, {})
                data = json.dumps(payload).encode()
                reason = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 409: "Conflict", 503: "Service Unavailable"}.get(status, "X")
                hdrs = {"content-type": "application/json", "content-length": str(len(data)), **extra}
                writer.write(f"HTTP/1.1 {status} {reason}\r\n".encode() + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()).encode() + b"\r\n" + data)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()


def error_body(code: int, name: str, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "name": name, "message": message}
    if data is not None:
        err["data"] = data
    return {"error": err}


def exec_result(**over: Any) -> dict[str, Any]:
    r: dict[str, Any] = {
        "execId": "e1", "sandboxId": "sbx-1", "environment": "python", "exitCode": 0, "signal": None,
        "stdout": "", "stderr": "", "stdoutTruncated": False, "stderrTruncated": False, "durationMs": 1.0,
        "oomKilled": False, "timedOut": False, "pidsLimitHit": False, "memoryPeakBytes": None, "cpuTimeMs": None,
    }
    r.update(over)
    return r


def sandbox_wire(sid: str = "sbx-1", state: str = "running") -> dict[str, Any]:
    return {
        "id": sid, "environment": "python", "state": state, "originSnapshot": None, "lastSnapshot": None,
        "spec": {"argv": ["/bin/sh"], "env": {}, "cwd": None, "memoryBytes": None, "cpus": None, "pids": None},
        "labels": {}, "exitCode": None, "createdAtMs": 1, "updatedAtMs": 1,
        "policy": {"ttlMs": None, "idleTimeoutMs": None, "onExpiry": "snapshot-then-stop", "instance": False, "detached": False},
    }

