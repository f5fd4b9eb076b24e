"""The fleet simulator against a real broker and the real ingest: every device its own connection and identity,
events stored exactly once through flaky connections and outages, LWTs, behaviours visible in stored labels."""

from __future__ import annotations

import asyncio
import csv
import json
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.ingest.conftest import make_settings, wait_until
from tests.support.instances import MosquittoInstance
from tinyfleet.ingest.service import IngestService
from tinyfleet.store.migrate import upgrade
from tinyfleet.wire import decode_state
from tinyfleet_device.fleet import Behaviour, Fleet, FleetError, FleetModel, assign_behaviours, read_credentials

REPO = Path(__file__).resolve().parents[2]
VIB_CLS = REPO / "models" / "artifacts" / "vib-cls.tflite"
DEVICE_CLI = str(Path(sys.executable).with_name("tinyfleet-device"))


@pytest.fixture(scope="module")
def vib_cls() -> FleetModel:
    assert VIB_CLS.is_file(), f"{VIB_CLS} missing: `make models` writes it and it is committed"
    return FleetModel.from_files(VIB_CLS)


@pytest.fixture
def broker() -> Iterator[MosquittoInstance]:
    with MosquittoInstance() as mq:
        yield mq


@pytest.fixture
def ingest(broker: MosquittoInstance, database_url: str) -> Iterator[tuple[IngestService, str, str]]:
    upgrade(database_url)
    prefix = f"t{secrets.token_hex(4)}/v1"
    svc = IngestService(make_settings(database_url, prefix, mqtt_url=f"mqtt://127.0.0.1:{broker.port}"))
    svc.start()
    assert svc.wait_connected(10), "ingest did not connect to the private broker"
    yield svc, prefix, database_url
    svc.stop()


class StateWatcher:
    """Records every `state` payload the broker delivers (births, shutdowns, and the LWTs it publishes)."""

    def __init__(self, port: int, prefix: str) -> None:
        self.reasons: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{secrets.token_hex(3)}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{prefix}/+/state", qos=1)
        self.client.loop_start()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[-2]
        state = decode_state(msg.payload)
        with self.lock:
            self.reasons.setdefault(device, []).append(state.reason or ("online" if state.online else "offline"))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _stored(database_url: str, prefix_ids: list[str]) -> dict[str, list[tuple[int, int, int | None]]]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "select device_id, boot, seq, label from events where device_id = any(%s)", (prefix_ids,)
        ).fetchall()
    out: dict[str, list[tuple[int, int, int | None]]] = {}
    for device, boot, seq, label in rows:
        out.setdefault(device, []).append((boot, seq, label))
    return out


async def _run_fleet(fleet: Fleet, seconds: float) -> None:
    stop = asyncio.Event()
    async with fleet:
        task = asyncio.create_task(fleet.run(stop))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait_for(task, 30)


def test_behaviour_shares_follow_the_profile_exactly() -> None:
    import random

    got = assign_behaviours(200, "mixed", random.Random(1))
    assert got.count(Behaviour.HEALTHY) == 140
    assert got.count(Behaviour.DEGRADING) == 20
    assert got.count(Behaviour.FLAKY) == 20
    assert got.count(Behaviour.FAULTY) == got.count(Behaviour.OFFLINE) == 10
    demo = assign_behaviours(5, "demo", random.Random(1))
    assert demo[0] is Behaviour.DEGRADING
    assert demo[-1] is Behaviour.FLAKY
    with pytest.raises(FleetError, match="unknown profile"):
        assign_behaviours(3, "nope", random.Random(1))


def test_a_flaky_mixed_fleet_is_stored_exactly_once_with_its_lwts(
    vib_cls: FleetModel, broker: MosquittoInstance, ingest: tuple[IngestService, str, str]
) -> None:
    _svc, prefix, database_url = ingest
    watcher = StateWatcher(broker.port, prefix)
    fleet = Fleet(
        [vib_cls], count=24, mqtt_url=f"mqtt://127.0.0.1:{broker.port}", topic_prefix=prefix,
        id_prefix=f"f{secrets.token_hex(2)}-", profile="mixed", rate_hz=4.0, seed=7, degrade_s=4.0,
        outage_scale=0.02,  # flaky: a drop every 1–4 s for 0.1–0.6 s; offline: off for 2–12 s every 6–18 s
    )  # fmt: skip
    try:
        asyncio.run(_run_fleet(fleet, 14.0))
        healthy = [d.device_id for d in fleet.devices if d.behaviour is Behaviour.HEALTHY]
        wait_until(lambda: all(watcher.reasons.get(d, [])[-1:] == ["shutdown"] for d in healthy), 10)
    finally:
        watcher.close()
    totals = fleet.totals()
    assert totals.drops > 0, "the flaky and offline devices never lost their connection"
    assert totals.dropped == 0
    acked = totals.events
    assert wait_until(lambda: sum(len(v) for v in _stored(database_url, fleet.ids).values()) >= acked, 20)
    stored = _stored(database_url, fleet.ids)
    for d in fleet.devices:
        keys = [(boot, seq) for boot, seq, _ in stored.get(d.device_id, [])]
        assert len(keys) == len(set(keys)), f"{d.device_id}: duplicates stored"
        # Everything the broker acknowledged is stored; what was still buffered at the stop never left the device.
        assert len(keys) == d.counters.events, f"{d.device_id} ({d.behaviour}): {len(keys)} stored"
    flaky = [d for d in fleet.devices if d.behaviour is Behaviour.FLAKY]
    assert any(d.counters.buffered > 0 for d in flaky), "no flaky device buffered events while it was down"
    lwts = [d.device_id for d in flaky if "lwt" in watcher.reasons.get(d.device_id, [])]
    assert lwts, f"the broker published no LWT for a flaky device: {watcher.reasons}"
    assert all(watcher.reasons.get(d, [])[-1:] == ["shutdown"] for d in healthy), watcher.reasons


def test_faults_in_the_physics_show_in_the_stored_labels(
    vib_cls: FleetModel, broker: MosquittoInstance, ingest: tuple[IngestService, str, str]
) -> None:
    _svc, prefix, database_url = ingest
    fleet = Fleet(
        [vib_cls], count=12, mqtt_url=f"mqtt://127.0.0.1:{broker.port}", topic_prefix=prefix,
        id_prefix=f"g{secrets.token_hex(2)}-", profile="mixed", rate_hz=5.0, seed=3, degrade_s=2.0,
        outage_scale=100.0,  # no outages in this test
    )  # fmt: skip
    asyncio.run(_run_fleet(fleet, 8.0))
    acked = fleet.totals().events
    assert wait_until(lambda: sum(len(v) for v in _stored(database_url, fleet.ids).values()) >= acked, 20)
    stored = _stored(database_url, fleet.ids)
    normal = vib_cls.runner.labels.index("normal") if vib_cls.runner.labels else 0

    def normal_share(behaviour: Behaviour) -> float:
        labels = [lab for d in fleet.devices if d.behaviour is behaviour for _, _, lab in stored[d.device_id]]
        assert labels, f"no events from {behaviour} devices"
        return sum(lab == normal for lab in labels) / len(labels)

    assert normal_share(Behaviour.HEALTHY) > 0.8
    assert normal_share(Behaviour.FAULTY) < 0.3
    degrading = [d for d in fleet.devices if d.behaviour is Behaviour.DEGRADING]
    for d in degrading:
        late = sorted(stored[d.device_id])[-10:]  # after degrade_s the bearing fault is severe
        bearing = vib_cls.runner.labels.index("bearing_fault") if vib_cls.runner.labels else 3
        assert sum(lab == bearing for _, _, lab in late) >= 7, f"{d.device_id}: {late}"


def test_the_cli_runs_a_fleet_with_credentials_and_prints_a_summary(
    broker: MosquittoInstance, tmp_path: Path
) -> None:
    assert VIB_CLS.is_file()
    creds = tmp_path / "fleet.csv"
    with creds.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["device_id", "username", "password"])
        for i in range(3):
            w.writerow([f"cli-{i}", f"cli-{i}", f"pw-{i}"])
    assert [d for d, _ in read_credentials(creds)] == ["cli-0", "cli-1", "cli-2"]
    out = subprocess.run(
        [DEVICE_CLI, "fleet", "--credentials", str(creds), "--model", str(VIB_CLS), "--profile", "healthy",
         "--mqtt-url", f"mqtt://127.0.0.1:{broker.port}", "--duration", "4", "--rate", "2", "--status-every", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    assert summary["fleet"]["devices"] == 3
    assert summary["fleet"]["events"] >= 3 * 4  # ~2/s for ~4 s each, minus the start spread
    assert "3/3 connected" in out.stderr

    bad = tmp_path / "bad.csv"
    bad.write_text("device_id,password\nnot a valid id!,x\n")
    failed = subprocess.run([DEVICE_CLI, "fleet", "--credentials", str(bad), "--model", str(VIB_CLS)],
                            capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert failed.returncode == 2
    assert "bad.csv:2" in failed.stderr
