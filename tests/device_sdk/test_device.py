"""The reference device (`tinyfleet-device run`, the installed entry point) against a real Mosquitto that
enforces device credentials and the real service (ingest + API over HTTP, PostgreSQL): events stored exactly
once through a broker restart and through a kill -9 of the device, commands acknowledged, captures uploaded
with the device's own credentials and listed, a reboot that increments the boot counter."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from models.recordings import load_recording
from tests.device_sdk.device_support import KWS_LABELS, kws_path
from tests.support.instances import MosquittoInstance, free_port
from tinyfleet.app import Service
from tinyfleet.config import Settings
from tinyfleet.fleet.broker_auth import BrokerAuth
from tinyfleet.store.migrate import upgrade
from tinyfleet.wire import (
    AckStatus,
    Command,
    CommandAck,
    decode_command_ack,
    decode_state,
    encode_command,
)
from tinyfleet_device.arena import search_arena
from tinyfleet_device.capture import parse_capture

DEVICE_CLI = str(Path(sys.executable).with_name("tinyfleet-device"))
REPO = Path(__file__).resolve().parents[2]
VIB_CLS = REPO / "models" / "artifacts" / "vib-cls.tflite"  # the project's classifier (its card gives the labels)
#: the KWS model's arena, measured once (the runner tests cover the search; devices here start faster)
KWS_ARENA = search_arena(kws_path().read_bytes()).arena_bytes
ADMIN_KEY = "tfk_admin_" + secrets.token_urlsafe(24)
SERVICE_USER = "tinyfleet-service"


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout:g} s")


@dataclass
class Env:
    broker: MosquittoInstance
    db: str
    http: str
    settings: Settings
    service_password: str
    tmp: Path
    passwords: dict[str, str] = field(default_factory=dict)

    def rows(self, device: str) -> list[tuple[int, int, int | None]]:
        with psycopg.connect(self.db, connect_timeout=3) as conn:
            return [
                (int(b), int(s), lbl)
                for b, s, lbl in conn.execute(
                    "select boot, seq, label from events where device_id = %s order by boot, seq", (device,)
                ).fetchall()
            ]

    def start_device(
        self, device: str, *args: str, log: str = "device", model: list[str] | None = None
    ) -> subprocess.Popen[str]:
        model_args = model or ["--model", str(kws_path()), "--labels", ",".join(KWS_LABELS), "--arena-size",
                               str(KWS_ARENA)]  # fmt: skip
        cmd = [
            DEVICE_CLI, "run", *model_args,
            "--mqtt-url", self.broker.url, "--device-id", device, "--password", self.passwords[device],
            "--state-dir", str(self.tmp / device), "--http-url", self.http, "--summary", *args,
        ]  # fmt: skip
        err = (self.tmp / f"{device}-{log}.log").open("a")
        env = {**os.environ, "TINYFLEET_DEVICE_LOG_LEVEL": "INFO"}
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, env=env)

    def log(self, device: str, log: str = "device") -> str:
        path = self.tmp / f"{device}-{log}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait(self, predicate: Callable[[], Any], timeout: float, what: str, device: str | None = None) -> Any:
        """wait_for, and on failure the broker's log and the device's (what the failure needs to be understood)."""
        try:
            return wait_for(predicate, timeout, what)
        except AssertionError as exc:
            logs = f"\n--- broker log ---\n{self.broker.log_text()[-3000:]}"
            if device is not None:
                logs += f"\n--- device log ---\n{self.log(device)[-3000:]}"
            raise AssertionError(f"{exc}{logs}") from None

    def watcher(self, topic: str) -> Watcher:
        return Watcher(self.broker, SERVICE_USER, self.service_password, topic)


class Watcher:
    """A subscriber (as the service user) collecting the payloads of one topic filter."""

    def __init__(self, broker: MosquittoInstance, user: str, password: str, topic: str) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{secrets.token_hex(4)}",
                                  protocol=mqtt.MQTTv5)  # fmt: skip
        self.client.username_pw_set(user, password)
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topic, qos=1)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10), "watcher could not subscribe"

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((msg.topic, bytes(msg.payload), bool(msg.retain)))

    def payloads(self, topic_suffix: str = "") -> list[bytes]:
        with self._lock:
            return [p for t, p, _ in self.messages if t.endswith(topic_suffix)]

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> dict[str, Any]:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"device exited with {proc.returncode}: {out}"
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
async def env(make_database: Callable[[], str], tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Env]:
    tmp = tmp_path_factory.mktemp("device")
    db = make_database()
    upgrade(db)
    broker = MosquittoInstance(allow_anonymous=False, persistence=True)
    auth_dir = broker.dir / "auth"
    service_password = secrets.token_urlsafe(16)
    port = free_port()
    (tmp / "no-rules").mkdir()
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=db,
        mqtt_url=f"mqtt://{SERVICE_USER}:{service_password}@127.0.0.1:{broker.port}",
        mqtt_client_id=f"test-device-{secrets.token_hex(4)}",
        mqtt_session_expiry_s=300,
        batch_max_delay_ms=5.0,
        admin_api_key=ADMIN_KEY,
        broker_password_file=auth_dir / "passwd",
        broker_acl_file=auth_dir / "acl",
        broker_pid_file=broker.pid_path,
        broker_file_group="mosquitto" if os.geteuid() == 0 else None,
        rules_dir=tmp / "no-rules",
        http_host="127.0.0.1",
        http_port=port,
        data_dir=tmp / "data",
    )
    await BrokerAuth(settings.model_copy(update={"broker_pid_file": None})).sync_at_start()
    broker.password_file, broker.acl_file = settings.broker_password_file, settings.broker_acl_file
    with broker:
        async with Service(settings, maintenance=False, rules=False, rollouts=False) as service:
            stop = asyncio.Event()
            started = asyncio.Event()
            serving = asyncio.create_task(service.serve(stop, started=started.set))
            await asyncio.wait_for(started.wait(), 20)
            assert service.ingest is not None
            assert await asyncio.to_thread(service.ingest.wait_connected, 10), "the service cannot log in"
            base = f"http://127.0.0.1:{port}"
            e = Env(broker, db, base, settings, service_password, tmp)
            async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
                for device in ("dev-broker", "dev-kill", "dev-cmd", "dev-vib", "dev-ota"):
                    r = await api.post("/api/v1/devices", json={"id": device})
                    assert r.status_code == 201, r.text
                    assert r.json()["broker_synced"] is True
                    e.passwords[device] = str(r.json()["credentials"]["password"])
            try:
                yield e
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(serving, 15)


async def test_events_stored_exactly_once_through_a_broker_restart(env: Env) -> None:
    device = "dev-broker"
    proc = env.start_device(device, "--count", "80", "--interval", "0.05", "--batch-max", "16")

    def stored() -> int:
        return len(env.rows(device))

    await asyncio.to_thread(env.wait, lambda: stored() >= 10, 120, "first events stored", device)
    await asyncio.to_thread(env.broker.stop)  # the device keeps producing into its on-disk store
    await asyncio.sleep(1.5)
    await asyncio.to_thread(env.broker.start)
    result = await asyncio.to_thread(finish, proc)
    (session,) = result["sessions"]
    assert session["boot"] == 1
    assert session["produced"] == 80
    assert session["backlog"] == 0
    assert session["dropped"] == 0
    await asyncio.to_thread(wait_for, lambda: stored() >= 80, 60, "all 80 events stored")
    rows = env.rows(device)
    assert [(b, s) for b, s, _ in rows] == [(1, s) for s in range(80)]  # each once, none lost
    assert "disconnected from the broker" in env.log(device)
    # the backlog of the outage went out in batches: fewer event messages than events
    assert session["published"] >= 80
    assert session["messages"] < 80


async def test_events_survive_a_kill_of_the_device_during_an_outage(env: Env) -> None:
    device = "dev-kill"
    proc = env.start_device(device, "--interval", "0.05", log="first")
    await asyncio.to_thread(env.wait, lambda: len(env.rows(device)) >= 5, 120, "first events stored", device)
    await asyncio.to_thread(env.broker.stop)
    await asyncio.sleep(1.0)  # ~20 events only on the device's disk now
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    stored_before = len(env.rows(device))
    await asyncio.to_thread(env.broker.start)
    second = await asyncio.to_thread(finish, env.start_device(device, "--count", "10", "--interval", "0.05",
                                                              log="second"))  # fmt: skip
    (session,) = second["sessions"]
    assert session["boot"] == 2  # the persisted counter, +1
    assert session["backlog"] == 0

    def complete() -> list[tuple[int, int, int | None]] | None:
        rows = env.rows(device)
        return rows if sum(1 for b, _, _ in rows if b == 2) >= 10 else None

    rows = await asyncio.to_thread(env.wait, complete, 120, "boot 2 events stored", device)
    boot1 = [s for b, s, _ in rows if b == 1]
    boot2 = [s for b, s, _ in rows if b == 2]
    assert boot1 == list(range(len(boot1)))  # contiguous from 0: nothing lost, nothing twice
    assert len(boot1) > stored_before + 5  # the events of the outage came from the disk after the restart
    assert boot2 == list(range(10))


async def test_commands_are_acknowledged_and_capture_uploads(env: Env) -> None:
    device = "dev-cmd"
    acks = env.watcher(f"tf/v1/{device}/cmd/ack")
    states = env.watcher(f"tf/v1/{device}/state")
    proc = env.start_device(device, "--interval", "0.1", "--telemetry-interval", "0.5", "--format", "json")
    try:
        await asyncio.to_thread(env.wait, lambda: len(env.rows(device)) >= 3, 120, "first events", device)

        def send(cmd: Command) -> CommandAck:
            before = len(acks.payloads())
            acks.publish(f"tf/v1/{device}/cmd", encode_command(cmd))
            payload = env.wait(lambda: acks.payloads()[before:] or None, 60, f"ack of {cmd.cmd}", device)[0]
            return decode_command_ack(payload)

        ack = await asyncio.to_thread(send, Command(id="c1", cmd="set_threshold", args={"threshold": 0.2}))
        assert (ack.id, ack.cmd, ack.status, ack.boot) == ("c1", "set_threshold", AckStatus.OK, 1)
        ack = await asyncio.to_thread(send, Command(id=2, cmd="set_sampling", args={"interval_ms": 5}))
        assert ack.status is AckStatus.REJECTED
        assert ack.detail is not None
        assert "interval_ms" in ack.detail
        ack = await asyncio.to_thread(send, Command(id=3, cmd="set_sampling", args={"interval_ms": 50}))
        assert ack.status is AckStatus.OK
        ack = await asyncio.to_thread(send, Command(id=4, cmd="inject_fault", args={"fault": "imbalance"}))
        assert ack.status is AckStatus.FAILED  # the random source has no faults: said so, nothing changed
        ack = await asyncio.to_thread(send, Command(id=5, cmd="self_destruct"))
        assert ack.status is AckStatus.UNSUPPORTED
        # a rule action's bare JSON (no v, parameters at the top level)
        before = len(acks.payloads())
        acks.publish(f"tf/v1/{device}/cmd", b'{"cmd":"capture","samples":490,"label":"yes"}')
        payload = await asyncio.to_thread(wait_for, lambda: acks.payloads()[before:] or None, 60, "capture ack")
        ack = decode_command_ack(payload[0])
        assert ack.status is AckStatus.OK, ack
        assert ack.x is not None
        capture_id = ack.x["capture"]
        assert ack.x["samples"] == 490

        async with httpx.AsyncClient(base_url=env.http, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
            r = await api.get(f"/api/v1/devices/{device}/captures")
            assert r.status_code == 200, r.text
            (item,) = r.json()["items"]
            assert item["id"] == capture_id
            assert item["label"] == "yes"
            assert item["samples"] == 490
            assert item["channels"] == ["ch0"]
            assert item["boot"] == 1
            r = await api.get(item["download_url"])
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/csv")
            cap = parse_capture(r.content)
            assert cap.samples.shape == (490, 1)
            assert cap.meta.device == device
            r = await api.get("/api/v1/captures", params={"label": "yes"})
            assert [c["id"] for c in r.json()["items"]] == [capture_id]
        # a device may not upload for another one, and needs its own password
        body = r"# tinyfleet-capture: 1\n# sample_rate_hz: 10\nv\n1\n".replace(r"\n", "\n").encode()
        async with httpx.AsyncClient(base_url=env.http) as anon:
            r = await anon.post("/api/v1/devices/dev-kill/captures", content=body,
                                auth=(device, env.passwords[device]))  # fmt: skip
            assert r.status_code == 403, r.text
            r = await anon.post(f"/api/v1/devices/{device}/captures", content=body, auth=(device, "wrong"))
            assert r.status_code == 401
            r = await anon.post(f"/api/v1/devices/{device}/captures", content=b"x,y\n1,2\n",
                                auth=(device, env.passwords[device]))  # fmt: skip
            assert r.status_code == 422
            assert "tinyfleet-capture" in r.json()["error"]["message"]

        # reboot: acked, then the next boot's birth message and events
        ack = await asyncio.to_thread(send, Command(id="r1", cmd="reboot"))
        assert ack.status is AckStatus.OK

        def booted_again() -> bool:
            births = [decode_state(p) for p in states.payloads()]
            return any(s is not None and s.online and s.boot == 2 for s in births)

        await asyncio.to_thread(env.wait, booted_again, 120, "birth of boot 2", device)
        await asyncio.to_thread(env.wait, lambda: any(b == 2 for b, _, _ in env.rows(device)), 60, "boot 2 events")
        offline = [decode_state(p) for p in states.payloads()]
        assert any(s is not None and not s.online and s.reason == "reboot" for s in offline)
        # settings persisted across the reboot: the sampling interval of 50 ms still holds (events keep coming)
        with psycopg.connect(env.db) as conn:
            tel = conn.execute("select count(*) from telemetry where device_id = %s", (device,)).fetchone()
        assert tel is not None
        assert tel[0] >= 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        acks.close()
        states.close()
    assert proc.returncode == 0
    sessions = json.loads(out.strip().splitlines()[-1])["sessions"]
    assert [s["boot"] for s in sessions] == [1, 2]
    assert [s["reason"] for s in sessions] == ["reboot", "stopped"]


async def test_injected_fault_shows_in_stored_labels(env: Env) -> None:
    """The project's vibration classifier on the simulated machine: normal first; after `inject_fault
    bearing_fault` the stored events say bearing_fault (label 3 of the card's normal, imbalance, misalignment,
    bearing_fault). A capture of that window goes up labelled for retraining, in the layout models/ imports."""
    device = "dev-vib"
    assert VIB_CLS.is_file(), f"{VIB_CLS} missing: `make models` writes it"
    labels = json.loads(VIB_CLS.with_name("vib-cls.card.json").read_text())["labels"]
    assert labels == ["normal", "imbalance", "misalignment", "bearing_fault"]
    acks = env.watcher(f"tf/v1/{device}/cmd/ack")
    proc = env.start_device(device, "--source", "sim", "--interval", "0.05", model=["--model", str(VIB_CLS)])
    try:
        await asyncio.to_thread(env.wait, lambda: len(env.rows(device)) >= 10, 120, "first events", device)
        before = [lbl for _, _, lbl in env.rows(device)]
        assert before.count(0) >= 0.9 * len(before), before  # a healthy machine is classified normal
        acks.publish(f"tf/v1/{device}/cmd", encode_command(Command(id="f1", cmd="inject_fault",
                                                                   args={"fault": "bearing_fault"})))  # fmt: skip
        payload = await asyncio.to_thread(env.wait, lambda: acks.payloads() or None, 60, "fault ack", device)
        assert decode_command_ack(payload[0]).status is AckStatus.OK
        n = len(env.rows(device))

        def faulty() -> list[int | None] | None:
            after = [lbl for _, _, lbl in env.rows(device)[n + 2 :]]
            return after if len(after) >= 10 else None

        after = await asyncio.to_thread(env.wait, faulty, 60, "events after the fault", device)
        assert after.count(3) >= 0.9 * len(after), after
        acks.publish(f"tf/v1/{device}/cmd", b'{"id":"cap","cmd":"capture","samples":2048,"label":"bearing_fault"}')
        payload = await asyncio.to_thread(env.wait, lambda: acks.payloads()[1:] or None, 60, "capture ack", device)
        ack = decode_command_ack(payload[0])
        assert ack.status is AckStatus.OK, ack
        async with httpx.AsyncClient(base_url=env.http, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as api:
            r = await api.get(f"/api/v1/devices/{device}/captures/{ack.x['capture'] if ack.x else 0}")
        assert r.status_code == 200
        cap = parse_capture(r.content)
        assert cap.channel_names == ("x", "y", "z")
        assert cap.samples.shape == (2048, 3)
        assert cap.meta.label == "bearing_fault"
        assert cap.meta.sample_rate_hz == 3200
        assert cap.meta.model == "vib-cls"
        # the models/ pipeline imports it as a recording (same layout)
        saved = env.tmp / "capture.csv"
        saved.write_bytes(r.content)
        recording = load_recording(saved)
        assert recording.label == "bearing_fault"
        assert recording.samples.shape == (2048, 3)
        assert recording.sample_rate_hz == 3200
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
        acks.close()


async def test_ota_update_swaps_the_model_without_losing_events(env: Env) -> None:
    """A signed manifest on the retained ota topic: the device downloads, verifies and swaps between two
    inferences; the stored events then carry the new version (and its behaviour), with no gap in seq."""
    import hashlib

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.device_sdk.artifact_server import ServerConfig, artifact_server
    from tests.rollouts.conftest import patch_output_bias
    from tinyfleet.ota.manifest import build_manifest, sign_manifest
    from tinyfleet_device.manifest import Compat, raw_public_key

    device = "dev-ota"
    key = Ed25519PrivateKey.generate()
    v2 = patch_output_bias(kws_path().read_bytes(), label=9, delta=2**24)  # always "yes": a version that shows
    with artifact_server(ServerConfig(body=v2)) as url:
        manifest = sign_manifest(build_manifest(
            seq=3, artifact_id="kws", version=2, size=len(v2), sha256=hashlib.sha256(v2).digest(), uri=url,
            compat=Compat(arena=128 << 10), labels=KWS_LABELS, device=device,
        ), key)  # fmt: skip
        statuses = env.watcher(f"tf/v1/{device}/ota/status")
        proc = env.start_device(device, "--interval", "0.05", "--model-id", "kws", "--mver", "1", "--trust",
                                raw_public_key(key.public_key()).hex())  # fmt: skip
        try:
            await asyncio.to_thread(env.wait, lambda: len(env.rows(device)) >= 10, 120, "first events", device)
            statuses.publish(f"tf/v1/{device}/ota", manifest)  # (not retained here: one delivery is enough)

            def mvers() -> list[tuple[int, int | None]]:
                with psycopg.connect(env.db) as conn:
                    return [(int(s), m) for s, m in conn.execute(
                        "select seq, mver from events where device_id = %s order by seq", (device,)).fetchall()]

            await asyncio.to_thread(env.wait, lambda: sum(1 for _, m in mvers() if m == 2) >= 10, 120,
                                    "events of version 2", device)  # fmt: skip
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.communicate(timeout=60)
            statuses.close()
    rows = mvers()
    assert [s for s, _ in rows] == list(range(len(rows)))  # no event lost at the swap
    versions = [m for _, m in rows]
    first_v2 = versions.index(2)
    assert set(versions[:first_v2]) == {1}
    assert set(versions[first_v2:]) == {2}  # and never back
    assert {lbl for _, s, lbl in env.rows(device) if s >= first_v2} == {9}  # the new model's behaviour
