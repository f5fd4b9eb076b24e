"""Devices and their events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from tinyfleet.api.deps import DeviceIdDep, SessionDep
from tinyfleet.api.errors import NotFoundError
from tinyfleet.api.params import DEFAULT_PAGE, Cursor, Limit, ModelFilter, Since, Until, as_utc, check_range
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import DevicePublic, DevicesPublic, ErrorResponse, EventPublic, EventsPublic
from tinyfleet.store import queries

router = APIRouter(prefix=f"{API_PREFIX}/devices", tags=["devices"])


@router.get("", summary="List devices")
async def list_devices(
    session: SessionDep,
    online: Annotated[bool | None, Query(description="Only online (true) or offline (false) devices")] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> DevicesPublic:
    page = await queries.list_devices(session, online=online, limit=limit, cursor=cursor)
    return DevicesPublic(items=[DevicePublic.model_validate(d) for d in page.items], next_cursor=page.next_cursor)


# `{device_id:path}` so that an id containing `/` (sent as %2F) reaches validation and gets a clear 422
# instead of a bare 404; the events route is declared first so `…/{id}/events` is not taken for an id.
@router.get(
    "/{device_id:path}/events",
    summary="A device's events, newest first",
    responses={404: {"model": ErrorResponse, "description": "Unknown device"}},
)
async def list_device_events(
    session: SessionDep,
    device_id: DeviceIdDep,
    since: Since = None,
    until: Until = None,
    model: ModelFilter = None,
    label: Annotated[int | None, Query(ge=0, le=2**31 - 1, description="Class index")] = None,
    kind: Annotated[
        int | None,
        Query(ge=0, le=255, description="0 classification · 1 anomaly · 2 regression · 3 detection"),
    ] = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> EventsPublic:
    since, until = as_utc(since), as_utc(until)
    check_range(since, until)
    if await queries.get_device(session, device_id) is None:
        raise NotFoundError(f"device {device_id!r} not found")
    page = await queries.list_events(
        session, device_id, since=since, until=until, model=model, label=label, kind=kind,
        limit=limit, cursor=cursor,
    )  # fmt: skip
    return EventsPublic(items=[EventPublic.model_validate(e) for e in page.items], next_cursor=page.next_cursor)


@router.get(
    "/{device_id:path}",
    summary="One device",
    responses={404: {"model": ErrorResponse, "description": "Unknown device"}},
)
async def get_device(session: SessionDep, device_id: DeviceIdDep) -> DevicePublic:
    device = await queries.get_device(session, device_id)
    if device is None:
        raise NotFoundError(f"device {device_id!r} not found")
    return DevicePublic.model_validate(device)
