"""What every part of the client shares: the two transports (platform and executor) and the calls."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from ._wire import from_wire
from .transport import Transport

T = TypeVar("T")

#: Methods that run code go to the executor URL; everything else to the platform URL (the same agent by
#: default: the seed's two URLs allow splitting them behind a proxy).
EXECUTOR_METHODS = frozenset({"exec/run", "exec/start", "exec/get", "exec/cancel", "exec/log", "exec/branch", "sandbox/exec"})

#: Methods that may legitimately take long (the first use of an environment builds it, about a minute for
#: a Debian one; CRIU work on large memory), in seconds; the others use the client's timeout.
SLOW_METHODS: dict[str, float] = {
    "sandbox/create": 900.0,
    "instance/start": 900.0,
    "env/build": 1800.0,
    "snapshot/create": 300.0,
    "snapshot/restore": 300.0,
    "snapshot/branch": 300.0,
    "sandbox/stop": 300.0,
    "sandbox/start": 300.0,
    "instance/stop": 300.0,
    "instance/resume": 300.0,
    "branch/merge": 300.0,
    "branch/diff": 300.0,
    "ssh/prepare": 120.0,
}

#: Slack added to a run's own timeout before the HTTP layer gives up on the answer.
RUN_TIMEOUT_MARGIN_S = 60.0


class Core:
    def __init__(self, platform: Transport, executor: Transport) -> None:
        self.platform = platform
        self.executor = executor

    def transport_for(self, method: str) -> Transport:
        return self.executor if method in EXECUTOR_METHODS else self.platform

    async def call(self, method: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        if timeout is None:
            timeout = SLOW_METHODS.get(method)
        return await self.transport_for(method).call(method, dict(params or {}), timeout=timeout)

    async def call_as(self, cls: type[T], method: str, params: Mapping[str, Any] | None = None, *, key: str | None = None, timeout: float | None = None) -> T:
        """Calls and builds ``cls`` from the result (or from ``result[key]``)."""
        result = await self.call(method, params, timeout=timeout)
        return from_wire(cls, result[key] if key is not None else result)

    async def aclose(self) -> None:
        await self.platform.aclose()
        if self.executor is not self.platform:
            await self.executor.aclose()


def run_timeout(timeout_ms: int | None) -> float:
    """HTTP timeout (seconds) for a call that answers when a run ends: its own limit plus a margin, or
    none at all (the agent ends the run; the connection breaking is noticed either way)."""
    return float("inf") if timeout_ms is None else timeout_ms / 1000 + RUN_TIMEOUT_MARGIN_S
