"""A TimescaleDB fed the way production is: simulated devices → the shared Mosquitto → the real ingest.

Devices are provisioned with tags through `tinyfleet.fleet.devices`, a model version with label names is in the
registry tables, the demo's simulated devices (`tinyfleet.demo.devices.SimulatedDevice`, sped up) publish birth
state, classification and anomaly events and telemetry, a publisher adds OTA status reports and undecodable
payloads (dead letters), and alerts go through `tinyfleet.alerts` (open → acknowledged, open → resolved, with an
outbox row). Built once per module: the panel tests only read it — as Grafana does, through the read-only role
`grafana_reader` that the compose stack's database init script (deploy/compose/grafana-reader.sh) creates; the
script runs here before the migrations, as it does at the container's first start.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingest.conftest import Publisher
from tinyfleet.alerts import ActionSpec, AlertTransition, acknowledge, apply_transition, resolve
from tinyfleet.config import Settings
from tinyfleet.demo.devices import LABELS, SimulatedDevice
from tinyfleet.fleet.devices import provision
from tinyfleet.ingest.service import IngestService
from tinyfleet.store import migrate
from tinyfleet.store.db import create_engine, create_sessionmaker
from tinyfleet.store.models import ModelRecord, ModelVersion
from tinyfleet.wire import OtaState, OtaStatus, Topics, encode_ota_status

SITES = ("plant-a", "plant-a", "plant-b", "plant-b")
GRAFANA_READER_SH = Path(__file__).resolve().parents[2] / "deploy" / "compose" / "grafana-reader.sh"
GRAFANA_ROLE = "grafana_reader"


@dataclass(frozen=True)
class FedDatabase:
    url: str
    devices: list[str]
    #: The device that has everything: events, telemetry, OTA reports, an alert.
    device: str
    models: list[str]


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}", pytrace=False)
        time.sleep(0.1)


def _count(url: str, sql: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0


async def _provision_and_register(url: str, devices: list[str]) -> None:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            for device, site in zip(devices, SITES, strict=False):
                await provision(session, device, {"site": site, "line": "1"})
            session.add(ModelRecord(name="vib-cls", description="vibration classifier"))
            await session.flush()
            session.add(
                ModelVersion(
                    model_name="vib-cls", version=4, sha256="0" * 64, size=20_480, precision="int8",
                    parameters=5_000, ops=[], arena_bytes=8_192, arena={"loadable": True}, inputs=[], outputs=[],
                    labels=list(LABELS), card={}, inspection={}, storage_key="sha256/" + "0" * 64,
                )
            )  # fmt: skip
    finally:
        await engine.dispose()


async def _alerts(url: str, device: str, other: str) -> None:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            now = datetime.now(UTC)
            first = await apply_transition(
                session,
                AlertTransition("bearing-fault", device, "open", "major", now, {"window": {"count": 3}}),
                [ActionSpec("webhook", "https://cmms.example/hook")],
            )
            second = await apply_transition(
                session, AlertTransition("device-silent", other, "open", "warning", now, {"absence": {"for": "15m"}})
            )
            assert first is not None
            assert second is not None
            await acknowledge(session, first.alert.id, "ops@example.com")
            await resolve(session, second.alert.id, "ops@example.com")
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
def fed_database(make_database: Callable[[], str]) -> Iterator[FedDatabase]:
    url = make_database()
    parts = urlsplit(url)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PGHOST": parts.hostname or "127.0.0.1",
        "PGPORT": str(parts.port or 5432), "POSTGRES_USER": parts.username or "postgres",
        "POSTGRES_DB": parts.path.lstrip("/"), "TINYFLEET_GRAFANA_DB_PASSWORD": "test-only-password",
    }  # fmt: skip
    init = subprocess.run(["sh", str(GRAFANA_READER_SH)], env=env, capture_output=True, text=True, timeout=60)
    if init.returncode != 0:
        pytest.fail(f"grafana-reader.sh failed: {init.stderr}", pytrace=False)
    migrate.upgrade(url)
    with psycopg.connect(url) as conn:
        meta = dict(conn.execute("SELECT key, value FROM tinyfleet_meta").fetchall())
    if meta.get("timescaledb") != "on":
        pytest.fail("the dashboards need TimescaleDB (time_bucket); run `make timescaledb`", pytrace=False)

    token = secrets.token_hex(3)
    prefix = f"gf{token}/v1"
    devices = [f"gf-{token}-{i}" for i in range(len(SITES))]
    asyncio.run(_provision_and_register(url, devices))

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=url,
        mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        topic_prefix=prefix,
        mqtt_client_id=f"gf-ingest-{token}",
        mqtt_session_expiry_s=60,
    )
    ingest = IngestService(settings)
    ingest.start()
    try:
        if not ingest.wait_connected(10):
            pytest.fail(f"ingest did not connect to the broker at {settings.mqtt_url}", pytrace=False)
        time.sleep(0.3)
        topics = Topics(prefix)
        sims = [
            SimulatedDevice(d, MQTT_HOST, MQTT_PORT, topics, random.Random(i), fault_drift=i == 0, interval_s=0.01)
            for i, d in enumerate(devices)
        ]

        async def run_fleet() -> None:
            for sim in sims:
                sim.start()
            for sim in sims:
                if not await asyncio.to_thread(sim.wait_connected, 10):
                    pytest.fail(f"simulated device {sim.device_id} did not connect", pytrace=False)
            stop = asyncio.Event()
            tasks = [asyncio.create_task(sim.run(stop)) for sim in sims]
            await asyncio.sleep(2.5)  # first telemetry of each device within 0.5-2 s
            stop.set()
            await asyncio.gather(*tasks)

        asyncio.run(run_fleet())
        # Still connected: paho delivers whatever is in flight, so every published event arrives.
        total = sum(sim.stats.events for sim in sims)
        _wait(lambda: _count(url, "SELECT count(*) FROM events") == total, f"{total} events stored")
        pub = Publisher(MQTT_HOST, MQTT_PORT)
        try:
            device = devices[0]
            now_ms = int(time.time() * 1000)
            for state, extra in (
                (OtaState.DOWNLOADING, {"progress": 1024}),
                (OtaState.VERIFIED, {}),
                (OtaState.APPLIED, {"model": "vib-cls", "mver": 5}),
            ):
                status = OtaStatus(ts=now_ms, state=state, seq=7, **extra)  # type: ignore[arg-type]
                pub.publish(topics.ota_status(device), encode_ota_status(status))
            pub.publish(topics.evt(device), b"\xff\x00 not cbor")
            pub.publish(topics.evt(devices[1]), b'{"v": 1, "seq": "x"}')
            pub.publish(topics.tel(device), b"[1, 2")
            pub.flush()
        finally:
            pub.close()
        for sim in sims:
            sim.stop()
        _wait(lambda: _count(url, "SELECT count(*) FROM dead_letters") >= 3, "three dead letters")
        _wait(lambda: _count(url, "SELECT count(*) FROM ota_reports") >= 3, "three OTA reports")
        _wait(lambda: _count(url, "SELECT count(DISTINCT device_id) FROM telemetry") == len(devices), "telemetry")
        _wait(lambda: _count(url, "SELECT count(*) FROM devices WHERE model IS NOT NULL") == len(devices), "states")
    finally:
        ingest.stop()
    asyncio.run(_alerts(url, devices[0], devices[1]))
    return FedDatabase(url, devices, devices[0], ["vib-anom", "vib-cls"])
