"""`tinyfleet keys …` and `tinyfleet manifest …`, run as real subprocesses of the installed entry point."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.registry.conftest import KWS
from tinyfleet_device.manifest import DeviceCapabilities, TrustedKeys, key_id, verify_manifest

TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_")}
    return subprocess.run([TINYFLEET, *args], cwd=cwd, env=clean | env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "ota.pem"
    r = run("keys", "generate", "--out", str(path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    return path


def _public_hex(key_file: Path, cwd: Path) -> str:
    r = run("keys", "show-public", "--key-file", str(key_file), cwd=cwd)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_help_lists_keys_and_manifest(tmp_path: Path) -> None:
    r = run("--help", cwd=tmp_path)
    assert "keys" in r.stdout
    assert "manifest" in r.stdout
    for sub, words in (("keys", ("generate", "show-public")), ("manifest", ("sign", "verify", "show"))):
        out = run(sub, "--help", cwd=tmp_path).stdout
        assert all(w in out for w in words), out


def test_generate_writes_0600_and_refuses_to_overwrite(tmp_path: Path, key_file: Path) -> None:
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()
    r = run("keys", "generate", "--out", str(key_file), cwd=tmp_path)
    assert r.returncode == 1
    assert "refusing to overwrite" in r.stderr
    assert key_file.read_bytes() == before


def test_generate_default_path_is_the_setting(tmp_path: Path) -> None:
    target = tmp_path / "from-env.pem"
    r = run("keys", "generate", cwd=tmp_path, TINYFLEET_OTA_SIGNING_KEY_FILE=str(target))
    assert r.returncode == 0, r.stderr
    assert target.exists()
    r = run("keys", "generate", cwd=tmp_path, TINYFLEET_DATA_DIR=str(tmp_path / "data"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "data" / "ota-signing-key.pem").exists()


def test_show_public_formats(tmp_path: Path, key_file: Path) -> None:
    hex_key = _public_hex(key_file, tmp_path)
    raw = bytes.fromhex(hex_key)
    assert len(raw) == 32
    env = {"TINYFLEET_OTA_SIGNING_KEY_FILE": str(key_file)}
    assert run("keys", "show-public", cwd=tmp_path, **env).stdout.strip() == hex_key
    pem = run("keys", "show-public", "--format", "pem", cwd=tmp_path, **env)
    assert pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    c = run("keys", "show-public", "--format", "c", cwd=tmp_path, **env)
    assert f"0x{raw[0]:02x}, 0x{raw[1]:02x}" in c.stdout
    assert key_id(raw).hex() in c.stdout
    assert key_id(raw).hex() in pem.stderr


def test_show_public_refuses_a_readable_key(tmp_path: Path, key_file: Path) -> None:
    key_file.chmod(0o644)
    r = run("keys", "show-public", "--key-file", str(key_file), cwd=tmp_path)
    assert r.returncode == 1
    assert "chmod 600" in r.stderr


def test_missing_key_is_a_clear_error(tmp_path: Path) -> None:
    r = run("keys", "show-public", cwd=tmp_path)
    assert r.returncode == 1
    assert "no OTA signing key" in r.stderr


def _description(tmp_path: Path, **over: object) -> Path:
    d: dict[str, object] = {
        "seq": 5,
        "id": "kws-ref",
        "ver": 3,
        "uri": "https://fleet.example.com/api/v1/models/kws-ref/versions/3/blob",
        "compat": {"arena": 60_000, "ops": ["CONV_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]},
    }
    d.update(over)
    path = tmp_path / "release.json"
    path.write_text(json.dumps(d))
    return path


def test_sign_verify_show_round_trip(tmp_path: Path, key_file: Path) -> None:
    out = tmp_path / "m.cose"
    r = run(
        "manifest", "sign", str(_description(tmp_path)), "--artifact", str(KWS), "--key-file", str(key_file),
        "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert f"signed {len(data)} bytes" in r.stderr
    # the device-side verifier accepts what the CLI signed
    pub = Ed25519PublicKey.from_public_bytes(bytes.fromhex(_public_hex(key_file, tmp_path)))
    m = verify_manifest(data, keys=TrustedKeys([pub]), last_seq=4, now=None, device=DeviceCapabilities())
    assert (m.seq, m.size) == (5, KWS.stat().st_size)

    r = run("manifest", "verify", str(out), "--key-file", str(key_file), "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "valid"
    assert doc["payload"]["compat"]["ops"] == [3, 4, 25]
    assert doc["payload"]["size"] == KWS.stat().st_size

    text = run("manifest", "verify", str(out), "--public-key", _public_hex(key_file, tmp_path), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "verdict: valid" in text.stdout

    shown = run("manifest", "show", str(out), cwd=tmp_path)
    assert shown.returncode == 0
    assert "NOT verified" in shown.stdout
    assert '"id": "kws-ref"' in shown.stdout


def test_verify_rejections(tmp_path: Path, key_file: Path) -> None:
    r = run("manifest", "sign", str(_description(tmp_path, size=10, sha256="00" * 32)), "--key-file", str(key_file),
            cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    hex_file = tmp_path / "m.hex"
    hex_file.write_text(r.stdout)  # hex on stdout; verify reads hex files too
    base = ("manifest", "verify", str(hex_file), "--key-file", str(key_file), "--json")

    def verdict(*extra: str) -> dict[str, object]:
        res = run(*base, *extra, cwd=tmp_path)
        doc: dict[str, object] = json.loads(res.stdout)
        assert res.returncode == (0 if doc["verdict"] == "valid" else 1)
        return doc

    assert verdict()["verdict"] == "valid"
    assert verdict("--last-seq", "5")["reason"] == "replayed_sequence"
    assert verdict("--now", str(2**32 - 1))["reason"] == "expired"
    assert verdict("--now", str(2**32 - 1), "--no-clock")["verdict"] == "valid"
    device = tmp_path / "device.json"
    device.write_text(json.dumps({"arena": 1000, "ops": ["CONV_2D"]}))
    doc = verdict("--device", str(device))
    assert doc["reason"] == "incompatible"
    assert doc["payload_verified"] is False
    other = tmp_path / "other.pem"
    assert run("keys", "generate", "--out", str(other), cwd=tmp_path).returncode == 0
    assert verdict("--public-key", _public_hex(other, tmp_path))["reason"] == "unknown_key"

    tampered = bytearray(bytes.fromhex(r.stdout.strip()))
    tampered[-70] ^= 1
    hex_file.write_text(tampered.hex())
    assert verdict()["reason"] == "bad_signature"
    hex_file.write_bytes(b"\xd2\x84garbage")
    doc = verdict()
    assert doc["reason"] == "malformed"
    assert doc["payload"] is None
    shown = run("manifest", "show", str(hex_file), cwd=tmp_path)
    assert shown.returncode == 1
    assert "malformed" in shown.stderr


def test_sign_errors_are_one_clear_line(tmp_path: Path, key_file: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": "m", "ver": 1}')
    r = run("manifest", "sign", str(bad), "--key-file", str(key_file), cwd=tmp_path)
    assert r.returncode == 1
    assert "uri" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("manifest", "sign", str(_description(tmp_path)), "--key-file", str(key_file), cwd=tmp_path)
    assert r.returncode == 1
    assert "--artifact" in r.stderr
    r = run("manifest", "sign", str(_description(tmp_path, uri="")), "--artifact", str(KWS), "--key-file",
            str(key_file), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1
    assert "a device would refuse" in r.stderr
    r = run("manifest", "sign", str(tmp_path / "missing.json"), "--key-file", str(key_file), cwd=tmp_path)
    assert r.returncode == 1
    assert "cannot read" in r.stderr
