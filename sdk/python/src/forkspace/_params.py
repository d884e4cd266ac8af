"""Building the protocol's params from the SDK's keyword arguments (one place, shared by the client, the
fluent builder and sandboxes)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Union

Command = Union[str, Sequence[str]]
#: Files put into the sandbox before the command: path -> text or bytes.
Files = Mapping[str, Union[str, bytes]]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(size: int | str) -> int:
    """Bytes from ``536870912``, ``"512M"``, ``"1G"``, ``"256MiB"`` (binary units, as the CLI's --memory)."""
    if isinstance(size, bool):
        raise TypeError("a size is an int (bytes) or a string such as '512M'")
    if isinstance(size, int):
        if size <= 0:
            raise ValueError(f"size {size} must be positive")
        return size
    m = _SIZE.match(size)
    if not m:
        raise ValueError(f"size {size!r} is not a size; use e.g. '256M', '1G' or 1048576 (bytes)")
    return round(float(m.group(1)) * _UNITS[m.group(2).lower()])


def command_or_code(command: Command | None, code: str | None) -> dict[str, Any]:
    if (command is None) == (code is None):
        raise ValueError("give exactly one of a command (a shell line or an argv list) or code= (source code)")
    if code is not None:
        return {"code": code}
    assert command is not None
    if isinstance(command, str):
        if not command.strip():
            raise ValueError("the command is empty")
        return {"command": command}
    argv = list(command)
    if not argv or not all(isinstance(a, str) for a in argv):
        raise ValueError("an argv command is a non-empty list of strings")
    return {"command": argv}


def file_inputs(files: Files | None) -> list[dict[str, Any]] | None:
    if not files:
        return None
    out: list[dict[str, Any]] = []
    for path, content in files.items():
        if isinstance(content, bytes):
            out.append({"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"})
        else:
            out.append({"path": path, "content": content})
    return out


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits: ``memory`` in bytes (or '512M'), ``cpus`` in cores, ``pids`` processes, ``disk``
    in bytes (or '20G'): what the sandbox may add to its files."""

    memory_bytes: int | None = None
    cpus: float | None = None
    pids: int | None = None
    disk_bytes: int | None = None

    @classmethod
    def of(
        cls,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
    ) -> Limits:
        return cls(
            None if memory is None else parse_size(memory), cpus, pids, None if disk is None else parse_size(disk)
        )

    def merged(self, other: Limits) -> Limits:
        return replace(
            self,
            memory_bytes=other.memory_bytes if other.memory_bytes is not None else self.memory_bytes,
            cpus=other.cpus if other.cpus is not None else self.cpus,
            pids=other.pids if other.pids is not None else self.pids,
            disk_bytes=other.disk_bytes if other.disk_bytes is not None else self.disk_bytes,
        )

    def wire(self) -> dict[str, Any] | None:
        pairs = (("memoryBytes", self.memory_bytes), ("cpus", self.cpus), ("pids", self.pids), ("diskBytes", self.disk_bytes))
        w = {k: v for k, v in pairs if v is not None}
        return w or None


def drop_none(d: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def run_params(
    command: Command | None,
    code: str | None,
    *,
    mode: str | None = None,
    environment: str | None = None,
    limits: Limits | None = None,
    timeout_ms: int | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    files: Files | None = None,
    stdin: str | None = None,
    max_output_bytes: int | None = None,
    exec_id: str | None = None,
    checkpoint: str | None = None,
    sandbox_id: str | None = None,
    cache: str | None = None,
    collect: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The params of exec/run and exec/start (camelCase, absent fields left out)."""
    if checkpoint is not None and mode not in (None, "checkpointed"):
        raise ValueError("checkpoint= needs mode 'checkpointed'")
    if collect is not None and isinstance(collect, str):
        raise TypeError("collect= is a list of paths, not one string")
    p: dict[str, Any] = command_or_code(command, code)
    p.update(
        drop_none(
            {
                "execId": exec_id,
                "mode": mode,
                "environment": environment,
                "limits": limits.wire() if limits else None,
                "timeoutMs": timeout_ms,
                "env": dict(env) if env else None,
                "cwd": cwd,
                "files": file_inputs(files),
                "stdin": stdin,
                "maxOutputBytes": max_output_bytes,
                "checkpointId": checkpoint,
                "sandboxId": sandbox_id,
                "cache": cache,
                "collect": list(collect) if collect is not None else None,
            }
        )
    )
    return p
