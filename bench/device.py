"""bench/device.py — what the reference device costs around TFLite Micro, and how many simulated devices a core runs.

1. **Device loop over the bare invoke**, per model: the loop a device runs per inference — features from a raw
   sensor window, input quantization, the TFLM invoke, output interpretation, the v1 event, CBOR, a QoS 1
   publish to the local broker — against the bare ``invoke`` of the same interpreter on an already quantized
   input, both as process CPU time over the same number of iterations in the same run. Sampling the sensor is
   not counted (on a device it is the ADC's DMA). ``overhead_pct`` = (loop − invoke) / invoke.
   Models: the project's ``vib-cls`` and ``vib-ad`` (``models/artifacts``), MLCommons Tiny's ``ad01`` and
   ``kws`` (``../shared/models`` or ``TINYFLEET_SHARED_MODELS``). Target: ≤ 10 % for the vibration models.
2. **Fleet simulator capacity**: ``tinyfleet_device.fleet.Fleet`` (profile ``healthy``, 1 event/s per device,
   one MQTT connection per device) for increasing fleet sizes; the process's CPU per wall second and the event
   rate the broker acknowledged in a steady window. ``devices_per_core`` = devices / CPU fraction at the
   largest size sustained (≥ 97 % of the offered rate, CPU < 1 core). Target ≥ 1,000.

The broker is the local Mosquitto (``--mqtt-url``), on a topic prefix of the bench's own (no ingest stores it).
Ends with one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.wire import Topics, encode_event
from tinyfleet_device.features import FEATURES, get_pipeline
from tinyfleet_device.fleet import Fleet, FleetModel
from tinyfleet_device.runner import ModelRunner
from tinyfleet_device.sensors.vibration import Fault, VibrationSimulator

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "models" / "artifacts"
SHARED = Path(os.environ.get("TINYFLEET_SHARED_MODELS") or REPO.parent / "shared" / "models")


KWS_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown"]


@dataclass
class Case:
    name: str
    path: Path
    features: str
    labels: list[str] | None
    window: Callable[[], tuple[np.ndarray, float]]  # a raw sensor window and its sample rate
    native_rate_hz: float  # inferences per second the sensor's window length implies


def _vibration_window() -> tuple[np.ndarray, float]:
    sim = VibrationSimulator(seed=3)
    sim.inject(Fault.BEARING, 1.0)
    sim.read(1024)
    return sim.read(1024), sim.sample_rate_hz


def _sound_window() -> tuple[np.ndarray, float]:
    from tinyfleet_device.sensors.sound import MachineSoundSimulator  # audio sources (issue 7)

    sim = MachineSoundSimulator(seed=3)
    return sim.read(16_000), 16_000.0


def _speech_window() -> tuple[np.ndarray, float]:
    from tinyfleet_device.sensors.keyword import synthesize

    return synthesize("yes"), 16_000.0


def cases() -> tuple[list[Case], list[str]]:
    found: list[Case] = []
    missing: list[str] = []
    wanted = [
        ("vib-cls", ARTIFACTS / "vib-cls.tflite", "vib-fft", None, _vibration_window, 3200 / 1024),
        ("vib-ad", ARTIFACTS / "vib-ad.tflite", "vib-fft", None, _vibration_window, 3200 / 1024),
        ("ad01", SHARED / "ad01_int8.tflite", "ad-logmel", None, _sound_window, 1.0),
        ("kws", SHARED / "kws_ref_model.tflite", "kws-mfcc",
         KWS_LABELS, _speech_window, 1.0),
    ]  # fmt: skip
    for name, path, feats, labels, window, rate in wanted:
        if not path.is_file():
            missing.append(f"{name}: no {path.name}")
        elif feats not in FEATURES:
            missing.append(f"{name}: no feature pipeline {feats!r}")
        else:
            found.append(Case(name, path, feats, labels, window, rate))
    return found, missing


class AckedPublisher:
    """A paho QoS 1 publisher (network thread) that can wait for every PUBACK."""

    def __init__(self, host: str, port: int) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-dev-{secrets.token_hex(3)}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.acked = 0
        self.client.on_publish = self._on_publish
        self.client.connect(host, port)
        self.client.loop_start()

    def _on_publish(self, *_: object) -> None:
        self.acked += 1

    def wait(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acked < n and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.acked < n:
            raise SystemExit(f"bench/device.py: only {self.acked} of {n} PUBACKs arrived")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def measure_loop(case: Case, publisher: AckedPublisher, topic: str, iterations: int) -> dict[str, Any]:
    model = FleetModel.from_files(case.path, labels=case.labels, features=case.features)
    runner: ModelRunner = model.runner
    pipeline = get_pipeline(case.features)
    window, rate = case.window()
    feats = np.asarray(pipeline(window, rate), dtype=np.float32).ravel()
    per_input = int(np.prod(runner.input_shape))
    invocations = max(1, feats.size // per_input)  # a clip's features may hold several model inputs (ad01)
    q = runner.input.quantize(feats[:per_input].reshape(runner.input_shape))
    impl = runner._impl  # the interpreter itself: the bare invoke
    for _ in range(20):
        impl.run(q)
        model.event(pipeline(window, rate), seq=0, boot=1, ts=int(time.time() * 1000))

    def bare() -> int:
        started = time.process_time_ns()
        for _ in range(iterations * invocations):
            impl.run(q)
        return time.process_time_ns() - started

    def features_only() -> int:
        started = time.process_time_ns()
        for _ in range(iterations):
            pipeline(window, rate)
        return time.process_time_ns() - started

    def loop() -> int:
        base = publisher.acked
        started = time.process_time_ns()
        for seq in range(iterations):
            ev = model.event(pipeline(window, rate), seq=seq, boot=1, ts=int(time.time() * 1000))
            publisher.client.publish(topic, encode_event(ev), qos=1)
        publisher.wait(base + iterations)
        return time.process_time_ns() - started

    bare_runs, loop_runs, feature_runs = [], [], []
    for _ in range(3):  # interleaved: all three see the same machine load
        bare_runs.append(bare() / iterations / 1000)
        loop_runs.append(loop() / iterations / 1000)
        feature_runs.append(features_only() / iterations / 1000)
    invoke_us = statistics.median(bare_runs)
    loop_us = statistics.median(loop_runs)
    features_us = statistics.median(feature_runs)
    rest_us = loop_us - features_us - invoke_us
    return {
        "model": case.name,
        "features": case.features,
        "invoke_us": round(invoke_us, 1),
        "loop_us": round(loop_us, 1),
        "overhead_pct": round((loop_us - invoke_us) / invoke_us * 100, 1),
        "invocations": invocations,
        "features_us": round(features_us, 1),
        # quantize + interpret + event + CBOR + publish, i.e. the loop without the features and the invoke
        "rest_us": round(rest_us, 1),
        "overhead_pct_without_features": round(rest_us / invoke_us * 100, 1),
        "native_rate_hz": round(case.native_rate_hz, 3),
        "cpu_pct_at_native_rate": round(loop_us * case.native_rate_hz / 1e4, 3),
        "arena_bytes": runner.arena_size,
        "backend": runner.backend,
    }


async def fleet_run(
    model: FleetModel, devices: int, mqtt_url: str, warmup_s: float, measure_s: float
) -> dict[str, Any]:
    fleet = Fleet([model], count=devices, mqtt_url=mqtt_url, topic_prefix=f"bench{secrets.token_hex(3)}/v1",
                  id_prefix=f"b{secrets.token_hex(2)}-", profile="healthy", rate_hz=1.0, seed=devices)  # fmt: skip
    stop = asyncio.Event()
    async with fleet:
        task = asyncio.create_task(fleet.run(stop), name="bench-fleet")
        await asyncio.sleep(warmup_s)
        cpu0, wall0, ev0 = time.process_time(), time.monotonic(), fleet.totals().events
        await asyncio.sleep(measure_s)
        cpu1, wall1, totals = time.process_time(), time.monotonic(), fleet.totals()
        stop.set()
        await task
    wall = wall1 - wall0
    cpu_frac = (cpu1 - cpu0) / wall
    rate = (totals.events - ev0) / wall
    return {
        "devices": devices,
        "events_per_s": round(rate, 1),
        "offered_per_s": devices,
        "cpu_cores": round(cpu_frac, 3),
        "connected": totals.connected,
        "sustained": rate >= 0.97 * devices and cpu_frac < 1.0,
        "cpu_us_per_event": round((cpu1 - cpu0) / max(1, totals.events - ev0) * 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mqtt-url", default=os.environ.get("TINYFLEET_MQTT_URL", "mqtt://127.0.0.1:1883"))
    ap.add_argument("--iterations", type=int, default=2000)
    ap.add_argument("--fleet-sizes", default="250,500,1000,1500")
    ap.add_argument("--warmup-s", type=float, default=6.0)
    ap.add_argument("--measure-s", type=float, default=15.0)
    args = ap.parse_args()
    host_port = args.mqtt_url.split("://", 1)[1].rsplit("@", 1)[-1]
    host, _, port = host_port.partition(":")
    found, missing = cases()
    if not found:
        raise SystemExit(f"bench/device.py: no model to measure ({'; '.join(missing)})")
    publisher = AckedPublisher(host, int(port or 1883))
    topic = Topics(f"bench{secrets.token_hex(3)}/v1").evt("bench-device")
    loops = []
    for case in found:
        row = measure_loop(case, publisher, topic, args.iterations)
        loops.append(row)
        print(f"{row['model']:8} invoke {row['invoke_us']:8.1f} µs ({row['invocations']}×)  "
              f"loop {row['loop_us']:8.1f} µs"
              f" = features {row['features_us']:.1f} + invoke + rest {row['rest_us']:.1f};  overhead "
              f"{row['overhead_pct']:.1f} % ({row['overhead_pct_without_features']:.1f} % without the features)",
              flush=True)  # fmt: skip
    publisher.close()
    for note in missing:
        print(f"not measured: {note}", flush=True)

    fleet_case = next((c for c in found if c.name == "vib-cls"), found[0])
    model = FleetModel.from_files(fleet_case.path, labels=fleet_case.labels, features=fleet_case.features)
    fleets = []
    for n in (int(x) for x in args.fleet_sizes.split(",")):
        row = asyncio.run(fleet_run(model, n, args.mqtt_url, args.warmup_s, args.measure_s))
        fleets.append(row)
        print(f"fleet {n:5} devices: {row['events_per_s']:8.1f} events/s acknowledged, {row['cpu_cores']:.3f} "
              f"cores, {row['cpu_us_per_event']} µs CPU/event, sustained={row['sustained']}", flush=True)  # fmt: skip
    sustained = [r for r in fleets if r["sustained"]]
    best = max(sustained, key=lambda r: r["devices"]) if sustained else None
    devices_per_core = round(best["devices"] / best["cpu_cores"]) if best else 0
    vib = [r for r in loops if r["model"].startswith("vib-")]
    out = {
        "bench": "device",
        "loops": loops,
        "vib_overhead_pct_max": max((r["overhead_pct"] for r in vib), default=None),
        "fleet": fleets,
        "fleet_model": fleet_case.name,
        "fleet_max_sustained_devices": best["devices"] if best else 0,
        "devices_per_core": devices_per_core,
        "ratio": round(devices_per_core / 1000, 3),  # against the target of 1,000 devices per core
        "not_measured": missing,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    sys.exit(main())
