"""Retries with exponential backoff and full jitter, on transient failures only.

Transient: HTTP 502/503/504 and 429, the agent's ShuttingDown and RuntimeUnavailable codes, a refused or
reset connection. Never a 4xx other than 429 (the same request fails the same way again), never a timeout
of a request that may have run. A request that is not idempotent (a POST) is retried only when it carries an
Idempotency-Key, so the agent runs it at most once; the SDK gives every POST one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from .errors import ForkspaceConnectionError, ForkspaceError, RateLimitError, UnavailableError

#: 503s (ShuttingDown, RuntimeUnavailable, a gateway's), 429s and broken connections.
_TRANSIENT: tuple[type[ForkspaceError], ...] = (UnavailableError, RateLimitError, ForkspaceConnectionError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts the first try (1 = no retries). Delays are in seconds: attempt ``n`` (from 1)
    waits a uniformly random time in ``[0, min(max_delay, base_delay * 2**(n-1))]``, or the agent's
    Retry-After when it sent one (capped at ``max_delay``)."""

    max_attempts: int = 4
    base_delay: float = 0.2
    max_delay: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("RetryPolicy.max_attempts counts the first try: use 1 or more")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("RetryPolicy delays must not be negative")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1 = the first retry)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_delay)
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return self.rng.uniform(0, cap)


NO_RETRY = RetryPolicy(max_attempts=1)


def is_transient(err: ForkspaceError) -> bool:
    """Whether trying again may succeed (whether it is safe to is the transport's call: see its
    ``_may_retry``)."""
    return isinstance(err, _TRANSIENT)


__all__ = ["NO_RETRY", "RetryPolicy", "is_transient"]
