"""camelCase JSON <-> snake_case dataclasses; sizes, commands and run params."""

from __future__ import annotations

import pytest

from forkspace import ExecResult, MergeResult, ProtocolMismatchError, SandboxInfo, TreeNode
from forkspace._params import command_or_code, parse_size, run_params, Limits
from forkspace._wire import camel, from_wire

from .fakes import exec_result, sandbox_wire


def test_camel() -> None:
    assert camel("memory_peak_bytes") == "memoryPeakBytes"
    assert camel("from_") == "from"
    assert camel("id") == "id"


def test_nested_results_and_unknown_keys() -> None:
    r = from_wire(ExecResult, exec_result(stdout="hi\n", checkpointId="snap-1", newFieldFromANewerAgent=1,
                                          files=[{"path": "/a", "content": "aGk=", "size": 2, "truncated": False, "found": True}]))
    assert r.stdout == "hi\n" and r.checkpoint_id == "snap-1" and r.ok
    assert r.files is not None and r.files[0].data() == b"hi"
    info = from_wire(SandboxInfo, sandbox_wire())
    assert info.spec.argv == ["/bin/sh"] and info.policy.on_expiry == "snapshot-then-stop"
    tree = from_wire(TreeNode, {"kind": "environment", "id": "python", "children": [{"kind": "sandbox", "id": "s", "children": [], "sandbox": sandbox_wire("s")}]})
    assert tree.children[0].sandbox is not None and tree.children[0].sandbox.id == "s"
    m = from_wire(MergeResult, {"from": "b", "into": "a", "base": "s", "strategy": "fail", "applied": [], "aborted": True,
                                "conflicts": [{"path": "/x", "into": "modified", "from": "deleted", "reason": "r", "detail": "d"}]})
    assert m.from_ == "b" and m.conflicts[0].from_ == "deleted"


def test_missing_field_says_version() -> None:
    w = exec_result()
    del w["exitCode"]
    with pytest.raises(ProtocolMismatchError, match="exitCode"):
        from_wire(ExecResult, w)


def test_nonzero_exit_is_not_ok() -> None:
    assert not from_wire(ExecResult, exec_result(exitCode=1)).ok
    assert not from_wire(ExecResult, exec_result(timedOut=True)).ok


@pytest.mark.parametrize(("text", "n"), [("512M", 512 << 20), ("1G", 1 << 30), ("256MiB", 256 << 20), ("1.5k", 1536), (4096, 4096)])
def test_sizes(text: int | str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["lots", "12Q", "", -1, 0])
def test_bad_sizes(bad: int | str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_command_or_code() -> None:
    assert command_or_code("python train.py", None) == {"command": "python train.py"}
    assert command_or_code(["python3", "-c", "1"], None) == {"command": ["python3", "-c", "1"]}
    assert command_or_code(None, "print(1)") == {"code": "print(1)"}
    for args in [(None, None), ("x", "y"), ("  ", None), ([], None)]:
        with pytest.raises(ValueError):
            command_or_code(*args)


def test_run_params_camel_case_and_absent_fields() -> None:
    p = run_params("ls", None, mode="checkpointed", checkpoint="snapshot-123", limits=Limits.of("64M", 0.5), timeout_ms=5000,
                   files={"/a.txt": "hi", "/b.bin": b"\x00\x01"}, collect=["/out"])
    assert p == {
        "command": "ls", "mode": "checkpointed", "checkpointId": "snapshot-123",
        "limits": {"memoryBytes": 64 << 20, "cpus": 0.5}, "timeoutMs": 5000,
        "files": [{"path": "/a.txt", "content": "hi"}, {"path": "/b.bin", "content": "AAE=", "encoding": "base64"}],
        "collect": ["/out"],
    }
    with pytest.raises(ValueError, match="checkpointed"):
        run_params("ls", None, mode="ephemeral", checkpoint="x")
