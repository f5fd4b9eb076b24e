"""Cohorts: saved tag selectors, resolved to devices by SQL; device lists filtered by a selector."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from tests.api.conftest import Seeder, bearer


@pytest.fixture
async def api(app: FastAPI, keys: dict[str, str], seed: Seeder) -> httpx.AsyncClient:
    seed.device("a1", tags={"site": "plant-a", "line": "1"})
    seed.device("a2", tags={"site": "plant-a", "line": 2})
    seed.device("a3", tags={"site": "plant-a", "line": "3", "retired": True})
    seed.device("b1", tags={"site": "plant-b", "line": "1"})
    seed.device("n1", tags={})
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(keys["write"])
        ) as c:
            yield c  # type: ignore[misc]


async def _ids(api: httpx.AsyncClient, path: str, **params: str) -> list[str]:
    r = await api.get(path, params=params)
    assert r.status_code == 200, r.text
    return [d["id"] for d in r.json()["items"]]


async def test_cohort_resolves_to_its_devices(api: httpx.AsyncClient, seed: Seeder) -> None:
    r = await api.post("/api/v1/cohorts", json={"name": "canary", "query": "site=plant-a AND line in (1,2)"})
    assert r.status_code == 201, r.text
    assert r.json()["selector"]["all"][1] == {"key": "line", "op": "in", "values": ["1", "2"]}
    assert await _ids(api, "/api/v1/cohorts/canary/devices") == ["a1", "a2"]
    # resolved at query time: a device tagged later joins
    seed.device("a4", tags={"site": "plant-a", "line": "1"})
    assert await _ids(api, "/api/v1/cohorts/canary/devices") == ["a1", "a2", "a4"]
    # decommissioned devices leave the cohort
    seed.conn.execute("UPDATE devices SET decommissioned_at = now() WHERE id = 'a1'")
    assert await _ids(api, "/api/v1/cohorts/canary/devices") == ["a2", "a4"]
    assert await _ids(api, "/api/v1/cohorts/canary/devices", include_decommissioned="true") == ["a1", "a2", "a4"]

    r = await api.put("/api/v1/cohorts/canary", json={"query": "site = plant-a and not has retired"})
    assert r.status_code == 200
    assert r.json()["query"] == "site=plant-a AND not has retired"
    assert await _ids(api, "/api/v1/cohorts/canary/devices") == ["a2", "a4"]
    assert [c["name"] for c in (await api.get("/api/v1/cohorts")).json()["items"]] == ["canary"]
    assert (await api.post("/api/v1/cohorts", json={"name": "canary", "query": "has site"})).status_code == 409
    assert (await api.delete("/api/v1/cohorts/canary")).status_code == 204
    assert (await api.get("/api/v1/cohorts/canary")).status_code == 404
    assert (await api.get("/api/v1/cohorts/canary/devices")).status_code == 404


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("site=plant-a", ["a1", "a2", "a3"]),
        ("site!=plant-a", ["b1", "n1"]),
        ("line not in (1, 3)", ["a2", "n1"]),
        ("has retired", ["a3"]),
        ("retired=true", ["a3"]),
        ('site="plant-b" AND line=1', ["b1"]),
        ("", ["a1", "a2", "a3", "b1", "n1"]),
    ],
)
async def test_device_list_filtered_by_selector(api: httpx.AsyncClient, selector: str, expected: list[str]) -> None:
    assert await _ids(api, "/api/v1/devices", selector=selector) == expected


@pytest.mark.parametrize(
    "query", ["site=", "site plant-a", "site in 1,2", "(site=a)", "site=a OR site=b", "site=a AND", "1bad=x", "a=b;c"]
)
async def test_bad_selectors_get_422_with_a_message(api: httpx.AsyncClient, query: str) -> None:
    r = await api.post("/api/v1/cohorts", json={"name": "x", "query": query})
    assert r.status_code == 422, query
    assert r.json()["error"]["code"] == "invalid_selector"
    r = await api.get("/api/v1/devices", params={"selector": query})
    assert r.status_code == 422
