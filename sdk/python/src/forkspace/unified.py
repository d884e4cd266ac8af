"""``UnifiedFaaSClient``: one interface over the Direct flow and the Tangle flow, with the seed's rule:
Tangle when the run asks to be ``verifiable``, ``decentralized`` or to have ``economic_incentives``, or when
there is no direct client; Direct otherwise.

The Tangle half plugs in later (any object with ``async execute(command, options) -> ExecResult``);
until one is given, choosing Tangle raises :class:`TangleNotConfiguredError`: nothing runs and nothing falls
back to Direct silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, Protocol

from ._params import Command
from .client import FaaSPlatformClient
from .errors import TangleNotConfiguredError
from .models import ExecResult, ExecutionMode

Mode = Literal["direct", "tangle", "auto"]


@dataclass(frozen=True)
class ExecutionOptions:
    environment: str | None = None
    mode: ExecutionMode | str = ExecutionMode.EPHEMERAL
    checkpoint: str | None = None
    memory: int | str | None = None
    cpus: float | None = None
    timeout_ms: int | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    #: The result must be verifiable by others (on-chain): Tangle.
    verifiable: bool = False
    #: Run by the network's operators, not a machine of yours: Tangle.
    decentralized: bool = False
    #: Operators bid and are paid for the job: Tangle.
    economic_incentives: bool = False


class TangleExecutor(Protocol):
    """What the Tangle flow must provide to plug in."""

    async def execute(self, command: Command, options: ExecutionOptions) -> ExecResult: ...


class UnifiedFaaSClient:
    """``UnifiedFaaSClient(mode='direct'|'tangle'|'auto', api_key=..., keypair=...)``."""

    def __init__(
        self,
        mode: Mode = "auto",
        api_key: str | None = None,
        keypair: Any = None,
        *,
        platform_url: str | None = None,
        executor_url: str | None = None,
        direct: FaaSPlatformClient | None = None,
        tangle: TangleExecutor | None = None,
    ) -> None:
        if mode not in ("direct", "tangle", "auto"):
            raise ValueError(f"mode is 'direct', 'tangle' or 'auto', not {mode!r}")
        self.mode: Mode = mode
        self.keypair = keypair
        self.direct: FaaSPlatformClient | None = None
        if mode in ("direct", "auto"):
            self.direct = direct or FaaSPlatformClient(api_key, platform_url=platform_url, executor_url=executor_url)
        self.tangle: TangleExecutor | None = tangle if mode in ("tangle", "auto") else None
        if mode == "tangle" and self.tangle is None:
            raise TangleNotConfiguredError(_not_configured("mode='tangle' was chosen"))

    async def __aenter__(self) -> UnifiedFaaSClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self.direct is not None:
            await self.direct.aclose()

    def should_use_tangle(self, options: ExecutionOptions) -> bool:
        """The seed's rule."""
        return options.verifiable or options.decentralized or options.economic_incentives or self.direct is None

    def flow_for(self, options: ExecutionOptions) -> Literal["direct", "tangle"]:
        return "tangle" if self.should_use_tangle(options) else "direct"

    async def execute(self, command: Command, options: ExecutionOptions | None = None, **overrides: Any) -> ExecResult:
        """Runs ``command`` through the flow the options call for (``overrides`` are ExecutionOptions
        fields, e.g. ``verifiable=True``)."""
        opts = replace(options or ExecutionOptions(), **overrides)
        if self.should_use_tangle(opts):
            if self.tangle is None:
                why = [k for k in ("verifiable", "decentralized", "economic_incentives") if getattr(opts, k)]
                reason = f"the run asked for {' and '.join(why)}" if why else "there is no direct client"
                raise TangleNotConfiguredError(_not_configured(reason))
            return await self.tangle.execute(command, opts)
        assert self.direct is not None
        return await self.direct.execute(
            command, mode=opts.mode, environment=opts.environment, checkpoint=opts.checkpoint, memory=opts.memory,
            cpus=opts.cpus, timeout_ms=opts.timeout_ms, env=opts.env or None,
        )


def _not_configured(reason: str) -> str:
    return (
        f"{reason}, which needs the Tangle flow, but no Tangle client is configured in this SDK yet (it comes "
        f"with the Tangle issue): nothing ran, and nothing was sent to the Direct API instead. Use "
        f"mode='direct' (or 'auto' without verifiable/decentralized/economic_incentives) to run on a Forkspace "
        f"agent, or pass tangle=<a TangleExecutor>."
    )


__all__ = ["ExecutionOptions", "TangleExecutor", "UnifiedFaaSClient"]
