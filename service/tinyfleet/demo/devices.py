"""Simulated TinyML devices for the demo: paho clients that speak the real wire contract.

Each device connects with its id as client id and username, leaves an LWT (retained `state`, offline), publishes
a retained birth `state`, then about one inference event per second: vibration classifications (labels
normal / imbalance / misalignment / bearing_fault, single CBOR events) alternating with an anomaly-score stream
(sent as CBOR batches of five), plus telemetry every 10 s. One device in a fleet slowly develops a bearing fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.wire import (
    Caps,
    DeviceState,
    Event,
    Telemetry,
    Topics,
    encode_event,
    encode_events,
    encode_state,
    encode_telemetry,
)

log = logging.getLogger(__name__)

LABELS = ("normal", "imbalance", "misalignment", "bearing_fault")
CLS_MODEL, CLS_MVER = "vib-cls", 4
ANOM_MODEL, ANOM_MVER = "vib-anom", 2
ANOM_BATCH = 5
TELEMETRY_EVERY_S = 10.0
FIRMWARE = "demo-1.0.0"
CAPS = Caps(flash=1 << 20, ram=256 << 10, arena=64 << 10, ops=["CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"])


@dataclass
class DeviceStats:
    events: int = 0
    messages: int = 0
    telemetry: int = 0


@dataclass
class SimulatedDevice:
    """One device. `start()` connects (in paho's thread), `await run(stop)` publishes until `stop` is set,
    `stop()` publishes the retained offline state and disconnects."""

    device_id: str
    host: str
    port: int
    topics: Topics
    rng: random.Random
    fault_drift: bool = False
    interval_s: float = 1.0
    boot: int = field(default_factory=lambda: int(time.time()) & 0x7FFF_FFFF)
    stats: DeviceStats = field(default_factory=DeviceStats)

    def __post_init__(self) -> None:
        self._seq = 0
        self._started = time.monotonic()
        self._anom: list[Event] = []
        self._connected = threading.Event()
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.device_id,
            protocol=mqtt.MQTTv311,
            clean_session=True,
        )
        self._client.username_pw_set(self.device_id)
        self._client.will_set(
            self.topics.state(self.device_id),
            encode_state(DeviceState(online=False, boot=self.boot, reason="lwt")),
            qos=1,
            retain=True,
        )
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.reconnect_delay_set(min_delay=1, max_delay=5)

    # ------------------------------------------------------------------------------------------- lifecycle
    def start(self) -> None:
        self._client.connect_async(self.host, self.port, keepalive=15)
        self._client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def stop(self, timeout: float = 3.0) -> None:
        """Say goodbye (retained offline state) and disconnect; a graceful disconnect sends no LWT."""
        if self._connected.is_set():
            info = self._client.publish(
                self.topics.state(self.device_id),
                encode_state(DeviceState(online=False, ts=_now_ms(), boot=self.boot, reason="shutdown")),
                qos=1,
                retain=True,
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout)
        self._client.disconnect()
        self._client.loop_stop()

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object = None) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("device %s: connect refused: %s", self.device_id, reason)
            return
        birth = DeviceState(
            online=True, ts=_now_ms(), boot=self.boot, model=CLS_MODEL, mver=CLS_MVER, fw=FIRMWARE, caps=CAPS
        )
        client.publish(self.topics.state(self.device_id), encode_state(birth), qos=1, retain=True)
        self._connected.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, _reason: object, _p: object = None) -> None:
        self._connected.clear()

    # ------------------------------------------------------------------------------------------ publishing
    async def run(self, stop: asyncio.Event) -> None:
        next_tel = time.monotonic() + self.rng.uniform(0.5, 2.0)
        tick = 0
        while not stop.is_set():
            if self._connected.is_set():
                self._tick(tick)
                tick += 1
                if time.monotonic() >= next_tel:
                    self._telemetry()
                    next_tel += TELEMETRY_EVERY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval_s * self.rng.uniform(0.8, 1.2))

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq += 1
        return seq

    def _tick(self, tick: int) -> None:
        if tick % 2 == 0:
            self._publish(self.topics.evt(self.device_id), encode_event(self._classification()), events=1)
        else:
            self._anom.append(self._anomaly())
            if len(self._anom) >= ANOM_BATCH:
                batch, self._anom = self._anom, []
                self._publish(self.topics.evt(self.device_id), encode_events(batch), events=len(batch))

    def _fault_level(self) -> float:
        """0..1: how far the simulated bearing has worn (only for the drifting device)."""
        if not self.fault_drift:
            return 0.0
        return min(1.0, (time.monotonic() - self._started) / 600.0)

    def _classification(self) -> Event:
        fault = self._fault_level()
        weights = [0.85 - 0.6 * fault, 0.06, 0.05, 0.04 + 0.6 * fault]
        label = self.rng.choices(range(len(LABELS)), weights=weights)[0]
        score = round(self.rng.uniform(0.6, 0.99), 3)
        others = [i for i in range(len(LABELS)) if i != label]
        second = self.rng.choice(others)
        return Event(
            ts=_now_ms(), seq=self._next_seq(), boot=self.boot, model=CLS_MODEL, mver=CLS_MVER, kind=0,
            label=label, score=score, top=[(label, score), (second, round((1 - score) * 0.8, 3))],
            lat=self.rng.randint(2200, 3100),
        )  # fmt: skip

    def _anomaly(self) -> Event:
        base = 0.15 + 0.5 * self._fault_level()
        anom = max(0.0, self.rng.gauss(base, 0.05))
        if self.rng.random() < 0.02:
            anom += self.rng.uniform(0.4, 0.8)  # a transient spike
        return Event(
            ts=_now_ms(), seq=self._next_seq(), boot=self.boot, model=ANOM_MODEL, mver=ANOM_MVER, kind=1,
            anom=round(anom, 4), lat=self.rng.randint(900, 1400),
        )  # fmt: skip

    def _telemetry(self) -> None:
        uptime = int(time.monotonic() - self._started)
        tel = Telemetry(
            ts=_now_ms(), uptime_s=uptime, boot=self.boot,
            battery_pct=max(5, 100 - uptime // 60), battery_mv=max(3300, 4150 - uptime // 10),
            rssi_dbm=self.rng.randint(-80, -50), heap_free=self.rng.randint(40_000, 48_000),
            arena_free=self.rng.randint(2_000, 3_000), infer_count=self._seq,
            lat_avg_us=self.rng.randint(2400, 2600), lat_max_us=self.rng.randint(3000, 3600), dropped=0,
        )  # fmt: skip
        self._client.publish(self.topics.tel(self.device_id), encode_telemetry(tel), qos=1)
        self.stats.telemetry += 1

    def _publish(self, topic: str, payload: bytes, *, events: int) -> None:
        info = self._client.publish(topic, payload, qos=1)
        if info.rc == mqtt.MQTT_ERR_SUCCESS:
            self.stats.events += events
            self.stats.messages += 1


class DeviceFleet:
    """`n` simulated devices named ``demo-01`` … on one broker."""

    def __init__(self, n: int, host: str, port: int, topics: Topics, *, seed: int | None = None) -> None:
        rng = random.Random(seed)
        self.devices = [
            SimulatedDevice(
                f"demo-{i + 1:02d}", host, port, topics, random.Random(rng.random()), fault_drift=(i == n - 1)
            )
            for i in range(n)
        ]
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()

    @property
    def ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    async def start(self, connect_timeout: float = 10.0) -> None:
        for device in self.devices:
            device.start()
        ok = await asyncio.gather(*(asyncio.to_thread(d.wait_connected, connect_timeout) for d in self.devices))
        missing = [d.device_id for d, connected in zip(self.devices, ok, strict=True) if not connected]
        if missing:
            log.warning("devices not connected yet (they keep trying): %s", ", ".join(missing))
        self._tasks = [asyncio.create_task(d.run(self._stop), name=f"device-{d.device_id}") for d in self.devices]

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(asyncio.to_thread(d.stop) for d in self.devices))

    def totals(self) -> DeviceStats:
        total = DeviceStats()
        for d in self.devices:
            total.events += d.stats.events
            total.messages += d.stats.messages
            total.telemetry += d.stats.telemetry
        return total


def _now_ms() -> int:
    return int(time.time() * 1000)
