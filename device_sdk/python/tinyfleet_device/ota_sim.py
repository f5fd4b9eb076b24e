"""A fleet of simulated devices that update their model over the air for real.

Each simulated device runs the reference device's OTA client (:class:`tinyfleet_device.ota.OtaClient`) with
its own state directory: on a manifest on its `ota` topic it verifies it with the trusted public key, reports
``downloading``, downloads the artifact over HTTP (resuming with ``Range``/``If-Range`` after an interrupted
transfer, within the client's timeouts and limits), checks size and SHA-256 while it streams in, loads the
model into TensorFlow Lite Micro, reports ``verified`` and ``applied``, "reboots" and publishes its retained
``state`` with the new version. Its inference events come from the model it runs: the labels and scores are
TFLM's outputs for a fixed set of inputs, so a model that always predicts one class shows it in the events.

A simulator, not a firmware: one MQTT connection carries the whole fleet (a real device connects as itself
and the broker's ACL keeps it to its own topics); the interpreters are shared per model (a model's behaviour
is computed once per SHA-256); the clients' state is not fsynced; and only the milestones go on
``ota/status`` (``downloading``, ``verified``, ``applied`` or ``failed``: not ``downloaded`` nor progress).
Devices can be taken offline and back: an offline device ignores its topic, and on its return re-subscribes
and gets its retained manifest, as a real one does.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.wire import (
    Caps,
    DeviceState,
    Event,
    OtaState,
    OtaStatus,
    Topics,
    WireError,
    encode_event,
    encode_ota_status,
    encode_state,
)
from tinyfleet_device.manifest import DeviceCapabilities, TrustedKeys
from tinyfleet_device.ota import STATE_FILE, DownloadLimits, InstalledModel, OtaClient

log = logging.getLogger("tinyfleet_device.ota_sim")

#: Inputs each model is run on once, when first loaded: its "behaviour" in the simulation.
BEHAVIOUR_INPUTS = 48


@dataclass(frozen=True)
class Behaviour:
    """What a model outputs on the simulator's inputs: (label, score) or anomaly scores, and latency."""

    outputs: tuple[tuple[int | None, float | None, float | None], ...]
    kind: int
    latency_us: int


_behaviours: dict[str, Behaviour] = {}
_behaviours_lock = threading.Lock()


def model_behaviour(data: bytes, *, seed: int = 7) -> Behaviour:
    """Run the model in TFLM on fixed random inputs (cached per SHA-256). Raises RuntimeError when TFLM
    cannot load it (the device then reports apply_failed)."""
    digest = hashlib.sha256(data).hexdigest()
    with _behaviours_lock:
        hit = _behaviours.get(digest)
    if hit is not None:
        return hit
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(data, arena_size=256 * 1024)
    inp = interp.get_input_details(0)
    out = interp.get_output_details(0)
    rnd = np.random.default_rng(seed)
    in_q = inp.get("quantization_parameters", {})
    out_q = out.get("quantization_parameters", {})
    in_scale = float(np.ravel(in_q.get("scales", [1.0]))[0] or 1.0)
    in_zp = int(np.ravel(in_q.get("zero_points", [0]))[0])
    out_scale = float(np.ravel(out_q.get("scales", [1.0]))[0] or 1.0)
    out_zp = int(np.ravel(out_q.get("zero_points", [0]))[0])
    dtype = inp["dtype"]
    info = np.iinfo(dtype) if np.issubdtype(dtype, np.integer) else None
    outputs: list[tuple[int | None, float | None, float | None]] = []
    autoencoder = int(np.prod(inp["shape"])) == int(np.prod(out["shape"]))
    for _ in range(BEHAVIOUR_INPUTS):
        if info is not None:
            x = rnd.integers(info.min, info.max, size=inp["shape"], endpoint=True).astype(dtype)
        else:
            x = rnd.standard_normal(size=inp["shape"]).astype(dtype)
        interp.set_input(x, 0)
        interp.invoke()
        y = interp.get_output(0)
        yf = (y.astype(np.float64) - out_zp) * out_scale
        if autoencoder:  # anomaly detection: reconstruction error of the dequantized input
            xf = (x.astype(np.float64) - in_zp) * in_scale
            outputs.append((None, None, float(np.mean((xf.ravel() - yf.ravel()) ** 2))))
        else:
            k = int(np.argmax(yf))
            outputs.append((k, float(min(1.0, max(0.0, yf.ravel()[k]))), None))
    # Latency as a microcontroller would show it: fixed for a model (here from its size, a proxy of its work),
    # not this host's wall clock, which would make the same model look slower on a busy machine.
    b = Behaviour(tuple(outputs), kind=1 if autoencoder else 0, latency_us=500 + len(data) // 16)
    with _behaviours_lock:
        _behaviours[digest] = b
    return b


def _behaviour_self_test(behaviour: Behaviour, _installed: InstalledModel) -> None:
    """The simulator's self-test: the model gave an output on every behaviour input, and finite ones."""
    if len(behaviour.outputs) != BEHAVIOUR_INPUTS:
        raise ValueError(f"{len(behaviour.outputs)} outputs for {BEHAVIOUR_INPUTS} inputs")
    for label, score, anom in behaviour.outputs:
        if any(v is not None and not np.isfinite(v) for v in (score, anom)) or (label is None and anom is None):
            raise ValueError("the model's outputs are not finite")


#: what the simulated devices publish on ota/status (the client also reports downloaded and progress)
_PUBLISHED = frozenset({OtaState.DOWNLOADING, OtaState.VERIFIED, OtaState.APPLIED, OtaState.FAILED,
                        OtaState.ROLLED_BACK})  # fmt: skip


@dataclass
class SimDevice:
    """One simulated device. ``artifact`` is the model it runs at the start (its factory model); afterwards
    model, version, artifact and last_seq mirror what its OTA client applied."""

    device_id: str
    model: str
    version: int
    artifact: bytes | None = None
    last_seq: int = 0
    boot: int = 1
    seq: int = 0
    online: bool = True
    caps: DeviceCapabilities = field(default_factory=DeviceCapabilities)
    #: the next update loses power after "applied": the device comes back on its old version, says nothing
    power_loss_next: bool = False
    busy: bool = False
    history: list[str] = field(default_factory=list)
    client: OtaClient[Behaviour] | None = field(default=None, repr=False)
    _runs: Behaviour | None = field(default=None, repr=False)
    _power_lost: bool = field(default=False, repr=False)

    def behaviour(self) -> Behaviour | None:
        if self._runs is None and self.artifact is not None:
            self._runs = model_behaviour(self.artifact)
        return self._runs


class OtaFleet:
    """Simulated devices on one MQTT connection. Use as a context manager; `events_per_s` per device. Each
    device's OTA state lives in `state_dir`/<device id> (a temporary directory by default)."""

    def __init__(
        self,
        devices: Sequence[SimDevice],
        *,
        host: str,
        port: int,
        prefix: str,
        trusted_keys: Iterable[bytes | Any],
        events_per_s: float = 1.0,
        workers: int = 8,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
        username: str | None = None,
        password: str | None = None,
        seed: int = 1,
        state_dir: Path | None = None,
        limits: DownloadLimits | None = None,
    ) -> None:
        self.devices = {d.device_id: d for d in devices}
        self.topics = Topics(prefix)
        self._keys = TrustedKeys(trusted_keys)
        self._rate = events_per_s
        self._clock = clock
        self._http = http or httpx.Client(timeout=30.0)
        self._own_http = http is None
        self._limits = limits or DownloadLimits(progress_interval_s=None)
        self._state_dir = state_dir
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ota-sim")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._rnd = random.Random(seed)
        self._inbox: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.errors: list[str] = []
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"ota-sim-{self._rnd.getrandbits(32):08x}",
            protocol=mqtt.MQTTv5,
        )
        self._client.max_queued_messages_set(0)
        self._client.max_inflight_messages_set(200)
        if username:
            self._client.username_pw_set(username, password)
        self._client.on_message = self._on_message
        self._connected = threading.Event()
        self._client.on_connect = lambda *_a: self._connected.set()
        self._host, self._port = host, port
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def __enter__(self) -> OtaFleet:
        if self._state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tinyfleet-ota-sim-")
            self._state_dir = Path(self._tmp.name)
        for d in self.devices.values():
            self._make_client(d)
        self._client.connect(self._host, self._port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(10):
            raise RuntimeError(f"simulator: no CONNACK from {self._host}:{self._port}")
        for d in self.devices.values():
            self._publish_state(d)
        self._subscribe(list(self.devices))
        for name, target in (("ota-sim-inbox", self._dispatch), ("ota-sim-events", self._emit_events)):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._inbox.put(("", b""))
        for t in self._threads:
            t.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.disconnect()
        self._client.loop_stop()
        if self._own_http:
            self._http.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def _make_client(self, d: SimDevice) -> None:
        assert self._state_dir is not None
        d.client = OtaClient(
            state_dir=self._state_dir / d.device_id,
            trusted_keys=self._keys,
            capabilities=d.caps,
            load_model=model_behaviour,
            self_test=_behaviour_self_test,
            report=lambda status: self._on_status(d, status),
            swap=lambda behaviour, installed: self._on_swap(d, behaviour, installed),
            http=self._http,
            limits=self._limits,
            clock=self._clock,
            firmware="sim-1.0",
            durable=False,
        )
        if d.artifact is not None:
            d.client.adopt(d.artifact, model=d.model, version=d.version)
        d.last_seq = d.client.last_seq

    def _subscribe(self, device_ids: list[str]) -> None:
        for i in range(0, len(device_ids), 100):
            self._client.subscribe([(self.topics.ota(d), 1) for d in device_ids[i : i + 100]])

    # -- offline / online ----------------------------------------------------------------------------------------

    def set_offline(self, device_id: str) -> None:
        d = self.devices[device_id]
        with self._lock:
            d.online = False
        self._client.unsubscribe(self.topics.ota(device_id))
        self._client.publish(self.topics.state(device_id), encode_state(DeviceState(online=False, reason="lwt")),
                             qos=1, retain=True)  # fmt: skip

    def set_online(self, device_id: str) -> None:
        """Back online: birth message, then (re)subscribe: the broker hands over the retained manifest."""
        d = self.devices[device_id]
        with self._lock:
            d.online = True
            d.boot += 1
        self._publish_state(d)
        self._subscribe([device_id])

    # -- MQTT in -----------------------------------------------------------------------------------------------

    def _on_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self._inbox.put((msg.topic, bytes(msg.payload)))

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            topic, payload = self._inbox.get()
            if not topic or not payload:
                continue
            try:
                device_id = self.topics.parse(topic).device_id
            except WireError:  # not one of ours
                continue
            d = self.devices.get(device_id)
            if d is None:
                continue
            with self._lock:
                if not d.online or d.busy:
                    continue
                d.busy = True
            self._pool.submit(self._update, d, payload)

    # -- the update: the device's OTA client, with the simulator's hooks -----------------------------------------

    def _update(self, d: SimDevice, payload: bytes) -> None:
        try:
            self._run_update(d, payload)
        except Exception as exc:  # a bug in the simulator or the client: keep it visible to the test
            self.errors.append(f"{d.device_id}: {type(exc).__name__}: {exc}")
            log.exception("simulated update of %s failed", d.device_id)
        finally:
            with self._lock:
                d.busy = False

    def _run_update(self, d: SimDevice, payload: bytes) -> None:
        client = d.client
        assert client is not None, "the fleet is not entered"
        client.capabilities = d.caps
        state_file = client.state_dir / STATE_FILE
        before = state_file.read_bytes() if d.power_loss_next and state_file.exists() else None
        client.handle_manifest(payload)
        if d._power_lost:
            # the power went after "applied", before the new state reached flash: the device boots on what the
            # old state says (its old model), and its client starts from that state again
            d._power_lost = False
            if before is not None:
                state_file.write_bytes(before)
            else:
                state_file.unlink(missing_ok=True)
            self._make_client(d)
        d.last_seq = d.client.last_seq if d.client is not None else d.last_seq

    def _on_swap(self, d: SimDevice, behaviour: Behaviour, installed: InstalledModel) -> None:
        client = d.client
        assert client is not None
        with self._lock:
            d.boot += 1
            if d.power_loss_next:  # the swap begins, the power goes: it will say "applied", it runs the old one
                d.power_loss_next = False
                d._power_lost = True
                return
            d.model, d.version = str(installed.model), int(installed.version)
            d.artifact, d._runs = client.path_of(installed).read_bytes(), behaviour
            d.seq = 0

    def _on_status(self, d: SimDevice, status: OtaStatus) -> None:
        if status.state not in _PUBLISHED:
            return
        d.history.append(status.state.value if status.reason is None else f"{status.state.value}:{status.reason}")
        self._client.publish(self.topics.ota_status(d.device_id), encode_ota_status(status), qos=1)
        if status.state is OtaState.APPLIED:
            self._publish_state(d)

    # -- MQTT out ------------------------------------------------------------------------------------------------

    def _publish_state(self, d: SimDevice) -> None:
        c = d.caps
        caps = Caps(flash=c.flash, ram=c.ram, arena=c.arena,
                    ops=sorted(str(o) for o in c.ops) if c.ops is not None else None)  # fmt: skip
        st = DeviceState(online=True, boot=d.boot, model=d.model, mver=d.version, fw="sim-1.0", caps=caps)
        self._client.publish(self.topics.state(d.device_id), encode_state(st), qos=1, retain=True)

    def _emit_events(self) -> None:
        period = 1.0 / self._rate if self._rate > 0 else 1.0
        next_t = time.monotonic()
        while not self._stop.is_set():
            now_ms = int(self._clock() * 1000)
            with self._lock:
                live = [d for d in self.devices.values() if d.online and d.artifact is not None]
            for d in live:
                b = d.behaviour()
                if b is None:
                    continue
                label, score, anom = b.outputs[self._rnd.randrange(len(b.outputs))]
                d.seq += 1
                ev = Event(ts=now_ms, seq=d.seq, boot=d.boot, model=d.model, mver=d.version, kind=b.kind,
                           label=label, score=score, anom=anom, lat=b.latency_us)  # fmt: skip
                self._client.publish(self.topics.evt(d.device_id), encode_event(ev), qos=1)
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    # -- for tests and benches -----------------------------------------------------------------------------------

    def running(self) -> dict[str, tuple[str, int]]:
        with self._lock:
            return {d.device_id: (d.model, d.version) for d in self.devices.values()}

    @property
    def bytes_downloaded(self) -> int:
        return sum(d.client.bytes_downloaded for d in self.devices.values() if d.client is not None)

    @property
    def download_s(self) -> float:
        return sum(d.client.download_s for d in self.devices.values() if d.client is not None)
