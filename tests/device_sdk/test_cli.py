"""`tinyfleet-device run --dry-run` as installed (the console script): any model, events as JSON lines; and a
real device against a broker that only speaks MQTT 3.1.1 (amqtt, the demo's embedded broker)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.device_sdk.device_support import KWS_LABELS, ad01_path, kws_path
from tests.registry.tflite_builder import build_model
from tests.support.instances import free_port
from tinyfleet.demo.embedded import EmbeddedBroker
from tinyfleet.wire import EventKind, decode_events, decode_state

DEVICE_CLI = str(Path(sys.executable).with_name("tinyfleet-device"))


def dry_run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DEVICE_CLI, "run", "--dry-run", *args], capture_output=True, text=True, timeout=180,
                          env=env, check=False)  # fmt: skip


def test_dry_run_prints_valid_events_for_any_model(tmp_path: Path) -> None:
    done = dry_run("--model", str(kws_path()), "--labels", ",".join(KWS_LABELS), "--count", "3", "--mver", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3
    events = [decode_events(line.encode()).events[0] for line in lines]
    assert [e.seq for e in events] == [0, 1, 2]
    assert all(e.kind == EventKind.CLASSIFICATION and e.model == "kws_ref_model" and e.mver == 4 for e in events)
    assert all(e.label is not None and 0 <= e.label < 12 and e.top and len(e.top) == 3 for e in events)

    done = dry_run("--model", str(ad01_path()), "--count", "2", "--threshold", "1e9", "--model-id", "ad01")
    assert done.returncode == 0, done.stderr
    events = [decode_events(line.encode()).events[0] for line in done.stdout.splitlines()]
    assert [(e.kind, e.label, e.model) for e in events] == [(EventKind.ANOMALY, 0, "ad01")] * 2
    assert all(e.anom is not None and e.anom > 0 for e in events)

    built = tmp_path / "relu8.tflite"
    built.write_bytes(build_model(shape=(1, 8), dtype=9, quantization=(0.05, 3), op=19))  # int8 RELU
    done = dry_run("--model", str(built), "--labels", "a,b,c,d,e,f,g,h", "--count", "1")
    assert done.returncode == 0, done.stderr
    assert decode_events(done.stdout.strip().encode()).events[0].kind == EventKind.CLASSIFICATION


def test_dry_run_with_litert_marks_the_events() -> None:
    done = dry_run("--model", str(kws_path()), "--count", "1", "--backend", "litert")
    assert done.returncode == 0, done.stderr
    assert decode_events(done.stdout.strip().encode()).events[0].x == {"runtime": "litert"}
    assert "LiteRT" in done.stderr


def test_dry_run_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    done = dry_run("--model", str(bad))
    assert done.returncode == 2
    assert "not a TFLite model" in done.stderr
    assert done.stdout == ""
    done = dry_run("--model", str(kws_path()), "--features", "nope")
    assert done.returncode == 2
    assert "unknown feature pipeline 'nope'" in done.stderr
    done = dry_run("--model", str(kws_path()), "--source", "thermometer")
    assert done.returncode == 2
    assert "unknown source 'thermometer'" in done.stderr


async def test_device_falls_back_to_mqtt_311(tmp_path: Path) -> None:
    broker = EmbeddedBroker(port=free_port())
    await broker.start()
    try:
        seen: list[tuple[str, bytes]] = []
        ready = threading.Event()
        sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fallback-watch", protocol=mqtt.MQTTv311)
        sub.on_connect = lambda c, *_a: c.subscribe("tf/v1/dev-311/#", qos=1)
        sub.on_subscribe = lambda *_a: ready.set()
        sub.on_message = lambda _c, _u, m: seen.append((m.topic, bytes(m.payload)))
        sub.connect(broker.host, broker.port)
        sub.loop_start()
        assert await asyncio.to_thread(ready.wait, 10)
        proc = await asyncio.create_subprocess_exec(
            DEVICE_CLI, "run", "--model", str(kws_path()), "--device-id", "dev-311", "--mqtt-url", broker.url,
            "--state-dir", str(tmp_path / "dev"), "--count", "3", "--interval", "0.05", "--summary",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 180)
        assert proc.returncode == 0, err.decode()
        (session,) = json.loads(out.decode().strip().splitlines()[-1])["sessions"]
        assert session["mqtt"] == "3.1.1"
        assert session["acked"] == 3
        assert "refused MQTT 5" in err.decode()
        for _ in range(100):
            if len([t for t, _ in seen if t.endswith("/evt")]) >= 3:
                break
            await asyncio.sleep(0.05)
        events = [e for t, p in seen if t.endswith("/evt") for e in decode_events(p).events]
        assert sorted(e.seq for e in events) == [0, 1, 2]
        births = [decode_state(p) for t, p in seen if t.endswith("/state")]
        assert any(s is not None and s.online and s.x and s.x.get("mqtt") == "3.1.1" for s in births)
        sub.loop_stop()
        sub.disconnect()
    finally:
        await broker.stop()
