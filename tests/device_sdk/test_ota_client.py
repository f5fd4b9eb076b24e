"""The reference device's OTA client (tinyfleet_device.ota) against real HTTP servers: the tinyfleet service
with a model in its registry and a manifest signed with the service's key, and a local artifact server that
misbehaves on purpose (more bytes than declared, another hash, stalls, trickles, a changed artifact). Models
load in TFLM through tinyfleet_device.runner; a kill -9 mid-download runs the client in a child process."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.device_sdk.artifact_server import ServerConfig, artifact_server
from tests.device_sdk.conftest import fixed_key
from tests.ingest.conftest import make_settings, migrated_db, prefix  # noqa: F401 - fixtures
from tests.registry.conftest import KWS, KWS_LABELS
from tests.rollouts.conftest import patch_output_bias
from tests.support.instances import free_port
from tinyfleet.app import Service
from tinyfleet.ota.keys import generate_signing_key, load_signing_key, write_signing_key
from tinyfleet.ota.manifest import build_manifest, sign_manifest
from tinyfleet.wire import OtaState, OtaStatus, decode_ota_status, encode_ota_status
from tinyfleet_device.manifest import Compat, Component, DeviceCapabilities, TrustedKeys, raw_public_key
from tinyfleet_device.ota import DownloadLimits, InstalledModel, OtaClient
from tinyfleet_device.runner import ModelRunner

DEVICE = "ota-dev-1"
CAPS = DeviceCapabilities(flash=1 << 20, ram=512 << 10, arena=256 << 10, device_id=DEVICE)
REPO = Path(__file__).resolve().parents[2]
#: a tensor arena that fits the KWS model (24 KB): no allocation search at every load in these tests
ARENA = 64 << 10


@pytest.fixture(scope="module")
def v1() -> bytes:
    assert KWS.is_file(), f"{KWS} missing: the third-party models live in ../shared/models beside the repo"
    return KWS.read_bytes()


@pytest.fixture(scope="module")
def v2(v1: bytes) -> bytes:
    return patch_output_bias(v1, label=9, delta=2**24)  # always says "yes": a new version that shows


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return fixed_key("tests/device_sdk ota client key")


@dataclass
class Device:
    """What a device around the client keeps: the runner in use and what it was told."""

    client: OtaClient[ModelRunner]
    reports: list[OtaStatus] = field(default_factory=list)
    swaps: list[tuple[ModelRunner, InstalledModel]] = field(default_factory=list)

    @property
    def states(self) -> list[str]:
        return [s.state.value if s.reason is None else f"{s.state.value}:{s.reason}" for s in self.reports]

    def runner(self) -> ModelRunner:
        return self.swaps[-1][0]


def make_device(state_dir: Path, key: Ed25519PrivateKey, *, factory: bytes | None = None, **kw: Any) -> Device:
    dev: Device
    reports: list[OtaStatus] = []

    def report(status: OtaStatus) -> None:
        assert decode_ota_status(encode_ota_status(status)) == status  # each one is valid on the wire
        reports.append(status)

    limits = kw.pop("limits", DownloadLimits(progress_interval_s=None, read_timeout_s=5, retries=1))
    client: OtaClient[ModelRunner] = OtaClient(
        state_dir=state_dir, trusted_keys=TrustedKeys([key.public_key()]), capabilities=kw.pop("caps", CAPS),
        load_model=lambda data: ModelRunner.from_bytes(data, labels=KWS_LABELS, arena_size=ARENA), report=report,
        swap=lambda runner, installed: dev.swaps.append((runner, installed)), limits=limits, **kw,
    )  # fmt: skip
    dev = Device(client, reports)
    if factory is not None:
        client.adopt(factory, model="kws", version=1, labels=KWS_LABELS)
    return dev


def manifest_for(key: Ed25519PrivateKey, data: bytes, uri: str, *, seq: int = 5, **kw: Any) -> bytes:
    fields: dict[str, Any] = {
        "seq": seq, "artifact_id": "kws", "version": 2, "size": len(data), "sha256": hashlib.sha256(data).digest(),
        "uri": uri, "compat": Compat(arena=128 << 10), "labels": KWS_LABELS, "device": DEVICE,
    }  # fmt: skip
    fields.update(kw)
    return sign_manifest(build_manifest(**fields), key)


def _yes_rate(runner: ModelRunner) -> float:
    rng = np.random.default_rng(1)
    labels = [runner.infer(rng.uniform(-1, 1, size=runner.input_shape)).label for _ in range(5)]
    return labels.count(KWS_LABELS.index("yes")) / len(labels)


def _assert_old_model_kept(dev: Device, v1: bytes, state_dir: Path) -> None:
    active = dev.client.active
    assert active is not None
    assert (active.model, active.version, active.sha256) == ("kws", 1, hashlib.sha256(v1).hexdigest())
    assert dev.swaps == []  # nothing was swapped in
    assert dev.client.last_seq == 0  # the sequence number is not consumed
    assert json.loads((state_dir / "state.json").read_text())["active"]["version"] == 1
    assert [p.name for p in (state_dir / "models").iterdir()] == [f"{active.sha256}.tflite"]


# ------------------------------------------------------------------------------------------- happy path
def test_a_newer_model_is_applied_then_reverted_and_older_manifests_are_refused(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes
) -> None:
    config = ServerConfig(body=v2)
    with artifact_server(config) as url:
        dev = make_device(tmp_path / "ota", key, factory=v1)
        payload = manifest_for(key, v2, url, seq=5)
        final = dev.client.handle_manifest(payload)
        assert final is not None
        assert final.state is OtaState.APPLIED
        assert dev.states == ["downloading", "downloaded", "verified", "applied"]
        assert [s.progress for s in dev.reports[:3]] == [0, len(v2), len(v2)]
        assert {s.seq for s in dev.reports} == {5}
        assert (final.model, final.mver) == ("kws", 2)  # what it runs now
        # the new runner is in place, a new interpreter running the new model
        runner, installed = dev.swaps[-1]
        assert (installed.model, installed.version, installed.seq) == ("kws", 2, 5)
        assert installed.labels == tuple(KWS_LABELS)
        assert runner.data == v2
        assert dev.client.current is runner
        assert _yes_rate(runner) == 1.0
        state = json.loads((tmp_path / "ota" / "state.json").read_text())
        assert state["last_seq"] == 5
        assert (state["active"]["version"], state["previous"]["version"]) == (2, 1)
        assert not (tmp_path / "ota" / "download.json").exists()
        assert len(config.requests) == 1
        assert "range" not in config.requests[0].headers

        # a restart: the state comes back from disk, the same manifest (retained) is not applied twice
        again = make_device(tmp_path / "ota", key, factory=v1)
        assert again.client.active == installed
        loaded = again.client.load_active()
        assert loaded is not None
        assert loaded[0].data == v2
        assert again.client.handle_manifest(payload) is None
        assert again.reports == []
        # an older manifest, validly signed (recorded and replayed): refused, nothing fetched
        older = manifest_for(key, v1, url, seq=4, version=1)
        status = again.client.handle_manifest(older)
        assert status is not None
        assert (status.state, status.reason, status.seq) == (OtaState.FAILED, "replayed_sequence", 4)
        assert len(config.requests) == 1

        # revert: the previous model, in a new interpreter, self-tested, swapped in
        back = again.client.revert()
        assert (back.state, back.seq, back.model, back.mver) == (OtaState.ROLLED_BACK, 5, "kws", 1)
        runner1, installed1 = again.swaps[-1]
        assert (installed1.version, runner1.data) == (1, v1)
        assert _yes_rate(runner1) < 1.0
        state = json.loads((tmp_path / "ota" / "state.json").read_text())
        assert (state["last_seq"], state["active"]["version"], state["previous"]["version"]) == (5, 1, 2)
        # a rollback by manifest needs a higher seq; going back to v2 needs no download (its file is kept)
        forward = again.client.handle_manifest(manifest_for(key, v2, url, seq=6))
        assert forward is not None
        assert forward.state is OtaState.APPLIED
        assert again.states[-2:] == ["verified", "applied"]
        assert len(config.requests) == 1

        # at boot, a damaged active model file (flash corruption) is not run: the previous model is
        active_file = again.client.path_of(again.client.active)  # type: ignore[arg-type]
        damaged = bytearray(active_file.read_bytes())
        damaged[100] ^= 0xFF
        active_file.write_bytes(bytes(damaged))
        booted = make_device(tmp_path / "ota", key)
        loaded = booted.client.load_active()
        assert loaded is not None
        assert (loaded[0].data, loaded[1].version) == (v1, 1)
        assert json.loads((tmp_path / "ota" / "state.json").read_text())["active"]["version"] == 1


# ---------------------------------------------------------------------------------------- refused manifests
def _tampered(payload: bytes) -> bytes:
    b = bytearray(payload)
    b[-80] ^= 0x01  # inside the signed payload
    return bytes(b)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("tampered", "bad_signature"),
        ("untrusted_key", "unknown_key"),
        ("replayed", "replayed_sequence"),
        ("expired", "expired"),
        ("incompatible", "incompatible"),
        ("other_device", "wrong_device"),
        ("firmware", "incompatible"),
    ],
)
def test_a_refused_manifest_downloads_nothing_and_keeps_the_old_model(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes, case: str, reason: str
) -> None:
    config = ServerConfig(body=v2)
    now = int(time.time())
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1)
        over: dict[str, Any] = {
            "replayed": {"seq": 0},
            "expired": {"issued_at": now - 7200, "ttl_s": 3600},
            "incompatible": {"compat": Compat(arena=1 << 20)},
            "other_device": {"device": "someone-else"},
            "firmware": {"component": Component.FIRMWARE},
        }.get(case, {})
        signer = fixed_key("not trusted") if case == "untrusted_key" else key
        payload = manifest_for(signer, v2, url, **over)
        if case == "tampered":
            payload = _tampered(payload)
        status = dev.client.handle_manifest(payload)
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, reason)
        assert status.msg
        assert dev.states == [f"failed:{reason}"]
        assert status.seq == over.get("seq", 5)  # which manifest was refused
        assert (status.model, status.mver) == ("kws", 1)
        assert config.requests == []  # nothing downloaded
        _assert_old_model_kept(dev, v1, tmp_path)
        if case == "incompatible":
            assert "arena" in (status.msg or "")


# ------------------------------------------------------------------------------------------- bad artifacts
@pytest.mark.parametrize("mode", ["longer", "endless"])
def test_more_bytes_than_declared_are_refused_and_reading_stops(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes, mode: str
) -> None:
    config = ServerConfig(body=v2, mode=mode)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1)
        t0 = time.monotonic()
        status = dev.client.handle_manifest(manifest_for(key, v2, url))
        took = time.monotonic() - t0
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "size_mismatch")
        assert took < 5
        assert dev.states == ["downloading", "failed:size_mismatch"]
        assert len(config.requests) == 1  # refused, not retried
        # the client stopped reading: an endless server got only as far as the socket buffers let it
        time.sleep(0.3)
        assert config.requests[0].sent < len(v2) + (8 << 20)
        assert dev.client.bytes_downloaded <= len(v2) + 65_536
        assert not (tmp_path / "download.part").exists()
        _assert_old_model_kept(dev, v1, tmp_path)


def test_another_hash_is_refused(tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes) -> None:
    evil = v2[:-1] + bytes([v2[-1] ^ 0xFF])  # same size, other bytes: arbitrary software
    config = ServerConfig(body=evil)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1)
        status = dev.client.handle_manifest(manifest_for(key, v2, url))
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "hash_mismatch")
        assert dev.states == ["downloading", "failed:hash_mismatch"]
        assert not (tmp_path / "download.part").exists()
        _assert_old_model_kept(dev, v1, tmp_path)


def test_a_stalled_server_times_out_and_the_retry_resumes_with_range(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes
) -> None:
    config = ServerConfig(body=v2, mode="stall", stall_after=10_000)
    limits = DownloadLimits(read_timeout_s=0.5, retries=1, retry_backoff_s=0.1, progress_interval_s=None)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1, limits=limits)
        t0 = time.monotonic()
        status = dev.client.handle_manifest(manifest_for(key, v2, url))
        took = time.monotonic() - t0
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "download_failed")
        assert "timed out" in (status.msg or "")
        assert took < 4
        # the retry asked for the rest only, with the ETag of what it has
        assert [r.headers.get("range") for r in config.requests] == [None, "bytes=10000-"]
        assert config.requests[1].headers.get("if-range") == '"v1"'
        _assert_old_model_kept(dev, v1, tmp_path)
        # the partial download is kept for the next attempt
        assert json.loads((tmp_path / "download.json").read_text())["offset"] == 20_000


def test_a_trickling_server_is_dropped_for_slow_retrieval(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes
) -> None:
    config = ServerConfig(body=v2, mode="slow", trickle=64, interval_s=0.05)  # ~1.3 KB/s, every read in time
    limits = DownloadLimits(read_timeout_s=2, min_rate_bps=8192, rate_grace_s=0.5, retries=0)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1, limits=limits)
        t0 = time.monotonic()
        status = dev.client.handle_manifest(manifest_for(key, v2, url))
        assert time.monotonic() - t0 < 3
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "download_failed")
        assert "slow retrieval" in (status.msg or "")
        _assert_old_model_kept(dev, v1, tmp_path)
    # and a total deadline, however fast each piece comes
    config = ServerConfig(body=v2, mode="throttle", trickle=4096, interval_s=0.05)
    limits = DownloadLimits(deadline_s=0.5, min_rate_bps=0, retries=0)
    with artifact_server(config) as url:
        dev = make_device(tmp_path / "2", key, factory=v1, limits=limits)
        status = dev.client.handle_manifest(manifest_for(key, v2, url))
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "download_failed")
        assert "longer than 0.5 s" in (status.msg or "")


def test_a_changed_artifact_restarts_from_zero_instead_of_mixing(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes
) -> None:
    """The server's file changed between two attempts: If-Range no longer matches, the whole new file comes
    (200) and the client drops its partial copy rather than appending to it."""
    config = ServerConfig(body=bytes(len(v2)), etag='"old"', mode="stall", stall_after=20_000)
    limits = DownloadLimits(read_timeout_s=0.3, retries=0, progress_interval_s=None)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1, limits=limits)
        payload = manifest_for(key, v2, url)
        status = dev.client.handle_manifest(payload)
        assert status is not None
        assert status.reason == "download_failed"
        config.body, config.etag, config.mode = v2, '"new"', "ok"
        status = dev.client.handle_manifest(payload)  # the same manifest again (e.g. retained, on reconnect)
        assert status is not None
        assert status.state is OtaState.APPLIED, dev.states
        second = config.requests[-1]
        assert (second.headers.get("range"), second.headers.get("if-range"), second.status) == (
            "bytes=20000-", '"old"', 200,
        )  # fmt: skip
        assert dev.swaps[-1][0].data == v2


def test_a_model_that_does_not_load_or_fails_its_self_test_is_not_swapped_in(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes
) -> None:
    junk = b"TFL3" + bytes(range(256)) * 64  # signed for, hash right, but not a model
    config = ServerConfig(body=junk)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1)
        status = dev.client.handle_manifest(manifest_for(key, junk, url))
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "apply_failed")
        assert dev.states == ["downloading", "downloaded", "verified", "failed:apply_failed"]
        _assert_old_model_kept(dev, v1, tmp_path)
        # a real model whose manifest names 3 labels for its 12 outputs: the self-test says no
        config.body = v1b = patch_output_bias(v1, label=0, delta=1)
        status = dev.client.handle_manifest(manifest_for(key, v1b, url, labels=["a", "b", "c"]))
        assert status is not None
        assert (status.state, status.reason) == (OtaState.FAILED, "apply_failed")
        assert "self-test" in (status.msg or "")
        _assert_old_model_kept(dev, v1, tmp_path)


def test_a_cancelled_download_is_not_a_failure_and_continues_later(
    tmp_path: Path, key: Ed25519PrivateKey, v1: bytes, v2: bytes
) -> None:
    config = ServerConfig(body=v2, mode="throttle", trickle=1024, interval_s=0.01)
    limits = DownloadLimits(persist_interval_s=0.01, progress_interval_s=None)
    with artifact_server(config) as url:
        dev = make_device(tmp_path, key, factory=v1, limits=limits)
        payload = manifest_for(key, v2, url)
        result: list[OtaStatus | None] = []
        worker = threading.Thread(target=lambda: result.append(dev.client.handle_manifest(payload)))
        worker.start()
        deadline = time.monotonic() + 20
        while _offset(tmp_path) < 4096 and time.monotonic() < deadline:
            time.sleep(0.01)
        dev.client.cancel()  # e.g. the device shuts down, or a newer manifest arrives
        worker.join(10)
        assert result == [None]
        assert dev.states == ["downloading"]  # no "failed": the rollout must not count it
        stopped_at = _offset(tmp_path)
        assert 4096 <= stopped_at < len(v2)
        _assert_old_model_kept(dev, v1, tmp_path)
        config.mode = "ok"
        status = dev.client.handle_manifest(payload)  # the same manifest (retained) again
        assert status is not None
        assert status.state is OtaState.APPLIED
        assert config.requests[-1].headers.get("range") == f"bytes={stopped_at}-"
    # the device was given another factory file: an adopted model is replaced, an OTA-installed one is not
    other = tmp_path / "other"
    fresh = make_device(other, key, factory=v1)
    replaced = fresh.client.adopt(v2, model="kws", version=7)
    assert (replaced.version, fresh.client.active) == (7, replaced)
    assert [p.name for p in (other / "models").iterdir()] == [f"{replaced.sha256}.tflite"]
    kept = dev.client.adopt(v1, model="kws", version=1)
    assert (kept.version, kept.seq) == (2, 5)


# ------------------------------------------------------------------------------------------------ kill -9
def _child(state: Path, key: Ed25519PrivateKey, arg: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "tests.device_sdk.ota_child", str(state), raw_public_key(key.public_key()).hex(), arg]
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _offset(state: Path) -> int:
    try:
        return int(json.loads((state / "download.json").read_text())["offset"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def test_kill_9_mid_download_resumes_from_the_persisted_offset(
    tmp_path: Path, key: Ed25519PrivateKey, v2: bytes
) -> None:
    config = ServerConfig(body=v2, mode="throttle", trickle=1024, interval_s=0.02)  # ~50 KB/s
    state = tmp_path / "ota"
    with artifact_server(config) as url:
        proc = _child(state, key, manifest_for(key, v2, url, device=None).hex())
        try:
            deadline = time.monotonic() + 30
            while _offset(state) < 8192 and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, proc.communicate()
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        finally:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        persisted = _offset(state)
        assert 8192 <= persisted < len(v2)
        assert (state / "download.part").stat().st_size >= persisted
        assert json.loads((state / "state.json").read_text() if (state / "state.json").exists() else "{}") == {}
        config.mode = "ok"
        resumed = _child(state, key, "--resume")
        out, err = resumed.communicate(timeout=60)
        assert resumed.returncode == 0, err
        lines = [json.loads(line) for line in out.splitlines()]
        assert lines[-1]["final"] == "applied", lines
        assert lines[-1]["active"] == hashlib.sha256(v2).hexdigest()
        assert lines[0] == {"state": "downloading", "seq": 5, "progress": persisted, "reason": None, "msg": None}
        # the second process asked for the rest only, from the persisted offset, and got only that
        second = config.requests[-1]
        assert second.headers.get("range") == f"bytes={persisted}-"
        assert second.headers.get("if-range") == '"v1"'
        assert second.status == 206
        assert lines[-1]["downloaded"] == len(v2) - persisted
        assert (state / "models" / f"{hashlib.sha256(v2).hexdigest()}.tflite").read_bytes() == v2


# ------------------------------------------------------------------------------------ the real service
@dataclass
class ServiceEnv:
    base_url: str
    api: httpx.AsyncClient
    signing_key: Ed25519PrivateKey


@pytest.fixture
async def service_env(migrated_db: str, prefix: str, tmp_path: Path) -> AsyncIterator[ServiceEnv]:  # noqa: F811
    key_file = tmp_path / "ota.pem"
    write_signing_key(key_file, generate_signing_key())
    port = free_port()
    admin = "ota-client-tests-admin-key-0123456789"
    settings = make_settings(
        migrated_db, prefix, http_port=port, public_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "data",
        ota_signing_key_file=key_file, admin_api_key=admin,
    )  # fmt: skip
    async with Service(settings, ingest=False, maintenance=False, rules=False, rollouts=False) as service:
        stop = asyncio.Event()
        started = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, started=started.set))
        await asyncio.wait_for(started.wait(), 20)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=60, headers={"Authorization": f"Bearer {admin}"}) as api:
            try:
                yield ServiceEnv(base, api, load_signing_key(settings))
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(serving, 15)


async def test_the_service_signed_manifest_applies_a_model_from_the_registry_with_device_credentials(
    service_env: ServiceEnv, tmp_path: Path, v1: bytes, v2: bytes
) -> None:
    env = service_env
    r = await env.api.put("/api/v1/models/kws/versions/2", content=v2, params={"labels": KWS_LABELS})
    assert r.status_code in (200, 201), r.text
    version = r.json()
    r = await env.api.post("/api/v1/devices", json={"id": DEVICE})
    assert r.status_code == 201, r.text
    password = r.json()["credentials"]["password"]
    uri = f"{env.base_url}{version['download_url']}"
    payload = manifest_for(env.signing_key, v2, uri, seq=11, compat=Compat(arena=128 << 10))
    # wrong credentials: the registry refuses, the device reports it and keeps its model
    bad = make_device(tmp_path / "bad", env.signing_key, factory=v1, auth=(DEVICE, "not-the-password"))
    status = await asyncio.to_thread(bad.client.handle_manifest, payload)
    assert status is not None
    assert (status.state, status.reason) == (OtaState.FAILED, "download_failed")
    assert "401" in (status.msg or "")
    # its own credentials (the MQTT ones, as HTTP Basic)
    dev = make_device(tmp_path / "dev", env.signing_key, factory=v1, auth=(DEVICE, password))
    status = await asyncio.to_thread(dev.client.handle_manifest, payload)
    assert status is not None
    assert status.state is OtaState.APPLIED, dev.states
    assert (status.seq, status.model, status.mver) == (11, "kws", 2)
    assert dev.states == ["downloading", "downloaded", "verified", "applied"]
    runner, installed = dev.swaps[-1]
    assert runner.data == v2
    assert installed.sha256 == version["sha256"]
    assert _yes_rate(runner) == 1.0
    back = await asyncio.to_thread(dev.client.revert)
    assert (back.state, back.mver) == (OtaState.ROLLED_BACK, 1)
    assert dev.swaps[-1][0].data == v1
    for d in (bad, dev):  # no keep-alive connection left for the server's shutdown to wait on
        d.client.close()
