"""Device credentials enforced by a real Mosquitto: the service writes its password and ACL files, SIGHUPs the
broker (pid file), and the ingest stores only what each device may publish under its own id.

One private broker (allow_anonymous false) and the in-process service (API + ingest) for the whole story:
provision → publish own events (stored) → publish under another id (PUBACK 135, nothing stored) → wrong password
refused → disable (CONNACK refused, live session dropped) → enable (accepted again: the reload happened) →
rotate (old password refused) → decommission (refused, history kept).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.fleet.conftest import DeviceClient, connack_of, event_payload
from tests.support.instances import MosquittoInstance
from tinyfleet.app import Service
from tinyfleet.config import Settings
from tinyfleet.fleet.passwords import verify_mosquitto_hash
from tinyfleet.store.migrate import upgrade
from tinyfleet.wire import Caps, DeviceState, encode_state

ADMIN_KEY = "tfk_admin_" + secrets.token_urlsafe(24)
SERVICE_USER = "tinyfleet-service"
# MQTT 5 reason code 0x87. Mosquitto 2.0.11 answers it for unknown users and wrong passwords alike (not 0x86).
NOT_AUTHORIZED = 135


def _count(url: str, sql: str, *args: Any) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, args).fetchone()
        assert row is not None
        return int(row[0])


async def _eventually(predicate: Callable[[], bool], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def fleet(make_database: Callable[[], str], tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    url = make_database()
    upgrade(url)
    broker = MosquittoInstance(allow_anonymous=False, persistence=False)
    auth_dir = broker.dir / "auth"
    service_password = secrets.token_urlsafe(16)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        mqtt_url=f"mqtt://{SERVICE_USER}:{service_password}@127.0.0.1:{broker.port}",
        mqtt_client_id=f"test-fleet-{secrets.token_hex(4)}",
        mqtt_session_expiry_s=60,
        admin_api_key=ADMIN_KEY,
        broker_password_file=auth_dir / "passwd",
        broker_acl_file=auth_dir / "acl",
        broker_pid_file=broker.pid_path,
        broker_file_group="mosquitto" if os.geteuid() == 0 else None,
        rules_dir=tmp_path / "no-rules",
    )
    # The files exist before the broker starts (Mosquitto refuses to start without them): the service writes
    # them at start, and a pid file that is not there yet means "no reload needed".
    service = Service(settings, maintenance=False, rules=False)
    from tinyfleet.fleet.broker_auth import BrokerAuth

    await BrokerAuth(settings.model_copy(update={"broker_pid_file": None})).sync_at_start()
    broker.password_file, broker.acl_file = settings.broker_password_file, settings.broker_acl_file
    with broker:
        async with service:
            assert service.app is not None
            assert service.ingest is not None
            assert service.ingest.wait_connected(10), "the service could not log in to its own broker"
            await asyncio.sleep(0.2)  # subscriptions acknowledged
            transport = httpx.ASGITransport(app=service.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
            ) as api:
                yield {"api": api, "broker": broker, "url": url, "settings": settings}


async def _provision(api: httpx.AsyncClient, device_id: str) -> str:
    r = await api.post("/api/v1/devices", json={"id": device_id, "tags": {"site": "plant-a"}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["broker_synced"] is True
    assert body["credentials"]["username"] == device_id
    return str(body["credentials"]["password"])


async def test_broker_enforces_device_credentials_and_acl(fleet: dict[str, Any]) -> None:
    api: httpx.AsyncClient = fleet["api"]
    broker: MosquittoInstance = fleet["broker"]
    url: str = fleet["url"]
    settings: Settings = fleet["settings"]
    host, port = broker.host, broker.port

    pw_a = await _provision(api, "dev-a")
    pw_b = await _provision(api, "dev-b")
    # The password file is Mosquitto's `$7$` format and holds the service user and both devices.
    assert settings.broker_password_file is not None
    assert settings.broker_acl_file is not None
    lines = dict(line.split(":", 1) for line in settings.broker_password_file.read_text().splitlines())
    assert set(lines) == {SERVICE_USER, "dev-a", "dev-b"}
    assert verify_mosquitto_hash(pw_a, lines["dev-a"])
    assert not verify_mosquitto_hash(pw_b, lines["dev-a"])
    assert "pattern write tf/v1/%u/evt" in settings.broker_acl_file.read_text()
    assert oct(settings.broker_password_file.stat().st_mode & 0o777) == "0o640"

    # Anonymous and unknown clients are refused: the broker really enforces the file.
    assert connack_of(host, port, "nobody", "x") != 0

    dev_a = DeviceClient(host, port, "dev-a", pw_a)
    assert dev_a.connect() == 0
    try:
        assert dev_a.publish("tf/v1/dev-a/evt", event_payload(1)) == 0
        await _eventually(lambda: _count(url, "SELECT count(*) FROM events WHERE device_id = 'dev-a'") == 1)
        # Its retained `state` reports what it can run: the API shows it as the device's capabilities.
        caps = Caps(flash=1_048_576, ram=262_144, arena=65_536, ops=["CONV_2D", "SOFTMAX"])
        state = encode_state(DeviceState(online=True, boot=1, fw="1.4.2", model="vib-cls", mver=4, caps=caps))
        assert dev_a.publish("tf/v1/dev-a/state", state) == 0

        async def caps_shown() -> bool:
            body = (await api.get("/api/v1/devices/dev-a")).json()
            return body["capabilities"] is not None and body["firmware"] == "1.4.2"

        for _ in range(200):
            if await caps_shown():
                break
            await asyncio.sleep(0.05)
        device = (await api.get("/api/v1/devices/dev-a")).json()
        assert device["capabilities"] == {
            "flash": 1_048_576,
            "ram": 262_144,
            "arena": 65_536,
            "ops": ["CONV_2D", "SOFTMAX"],
        }
        assert device["online"] is True

        # Under another device's id: refused by the broker with PUBACK 135, and nothing reaches the database.
        assert dev_a.publish("tf/v1/dev-b/evt", event_payload(2)) == NOT_AUTHORIZED
        # A device may not overwrite its own OTA manifest either (read-only for it).
        assert dev_a.publish("tf/v1/dev-a/ota", b"\xa0") == NOT_AUTHORIZED
        # MQTT 3.1.1 has no way to say no: the broker acknowledges and drops the message.
        legacy = DeviceClient(host, port, "dev-a", pw_a, protocol=4)
        assert legacy.connect() == 0
        try:
            assert legacy.publish("tf/v1/dev-b/evt", event_payload(7)) == 0
        finally:
            legacy.close()
        assert dev_a.publish("tf/v1/dev-a/evt", event_payload(3)) == 0  # a marker published after the refusals
        await _eventually(lambda: _count(url, "SELECT count(*) FROM events WHERE device_id = 'dev-a'") == 2)
        assert _count(url, "SELECT count(*) FROM events WHERE device_id = 'dev-b'") == 0
        assert _count(url, "SELECT count(*) FROM dead_letters") == 0
    finally:
        dev_a.close()

    # Wrong password, and another device's password: refused.
    assert connack_of(host, port, "dev-a", "wrong-password") == NOT_AUTHORIZED
    assert connack_of(host, port, "dev-a", pw_b) == NOT_AUTHORIZED

    # Disable dev-b while it is connected: the reload drops its session and it cannot come back.
    dev_b = DeviceClient(host, port, "dev-b", pw_b)
    assert dev_b.connect() == 0
    try:
        r = await api.post("/api/v1/devices/dev-b/disable")
        assert r.status_code == 200, r.text
        assert r.json()["enabled"] is False
        assert r.json()["broker_synced"] is True
        assert await asyncio.to_thread(dev_b.disconnected.wait, 10), "the broker kept a disabled device connected"
    finally:
        dev_b.close()
    assert "dev-b" not in settings.broker_password_file.read_text()
    assert connack_of(host, port, "dev-b", pw_b) == NOT_AUTHORIZED

    # Enabled again: accepted again, which only a reload of the rewritten file can do.
    r = await api.post("/api/v1/devices/dev-b/enable")
    assert r.status_code == 200
    assert r.json()["enabled"] is True
    assert connack_of(host, port, "dev-b", pw_b) == 0

    # Rotation: the old password stops working, the new one works.
    r = await api.post("/api/v1/devices/dev-b/credentials/rotate")
    assert r.status_code == 200, r.text
    new_b = r.json()["credentials"]["password"]
    assert new_b != pw_b
    assert connack_of(host, port, "dev-b", pw_b) == NOT_AUTHORIZED
    assert connack_of(host, port, "dev-b", new_b) == 0
    creds = (await api.get("/api/v1/devices/dev-b/credentials")).json()["items"]
    assert [c["state"] for c in creds] == ["rotated", "active"]

    # Decommissioned: refused for good, its events kept, its credentials revoked.
    r = await api.post("/api/v1/devices/dev-a/decommission")
    assert r.status_code == 200
    assert r.json()["decommissioned_at"] is not None
    assert connack_of(host, port, "dev-a", pw_a) == NOT_AUTHORIZED
    assert _count(url, "SELECT count(*) FROM events WHERE device_id = 'dev-a'") == 2
    assert _count(url, "SELECT count(*) FROM device_credentials WHERE device_id = 'dev-a' AND revoked_at IS NULL") == 0
    r = await api.post("/api/v1/devices/dev-a/enable")
    assert r.status_code == 409
    # Every change is in the audit trail, made by the configured admin key.
    audit = (await api.get("/api/v1/audit", params={"limit": 100})).json()["items"]
    actions = [(a["action"], a["target"], a["status"]) for a in audit]
    assert ("POST /api/v1/devices/{device_id:path}/disable", "dev-b", 200) in actions
    assert ("POST /api/v1/devices/{device_id:path}/decommission", "dev-a", 200) in actions
    assert all(a["actor"] == "admin-env" for a in audit)
