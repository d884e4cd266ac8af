"""A thin blocking wrapper over the async client, for scripts and notebooks without an event loop:

    from forkspace.sync import FaaSPlatformClient

    with FaaSPlatformClient(api_key='...') as client:
        print(client.execute('echo hi').stdout)
        with client.sandbox('python').with_memory('256M') as sbx:
            sbx.exec('pip --version')

Each call runs the async one to completion on the client's own event loop (in the calling thread, so
``on_stdout`` callbacks run there too). Everything not wrapped here is reachable as ``client.aio`` plus
``client.run(coroutine)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from . import client as _client
from .builder import SandboxBuilder as _AsyncBuilder
from .models import BranchRun, Diff, ExecResult, MergeResult, SnapshotCreated, TreeNode
from .parallel import BatchItem, RaceResult
from .sandbox import Sandbox as _AsyncSandbox

T = TypeVar("T")


class _Runner:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "forkspace.sync was called from inside a running event loop; use the async client "
                "(from forkspace import FaaSPlatformClient) with await there"
            )
        if self.loop.is_closed():
            coro.close()
            raise RuntimeError("this forkspace.sync client is closed")
        return self.loop.run_until_complete(coro)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


class Sandbox:
    """Blocking twin of :class:`forkspace.Sandbox`; ``with`` destroys it (even when the body raises)."""

    def __init__(self, runner: _Runner, aio: _AsyncSandbox) -> None:
        self._r = runner
        self.aio = aio
        self.files = _Files(runner, aio)

    @property
    def id(self) -> str:
        return self.aio.id

    def __repr__(self) -> str:
        return f"sync.{self.aio!r}"

    def exec(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.exec(*args, **kwargs))

    def snapshot(self, label: str | None = None, *, leave_running: bool = True) -> SnapshotCreated:
        return self._r.run(self.aio.snapshot(label, leave_running=leave_running))

    def branch(self, count: int) -> list[Sandbox]:
        return [Sandbox(self._r, s) for s in self._r.run(self.aio.branch(count))]

    def diff(self, other: Sandbox | str) -> Diff:
        return self._r.run(self.aio.diff(other if isinstance(other, str) else other.id))

    def merge_from(self, other: Sandbox | str, strategy: Any = "fail", **kwargs: Any) -> MergeResult:
        return self._r.run(self.aio.merge_from(other if isinstance(other, str) else other.id, strategy, **kwargs))

    def pause(self) -> None:
        self._r.run(self.aio.pause())

    def resume(self) -> None:
        self._r.run(self.aio.resume())

    def stop(self) -> SnapshotCreated:
        return self._r.run(self.aio.stop())

    def destroy(self) -> None:
        self._r.run(self.aio.destroy())

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._r.run(self.aio.__aexit__(exc_type, exc, tb))


class _Files:
    def __init__(self, runner: _Runner, aio: _AsyncSandbox) -> None:
        self._r = runner
        self._f = aio.files

    def write(self, path: str, data: bytes | str, **kwargs: Any) -> int:
        return self._r.run(self._f.write(path, data, **kwargs))

    def read(self, path: str) -> bytes:
        return self._r.run(self._f.read(path))

    def read_text(self, path: str) -> str:
        return self._r.run(self._f.read_text(path))

    def upload(self, local: Any, path: str, **kwargs: Any) -> int:
        return self._r.run(self._f.upload(local, path, **kwargs))

    def download(self, path: str, local: Any) -> int:
        return self._r.run(self._f.download(path, local))


class SandboxBuilder:
    """Blocking twin of the fluent builder."""

    def __init__(self, runner: _Runner, aio: _AsyncBuilder) -> None:
        self._r = runner
        self.aio = aio
        self._entered: list[Sandbox] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.aio, name)
        if name.startswith("with_") and callable(attr):
            return lambda *a, **kw: SandboxBuilder(self._r, attr(*a, **kw))
        raise AttributeError(name)

    def run(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.run(*args, **kwargs))

    def run_cached(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.run_cached(*args, **kwargs))

    def run_checkpointed(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.run_checkpointed(*args, **kwargs))

    def start(self, *args: Any, **kwargs: Any) -> Sandbox:
        return Sandbox(self._r, self._r.run(self.aio.start(*args, **kwargs)))

    def __enter__(self) -> Sandbox:
        sbx = self.start()
        self._entered.append(sbx)
        return sbx

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._entered:
            self._entered.pop().__exit__(exc_type, exc, tb)


class FaaSPlatformClient:
    """Blocking twin of :class:`forkspace.FaaSPlatformClient` (same constructor arguments)."""

    def __init__(self, api_key: str | None = None, **kwargs: Any) -> None:
        self._r = _Runner()
        # The async client is made on the runner's loop, so its connections belong to that loop.
        self.aio = self._r.run(_make(api_key, kwargs))

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs any coroutine of ``self.aio`` to completion: ``client.run(client.aio.snapshots.list())``."""
        return self._r.run(coro)

    def execute(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.execute(*args, **kwargs))

    def execute_ephemeral(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.execute_ephemeral(*args, **kwargs))

    def execute_cached(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.execute_cached(*args, **kwargs))

    def execute_checkpointed(self, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.execute_checkpointed(*args, **kwargs))

    def execute_persistent(self, sandbox: Sandbox | str, *args: Any, **kwargs: Any) -> ExecResult:
        return self._r.run(self.aio.execute_persistent(sandbox if isinstance(sandbox, str) else sandbox.id, *args, **kwargs))

    def execute_branched(self, *args: Any, **kwargs: Any) -> BranchRun:
        return self._r.run(self.aio.execute_branched(*args, **kwargs))

    def execute_batch(self, *args: Any, **kwargs: Any) -> list[BatchItem[ExecResult]]:
        return self._r.run(self.aio.execute_batch(*args, **kwargs))

    def map(self, *args: Any, **kwargs: Any) -> list[ExecResult]:
        return self._r.run(self.aio.map(*args, **kwargs))

    def race(self, *args: Any, **kwargs: Any) -> RaceResult:
        return self._r.run(self.aio.race(*args, **kwargs))

    def sandbox(self, environment: str | None = None) -> SandboxBuilder:
        return SandboxBuilder(self._r, self.aio.sandbox(environment))

    def create_sandbox(self, *args: Any, **kwargs: Any) -> Sandbox:
        return Sandbox(self._r, self._r.run(self.aio.create_sandbox(*args, **kwargs)))

    def restore(self, snapshot: str, **kwargs: Any) -> Sandbox:
        return Sandbox(self._r, self._r.run(self.aio.snapshots.restore(snapshot, **kwargs)))

    def diff(self, a: str, b: str) -> Diff:
        return self._r.run(self.aio.diff(a, b))

    def merge(self, *args: Any, **kwargs: Any) -> MergeResult:
        return self._r.run(self.aio.merge(*args, **kwargs))

    def tree(self, **kwargs: Any) -> list[TreeNode]:
        return self._r.run(self.aio.tree(**kwargs))

    def close(self) -> None:
        try:
            if not self._r.loop.is_closed():
                self._r.run(self.aio.aclose())
        finally:
            self._r.close()

    def __enter__(self) -> FaaSPlatformClient:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


async def _make(api_key: str | None, kwargs: dict[str, Any]) -> _client.FaaSPlatformClient:
    return _client.FaaSPlatformClient(api_key, **kwargs)


__all__ = ["FaaSPlatformClient", "Sandbox", "SandboxBuilder"]
