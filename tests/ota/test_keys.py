"""tinyfleet.ota.keys: generating, storing (mode 0600), loading and exporting the manifest signing key."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

from tinyfleet.config import load_settings
from tinyfleet.ota.keys import (
    PublicKeyFormat,
    SigningKeyError,
    export_public_key,
    generate_signing_key,
    load_signing_key,
    load_signing_key_file,
    parse_public_key,
    parse_signing_key,
    private_key_pem,
    write_signing_key,
)
from tinyfleet_device.manifest import key_id


def _raw_private(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_written_key_is_0600_and_loads_back(tmp_path: Path) -> None:
    key = generate_signing_key()
    path = tmp_path / "sub" / "ota.pem"
    old = os.umask(0)  # even a permissive umask gives a private file
    try:
        write_signing_key(path, key)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert _raw_private(load_signing_key_file(path)) == _raw_private(key)


def test_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "ota.pem"
    write_signing_key(path, generate_signing_key())
    before = path.read_bytes()
    with pytest.raises(SigningKeyError, match="refusing to overwrite"):
        write_signing_key(path, generate_signing_key())
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_refuses_a_key_others_can_access(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "ota.pem"
    write_signing_key(path, generate_signing_key())
    path.chmod(mode)
    with pytest.raises(SigningKeyError, match=f"mode {mode:04o}.*chmod 600"):
        load_signing_key_file(path)
    path.chmod(0o400)
    assert load_signing_key_file(path)


def test_refuses_other_key_types_and_garbage(tmp_path: Path) -> None:
    ec = generate_private_key(SECP256R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path = tmp_path / "ec.pem"
    path.write_bytes(ec)
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not Ed25519"):
        load_signing_key_file(path)
    path.write_bytes(b"not a key")
    with pytest.raises(SigningKeyError, match="not an unencrypted PEM"):
        load_signing_key_file(path)
    with pytest.raises(SigningKeyError, match="cannot read"):
        load_signing_key_file(tmp_path / "missing.pem")


def test_parse_signing_key_forms() -> None:
    key = generate_signing_key()
    raw = _raw_private(key)
    for text in (private_key_pem(key).decode(), raw.hex(), base64.b64encode(raw).decode(), f"  {raw.hex()}\n"):
        assert _raw_private(parse_signing_key(text)) == raw
    for bad in ("", "abcd", "zz" * 32, base64.b64encode(b"x" * 31).decode()):
        with pytest.raises(SigningKeyError, match="TINYFLEET_OTA_SIGNING_KEY"):
            parse_signing_key(bad)


def test_load_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TINYFLEET_OTA_SIGNING_KEY", "TINYFLEET_OTA_SIGNING_KEY_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env
    key = generate_signing_key()
    path = tmp_path / "ota.pem"
    write_signing_key(path, key)
    monkeypatch.setenv("TINYFLEET_OTA_SIGNING_KEY_FILE", str(path))
    assert _raw_private(load_signing_key(load_settings())) == _raw_private(key)
    monkeypatch.setenv("TINYFLEET_OTA_SIGNING_KEY", _raw_private(key).hex())
    with pytest.raises(SigningKeyError, match="not both"):
        load_signing_key(load_settings())
    monkeypatch.delenv("TINYFLEET_OTA_SIGNING_KEY_FILE")
    assert _raw_private(load_signing_key(load_settings())) == _raw_private(key)
    monkeypatch.delenv("TINYFLEET_OTA_SIGNING_KEY")
    with pytest.raises(SigningKeyError, match="no OTA signing key"):
        load_signing_key(load_settings())


def test_public_key_exports_round_trip() -> None:
    key = generate_signing_key()
    raw = _raw_public(key)
    pub = key.public_key()
    assert export_public_key(pub, PublicKeyFormat.HEX) == raw.hex()
    assert base64.b64decode(export_public_key(pub, PublicKeyFormat.BASE64)) == raw
    pem = export_public_key(pub, PublicKeyFormat.PEM)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    for fmt in (PublicKeyFormat.HEX, PublicKeyFormat.BASE64, PublicKeyFormat.PEM):
        back = parse_public_key(export_public_key(pub, fmt))
        assert back.public_bytes(Encoding.Raw, PublicFormat.Raw) == raw
    with pytest.raises(SigningKeyError):
        parse_public_key("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")


def test_c_array_holds_the_raw_key_and_kid() -> None:
    key = generate_signing_key()
    c = export_public_key(key.public_key(), PublicKeyFormat.C)
    assert "static const uint8_t tinyfleet_ota_public_key[32]" in c
    assert "static const uint8_t tinyfleet_ota_public_key_kid[8]" in c
    key_part, kid_part = c.split("_kid[8]")
    key_bytes = bytes(int(x, 16) for x in key_part.split("{")[1].split("}")[0].replace(",", " ").split())
    kid_bytes = bytes(int(x, 16) for x in kid_part.split("{")[1].split("}")[0].replace(",", " ").split())
    assert key_bytes == _raw_public(key)
    assert kid_bytes == key_id(key.public_key())
