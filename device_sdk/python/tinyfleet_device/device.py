"""The reference device: sensor → features → TFLM → v1 events over MQTT, store-and-forward, telemetry, commands.

    device = Device(DeviceConfig(device_id="press-007", password="…", mqtt_url="mqtt://broker:1883",
                                 state_dir=Path("state"), model_path=Path("vib-cls.tflite"), features="vib-fft"))
    device.run()            # until stopped (SIGTERM/SIGINT), or `count` events were produced

One **boot** is one :class:`Session`: the persisted boot counter is incremented, the model loaded, the source
opened, the MQTT link started (birth ``state`` retained on every connect, LWT ``online: false``), and the loop
produces an event per window. Every event is written to the on-disk store **before** it is published; the
uplink thread publishes from the store oldest first (a batch when more than one is waiting), and an event
leaves the store only when the broker acknowledged it (PUBACK). So events survive a broker outage and a
kill -9 of the process; a replay after a restart carries the original ``(boot, seq)`` and the service stores it
once. The ``reboot`` command ends the session and starts the next boot in the same process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import httpx
import msgspec
import numpy as np
import paho.mqtt.client as mqtt

from tinyfleet.wire import (
    DEFAULT_LIMITS,
    AckStatus,
    Caps,
    CommandAck,
    DeviceState,
    EventKind,
    OtaStatus,
    Telemetry,
    Topics,
    WireError,
    encode_command_ack,
    encode_event,
    encode_ota_status,
    encode_state,
    encode_telemetry,
    validate_device_id,
)

from .capture import CaptureMeta, write_capture
from .commands import CommandProcessor, Outcome
from .errors import DeviceError, SourceError
from .features import FeaturePipeline, get_pipeline
from .manifest import DeviceCapabilities, TrustedKeys
from .mqtt import MqttLink, MqttOptions, ProtocolChoice
from .ota import InstalledModel, OtaClient, OtaError
from .pipeline import InferencePipeline
from .runner import InferenceResult, ModelRunner
from .sources import open_source
from .store import DEFAULT_MAX_EVENTS, DeviceStore, StoredEvent

__all__ = ["Device", "DeviceConfig", "EventMaker", "Session", "firmware_version"]

log = logging.getLogger(__name__)

Format = Literal["cbor", "json"]


def firmware_version() -> str:
    try:
        return f"tinyfleet-device/{metadata.version('tinyfleet')}"
    except metadata.PackageNotFoundError:
        return "tinyfleet-device/dev"


@dataclass(frozen=True)
class DeviceConfig:
    device_id: str
    model_path: Path
    state_dir: Path = Path("device-state")
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    password: str | None = None
    labels: tuple[str, ...] | None = None
    features: str = "raw"
    source: str = "random"
    model_id: str | None = None  # default: the file name without .tflite
    mver: int | None = None
    kind: Literal["classification", "anomaly", "regression"] | None = None
    threshold: float | None = None
    interval_s: float = 1.0
    fmt: Format = "cbor"
    telemetry_s: float = 30.0
    http_url: str | None = None  # the service, for capture uploads (and OTA downloads)
    protocol: ProtocolChoice = "auto"
    topic_prefix: str = "tf/v1"
    max_events: int = DEFAULT_MAX_EVENTS
    batch_max: int = 64
    window_msgs: int = 8  # event messages in flight (handed to paho, not yet acknowledged)
    arena_size: int | None = None  # the model's arena; None: found by allocation search
    arena_capacity: int = 256 * 1024  # the (simulated) device's tensor arena
    flash: int = 1024 * 1024
    ram: int = 320 * 1024
    fw: str = field(default_factory=firmware_version)
    seed: int = 0
    count: int | None = None  # stop after producing this many events (None: run until stopped)
    drain_timeout_s: float = 30.0  # with `count`: wait this long for the store to drain before exiting
    backend: str | None = None
    trusted_keys: tuple[bytes, ...] = ()  # OTA manifest signers (raw Ed25519 public keys)
    initial_fault: tuple[str, float] | None = None  # injected into the simulated sensor at every boot

    def __post_init__(self) -> None:
        validate_device_id(self.device_id)
        if not (math.isfinite(self.interval_s) and self.interval_s >= 0):
            raise DeviceError("the inference interval must be a non-negative number of seconds")
        if not 1 <= self.batch_max <= DEFAULT_LIMITS.max_batch_events:
            raise DeviceError(f"batch_max must be in 1..{DEFAULT_LIMITS.max_batch_events}")

    @property
    def model_name(self) -> str:
        return self.model_id or self.model_path.name.removesuffix(".tflite")


class EventMaker:
    """(boot, seq) numbering and the threshold rule, shared by the device and the dry run."""

    def __init__(
        self, runner: ModelRunner, *, boot: int, model: str | int, mver: int | None, threshold: float | None
    ) -> None:
        self.runner = runner
        self.boot = boot
        self.seq = 0
        self.model = model
        self.mver = mver
        self.threshold = threshold

    def make(self, result: InferenceResult, *, ts: int | None) -> Any:
        """The next event, or None when a classifier's confidence is below the threshold (not published)."""
        label: int | None = None
        if result.kind == EventKind.ANOMALY and self.threshold is not None and result.anomaly is not None:
            label = int(result.anomaly >= self.threshold)
        elif (
            result.kind == EventKind.CLASSIFICATION
            and self.threshold is not None
            and result.score is not None
            and result.score < self.threshold
        ):
            return None
        event = self.runner.event(result, seq=self.seq, boot=self.boot, model=self.model, mver=self.mver, ts=ts,
                                  label=label)  # fmt: skip
        self.seq += 1
        if self.seq > 0xFFFF_FFFF:
            raise DeviceError("seq would wrap: restart the device (a new boot)")
        return event


def _batch(rows: list[StoredEvent]) -> bytes:
    """One payload for stored events of one format: the event itself, or a batch (array) of them."""
    if len(rows) == 1:
        return rows[0].payload
    if rows[0].fmt == "json":
        return b"[" + b",".join(r.payload for r in rows) + b"]"
    n = len(rows)
    head = bytes((0x80 | n,)) if n < 24 else b"\x98" + bytes((n,))
    return head + b"".join(r.payload for r in rows)


class Uplink:
    """Publishes stored events oldest first, at most ``window`` messages in flight; forgets them on PUBACK.

    paho calls ``on_published`` with its own lock held, so acknowledgements are queued and applied by this
    thread (never touching the store or paho from paho's callback)."""

    def __init__(self, store: DeviceStore, link: MqttLink, topic: str, *, batch_max: int, window: int) -> None:
        self.store = store
        self.link = link
        self.topic = topic
        self.batch_max = batch_max
        self.window = window
        self._inflight: dict[int, list[int]] = {}
        self._acks: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._last_id = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tf-uplink", daemon=True)
        self.published_events = 0
        self.published_messages = 0
        self.acked_events = 0
        self.rejected_events = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def wake(self) -> None:
        self._wake.set()

    def on_published(self, mid: int, reason: int = 0) -> None:
        self._acks.put((mid, reason))
        self._wake.set()

    def on_disconnect(self) -> None:
        self._wake.set()

    def _apply_acks(self) -> None:
        done: list[int] = []
        while True:
            try:
                mid, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            ids = self._inflight.pop(mid, None)
            if ids is None:
                continue
            if reason >= 0x80:
                # the broker will never take them (e.g. not authorized): drop and count rather than retry forever
                log.error("the broker refused %d event(s) (reason %d): dropped", len(ids), reason)
                self.rejected_events += len(ids)
            else:
                self.acked_events += len(ids)
            done.extend(ids)
        if done:
            self.store.ack(done)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            self._apply_acks()
            if not self.link.connected.is_set() or len(self._inflight) >= self.window:
                self._wake.wait(0.2)
                continue
            rows = self.store.pending(self.batch_max, after_id=self._last_id)
            if not rows:
                self._wake.wait(0.5)
                continue
            rows = [r for r in rows if r.fmt == rows[0].fmt]
            payload = _batch(rows)
            info = self.link.publish(self.topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                self._wake.wait(0.2)  # not connected after all: the rows stay pending
                continue
            self._inflight[info.mid] = [r.id for r in rows]
            self._last_id = rows[-1].id
            self.published_events += len(rows)
            self.published_messages += 1


@dataclass
class _Stats:
    infer_count: int = 0
    lat_sum: int = 0
    lat_n: int = 0
    lat_max: int = 0

    def add(self, latency_us: int) -> None:
        self.infer_count += 1
        self.lat_sum += latency_us
        self.lat_n += 1
        self.lat_max = max(self.lat_max, latency_us)

    def take(self) -> tuple[int | None, int | None]:
        if not self.lat_n:
            return None, None
        avg, mx = self.lat_sum // self.lat_n, self.lat_max
        self.lat_sum = self.lat_n = self.lat_max = 0
        return min(avg, 0xFFFF_FFFF), min(mx, 0xFFFF_FFFF)


class Session:
    """One boot of the device. ``run()`` returns why it ended: ``"stopped"``, ``"count"`` or ``"reboot"``."""

    def __init__(self, config: DeviceConfig, store: DeviceStore, boot: int, stop: threading.Event) -> None:
        self.config = config
        self.store = store
        self.boot = boot
        self._stop_all = stop
        self.started = time.monotonic()
        self.topics = Topics(config.topic_prefix)
        c = config
        self.model: str | int = c.model_name
        self.mver = c.mver
        self.ota: OtaClient[ModelRunner] | None = None
        self.runner = self._load_model()
        self.pipeline_def: FeaturePipeline = get_pipeline(c.features)
        source = open_source(c.source, pipeline=self.pipeline_def, seed=c.seed + boot)
        self.pipeline = InferencePipeline(self.runner, self.pipeline_def, source)
        settings = store.get("settings", {}) or {}
        self.interval_s = float(settings.get("interval_ms", c.interval_s * 1000)) / 1000
        threshold = settings.get("threshold", c.threshold)
        self.events = EventMaker(self.runner, boot=boot, model=self.model, mver=self.mver, threshold=threshold)
        for fault, severity in (settings.get("faults") or {}).items():
            try:
                source.inject(fault, float(severity))
            except SourceError as exc:
                log.warning("could not re-apply the fault %s: %s", fault, exc)
        if c.initial_fault is not None:
            source.inject(*c.initial_fault)
        self.stats = _Stats()
        self._commands: queue.Queue[bytes] = queue.Queue(maxsize=64)
        self._swaps: queue.SimpleQueue[tuple[ModelRunner, InstalledModel, threading.Event]] = queue.SimpleQueue()
        self._reboot = threading.Event()
        self.produced = 0
        self._ota_thread: threading.Thread | None = None
        self.link = MqttLink(
            MqttOptions(c.mqtt_url, c.device_id, c.password, protocol=c.protocol),
            will_topic=self.topics.state(c.device_id),
            will=encode_state(DeviceState(online=False, boot=boot, reason="lwt")),
            on_connect=self._on_connect,
            on_message=self._on_message,
            on_published=self._on_published,
            on_disconnect=self._on_disconnect,
        )
        self.uplink = Uplink(store, self.link, self.topics.evt(c.device_id), batch_max=c.batch_max,
                             window=c.window_msgs)  # fmt: skip
        self.processor = CommandProcessor(self, self._send_ack, boot=boot)
        self._http: httpx.Client | None = None
        self._capture_threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------- mqtt
    def birth(self) -> DeviceState:
        return DeviceState(
            ts=_now_ms(), online=True, boot=self.boot, model=self.model, mver=self.mver, fw=self.config.fw,
            caps=Caps(flash=self.config.flash, ram=self.config.ram, arena=self.config.arena_capacity,
                      ops=list(self.runner.ops)),
            x={"runtime": self.runner.backend, "mqtt": self.link.protocol, "features": self.pipeline_def.name},
        )  # fmt: skip

    def _on_connect(self) -> None:
        dev = self.config.device_id
        self.link.publish(self.topics.state(dev), encode_state(self.birth()), qos=1, retain=True)
        self.link.subscribe([self.topics.cmd(dev), self.topics.ota(dev)])
        self.uplink.wake()

    def _on_message(self, topic: str, payload: bytes) -> None:
        dev = self.config.device_id
        if topic == self.topics.cmd(dev):
            try:
                self._commands.put_nowait(payload)
            except queue.Full:
                log.warning("command queue full: command dropped")
        elif topic == self.topics.ota(dev):
            self._on_ota(payload)

    def _on_published(self, mid: int, reason: int) -> None:
        self.uplink.on_published(mid, reason)

    def _on_disconnect(self) -> None:
        self.uplink.on_disconnect()

    def _send_ack(self, ack: CommandAck) -> None:
        ack = msgspec.structs.replace(ack, ts=_now_ms())
        try:
            payload = encode_command_ack(ack, fmt=self.config.fmt)
        except WireError as exc:
            log.error("cannot encode an ack: %s", exc)
            return
        self.link.publish(self.topics.cmd_ack(self.config.device_id), payload, qos=1)

    # -------------------------------------------------------------------------------------------- OTA
    def _load_model(self) -> ModelRunner:
        """The model to run at this boot: the one the OTA client installed last, else the configured file
        (which the OTA client then adopts as the factory model it can revert to)."""
        c = self.config
        if not c.trusted_keys:
            return ModelRunner.from_file(c.model_path, labels=c.labels, arena_size=c.arena_size, backend=c.backend,
                                         kind=c.kind)  # fmt: skip
        factory = ModelRunner.from_file(c.model_path, labels=c.labels, arena_size=c.arena_size, backend=c.backend,
                                        kind=c.kind)  # fmt: skip
        self.ota = OtaClient(
            state_dir=c.state_dir / "ota", trusted_keys=TrustedKeys(list(c.trusted_keys)),
            capabilities=DeviceCapabilities(flash=c.flash, ram=c.ram, arena=c.arena_capacity,
                                            ops=frozenset(factory.ops), device_id=c.device_id),
            load_model=self._load_update, report=self._report_ota, swap=self._swap,
            auth=(c.device_id, c.password or ""), firmware=c.fw,
        )  # fmt: skip
        try:
            loaded = self.ota.load_active()
        except (OtaError, DeviceError) as exc:
            log.error("the model the last update installed cannot be loaded (%s): running the configured one", exc)
            loaded = None
        if loaded is not None and loaded[1].seq > 0:
            runner, installed = loaded
            self._adopt_identity(runner, installed)
            log.info("running %s v%s (installed by OTA manifest %d)", installed.model, installed.version, installed.seq)
            return runner
        self.ota.adopt(c.model_path.read_bytes(), model=self.model, version=self.mver or 0, labels=c.labels)
        return factory

    def _adopt_identity(self, runner: ModelRunner, installed: InstalledModel) -> None:
        if installed.labels and len(installed.labels) == runner.output.size:
            runner.labels = list(installed.labels)
        self.model = installed.model
        self.mver = int(installed.version) if str(installed.version).isdigit() else self.mver

    def _load_update(self, data: bytes) -> ModelRunner:
        """A new interpreter for an update's bytes; refused (ModelError) when it cannot take this device's
        features (the same number of input values as the model it replaces)."""
        c = self.config
        runner = ModelRunner.from_bytes(data, backend=c.backend)
        current = getattr(self, "runner", None)
        if current is not None and runner.input.size != current.input.size:
            raise DeviceError(
                f"the new model takes {runner.input.size} input values, this device's features give "
                f"{current.input.size}"
            )
        return runner

    def _swap(self, runner: ModelRunner, installed: InstalledModel) -> None:
        """Called by the OTA client: the loop swaps the runner between two inferences (no event is lost)."""
        done = threading.Event()
        self._swaps.put((runner, installed, done))
        self._wake_loop()
        if not done.wait(30):
            raise DeviceError("the device loop did not take the new model within 30 s")

    def _apply_swaps(self) -> None:
        while True:
            try:
                runner, installed, done = self._swaps.get_nowait()
            except queue.Empty:
                return
            self._adopt_identity(runner, installed)
            self.runner = runner
            self.pipeline.runner = runner
            self.events.runner = runner
            self.events.model = self.model
            self.events.mver = self.mver
            done.set()
            log.info("now running %s v%s", self.model, self.mver)
            if self.link.connected.is_set():
                self.link.publish(self.topics.state(self.config.device_id), encode_state(self.birth()), qos=1,
                                  retain=True)  # fmt: skip

    def _report_ota(self, status: OtaStatus) -> None:
        self.link.publish(self.topics.ota_status(self.config.device_id), encode_ota_status(status, fmt=self.config.fmt))

    def _on_ota(self, payload: bytes) -> None:
        """Hand a manifest of the retained ``ota`` topic to the OTA client, in a worker thread."""
        if not payload:
            return
        if self.ota is None:
            log.warning("an OTA manifest arrived but no trusted key is configured (--trust): ignored")
            return
        if self._ota_thread is not None and self._ota_thread.is_alive():
            self.ota.cancel()  # a newer manifest replaces the one in progress
            self._ota_thread.join(30)
        self._ota_thread = threading.Thread(target=self.ota.handle_manifest, args=(payload,), name="tf-ota",
                                            daemon=True)  # fmt: skip
        self._ota_thread.start()

    # ---------------------------------------------------------------------------------------- controls
    def _save_setting(self, key: str, value: Any) -> None:
        settings = dict(self.store.get("settings", {}) or {})
        settings[key] = value
        self.store.set("settings", settings)

    def set_threshold(self, threshold: float) -> None:
        self.events.threshold = threshold
        self._save_setting("threshold", threshold)

    def set_interval_ms(self, interval_ms: int) -> None:
        self.interval_s = interval_ms / 1000
        self._save_setting("interval_ms", interval_ms)

    def inject_fault(self, fault: str, severity: float) -> None:
        self.pipeline.source.inject(fault, severity)
        faults = {} if fault == "normal" else dict((self.store.get("settings", {}) or {}).get("faults") or {})
        if fault != "normal":
            faults[fault] = severity
        self._save_setting("faults", faults)

    def reboot(self) -> None:
        self._reboot.set()

    def capture(
        self, samples: int | None, seconds: float | None, label: str | None, done: Callable[[Outcome], None]
    ) -> None:
        source = self.pipeline.source
        if seconds is not None:
            samples = max(1, round(seconds * source.sample_rate_hz))
        n = samples or self.pipeline.window_samples
        window = self.pipeline.recent_samples(n)
        if len(window) < n:  # not enough history yet: read fresh samples to complete the window
            fresh = source.read(n - len(window))
            window = np.concatenate([window, fresh.reshape(len(fresh), -1)], axis=0)
        meta = CaptureMeta(
            sample_rate_hz=source.sample_rate_hz, label=label, device=self.config.device_id, boot=self.boot,
            seq=self.events.seq, model=str(self.model), mver=self.mver, features=self.pipeline_def.name,
            captured_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            extra={"source": source.name, **({"units": "g"} if source.channel_names == ("x", "y", "z") else {})},
        )  # fmt: skip
        body = write_capture(window, channel_names=source.channel_names, meta=meta)
        thread = threading.Thread(target=self._upload, args=(body, len(window), done), name="tf-capture", daemon=True)
        self._capture_threads.append(thread)
        thread.start()

    def _upload(self, body: bytes, n: int, done: Callable[[Outcome], None]) -> None:
        base = self.config.http_url
        if not base:
            done(Outcome(AckStatus.FAILED, "no service URL configured (--http-url): cannot upload"))
            return
        url = f"{base.rstrip('/')}/api/v1/devices/{self.config.device_id}/captures"
        try:
            with httpx.Client(timeout=30) as http:
                r = http.post(url, content=body, headers={"Content-Type": "text/csv"},
                              auth=(self.config.device_id, self.config.password or ""))  # fmt: skip
        except httpx.HTTPError as exc:
            done(Outcome(AckStatus.FAILED, f"upload failed: {exc}"[:160]))
            return
        if r.status_code != 201:
            done(Outcome(AckStatus.FAILED, f"upload refused: HTTP {r.status_code} {r.text[:100]}"))
            return
        capture_id = r.json().get("id")
        done(Outcome(AckStatus.OK, "uploaded", x={"capture": capture_id, "samples": n}))

    # -------------------------------------------------------------------------------------------- loop
    def telemetry(self) -> Telemetry:
        avg, mx = self.stats.take()
        free = max(0, self.config.arena_capacity - self.runner.arena_size)
        return Telemetry(
            ts=_now_ms(), uptime_s=int(time.monotonic() - self.started), boot=self.boot,
            arena_free=min(free, 0xFFFF_FFFF), infer_count=self.stats.infer_count, lat_avg_us=avg, lat_max_us=mx,
            dropped=min(self.store.dropped_since_boot + self.uplink.rejected_events, 0xFFFF_FFFF),
            x={"backlog": self.store.backlog()},
        )  # fmt: skip

    def _produce(self) -> None:
        step = self.pipeline.step()
        self.stats.add(step.result.latency_us)
        event = self.events.make(step.result, ts=_now_ms())
        if event is None:
            return
        payload = encode_event(event, fmt=self.config.fmt)
        dropped = self.store.put(self.boot, event.seq, self.config.fmt, payload)
        if dropped:
            log.warning("store full: dropped the %d oldest event(s)", dropped)
        self.produced += 1
        self.uplink.wake()

    def _wake_loop(self) -> None:
        with contextlib.suppress(queue.Full):
            self._commands.put_nowait(b"")

    def _drain_commands(self, timeout: float) -> None:
        self._apply_swaps()
        try:
            payload = self._commands.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return
        self._apply_swaps()
        if not payload:
            return  # a wake-up
        try:
            self.processor.handle_payload(payload)
        except Exception:  # a command must never take the device down
            log.exception("command handling failed")

    def run(self) -> str:
        c = self.config
        log.info(
            "boot %d: %s model %s (%s, %s, arena %d B), features %s, source %s", self.boot, c.device_id, self.model,
            self.runner.kind, self.runner.backend, self.runner.arena_size, self.pipeline_def.name,
            self.pipeline.source.name,
        )  # fmt: skip
        self.uplink.start()
        self.link.start()
        if self.ota is not None and self.ota.pending:
            self._ota_thread = threading.Thread(target=self.ota.resume, name="tf-ota-resume", daemon=True)
            self._ota_thread.start()
        reason = "stopped"
        next_at = time.monotonic()
        next_tel = time.monotonic() + c.telemetry_s
        try:
            while not self._stop_all.is_set():
                if self._reboot.is_set():
                    reason = "reboot"
                    break
                if c.count is not None and self.produced >= c.count:
                    reason = "count"
                    break
                now = time.monotonic()
                if now >= next_tel:
                    next_tel = now + c.telemetry_s
                    if self.link.connected.is_set():
                        self.link.publish(self.topics.tel(c.device_id), encode_telemetry(self.telemetry(), fmt=c.fmt))
                if now >= next_at:
                    self._produce()
                    next_at = max(next_at + self.interval_s, now) if self.interval_s > 0 else now
                    continue
                self._drain_commands(min(next_at, next_tel) - now)
            if reason == "count":
                self._wait_drained(c.drain_timeout_s)
            for t in self._capture_threads:
                t.join(30)
            if reason == "reboot":
                time.sleep(0.2)  # let the reboot ack leave
        finally:
            final = DeviceState(ts=_now_ms(), online=False, boot=self.boot, reason="reboot" if reason == "reboot"
                                else "shutdown")  # fmt: skip
            if self.ota is not None:
                self.ota.cancel()
                if self._ota_thread is not None:
                    self._ota_thread.join(10)
                self.ota.close()
            self.uplink.stop()
            self.link.stop(final=(self.topics.state(c.device_id), encode_state(final)))
        return reason

    def _wait_drained(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stop_all.is_set():
            self._drain_commands(0.05)
            if self.store.backlog() == 0:
                return
        log.warning("%d event(s) not yet delivered: they stay in the store for the next start", self.store.backlog())

    def summary(self) -> dict[str, Any]:
        return {
            "boot": self.boot, "produced": self.produced, "published": self.uplink.published_events,
            "messages": self.uplink.published_messages,
            "acked": self.uplink.acked_events, "backlog": self.store.backlog(),
            "dropped": self.store.dropped_since_boot, "commands": self.processor.handled, "mqtt": self.link.protocol,
            "backend": self.runner.backend,
        }  # fmt: skip


class Device:
    """The device across boots (one :class:`Session` each). ``stop()`` ends it from another thread/signal."""

    def __init__(self, config: DeviceConfig) -> None:
        self.config = config
        self._stop = threading.Event()
        self.sessions: list[dict[str, Any]] = []
        self.session: Session | None = None

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> list[dict[str, Any]]:
        self.config.state_dir.mkdir(parents=True, exist_ok=True)
        with DeviceStore(self.config.state_dir / "device.db", max_events=self.config.max_events) as store:
            while True:
                boot = store.next_boot()
                self.session = Session(self.config, store, boot, self._stop)
                reason = self.session.run()
                self.sessions.append({**self.session.summary(), "reason": reason})
                if reason != "reboot":
                    return self.sessions
                log.info("rebooting")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def summary_line(sessions: list[dict[str, Any]]) -> str:
    return json.dumps({"sessions": sessions})
