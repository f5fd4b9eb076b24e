"""The audit trail: one row per mutation (API call that is not a GET, or a CLI provisioning command)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from tinyfleet.store.models import AuditEntry

_audit = AuditEntry.__table__


async def record(
    conn: AsyncSession | AsyncConnection,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    status: int | None = None,
    summary: dict[str, Any] | None = None,
) -> None:
    await conn.execute(
        sa.insert(AuditEntry).values(actor=actor, action=action, target=target, status=status, summary=summary)
    )


async def list_entries(
    session: AsyncSession,
    *,
    actor: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditEntry]:
    query = sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list((await session.scalars(query)).all())
