"""Batches (every call settles: a value or an error each, like Promise.allSettled), bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from .models import ExecResult

T = TypeVar("T")


@dataclass(frozen=True)
class BatchItem(Generic[T]):
    """One outcome of a batch: ``value`` or ``error``. ``index`` is the position in the input."""

    index: int
    value: T | None = None
    error: Exception | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> T:
        """The value, or the error raised."""
        if self.error is not None:
            raise self.error
        return self.value  # type: ignore[return-value]


async def gather_settled(factories: Sequence[Callable[[], Awaitable[T]]], concurrency: int = 8) -> list[BatchItem[T]]:
    """Runs the calls at most ``concurrency`` at a time; one item per call, in order."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, factory: Callable[[], Awaitable[T]]) -> BatchItem[T]:
        async with gate:
            try:
                return BatchItem(i, value=await factory())
            except Exception as e:
                return BatchItem(i, error=e)

    return list(await asyncio.gather(*(one(i, f) for i, f in enumerate(factories))))


async def gather_bounded(factories: Sequence[Callable[[], Awaitable[T]]], concurrency: int = 8) -> list[T]:
    """Like :func:`gather_settled`, but raises the first error (by input order) once all have ended, so
    nothing is left running behind the caller's back."""
    items = await gather_settled(factories, concurrency)
    return [item.unwrap() for item in items]


@dataclass(frozen=True, slots=True)
class RaceResult:
    """``winner`` is the index of the first candidate to exit 0 (None when none did); ``results`` has each
    candidate's result, None for those stopped before they ended."""

    winner: int | None
    results: list[ExecResult | None]

    @property
    def result(self) -> ExecResult | None:
        return None if self.winner is None else self.results[self.winner]


__all__ = ["BatchItem", "RaceResult", "gather_bounded", "gather_settled"]
