"""A whole service (ingest + API over real HTTP + rollout controller) and a simulated fleet that really
downloads, verifies and runs the models (TFLM), on the shared Mosquitto and a fresh database."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import tflite

from tests.actions.conftest import eventually
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.ingest.conftest import make_settings, migrated_db, prefix  # noqa: F401 - fixtures
from tests.registry.conftest import KWS, KWS_LABELS
from tests.support.instances import free_port
from tinyfleet.app import Service
from tinyfleet.config import Settings
from tinyfleet.ota.keys import generate_signing_key, write_signing_key
from tinyfleet_device.manifest import DeviceCapabilities, raw_public_key
from tinyfleet_device.ota_sim import OtaFleet, SimDevice

ADMIN_KEY = "rollout-tests-admin-key-0123456789"


def patch_output_bias(data: bytes, label: int, delta: int) -> bytes:
    """The model with `delta` added to the bias of class `label` in its last FULLY_CONNECTED layer: a large
    delta makes a model that always predicts `label`; a tiny one a new version that behaves the same."""
    m = tflite.Model.GetRootAsModel(data, 0)
    g = m.Subgraphs(0)
    last_fc = None
    for i in range(g.OperatorsLength()):
        op = g.Operators(i)
        code = m.OperatorCodes(op.OpcodeIndex())
        if max(code.BuiltinCode(), code.DeprecatedBuiltinCode()) == tflite.BuiltinOperator.FULLY_CONNECTED:
            last_fc = op
    assert last_fc is not None, "no FULLY_CONNECTED layer"
    buf = m.Buffers(g.Tensors(last_fc.Inputs(2)).Buffer())
    start = buf._tab.Vector(buf._tab.Offset(4))
    out = bytearray(data)
    (value,) = struct.unpack_from("<i", out, start + 4 * label)
    struct.pack_into("<i", out, start + 4 * label, value + delta)
    return bytes(out)


@dataclass
class FleetEnv:
    settings: Settings
    service: Service
    api: httpx.AsyncClient
    base_url: str
    public_key: bytes
    v1: bytes

    def fleet(self, n: int, *, events_per_s: float = 5.0, prefix_id: str = "dev") -> OtaFleet:
        devices = [
            SimDevice(f"{prefix_id}-{i:03d}", "kws", 1, artifact=self.v1,
                      caps=DeviceCapabilities(flash=1 << 20, ram=256 << 10, arena=128 << 10))
            for i in range(n)
        ]  # fmt: skip
        return OtaFleet(devices, host=MQTT_HOST, port=MQTT_PORT, prefix=self.settings.topic_prefix,
                        trusted_keys=[self.public_key], events_per_s=events_per_s)  # fmt: skip

    async def push(self, version: int, data: bytes) -> None:
        r = await self.api.put(f"/api/v1/models/kws/versions/{version}", content=data,
                               params={"labels": KWS_LABELS, "task": "keyword spotting"})  # fmt: skip
        assert r.status_code in (200, 201), r.text

    async def wait_devices(self, n: int, within: float = 20) -> None:
        async def all_there() -> bool:
            r = await self.api.get("/api/v1/devices", params={"limit": 500})
            items = r.json()["items"]
            return len([d for d in items if d["model"] == "kws" and d["mver"] == 1]) >= n

        await eventually(all_there, within)


@pytest.fixture
async def fleet_env(migrated_db: str, prefix: str, tmp_path: Path) -> AsyncIterator[FleetEnv]:  # noqa: F811
    key = generate_signing_key()
    key_file = tmp_path / "ota.pem"
    write_signing_key(key_file, key)
    port = free_port()
    settings = make_settings(
        migrated_db, prefix, http_port=port, public_url=f"http://127.0.0.1:{port}", data_dir=tmp_path / "data",
        ota_signing_key_file=key_file, rollouts_interval_s=0.2, rules_dir=tmp_path / "no-rules",
        admin_api_key=ADMIN_KEY,
    )  # fmt: skip
    (tmp_path / "no-rules").mkdir()
    async with Service(settings, rules=False) as service:
        stop = asyncio.Event()
        started = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, started=started.set))
        await asyncio.wait_for(started.wait(), 20)
        assert service.ingest is not None
        assert await asyncio.to_thread(service.ingest.wait_connected, 10)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers) as api:
            env = FleetEnv(settings, service, api, base, raw_public_key(key.public_key()), KWS.read_bytes())
            await env.push(1, env.v1)
            try:
                yield env
            finally:
                stop.set()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(serving, 15)
