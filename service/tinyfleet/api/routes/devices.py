"""Devices: list and read (with their events), provision (one or a CSV), tags, enable/disable, decommission,
credential rotation. Reads need the `read` scope; provisioning and credential changes `device-provisioning`;
tag edits `write` (docs/devices.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from tinyfleet.api.audit import note
from tinyfleet.api.auth import ProvisioningScope, ReadScope, WriteScope
from tinyfleet.api.deps import DeviceIdDep, SessionDep, WriteSessionDep
from tinyfleet.api.errors import ApiError, NotFoundError
from tinyfleet.api.fleet_schemas import (
    BulkProvisionedPublic,
    CredentialPublic,
    CredentialsListPublic,
    CredentialsPublic,
    DeviceChangedPublic,
    DeviceCreate,
    DeviceProvisionedPublic,
    DeviceTagsUpdate,
    ProvisionedItem,
)
from tinyfleet.api.fleet_support import sync_broker
from tinyfleet.api.params import DEFAULT_PAGE, Cursor, Limit, ModelFilter, Since, Until, as_utc, check_range
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import DevicePublic, DevicesPublic, ErrorResponse, EventPublic, EventsPublic
from tinyfleet.fleet import devices as fleet_devices
from tinyfleet.fleet.cohorts import device_condition
from tinyfleet.fleet.errors import InvalidDeviceInput
from tinyfleet.fleet.selectors import MAX_QUERY_LENGTH, parse_selector
from tinyfleet.store import queries
from tinyfleet.store.models import Device

router = APIRouter(prefix=f"{API_PREFIX}/devices", tags=["devices"])

#: A provisioning CSV is at most this large (10,000 rows of id + a few tags fit easily).
MAX_CSV_BYTES = 2 * 1024 * 1024

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "Unknown device"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "The device's state forbids it (e.g. decommissioned)"}
}
_CSV_EXAMPLE = "device_id,site,line,machine\npress-01,plant-a,1,press\npress-02,plant-a,2,press\n"


class PayloadTooLargeError(ApiError):
    status_code = 413
    code = "payload_too_large"


@router.get("", summary="List devices")
async def list_devices(
    session: SessionDep,
    _principal: ReadScope,
    online: Annotated[bool | None, Query(description="Only online (true) or offline (false) devices")] = None,
    selector: Annotated[
        str | None,
        Query(
            max_length=MAX_QUERY_LENGTH,
            description="Only devices whose tags match this selector (see cohorts), e.g. `site=plant-a`",
            examples=["site=plant-a AND line in (1,2)"],
        ),
    ] = None,
    include_decommissioned: Annotated[bool, Query(description="With a selector: decommissioned ones too")] = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> DevicesPublic:
    where = None
    if selector is not None:
        where = device_condition(parse_selector(selector), include_decommissioned=include_decommissioned)
    page = await queries.list_devices(session, online=online, limit=limit, cursor=cursor, where=where)
    return DevicesPublic(items=[DevicePublic.model_validate(d) for d in page.items], next_cursor=page.next_cursor)


@router.post(
    "",
    status_code=201,
    summary="Provision one device: registers it and returns its MQTT password (shown once)",
    responses={
        **_CONFLICT,
        422: {"model": ErrorResponse, "description": "Invalid device id or tags"},
    },
)
async def provision_device(
    request: Request, session: WriteSessionDep, _principal: ProvisioningScope, body: DeviceCreate
) -> DeviceProvisionedPublic:
    done = await fleet_devices.provision(session, body.id, body.tags)
    device = DevicePublic.model_validate(done.device)
    await session.commit()
    synced = await sync_broker(request)
    note(request, device_id=body.id, tags=sorted(body.tags), broker_synced=synced)
    return DeviceProvisionedPublic(
        device=device,
        credentials=CredentialsPublic(username=done.username, password=done.password),
        broker_synced=synced,
    )


@router.post(
    "/bulk",
    status_code=201,
    summary="Provision many devices from a CSV (all or none); returns every password once",
    description="The body is a CSV with a header: a `device_id` column, every other column a tag "
    "(empty cells set no tag). Any bad or conflicting row refuses the whole file with row-level `details`.",
    responses={
        409: {"model": ErrorResponse, "description": "Rows conflict with existing devices (listed in `details`)"},
        413: {"model": ErrorResponse, "description": f"CSV larger than {MAX_CSV_BYTES} bytes"},
        422: {"model": ErrorResponse, "description": "Invalid CSV or rows (listed in `details`)"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
        }
    },
)
async def provision_devices_csv(
    request: Request, session: WriteSessionDep, _principal: ProvisioningScope
) -> BulkProvisionedPublic:
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_CSV_BYTES:
            raise PayloadTooLargeError(f"the CSV is larger than {MAX_CSV_BYTES} bytes; split it")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDeviceInput(f"the CSV is not UTF-8: {exc}") from exc
    rows = fleet_devices.parse_csv(text)
    done = await fleet_devices.provision_many(session, rows)
    items = [ProvisionedItem(id=p.device.id, username=p.username, password=p.password, tags=p.device.tags)
             for p in done]  # fmt: skip
    await session.commit()
    synced = await sync_broker(request)
    note(request, count=len(items), device_ids=[i.id for i in items][:100], broker_synced=synced)
    return BulkProvisionedPublic(count=len(items), items=items, broker_synced=synced)


# `{device_id:path}` so that an id containing `/` (sent as %2F) reaches validation and gets a clear 422
# instead of a bare 404; the sub-resource routes are declared first so `…/{id}/events` is not taken for an id.
@router.get("/{device_id:path}/events", summary="A device's events, newest first", responses=_NOT_FOUND)
async def list_device_events(
    session: SessionDep,
    _principal: ReadScope,
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
    "/{device_id:path}/credentials",
    summary="A device's MQTT credentials (metadata only: never passwords or hashes)",
    responses=_NOT_FOUND,
)
async def list_device_credentials(
    session: SessionDep, _principal: ReadScope, device_id: DeviceIdDep
) -> CredentialsListPublic:
    creds = await fleet_devices.list_credentials(session, device_id)
    return CredentialsListPublic(
        items=[
            CredentialPublic(id=c.id, state=fleet_devices.credential_state(c), created_at=c.created_at,
                             rotated_at=c.rotated_at, revoked_at=c.revoked_at)
            for c in creds
        ]
    )  # fmt: skip


@router.post(
    "/{device_id:path}/credentials/rotate",
    summary="New MQTT password for a device (shown once); the old one stops working at once",
    responses={**_NOT_FOUND, **_CONFLICT},
)
async def rotate_device_credentials(
    request: Request, session: WriteSessionDep, _principal: ProvisioningScope, device_id: DeviceIdDep
) -> DeviceProvisionedPublic:
    done = await fleet_devices.rotate_credentials(session, device_id)
    device = DevicePublic.model_validate(done.device)
    await session.commit()
    synced = await sync_broker(request)
    note(request, broker_synced=synced)
    return DeviceProvisionedPublic(
        device=device,
        credentials=CredentialsPublic(username=done.username, password=done.password),
        broker_synced=synced,
    )


async def _changed(request: Request, session: WriteSessionDep, device: Device, *, sync: bool) -> DeviceChangedPublic:
    public = DevicePublic.model_validate(device).model_dump()
    await session.commit()
    synced = await sync_broker(request) if sync else None
    if sync:
        note(request, broker_synced=synced)
    return DeviceChangedPublic.model_validate({**public, "broker_synced": synced})


@router.post("/{device_id:path}/enable", summary="Let the device connect again", responses={**_NOT_FOUND, **_CONFLICT})
async def enable_device(
    request: Request, session: WriteSessionDep, _principal: ProvisioningScope, device_id: DeviceIdDep
) -> DeviceChangedPublic:
    device = await fleet_devices.set_enabled(session, device_id, True)
    return await _changed(request, session, device, sync=True)


@router.post(
    "/{device_id:path}/disable",
    summary="Refuse the device's connections (its credentials are kept; enable brings it back)",
    responses=_NOT_FOUND,
)
async def disable_device(
    request: Request, session: WriteSessionDep, _principal: ProvisioningScope, device_id: DeviceIdDep
) -> DeviceChangedPublic:
    device = await fleet_devices.set_enabled(session, device_id, False)
    return await _changed(request, session, device, sync=True)


@router.post(
    "/{device_id:path}/decommission",
    summary="Retire a device for good: credentials revoked, history kept",
    responses=_NOT_FOUND,
)
async def decommission_device(
    request: Request, session: WriteSessionDep, _principal: ProvisioningScope, device_id: DeviceIdDep
) -> DeviceChangedPublic:
    device = await fleet_devices.decommission(session, device_id)
    return await _changed(request, session, device, sync=True)


@router.patch(
    "/{device_id:path}/tags",
    summary="Change a device's tags (merge; a null value removes a tag; `replace` sets them all)",
    responses={**_NOT_FOUND, 422: {"model": ErrorResponse, "description": "Invalid tag name or value"}},
)
async def update_device_tags(
    request: Request, session: WriteSessionDep, _principal: WriteScope, device_id: DeviceIdDep, body: DeviceTagsUpdate
) -> DeviceChangedPublic:
    device = await fleet_devices.update_tags(session, device_id, dict(body.tags), replace=body.replace)
    note(request, tags=sorted(body.tags), replace=body.replace)
    return await _changed(request, session, device, sync=False)


#: Sub-resources that only other methods serve: a GET of them must be 405, not "device 'x/enable' not found".
_OTHER_METHOD_SUFFIXES = ("/enable", "/disable", "/decommission", "/credentials/rotate", "/tags", "/commands")


def _not_another_methods_resource(request: Request) -> None:
    if str(request.path_params.get("device_id", "")).endswith(_OTHER_METHOD_SUFFIXES):
        raise StarletteHTTPException(status_code=405, detail="Method Not Allowed")


@router.get(
    "/{device_id:path}",
    summary="One device",
    responses=_NOT_FOUND,
    dependencies=[Depends(_not_another_methods_resource)],
)
async def get_device(session: SessionDep, _principal: ReadScope, device_id: DeviceIdDep) -> DevicePublic:
    device = await queries.get_device(session, device_id)
    if device is None:
        raise NotFoundError(f"device {device_id!r} not found")
    return DevicePublic.model_validate(device)
