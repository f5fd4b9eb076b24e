"""tinyfleet.ota.manifest: the signer, operator descriptions, and the size of a typical manifest."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.registry.conftest import KWS
from tinyfleet.ota.keys import generate_signing_key
from tinyfleet.ota.manifest import (
    ManifestDescriptionError,
    artifact_digest,
    build_manifest,
    compat_for,
    manifest_size,
    parse_description,
    sign_manifest,
)
from tinyfleet_device.manifest import (
    Component,
    DeviceCapabilities,
    ManifestError,
    Reason,
    TrustedKeys,
    verify_manifest,
)


def test_signed_manifest_verifies_on_the_device_side() -> None:
    key = generate_signing_key()
    m = build_manifest(
        seq=3,
        artifact_id="kws-ref",
        version=2,
        size=10,
        sha256=bytes(32),
        uri="https://fleet.example.com/m/1",
        compat=compat_for(arena=50_000, ops=["CONV_2D", "SOFTMAX", "CONV_2D", "MY_OP"]),
        issued_at=1_790_000_000,
        ttl_s=3600,
    )
    assert m.expires_at == 1_790_003_600
    assert m.compat.ops == (3, 25, "MY_OP")  # names -> builtin codes, duplicates dropped
    data = sign_manifest(m, key)
    got = verify_manifest(
        data, keys=TrustedKeys([key.public_key()]), last_seq=2, now=1_790_000_001, device=DeviceCapabilities()
    )
    assert got == m


def test_signer_refuses_what_a_device_refuses() -> None:
    key = generate_signing_key()
    bad = build_manifest(seq=1, artifact_id="m", version=1, size=1, sha256=b"short", uri="u")
    with pytest.raises(ManifestError) as info:
        sign_manifest(bad, key)
    assert info.value.reason is Reason.MALFORMED


def test_typical_manifest_size_with_a_64_byte_uri() -> None:
    size = manifest_size()
    assert size.uri_length == 64
    assert size.ops == 6
    assert size.total <= 256, size
    assert size.payload < size.total
    assert manifest_size(uri_length=128).total == size.total + 64  # same 2-byte text and payload heads


def test_artifact_digest_of_a_real_model() -> None:
    size, sha = artifact_digest(KWS, chunk_size=4096)
    data = KWS.read_bytes()
    assert (size, sha) == (len(data), hashlib.sha256(data).digest())


def test_description_to_manifest(tmp_path: Path) -> None:
    desc = parse_description(
        '{"seq": 4, "component": "firmware", "id": "fw", "ver": "2.0.1", "uri": "https://x/fw.bin",'
        ' "size": 5, "sha256": "' + "ab" * 32 + '", "compat": {"flash": 1024, "class": "esp32-s3"},'
        ' "labels": ["a"], "rollout": 9, "dev": "d1", "iat": 1790000000, "ttl_s": 60}'
    )
    m = desc.to_manifest()
    assert (m.seq, m.component, m.version, m.size, m.sha256) == (4, Component.FIRMWARE, "2.0.1", 5, b"\xab" * 32)
    assert (m.compat.flash, m.compat.device_class, m.labels, m.rollout, m.device) == (1024, "esp32-s3", ("a",), 9, "d1")
    assert m.expires_at == 1_790_000_060
    assert desc.to_manifest(seq=9, artifact=(7, bytes(32))).seq == 9
    explicit = parse_description('{"seq":1,"id":"m","ver":1,"uri":"u","size":1,"sha256":"' + "00" * 32 + '",'
                                 '"iat":100,"exp":200}').to_manifest()  # fmt: skip
    assert (explicit.issued_at, explicit.expires_at) == (100, 200)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"id": "m", "ver": 1}', "uri"),
        ('{"id": "m", "ver": 1, "uri": "u", "color": 1}', "color"),
        ('{"id": "m", "ver": 1, "uri": "u", "sha256": "xyz"}', "sha256"),
        ('{"id": "m", "ver": 1, "uri": "u", "component": "bootloader"}', "component"),
        ("[1]", "(document)"),
        ("{", "json"),
    ],
)
def test_bad_descriptions(text: str, needle: str) -> None:
    with pytest.raises(ManifestDescriptionError) as info:
        parse_description(text)
    assert needle.lower() in str(info.value).lower()


def test_description_needs_seq_and_digest() -> None:
    desc = parse_description('{"id": "m", "ver": 1, "uri": "u"}')
    with pytest.raises(ManifestDescriptionError, match="seq"):
        desc.to_manifest()
    with pytest.raises(ManifestDescriptionError, match="--artifact"):
        desc.to_manifest(seq=1)
