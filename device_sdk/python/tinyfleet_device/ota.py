"""The reference device's OTA client: signed manifest in, new model running (or the old one kept), every step
reported on ``tf/v1/{device}/ota/status``.

    client = OtaClient(state_dir=Path("state/ota"), trusted_keys=TrustedKeys([public_key]),
                       capabilities=DeviceCapabilities(arena=128 << 10, ops=frozenset(runner.ops), device_id="d1"),
                       load_model=lambda data: ModelRunner.from_bytes(data), report=publish_status,
                       swap=device.swap_model, auth=("d1", password))
    client.resume()                  # at start: finish a download a crash or kill -9 interrupted
    client.handle_manifest(payload)  # a payload from tf/v1/d1/ota (blocking: call it from a worker thread)
    client.revert()                  # back to the previous model

The steps (docs/ota.md, "Reference device OTA client"):

1. **verify** the manifest (:func:`~tinyfleet_device.manifest.verify_manifest`): signature with the trusted
   keys, the device id, ``seq`` above the last *applied* one (persisted: anti-rollback across restarts), expiry
   against the device clock, compatibility with the device's capabilities, a model component. A refused
   manifest is reported ``failed`` with its reason and nothing is downloaded.
2. **download** with httpx, streaming into ``download.part`` with SHA-256 and size checked as the bytes arrive
   (:class:`~tinyfleet_device.manifest.ArtifactVerifier`). The offset and the server's ETag are persisted
   (``download.json``), so after a restart the download continues with ``Range: bytes=N-`` and ``If-Range``:
   an artifact that changed on the server comes whole (200) and the client starts again from 0. Limits
   (:class:`DownloadLimits`) stop the attacks TUF names: more bytes than the manifest declares (endless data:
   reading stops at the first byte past ``size``), a different hash (arbitrary software), a server that stalls
   (a per-read timeout) or trickles (a minimum average rate and a total deadline: slow retrieval).
3. **load** the verified bytes into a NEW interpreter (``load_model``) and **self-test** it on a known input
   (finite outputs of the declared shape, as many classes as the manifest's labels).
4. **swap**: the new state (active + previous model, last ``seq``) is written atomically, then the caller's
   ``swap`` callback puts the new runner in place between two inferences. Only then is ``applied`` reported.

Any failure leaves the old model active and running; the sequence number is consumed only by ``applied``, so
the same manifest may be tried again (a download that failed for the network resumes where it stopped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

import httpx
import numpy as np

from tinyfleet.wire import OtaState, OtaStatus

from .manifest import (
    ArtifactVerifier,
    Component,
    DeviceCapabilities,
    Manifest,
    ManifestError,
    Reason,
    TrustedKeys,
    decode_payload,
    parse_manifest,
    verify_manifest,
)

__all__ = [
    "DownloadLimits",
    "InstalledModel",
    "OtaClient",
    "OtaError",
    "SelfTestError",
    "default_self_test",
]

log = logging.getLogger(__name__)

M = TypeVar("M")

STATE_FILE = "state.json"
PROGRESS_FILE = "download.json"
PART_FILE = "download.part"
MODELS_DIR = "models"
_STATE_VERSION = 1
#: the wire's limit on ``msg``
_MSG_LEN = 160
_READ_CHUNK = 65_536
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class OtaError(RuntimeError):
    """An update step that failed: ``reason`` is the wire's reason code, ``message`` a sentence."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.message = message


class SelfTestError(ValueError):
    """The new model loaded but did not behave on the self-test input."""


class _Cancelled(Exception):
    pass


class _Restart(Exception):
    """The partial download cannot be continued (416, a range that is not the one asked for): start from 0."""


@dataclass(frozen=True, slots=True)
class DownloadLimits:
    """Timeouts and limits of one artifact download (the TUF slow-retrieval and endless-data defences).

    ``read_timeout_s`` is the longest silence between two reads (a server that stalls); ``min_rate_bps`` the
    lowest average rate accepted once ``rate_grace_s`` have passed (a server that trickles a byte at a time, each
    read in time); ``deadline_s`` bounds the whole download, retries included. Transport errors and timeouts are
    retried ``retries`` times from the current offset; a refused artifact (size, hash) is never retried."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 15.0
    min_rate_bps: float = 512.0
    rate_grace_s: float = 10.0
    deadline_s: float = 300.0
    retries: int = 3
    retry_backoff_s: float = 0.5
    #: how often the offset is made durable (fsync of the partial file + download.json), seconds / bytes
    persist_interval_s: float = 0.25
    persist_bytes: int = 16_384
    #: how often a ``downloading`` report with ``progress`` goes out (None: only the first one)
    progress_interval_s: float | None = 1.0


@dataclass(frozen=True, slots=True)
class InstalledModel:
    """A model the client keeps on disk (``models/<sha256>.tflite``): what ``state.json`` records."""

    model: str | int
    version: int | str
    sha256: str  #: hex
    size: int
    seq: int = 0  #: the manifest that installed it (0: adopted, e.g. the factory model)
    labels: tuple[str, ...] | None = None
    installed_at: int = 0

    @property
    def file_name(self) -> str:
        return f"{self.sha256}.tflite"

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["labels"] = list(self.labels) if self.labels is not None else None
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> InstalledModel:
        labels = d.get("labels")
        return cls(
            model=d["model"],
            version=d["version"],
            sha256=str(d["sha256"]),
            size=int(d["size"]),
            seq=int(d.get("seq", 0)),
            labels=tuple(labels) if labels is not None else None,
            installed_at=int(d.get("installed_at", 0)),
        )


@dataclass
class _State:
    last_seq: int = 0
    active: InstalledModel | None = None
    previous: InstalledModel | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "v": _STATE_VERSION,
            "last_seq": self.last_seq,
            "active": self.active.to_json() if self.active else None,
            "previous": self.previous.to_json() if self.previous else None,
        }


@dataclass
class _Progress:
    """``download.json``: the partial download and the manifest it belongs to."""

    manifest: str  #: the COSE_Sign1 bytes, hex (re-verified on resume)
    seq: int
    sha256: str
    size: int
    uri: str
    etag: str | None = None
    offset: int = 0

    def matches(self, m: Manifest) -> bool:
        return (self.sha256, self.size, self.uri) == (m.sha256.hex(), m.size, m.uri)


@dataclass
class _Transfer:
    """One download in progress (this call)."""

    manifest: Manifest
    progress: _Progress
    verifier: ArtifactVerifier
    started: float
    deadline: float
    received: int = 0  #: bytes received by this call (the average rate)
    persisted_at: float = 0.0
    persisted_offset: int = 0
    reported_at: float = field(default=0.0)


# ----------------------------------------------------------------------------------------------- files
def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be opened
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: bytes, *, durable: bool = True) -> None:
    """Write, fsync, rename over ``path``, fsync the directory: the old or the new content, never a mix."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if durable:
        _fsync_dir(path.parent)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_READ_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _short(text: str) -> str:
    text = " ".join(text.split()) or "error"
    return text if len(text) <= _MSG_LEN else text[: _MSG_LEN - 1] + "…"


# ------------------------------------------------------------------------------------------ self-test
def default_self_test(model: Any, installed: InstalledModel) -> None:
    """Run ``model.infer`` on a fixed input of its input shape and check the result: a dequantized output of
    the declared shape, every value finite, and — when the manifest names labels — one output per label.
    Raises SelfTestError. Works with :class:`tinyfleet_device.runner.ModelRunner` and anything shaped like it
    (``input_shape``, ``output_shape``, ``infer(features) -> result with .values``)."""
    try:
        shape = tuple(int(d) for d in model.input_shape)
        out_shape = tuple(int(d) for d in model.output_shape)
    except (AttributeError, TypeError) as exc:
        raise SelfTestError(f"the loaded model has no input/output shape: {exc}") from exc
    rng = np.random.default_rng(0x7F)  # the same known input every time
    x = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    try:
        result = model.infer(x)
    except Exception as exc:
        raise SelfTestError(f"inference on the self-test input failed: {exc}") from exc
    values = np.asarray(getattr(result, "values", result))
    expected = int(np.prod(out_shape)) if out_shape else 1
    if values.size != expected:
        raise SelfTestError(f"the output has {values.size} values, the model declares {out_shape}")
    if not np.all(np.isfinite(values)):
        raise SelfTestError("the output on the self-test input is not finite (NaN or infinity)")
    labels = installed.labels
    kind = getattr(model, "kind", "classification")
    if labels is not None and kind == "classification" and values.size != len(labels):
        raise SelfTestError(f"the manifest names {len(labels)} labels, the model outputs {values.size} classes")


# --------------------------------------------------------------------------------------------- client
class OtaClient(Generic[M]):
    """One device's OTA client (see the module docstring). Thread-safe: one update at a time.

    ``load_model(data)`` builds a new interpreter for the artifact's bytes (raise to refuse it);
    ``self_test(model, installed)`` checks it (default :func:`default_self_test`); ``swap(model, installed)``
    puts it in place (the device swaps between two inferences, so no event is lost); ``report(status)`` sends an
    ``OtaStatus`` on ``ota/status`` (errors there are logged, the update goes on). ``clock`` gives the device's
    time in seconds (None: a device without a trustworthy clock, the expiry is not checked). ``http`` is the
    client to download with (else one is made with ``auth``, e.g. the device's MQTT id and password as HTTP
    Basic, which the tinyfleet registry accepts)."""

    def __init__(
        self,
        *,
        state_dir: Path,
        trusted_keys: TrustedKeys,
        capabilities: DeviceCapabilities,
        load_model: Callable[[bytes], M],
        report: Callable[[OtaStatus], None],
        swap: Callable[[M, InstalledModel], None] | None = None,
        self_test: Callable[[M, InstalledModel], None] | None = default_self_test,
        http: httpx.Client | None = None,
        auth: tuple[str, str] | httpx.Auth | None = None,
        limits: DownloadLimits | None = None,
        clock: Callable[[], float] | None = time.time,
        firmware: str | None = None,
        durable: bool = True,
    ) -> None:
        self.state_dir = Path(state_dir)
        self.trusted_keys = trusted_keys
        #: what the device is; may be replaced (e.g. after a reconfiguration) between updates
        self.capabilities = capabilities
        self.limits = limits or DownloadLimits()
        #: fsync every state change (a simulator running a thousand clients in one process turns it off)
        self.durable = durable
        self._load_model = load_model
        self._report = report
        self._swap = swap
        self._self_test = self_test
        self._clock = clock
        self._firmware = firmware
        self._auth = auth
        self._own_http = http is None
        self._http = http or httpx.Client(follow_redirects=True)
        self._lock = threading.RLock()
        self._cancel = threading.Event()
        #: the loaded model object (what the last swap installed), when the client loaded one
        self.current: M | None = None
        #: bytes received over HTTP and seconds spent downloading, over the client's life
        self.bytes_downloaded = 0
        self.download_s = 0.0
        self.models_dir = self.state_dir / MODELS_DIR
        try:
            self.models_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OtaError(Reason.STORAGE_FAILED, f"cannot create {self.models_dir}: {exc}") from exc
        self._state = self._load_state()

    # ------------------------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        if self._own_http:
            self._http.close()

    def __enter__(self) -> OtaClient[M]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cancel(self) -> None:
        """Stop a running download at its next chunk (or its retry wait). Not a failure: nothing is reported,
        ``handle_manifest`` returns None, and the partial file is kept for :meth:`resume` or the same manifest."""
        self._cancel.set()

    # ---------------------------------------------------------------------------------------- state
    @property
    def last_seq(self) -> int:
        return self._state.last_seq

    @property
    def active(self) -> InstalledModel | None:
        return self._state.active

    @property
    def previous(self) -> InstalledModel | None:
        return self._state.previous

    def path_of(self, installed: InstalledModel) -> Path:
        return self.models_dir / installed.file_name

    @property
    def pending(self) -> bool:
        """An interrupted download is waiting for :meth:`resume`."""
        return (self.state_dir / PROGRESS_FILE).exists()

    def _load_state(self) -> _State:
        path = self.state_dir / STATE_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return _State()
        except OSError as exc:
            raise OtaError(Reason.STORAGE_FAILED, f"cannot read {path}: {exc}") from exc
        try:
            d = json.loads(raw)
            return _State(
                last_seq=int(d["last_seq"]),
                active=InstalledModel.from_json(d["active"]) if d.get("active") else None,
                previous=InstalledModel.from_json(d["previous"]) if d.get("previous") else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            # written atomically, so this is not a torn write: refuse to guess (the sequence number matters)
            raise OtaError(Reason.STORAGE_FAILED, f"{path} is not a valid OTA state: {exc}") from exc

    def _save_state(self, state: _State) -> None:
        _write_atomic(self.state_dir / STATE_FILE, json.dumps(state.to_json(), indent=1).encode(), durable=self.durable)
        self._state = state

    def _load_progress(self) -> _Progress | None:
        path = self.state_dir / PROGRESS_FILE
        try:
            d = json.loads(path.read_bytes())
            return _Progress(**d)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("ignoring an unreadable %s (%s): the download starts again", path, exc)
            return None

    def _save_progress(self, progress: _Progress) -> None:
        _write_atomic(self.state_dir / PROGRESS_FILE, json.dumps(asdict(progress)).encode(), durable=self.durable)

    def _drop_download(self) -> None:
        for name in (PROGRESS_FILE, PART_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.state_dir / name).unlink()

    def adopt(
        self, data: bytes, *, model: str | int, version: int | str, labels: Sequence[str] | None = None
    ) -> InstalledModel:
        """Record the model the device already runs (its factory model) as the active one, so that the first
        update keeps it as the previous model to revert to. No-op (returns the recorded one) when the client
        already has a model installed by a manifest: after an update the device should run :meth:`load_active`
        instead. A different factory model (the device was given another file) replaces an adopted one."""
        with self._lock:
            current = self._state.active
            digest = hashlib.sha256(data).hexdigest()
            if current is not None and (current.seq > 0 or current.sha256 == digest):
                return current
            installed = InstalledModel(
                model=model, version=version, sha256=digest, size=len(data),
                labels=tuple(labels) if labels is not None else None, installed_at=int(time.time()),
            )  # fmt: skip
            path = self.path_of(installed)
            try:
                if not path.exists():
                    _write_atomic(path, data, durable=self.durable)
                self._save_state(replace(self._state, active=installed))
            except OSError as exc:
                raise OtaError(Reason.STORAGE_FAILED, f"cannot store the model: {exc}") from exc
            self._prune()
            return installed

    def load_active(self) -> tuple[M, InstalledModel] | None:
        """Load the recorded active model (at boot): its file is checked against its SHA-256 first; when it is
        damaged the previous model is used instead (and becomes the active one). None when nothing is recorded."""
        with self._lock:
            for which in ("active", "previous"):
                installed: InstalledModel | None = getattr(self._state, which)
                if installed is None:
                    continue
                path = self.path_of(installed)
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    log.error("the %s model file %s cannot be read: %s", which, path, exc)
                    continue
                if hashlib.sha256(data).hexdigest() != installed.sha256:
                    log.error("the %s model file %s is damaged (SHA-256 differs)", which, path)
                    continue
                model = self._load_model(data)
                if which == "previous":
                    self._save_state(replace(self._state, active=installed, previous=None))
                self.current = model
                return model, installed
            return None

    # ---------------------------------------------------------------------------------------- report
    def _send(
        self,
        state: OtaState,
        seq: int,
        *,
        reason: Reason | None = None,
        msg: str | None = None,
        progress: int | None = None,
    ) -> OtaStatus:
        running = self._state.active
        mver = running.version if running is not None and isinstance(running.version, int) else None
        status = OtaStatus(
            ts=int(self._clock() * 1000) if self._clock is not None else None,
            state=state,
            seq=min(max(seq, 0), 0xFFFF_FFFF),
            reason=reason.value if reason is not None else None,
            msg=_short(msg) if msg else None,
            model=running.model if running is not None else None,
            mver=mver,
            fw=self._firmware,
            progress=min(progress, 0xFFFF_FFFF) if progress is not None else None,
        )
        try:
            self._report(status)
        except Exception:  # the broker may be down: the update itself goes on
            log.exception("could not report OTA status %s for seq %d", state.value, seq)
        return status

    def _failed(self, seq: int, reason: Reason, message: str) -> OtaStatus:
        log.warning("OTA update seq %d failed: %s: %s", seq, reason.value, message)
        return self._send(OtaState.FAILED, seq, reason=reason, msg=message)

    # --------------------------------------------------------------------------------------- verify
    def _verify(self, payload: bytes) -> Manifest:
        return verify_manifest(
            payload,
            keys=self.trusted_keys,
            last_seq=self._state.last_seq,
            now=int(self._clock()) if self._clock is not None else None,
            device=self.capabilities,
        )

    @staticmethod
    def _claimed_seq(payload: bytes) -> int:
        """The sequence number a refused manifest claims (unverified: only to say which manifest was refused)."""
        try:
            return int(decode_payload(parse_manifest(payload).payload).seq)
        except ManifestError:
            return 0

    # ---------------------------------------------------------------------------------------- update
    def handle_manifest(self, payload: bytes) -> OtaStatus | None:
        """Act on a payload of the device's ``ota`` topic: verify, download, check, load, self-test, swap.
        Returns the last status reported (None when there was nothing to do: an empty payload clears the
        retained manifest; the manifest already applied, seen again on a reconnect; or when :meth:`cancel`
        stopped the download, which is not reported as a failure). Never raises for a bad
        manifest or artifact: those are reported ``failed`` and the old model stays."""
        with self._lock:
            self._cancel.clear()
            if not payload:
                return None
            try:
                m = self._verify(payload)
            except ManifestError as exc:
                seq = self._claimed_seq(payload)
                if exc.reason is Reason.REPLAYED_SEQUENCE and 0 < seq == self._state.last_seq:
                    log.debug("manifest seq %d already applied", seq)
                    return None
                return self._failed(seq, exc.reason, exc.message)
            return self._update(payload, m)

    def resume(self) -> OtaStatus | None:
        """After a restart: continue the download an interruption left (its manifest is verified again, the
        transfer goes on from the persisted offset). None when there is nothing to resume."""
        with self._lock:
            progress = self._load_progress()
            if progress is None:
                with contextlib.suppress(FileNotFoundError):
                    (self.state_dir / PART_FILE).unlink()
                return None
            try:
                payload = bytes.fromhex(progress.manifest)
            except ValueError:
                self._drop_download()
                return None
            return self.handle_manifest(payload)

    def _update(self, payload: bytes, m: Manifest) -> OtaStatus | None:
        if m.component is not Component.MODEL:
            return self._failed(m.seq, Reason.INCOMPATIBLE, "this device takes model updates only, not firmware")
        installed = InstalledModel(
            model=m.artifact_id, version=m.version, sha256=m.sha256.hex(), size=m.size, seq=m.seq,
            labels=m.labels, installed_at=int(time.time()),
        )  # fmt: skip
        active = self._state.active
        if active is not None and active.sha256 == installed.sha256:
            # it runs these very bytes already (a re-signed manifest, a rollback to the current version)
            self._save_state(replace(self._state, last_seq=m.seq, active=replace(active, seq=m.seq)))
            self._drop_download()
            return self._send(OtaState.APPLIED, m.seq, msg="already running this artifact")
        target = self.path_of(installed)
        try:
            if target.exists() and _sha256_file(target) == installed.sha256:
                data = target.read_bytes()  # the previous model, still on disk: no download needed
                self._send(OtaState.VERIFIED, m.seq, progress=m.size)
            else:
                data = self._download(payload, m)
                self._send(OtaState.VERIFIED, m.seq, progress=m.size)
                self._store(target)
        except OtaError as exc:
            return self._failed(m.seq, exc.reason, exc.message)
        except _Cancelled:
            # not a failure: the device stops (or a newer manifest replaces this one); the partial download
            # stays for resume() or for the same manifest again
            log.info("the download for seq %d was cancelled at byte %d", m.seq, self._progress_offset())
            return None
        return self._apply(data, installed, m.seq)

    def _progress_offset(self) -> int:
        progress = self._load_progress()
        return progress.offset if progress is not None else 0

    def _store(self, target: Path) -> None:
        try:
            os.replace(self.state_dir / PART_FILE, target)
            if self.durable:
                _fsync_dir(self.models_dir)
            (self.state_dir / PROGRESS_FILE).unlink(missing_ok=True)
        except OSError as exc:
            raise OtaError(Reason.STORAGE_FAILED, f"cannot store the artifact: {exc}") from exc

    def _apply(self, data: bytes, installed: InstalledModel, seq: int) -> OtaStatus:
        try:
            model = self._load_model(data)
        except Exception as exc:
            self._prune()
            return self._failed(seq, Reason.APPLY_FAILED, f"the new model does not load: {exc}")
        if self._self_test is not None:
            try:
                self._self_test(model, installed)
            except Exception as exc:
                self._prune()
                return self._failed(seq, Reason.APPLY_FAILED, f"self-test failed: {exc}")
        before = self._state
        after = _State(last_seq=max(seq, before.last_seq), active=installed, previous=before.active)
        try:
            self._save_state(after)
        except OSError as exc:
            return self._failed(seq, Reason.STORAGE_FAILED, f"cannot write the OTA state: {exc}")
        try:
            if self._swap is not None:
                self._swap(model, installed)
        except Exception as exc:
            with contextlib.suppress(OSError):
                self._save_state(before)
            self._prune()
            return self._failed(seq, Reason.APPLY_FAILED, f"the swap failed: {exc}")
        self.current = model
        self._prune()
        log.info("OTA seq %d applied: %s v%s", seq, installed.model, installed.version)
        return self._send(OtaState.APPLIED, seq)

    def _prune(self) -> None:
        """Delete model files that are neither the active nor the previous one."""
        keep = {m.file_name for m in (self._state.active, self._state.previous) if m is not None}
        with contextlib.suppress(OSError):
            for path in self.models_dir.iterdir():
                if path.name not in keep:
                    path.unlink(missing_ok=True)

    # -------------------------------------------------------------------------------------- revert
    def revert(self, reason: Reason | None = None, message: str | None = None) -> OtaStatus:
        """Go back to the previous model: load it (new interpreter), self-test, swap, and record it as the
        active one (the replaced model becomes the previous, so a second revert goes forward again). The
        sequence number stays: a later manifest still needs a higher one. Reports ``rolled_back`` (with
        ``reason``, e.g. ``boot_failed`` when the device gives up on a model that misbehaves). Raises OtaError
        when there is no usable previous model."""
        with self._lock:
            prev, active = self._state.previous, self._state.active
            seq = self._state.last_seq
            if prev is None:
                raise OtaError(Reason.APPLY_FAILED, "there is no previous model to revert to")
            try:
                data = self.path_of(prev).read_bytes()
            except OSError as exc:
                raise OtaError(Reason.STORAGE_FAILED, f"the previous model cannot be read: {exc}") from exc
            if hashlib.sha256(data).hexdigest() != prev.sha256:
                raise OtaError(Reason.STORAGE_FAILED, "the previous model's file is damaged (SHA-256 differs)")
            try:
                model = self._load_model(data)
                if self._self_test is not None:
                    self._self_test(model, prev)
            except Exception as exc:
                raise OtaError(Reason.APPLY_FAILED, f"the previous model does not load: {exc}") from exc
            before = self._state
            self._save_state(_State(last_seq=seq, active=prev, previous=active))
            try:
                if self._swap is not None:
                    self._swap(model, prev)
            except Exception as exc:
                self._save_state(before)
                raise OtaError(Reason.APPLY_FAILED, f"the swap failed: {exc}") from exc
            self.current = model
            text = message or f"back to {prev.model} v{prev.version}"
            return self._send(OtaState.ROLLED_BACK, seq, reason=reason, msg=text)

    # ------------------------------------------------------------------------------------ download
    def _download(self, payload: bytes, m: Manifest) -> bytes:
        """The artifact's bytes, checked (size and SHA-256). Raises OtaError."""
        lim = self.limits
        progress = self._load_progress()
        part = self.state_dir / PART_FILE
        if progress is None or not progress.matches(m):
            self._drop_download()
            progress = _Progress(manifest=payload.hex(), seq=m.seq, sha256=m.sha256.hex(), size=m.size, uri=m.uri)
        else:
            progress.manifest, progress.seq = payload.hex(), m.seq  # the newest manifest for these bytes
        now = time.monotonic()
        t = _Transfer(m, progress, ArtifactVerifier.for_manifest(m), now, now + lim.deadline_s)
        try:
            with open(part, "a+b") as f:
                self._rehash(f, t)
                self._save_progress(progress)
                t.persisted_offset, t.persisted_at = progress.offset, time.monotonic()
                self._send(OtaState.DOWNLOADING, m.seq, progress=progress.offset)
                t.reported_at = time.monotonic()
                self._fetch_all(f, t)
                f.flush()
                if self.durable:
                    os.fsync(f.fileno())
            t.verifier.finish()
        except ManifestError as exc:  # size or hash: the artifact is not the one signed for
            self._drop_download()
            raise OtaError(exc.reason, exc.message) from exc
        except OSError as exc:
            raise OtaError(Reason.STORAGE_FAILED, f"cannot write the download: {exc}") from exc
        finally:
            self.download_s += time.monotonic() - t.started
        self._send(OtaState.DOWNLOADED, m.seq, progress=progress.offset)
        try:
            return part.read_bytes()
        except OSError as exc:
            raise OtaError(Reason.STORAGE_FAILED, f"cannot read the download: {exc}") from exc

    def _rehash(self, f: Any, t: _Transfer) -> None:
        """Hash what an earlier run left (up to its persisted offset; anything after it was not made durable)."""
        f.seek(0, os.SEEK_END)
        have = f.tell()
        offset = min(t.progress.offset, have, t.manifest.size)
        f.truncate(offset)
        f.seek(0)
        left = offset
        while left:
            chunk = f.read(min(_READ_CHUNK, left))
            if not chunk:
                break
            t.verifier.update(chunk)
            left -= len(chunk)
        t.progress.offset = offset - left
        if left:
            f.truncate(t.progress.offset)
        f.seek(0, os.SEEK_END)
        if t.progress.offset:
            log.info("resuming the download of seq %d at byte %d", t.manifest.seq, t.progress.offset)

    def _restart(self, f: Any, t: _Transfer) -> None:
        f.truncate(0)
        f.seek(0)
        t.progress.offset = 0
        t.progress.etag = None
        t.verifier = ArtifactVerifier.for_manifest(t.manifest)

    def _fetch_all(self, f: Any, t: _Transfer) -> None:
        lim = self.limits
        failures = 0
        restarts = 0
        while True:
            if t.progress.offset == t.manifest.size:  # an earlier run got every byte, then stopped
                try:
                    t.verifier.finish()
                    return
                except ManifestError:
                    self._restart(f, t)
            try:
                self._fetch(f, t)
                return
            except _Restart as exc:
                restarts += 1
                if restarts > 2:
                    raise OtaError(Reason.DOWNLOAD_FAILED, f"the server does not serve the range asked: {exc}") from exc
                self._restart(f, t)
                continue
            except _Cancelled:
                self._persist(f, t, force=True)
                raise
            except OtaError:
                self._persist(f, t, force=True)
                raise
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                self._persist(f, t, force=True)
                failures += 1
                what = _describe_http_error(exc, lim)
                retryable = not isinstance(exc, httpx.HTTPStatusError) or exc.response.status_code >= 500
                if not retryable:
                    raise OtaError(Reason.DOWNLOAD_FAILED, what) from exc
                if failures > lim.retries:
                    raise OtaError(Reason.DOWNLOAD_FAILED, f"{what} ({failures} attempts)") from exc
                wait = lim.retry_backoff_s * (2 ** (failures - 1))
                if time.monotonic() + wait >= t.deadline:
                    raise OtaError(Reason.DOWNLOAD_FAILED, f"{what}; the download deadline has passed") from exc
                log.info("download of seq %d: %s; retry %d in %.1f s", t.manifest.seq, what, failures, wait)
                if self._cancel.wait(wait):
                    raise _Cancelled from None
            except httpx.HTTPError as exc:  # e.g. an unsupported URL scheme
                raise OtaError(Reason.DOWNLOAD_FAILED, f"cannot fetch {t.manifest.uri}: {exc}") from exc

    def _fetch(self, f: Any, t: _Transfer) -> None:
        """One GET: from the offset (Range + If-Range) to the end, bytes checked as they arrive."""
        lim = self.limits
        m, p = t.manifest, t.progress
        url = httpx.URL(m.uri)
        if url.scheme not in ("http", "https", ""):
            raise OtaError(Reason.DOWNLOAD_FAILED, f"unsupported URL scheme {url.scheme!r} (http or https only)")
        headers = {"Accept-Encoding": "identity"}
        if p.offset:
            headers["Range"] = f"bytes={p.offset}-"
            if p.etag:
                headers["If-Range"] = p.etag
        left = max(0.1, t.deadline - time.monotonic())
        timeout = httpx.Timeout(
            connect=min(lim.connect_timeout_s, left), read=min(lim.read_timeout_s, left), write=lim.read_timeout_s,
            pool=lim.connect_timeout_s,
        )  # fmt: skip
        kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout}
        if self._auth is not None:
            kwargs["auth"] = self._auth
        with self._http.stream("GET", m.uri, **kwargs) as r:
            if r.status_code == 416:
                raise _Restart(f"HTTP 416 for bytes={p.offset}-")
            if r.status_code == 206:
                self._check_content_range(r, t)
            elif r.status_code == 200:
                if p.offset:
                    log.info("the server sent the whole artifact (changed, or no ranges): starting from 0")
                    self._restart(f, t)
            else:
                raise httpx.HTTPStatusError(f"HTTP {r.status_code} from {m.uri}", request=r.request, response=r)
            etag = r.headers.get("etag")
            if p.offset == 0:
                p.etag = etag if etag and not etag.startswith("W/") else None  # If-Range needs a strong one
            length = r.headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > m.size - p.offset:
                raise ManifestError(
                    Reason.SIZE_MISMATCH,
                    f"the server announces {int(length) + p.offset} bytes, the manifest {m.size}",
                )
            for chunk in r.iter_raw():
                if self._cancel.is_set():
                    raise _Cancelled
                if not chunk:
                    continue
                self.bytes_downloaded += len(chunk)
                t.received += len(chunk)
                # endless data: the first byte past the declared size raises size_mismatch, and is not kept
                t.verifier.update(chunk)
                f.write(chunk)
                p.offset += len(chunk)
                self._check_pace(t)
                self._persist(f, t)
                if lim.progress_interval_s is not None and time.monotonic() - t.reported_at >= lim.progress_interval_s:
                    self._send(OtaState.DOWNLOADING, m.seq, progress=p.offset)
                    t.reported_at = time.monotonic()
        self._persist(f, t, force=True)
        if p.offset < m.size:
            # the server closed early: ask for the rest (a transport problem, retried)
            raise httpx.RemoteProtocolError(f"the response ended at byte {p.offset} of {m.size}")

    def _check_content_range(self, r: httpx.Response, t: _Transfer) -> None:
        match = _CONTENT_RANGE.match(r.headers.get("content-range", ""))
        if match is None:
            raise _Restart(f"206 without a usable Content-Range ({r.headers.get('content-range')!r})")
        start, total = int(match.group(1)), match.group(3)
        if total != "*" and int(total) != t.manifest.size:
            raise ManifestError(
                Reason.SIZE_MISMATCH, f"the server's artifact has {total} bytes, the manifest {t.manifest.size}"
            )
        if start != t.progress.offset:
            raise _Restart(f"asked for bytes {t.progress.offset}-, got {start}-")

    def _check_pace(self, t: _Transfer) -> None:
        now = time.monotonic()
        lim = self.limits
        if now > t.deadline:
            raise OtaError(
                Reason.DOWNLOAD_FAILED, f"slow retrieval: the download took longer than {lim.deadline_s:g} s"
            )
        elapsed = now - t.started
        if elapsed > lim.rate_grace_s and t.received / elapsed < lim.min_rate_bps:
            raise OtaError(
                Reason.DOWNLOAD_FAILED,
                f"slow retrieval: {t.received / elapsed:.0f} B/s on average, the minimum is {lim.min_rate_bps:g} B/s",
            )

    def _persist(self, f: Any, t: _Transfer, *, force: bool = False) -> None:
        """Make the offset durable: the bytes first (fsync), then download.json."""
        lim = self.limits
        p = t.progress
        if p.offset == t.persisted_offset and not force:
            return
        now = time.monotonic()
        if (
            not force
            and now - t.persisted_at < lim.persist_interval_s
            and p.offset - t.persisted_offset < lim.persist_bytes
        ):
            return
        f.flush()
        if self.durable:
            os.fsync(f.fileno())
        self._save_progress(p)
        t.persisted_offset, t.persisted_at = p.offset, now


def _describe_http_error(exc: httpx.HTTPError, lim: DownloadLimits) -> str:
    if isinstance(exc, httpx.ReadTimeout):
        return f"timed out: no data from the server for {lim.read_timeout_s:g} s"
    if isinstance(exc, httpx.ConnectTimeout):
        return f"timed out: no connection within {lim.connect_timeout_s:g} s"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {exc}"
    if isinstance(exc, httpx.HTTPStatusError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
