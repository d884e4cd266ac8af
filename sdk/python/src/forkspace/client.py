"""``FaaSPlatformClient``: the Direct HTTP API from Python.

    async with FaaSPlatformClient(api_key='your-api-key') as client:
        result = await client.execute_checkpointed('python train.py', checkpoint='snapshot-123')
"""

from __future__ import annotations

import asyncio
import functools
import os
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, TypeVar

from ._core import Core, run_timeout
from ._params import Command, Files, Limits, run_params
from ._wire import from_wire
from .builder import SandboxBuilder
from .errors import MergeConflictError, RequestCancelledError
from .execution import ExecutionHandle
from .files import Files as FilesApi
from .models import BranchRun, Diff, ExecResult, ExecutionMode, Expiry, MergeResult, MergeStrategy, TreeNode
from .parallel import BatchItem, RaceResult, gather_bounded, gather_settled
from .resources import Environments, Executions, Http, Instances, Keys, Ports, Sandboxes, Snapshots
from .retry import RetryPolicy
from .sandbox import OutputCallback, Sandbox
from .transport import HttpTransport, Transport, default_url

T = TypeVar("T")


class FaaSPlatformClient:
    """A client of one Forkspace agent's Direct HTTP API.

    ``api_key``: a key from ``forkspace keys create`` (default ``FORKSPACE_API_KEY``). ``platform_url``: the
    agent (default ``FORKSPACE_URL``, else http://127.0.0.1:7812); ``executor_url``: where runs go, when
    not the same. ``retry``: the backoff for transient failures. ``transport``: a replacement wire (tests).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        platform_url: str | None = None,
        executor_url: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: Transport | None = None,
        executor_transport: Transport | None = None,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get("FORKSPACE_API_KEY")
        self.platform_url = (platform_url or default_url()).rstrip("/")
        self.executor_url = (executor_url or self.platform_url).rstrip("/")
        platform = transport or HttpTransport(self.platform_url, self.api_key, retry=retry, timeout=timeout)
        if executor_transport is not None:
            executor: Transport = executor_transport
        elif transport is not None or self.executor_url == self.platform_url:
            executor = platform
        else:
            executor = HttpTransport(self.executor_url, self.api_key, retry=retry, timeout=timeout)
        self._core = Core(platform, executor)
        self.sandboxes = Sandboxes(self)
        self.snapshots = Snapshots(self)
        self.instances = Instances(self)
        self.files = FilesApi(self._core)
        self.ports = Ports(self)
        self.http = Http(self)
        #: The TS SDK's name for :attr:`http`.
        self.exposures = self.http
        self.branches = Branches(self)
        self.environments = Environments(self)
        self.executions = Executions(self)
        self.keys = Keys(self)

    def __repr__(self) -> str:
        return f"FaaSPlatformClient(platform_url={self.platform_url!r})"

    async def __aenter__(self) -> FaaSPlatformClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._core.aclose()

    async def call(self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Any protocol method by name with its camelCase params (``client.call('pool/list')``): the JSON
        result, errors raised as their classes, the same retries."""
        return await self._core.call(method, params, timeout=timeout)

    async def status(self) -> Mapping[str, Any]:
        """The agent's and the runtime's state (version, uptime, running executions)."""
        result: Mapping[str, Any] = await self._core.call("agent/status", {})
        return result

    # --- execution modes -----------------------------------------------------------------------------------

    async def execute(
        self,
        command: Command | None = None,
        *,
        code: str | None = None,
        mode: ExecutionMode | str = ExecutionMode.EPHEMERAL,
        environment: str | None = None,
        checkpoint: str | None = None,
        sandbox_id: str | None = None,
        cache: str | None = None,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        timeout_ms: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        collect: Sequence[str] | None = None,
        max_output_bytes: int | None = None,
        exec_id: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """Runs a command (a shell line, or an argv list) or ``code=`` (source in the environment's language)
        in one of the modes; returns when it ends. A non-zero exit is in the result, not raised.

        With ``on_stdout``/``on_stderr``, output goes to the callbacks as it is printed (over a WebSocket
        that resumes if it drops); without, the result carries it all at the end.
        """
        m = ExecutionMode(mode)
        if m is ExecutionMode.BRANCHED:
            raise ValueError("the branched mode runs in N branches: use execute_branched(), map() or race()")
        if m is ExecutionMode.PERSISTENT and sandbox_id is None:
            raise ValueError("mode 'persistent' runs in an existing sandbox: pass sandbox_id= (or use sandbox.exec())")
        limits = Limits.of(memory, cpus, pids, disk)
        params = run_params(
            command, code, mode=m.value, environment=environment, limits=limits if limits.wire() else None,
            timeout_ms=timeout_ms, env=env, cwd=cwd, files=files, stdin=stdin, max_output_bytes=max_output_bytes,
            exec_id=exec_id, checkpoint=checkpoint, sandbox_id=sandbox_id, cache=cache, collect=collect,
        )
        if on_stdout is not None or on_stderr is not None:
            handle = await self._start(params)
            return await handle.result(on_stdout, on_stderr)
        return await self._core.call_as(ExecResult, "exec/run", params, timeout=run_timeout(timeout_ms))

    async def execute_ephemeral(
        self,
        command: Command | None = None,
        environment: str | None = None,
        *,
        code: str | None = None,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        timeout_ms: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        collect: Sequence[str] | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """A fresh sandbox, destroyed after the run: nothing of it remains."""
        return await self.execute(
            command, code=code, mode=ExecutionMode.EPHEMERAL, environment=environment, memory=memory, cpus=cpus,
            pids=pids, disk=disk, timeout_ms=timeout_ms, env=env, cwd=cwd, files=files, stdin=stdin, collect=collect,
            on_stdout=on_stdout, on_stderr=on_stderr,
        )

    async def execute_cached(
        self,
        command: Command | None = None,
        environment: str | None = None,
        *,
        code: str | None = None,
        refresh: bool = False,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        timeout_ms: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        collect: Sequence[str] | None = None,
    ) -> ExecResult:
        """A stored result for the same command, environment content, inputs and files returns without
        running (``result.cached``); ``refresh=True`` runs and stores again."""
        return await self.execute(
            command, code=code, mode=ExecutionMode.CACHED, cache="refresh" if refresh else None,
            environment=environment, memory=memory, cpus=cpus, pids=pids, disk=disk, timeout_ms=timeout_ms, env=env, cwd=cwd,
            files=files, stdin=stdin, collect=collect,
        )

    async def execute_checkpointed(
        self,
        command: Command | None = None,
        environment: str | None = None,
        checkpoint: str | None = None,
        *,
        code: str | None = None,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        timeout_ms: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        collect: Sequence[str] | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """Starts from ``checkpoint`` (a snapshot id or unique label; none: a fresh sandbox of
        ``environment``), runs, and snapshots the result: ``result.checkpoint_id`` is where the next run
        can start. With a checkpoint, the environment is the snapshot's."""
        return await self.execute(
            command, code=code, mode=ExecutionMode.CHECKPOINTED, environment=environment if checkpoint is None else None,
            checkpoint=checkpoint, memory=memory, cpus=cpus, pids=pids, disk=disk, timeout_ms=timeout_ms, env=env, cwd=cwd,
            files=files, stdin=stdin, collect=collect, on_stdout=on_stdout, on_stderr=on_stderr,
        )

    async def execute_persistent(
        self,
        sandbox: Sandbox | str,
        command: Command | None = None,
        *,
        code: str | None = None,
        timeout_ms: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        on_stdout: OutputCallback | None = None,
        on_stderr: OutputCallback | None = None,
    ) -> ExecResult:
        """Runs inside an existing sandbox or instance; its state carries over between runs."""
        return await self.execute(
            command, code=code, mode=ExecutionMode.PERSISTENT, sandbox_id=sandbox if isinstance(sandbox, str) else sandbox.id,
            timeout_ms=timeout_ms, env=env, cwd=cwd, files=files, stdin=stdin, on_stdout=on_stdout, on_stderr=on_stderr,
        )

    async def execute_branched(
        self,
        snapshot: str,
        command: Command | None = None,
        *,
        code: str | None = None,
        inputs: Sequence[str] | None = None,
        count: int | None = None,
        strategy: str = "map",
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout_ms: int | None = None,
        max_output_bytes: int | None = None,
        keep: bool = False,
    ) -> BranchRun:
        """N branches of ``snapshot`` run the command at once on the agent. ``map``: one branch per input (on
        stdin and in $FORKSPACE_INPUT); ``race``: ``count`` identical branches, the first to exit 0 wins and
        the others are stopped."""
        params = run_params(command, code, env=env, cwd=cwd, timeout_ms=timeout_ms, max_output_bytes=max_output_bytes)
        params.update({"snapshotId": snapshot, "strategy": strategy})
        if inputs is not None:
            params["inputs"] = list(inputs)
        if count is not None:
            params["count"] = count
        if keep:
            params["keep"] = True
        return await self._core.call_as(BranchRun, "exec/branch", params, timeout=run_timeout(timeout_ms))

    async def start(
        self,
        command: Command | None = None,
        *,
        code: str | None = None,
        mode: ExecutionMode | str = ExecutionMode.EPHEMERAL,
        environment: str | None = None,
        checkpoint: str | None = None,
        memory: int | str | None = None,
        cpus: float | None = None,
        pids: int | None = None,
        disk: int | str | None = None,
        timeout_ms: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        files: Files | None = None,
        stdin: str | None = None,
        collect: Sequence[str] | None = None,
        exec_id: str | None = None,
    ) -> ExecutionHandle:
        """Starts a run and returns at once: ``async for chunk in handle`` streams its output,
        ``await handle.result()`` waits for the end, ``await handle.cancel()`` stops it."""
        limits = Limits.of(memory, cpus, pids, disk)
        params = run_params(
            command, code, mode=ExecutionMode(mode).value, environment=environment, limits=limits if limits.wire() else None,
            timeout_ms=timeout_ms, env=env, cwd=cwd, files=files, stdin=stdin, exec_id=exec_id, checkpoint=checkpoint,
            collect=collect,
        )
        return await self._start(params)

    async def _start(self, params: dict[str, Any]) -> ExecutionHandle:
        # The exec id is chosen here so a retried start (same Idempotency-Key) names the same execution.
        params.setdefault("execId", "py-" + uuid.uuid4().hex[:20])
        w = await self._core.call("exec/start", params)
        return ExecutionHandle(self._core, str(w["execId"]))

    # --- parallel --------------------------------------------------------------------------------------------

    async def map(
        self,
        inputs: Sequence[T],
        fn: Callable[[T], Command],
        *,
        snapshot: str | None = None,
        environment: str | None = None,
        concurrency: int = 8,
        timeout_ms: int | None = None,
        memory: int | str | None = None,
    ) -> list[ExecResult]:
        """Runs ``fn(input)`` (a command) for each input, each in its own sandbox: a restore of ``snapshot``
        (then destroyed) or a fresh ephemeral one of ``environment``. Results are in input order; if any
        run fails to run at all, its error is raised once every run has ended."""

        def job(item: T) -> Callable[[], Awaitable[ExecResult]]:
            async def run() -> ExecResult:
                command = fn(item)
                if snapshot is None:
                    return await self.execute(command, environment=environment, timeout_ms=timeout_ms, memory=memory)
                sbx = await self.snapshots.restore(snapshot)
                async with sbx:
                    return await sbx.exec(command, timeout_ms=timeout_ms)

            return run

        return await gather_bounded([job(i) for i in inputs], concurrency)

    async def race(
        self,
        commands: Sequence[Command],
        *,
        snapshot: str | None = None,
        environment: str | None = None,
        timeout_ms: int | None = None,
    ) -> RaceResult:
        """Runs the commands at once, each in its own sandbox (branches of ``snapshot``, or fresh ones of
        ``environment``); the first to exit 0 wins and the others are cancelled. Every sandbox is
        destroyed before this returns."""
        if not commands:
            raise ValueError("race() needs at least one command")
        if snapshot is not None:
            sandboxes = await self.snapshots.branch(snapshot, len(commands))
        else:
            sandboxes = await gather_bounded([lambda: self.create_sandbox(environment) for _ in commands], len(commands))
        results: list[ExecResult | None] = [None] * len(commands)
        winner: int | None = None
        try:
            handles = await gather_bounded(
                [functools.partial(s.start, c, timeout_ms=timeout_ms) for s, c in zip(sandboxes, commands)], len(commands)
            )
            waits = {asyncio.ensure_future(h.wait()): i for i, h in enumerate(handles)}
            pending = set(waits)
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    i = waits[task]
                    try:
                        results[i] = task.result()
                    except RequestCancelledError:
                        continue
                    r = results[i]
                    if winner is None and r is not None and r.exit_code == 0:
                        winner = i
                        await asyncio.gather(*(h.cancel() for j, h in enumerate(handles) if j != i), return_exceptions=True)
        finally:
            await asyncio.gather(*(s.destroy() for s in sandboxes), return_exceptions=True)
        return RaceResult(winner, results)

    async def batch(self, calls: Sequence[Callable[[], Awaitable[T]]], *, concurrency: int = 8) -> list[BatchItem[T]]:
        """Runs the calls (zero-argument async functions), at most ``concurrency`` at a time; every call
        settles (value or error) and the items come back in order."""
        return await gather_settled(calls, concurrency)

    async def execute_batch(
        self,
        commands: Sequence[Command],
        *,
        environment: str | None = None,
        mode: ExecutionMode | str = ExecutionMode.EPHEMERAL,
        concurrency: int = 8,
        timeout_ms: int | None = None,
    ) -> list[BatchItem[ExecResult]]:
        """Many runs at once; one settled item per command."""
        return await gather_settled(
            [functools.partial(self.execute, c, mode=mode, environment=environment, timeout_ms=timeout_ms) for c in commands],
            concurrency,
        )

    # --- sandboxes (fluent and direct) ---------------------------------------------------------------------

    def sandbox(self, environment: str | None = None) -> SandboxBuilder:
        """A fluent builder: ``.with_memory('512M').with_timeout(30_000).run('python train.py')``, or
        ``async with client.sandbox('python') as sbx:`` for a persistent one destroyed at the end."""
        return SandboxBuilder(self, environment)

    async def create_sandbox(
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
        default_timeout_ms: int | None = None,
    ) -> Sandbox:
        """A persistent sandbox; ``async with await client.create_sandbox(...) as sbx:`` destroys it after."""
        return await self.sandboxes.create(
            environment, command=command, memory=memory, cpus=cpus, pids=pids, disk=disk, env=env, cwd=cwd, files=files,
            labels=labels, ttl_ms=ttl_ms, idle_timeout_ms=idle_timeout_ms, on_expiry=on_expiry,
            default_timeout_ms=default_timeout_ms,
        )

    async def diff(self, a: str, b: str) -> Diff:
        """What two sandboxes (or snapshots) changed in their files since their nearest common snapshot."""
        return await self._core.call_as(Diff, "branch/diff", {"a": a, "b": b})

    async def merge(self, from_: str, into: str, strategy: MergeStrategy = "fail", *, raise_on_conflict: bool = True) -> MergeResult:
        """Three-way merges ``from_``'s file changes into the running sandbox ``into`` (files only; processes
        are not merged). With strategy ``fail`` and conflicts nothing is applied and
        :class:`MergeConflictError` is raised, its ``conflicts`` listing each file with both sides (as the
        TS SDK and the CLI do); with ``raise_on_conflict=False`` the same comes back as data instead:
        a result with ``aborted`` True and ``conflicts``."""
        try:
            return await self._core.call_as(MergeResult, "branch/merge", {"from": from_, "into": into, "strategy": strategy})
        except MergeConflictError as e:
            if raise_on_conflict:
                raise
            return _merge_result_from_conflict(e, from_, into, strategy)

    async def tree(self, *, include_destroyed: bool = False) -> list[TreeNode]:
        """The branch tree: environment -> sandbox -> snapshot -> sandboxes made from it -> ..."""
        w = await self._core.call("tree/get", {"includeDestroyed": include_destroyed} if include_destroyed else {})
        return [from_wire(TreeNode, n) for n in w["roots"]]


class Branches:
    """``client.branches``: :meth:`FaaSPlatformClient.diff`, ``merge`` and ``tree`` under one noun (as in the TS
    SDK)."""

    def __init__(self, client: FaaSPlatformClient) -> None:
        self.diff = client.diff
        self.merge = client.merge
        self.tree = client.tree


def _merge_result_from_conflict(e: MergeConflictError, from_: str, into: str, strategy: MergeStrategy) -> MergeResult:
    data = e.data if isinstance(e.data, Mapping) else {}
    if "conflicts" in data and "base" in data:
        return from_wire(MergeResult, {"from": from_, "into": into, "strategy": strategy, "applied": [], "aborted": True, **data})
    return MergeResult(from_=from_, into=into, base=str(data.get("base", "")), strategy=strategy, applied=[], conflicts=e.conflicts, aborted=True)


__all__ = ["FaaSPlatformClient"]
