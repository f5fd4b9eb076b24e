"""The fleet simulator: many reference devices in one process, each with its own identity and MQTT connection.

``tinyfleet-device fleet --count 1000 --profile mixed`` is the backend's load and demo source. Every device
is a device as the service sees it: its own client id, username and password (from a credentials CSV as
``tinyfleet devices import -o`` writes it, or its id alone on a broker that allows anonymous clients), a
retained birth ``state`` with capabilities and an LWT, QoS 1 inference events of the v1 wire contract,
telemetry, and a store-and-forward buffer that keeps events while its connection is down and sends them as
batches when it is back, with (boot, seq) intact so the service stores each once.

What is shared, and why that is still the real thing:

* **Interpreters, one per model version** (:class:`FleetModel`): every event is a real TFLite Micro invoke
  of the model on the device's own features, but the fleet holds one interpreter per model, not one per
  device (devices run one at a time on the event loop, so sharing is safe).
* **Sensor windows, from a bank** (:class:`ConditionBank`): the vibration physics
  (:mod:`tinyfleet_device.sensors.vibration`) costs a few milliseconds per window, so simulating 1,000
  machines sample by sample would need several cores. The bank simulates, once at start, windows of several
  machines for each fault at a ladder of severities and keeps their features; a device draws from the rung
  of its current condition. Healthy devices draw healthy windows, a degrading device climbs the severity
  ladder over time, a faulty one sits on its fault — so labels and scores in the stored events are what the
  model concludes from simulated physics, with its confusions.

Behaviours (:class:`Behaviour`): healthy, degrading (a bearing fault growing from nothing to severe over
``degrade_s``), faulty (imbalance, misalignment or a bearing fault from the start), flaky (the connection drops
every few minutes for seconds; the broker publishes the LWT; events are buffered and replayed) and offline
(powered off for minutes at a time: nothing is measured, the LWT says offline). A profile mixes them.

Everything runs on one asyncio loop (aiomqtt over paho-mqtt); ``bench/device.py`` measures how many devices
at 1 event/s one core sustains.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import json
import logging
import math
import random
import socket
import time
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import numpy as np
from numpy.typing import NDArray

from tinyfleet.wire import (
    Caps,
    DeviceState,
    Event,
    EventKind,
    Telemetry,
    Topics,
    encode_event,
    encode_events,
    encode_state,
    encode_telemetry,
    validate_device_id,
)
from tinyfleet_device.features import get_pipeline
from tinyfleet_device.runner import ModelRunner
from tinyfleet_device.sensors.vibration import Fault, VibrationConfig, VibrationSimulator

log = logging.getLogger("tinyfleet_device.fleet")

FIRMWARE = "tinyfleet-sim/1"
TELEMETRY_EVERY_S = 10.0
#: Events a device keeps while offline (oldest dropped first, counted in telemetry).
DEFAULT_BUFFER = 600
#: Events per batch message when a device replays its buffer (the wire allows 256).
REPLAY_BATCH = 32
#: Concurrent connection attempts across the fleet (a thousand CONNECTs at once is a thundering herd).
CONNECT_CONCURRENCY = 32
SEVERITY_LADDER = (0.0, 0.15, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0)


class FleetError(RuntimeError):
    """The fleet cannot start as configured (bad credentials file, model, broker URL)."""


class Behaviour(StrEnum):
    HEALTHY = "healthy"
    DEGRADING = "degrading"
    FAULTY = "faulty"
    FLAKY = "flaky"
    OFFLINE = "offline"


#: Profiles: the share of each behaviour in the fleet.
PROFILES: dict[str, dict[Behaviour, float]] = {
    "mixed": {
        Behaviour.HEALTHY: 0.70,
        Behaviour.DEGRADING: 0.10,
        Behaviour.FAULTY: 0.05,
        Behaviour.FLAKY: 0.10,
        Behaviour.OFFLINE: 0.05,
    },
    "healthy": {Behaviour.HEALTHY: 1.0},
    # The demo: the first device develops a bearing fault, one is flaky, the rest are healthy.
    "demo": {Behaviour.HEALTHY: 1.0},
}


def assign_behaviours(count: int, profile: str, rng: random.Random) -> list[Behaviour]:
    """Behaviour per device: exact shares (largest remainder), shuffled with the fleet's seed."""
    if profile not in PROFILES:
        raise FleetError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if profile == "demo":
        out = [Behaviour.HEALTHY] * count
        if count:
            out[0] = Behaviour.DEGRADING
        if count > 2:
            out[-1] = Behaviour.FLAKY
        return out
    shares = PROFILES[profile]
    exact = {b: share * count for b, share in shares.items()}
    counts = {b: int(v) for b, v in exact.items()}
    for b in sorted(exact, key=lambda b: exact[b] - counts[b], reverse=True)[: count - sum(counts.values())]:
        counts[b] += 1
    out = [b for b, n in counts.items() for _ in range(n)]
    rng.shuffle(out)
    return out


# ------------------------------------------------------------------------------------------------- models
@dataclass
class FleetModel:
    """One model version the fleet runs: a single interpreter shared by every device."""

    name: str
    version: int
    runner: ModelRunner
    features: str
    feature_params: dict[str, Any] = field(default_factory=dict)
    threshold: float | None = None  # anomaly models: above it the event's label is 1 (anomalous)

    @classmethod
    def from_files(
        cls,
        model_path: Path,
        *,
        card_path: Path | None = None,
        name: str | None = None,
        version: int | None = None,
        labels: Sequence[str] | None = None,
        features: str | None = None,
    ) -> FleetModel:
        """A model from its ``.tflite`` and (optionally) the model card ``models/`` writes beside it."""
        card: dict[str, Any] = {}
        card_path = card_path or model_path.with_suffix(".card.json")
        if card_path.is_file():
            try:
                card = json.loads(card_path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise FleetError(f"cannot read the model card {card_path}: {exc}") from exc
        feat = card.get("features")
        feat_name = features or (feat.get("name") if isinstance(feat, dict) else feat) or "raw"
        params = {k: v for k, v in feat.items() if k != "name"} if isinstance(feat, dict) else {}
        kind = card.get("kind")
        card_labels = card.get("labels")
        runner = ModelRunner.from_file(
            model_path,
            labels=labels or (card_labels if kind != "anomaly" else None),
            kind=kind if kind in ("classification", "anomaly", "regression") else None,
        )
        threshold = card.get("threshold")
        return cls(
            name=name or str(card.get("name") or model_path.name.split(".")[0]),
            version=int(version if version is not None else card.get("version", 1)),
            runner=runner,
            features=feat_name,
            feature_params=params,
            threshold=float(threshold) if isinstance(threshold, int | float) else None,
        )

    def event(self, features: NDArray[np.float32], *, seq: int, boot: int, ts: int) -> Event:
        result = self.runner.infer(features)
        label = None
        if result.kind == int(EventKind.ANOMALY) and self.threshold is not None and result.anomaly is not None:
            label = int(result.anomaly > self.threshold)
        return self.runner.event(result, seq=seq, boot=boot, model=self.name, mver=self.version, ts=ts, label=label)


def bundled_models() -> list[Path]:
    """The project's own models: ``models/artifacts`` of a checkout (cwd), or the copies in the package."""
    candidates = [Path.cwd() / "models" / "artifacts", Path(__file__).parent / "models"]
    for folder in candidates:
        found = sorted(p for p in folder.glob("vib-*.tflite") if p.is_file())
        if found:
            return found
    return []


# ------------------------------------------------------------------------------------------ sensor windows
class ConditionBank:
    """Feature vectors of simulated vibration windows, per (fault, severity rung), computed once per fleet."""

    def __init__(
        self,
        pipelines: Iterable[str],
        *,
        machines: int = 3,
        windows_per_machine: int = 4,
        window_samples: int = 1024,
        seed: int = 0,
    ) -> None:
        self.pipelines = sorted(set(pipelines))
        self._bank: dict[tuple[str, Fault, int], list[NDArray[np.float32]]] = {}
        rng = np.random.default_rng(seed)
        started = time.perf_counter()
        for fault in Fault:
            for rung in [0] if fault is Fault.NORMAL else range(1, len(SEVERITY_LADDER)):
                for _machine in range(machines):
                    cfg = VibrationConfig(shaft_hz=float(rng.uniform(24.0, 30.0)))
                    sim = VibrationSimulator(cfg, seed=int(rng.integers(1 << 31)))
                    if fault is not Fault.NORMAL:
                        sim.inject(fault, SEVERITY_LADDER[rung])
                    sim.read(window_samples)  # let the drift processes settle
                    for _ in range(windows_per_machine):
                        window = sim.read(window_samples)
                        for name in self.pipelines:
                            feats = get_pipeline(name)(window, cfg.sample_rate_hz)
                            self._bank.setdefault((name, fault, rung), []).append(feats)
        self.build_s = time.perf_counter() - started

    def sample(self, pipeline: str, fault: Fault, severity: float, rng: random.Random) -> NDArray[np.float32]:
        if fault is Fault.NORMAL or severity <= SEVERITY_LADDER[1] / 2:
            rung, fault = 0, Fault.NORMAL
        else:
            rung = min(range(1, len(SEVERITY_LADDER)), key=lambda i: abs(SEVERITY_LADDER[i] - severity))
        windows = self._bank[(pipeline, fault, rung)]
        return windows[rng.randrange(len(windows))]


# -------------------------------------------------------------------------------------------- credentials
def read_credentials(path: Path) -> list[tuple[str, str | None]]:
    """``device_id,username,password`` rows (what ``tinyfleet devices import -o`` writes); username = id."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise FleetError(f"cannot read the credentials file {path}: {exc.strerror or exc}") from exc
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or "device_id" not in rows[0]:
        raise FleetError(f"{path}: expected a CSV with a header device_id[,username],password")
    out: list[tuple[str, str | None]] = []
    for i, row in enumerate(rows, start=2):
        device_id = (row.get("device_id") or "").strip()
        try:
            validate_device_id(device_id)
        except ValueError as exc:
            raise FleetError(f"{path}:{i}: {exc}") from exc
        out.append((device_id, (row.get("password") or "").strip() or None))
    return out


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
            raise FleetError(f"broker URL must look like mqtt://host:1883, not {url!r}")
        return cls(
            host=parts.hostname,
            port=parts.port or 1883,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


# ---------------------------------------------------------------------------------------------- devices
@dataclass
class DeviceCounters:
    events: int = 0  # events acknowledged by the broker (PUBACK)
    messages: int = 0
    buffered: int = 0  # events that went through the store-and-forward buffer
    dropped: int = 0  # events lost because the buffer was full
    connects: int = 0
    drops: int = 0  # connection losses (simulated or real)
    telemetry: int = 0


class SimDevice:
    """One simulated device: its connection, its condition and its store-and-forward buffer."""

    def __init__(self, fleet: Fleet, index: int, device_id: str, password: str | None, behaviour: Behaviour) -> None:
        self.fleet = fleet
        self.index = index
        self.device_id = device_id
        self.password = password
        self.behaviour = behaviour
        self.rng = random.Random(f"{fleet.seed}:{device_id}")
        self.boot = int(time.time()) & 0x7FFF_FFFF
        self.seq = 0
        self.counters = DeviceCounters()
        self.buffer: deque[Event] = deque()
        self.connected = False
        self.started = time.monotonic()
        self._lat_sum = 0
        self._lat_max = 0
        self._lat_n = 0
        self._fault, self._severity, self._growth = self._initial_condition()
        self._down_until = 0.0  # flaky/offline: the connection stays down until then
        self._next_outage = self.started + self._outage_gap()
        self._client: aiomqtt.Client | None = None

    # --------------------------------------------------------------------------------------- condition
    def _initial_condition(self) -> tuple[Fault, float, float]:
        if self.behaviour is Behaviour.FAULTY:
            fault = self.rng.choice([Fault.IMBALANCE, Fault.MISALIGNMENT, Fault.BEARING])
            return fault, self.rng.uniform(1.0, 2.0), 0.0
        if self.behaviour is Behaviour.DEGRADING:
            return Fault.BEARING, 0.0, SEVERITY_LADDER[-1] / max(1.0, self.fleet.degrade_s)
        return Fault.NORMAL, 0.0, 0.0

    def inject(self, fault: Fault, severity: float = 1.0) -> None:
        self._fault, self._severity, self._growth = fault, severity, 0.0

    def condition(self) -> tuple[Fault, float]:
        age = time.monotonic() - self.started
        severity = min(SEVERITY_LADDER[-1], self._severity + self._growth * age)
        return self._fault, severity

    def _outage_gap(self) -> float:
        if self.behaviour is Behaviour.FLAKY:
            return self.rng.uniform(60.0, 180.0) * self.fleet.outage_scale
        if self.behaviour is Behaviour.OFFLINE:
            return self.rng.uniform(300.0, 900.0) * self.fleet.outage_scale
        return math.inf

    def _outage_length(self) -> float:
        if self.behaviour is Behaviour.FLAKY:
            return self.rng.uniform(5.0, 30.0) * self.fleet.outage_scale
        return self.rng.uniform(120.0, 600.0) * self.fleet.outage_scale

    @property
    def powered(self) -> bool:
        """An offline-behaviour device is powered off during its outages (measures nothing)."""
        return not (self.behaviour is Behaviour.OFFLINE and time.monotonic() < self._down_until)

    # ------------------------------------------------------------------------------------------ events
    def measure(self) -> list[Event]:
        """One tick: every model of the fleet on this device's current features, as events."""
        fault, severity = self.condition()
        ts = int(time.time() * 1000)
        events = []
        for model in self.fleet.models:
            feats = self.fleet.bank.sample(model.features, fault, severity, self.rng)
            ev = model.event(feats, seq=self.seq, boot=self.boot, ts=ts)
            self.seq = (self.seq + 1) & 0xFFFF_FFFF
            lat = ev.lat or 0
            self._lat_sum += lat
            self._lat_n += 1
            self._lat_max = max(self._lat_max, lat)
            events.append(ev)
        return events

    def keep(self, events: Iterable[Event], *, offline: bool = False) -> None:
        """Into the store-and-forward buffer; an event leaves it only when the broker acknowledged it."""
        for ev in events:
            if len(self.buffer) >= self.fleet.buffer_size:
                self.buffer.popleft()
                self.counters.dropped += 1
            self.buffer.append(ev)
            self.counters.buffered += offline

    def telemetry(self) -> Telemetry:
        uptime = int(time.monotonic() - self.started)
        tel = Telemetry(
            ts=int(time.time() * 1000), uptime_s=uptime, boot=self.boot,
            battery_pct=max(5, 100 - uptime // 600), rssi_dbm=self.rng.randint(-85, -50),
            heap_free=self.rng.randint(40_000, 48_000),
            arena_free=max(0, self.fleet.arena_capacity - self.fleet.arena_used),
            infer_count=self.seq, lat_avg_us=self._lat_sum // self._lat_n if self._lat_n else None,
            lat_max_us=self._lat_max or None, dropped=self.counters.dropped,
        )  # fmt: skip
        self._lat_sum = self._lat_n = self._lat_max = 0
        return tel

    # -------------------------------------------------------------------------------------- connection
    def _birth(self) -> bytes:
        primary = self.fleet.models[0]
        return encode_state(
            DeviceState(
                online=True, ts=int(time.time() * 1000), boot=self.boot, model=primary.name, mver=primary.version,
                fw=FIRMWARE, caps=self.fleet.caps, x={"sim": str(self.behaviour)},
            )
        )  # fmt: skip

    def _client_for(self, protocol: aiomqtt.ProtocolVersion) -> aiomqtt.Client:
        broker = self.fleet.broker
        will = aiomqtt.Will(
            self.fleet.topics.state(self.device_id),
            encode_state(DeviceState(online=False, boot=self.boot, reason="lwt")),
            qos=1,
            retain=True,
        )
        return aiomqtt.Client(
            broker.host, broker.port, identifier=self.device_id, username=self.device_id,
            password=self.password, protocol=protocol, will=will, keepalive=30, timeout=10,
            max_inflight_messages=20,
        )  # fmt: skip

    async def _publish(self, client: aiomqtt.Client, topic: str, payload: bytes, *, retain: bool = False) -> None:
        await client.publish(topic, payload, qos=1, retain=retain, timeout=15)
        self.counters.messages += 1

    async def _replay(self, client: aiomqtt.Client) -> None:
        topic = self.fleet.topics.evt(self.device_id)
        while self.buffer:
            batch = [self.buffer[i] for i in range(min(REPLAY_BATCH, len(self.buffer)))]
            payload = encode_event(batch[0]) if len(batch) == 1 else encode_events(batch)
            await self._publish(client, topic, payload)
            for _ in batch:
                self.buffer.popleft()  # only after the PUBACK: a drop mid-replay keeps them
            self.counters.events += len(batch)

    def _abort_connection(self, client: aiomqtt.Client) -> None:
        """Drop the TCP connection without DISCONNECT, as a lost network does: the broker sends the LWT."""
        sock = client._client.socket()  # aiomqtt's documented escape hatch to the paho client
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    async def run(self, stop: asyncio.Event) -> None:
        """Measure at the fleet's rate, connected or not; connect, replay, publish; survive outages."""
        backoff = 1.0
        # Spread the fleet's ticks over one interval, so a thousand devices do not fire at once.
        await _sleep_or_stop(stop, self.rng.uniform(0, self.fleet.interval_s))
        while not stop.is_set():
            if time.monotonic() < self._down_until:
                await self._offline_tick(stop)
                continue
            try:
                async with self.fleet.connect_slots:
                    client = self._client_for(self.fleet.protocol)
                    await client.__aenter__()
            except aiomqtt.MqttError as exc:
                log.debug("device %s: connect failed: %s", self.device_id, exc)
                self.fleet.connect_failures += 1
                self._measure_offline()
                await _sleep_or_stop(stop, backoff * self.rng.uniform(0.5, 1.5))
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            self.counters.connects += 1
            self.connected = True
            aborted = False
            try:
                await self._publish(client, self.fleet.topics.state(self.device_id), self._birth(), retain=True)
                await self._replay(client)
                aborted = await self._online(client, stop)
            except aiomqtt.MqttError as exc:
                log.debug("device %s: connection lost: %s", self.device_id, exc)
                self.counters.drops += 1
            finally:
                self.connected = False
                if not aborted and stop.is_set():
                    with contextlib.suppress(aiomqtt.MqttError):
                        offline = DeviceState(online=False, ts=int(time.time() * 1000), boot=self.boot,
                                              reason="shutdown")  # fmt: skip
                        await self._publish(client, self.fleet.topics.state(self.device_id), encode_state(offline),
                                            retain=True)  # fmt: skip
                with contextlib.suppress(aiomqtt.MqttError, OSError):
                    await client.__aexit__(None, None, None)

    async def _offline_tick(self, stop: asyncio.Event) -> None:
        self._measure_offline()
        await _sleep_or_stop(stop, self.fleet.interval_s * self.rng.uniform(0.9, 1.1))

    def _measure_offline(self) -> None:
        if self.powered:
            self.keep(self.measure(), offline=True)

    async def _online(self, client: aiomqtt.Client, stop: asyncio.Event) -> bool:
        """Publish until stopped (False) or until an outage starts (True: the connection was aborted)."""
        topics = self.fleet.topics
        next_tel = time.monotonic() + self.rng.uniform(1.0, TELEMETRY_EVERY_S)
        next_tick = time.monotonic()
        while not stop.is_set():
            now = time.monotonic()
            if now >= self._next_outage:
                self._down_until = now + self._outage_length()
                self._next_outage = self._down_until + self._outage_gap()
                self.counters.drops += 1
                self._abort_connection(client)
                return True
            events = self.measure()
            self.keep(events)  # kept until acknowledged: a drop now loses nothing
            await self._replay(client)
            if now >= next_tel:
                await self._publish(client, topics.tel(self.device_id), encode_telemetry(self.telemetry()))
                self.counters.telemetry += 1
                next_tel += TELEMETRY_EVERY_S
            next_tick += self.fleet.interval_s
            await _sleep_or_stop(stop, max(0.0, next_tick - time.monotonic()))
        return False


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


# ------------------------------------------------------------------------------------------------ fleet
@dataclass
class FleetTotals:
    devices: int
    connected: int
    events: int
    messages: int
    buffered_now: int
    dropped: int
    connects: int
    drops: int
    connect_failures: int


class Fleet:
    """Many simulated devices on one event loop. ``async with Fleet(...) as fleet: await fleet.run(stop)``."""

    def __init__(
        self,
        models: Sequence[FleetModel],
        *,
        count: int = 0,
        credentials: Sequence[tuple[str, str | None]] = (),
        mqtt_url: str = "mqtt://127.0.0.1:1883",
        topic_prefix: str = "tf/v1",
        id_prefix: str = "sim-",
        profile: str = "mixed",
        rate_hz: float = 1.0,
        seed: int = 0,
        degrade_s: float = 600.0,
        outage_scale: float = 1.0,
        buffer_size: int = DEFAULT_BUFFER,
        mqtt_protocol: int | None = None,
    ) -> None:
        if not models:
            raise FleetError("the fleet needs at least one model (--model FILE; `make models` builds vib-cls)")
        if rate_hz <= 0:
            raise FleetError("--rate must be > 0 events per second per device")
        self.models = list(models)
        self.broker = BrokerUrl.parse(mqtt_url)
        self.topics = Topics(topic_prefix)
        self.seed = seed
        self.interval_s = 1.0 / rate_hz
        self.degrade_s = degrade_s
        self.outage_scale = outage_scale
        self.buffer_size = buffer_size
        self.connect_failures = 0
        self.protocol = aiomqtt.ProtocolVersion.V5 if mqtt_protocol in (None, 5) else aiomqtt.ProtocolVersion.V311
        self._protocol_fixed = mqtt_protocol is not None
        self.arena_used = sum(m.runner.arena_size for m in self.models)
        self.arena_capacity = max(64 << 10, self.arena_used)
        ops = sorted({op for m in self.models for op in m.runner.ops})
        self.caps = Caps(flash=1 << 20, ram=256 << 10, arena=self.arena_capacity, ops=ops[:32])
        ids = list(credentials) or [(f"{id_prefix}{i:04d}", self.broker.password) for i in range(count)]
        if count and credentials:
            ids = ids[:count]
        rng = random.Random(seed)
        behaviours = assign_behaviours(len(ids), profile, rng)
        self.devices = [
            SimDevice(self, i, d, pw, b) for i, ((d, pw), b) in enumerate(zip(ids, behaviours, strict=True))
        ]
        self.bank = ConditionBank({m.features for m in self.models}, seed=seed)
        self.connect_slots = asyncio.Semaphore(CONNECT_CONCURRENCY)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def device(self, device_id: str) -> SimDevice:
        for d in self.devices:
            if d.device_id == device_id:
                return d
        raise KeyError(device_id)

    async def __aenter__(self) -> Fleet:
        if not self._protocol_fixed:
            self.protocol = await self._probe_protocol()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _probe_protocol(self) -> aiomqtt.ProtocolVersion:
        """MQTT 5 where the broker speaks it, else 3.1.1 (e.g. the demo's embedded broker)."""
        first = self.devices[0] if self.devices else None
        if first is None:
            return aiomqtt.ProtocolVersion.V5
        for protocol in (aiomqtt.ProtocolVersion.V5, aiomqtt.ProtocolVersion.V311):
            client = aiomqtt.Client(
                self.broker.host, self.broker.port, identifier=f"{first.device_id}-probe",
                username=first.device_id, password=first.password, protocol=protocol, timeout=5,
            )  # fmt: skip
            try:
                async with client:
                    return protocol
            except aiomqtt.MqttError as exc:
                log.info("MQTT %s connect failed (%s)", protocol.name, exc)
        raise FleetError(f"cannot connect to the broker at {self.broker.host}:{self.broker.port}")

    async def run(self, stop: asyncio.Event) -> None:
        """Run every device until ``stop`` is set; each leaves a retained offline state when it stops."""
        self._tasks = [asyncio.create_task(d.run(stop), name=f"sim-device-{d.device_id}") for d in self.devices]
        await asyncio.gather(*self._tasks)

    def totals(self) -> FleetTotals:
        c = [d.counters for d in self.devices]
        return FleetTotals(
            devices=len(self.devices), connected=sum(d.connected for d in self.devices),
            events=sum(x.events for x in c), messages=sum(x.messages for x in c),
            buffered_now=sum(len(d.buffer) for d in self.devices), dropped=sum(x.dropped for x in c),
            connects=sum(x.connects for x in c), drops=sum(x.drops for x in c),
            connect_failures=self.connect_failures,
        )  # fmt: skip


__all__ = [
    "Behaviour",
    "BrokerUrl",
    "ConditionBank",
    "Fleet",
    "FleetError",
    "FleetModel",
    "FleetTotals",
    "SimDevice",
    "assign_behaviours",
    "bundled_models",
    "read_credentials",
]
