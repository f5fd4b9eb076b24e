"""A device's telemetry, and downlink commands to it (`tf/v1/{device}/cmd`, docs/protocol.md).

Declared before the devices router, whose `/{device_id:path}` would otherwise take these paths for an id.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from tinyfleet.api.audit import note
from tinyfleet.api.auth import ReadScope, WriteScope
from tinyfleet.api.deps import DeviceIdDep, SessionDep
from tinyfleet.api.errors import NotFoundError
from tinyfleet.api.params import Since, Until, as_utc, check_range
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.fleet.commands import DeviceCommander
from tinyfleet.store import queries
from tinyfleet.store.models import Telemetry

router = APIRouter(prefix=f"{API_PREFIX}/devices", tags=["devices"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "Unknown device"}}


class TelemetryPublic(BaseModel):
    time: datetime
    received_at: datetime
    device_time: bool
    uptime_s: int | None = None
    battery_pct: float | None = None
    battery_mv: int | None = None
    rssi_dbm: int | None = None
    heap_free: int | None = None
    arena_free: int | None = None
    infer_count: int | None = None
    lat_avg_us: int | None = None
    lat_max_us: int | None = None
    dropped: int | None = None
    extras: dict[str, Any] | None = None

    model_config = ConfigDict(from_attributes=True)


class TelemetryListPublic(BaseModel):
    device_id: str
    items: list[TelemetryPublic] = Field(description="Newest first")


class CommandCreate(BaseModel):
    name: str = Field(description="Command name: 1-32 of a-z 0-9 _ . - (e.g. `reboot`, `identify`, `sample`)",
                      examples=["identify"])  # fmt: skip
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments, as the device understands them")

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "identify", "args": {"s": 5}}]})


class CommandSentPublic(BaseModel):
    id: str = Field(description="Command id: the device's ack on `…/cmd/ack` names it")
    device_id: str
    topic: str
    name: str
    args: dict[str, Any]
    ts: int = Field(description="When it was sent, ms since the epoch")


@router.get("/{device_id}/telemetry", summary="A device's health telemetry, newest first", responses=_NOT_FOUND)
async def device_telemetry(
    session: SessionDep,
    _principal: ReadScope,
    device_id: DeviceIdDep,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many samples")] = 100,
) -> TelemetryListPublic:
    since, until = as_utc(since), as_utc(until)
    check_range(since, until)
    if await queries.get_device(session, device_id) is None:
        raise NotFoundError(f"device {device_id!r} not found")
    query = sa.select(Telemetry).where(Telemetry.device_id == device_id)
    if since is not None:
        query = query.where(Telemetry.time >= since)
    if until is not None:
        query = query.where(Telemetry.time < until)
    rows = (await session.scalars(query.order_by(Telemetry.time.desc()).limit(limit))).all()
    return TelemetryListPublic(device_id=device_id, items=[TelemetryPublic.model_validate(r) for r in rows])


def _commander(request: Request) -> DeviceCommander:
    commander: DeviceCommander | None = getattr(request.app.state, "commander", None)
    if commander is None:
        commander = DeviceCommander(request.app.state.settings)
        request.app.state.commander = commander
    return commander


@router.post(
    "/{device_id}/commands",
    status_code=202,
    summary="Send a command to a device (JSON on tf/v1/{device}/cmd, QoS 1)",
    responses={**_NOT_FOUND, 502: {"model": ErrorResponse, "description": "The broker did not take it"}},
)
async def send_command(
    request: Request, session: SessionDep, principal: WriteScope, device_id: DeviceIdDep, body: CommandCreate
) -> CommandSentPublic:
    if await queries.get_device(session, device_id) is None:
        raise NotFoundError(f"device {device_id!r} not found")
    sent = await _commander(request).send(device_id, body.name, body.args, by=principal.actor)
    note(request, command=sent.name, command_id=sent.id)
    return CommandSentPublic(id=sent.id, device_id=device_id, topic=sent.topic, name=sent.name, args=sent.args,
                             ts=sent.ts)  # fmt: skip
