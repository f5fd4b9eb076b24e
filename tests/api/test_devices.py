"""Devices: listing with the online filter, cursor pagination, 404 and 422 error shapes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.conftest import Seeder


def _assert_error(resp: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


async def _all_pages(client: httpx.AsyncClient, url: str, **params: Any) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        resp = await client.get(url, params=query)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


async def test_list_devices_paginates_without_dup_or_gap(client: httpx.AsyncClient, seed: Seeder) -> None:
    ids = [f"dev-{i:03d}" for i in range(23)]
    for i, device_id in enumerate(ids):
        seed.device(device_id, online=i % 3 == 0)
    pages = await _all_pages(client, "/api/v1/devices", limit=5)
    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    seen = [d["id"] for page in pages for d in page]
    assert seen == sorted(ids)

    online = [d["id"] for page in await _all_pages(client, "/api/v1/devices", online="true", limit=2) for d in page]
    assert online == [d for i, d in enumerate(ids) if i % 3 == 0]
    offline = [d["id"] for page in await _all_pages(client, "/api/v1/devices", online="false") for d in page]
    assert offline == [d for i, d in enumerate(ids) if i % 3 != 0]


async def test_pages_stay_consistent_while_devices_arrive(client: httpx.AsyncClient, seed: Seeder) -> None:
    for i in range(0, 20, 2):
        seed.device(f"d{i:02d}")
    first = (await client.get("/api/v1/devices", params={"limit": 4})).json()
    assert [d["id"] for d in first["items"]] == ["d00", "d02", "d04", "d06"]
    seed.device("d01")  # before the cursor: not repeated, not shown
    seed.device("d07")  # after the cursor: shown in order
    second = (await client.get("/api/v1/devices", params={"limit": 4, "cursor": first["next_cursor"]})).json()
    assert [d["id"] for d in second["items"]] == ["d07", "d08", "d10", "d12"]


async def test_device_detail(client: httpx.AsyncClient, seed: Seeder) -> None:
    seed.device("press-07", online=True, firmware="1.4.2", tags={"line": "A"})
    resp = await client.get("/api/v1/devices/press-07")
    assert resp.status_code == 200
    body = resp.json()
    assert body["id"] == "press-07"
    assert body["online"] is True
    assert body["firmware"] == "1.4.2"
    assert body["model"] == "vib-cls"
    assert body["tags"] == {"line": "A"}
    assert body["first_seen"].endswith("Z") or "+00:00" in body["first_seen"]


async def test_unknown_device_is_404_json(client: httpx.AsyncClient, migrated_db: str) -> None:
    err = _assert_error(await client.get("/api/v1/devices/nope"), 404, "not_found")
    assert "nope" in err["message"]
    _assert_error(await client.get("/api/v1/devices/nope/events"), 404, "not_found")


@pytest.mark.parametrize(
    ("raw_id", "fragment"),
    [
        ("a%2Fb", "/"),
        ("a+b", "+"),
        ("a%23b", "#"),
        ("a%00b", "NUL"),
        ("x" * 65, "64"),
    ],
)
async def test_invalid_device_id_is_422(
    client: httpx.AsyncClient, migrated_db: str, raw_id: str, fragment: str
) -> None:
    for suffix in ("", "/events"):
        err = _assert_error(await client.get(f"/api/v1/devices/{raw_id}{suffix}"), 422, "bad_device_id")
        assert err["message"].startswith("invalid device id"), err


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 1001},
        {"limit": "ten"},
        {"online": "maybe"},
    ],
)
async def test_bad_query_params_are_422(client: httpx.AsyncClient, migrated_db: str, params: dict[str, Any]) -> None:
    _assert_error(await client.get("/api/v1/devices", params=params), 422, "validation_error")


@pytest.mark.parametrize("cursor", ["garbage", "!!!", "eyJmb28iOjF9", "WyJlIiwxLDEsMV0"])
async def test_bad_cursor_is_422(client: httpx.AsyncClient, migrated_db: str, cursor: str) -> None:
    _assert_error(await client.get("/api/v1/devices", params={"cursor": cursor}), 422, "invalid_cursor")
