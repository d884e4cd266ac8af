"""Shared by every test: the closing line scripts/test.sh reads ("python-sdk: N passed, N failed")."""

from __future__ import annotations

from pathlib import Path

import pytest

SDK = Path(__file__).resolve().parents[1]
ROOT = SDK.parents[1]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    stats = terminalreporter.stats
    passed = len([r for r in stats.get("passed", []) if getattr(r, "when", "call") == "call"])
    failed = len(stats.get("failed", [])) + len(stats.get("error", []))
    skipped = len(stats.get("skipped", []))
    line = f"python-sdk: {passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    terminalreporter.write_line(line)
