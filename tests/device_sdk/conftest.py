"""Keys and a typical manifest for the verifier tests (fixed seeds: reproducible failures)."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tinyfleet_device.manifest import Compat, Component, DeviceCapabilities, Manifest, TrustedKeys

IAT = 1_790_000_000
ARTIFACT = b"\x18\x00TFL3" + bytes(range(200)) * 50
OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX")


def fixed_key(name: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


@pytest.fixture(scope="session")
def signing_key() -> Ed25519PrivateKey:
    return fixed_key("tests/device_sdk signing key")


@pytest.fixture(scope="session")
def other_key() -> Ed25519PrivateKey:
    return fixed_key("tests/device_sdk other key")


@pytest.fixture(scope="session")
def trusted(signing_key: Ed25519PrivateKey) -> TrustedKeys:
    return TrustedKeys([signing_key.public_key()])


def typical_manifest(**over: object) -> Manifest:
    fields: dict[str, object] = {
        "seq": 7,
        "issued_at": IAT,
        "expires_at": IAT + 86_400,
        "component": Component.MODEL,
        "artifact_id": "kws-ref",
        "version": 12,
        "size": len(ARTIFACT),
        "sha256": hashlib.sha256(ARTIFACT).digest(),
        "uri": "https://fleet.example.com/api/v1/models/kws-ref/versions/12/blob",
        "compat": Compat(flash=1_048_576, ram=262_144, arena=60_000, ops=(3, 4, 1, 22, 9, 25)),
    }
    fields.update(over)
    return Manifest(**fields)  # type: ignore[arg-type]


DEVICE = DeviceCapabilities(
    flash=2_097_152,
    ram=327_680,
    arena=64_000,
    ops=frozenset(OPS),
    device_class="nucleo-f746zg",
    device_id="press-007",
)
