"""Handles on sandboxes and instances: run commands in them, snapshot, branch, diff, merge, files, ports,
terminals; ``async with`` destroys the sandbox when the block ends, even when it raises."""

from __future__ import annotations

import builtins
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._core import run_timeout
from ._params import Command, Files, run_params
from ._wire import from_wire
from .errors import SandboxNotFoundError
from .execution import ExecutionHandle
from .files import SandboxFiles
from .models import (
    Diff,
    ExecResult,
    Exposure,
    InstanceStopped,
    MergeResult,
    MergeStrategy,
    Policy,
    PortForward,
    Restored,
    SandboxInfo,
    SnapshotCreated,
    SshTarget,
)
from .terminals import Terminal, open_terminal

if TYPE_CHECKING:
    from .client import FaaSPlatformClient

OutputCallback = Callable[[str], object]

log = logging.getLogger("forkspace")


class Sandbox:
    """A persistent sandbox: it runs until destroyed, stopped or expired. ``exec`` runs commands inside it
    with state carried over between them (files, processes, the working directory's contents)."""

    def __init__(self, client: FaaSPlatformClient, sandbox_id: str, info: SandboxInfo | None = None, *, default_timeout_ms: int | None = None) -> None:
        self._client = client
        self.id = sandbox_id
        #: The last known state (from create/get/refresh); :meth:`refresh` asks again.
        self.info = info
        self.default_timeout_ms = default_timeout_ms
        self.files = SandboxFiles(client.files, sandbox_id)

    def __repr__(self) -> str:
        state = self.info.state if self.info else "?"
        return f"{type(self).__name__}({self.id!r}, {state})"

    async def refresh(self) -> SandboxInfo:
        self.info = await self._client._core.call_as(SandboxInfo, "sandbox/get", {"sandboxId": self.id}, key="sandbox")
        return self.info

    # --- running commands --------------------------------------------------------------------------------

    async def exec(
        self,
        command: Command | None = None,
        *,
        code: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        timeout_ms: int | None = None,
        max_output_bytes: int | None = None,
        exec_id: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """Runs a command (a shell line or argv) or ``code=`` inside this sandbox; returns its
        :class:`~forkspace.models.ExecResult`. With ``on_stdout``/``on_stderr`` the output streams to them."""
        timeout_ms = timeout_ms if timeout_ms is not None else self.default_timeout_ms
        if on_stdout is not None or on_stderr is not None:
            handle = await self.start(
                command, code=code, env=env, cwd=cwd, files=files, stdin=stdin, timeout_ms=timeout_ms,
                max_output_bytes=max_output_bytes, exec_id=exec_id,
            )
            return await handle.result(on_stdout, on_stderr)
        params = run_params(
            command, code, env=env, cwd=cwd, files=files, stdin=stdin, timeout_ms=timeout_ms,
            max_output_bytes=max_output_bytes, exec_id=exec_id,
        )
        params["sandboxId"] = self.id
        return await self._client._core.call_as(ExecResult, "sandbox/exec", params, timeout=run_timeout(timeout_ms))

    async def start(
        self,
        command: Command | None = None,
        *,
        code: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        timeout_ms: int | None = None,
        max_output_bytes: int | None = None,
        exec_id: str | None = None,
    ) -> ExecutionHandle:
        """Starts a command in this sandbox and returns at once: iterate the handle for its output."""
        params = run_params(
            command, code, mode="persistent", sandbox_id=self.id, env=env, cwd=cwd, files=files, stdin=stdin,
            timeout_ms=timeout_ms if timeout_ms is not None else self.default_timeout_ms,
            max_output_bytes=max_output_bytes, exec_id=exec_id,
        )
        return await self._client._start(params)

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def pause(self) -> None:
        """Freezes every process (memory stays); :meth:`resume` thaws them."""
        await self._client._core.call("sandbox/pause", {"sandboxId": self.id})

    async def resume(self) -> None:
        await self._client._core.call("sandbox/resume", {"sandboxId": self.id})

    async def stop(self) -> SnapshotCreated:
        """Snapshots the sandbox and ends its processes; :meth:`start_again` brings it back as it was."""
        return await self._client._core.call_as(SnapshotCreated, "sandbox/stop", {"sandboxId": self.id})

    async def start_again(self) -> Restored:
        """Starts a stopped sandbox from its last snapshot, under the same id."""
        return await self._client._core.call_as(Restored, "sandbox/start", {"sandboxId": self.id})

    async def destroy(self) -> None:
        """Destroys the sandbox (its snapshots stay). Destroying one already gone is not an error."""
        try:
            await self._client._core.call("sandbox/destroy", {"sandboxId": self.id})
        except SandboxNotFoundError:
            pass

    async def set_policy(
        self,
        *,
        ttl_ms: int | None = None,
        idle_timeout_ms: int | None = None,
        on_expiry: str | None = None,
        detached: bool | None = None,
        clear_ttl: bool = False,
        clear_idle_timeout: bool = False,
    ) -> Policy:
        """Changes what ends the sandbox (absent arguments stay as they are; ``clear_*`` removes a timeout)."""
        params: dict[str, Any] = {"sandboxId": self.id}
        if ttl_ms is not None or clear_ttl:
            params["ttlMs"] = None if clear_ttl else ttl_ms
        if idle_timeout_ms is not None or clear_idle_timeout:
            params["idleTimeoutMs"] = None if clear_idle_timeout else idle_timeout_ms
        if on_expiry is not None:
            params["onExpiry"] = on_expiry
        if detached is not None:
            params["detached"] = detached
        return await self._client._core.call_as(Policy, "sandbox/policy", params, key="policy")

    # --- snapshots, branches, merges ---------------------------------------------------------------------

    async def snapshot(self, label: str | None = None, *, leave_running: bool = True) -> SnapshotCreated:
        """Snapshots processes, memory and files at one instant; the sandbox keeps running."""
        params: dict[str, Any] = {"sandboxId": self.id, "leaveRunning": leave_running}
        if label is not None:
            params["label"] = label
        return await self._client._core.call_as(SnapshotCreated, "snapshot/create", params)

    async def branch(self, count: int, *, label: str | None = None) -> builtins.list[Sandbox]:
        """Snapshots this sandbox and restores the snapshot ``count`` times: N running copies."""
        snap = await self.snapshot(label)
        return await self._client.snapshots.branch(snap.snapshot.id, count)

    async def diff(self, other: Sandbox | str) -> Diff:
        """What this sandbox and ``other`` changed in their files since their common snapshot."""
        return await self._client.diff(self.id, _id(other))

    async def merge_from(self, other: Sandbox | str, strategy: MergeStrategy = "fail", *, raise_on_conflict: bool = True) -> MergeResult:
        """Three-way merges ``other``'s file changes into this sandbox (processes are not merged)."""
        return await self._client.merge(_id(other), self.id, strategy, raise_on_conflict=raise_on_conflict)

    # --- access --------------------------------------------------------------------------------------------

    async def forward_port(self, port: int, *, host_port: int | None = None, host_address: str | None = None) -> PortForward:
        return await self._client.ports.forward(self.id, port, host_port=host_port, host_address=host_address)

    async def expose_http(self, port: int, name: str) -> Exposure:
        return await self._client.http.expose(self.id, port, name)

    async def terminal(
        self, *, cols: int = 80, rows: int = 24, command: Sequence[str] | None = None,
        env: Mapping[str, str] | None = None, cwd: str | None = None,
    ) -> Terminal:
        return await open_terminal(self._client._core, self.id, cols=cols, rows=rows, command=command, env=env, cwd=cwd)

    async def ssh(self) -> SshTarget:
        """Starts sshd inside and returns what an ssh client needs (the host port, user and key file)."""
        return await self._client._core.call_as(SshTarget, "ssh/prepare", {"sandboxId": self.id})

    # --- async with --------------------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await _destroy_on_exit(self, exc)


class Instance(Sandbox):
    """A persistent instance: not owned by any connection, back after runtime restarts, stopped and resumed
    through the instance routes (stop snapshots first, so resume continues where it was)."""

    async def refresh(self) -> SandboxInfo:
        self.info = await self._client._core.call_as(SandboxInfo, "instance/get", {"instanceId": self.id}, key="instance")
        return self.info

    async def pause(self) -> None:
        self.info = await self._client._core.call_as(SandboxInfo, "instance/pause", {"instanceId": self.id}, key="instance")

    async def resume(self) -> None:
        self.info = await self._client._core.call_as(SandboxInfo, "instance/resume", {"instanceId": self.id}, key="instance")

    async def stop(self) -> InstanceStopped:  # type: ignore[override]
        stopped = await self._client._core.call_as(InstanceStopped, "instance/stop", {"instanceId": self.id})
        self.info = stopped.instance
        return stopped

    async def destroy(self) -> None:
        try:
            await self._client._core.call("instance/destroy", {"instanceId": self.id})
        except SandboxNotFoundError:
            pass

    async def __aenter__(self) -> Instance:
        return self


async def _destroy_on_exit(sbx: Sandbox, exc: BaseException | None) -> None:
    """Destroys the sandbox at the end of an ``async with``. The body's exception, if any, is what
    propagates; a failed destroy is then attached to it as a note rather than hiding it."""
    try:
        await sbx.destroy()
    except Exception as destroy_error:
        if exc is None:
            raise
        note = f"and destroying sandbox {sbx.id} failed too: {destroy_error!r} (destroy it by hand)"
        log.warning("%s", note)
        if sys.version_info >= (3, 11):
            exc.add_note(note)
        else:  # shown by tracebacks from 3.11 on; kept for callers either way
            exc.__notes__ = [*getattr(exc, "__notes__", []), note]  # type: ignore[attr-defined]


def _id(s: Sandbox | str) -> str:
    return s if isinstance(s, str) else s.id


def sandbox_from_wire(client: FaaSPlatformClient, w: Mapping[str, Any], *, instance: bool = False, default_timeout_ms: int | None = None) -> Sandbox:
    info = from_wire(SandboxInfo, w)
    cls = Instance if instance else Sandbox
    return cls(client, info.id, info, default_timeout_ms=default_timeout_ms)
