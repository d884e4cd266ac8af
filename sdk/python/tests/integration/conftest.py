"""A private agent + runtime for the integration tests (test/python/stack.ts, started once per session
and stopped at the end, even when tests fail; it must leave nothing behind), and clients of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from forkspace import FaaSPlatformClient

from ..conftest import ROOT

START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 90


@dataclass(frozen=True)
class StackInfo:
    url: str
    key: str
    admin_token: str
    data_dir: str
    log_dir: str


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack() -> Iterator[StackInfo]:
    given = os.environ.get("FORKSPACE_TEST_STACK")
    if given:
        # Someone else's stack (the scenario suite runs this driver against the agent its TS and CLI
        # drivers use): the same JSON line test/python/stack.ts prints; its owner stops it.
        w = json.loads(given)
        yield StackInfo(w["url"], w["key"], w["adminToken"], w["dataDir"], w["logDir"])
        return
    if os.geteuid() != 0:
        pytest.skip("integration tests need root for namespaces, mounts and cgroups; CI runs them as root")
    node = shutil.which("node")
    assert node, "node is not on PATH: run the suite through scripts/test-python-sdk.sh"
    assert (ROOT / "dist/agent.js").exists(), "dist/agent.js is missing: run scripts/setup.sh first"
    log = tempfile.NamedTemporaryFile(prefix="py-stack-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [node, "--import", "tsx", "test/python/stack.ts"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=log, text=True,
    )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(proc.stdout.readline() if proc.stdout else ""), daemon=True)
    reader.start()
    reader.join(START_TIMEOUT_S)
    try:
        if not line or not line[0].strip():
            proc.kill()
            raise RuntimeError(f"the stack did not start within {START_TIMEOUT_S} s:\n{_tail(log.name)}")
        w = json.loads(line[0])
        yield StackInfo(w["url"], w["key"], w["adminToken"], w["dataDir"], w["logDir"])
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            code = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            code = -9
        if code != 0:
            pytest.fail(f"the stack did not stop cleanly (exit {code}):\n{_tail(log.name)}")
        os.unlink(log.name)


def _tail(path: str, n: int = 40) -> str:
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])


@pytest.fixture
async def client(stack: StackInfo) -> AsyncIterator[FaaSPlatformClient]:
    async with FaaSPlatformClient(api_key=stack.key, platform_url=stack.url) as c:
        yield c


@pytest.fixture(scope="session")
def python39_snapshot_label() -> str:
    return "snapshot-123"
