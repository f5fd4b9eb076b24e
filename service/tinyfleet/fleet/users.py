"""Users of the web UI: scrypt password hashes (``cryptography``), roles mapped onto API-key scopes.

    user = await create_user(session, "alice", "correct horse battery", "operator", created_by="cli:root")
    user = await authenticate(session, "alice", password)        # None for a wrong password or a disabled user
    scopes = ROLE_SCOPES[user.role]                              # the same scopes an API key carries

Roles: ``read-only`` reads (scope ``read``), ``operator`` also acts on alerts, rules, devices and rollouts
(``write``), ``admin`` has every scope (API keys, audit, provisioning).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hmac
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.fleet.api_keys import effective_scopes
from tinyfleet.fleet.errors import InvalidUserInput, UserConflict, UserNotFound
from tinyfleet.store.models import USER_ROLES, User

ROLE_SCOPES: dict[str, frozenset[str]] = {
    "read-only": effective_scopes(["read"]),
    "operator": effective_scopes(["write"]),
    "admin": effective_scopes(["admin"]),
}
#: scrypt cost: n = 2**15, r = 8, p = 1 (32 MiB, ~0.1 s on this kind of machine; RFC 7914 interactive logins).
SCRYPT_LOG2_N = 15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
HASH_BYTES = 32
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ScryptParams:
    log2_n: int = SCRYPT_LOG2_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P


def _kdf(salt: bytes, params: ScryptParams, length: int = HASH_BYTES) -> Scrypt:
    return Scrypt(salt=salt, length=length, n=1 << params.log2_n, r=params.r, p=params.p)


def hash_password(password: str, *, params: ScryptParams | None = None) -> str:
    """``scrypt$15$8$1$<salt>$<hash>`` (standard base64)."""
    params = params or ScryptParams()
    salt = secrets.token_bytes(SALT_BYTES)
    digest = _kdf(salt, params).derive(password.encode())
    return (
        f"scrypt${params.log2_n}${params.r}${params.p}$"
        f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    )


def verify_password(password: str, encoded: str) -> bool:
    """True when `password` matches an encoded hash; False for a wrong one or a malformed hash."""
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        return False
    try:
        params = ScryptParams(int(parts[1]), int(parts[2]), int(parts[3]))
        salt = base64.b64decode(parts[4], validate=True)
        expected = base64.b64decode(parts[5], validate=True)
    except ValueError:
        return False
    if not (1 <= params.log2_n <= 20 and expected):
        return False
    try:
        _kdf(salt, params, len(expected)).verify(password.encode(), expected)
    except InvalidKey:
        return False
    return True


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the user does not exist, so a wrong name costs as long as a wrong password."""
    return hash_password(secrets.token_urlsafe(16))


def check_username(username: str) -> str:
    if not USERNAME_PATTERN.fullmatch(username):
        raise InvalidUserInput(
            "a username is 1-64 of A-Z a-z 0-9 . _ @ - and starts with a letter or digit", details=username
        )
    return username


def check_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidUserInput(f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")
    return password


def check_role(role: str) -> str:
    if role not in USER_ROLES:
        raise InvalidUserInput(f"unknown role {role!r}; valid: {', '.join(USER_ROLES)}")
    return role


async def create_user(
    session: AsyncSession, username: str, password: str, role: str, *, created_by: str | None
) -> User:
    check_username(username)
    check_password(password)
    check_role(role)
    if (await session.scalars(sa.select(User.id).where(User.username == username))).first() is not None:
        raise UserConflict(f"user {username!r} exists already")
    user = User(username=username, password_hash=hash_password(password), role=role, created_by=created_by)
    session.add(user)
    await session.flush()
    await session.refresh(user)
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.scalars(sa.select(User).order_by(User.id))).all())


async def find_user(session: AsyncSession, username: str) -> User:
    user = (await session.scalars(sa.select(User).where(User.username == username))).first()
    if user is None:
        raise UserNotFound(f"user {username!r} not found")
    return user


async def set_password(session: AsyncSession, username: str, password: str) -> User:
    user = await find_user(session, username)
    user.password_hash = hash_password(check_password(password))
    await session.flush()
    return user


async def set_disabled(session: AsyncSession, username: str, disabled: bool) -> User:
    user = await find_user(session, username)
    user.disabled_at = sa.func.now() if disabled else None
    await session.flush()
    await session.refresh(user)
    return user


async def active_user(session: AsyncSession, user_id: int) -> User | None:
    """The user of a session cookie, unless disabled or deleted since."""
    return (
        await session.scalars(sa.select(User).where(User.id == user_id, User.disabled_at.is_(None)))
    ).first()


async def authenticate(session: AsyncSession, username: str, password: str) -> User | None:
    """The active user with this name and password (last login noted), or None. Takes ~0.1 s either way:
    run it off the event loop's thread for the hash (the caller's session stays on the loop)."""
    user = (await session.scalars(sa.select(User).where(User.username == username))).first()

    if user is None:
        await asyncio.to_thread(verify_password, password, _dummy_hash())
        return None
    ok = await asyncio.to_thread(verify_password, password, user.password_hash)
    if not ok or user.disabled_at is not None:
        return None
    user.last_login_at = sa.func.now()
    await session.flush()
    return user


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
