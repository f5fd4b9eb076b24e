"""Device password hashes in Mosquitto's `$7$` format, checked against the real mosquitto_passwd."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tinyfleet.fleet.passwords import generate_password, mosquitto_hash, verify_mosquitto_hash


def test_our_verifier_accepts_what_mosquitto_passwd_writes(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    path = tmp_path / "passwd"
    subprocess.run([binary, "-c", "-b", str(path), "dev-1", "s3cret-pw"], check=True, capture_output=True)
    user, encoded = path.read_text().strip().split(":", 1)
    assert user == "dev-1"
    assert encoded.startswith("$7$")
    assert verify_mosquitto_hash("s3cret-pw", encoded)
    assert not verify_mosquitto_hash("s3cret-pX", encoded)


def test_hash_format_and_salt() -> None:
    password = generate_password()
    assert len(password) >= 20
    a, b = mosquitto_hash(password), mosquitto_hash(password)
    assert a != b  # fresh salt each time
    _, seven, iterations, salt, digest = a.split("$")
    assert (seven, iterations) == ("7", "101")
    assert len(salt) == 16
    assert len(digest) == 88
    assert verify_mosquitto_hash(password, a)
    assert verify_mosquitto_hash(password, b)
    assert not verify_mosquitto_hash(password, "$6$x$y")
    assert not verify_mosquitto_hash(password, "$7$1$!!$!!")
