"""API keys: random tokens shown once, kept as SHA-256 digests, with scopes.

A token looks like ``tfk_3f9a1c2b_<43 characters>``: the ``tfk_3f9a1c2b`` prefix is public (stored, listed,
shown in the audit), the rest is 256 random bits. A plain SHA-256 suffices at rest because the token is random,
not a password (no dictionary to guard against), and it lets a request be matched with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.fleet.errors import ApiKeyNotFound, FleetError
from tinyfleet.store.models import API_KEY_SCOPES, ApiKey

TOKEN_MARK = "tfk_"  # noqa: S105 - the public start of every token
#: What each scope grants besides itself: admin everything; write and device-provisioning also read.
IMPLIED_SCOPES: dict[str, frozenset[str]] = {
    "admin": frozenset(API_KEY_SCOPES),
    "write": frozenset({"write", "read"}),
    "device-provisioning": frozenset({"device-provisioning", "read"}),
    "read": frozenset({"read"}),
}
#: Re-written at most this often per key (a write on every request would cost more than the request).
LAST_USED_RESOLUTION_S = 60


class InvalidScopes(FleetError):
    pass


@dataclass(frozen=True, slots=True)
class NewApiKey:
    key: ApiKey
    token: str


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def effective_scopes(scopes: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for s in scopes:
        out |= IMPLIED_SCOPES.get(s, frozenset())
    return frozenset(out)


def check_scopes(scopes: Iterable[str]) -> list[str]:
    given = list(dict.fromkeys(scopes))
    if not given:
        raise InvalidScopes(f"give at least one scope of {', '.join(API_KEY_SCOPES)}")
    bad = [s for s in given if s not in API_KEY_SCOPES]
    if bad:
        raise InvalidScopes(f"unknown scope(s) {', '.join(bad)}; valid: {', '.join(API_KEY_SCOPES)}")
    return given


def matches_configured_key(token: str, configured: str) -> bool:
    """The admin key from the environment, compared by digest (constant time, no length leak)."""
    return hmac.compare_digest(token_digest(token), token_digest(configured))


async def create_key(session: AsyncSession, name: str, scopes: Iterable[str], created_by: str | None) -> NewApiKey:
    scope_list = check_scopes(scopes)
    public = f"{TOKEN_MARK}{secrets.token_hex(4)}"
    token = f"{public}_{secrets.token_urlsafe(32)}"
    key = ApiKey(prefix=public, token_sha256=token_digest(token), name=name, scopes=scope_list, created_by=created_by)
    session.add(key)
    await session.flush()
    await session.refresh(key)
    return NewApiKey(key, token)


async def list_keys(session: AsyncSession, *, include_revoked: bool = True) -> list[ApiKey]:
    query = sa.select(ApiKey).order_by(ApiKey.id)
    if not include_revoked:
        query = query.where(ApiKey.revoked_at.is_(None))
    return list((await session.scalars(query)).all())


async def find_key(session: AsyncSession, ref: str) -> ApiKey:
    """A key by id (``12``) or public prefix (``tfk_3f9a1c2b``)."""
    query = sa.select(ApiKey)
    by_id = ref.isdigit() and len(ref) < 19
    query = query.where(ApiKey.id == int(ref)) if by_id else query.where(ApiKey.prefix == ref)
    key = (await session.scalars(query)).first()
    if key is None:
        raise ApiKeyNotFound(f"API key {ref!r} not found")
    return key


async def revoke_key(session: AsyncSession, ref: str) -> ApiKey:
    key = await find_key(session, ref)
    if key.revoked_at is None:
        key.revoked_at = sa.func.now()
        await session.flush()
        await session.refresh(key)
    return key


async def key_by_id(session: AsyncSession, key_id: int) -> ApiKey | None:
    """The active (not revoked) key with this id, or None (a UI session that logged in with the key)."""
    return (await session.scalars(sa.select(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None)))).first()


async def authenticate(session: AsyncSession, token: str) -> ApiKey | None:
    """The active key of `token` (its last use noted, at most once a minute), or None."""
    if not token.startswith(TOKEN_MARK) or len(token) > 256:
        return None
    key = (
        await session.scalars(
            sa.select(ApiKey).where(ApiKey.token_sha256 == token_digest(token), ApiKey.revoked_at.is_(None))
        )
    ).first()
    if key is None:
        return None
    await session.execute(
        sa.update(ApiKey)
        .where(
            ApiKey.id == key.id,
            sa.or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < sa.func.now() - sa.text(f"interval '{LAST_USED_RESOLUTION_S} seconds'"),
            ),
        )
        .values(last_used_at=sa.func.now())
    )
    return key
