"""The package is typed: mypy --strict (the settings of pyproject.toml) finds nothing, and py.typed ships."""

from __future__ import annotations

import subprocess
import sys

from ..conftest import SDK


def test_mypy_strict_is_clean() -> None:
    r = subprocess.run([sys.executable, "-m", "mypy", "--strict", "src/forkspace"], cwd=SDK, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout


def test_py_typed_marker() -> None:
    assert (SDK / "src/forkspace/py.typed").exists()
