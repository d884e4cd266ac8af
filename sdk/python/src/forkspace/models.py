"""Results as dataclasses, one per shape of the protocol (``agent/src/protocol/*.ts``), in snake_case."""

from __future__ import annotations

import base64
import enum
from dataclasses import dataclass, field
from typing import Literal

from .errors import MergeConflict

Stream = Literal["stdout", "stderr"]
SandboxState = Literal["running", "paused", "stopped", "exited", "failed", "destroyed"]
Change = Literal["unchanged", "added", "modified", "deleted"]
MergeStrategy = Literal["fail", "ours", "theirs"]
Expiry = Literal["stop", "pause", "snapshot-then-stop", "destroy"]


class ExecutionMode(str, enum.Enum):
    """The seed's five execution modes."""

    EPHEMERAL = "ephemeral"
    CACHED = "cached"
    CHECKPOINTED = "checkpointed"
    BRANCHED = "branched"
    PERSISTENT = "persistent"


@dataclass(frozen=True, slots=True)
class CollectedFile:
    """A file asked for with ``collect=``; ``content`` is base64 (see :meth:`data`)."""

    path: str
    content: str
    size: int
    truncated: bool
    found: bool
    #: Why it was not collected when something other than "no such file" stopped it (a FIFO, socket,
    #: device, directory or symlink: only regular files are collected).
    error: str | None = None

    def data(self) -> bytes:
        return base64.b64decode(self.content)


@dataclass(frozen=True, slots=True)
class ExecResult:
    """How a command ended and what it printed. ``exit_code`` is 128+N when signal N ended it, 124 on
    timeout. A non-zero exit is a result, not an exception (check :attr:`ok`)."""

    exec_id: str
    sandbox_id: str
    environment: str
    exit_code: int
    signal: str | None
    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    duration_ms: float
    oom_killed: bool
    timed_out: bool
    pids_limit_hit: bool
    memory_peak_bytes: int | None
    cpu_time_ms: float | None
    #: checkpointed mode: the snapshot taken after the run (start the next run from it).
    checkpoint_id: str | None = None
    pooled: bool | None = None
    #: cached mode: True when this is a stored result and nothing ran.
    cached: bool | None = None
    files: list[CollectedFile] | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.oom_killed


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    argv: list[str]
    env: dict[str, str]
    cwd: str | None
    memory_bytes: int | None
    cpus: float | None
    pids: int | None
    #: The disk limit of its writable layer (the default filled in); None where none is enforced.
    disk_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class Policy:
    """What ends a sandbox: TTL and idle timeout (ms, None = none), what happens then, ownership."""

    ttl_ms: int | None
    idle_timeout_ms: int | None
    on_expiry: Expiry
    instance: bool
    detached: bool


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    id: str
    environment: str
    state: SandboxState
    #: The snapshot it was restored or branched from (its parent in the branch tree).
    origin_snapshot: str | None
    last_snapshot: str | None
    spec: SandboxSpec
    labels: dict[str, str]
    exit_code: int | None
    created_at_ms: float
    updated_at_ms: float
    policy: Policy


@dataclass(frozen=True, slots=True)
class Snapshot:
    id: str
    #: The sandbox it was taken from.
    sandbox_id: str
    parent_snapshot: str | None
    environment: str
    label: str | None
    memory_bytes: int
    fs_bytes: int
    created_at_ms: float


@dataclass(frozen=True, slots=True)
class SnapshotTimings:
    #: How long the sandbox's processes were frozen.
    pause_ms: float
    dump_ms: float
    fs_ms: float
    total_ms: float


@dataclass(frozen=True, slots=True)
class SnapshotCreated:
    snapshot: Snapshot
    timings: SnapshotTimings

    @property
    def id(self) -> str:
        return self.snapshot.id


@dataclass(frozen=True, slots=True)
class Restored:
    """A sandbox made from a snapshot (a restore, one branch, a start)."""

    sandbox_id: str
    snapshot_id: str
    #: Memory pages arrive on demand; the processes already run.
    lazy: bool
    time_to_running_ms: float
    pooled: bool | None = None


@dataclass(frozen=True, slots=True)
class BranchSet:
    snapshot_id: str
    branches: list[Restored]
    total_ms: float


@dataclass(frozen=True, slots=True)
class BranchRun:
    """Results of a command run in N branches of a snapshot (map or race), in input order."""

    snapshot_id: str
    strategy: Literal["map", "race"]
    results: list[ExecResult]
    #: race: the index of the first branch to exit 0, or None.
    winner: int | None
    branch_time_ms: float

    @property
    def winning_result(self) -> ExecResult | None:
        return None if self.winner is None else self.results[self.winner]


@dataclass(frozen=True, slots=True)
class DiffEntry:
    path: str
    a: Change
    b: Change
    conflict: bool


@dataclass(frozen=True, slots=True)
class Diff:
    a: str
    b: str
    #: Their nearest common snapshot (or the environment).
    base: str
    changes: list[DiffEntry]


@dataclass(frozen=True, slots=True)
class MergeResult:
    """A merge's outcome. With strategy ``fail`` and conflicts, ``aborted`` is True and nothing was applied
    (the SDK returns this as data when asked with ``raise_on_conflict=False``)."""

    from_: str
    into: str
    base: str
    strategy: MergeStrategy
    applied: list[str]
    conflicts: list[MergeConflict]
    aborted: bool
    #: Files written without the setuid/setgid bit they had in the source (a merge never makes them).
    set_id_stripped: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class TreeNode:
    kind: Literal["environment", "sandbox", "snapshot"]
    id: str
    children: list[TreeNode]
    sandbox: SandboxInfo | None = None
    snapshot: Snapshot | None = None


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    kind: Literal["file", "dir", "symlink", "other"]
    size: int
    mode: int
    mtime_ms: float


@dataclass(frozen=True, slots=True)
class PortForward:
    forward_id: str
    sandbox_id: str
    port: int
    host_address: str
    host_port: int
    open_connections: int


@dataclass(frozen=True, slots=True)
class Exposure:
    """A sandbox's HTTP service at a named URL on the agent; requests need the API key as a Bearer token."""

    name: str
    sandbox_id: str
    port: int
    url: str


@dataclass(frozen=True, slots=True)
class EnvironmentInfo:
    name: str
    aliases: list[str]
    description: str
    built: bool


@dataclass(frozen=True, slots=True)
class InstanceStopped:
    instance: SandboxInfo
    #: The snapshot taken on stop; resume continues from it.
    snapshot_id: str


@dataclass(frozen=True, slots=True)
class StateChange:
    sandbox_id: str
    state: str


@dataclass(frozen=True, slots=True)
class SshTarget:
    sandbox_id: str
    alias: str
    user: str
    host: str
    port: int
    identity_file: str


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """A piece of an execution's output. ``seq`` counts 1, 2, 3... across both streams."""

    exec_id: str
    stream: Stream
    data: str
    seq: int


@dataclass(frozen=True, slots=True)
class TerminalInfo:
    terminal_id: str
    sandbox_id: str


__all__ = [
    "BranchRun",
    "BranchSet",
    "Change",
    "CollectedFile",
    "Diff",
    "DiffEntry",
    "EnvironmentInfo",
    "ExecResult",
    "ExecutionMode",
    "Expiry",
    "Exposure",
    "FileEntry",
    "InstanceStopped",
    "MergeConflict",
    "MergeResult",
    "MergeStrategy",
    "OutputChunk",
    "Policy",
    "PortForward",
    "Restored",
    "SandboxInfo",
    "SandboxSpec",
    "SandboxState",
    "Snapshot",
    "SnapshotCreated",
    "SnapshotTimings",
    "SshTarget",
    "StateChange",
    "Stream",
    "TerminalInfo",
    "TreeNode",
]
