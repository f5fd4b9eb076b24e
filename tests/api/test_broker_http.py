"""The broker's HTTP auth endpoints (EMQX / mosquitto-go-auth) decide like the password and ACL files."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from tests.api.conftest import api_settings, bearer
from tinyfleet.api import create_app


@pytest.fixture
async def api(migrated_db: str, keys: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(api_settings(migrated_db, topic_prefix="tf/v1", mqtt_url="mqtt://svc:svc-pw@h:1883"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(keys["device-provisioning"])
        ) as c:
            yield c


async def _login(api: httpx.AsyncClient, username: str, password: str) -> dict[str, object]:
    r = await api.post("/api/v1/broker/auth", json={"username": username, "password": password})
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    assert body["ok"] is (body["result"] == "allow")
    return body


async def _acl(api: httpx.AsyncClient, username: str, topic: str, action: str) -> bool:
    r = await api.post("/api/v1/broker/acl", json={"username": username, "topic": topic, "action": action})
    assert r.status_code == 200, r.text
    return bool(r.json()["ok"])


async def test_login_and_acl_follow_the_device_state(api: httpx.AsyncClient, migrated_db: str) -> None:
    password = (await api.post("/api/v1/devices", json={"id": "press-07"})).json()["credentials"]["password"]
    assert (await _login(api, "press-07", password))["result"] == "allow"
    assert (await _login(api, "press-07", password + "x"))["error"] == "wrong password"
    assert (await _login(api, "nobody", password))["result"] == "deny"
    service = await _login(api, "svc", "svc-pw")
    assert service["is_superuser"] is True
    assert (await _login(api, "svc", "nope"))["result"] == "deny"

    assert await _acl(api, "press-07", "tf/v1/press-07/evt", "publish")
    assert await _acl(api, "press-07", "tf/v1/press-07/ota/status", "publish")
    assert await _acl(api, "press-07", "tf/v1/press-07/ota", "subscribe")
    assert not await _acl(api, "press-07", "tf/v1/press-07/ota", "publish")
    assert not await _acl(api, "press-07", "tf/v1/other/evt", "publish")
    assert not await _acl(api, "press-07", "tf/v1/+/evt", "subscribe")
    assert not await _acl(api, "press-07", "tf/v1/press-07/evt", "subscribe")
    assert await _acl(api, "svc", "anything/#", "subscribe")
    # mosquitto-go-auth's `acc` form: 2 write, 4 subscribe, 1 read
    for acc, topic, allowed in [(2, "tf/v1/press-07/evt", True), (2, "tf/v1/x/evt", False),
                                (4, "tf/v1/press-07/cmd", True), (1, "tf/v1/press-07/evt", False)]:  # fmt: skip
        r = await api.post("/api/v1/broker/acl", json={"username": "press-07", "topic": topic, "acc": acc})
        assert r.json()["ok"] is allowed, (acc, topic)
    both = {"username": "a", "topic": "t", "acc": 2, "action": "publish"}
    assert (await api.post("/api/v1/broker/acl", json=both)).status_code == 422

    await api.post("/api/v1/devices/press-07/disable")
    assert (await _login(api, "press-07", password))["result"] == "deny"
    assert not await _acl(api, "press-07", "tf/v1/press-07/evt", "publish")
    with psycopg.connect(migrated_db) as conn:
        actions = [str(r[0]) for r in conn.execute("SELECT action FROM audit").fetchall()]
    assert not any("/broker/" in a for a in actions)  # checks are not mutations
    assert len(actions) == 2


async def test_broker_endpoints_need_the_provisioning_scope(api: httpx.AsyncClient, keys: dict[str, str]) -> None:
    r = await api.post("/api/v1/broker/auth", json={"username": "a", "password": "b"}, headers=bearer(keys["read"]))
    assert r.status_code == 403
    r = await api.post("/api/v1/broker/auth", json={"username": "a", "password": "b"}, headers={"Authorization": ""})
    assert r.status_code == 401
