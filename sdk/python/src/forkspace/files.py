"""Files into and out of sandboxes (and out of snapshots), in chunks: a large file is never held whole
by the agent, and with :meth:`Files.upload`/:meth:`Files.download` not by this process either."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from typing import BinaryIO

from ._core import Core
from ._wire import from_wire
from .models import FileEntry

#: Bytes per request. The agent takes chunks up to 8 MiB; 4 MiB (5.4 MiB as base64 JSON) stays well under
#: its request size limit.
CHUNK_SIZE = 4 * 1024 * 1024

PathLike = str | os.PathLike[str]


class Files:
    """``client.files``; every method takes the sandbox (or, for reads, snapshot) id first.
    ``sandbox.files`` is the same bound to one sandbox."""

    def __init__(self, core: Core, chunk_size: int = CHUNK_SIZE) -> None:
        self._core = core
        self.chunk_size = chunk_size

    async def write(self, sandbox_id: str, path: str, data: bytes | str, *, mode: int | None = None) -> int:
        """Writes a whole file (text as UTF-8), in chunks; returns its size."""
        raw = data.encode() if isinstance(data, str) else data
        offset = 0
        while True:
            chunk = raw[offset : offset + self.chunk_size]
            await self._write_chunk(sandbox_id, path, chunk, offset, mode)
            offset += len(chunk)
            if offset >= len(raw):
                return offset

    async def upload(self, sandbox_id: str, local: PathLike | BinaryIO, path: str, *, mode: int | None = None) -> int:
        """Copies a local file (a path or a binary file object) into the sandbox, chunk by chunk."""
        if isinstance(local, (str, os.PathLike)):
            with open(local, "rb") as f:
                if mode is None:
                    mode = os.stat(f.fileno()).st_mode & 0o7777
                return await self.upload(sandbox_id, f, path, mode=mode)
        offset = 0
        while True:
            chunk = local.read(self.chunk_size)
            if chunk or offset == 0:
                await self._write_chunk(sandbox_id, path, chunk, offset, mode)
            offset += len(chunk)
            if len(chunk) < self.chunk_size:
                return offset

    async def _write_chunk(self, sandbox_id: str, path: str, chunk: bytes, offset: int, mode: int | None) -> None:
        params: dict[str, object] = {
            "sandboxId": sandbox_id,
            "path": path,
            "content": base64.b64encode(chunk).decode(),
            "encoding": "base64",
            "offset": offset,
        }
        if mode is not None and offset == 0:
            params["mode"] = mode
        await self._core.call("files/write", params)

    async def chunks(self, id: str, path: str) -> AsyncIterator[bytes]:
        """The file's content chunk by chunk (from a sandbox or a snapshot)."""
        offset = 0
        while True:
            w = await self._core.call(
                "files/read", {"id": id, "path": path, "offset": offset, "length": self.chunk_size, "encoding": "base64"}
            )
            data = base64.b64decode(w["content"])
            if data:
                yield data
            offset += len(data)
            if w.get("eof") or not data:
                return

    async def read(self, id: str, path: str) -> bytes:
        """The whole file."""
        return b"".join([c async for c in self.chunks(id, path)])

    async def read_text(self, id: str, path: str, encoding: str = "utf-8") -> str:
        return (await self.read(id, path)).decode(encoding)

    async def download(self, id: str, path: str, local: PathLike | BinaryIO) -> int:
        """Copies a file out of a sandbox or snapshot to a local path (or binary file object)."""
        if isinstance(local, (str, os.PathLike)):
            with open(local, "wb") as f:
                return await self.download(id, path, f)
        n = 0
        async for chunk in self.chunks(id, path):
            local.write(chunk)
            n += len(chunk)
        return n

    async def list(self, id: str, path: str = "/") -> list[FileEntry]:
        w = await self._core.call("files/list", {"id": id, "path": path})
        return [from_wire(FileEntry, e) for e in w["entries"]]

    async def remove(self, sandbox_id: str, path: str, *, recursive: bool = False) -> bool:
        w = await self._core.call("files/remove", {"sandboxId": sandbox_id, "path": path, "recursive": recursive})
        return bool(w.get("removed"))


class SandboxFiles:
    """``sandbox.files``: :class:`Files` bound to one sandbox."""

    def __init__(self, files: Files, sandbox_id: str) -> None:
        self._files = files
        self._id = sandbox_id

    async def write(self, path: str, data: bytes | str, *, mode: int | None = None) -> int:
        return await self._files.write(self._id, path, data, mode=mode)

    async def upload(self, local: PathLike | BinaryIO, path: str, *, mode: int | None = None) -> int:
        return await self._files.upload(self._id, local, path, mode=mode)

    async def read(self, path: str) -> bytes:
        return await self._files.read(self._id, path)

    async def read_text(self, path: str, encoding: str = "utf-8") -> str:
        return await self._files.read_text(self._id, path, encoding)

    def chunks(self, path: str) -> AsyncIterator[bytes]:
        return self._files.chunks(self._id, path)

    async def download(self, path: str, local: PathLike | BinaryIO) -> int:
        return await self._files.download(self._id, path, local)

    async def list(self, path: str = "/") -> list[FileEntry]:
        return await self._files.list(self._id, path)

    async def remove(self, path: str, *, recursive: bool = False) -> bool:
        return await self._files.remove(self._id, path, recursive=recursive)
