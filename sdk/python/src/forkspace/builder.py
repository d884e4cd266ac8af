"""The fluent API: ``client.sandbox('python:3.11').with_memory('512M').with_timeout(30_000).run('python
train.py')``. Each ``with_*`` returns a new builder (a builder can be shared and specialised safely)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING

from ._params import Command, Files, Limits
from .models import ExecResult, Expiry
from .sandbox import OutputCallback, Sandbox, _destroy_on_exit

if TYPE_CHECKING:
    from .client import FaaSPlatformClient


@dataclass(frozen=True)
class SandboxBuilder:
    _client: FaaSPlatformClient = field(repr=False)
    environment: str | None = None
    limits: Limits = Limits()
    timeout_ms: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    files: Mapping[str, str | bytes] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    ttl_ms: int | None = None
    idle_timeout_ms: int | None = None
    on_expiry: Expiry | None = None
    _entered: list[Sandbox] = field(default_factory=list, repr=False, compare=False)

    # --- configuration -----------------------------------------------------------------------------------

    def with_environment(self, environment: str) -> SandboxBuilder:
        return replace(self, environment=environment, _entered=[])

    def with_memory(self, memory: int | str) -> SandboxBuilder:
        """Memory limit: bytes, or '512M', '1G' (binary units)."""
        return replace(self, limits=self.limits.merged(Limits.of(memory=memory)), _entered=[])

    def with_cpus(self, cpus: float) -> SandboxBuilder:
        """CPU quota in cores (0.5 = half a core)."""
        return replace(self, limits=self.limits.merged(Limits(cpus=cpus)), _entered=[])

    def with_pids(self, pids: int) -> SandboxBuilder:
        return replace(self, limits=self.limits.merged(Limits(pids=pids)), _entered=[])

    def with_disk(self, disk: int | str) -> SandboxBuilder:
        """Disk limit of the sandbox's files (what it may add over its environment): bytes, or '512M',
        '20G' (binary units). Default 10G; writes past it fail inside with EDQUOT."""
        return replace(self, limits=self.limits.merged(Limits.of(disk=disk)), _entered=[])

    def with_timeout(self, timeout_ms: int) -> SandboxBuilder:
        """Wall-clock limit of each command, in milliseconds."""
        if timeout_ms <= 0:
            raise ValueError("with_timeout takes milliseconds > 0, e.g. 30_000 for 30 s")
        return replace(self, timeout_ms=timeout_ms, _entered=[])

    def with_env(self, env: Mapping[str, str] | None = None, **more: str) -> SandboxBuilder:
        return replace(self, env={**self.env, **(env or {}), **more}, _entered=[])

    def with_cwd(self, cwd: str) -> SandboxBuilder:
        return replace(self, cwd=cwd, _entered=[])

    def with_file(self, path: str, content: str | bytes) -> SandboxBuilder:
        return replace(self, files={**self.files, path: content}, _entered=[])

    def with_files(self, files: Files) -> SandboxBuilder:
        return replace(self, files={**self.files, **files}, _entered=[])

    def with_labels(self, labels: Mapping[str, str] | None = None, **more: str) -> SandboxBuilder:
        return replace(self, labels={**self.labels, **(labels or {}), **more}, _entered=[])

    def with_ttl(self, ttl_ms: int, on_expiry: Expiry | None = None) -> SandboxBuilder:
        """Absolute lifetime of a started sandbox, in milliseconds."""
        return replace(self, ttl_ms=ttl_ms, on_expiry=on_expiry or self.on_expiry, _entered=[])

    def with_idle_timeout(self, idle_timeout_ms: int, on_expiry: Expiry | None = None) -> SandboxBuilder:
        return replace(self, idle_timeout_ms=idle_timeout_ms, on_expiry=on_expiry or self.on_expiry, _entered=[])

    # --- running -------------------------------------------------------------------------------------------

    async def run(
        self,
        command: Command | None = None,
        *,
        code: str | None = None,
        stdin: str | None = None,
        collect: Sequence[str] | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """Runs once in a fresh sandbox with this configuration, destroyed afterwards (ephemeral mode)."""
        return await self._client.execute(
            command, code=code, environment=self.environment, memory=self.limits.memory_bytes, cpus=self.limits.cpus,
            pids=self.limits.pids, disk=self.limits.disk_bytes, timeout_ms=self.timeout_ms, env=self.env or None, cwd=self.cwd, files=self.files or None,
            stdin=stdin, collect=collect, on_stdout=on_stdout, on_stderr=on_stderr,
        )

    async def run_cached(self, command: Command | None = None, *, code: str | None = None, stdin: str | None = None, refresh: bool = False) -> ExecResult:
        """Like :meth:`run`, but a stored result for the same inputs returns without running."""
        return await self._client.execute_cached(
            command, self.environment, code=code, refresh=refresh, memory=self.limits.memory_bytes, cpus=self.limits.cpus,
            pids=self.limits.pids, disk=self.limits.disk_bytes, timeout_ms=self.timeout_ms, env=self.env or None, cwd=self.cwd,
            files=self.files or None, stdin=stdin,
        )

    async def run_checkpointed(self, command: Command | None = None, *, code: str | None = None, checkpoint: str | None = None) -> ExecResult:
        """Starts from ``checkpoint`` (or fresh), runs, and snapshots the result (``result.checkpoint_id``)."""
        return await self._client.execute_checkpointed(
            command, self.environment, checkpoint, code=code, memory=self.limits.memory_bytes, cpus=self.limits.cpus,
            pids=self.limits.pids, disk=self.limits.disk_bytes, timeout_ms=self.timeout_ms, env=self.env or None, cwd=self.cwd, files=self.files or None,
        )

    async def start(self, command: Command | None = None) -> Sandbox:
        """Creates a persistent sandbox with this configuration (``command`` is its first process; default:
        an idle shell, so commands run with ``exec``)."""
        return await self._client.create_sandbox(
            self.environment, command=command, memory=self.limits.memory_bytes, cpus=self.limits.cpus,
            pids=self.limits.pids, disk=self.limits.disk_bytes, env=self.env or None, cwd=self.cwd, files=self.files or None,
            labels=self.labels or None, ttl_ms=self.ttl_ms, idle_timeout_ms=self.idle_timeout_ms,
            on_expiry=self.on_expiry, default_timeout_ms=self.timeout_ms,
        )

    # ``async with client.sandbox('python').with_memory('256M') as sbx:`` starts one and destroys it after.

    async def __aenter__(self) -> Sandbox:
        sbx = await self.start()
        self._entered.append(sbx)
        return sbx

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._entered:
            await _destroy_on_exit(self._entered.pop(), exc)
