"""The C SDK's Linux example (device_sdk/c/examples/linux_mosquitto, libmosquitto) against real services:
its events are stored exactly once by the real `tinyfleet ingest` across a broker restart (the device buffers in
its ring and replays), and it applies a manifest signed by the service's signer while refusing a tampered one
and never activating an artifact with a wrong hash or more bytes than declared."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.device_sdk.test_c_sdk import REPO, SDK, _need, _run
from tests.ingest.conftest import wait_until
from tests.support.instances import MosquittoInstance
from tinyfleet.ota.manifest import sign_manifest
from tinyfleet.store.migrate import upgrade
from tinyfleet.wire import OtaState, decode_ota_status
from tinyfleet_device.manifest import Component, Manifest, raw_public_key

TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))


@pytest.fixture(scope="module")
def device_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cmake = _need("cmake", "cmake")
    build = tmp_path_factory.mktemp("c-sdk-linux")
    _run([cmake, "-S", str(SDK), "-B", str(build), "-DTF_BUILD_TESTS=OFF", "-DCMAKE_C_COMPILER=gcc"], REPO)
    _run([cmake, "--build", str(build), "-j", "2", "--target", "tf_linux_device"], REPO)
    return build / "examples" / "linux_mosquitto" / "tf_linux_device"


@pytest.fixture
def broker() -> Iterator[MosquittoInstance]:
    with MosquittoInstance() as mq:
        yield mq


def run_device(binary: Path, broker: MosquittoInstance, device: str, state: Path, *args: str) -> subprocess.Popen[str]:
    state.mkdir(exist_ok=True)
    cmd = [str(binary), "--port", str(broker.port), "--device", device, "--dir", str(state), *args]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def events_stored(url: str) -> tuple[int, int]:
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute(
            "select count(*), count(distinct (device_id, boot, seq)) from events where device_id = 'c-dev-1'"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def test_events_stored_exactly_once_across_a_broker_restart(
    device_bin: Path, broker: MosquittoInstance, database_url: str, tmp_path: Path
) -> None:
    upgrade(database_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_")}
    env.update(
        TINYFLEET_DATABASE_URL=database_url,
        TINYFLEET_MQTT_URL=broker.url,
        TINYFLEET_MQTT_CLIENT_ID="c-sdk-ingest",
        TINYFLEET_BATCH_MAX_DELAY_MS="5",
    )
    log = tmp_path / "ingest.log"
    with log.open("ab") as out:
        worker = subprocess.Popen([TINYFLEET, "ingest"], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # the service's start-up imports take tens of seconds on a loaded 2-core CI machine: a readiness bound
        assert wait_until(lambda: "connected to MQTT" in log.read_text(errors="replace"), 120), log.read_text()
        device = run_device(device_bin, broker, "c-dev-1", tmp_path / "dev", "--events", "150", "--interval-ms", "10")
        assert wait_until(lambda: events_stored(database_url)[0] >= 10, 20)
        broker.stop()  # the device keeps producing into its ring meanwhile
        time.sleep(1.0)
        broker.start()
        first = finish(device)
        assert first == {"boot": 1, "events": 150, "acked": 150, "dropped": 0, "ota": "none", "mver": 1}
        assert wait_until(lambda: events_stored(database_url) == (150, 150), 30), events_stored(database_url)
        # the next boot: boot 2, seq from 0 again, all new keys
        second = finish(run_device(device_bin, broker, "c-dev-1", tmp_path / "dev", "--events", "5"))
        assert second["boot"] == 2
        assert wait_until(lambda: events_stored(database_url) == (155, 155), 30), events_stored(database_url)
        with psycopg.connect(database_url) as conn:
            boots = conn.execute("select boot, count(*) from events group by boot order by boot").fetchall()
        assert boots == [(1, 150), (2, 5)]
    finally:
        worker.terminate()
        worker.wait(20)


# --------------------------------------------------------------------------------------------------- OTA
class _Blob(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)  # no Range support: the POSIX port skips to its offset
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def blob_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Blob]]]:
    handler = type("Blob", (_Blob,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, handler
    server.shutdown()


def _statuses(broker: MosquittoInstance, device: str) -> tuple[mqtt.Client, list[Any]]:
    seen: list[Any] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{device}")
    client.on_message = lambda _c, _u, msg: seen.append(decode_ota_status(msg.payload))
    client.connect(broker.host, broker.port)
    client.subscribe(f"tf/v1/{device}/ota/status", qos=1)
    client.loop_start()
    time.sleep(0.2)
    return client, seen


@pytest.mark.parametrize(
    ("case", "expected"),
    [("valid", "applied"), ("tampered", "bad_signature"), ("wrong_hash", "hash_mismatch"), ("longer", "size_mismatch")],
)
def test_ota_manifest_signed_by_the_service(
    device_bin: Path,
    broker: MosquittoInstance,
    blob_server: tuple[ThreadingHTTPServer, type[_Blob]],
    tmp_path: Path,
    case: str,
    expected: str,
) -> None:
    server, handler = blob_server
    artifact = bytes(range(256)) * 40 + b"model"
    handler.body = {"wrong_hash": artifact[:-1] + b"X", "longer": artifact + b"!"}.get(case, artifact)
    key = Ed25519PrivateKey.generate()
    now = int(time.time())
    manifest = Manifest(
        seq=7, issued_at=now - 60, expires_at=now + 3600, component=Component.MODEL, artifact_id="vib-cls",
        version=12, size=len(artifact), sha256=hashlib.sha256(artifact).digest(),
        uri=f"http://127.0.0.1:{server.server_address[1]}/api/v1/models/vib-cls/versions/12/blob", device="c-ota-1",
    )  # fmt: skip
    signed = bytearray(sign_manifest(manifest, key))
    if case == "tampered":
        signed[-80] ^= 0x01  # inside the payload, after signing
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ota-publisher")
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    pub.publish("tf/v1/c-ota-1/ota", bytes(signed), qos=1, retain=True).wait_for_publish(5)
    watcher, seen = _statuses(broker, "c-ota-1")
    try:
        state = tmp_path / "dev"
        result = finish(
            run_device(
                device_bin, broker, "c-ota-1", state, "--events", "1", "--ota-wait-s", "20",
                "--trust", raw_public_key(key.public_key()).hex(),
            )
        )  # fmt: skip
        assert result["ota"] == expected
        assert wait_until(lambda: any(s.state in (OtaState.APPLIED, OtaState.FAILED) for s in seen), 5)
        if expected == "applied":
            assert (state / "slot.active").read_bytes() == artifact
            assert (state / "ota_seq").read_text().strip() == "7"
            assert result["mver"] == 12
            assert [s.state for s in seen] == [
                OtaState.VERIFIED,  # the manifest
                OtaState.DOWNLOADING,
                OtaState.DOWNLOADED,
                OtaState.VERIFIED,  # the artifact, before it is activated
                OtaState.APPLIED,
            ]
            assert {s.seq for s in seen} == {7}
            assert seen[-1].mver == 12
        else:
            assert not (state / "slot.active").exists()  # never activated
            assert not (state / "ota_seq").exists()  # the sequence number is not consumed
            assert seen[-1].state is OtaState.FAILED
            assert seen[-1].reason == expected
            assert seen[-1].seq == (0 if case == "tampered" else 7)
    finally:
        watcher.loop_stop()
        pub.loop_stop()
