"""The SDK's route table is the protocol's (generated), and routes render paths and leftovers."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from forkspace._route import Route, route_for
from forkspace._routes import ROUTES
from forkspace.errors import MethodNotFoundError

from ..conftest import ROOT


def test_generated_routes_match_the_protocol() -> None:
    node = shutil.which("node")
    assert node, "node is not on PATH: run through scripts/test-python-sdk.sh (it puts Node >= 22 there)"
    r = subprocess.run([node, "--import", "tsx", "sdk/python/tools/gen-routes.ts", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr + r.stdout


def test_every_method_the_sdk_calls_has_a_route() -> None:
    used = set()
    for path in (ROOT / "sdk/python/src/forkspace").glob("*.py"):
        import re

        used |= set(re.findall(r'"((?:exec|sandbox|snapshot|instance|branch|tree|files|terminal|port|http|env|pool|key|agent|ssh)/[a-z]+)"', path.read_text()))
    assert used, "found no method names in the SDK's sources"
    missing = sorted(m for m in used if m not in ROUTES)
    assert not missing, f"methods without a REST route: {missing}"


def test_render_fills_and_quotes_path_params() -> None:
    path, rest = Route("POST", "/v1/sandboxes/{sandboxId}/exec").render({"sandboxId": "sbx 1/x", "command": "ls"})
    assert path == "/v1/sandboxes/sbx%201%2Fx/exec" and rest == {"command": "ls"}
    with pytest.raises(ValueError, match="sandboxId"):
        Route("GET", "/v1/sandboxes/{sandboxId}").render({})


def test_unknown_method() -> None:
    with pytest.raises(MethodNotFoundError):
        route_for("nope/never")
