"""Protocol method -> REST route of the Direct HTTP API.

The agent derives its routes from the protocol's method table (``agent/src/protocol/``) and publishes them
in ``/v1/openapi.json``; this is the SDK's copy, checked against that document by a test, so the two
cannot drift apart unnoticed. ``{name}`` segments take the param of that name out of the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .errors import MethodNotFoundError

_SEGMENT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True, slots=True)
class Route:
    verb: str
    path: str

    @property
    def path_params(self) -> list[str]:
        return _SEGMENT.findall(self.path)

    def render(self, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The concrete path and the params left for the body or query."""
        rest = dict(params)

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in rest or rest[name] is None:
                raise ValueError(f"{self.verb} {self.path} needs `{name}`")
            return quote(str(rest.pop(name)), safe="")

        return _SEGMENT.sub(fill, self.path), rest


ROUTES: dict[str, Route] = {
    "agent/status": Route("GET", "/v1/agent/status"),
    "env/list": Route("GET", "/v1/environments"),
    "env/build": Route("POST", "/v1/environments/{name}/build"),
    "exec/run": Route("POST", "/v1/exec/run"),
    "exec/branch": Route("POST", "/v1/exec/branch"),
    "sandbox/create": Route("POST", "/v1/sandboxes"),
    "sandbox/list": Route("GET", "/v1/sandboxes"),
    "sandbox/get": Route("GET", "/v1/sandboxes/{sandboxId}"),
    "sandbox/exec": Route("POST", "/v1/sandboxes/{sandboxId}/exec"),
    "sandbox/pause": Route("POST", "/v1/sandboxes/{sandboxId}/pause"),
    "sandbox/resume": Route("POST", "/v1/sandboxes/{sandboxId}/resume"),
    "sandbox/stop": Route("POST", "/v1/sandboxes/{sandboxId}/stop"),
    "sandbox/start": Route("POST", "/v1/sandboxes/{sandboxId}/start"),
    "sandbox/destroy": Route("DELETE", "/v1/sandboxes/{sandboxId}"),
    "sandbox/policy": Route("POST", "/v1/sandboxes/{sandboxId}/policy"),
    "instance/start": Route("POST", "/v1/instances"),
    "instance/list": Route("GET", "/v1/instances"),
    "instance/get": Route("GET", "/v1/instances/{instanceId}"),
    "instance/stop": Route("POST", "/v1/instances/{instanceId}/stop"),
    "instance/pause": Route("POST", "/v1/instances/{instanceId}/pause"),
    "instance/resume": Route("POST", "/v1/instances/{instanceId}/resume"),
    "instance/destroy": Route("DELETE", "/v1/instances/{instanceId}"),
    "snapshot/create": Route("POST", "/v1/sandboxes/{sandboxId}/snapshots"),
    "snapshot/list": Route("GET", "/v1/snapshots"),
    "snapshot/get": Route("GET", "/v1/snapshots/{snapshotId}"),
    "snapshot/restore": Route("POST", "/v1/snapshots/{snapshotId}/restore"),
    "snapshot/branch": Route("POST", "/v1/snapshots/{snapshotId}/branch"),
    "snapshot/delete": Route("DELETE", "/v1/snapshots/{snapshotId}"),
    "branch/diff": Route("POST", "/v1/branches/diff"),
    "branch/merge": Route("POST", "/v1/branches/merge"),
    "tree/get": Route("GET", "/v1/tree"),
    "files/write": Route("POST", "/v1/files/write"),
    "files/read": Route("POST", "/v1/files/read"),
    "files/list": Route("POST", "/v1/files/list"),
    "files/remove": Route("POST", "/v1/files/remove"),
    "terminal/open": Route("POST", "/v1/terminals"),
    "terminal/input": Route("POST", "/v1/terminals/{terminalId}/input"),
    "terminal/resize": Route("POST", "/v1/terminals/{terminalId}/resize"),
    "terminal/close": Route("DELETE", "/v1/terminals/{terminalId}"),
    "port/forward": Route("POST", "/v1/ports"),
    "port/list": Route("GET", "/v1/ports"),
    "port/unforward": Route("DELETE", "/v1/ports/{forwardId}"),
    "http/expose": Route("POST", "/v1/http"),
    "http/list": Route("GET", "/v1/http"),
    "http/hide": Route("DELETE", "/v1/http/{name}"),
    "ssh/prepare": Route("POST", "/v1/sandboxes/{sandboxId}/ssh"),
    "pool/configure": Route("POST", "/v1/pools"),
    "pool/list": Route("GET", "/v1/pools"),
    "pool/snapshot": Route("POST", "/v1/pools/snapshots"),
}


def route_for(method: str) -> Route:
    try:
        return ROUTES[method]
    except KeyError:
        raise MethodNotFoundError(f"this SDK has no REST route for `{method}` (see forkspace._routes.ROUTES)") from None
