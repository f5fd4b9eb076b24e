"""The reference device updates its model over the air, end to end: the real service (ingest + registry over
HTTP), the shared Mosquitto, a manifest signed with the service's key retained on the device's `ota` topic.
The device downloads with its own credentials, swaps the new runner in between two inferences, and the events
stored from then on carry the new model version — with no event lost around the swap."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion

from tests.actions.conftest import eventually
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.device_sdk.test_ota_client import manifest_for
from tests.ingest.conftest import make_settings, migrated_db, prefix  # noqa: F401 - fixtures
from tests.registry.conftest import KWS, KWS_LABELS
from tests.rollouts.conftest import patch_output_bias
from tests.support.instances import free_port
from tinyfleet.app import Service
from tinyfleet.ota.keys import generate_signing_key, load_signing_key, write_signing_key
from tinyfleet_device.device import Device, DeviceConfig
from tinyfleet_device.manifest import Compat, raw_public_key

DEVICE = "ota-e2e-1"
ADMIN = "device-ota-tests-admin-key-0123456789"


@dataclass
class Env:
    base_url: str
    db: str
    prefix: str
    api: httpx.AsyncClient
    key: Ed25519PrivateKey


@pytest.fixture
async def env(migrated_db: str, prefix: str, tmp_path: Path) -> AsyncIterator[Env]:  # noqa: F811
    key_file = tmp_path / "ota.pem"
    write_signing_key(key_file, generate_signing_key())
    port = free_port()
    settings = make_settings(
        migrated_db, prefix, http_port=port, public_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "data",
        ota_signing_key_file=key_file, admin_api_key=ADMIN, rules_dir=tmp_path / "no-rules",
    )  # fmt: skip
    (tmp_path / "no-rules").mkdir()
    async with Service(settings, maintenance=False, rules=False, rollouts=False) as service:
        stop = asyncio.Event()
        started = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, started=started.set))
        await asyncio.wait_for(started.wait(), 20)
        assert service.ingest is not None
        assert await asyncio.to_thread(service.ingest.wait_connected, 10)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {ADMIN}"}) as api:
            try:
                yield Env(base, migrated_db, prefix, api, load_signing_key(settings))
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(serving, 15)


def _events(db: str) -> list[tuple[int, int, int | None]]:
    with psycopg.connect(db, connect_timeout=3) as conn:
        rows = conn.execute(
            "select boot, seq, mver from events where device_id = %s order by boot, seq", (DEVICE,)
        ).fetchall()
    return [(int(b), int(s), None if m is None else int(m)) for b, s, m in rows]


async def test_a_signed_manifest_with_a_newer_model_is_applied_and_events_then_carry_its_version(
    env: Env, tmp_path: Path
) -> None:
    assert KWS.is_file(), f"{KWS} missing: the third-party models live in ../shared/models beside the repo"
    v2 = patch_output_bias(KWS.read_bytes(), label=9, delta=2**24)
    r = await env.api.put("/api/v1/models/kws/versions/2", content=v2, params={"labels": KWS_LABELS})
    assert r.status_code in (200, 201), r.text
    uri = env.base_url + r.json()["download_url"]
    r = await env.api.post("/api/v1/devices", json={"id": DEVICE})
    assert r.status_code == 201, r.text
    password = r.json()["credentials"]["password"]

    config = DeviceConfig(
        device_id=DEVICE, password=password, model_path=KWS, labels=tuple(KWS_LABELS), model_id="kws", mver=1,
        mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}", topic_prefix=env.prefix, state_dir=tmp_path / "device",
        interval_s=0.05, telemetry_s=60, http_url=env.base_url, arena_size=64 << 10,
        trusted_keys=(raw_public_key(env.key.public_key()),),
    )  # fmt: skip
    device = Device(config)
    runs = threading.Thread(target=device.run, name="device", daemon=True)
    runs.start()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ota-e2e-pub-{env.prefix.split('/')[0]}")
    ota_topic = f"{env.prefix}/{DEVICE}/ota"
    try:
        await eventually(lambda: len(_events(env.db)) >= 10, 30)
        assert {m for _b, _s, m in _events(env.db)} == {1}

        payload = manifest_for(env.key, v2, uri, seq=3, compat=Compat(arena=128 << 10), device=DEVICE)
        publisher.connect(MQTT_HOST, MQTT_PORT)
        publisher.loop_start()
        publisher.publish(ota_topic, payload, qos=1, retain=True).wait_for_publish(5)

        async def new_version_stored() -> bool:
            return sum(1 for _b, _s, m in _events(env.db) if m == 2) >= 10

        await eventually(new_version_stored, 60)
        reports = (await env.api.get(f"/api/v1/devices/{DEVICE}/ota-reports")).json()["items"]
        states = [x["state"] for x in reversed(reports)]
        assert states[0] == "downloading"
        assert states[-3:] == ["downloaded", "verified", "applied"]
        assert (reports[0]["seq"], reports[0]["mver"]) == (3, 2)
        d = (await env.api.get(f"/api/v1/devices/{DEVICE}")).json()
        assert (d["model"], d["mver"]) == ("kws", 2)  # its retained state says so too
    finally:
        device.stop()
        await asyncio.to_thread(runs.join, 30)
        with contextlib.suppress(Exception):
            publisher.publish(ota_topic, b"", qos=1, retain=True).wait_for_publish(5)  # clear the retained one
        publisher.loop_stop()
    events = _events(env.db)
    # one boot, seq without a gap: the swap lost no event; versions go 1 … 1, 2 … 2, never back
    boots = {b for b, _s, _m in events}
    assert len(boots) == 1
    seqs = [s for _b, s, _m in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    versions = [m for _b, _s, m in events]
    first_new = versions.index(2)
    assert set(versions[:first_new]) == {1}
    assert set(versions[first_new:]) == {2}
    # the new model is the one that runs: KWS patched to always say "yes" (label 9)
    with psycopg.connect(env.db) as conn:
        labels = {row[0] for row in conn.execute("select label from events where device_id = %s and mver = 2",
                                                 (DEVICE,))}  # fmt: skip
    assert labels == {KWS_LABELS.index("yes")}
