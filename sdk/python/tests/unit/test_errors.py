"""The error table mirrors the protocol's codes, and answers become the right classes."""

from __future__ import annotations

import re

import pytest

import forkspace
from forkspace import errors as E
from forkspace.errors import ERROR_TABLE, error_from_wire

from ..conftest import ROOT


def protocol_codes() -> dict[str, int]:
    text = (ROOT / "agent/src/protocol/errors.ts").read_text()
    block = text[text.index("export const ErrorCodes = {") : text.index("} as const")]
    return {name: int(code) for name, code in re.findall(r"^\s+(\w+): (-\d+),", block, re.M)}


def test_every_protocol_code_has_a_class_with_the_same_number() -> None:
    codes = protocol_codes()
    assert len(codes) >= 30, "parsing errors.ts found too few codes"
    assert {name: code for name, (code, _) in ERROR_TABLE.items()} == codes


def test_every_class_is_exported_and_a_forkspace_error() -> None:
    for name, (_, cls) in ERROR_TABLE.items():
        assert issubclass(cls, forkspace.ForkspaceError), name
        assert getattr(forkspace, cls.__name__) is cls, f"{cls.__name__} is not exported from forkspace"


def test_codes_map_through_the_table() -> None:
    e = error_from_wire(E_body(-33005, "SandboxNotFound", "no sandbox sbx-x"), 404)
    assert type(e) is E.SandboxNotFoundError
    assert isinstance(e, E.NotFoundError) and e.code == -33005 and e.status == 404 and e.name == "SandboxNotFound"
    assert str(e) == "no sandbox sbx-x"
    assert type(error_from_wire(E_body(-32805, "Unauthorized", "missing key"), 401)) is E.AuthenticationError
    assert type(error_from_wire(E_body(-32602, "InvalidParams", "bad"), 400)) is E.InvalidParamsError
    assert type(error_from_wire(E_body(-33009, "SnapshotNotFound", "x"), 404)) is E.SnapshotNotFoundError
    assert type(error_from_wire(E_body(-33015, "AmbiguousReference", "x"), 400)) is E.AmbiguousReferenceError


def test_merge_conflicts_are_data_on_the_error() -> None:
    data = {
        "from": "sbx-b", "into": "sbx-a", "base": "snap-1", "strategy": "fail", "applied": [], "aborted": True,
        "conflicts": [{"path": "/root/f", "into": "modified", "from": "modified", "reason": "both changed line 1", "detail": "<<<<<<<"}],
    }
    e = error_from_wire(E_body(-33013, "MergeConflict", "1 conflict", data), 409)
    assert isinstance(e, E.MergeConflictError)
    assert e.conflicts == [E.MergeConflict("/root/f", "modified", "modified", "both changed line 1", "<<<<<<<")]


@pytest.mark.parametrize(
    ("status", "cls"),
    [(401, E.AuthenticationError), (403, E.PermissionDeniedError), (404, E.NotFoundError), (429, E.RateLimitError),
     (503, E.ServiceUnavailableError), (502, E.ServiceUnavailableError), (500, E.InternalError), (418, E.ForkspaceError)],
)
def test_answers_without_a_code_map_by_status(status: int, cls: type[E.ForkspaceError]) -> None:
    e = error_from_wire("<html>gateway</html>", status)
    assert type(e) is cls
    assert f"HTTP {status}" in str(e) and "gateway" in str(e)


def test_an_unknown_code_keeps_its_number() -> None:
    e = error_from_wire(E_body(-33999, "SomethingNew", "new"), 400)
    assert type(e) is E.InvalidArgumentError and e.code == -33999 and e.name == "SomethingNew"


def E_body(code: int, name: str, message: str, data: object = None) -> dict[str, object]:
    err: dict[str, object] = {"code": code, "name": name, "message": message}
    if data is not None:
        err["data"] = data
    return {"error": err}


def test_the_tree_mirrors_the_ts_sdk() -> None:
    assert issubclass(E.MergeConflictError, E.ConflictError) and issubclass(E.SandboxStateError, E.ConflictError)
    assert issubclass(E.InvalidParamsError, E.InvalidArgumentError) and issubclass(E.AmbiguousReferenceError, E.InvalidArgumentError)
    assert issubclass(E.ShuttingDownError, E.UnavailableError) and issubclass(E.RuntimeUnavailableError, E.UnavailableError)
    assert issubclass(E.ConnectionClosedError, E.ForkspaceConnectionError)
    assert E.CheckpointError is E.CheckpointFailedError and E.ExecutionNotFoundError is E.ExecNotFoundError
    assert E.ShuttingDownError("x").transient and E.ForkspaceConnectionError("x").transient
    assert not E.InvalidParamsError("x").transient and not E.SandboxNotFoundError("x").transient
