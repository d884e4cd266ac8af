"""The client's sub-APIs, one per noun of the protocol: ``client.sandboxes``, ``client.snapshots``,
``client.instances``, ``client.ports``, ``client.http``, ``client.environments``, ``client.executions``,
``client.keys``. Batch forms (``destroy_many``, ``delete_many``) return one :class:`BatchItem` per id."""

from __future__ import annotations

import builtins
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._params import Command, Files, Limits, drop_none, file_inputs, parse_size
from ._wire import from_wire
from .errors import SandboxNotFoundError, SnapshotNotFoundError
from .execution import ExecutionHandle
from .models import (
    EnvironmentInfo,
    Expiry,
    Exposure,
    PortForward,
    SandboxInfo,
    SandboxState,
    Snapshot,
)
from .parallel import BatchItem, gather_settled
from .sandbox import Instance, Sandbox, sandbox_from_wire
from .streaming import Execution, ExecutionStream

if TYPE_CHECKING:
    from .client import FaaSPlatformClient


def _restore_limits(disk: int | str | None) -> dict[str, Any]:
    return {} if disk is None else {"limits": {"diskBytes": parse_size(disk)}}


def _lifecycle(ttl_ms: int | None, idle_timeout_ms: int | None, on_expiry: Expiry | None, detached: bool | None = None) -> dict[str, Any]:
    return drop_none({"ttlMs": ttl_ms, "idleTimeoutMs": idle_timeout_ms, "onExpiry": on_expiry, "detached": detached})


class Sandboxes:
    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def create(
        self,
        environment: str | None = None,
        *,
        command: Command | None = None,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        labels: Mapping[str, str] | None = None,
        ttl_ms: int | None = None,
        idle_timeout_ms: int | None = None,
        on_expiry: Expiry | None = None,
        detached: bool | None = None,
        default_timeout_ms: int | None = None,
    ) -> Sandbox:
        """A persistent sandbox (``command`` is pid 1; default an idle shell). ``default_timeout_ms`` applies
        to each ``exec`` in it that gives none."""
        params: dict[str, Any] = drop_none(
            {
                "environment": environment,
                "command": command if command is None or isinstance(command, str) else list(command),
                "env": dict(env) if env else None,
                "cwd": cwd,
                "limits": Limits.of(memory, cpus, pids, disk).wire(),
                "files": file_inputs(files),
                "labels": dict(labels) if labels else None,
            }
        )
        params.update(_lifecycle(ttl_ms, idle_timeout_ms, on_expiry, detached))
        w = await self._client._core.call("sandbox/create", params)
        return sandbox_from_wire(self._client, w["sandbox"], default_timeout_ms=default_timeout_ms)

    async def get(self, sandbox_id: str) -> Sandbox:
        w = await self._client._core.call("sandbox/get", {"sandboxId": sandbox_id})
        return sandbox_from_wire(self._client, w["sandbox"])

    async def list(
        self, *, state: SandboxState | None = None, environment: str | None = None, label: str | None = None
    ) -> builtins.list[SandboxInfo]:
        """Sandboxes (destroyed ones included unless ``state`` says otherwise); ``label`` is ``key=value``
        or ``key``."""
        w = await self._client._core.call("sandbox/list", drop_none({"state": state, "environment": environment, "label": label}))
        return [from_wire(SandboxInfo, s) for s in w["sandboxes"]]

    async def destroy(self, sandbox_id: str, *, missing_ok: bool = True) -> bool:
        """True when it was destroyed now, False when there was no such sandbox (or, with
        ``missing_ok=False``, :class:`SandboxNotFoundError`)."""
        try:
            await self._client._core.call("sandbox/destroy", {"sandboxId": sandbox_id})
            return True
        except SandboxNotFoundError:
            if not missing_ok:
                raise
            return False

    async def destroy_many(self, sandbox_ids: Sequence[str], *, concurrency: int = 8) -> builtins.list[BatchItem[bool]]:
        return await gather_settled([functools.partial(self.destroy, i) for i in sandbox_ids], concurrency)


class Snapshots:
    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def get(self, snapshot: str) -> Snapshot:
        """A snapshot by id or unique label."""
        return await self._client._core.call_as(Snapshot, "snapshot/get", {"snapshotId": snapshot}, key="snapshot")

    async def list(self, *, sandbox_id: str | None = None, label: str | None = None) -> builtins.list[Snapshot]:
        w = await self._client._core.call("snapshot/list", drop_none({"sandboxId": sandbox_id, "label": label}))
        return [from_wire(Snapshot, s) for s in w["snapshots"]]

    async def delete(self, snapshot: str, *, missing_ok: bool = True) -> bool:
        """True when deleted now, False when there was no such snapshot (or, with ``missing_ok=False``,
        :class:`SnapshotNotFoundError`)."""
        try:
            w = await self._client._core.call("snapshot/delete", {"snapshotId": snapshot})
            return bool(w.get("deleted", True))
        except SnapshotNotFoundError:
            if not missing_ok:
                raise
            return False

    async def delete_many(self, snapshots: Sequence[str], *, concurrency: int = 8) -> builtins.list[BatchItem[bool]]:
        return await gather_settled([functools.partial(self.delete, s) for s in snapshots], concurrency)

    async def restore(
        self, snapshot: str, *, ttl_ms: int | None = None, idle_timeout_ms: int | None = None,
        on_expiry: Expiry | None = None, detached: bool | None = None, disk: int | str | None = None,
    ) -> Sandbox:
        """A new running sandbox whose processes continue from the snapshot. ``disk``: its own disk limit
        (bytes or '20G'); by default the snapshot's sandbox's."""
        params = {"snapshotId": snapshot, **_lifecycle(ttl_ms, idle_timeout_ms, on_expiry, detached), **_restore_limits(disk)}
        w = await self._client._core.call("snapshot/restore", params)
        return Sandbox(self._client, str(w["sandboxId"]))

    async def branch(
        self, snapshot: str, count: int, *, ttl_ms: int | None = None, idle_timeout_ms: int | None = None,
        on_expiry: Expiry | None = None, detached: bool | None = None, disk: int | str | None = None,
    ) -> builtins.list[Sandbox]:
        """``count`` independent running copies of the snapshot at once (all or nothing). ``disk``: their
        own disk limit; by default the snapshot's sandbox's."""
        params = {
            "snapshotId": snapshot,
            "count": count,
            **_lifecycle(ttl_ms, idle_timeout_ms, on_expiry, detached),
            **_restore_limits(disk),
        }
        w = await self._client._core.call("snapshot/branch", params)
        return [Sandbox(self._client, str(b["sandboxId"])) for b in w["branches"]]

    async def configure_pool(self, snapshot: str, size: int) -> Mapping[str, Any]:
        """Keeps ``size`` restored, frozen copies ready so branches of it are a thaw (0 removes the pool)."""
        result: Mapping[str, Any] = await self._client._core.call("pool/snapshot", {"snapshotId": snapshot, "size": size})
        return result


class Instances:
    """The seed's instance manager: start(snapshot) / stop / pause / resume."""

    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def start(
        self,
        snapshot: str | None = None,
        *,
        environment: str | None = None,
        command: Command | None = None,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        labels: Mapping[str, str] | None = None,
        ttl_ms: int | None = None,
        idle_timeout_ms: int | None = None,
        on_expiry: Expiry | None = None,
    ) -> Instance:
        """From a snapshot (processes and files as they were) or fresh from an environment."""
        params: dict[str, Any] = drop_none(
            {
                "snapshotId": snapshot,
                "environment": environment,
                "command": command if command is None or isinstance(command, str) else list(command),
                "limits": Limits.of(memory, cpus, pids, disk).wire(),
                "env": dict(env) if env else None,
                "cwd": cwd,
                "labels": dict(labels) if labels else None,
            }
        )
        params.update(_lifecycle(ttl_ms, idle_timeout_ms, on_expiry))
        w = await self._client._core.call("instance/start", params)
        inst = sandbox_from_wire(self._client, w["instance"], instance=True)
        assert isinstance(inst, Instance)
        return inst

    async def get(self, instance_id: str) -> Instance:
        w = await self._client._core.call("instance/get", {"instanceId": instance_id})
        inst = sandbox_from_wire(self._client, w["instance"], instance=True)
        assert isinstance(inst, Instance)
        return inst

    async def list(self) -> builtins.list[SandboxInfo]:
        w = await self._client._core.call("instance/list", {})
        return [from_wire(SandboxInfo, s) for s in w["instances"]]

    async def stop(self, instance_id: str) -> str:
        """Snapshots and ends the instance; returns the snapshot id resume continues from."""
        w = await self._client._core.call("instance/stop", {"instanceId": instance_id})
        return str(w["snapshotId"])

    async def pause(self, instance_id: str) -> None:
        await self._client._core.call("instance/pause", {"instanceId": instance_id})

    async def resume(self, instance_id: str) -> None:
        await self._client._core.call("instance/resume", {"instanceId": instance_id})

    async def destroy(self, instance_id: str) -> None:
        await self._client._core.call("instance/destroy", {"instanceId": instance_id})


class Ports:
    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def forward(self, sandbox_id: str, port: int, *, host_port: int | None = None, host_address: str | None = None) -> PortForward:
        """Forwards a host port (127.0.0.1 by default; any free one unless ``host_port``) to ``port`` inside."""
        params = drop_none({"sandboxId": sandbox_id, "port": port, "hostPort": host_port, "hostAddress": host_address})
        return await self._client._core.call_as(PortForward, "port/forward", params)

    async def unforward(self, forward_id: str) -> bool:
        w = await self._client._core.call("port/unforward", {"forwardId": forward_id})
        return bool(w.get("removed"))

    async def list(self, sandbox_id: str | None = None) -> builtins.list[PortForward]:
        w = await self._client._core.call("port/list", drop_none({"sandboxId": sandbox_id}))
        return [from_wire(PortForward, f) for f in w["forwards"]]


class Http:
    """Named HTTP exposure: a sandbox's service at ``<agent>/v1/expose/<name>/`` behind the API key."""

    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def expose(self, sandbox_id: str, port: int, name: str) -> Exposure:
        return await self._client._core.call_as(Exposure, "http/expose", {"sandboxId": sandbox_id, "port": port, "name": name})

    async def hide(self, name: str) -> bool:
        w = await self._client._core.call("http/hide", {"name": name})
        return bool(w.get("removed"))

    async def list(self) -> builtins.list[Exposure]:
        w = await self._client._core.call("http/list", {})
        return [from_wire(Exposure, e) for e in w["exposures"]]


class Environments:
    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def list(self) -> builtins.list[EnvironmentInfo]:
        w = await self._client._core.call("env/list", {})
        return [from_wire(EnvironmentInfo, e) for e in w["environments"]]

    async def build(self, name: str) -> Mapping[str, Any]:
        """Builds an environment once (later calls return at once); can take a minute for Debian ones."""
        result: Mapping[str, Any] = await self._client._core.call("env/build", {"name": name})
        return result

    async def configure_pool(self, environment: str, min: int, max: int) -> Mapping[str, Any]:
        """Sizes the warm pool of an environment (``max=0`` turns it off)."""
        result: Mapping[str, Any] = await self._client._core.call("pool/configure", {"environment": environment, "min": min, "max": max})
        return result


class Executions:
    """Executions by id: ``client.executions.get(exec_id)``, ``.stream(exec_id, after=seq)``..."""

    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    def handle(self, exec_id: str) -> ExecutionHandle:
        return ExecutionHandle(self._client._core, exec_id)

    async def get(self, exec_id: str, *, wait_ms: int = 0) -> Execution:
        return await self.handle(exec_id).get(wait_ms)

    async def cancel(self, exec_id: str) -> bool:
        return await self.handle(exec_id).cancel()

    def stream(self, exec_id: str, *, after: int = 0) -> ExecutionStream:
        """The output of an execution from sequence number ``after`` on, e.g. to reattach to one started
        elsewhere (or earlier)."""
        return self.handle(exec_id).stream(after)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str | None
    prefix: str
    created_at_ms: float
    last_used_at_ms: float | None
    revoked_at_ms: float | None


class Keys:
    """API keys (admin only: the agent's own token). ``create`` returns the secret, shown only this once."""

    def __init__(self, client: FaaSPlatformClient) -> None:
        self._client = client

    async def create(self, name: str | None = None) -> tuple[ApiKey, str]:
        w = await self._client._core.call("key/create", drop_none({"name": name}))
        return from_wire(ApiKey, w["key"]), str(w["secret"])

    async def list(self) -> builtins.list[ApiKey]:
        w = await self._client._core.call("key/list", {})
        return [from_wire(ApiKey, k) for k in w["keys"]]

    async def revoke(self, key_id: str) -> ApiKey:
        return await self._client._core.call_as(ApiKey, "key/revoke", {"keyId": key_id}, key="key")
