"""The Direct HTTP API on the wire: one protocol method -> one REST route, with the API key, an
Idempotency-Key on every POST, retries on transient failures, and errors mapped through the one table.

:class:`Transport` is the seam: the client only calls ``call(method, params)`` and ``stream_url(...)``, so
tests can hand it a fake. :class:`HttpTransport` is the real one, on ``httpx``.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import uuid
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import httpx

from ._route import route_for
from .errors import (
    ForkspaceConnectionError,
    ForkspaceError,
    ForkspaceTimeoutError,
    ProtocolMismatchError,
    error_from_wire,
)
from .retry import RetryPolicy, is_transient

DEFAULT_URL = "http://127.0.0.1:7812"
USER_AGENT = "forkspace-python/0.1.0"


def default_url() -> str:
    """``FORKSPACE_URL``, else the agent's default HTTP address."""
    return os.environ.get("FORKSPACE_URL") or DEFAULT_URL


class Transport(Protocol):
    """What the client needs from the wire."""

    async def call(self, method: str, params: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        """Calls a protocol method (``exec/run``) with its camelCase params; returns its result (JSON)."""
        ...

    def stream_url(self, path: str, query: Mapping[str, str | int] | None = None) -> tuple[str, dict[str, str]]:
        """The ws:// URL and headers (the key) for a WebSocket route such as an execution's output."""
        ...

    async def aclose(self) -> None: ...


class HttpTransport:
    """``base_url`` is the agent's HTTP address (``http://127.0.0.1:7812``). ``timeout`` (seconds) applies to
    connecting and to each request without one of its own; runs get their own (their ``timeout_ms`` plus a
    margin, or none), so a long command is not cut by the HTTP layer."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        self._own_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            headers=headers,
            # Retries are ours (with the rules above); httpx's own would retry POSTs blindly.
            transport=httpx.AsyncHTTPTransport(retries=0, socket_options=keepalive_options()),
        )
        if client is not None:
            client.headers.update(headers)

    async def aclose(self) -> None:
        if self._own_client:
            await self._client.aclose()

    def stream_url(self, path: str, query: Mapping[str, str | int] | None = None) -> tuple[str, dict[str, str]]:
        url = self.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + path
        if query:
            url += "?" + urlencode({k: str(v) for k, v in query.items()})
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        return url, headers

    async def call(self, method: str, params: Mapping[str, Any], *, timeout: float | None = None) -> Any:
        route = route_for(method)
        path, rest = route.render(params)
        verb = route.verb
        body: bytes | None = None
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        if route.stream:
            raise ValueError(f"{method} is a WebSocket stream: use stream_url()")
        if verb in ("GET", "DELETE"):
            query = {k: _query_value(v) for k, v in rest.items() if v is not None}
        else:
            body = json.dumps(dict(rest), separators=(",", ":")).encode()
            headers["content-type"] = "application/json"
        if verb == "POST":
            # One key per logical call, the same on every retry: the agent runs it at most once.
            headers["idempotency-key"] = uuid.uuid4().hex
        idempotent = verb in ("GET", "PUT", "DELETE") or "idempotency-key" in headers
        per_request = httpx.USE_CLIENT_DEFAULT if timeout is None else httpx.Timeout(timeout, connect=min(self.timeout, 10.0))
        if timeout == float("inf"):
            per_request = httpx.Timeout(None, connect=min(self.timeout, 10.0))

        attempt = 0
        while True:
            attempt += 1
            try:
                response = await self._client.request(
                    verb, self.base_url + path, params=query or None, content=body, headers=headers, timeout=per_request
                )
            except httpx.ConnectError as e:
                # Refused or unreachable: the request never left, so any method may be tried again.
                err: ForkspaceError = ForkspaceConnectionError(
                    f"could not connect to the Forkspace agent at {self.base_url} ({_why(e)}): is it running "
                    f"(`forkspace agent start`) and is FORKSPACE_URL / platform_url right?"
                )
                retry_after = None
                safe = True
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as e:
                err = ForkspaceConnectionError(
                    f"the connection to {self.base_url} broke during {verb} {path} ({_why(e)})"
                )
                retry_after = None
                safe = idempotent
            except httpx.TimeoutException as e:
                raise ForkspaceTimeoutError(
                    f"{verb} {path} got no answer within the timeout ({type(e).__name__}); it may still be running "
                    f"on the agent: pass a longer timeout, or a timeout_ms to the run"
                ) from e
            else:
                if response.is_success:
                    return _json(response, method)
                err = error_from_wire(_json_or_text(response), response.status_code)
                retry_after = _retry_after(response)
                safe = idempotent
            if not (safe and is_transient(err) and attempt < self.retry.max_attempts):
                raise err
            await asyncio.sleep(self.retry.delay(attempt, retry_after))


def keepalive_options() -> list[tuple[int, int, int]]:
    """TCP keepalive probes: a run's request waits as long as the run, so a peer that vanished without a
    reset (a dead host, a dropped NAT entry) is noticed within about a minute instead of never; the call
    then fails as a broken connection and is retried under the same Idempotency-Key."""
    opts = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", 30), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 3)):
        if hasattr(socket, name):
            opts.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    return opts


def _why(e: Exception) -> str:
    return str(e) or type(e).__name__


def _query_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def _json(response: httpx.Response, method: str) -> Any:
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError as e:
        raise ProtocolMismatchError(
            f"{method}: the agent answered HTTP {response.status_code} with a body that is not JSON "
            f"({response.text[:200]!r}); is {response.url} a Forkspace agent?"
        ) from e


def _json_or_text(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import datetime

        when = parsedate_to_datetime(value)
        return max(0.0, (when - datetime.datetime.now(when.tzinfo)).total_seconds())
    except (TypeError, ValueError):
        return None


def quote_segment(value: str) -> str:
    return quote(value, safe="")


__all__ = ["DEFAULT_URL", "HttpTransport", "Transport", "default_url"]
