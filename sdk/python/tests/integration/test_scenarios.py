"""The shared scenario suite (test/scenarios/direct.json, format in its README.md) through the Python SDK,
against the same kind of real agent the TypeScript SDK's and the CLI's drivers use. Every op is
implemented; an op this driver cannot express would be a failure, not a skip."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from forkspace import FaaSPlatformClient, ForkspaceError, ExecResult

from ..conftest import ROOT

SCENARIOS = ROOT / "test/scenarios/direct.json"
OPS = ("run", "sandbox", "exec", "snapshot", "restore", "branch", "diff", "merge", "write", "read", "destroy", "deleteSnapshot")
TOKEN = "py"

Outcome = dict[str, Any]


class StepError(Exception):
    def __init__(self, message: str, name: str | None) -> None:
        super().__init__(message)
        self.error_name = name


def load() -> list[dict[str, Any]]:
    assert SCENARIOS.exists(), f"{SCENARIOS} is missing: the scenario suite comes with the Direct HTTP API work"
    data = json.loads(SCENARIOS.read_text())
    assert data["format"] == "forkspace-scenarios/1"
    for s in data["scenarios"]:
        for step in s["steps"]:
            assert step["op"] in OPS, f"{s['name']}: unknown op {step['op']} (this driver must implement every op)"
    return list(data["scenarios"])


def driver(client: FaaSPlatformClient, made: list[str]) -> dict[str, Callable[[dict[str, Any]], Awaitable[Outcome]]]:
    """The ops; ``made`` collects the sandboxes they create, so a scenario that fails half-way still
    destroys them."""

    def keep(sandbox_id: str) -> str:
        made.append(sandbox_id)
        return sandbox_id

    def result(r: ExecResult) -> Outcome:
        return {"exitCode": r.exit_code, "stdout": r.stdout, "stderr": r.stderr, "cached": r.cached, "checkpointId": r.checkpoint_id}

    async def run(a: dict[str, Any]) -> Outcome:
        return result(await client.execute(a["command"], mode=a.get("mode", "ephemeral"), environment=a.get("environment"), checkpoint=a.get("checkpoint")))

    async def sandbox(a: dict[str, Any]) -> Outcome:
        return {"bind": keep((await client.create_sandbox(a["environment"])).id)}

    async def exec_(a: dict[str, Any]) -> Outcome:
        return result(await client.execute_persistent(a["sandbox"], a["command"]))

    async def snapshot(a: dict[str, Any]) -> Outcome:
        sbx = await client.sandboxes.get(a["sandbox"])
        return {"bind": (await sbx.snapshot(a.get("label"))).id}

    async def restore(a: dict[str, Any]) -> Outcome:
        return {"bind": keep((await client.snapshots.restore(a["snapshot"])).id)}

    async def branch(a: dict[str, Any]) -> Outcome:
        return {"bind": [keep(s.id) for s in await client.snapshots.branch(a["snapshot"], a["count"])]}

    async def diff(a: dict[str, Any]) -> Outcome:
        d = await client.branches.diff(a["a"], a["b"])
        return {"changes": [{"path": c.path, "a": c.a, "b": c.b} for c in d.changes]}

    async def merge(a: dict[str, Any]) -> Outcome:
        return {"applied": (await client.branches.merge(a["from"], a["into"], a.get("strategy", "fail"))).applied}

    async def write(a: dict[str, Any]) -> Outcome:
        await client.files.write(a["sandbox"], a["path"], a["content"])
        return {}

    async def read(a: dict[str, Any]) -> Outcome:
        return {"content": await client.files.read_text(a["id"], a["path"])}

    async def destroy(a: dict[str, Any]) -> Outcome:
        await client.sandboxes.destroy(a["sandbox"], missing_ok=False)
        return {}

    async def delete_snapshot(a: dict[str, Any]) -> Outcome:
        await client.snapshots.delete(a["snapshot"], missing_ok=False)
        return {}

    ops = {"run": run, "sandbox": sandbox, "exec": exec_, "snapshot": snapshot, "restore": restore, "branch": branch, "diff": diff,
           "merge": merge, "write": write, "read": read, "destroy": destroy, "deleteSnapshot": delete_snapshot}

    def wrapped(f: Callable[[dict[str, Any]], Awaitable[Outcome]]) -> Callable[[dict[str, Any]], Awaitable[Outcome]]:
        async def call(a: dict[str, Any]) -> Outcome:
            try:
                return await f(a)
            except ForkspaceError as e:
                raise StepError(e.message, e.name) from e

        return call

    assert set(ops) == set(OPS)
    return {k: wrapped(f) for k, f in ops.items()}


async def run_scenario(scenario: dict[str, Any], ops: dict[str, Callable[[dict[str, Any]], Awaitable[Outcome]]]) -> None:
    bound: dict[str, Any] = {}

    def resolve(v: Any) -> Any:
        if isinstance(v, str):
            s = v.replace("{run}", TOKEN)
            m = re.fullmatch(r"\$([A-Za-z][\w-]*)(?:\.(\d+))?", s)
            if not m:
                return s
            assert m.group(1) in bound, f"{scenario['name']}: ${m.group(1)} is not bound by an earlier step"
            b = bound[m.group(1)]
            if m.group(2) is None:
                return b
            assert isinstance(b, list), f"${m.group(1)} is not a list"
            return b[int(m.group(2))]
        if isinstance(v, list):
            return [resolve(x) for x in v]
        if isinstance(v, dict):
            return {k: resolve(x) for k, x in v.items()}
        return v

    for i, step in enumerate(scenario["steps"], start=1):
        args = resolve({k: v for k, v in step.items() if k not in ("op", "as", "expect")})
        want = resolve(step.get("expect", {}))
        where = f"{scenario['name']}, step {i} ({step['op']} {json.dumps(args)})"
        try:
            out = await ops[step["op"]](args)
        except StepError as e:
            assert "error" in want, f"{where} failed: {e}"
            assert e.error_name == want["error"]["name"], f"{where}: error {e.error_name}: {e}"
            assert want["error"]["message"] in str(e), f'{where}: the message "{e}" lacks "{want["error"]["message"]}"'
            continue
        assert "error" not in want, f"{where}: succeeded, but should fail with {want['error']['name']}"
        for k in ("exitCode", "stdout", "stderr", "content"):
            if k in want:
                assert out.get(k) == want[k], f"{where}: {k} is {out.get(k)!r}, not {want[k]!r}"
        if "cached" in want:
            assert (out.get("cached") or False) == want["cached"], f"{where}: cached"
        if want.get("checkpoint"):
            assert re.fullmatch(r"snap-[0-9a-f]+", out.get("checkpointId") or ""), f"{where}: no new checkpoint"
        if "applied" in want:
            assert sorted(out.get("applied") or []) == sorted(want["applied"]), f"{where}: applied {out.get('applied')}"
        if "changes" in want:
            assert sorted(out.get("changes") or [], key=lambda c: c["path"]) == sorted(want["changes"], key=lambda c: c["path"]), f"{where}: changes {out.get('changes')}"
        if "as" in step:
            b = out.get("bind", out.get("checkpointId"))
            assert b is not None, f"{where}: nothing to bind as {step['as']}"
            bound[step["as"]] = b


SCENARIO_LIST = load() if SCENARIOS.exists() else [{"name": "direct.json is missing", "steps": []}]


@pytest.mark.parametrize("scenario", SCENARIO_LIST, ids=[s["name"] for s in SCENARIO_LIST])
async def test_scenario(client: FaaSPlatformClient, scenario: dict[str, Any]) -> None:
    load()  # fails, rather than skips, when the suite file is missing or names an op this driver lacks
    made: list[str] = []
    try:
        await run_scenario(scenario, driver(client, made))
    finally:
        await client.sandboxes.destroy_many(made)
