"""Device passwords and their Mosquitto hashes.

Mosquitto 2.0 (``mosquitto_passwd``) stores ``username:$7$<iterations>$<salt b64>$<hash b64>``: PBKDF2-HMAC-
SHA512 over the password with a 12-byte salt, 64-byte output, standard base64. ``hashlib.pbkdf2_hmac`` computes
exactly that, so no binary is needed. The passwords are 128-bit random tokens, so key stretching adds little;
we keep Mosquitto's default of 101 iterations, which costs the broker next to nothing per CONNECT.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

MOSQUITTO_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64


def generate_password() -> str:
    """A high-entropy password (128 bits, URL-safe text)."""
    return secrets.token_urlsafe(16)


def mosquitto_hash(password: str, *, iterations: int = MOSQUITTO_ITERATIONS, salt: bytes | None = None) -> str:
    """The `$7$` hash of `password` as mosquitto_passwd writes it."""
    salt = salt if salt is not None else secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_mosquitto_hash(password: str, encoded: str) -> bool:
    """True when `password` matches a `$7$` hash (used by the HTTP auth endpoint and the tests)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, len(expected))
    return hmac.compare_digest(digest, expected)
