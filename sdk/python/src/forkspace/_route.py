"""A REST route of the Direct HTTP API (the table itself is generated: ``_routes.py``)."""

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
    #: Only the agent's own token may call it (key management, stopping the agent).
    admin: bool = False
    #: A WebSocket stream, not a request.
    stream: bool = False

    @property
    def path_params(self) -> list[str]:
        return _SEGMENT.findall(self.path)

    def render(self, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The concrete path (``{name}`` segments filled from ``params``) and the params left over, for the
        query string (GET, DELETE) or the JSON body (the others)."""
        rest = dict(params)

        def fill(m: re.Match[str]) -> str:
            name = m.group(1)
            value = rest.pop(name, None)
            if value is None or value == "":
                raise ValueError(f"{self.verb} {self.path} needs `{name}`")
            return quote(str(value), safe="")

        return _SEGMENT.sub(fill, self.path), rest


def route_for(method: str) -> Route:
    from ._routes import ROUTES

    route = ROUTES.get(method)
    if route is None:
        raise MethodNotFoundError(f"this SDK has no REST route for `{method}` (see forkspace._routes.ROUTES)")
    return route
