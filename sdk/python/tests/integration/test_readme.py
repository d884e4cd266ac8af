"""The README's Python SDK example runs as it is written (against the private stack)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from ..conftest import ROOT, SDK
from .conftest import StackInfo


def readme_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python SDK") :]
    m = re.search(r"```python\n(.*?)```", section, re.S)
    assert m, "the README's Python SDK section has no ```python block"
    return m.group(1)


def test_the_readme_example_runs(stack: StackInfo, tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(tmp_path, "example.py")
    with open(path, "w") as f:
        f.write(readme_example())
    env = {**os.environ, "FORKSPACE_URL": stack.url, "FORKSPACE_API_KEY": stack.key, "PYTHONPATH": str(SDK / "src")}
    r = subprocess.run([sys.executable, path], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "42\nstep 1\nstep 2\nlive: 1\nlive: 2\nlive: 3\n", r.stdout
