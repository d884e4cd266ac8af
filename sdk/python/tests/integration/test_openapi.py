"""The SDK's routes are the agent's: every one is in the live /v1/openapi.json with the same verb."""

from __future__ import annotations

import httpx

from forkspace._routes import ROUTES

from .conftest import StackInfo


async def test_routes_match_the_served_openapi(stack: StackInfo) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(stack.url + "/v1/openapi.json", headers={"authorization": f"Bearer {stack.key}"})
    assert r.status_code == 200
    paths = r.json()["paths"]
    for method, route in ROUTES.items():
        assert route.path in paths, f"{method}: {route.path} is not served"
        assert route.verb.lower() in paths[route.path], f"{method}: {route.verb} {route.path} is not served"
