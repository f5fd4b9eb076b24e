"""Provisioning over REST: one device, a CSV (all or none, row-level errors), tags, lifecycle, credentials."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from tests.api.conftest import Seeder, bearer
from tinyfleet.fleet.passwords import verify_mosquitto_hash


@pytest.fixture
async def prov(app: FastAPI, keys: dict[str, str]) -> httpx.AsyncClient:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(keys["admin"])
        ) as c:
            yield c  # type: ignore[misc]


def _hashes(url: str, device_id: str) -> list[tuple[str, bool]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT password_hash, revoked_at IS NULL FROM device_credentials WHERE device_id = %s ORDER BY id",
            (device_id,),
        ).fetchall()
    return [(str(h), bool(active)) for h, active in rows]


async def test_provision_one_returns_the_password_once_and_stores_its_mosquitto_hash(
    prov: httpx.AsyncClient, migrated_db: str
) -> None:
    r = await prov.post("/api/v1/devices", json={"id": "press-07", "tags": {"site": "plant-a", "line": 2}})
    assert r.status_code == 201, r.text
    body = r.json()
    password = body["credentials"]["password"]
    assert body["credentials"]["username"] == "press-07"
    assert len(password) >= 20
    assert body["device"]["tags"] == {"site": "plant-a", "line": 2}
    assert body["device"]["enabled"] is True
    assert body["device"]["provisioned_at"] is not None
    assert body["broker_synced"] is None  # no broker files configured in these tests
    ((stored, active),) = _hashes(migrated_db, "press-07")
    assert active
    assert stored.startswith("$7$101$")
    assert verify_mosquitto_hash(password, stored)
    assert password not in (await prov.get("/api/v1/devices/press-07")).text
    assert password not in (await prov.get("/api/v1/devices/press-07/credentials")).text

    again = await prov.post("/api/v1/devices", json={"id": "press-07"})
    assert again.status_code == 409
    assert "already provisioned" in again.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"id": "bad/id"},
        {"id": "-starts-with-dash"},
        {"id": "x" * 65},
        {"id": "ok", "tags": {"bad key": "v"}},
        {"id": "ok", "tags": {"site": "x" * 257}},
        {"id": "ok", "tags": {"site": {"nested": 1}}},
        {"id": "ok", "extra": 1},
    ],
)
async def test_invalid_provisioning_requests_get_422_and_store_nothing(
    prov: httpx.AsyncClient, migrated_db: str, body: dict[str, object]
) -> None:
    r = await prov.post("/api/v1/devices", json=body)
    assert r.status_code == 422, r.text
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)


async def test_a_device_seen_before_provisioning_is_adopted_with_its_history(
    prov: httpx.AsyncClient, seed: Seeder
) -> None:
    seed.device("press-03", tags={"machine": "p3"})
    r = await prov.post("/api/v1/devices", json={"id": "press-03", "tags": {"site": "b"}})
    assert r.status_code == 201
    assert r.json()["device"]["tags"] == {"machine": "p3", "site": "b"}
    assert r.json()["device"]["model"] == "vib-cls"


CSV_OK = "device_id,site,line,machine\npress-01,plant-a,1,press\npress-02,plant-a,2,\r\nsensor-9,plant-b,1,fan\n"


async def test_bulk_csv_provisions_all_rows(prov: httpx.AsyncClient, migrated_db: str) -> None:
    r = await prov.post("/api/v1/devices/bulk", content=CSV_OK.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["count"] == 3
    by_id = {i["id"]: i for i in body["items"]}
    assert by_id["press-02"]["tags"] == {"site": "plant-a", "line": "2"}  # the empty cell sets no tag
    for device_id, item in by_id.items():
        ((stored, _),) = _hashes(migrated_db, device_id)
        assert verify_mosquitto_hash(item["password"], stored)
    assert len({i["password"] for i in body["items"]}) == 3


@pytest.mark.parametrize(
    ("csv_text", "expected_lines"),
    [
        ("device_id,site\ngood-1,a\nbad/id,a\ngood-2,a\ngood-1,b\n", [3, 5]),  # bad id, duplicate
        ("device_id,site\ngood-1,a,extra\n", [2]),  # cell count
        ("device_id,bad column\ngood-1,a\n", [1]),  # header
    ],
)
async def test_bulk_csv_with_bad_rows_provisions_nothing_and_lists_every_bad_row(
    prov: httpx.AsyncClient, migrated_db: str, csv_text: str, expected_lines: list[int]
) -> None:
    r = await prov.post("/api/v1/devices/bulk", content=csv_text.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "invalid_device"
    assert [d["line"] for d in err["details"]] == expected_lines
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM devices").fetchone() == (0,)


async def test_bulk_csv_conflicting_with_the_database_is_refused_whole(
    prov: httpx.AsyncClient, migrated_db: str
) -> None:
    assert (await prov.post("/api/v1/devices", json={"id": "press-02"})).status_code == 201
    r = await prov.post("/api/v1/devices/bulk", content=CSV_OK.encode(), headers={"Content-Type": "text/csv"})
    assert r.status_code == 409
    assert [(d["line"], d["device_id"]) for d in r.json()["error"]["details"]] == [(3, "press-02")]
    with psycopg.connect(migrated_db) as conn:
        assert conn.execute("SELECT count(*) FROM devices").fetchone() == (1,)


@pytest.mark.parametrize("payload", [b"", b"\xff\xfe\x00garbage", b"site,line\na,1\n", b"device_id\n"])
async def test_unusable_csv_bodies_get_422(prov: httpx.AsyncClient, payload: bytes) -> None:
    r = await prov.post("/api/v1/devices/bulk", content=payload, headers={"Content-Type": "text/csv"})
    assert r.status_code == 422, r.text


async def test_oversized_csv_gets_413(prov: httpx.AsyncClient) -> None:
    big = b"device_id\n" + b"d-0000000000\n" * 200_000
    r = await prov.post("/api/v1/devices/bulk", content=big, headers={"Content-Type": "text/csv"})
    assert r.status_code == 413


async def test_tags_merge_remove_and_replace(prov: httpx.AsyncClient) -> None:
    await prov.post("/api/v1/devices", json={"id": "d1", "tags": {"site": "a", "line": "1"}})
    r = await prov.patch("/api/v1/devices/d1/tags", json={"tags": {"line": None, "machine": "m1"}})
    assert r.status_code == 200
    assert r.json()["tags"] == {"site": "a", "machine": "m1"}
    r = await prov.patch("/api/v1/devices/d1/tags", json={"tags": {"x": 1}, "replace": True})
    assert r.json()["tags"] == {"x": 1}
    assert (await prov.patch("/api/v1/devices/nope/tags", json={"tags": {}})).status_code == 404
    assert (await prov.patch("/api/v1/devices/d1/tags", json={"tags": {"a b": 1}})).status_code == 422


async def test_lifecycle_disable_enable_rotate_decommission(prov: httpx.AsyncClient, migrated_db: str) -> None:
    first = (await prov.post("/api/v1/devices", json={"id": "d2"})).json()["credentials"]["password"]
    assert (await prov.post("/api/v1/devices/d2/disable")).json()["enabled"] is False
    assert (await prov.post("/api/v1/devices/d2/enable")).json()["enabled"] is True
    r = await prov.post("/api/v1/devices/d2/credentials/rotate")
    assert r.status_code == 200
    second = r.json()["credentials"]["password"]
    (old, old_active), (new, new_active) = _hashes(migrated_db, "d2")
    assert not old_active
    assert new_active
    assert verify_mosquitto_hash(first, old)
    assert verify_mosquitto_hash(second, new)
    r = await prov.post("/api/v1/devices/d2/decommission")
    assert r.status_code == 200
    assert r.json()["enabled"] is False
    assert r.json()["decommissioned_at"] is not None
    assert all(not active for _, active in _hashes(migrated_db, "d2"))
    states = [c["state"] for c in (await prov.get("/api/v1/devices/d2/credentials")).json()["items"]]
    assert states == ["rotated", "revoked"]
    assert (await prov.post("/api/v1/devices/d2/enable")).status_code == 409
    assert (await prov.post("/api/v1/devices/d2/credentials/rotate")).status_code == 409
    assert (await prov.post("/api/v1/devices", json={"id": "d2"})).status_code == 409  # ids are not reused
    # decommissioned devices stay listed (history), but leave cohorts
    assert (await prov.get("/api/v1/devices/d2")).status_code == 200
    for path in ("disable", "enable", "decommission", "credentials/rotate"):
        assert (await prov.post(f"/api/v1/devices/nope/{path}")).status_code == 404


async def test_capabilities_from_state_are_shown(prov: httpx.AsyncClient, seed: Seeder) -> None:
    seed.device("cap-1")
    seed.conn.execute(
        'UPDATE devices SET capabilities = \'{"flash": 1048576, "arena": 65536, "ops": ["CONV_2D"]}\' '
        "WHERE id = 'cap-1'"
    )
    body = (await prov.get("/api/v1/devices/cap-1")).json()
    assert body["capabilities"] == {"flash": 1048576, "arena": 65536, "ops": ["CONV_2D"]}


async def test_concurrent_provisioning_of_one_id_gives_one_device_and_no_5xx(
    prov: httpx.AsyncClient, migrated_db: str
) -> None:
    import asyncio

    answers = await asyncio.gather(*[prov.post("/api/v1/devices", json={"id": "race-1"}) for _ in range(6)])
    codes = sorted(r.status_code for r in answers)
    assert codes.count(201) == 1
    assert set(codes) <= {201, 409}
    assert len(_hashes(migrated_db, "race-1")) == 1
