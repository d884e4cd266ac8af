"""Errors: one class per protocol error code, in a tree rooted at :class:`ForkspaceError`.

The agent answers every failed request with ``{"error": {"code", "name", "message", "data"}}`` carrying a
protocol code (``agent/src/protocol/errors.ts``). :data:`ERROR_TABLE` is the one place a code becomes a
class; a unit test checks it against the protocol's table, so a new code cannot be forgotten here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ForkspaceError(Exception):
    """Anything that went wrong talking to Forkspace.

    ``code`` is the protocol code (``None`` when the failure happened before an answer, e.g. a refused
    connection), ``name`` its name in the protocol (``SandboxNotFound``), ``status`` the HTTP status of the
    answer, ``data`` the error's structured details.
    """

    code: int | None
    name: str
    status: int | None
    data: Any

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        name: str | None = None,
        status: int | None = None,
        data: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.name = name or type(self).__name__
        self.status = status
        self.data = data

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"

    @property
    def transient(self) -> bool:
        """Worth retrying as is: the agent or the network was briefly unavailable (the SDK already did,
        with backoff, before raising)."""
        from .retry import is_transient

        return is_transient(self)


# --- the client's side of the wire -------------------------------------------------------------------------


class ForkspaceConnectionError(ForkspaceError):
    """The agent could not be reached, or the connection broke before the answer (refused, reset, DNS),
    after the retries allowed. (The TS SDK's ConnectionError.)"""


class ForkspaceTimeoutError(ForkspaceError):
    """No answer within the request timeout; the request may or may not have run on the agent. (The TS
    SDK's TimeoutError.)"""


class ProtocolMismatchError(ForkspaceError):
    """The agent answered with something this SDK cannot read (another API version, or not Forkspace)."""


class TangleNotConfiguredError(ForkspaceError):
    """The Tangle flow was chosen (or required by ``verifiable``/``decentralized``/``economic_incentives``)
    but no Tangle client is configured in this SDK yet; nothing ran and nothing fell back to Direct."""


# --- answers of the agent ----------------------------------------------------------------------------------


class AuthenticationError(ForkspaceError):
    """HTTP 401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(ForkspaceError):
    """HTTP 403: the key is valid but may not do this."""


class RateLimitError(ForkspaceError):
    """HTTP 429: too many requests; retried with backoff, raised when retries run out."""


class UnavailableError(ForkspaceError):
    """The agent or its runtime is briefly unavailable (HTTP 503); retried with backoff, raised when the
    retries run out."""


class ServiceUnavailableError(UnavailableError):
    """HTTP 502/503/504 without a protocol code: the agent (or a proxy before it) is not serving now."""


class NotFoundError(ForkspaceError):
    """Something named in the request does not exist."""


class InvalidArgumentError(ForkspaceError):
    """The request itself is wrong (malformed, unknown fields, wrong types, values out of range); sending
    it again will fail again. The message names the field."""


class InvalidRequestError(InvalidArgumentError):
    """Not a valid request (e.g. a GET with a body, a stream route called without a WebSocket)."""


class ConflictError(ForkspaceError):
    """The request conflicts with the state of things: a sandbox in the wrong state, an id in use, a
    reused idempotency key, a merge with conflicts."""


class ParseError(InvalidArgumentError):
    """The agent could not parse the body as JSON."""


class MethodNotFoundError(NotFoundError):
    """No such method or route."""


class InvalidParamsError(InvalidArgumentError):
    """A parameter has a wrong type, an unknown name or a value out of range; the message names it."""


class PayloadTooLargeError(InvalidArgumentError):
    """The body exceeds the agent's size limit; send files in chunks (``files.upload`` does)."""


class IdempotencyKeyReusedError(ConflictError):
    """An Idempotency-Key was used before for a different request (the SDK makes a fresh key per call)."""


class VerbNotAllowedError(InvalidArgumentError):
    """The path exists but not with this HTTP verb; ``data["allow"]`` lists the verbs it takes."""


class UnsupportedMediaTypeError(InvalidArgumentError):
    """The body was not ``application/json``."""


class AmbiguousReferenceError(InvalidArgumentError):
    """A snapshot label names more than one snapshot; :attr:`candidates` lists them: give an id."""

    @property
    def candidates(self) -> list[Any]:
        found = self.data.get("candidates", []) if isinstance(self.data, Mapping) else []
        return list(found) if isinstance(found, list) else []


class InternalError(ForkspaceError):
    """A bug or an unexpected condition in the agent; its log has details."""


class ServerNotInitializedError(InternalError):
    """A request came before ``initialize`` (JSON-RPC connections only)."""


class RequestCancelledError(ForkspaceError):
    """The request was cancelled before it finished."""


class ShuttingDownError(UnavailableError):
    """The agent is shutting down and takes no new work; retried, then raised."""


class ConnectionClosedError(ForkspaceConnectionError):
    """The agent's connection closed before the answer; the request may or may not have run."""


class RuntimeUnavailableError(UnavailableError):
    """forkspace-rt is not running and could not be started; the message says why."""


class RuntimeFailedError(InternalError):
    """A kernel step failed in the runtime; ``data`` names the step, path and errno."""


class CheckpointFailedError(RuntimeFailedError):
    """CRIU failed to dump or restore; the message carries its log's reasons."""


class UnsupportedError(ForkspaceError):
    """This host cannot provide the feature; the message says what to install."""


class SandboxNotFoundError(NotFoundError):
    """No sandbox (or instance) with that id."""


class SnapshotNotFoundError(NotFoundError):
    """No snapshot with that id or label."""


class ExecNotFoundError(NotFoundError):
    """No running execution with that id."""


class SandboxFileNotFoundError(NotFoundError):
    """No file or directory at that path inside the sandbox or snapshot."""


class KeyNotFoundError(NotFoundError):
    """No API key with that id (``forkspace keys list`` shows them)."""


class CommandNotFoundError(ForkspaceError):
    """The command does not exist (or is not executable) inside the sandbox."""


class ForkspaceEnvironmentError(ForkspaceError):
    """Unknown environment, not built, or its build failed (the TS SDK's EnvironmentError; Python's own
    ``EnvironmentError`` is an alias of ``OSError``)."""


class EnvironmentUnknownError(ForkspaceEnvironmentError, InvalidArgumentError):
    """Unknown environment name; ``data["known"]`` lists the known ones."""


class EnvironmentNotBuiltError(ForkspaceEnvironmentError):
    """The environment exists but is not built; the agent builds it on first use."""


class EnvironmentBuildFailedError(ForkspaceEnvironmentError):
    """Building the environment failed; the message carries the build tool's last output."""


class ExecIdInUseError(ConflictError):
    """The exec id is already used by a running execution; choose another (or let the SDK choose)."""


class SandboxStateError(ConflictError):
    """The sandbox is in a state the request cannot act on; the message says which state it needs."""


@dataclass(frozen=True, slots=True)
class MergeConflict:
    """One file both sides changed incompatibly (``into``/``from_`` are unchanged/added/modified/deleted)."""

    path: str
    into: str
    from_: str
    reason: str
    detail: str

    @classmethod
    def from_wire(cls, w: Mapping[str, Any]) -> MergeConflict:
        return cls(
            path=str(w.get("path", "")),
            into=str(w.get("into", "")),
            from_=str(w.get("from", "")),
            reason=str(w.get("reason", "")),
            detail=str(w.get("detail", "")),
        )


class MergeConflictError(ConflictError):
    """A merge with strategy ``fail`` found conflicts and applied nothing; ``conflicts`` lists them with
    both sides. Merge again with ``strategy="ours"`` or ``"theirs"``, or resolve the files first."""

    conflicts: list[MergeConflict]

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        raw = self.data.get("conflicts", []) if isinstance(self.data, Mapping) else []
        self.conflicts = [MergeConflict.from_wire(c) for c in raw if isinstance(c, Mapping)]


#: The TS SDK's names for the same classes.
CheckpointError = CheckpointFailedError
ExecutionNotFoundError = ExecNotFoundError

# --- the one table -----------------------------------------------------------------------------------------

#: Protocol error name -> (code, class). Codes are those of ``agent/src/protocol/errors.ts``.
ERROR_TABLE: dict[str, tuple[int, type[ForkspaceError]]] = {
    "ParseError": (-32700, ParseError),
    "InvalidRequest": (-32600, InvalidRequestError),
    "MethodNotFound": (-32601, MethodNotFoundError),
    "InvalidParams": (-32602, InvalidParamsError),
    "InternalError": (-32603, InternalError),
    "RequestCancelled": (-32800, RequestCancelledError),
    "ServerNotInitialized": (-32801, ServerNotInitializedError),
    "PayloadTooLarge": (-32802, PayloadTooLargeError),
    "ShuttingDown": (-32803, ShuttingDownError),
    "ConnectionClosed": (-32804, ConnectionClosedError),
    "Unauthorized": (-32805, AuthenticationError),
    "Forbidden": (-32806, PermissionDeniedError),
    "IdempotencyKeyReused": (-32807, IdempotencyKeyReusedError),
    "VerbNotAllowed": (-32808, VerbNotAllowedError),
    "UnsupportedMediaType": (-32809, UnsupportedMediaTypeError),
    "RuntimeUnavailable": (-33000, RuntimeUnavailableError),
    "RuntimeFailed": (-33001, RuntimeFailedError),
    "EnvironmentUnknown": (-33002, EnvironmentUnknownError),
    "EnvironmentNotBuilt": (-33003, EnvironmentNotBuiltError),
    "EnvironmentBuildFailed": (-33004, EnvironmentBuildFailedError),
    "SandboxNotFound": (-33005, SandboxNotFoundError),
    "ExecNotFound": (-33006, ExecNotFoundError),
    "CommandNotFound": (-33007, CommandNotFoundError),
    "ExecIdInUse": (-33008, ExecIdInUseError),
    "SnapshotNotFound": (-33009, SnapshotNotFoundError),
    "SandboxState": (-33010, SandboxStateError),
    "CheckpointFailed": (-33011, CheckpointFailedError),
    "Unsupported": (-33012, UnsupportedError),
    "MergeConflict": (-33013, MergeConflictError),
    "FileNotFound": (-33014, SandboxFileNotFoundError),
    "AmbiguousReference": (-33015, AmbiguousReferenceError),
    "KeyNotFound": (-33016, KeyNotFoundError),
}

_BY_CODE: dict[int, type[ForkspaceError]] = {code: cls for code, cls in ERROR_TABLE.values()}
_NAME_BY_CODE: dict[int, str] = {code: name for name, (code, _) in ERROR_TABLE.items()}

#: For answers without a protocol code (a proxy or gateway in front of the agent): by HTTP status.
_BY_STATUS: dict[int, type[ForkspaceError]] = {
    400: InvalidArgumentError,
    409: ConflictError,
    422: InvalidArgumentError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    413: PayloadTooLargeError,
    429: RateLimitError,
    502: ServiceUnavailableError,
    503: ServiceUnavailableError,
    504: ServiceUnavailableError,
}


def error_class(code: int | None, status: int | None = None) -> type[ForkspaceError]:
    """The class for a protocol code; without a known code (a proxy's answer), by the HTTP status."""
    if code is not None and code in _BY_CODE:
        return _BY_CODE[code]
    if status is not None and status in _BY_STATUS:
        return _BY_STATUS[status]
    if status is not None and status >= 500:
        return InternalError
    return ForkspaceError


def error_from_wire(body: Any, status: int | None = None) -> ForkspaceError:
    """Builds the error for an agent answer ``{"error": {...}}`` (or a JSON-RPC error object)."""
    err: Any = body.get("error", body) if isinstance(body, Mapping) else None
    if not isinstance(err, Mapping):
        text = body if isinstance(body, str) else ""
        msg = f"the agent answered HTTP {status} without a Forkspace error body" + (f": {text[:300]}" if text else "")
        return error_class(None, status)(msg, status=status)
    raw_code = err.get("code")
    code = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else None
    name = err.get("name") if isinstance(err.get("name"), str) else (_NAME_BY_CODE.get(code) if code is not None else None)
    message = str(err.get("message") or f"the agent answered HTTP {status} (code {code})")
    return error_class(code, status)(message, code=code, name=name, status=status, data=err.get("data"))


__all__ = [
    "ERROR_TABLE",
    "AuthenticationError",
    "CheckpointError",
    "CheckpointFailedError",
    "CommandNotFoundError",
    "ConflictError",
    "ConnectionClosedError",
    "EnvironmentBuildFailedError",
    "ForkspaceEnvironmentError",
    "EnvironmentNotBuiltError",
    "EnvironmentUnknownError",
    "ExecIdInUseError",
    "ExecNotFoundError",
    "ExecutionNotFoundError",
    "ForkspaceConnectionError",
    "ForkspaceError",
    "ForkspaceTimeoutError",
    "AmbiguousReferenceError",
    "IdempotencyKeyReusedError",
    "UnsupportedMediaTypeError",
    "VerbNotAllowedError",
    "InternalError",
    "InvalidArgumentError",
    "InvalidParamsError",
    "InvalidRequestError",
    "KeyNotFoundError",
    "MergeConflict",
    "MergeConflictError",
    "MethodNotFoundError",
    "NotFoundError",
    "ParseError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "ProtocolMismatchError",
    "RateLimitError",
    "RequestCancelledError",
    "RuntimeFailedError",
    "RuntimeUnavailableError",
    "SandboxFileNotFoundError",
    "SandboxNotFoundError",
    "SandboxStateError",
    "ServerNotInitializedError",
    "ServiceUnavailableError",
    "ShuttingDownError",
    "SnapshotNotFoundError",
    "TangleNotConfiguredError",
    "UnavailableError",
    "UnsupportedError",
    "error_class",
    "error_from_wire",
]
