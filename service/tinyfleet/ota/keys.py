"""The Ed25519 key that signs OTA manifests: generate, store (PEM, mode 0600), load, and export the public half.

The service holds the private key (``TINYFLEET_OTA_SIGNING_KEY_FILE`` or ``TINYFLEET_OTA_SIGNING_KEY``);
devices hold the public key (raw 32 bytes, e.g. as the C array of :func:`public_key_c_array`).
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from enum import StrEnum
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from tinyfleet.config import Settings
from tinyfleet_device.manifest import key_id, raw_public_key

__all__ = [
    "PublicKeyFormat",
    "SigningKeyError",
    "export_public_key",
    "generate_signing_key",
    "load_signing_key",
    "load_signing_key_file",
    "parse_public_key",
    "parse_signing_key",
    "private_key_pem",
    "public_key_c_array",
    "write_signing_key",
]


class SigningKeyError(Exception):
    """The signing key is missing, unreadable, not Ed25519, or stored unsafely."""


class PublicKeyFormat(StrEnum):
    HEX = "hex"
    BASE64 = "base64"
    PEM = "pem"
    C = "c"


def generate_signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """PKCS#8 PEM, unencrypted: the file's mode 0600 is its protection."""
    return key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())


def write_signing_key(path: Path, key: Ed25519PrivateKey) -> None:
    """Write ``key`` as PEM to a new file of mode 0600; never overwrites an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise SigningKeyError(f"{path} exists; refusing to overwrite a signing key") from exc
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # the umask may have taken bits away, never added: set it exactly
        f.write(private_key_pem(key))


def _private_from_pem(data: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"{where}: not an unencrypted PEM private key ({exc})") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{where}: the key is {type(key).__name__}, not Ed25519")
    return key


def load_signing_key_file(path: Path) -> Ed25519PrivateKey:
    """Load a PEM signing key; refuses a file that group or others may read or write."""
    try:
        st = path.stat()
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"cannot read the signing key {path}: {exc.strerror or exc}") from exc
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        raise SigningKeyError(f"{path} has mode {mode:04o}: a signing key must be private (chmod 600 {path})")
    return _private_from_pem(data, str(path))


def parse_signing_key(text: str, where: str = "TINYFLEET_OTA_SIGNING_KEY") -> Ed25519PrivateKey:
    """A signing key given as text: PEM, or the 32-byte private seed as hex or base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        return _private_from_pem(text.encode(), where)
    return Ed25519PrivateKey.from_private_bytes(_raw32(text, where, "private seed"))


def _raw32(text: str, where: str, what: str) -> bytes:
    raw: bytes | None = None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        raise SigningKeyError(f"{where}: expected PEM, or the 32-byte {what} as hex (64 digits) or base64")
    return raw


def load_signing_key(settings: Settings) -> Ed25519PrivateKey:
    """The configured signing key: ``ota_signing_key_file`` or ``ota_signing_key`` (exactly one)."""
    if settings.ota_signing_key is not None and settings.ota_signing_key_file is not None:
        raise SigningKeyError("set TINYFLEET_OTA_SIGNING_KEY or TINYFLEET_OTA_SIGNING_KEY_FILE, not both")
    if settings.ota_signing_key_file is not None:
        return load_signing_key_file(settings.ota_signing_key_file)
    if settings.ota_signing_key is not None:
        return parse_signing_key(settings.ota_signing_key.get_secret_value())
    raise SigningKeyError(
        "no OTA signing key: set TINYFLEET_OTA_SIGNING_KEY_FILE (make one with `tinyfleet keys generate --out FILE`) "
        "or TINYFLEET_OTA_SIGNING_KEY"
    )


def parse_public_key(text: str, where: str = "public key") -> Ed25519PublicKey:
    """A public key as PEM (SubjectPublicKeyInfo) or the raw 32 bytes as hex or base64."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = load_pem_public_key(text.encode())
        except ValueError as exc:
            raise SigningKeyError(f"{where}: not a PEM public key ({exc})") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise SigningKeyError(f"{where}: the key is {type(key).__name__}, not Ed25519")
        return key
    return Ed25519PublicKey.from_public_bytes(_raw32(text, where, "public key"))


def public_key_c_array(key: Ed25519PublicKey, name: str = "tinyfleet_ota_public_key") -> str:
    """C source for the device SDK: the raw key and its kid as ``static const uint8_t`` arrays."""
    raw = raw_public_key(key)
    kid = key_id(raw)

    def body(b: bytes) -> str:
        rows = [", ".join(f"0x{x:02x}" for x in b[i : i + 8]) for i in range(0, len(b), 8)]
        return ",\n".join(f"    {r}" for r in rows)

    return (
        f"/* tinyfleet OTA manifest signing key (Ed25519), kid {kid.hex()} */\n"
        f"static const uint8_t {name}[32] = {{\n{body(raw)}\n}};\n"
        f"static const uint8_t {name}_kid[{len(kid)}] = {{\n{body(kid)}\n}};\n"
    )


def export_public_key(key: Ed25519PublicKey, fmt: PublicKeyFormat = PublicKeyFormat.HEX) -> str:
    raw = raw_public_key(key)
    if fmt is PublicKeyFormat.HEX:
        return raw.hex()
    if fmt is PublicKeyFormat.BASE64:
        return base64.b64encode(raw).decode()
    if fmt is PublicKeyFormat.PEM:
        return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode().rstrip("\n")
    return public_key_c_array(key).rstrip("\n")
