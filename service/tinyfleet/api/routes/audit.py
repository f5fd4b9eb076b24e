"""The audit trail of mutations, newest first. Admin scope only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tinyfleet.api.auth import AdminScope
from tinyfleet.api.deps import SessionDep
from tinyfleet.api.fleet_schemas import AuditEntryPublic, AuditPublic
from tinyfleet.api.params import DEFAULT_PAGE, TEXT_FILTER_PATTERN, Limit, Since, as_utc
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.fleet import audit

router = APIRouter(prefix=f"{API_PREFIX}/audit", tags=["audit"])


@router.get("", summary="Audit entries, newest first")
async def list_audit(
    session: SessionDep,
    _principal: AdminScope,
    actor: Annotated[str | None, Query(pattern=TEXT_FILTER_PATTERN, examples=["key:4"])] = None,
    target: Annotated[str | None, Query(pattern=TEXT_FILTER_PATTERN, examples=["press-07"])] = None,
    since: Since = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Annotated[
        str | None, Query(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of the previous page")
    ] = None,
) -> AuditPublic:
    entries = await audit.list_entries(
        session, actor=actor, target=target, since=as_utc(since), limit=limit + 1,
        before_id=int(cursor) if cursor is not None else None,
    )  # fmt: skip
    items = [AuditEntryPublic.model_validate(e) for e in entries[:limit]]
    next_cursor = str(items[-1].id) if len(entries) > limit else None
    return AuditPublic(items=items, next_cursor=next_cursor)
