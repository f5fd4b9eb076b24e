"""Payloads the wire contract refused, with the raw bytes (hex) and the reason."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tinyfleet.api.auth import ReadScope
from tinyfleet.api.deps import SessionDep
from tinyfleet.api.params import (
    DEFAULT_PAGE,
    TEXT_FILTER_PATTERN,
    Cursor,
    DeviceFilter,
    Limit,
    Since,
    as_utc,
    check_device_id,
)
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import DeadLetterPublic, DeadLettersPublic
from tinyfleet.store import queries

router = APIRouter(prefix=f"{API_PREFIX}/dead-letters", tags=["dead-letters"])


@router.get("", summary="Dead letters, newest first")
async def list_dead_letters(
    session: SessionDep,
    _principal: ReadScope,
    code: Annotated[
        str | None,
        Query(
            pattern=TEXT_FILTER_PATTERN,
            description="Error code (docs/protocol.md)",
            examples=["malformed_cbor"],
        ),
    ] = None,
    device_id: DeviceFilter = None,
    since: Since = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> DeadLettersPublic:
    check_device_id(device_id)
    page = await queries.list_dead_letters(
        session, code=code, device_id=device_id, since=as_utc(since), limit=limit, cursor=cursor
    )
    return DeadLettersPublic(items=[DeadLetterPublic.from_row(d) for d in page.items], next_cursor=page.next_cursor)
