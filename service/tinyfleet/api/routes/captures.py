"""Captures: raw sensor windows uploaded by devices (the ``capture`` command) for retraining.

``POST /api/v1/devices/{id}/captures`` takes the CSV of :mod:`tinyfleet_device.capture` (docs/protocol.md,
"Captures") as the raw body, authenticated with the device's own MQTT credentials as HTTP Basic (a device
may upload only for itself) or a write-scoped API key. The file is stored as sent; its header is parsed and
checked first (a malformed capture gets 422 and is not stored). ``GET`` lists them (per device or across the
fleet, newest first, filtered by label) and downloads one as ``text/csv``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from tinyfleet.api.auth import DeviceOrWriteScope, ForbiddenError, ReadScope, device_of
from tinyfleet.api.deps import DeviceIdDep, SessionDep, WriteSessionDep
from tinyfleet.api.errors import ApiError, NotFoundError
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.store.models import Capture, Device
from tinyfleet_device.capture import MAX_CAPTURE_BYTES, CaptureError, parse_capture

router = APIRouter(prefix=API_PREFIX, tags=["captures"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "Unknown device or capture"}
}
_EXAMPLE = (
    "# tinyfleet-capture: 1\n# sample_rate_hz: 3200\n# label: bearing_fault\nx,y,z\n"
    "0.0123,1.0012,-0.0034\n0.0150,0.9987,-0.0021\n"
)


class PayloadTooLargeError(ApiError):
    status_code = 413
    code = "payload_too_large"


class InvalidCaptureError(ApiError):
    status_code = 422
    code = "invalid_capture"


class CapturePublic(BaseModel):
    id: int = Field(examples=[12])
    device_id: str = Field(examples=["press-007"])
    created_at: datetime
    label: str | None = Field(None, examples=["bearing_fault"])
    sample_rate_hz: float = Field(examples=[3200.0])
    samples: int = Field(examples=[1024], description="Rows (samples per channel)")
    channels: list[str] = Field(examples=[["x", "y", "z"]])
    boot: int | None = None
    seq: int | None = Field(None, description="The device's event sequence number when it captured")
    model: str | None = None
    mver: int | None = None
    features: str | None = None
    size: int = Field(description="Bytes of the CSV")
    sha256: str
    meta: dict[str, str] = Field(description="Every header entry of the file")
    download_url: str


class CapturesPublic(BaseModel):
    items: list[CapturePublic]
    next_before: int | None = Field(None, description="Pass as `before` for the next (older) page")


def _public(row: Capture) -> CapturePublic:
    return CapturePublic(
        id=row.id, device_id=row.device_id, created_at=row.created_at, label=row.label,
        sample_rate_hz=row.sample_rate_hz, samples=row.samples, channels=list(row.channels), boot=row.boot,
        seq=row.seq, model=row.model, mver=row.mver, features=row.features, size=row.size, sha256=row.sha256,
        meta=dict(row.meta), download_url=f"{API_PREFIX}/devices/{row.device_id}/captures/{row.id}",
    )  # fmt: skip


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_CAPTURE_BYTES:
        raise PayloadTooLargeError(f"the capture is {declared} bytes, the limit is {MAX_CAPTURE_BYTES}")
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_CAPTURE_BYTES:
            raise PayloadTooLargeError(f"the capture is over {MAX_CAPTURE_BYTES} bytes")
        parts.append(chunk)
    return b"".join(parts)


_COLUMNS = [c for c in Capture.__table__.columns if c.name != "body"]


@router.post(
    "/devices/{device_id}/captures",
    summary="Upload a raw sensor window (CSV) captured by a device",
    status_code=201,
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "The capture file (docs/protocol.md, Captures)",
            "content": {"text/csv": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        }
    },
    responses={
        **_NOT_FOUND,
        403: {"model": ErrorResponse, "description": "A device uploading for another device"},
        413: {"model": ErrorResponse, "description": "Larger than the capture limit (8 MiB)"},
        422: {"model": ErrorResponse, "description": "Not a capture file (the detail names the line)"},
    },
)
async def upload_capture(
    request: Request, session: WriteSessionDep, principal: DeviceOrWriteScope, device_id: DeviceIdDep
) -> CapturePublic:
    uploader = device_of(principal)
    if uploader is not None and uploader != device_id:
        raise ForbiddenError(f"device {uploader!r} may upload captures only for itself")
    body = await _read_body(request)
    try:
        capture = parse_capture(body)
    except CaptureError as exc:
        raise InvalidCaptureError(str(exc)) from None
    if capture.meta.device is not None and capture.meta.device != device_id:
        raise InvalidCaptureError(f"the file says device {capture.meta.device!r}, the URL {device_id!r}")
    if await session.get(Device, device_id) is None:
        raise NotFoundError(f"unknown device {device_id!r}")
    meta = capture.meta
    header = {k: v for k, v in (("label", meta.label), ("device", meta.device), ("model", meta.model),
                                ("features", meta.features), ("captured_at", meta.captured_at)) if v is not None}
    header |= {k: str(v) for k, v in (("boot", meta.boot), ("seq", meta.seq), ("mver", meta.mver)) if v is not None}
    header |= {"sample_rate_hz": repr(meta.sample_rate_hz), **meta.extra}  # fmt: skip
    row = Capture(
        device_id=device_id, label=meta.label, sample_rate_hz=meta.sample_rate_hz, samples=len(capture.samples),
        channels=list(capture.channel_names), boot=meta.boot, seq=meta.seq, model=meta.model, mver=meta.mver,
        features=meta.features, size=len(body), sha256=hashlib.sha256(body).hexdigest(), meta=header, body=body,
    )  # fmt: skip
    session.add(row)
    await session.flush()
    await session.refresh(row, ["created_at"])
    return _public(row)


async def _list(
    session: Any, *, device_id: str | None, label: str | None, before: int | None, limit: int
) -> CapturesPublic:
    query = sa.select(*_COLUMNS).order_by(Capture.id.desc()).limit(limit + 1)
    if device_id is not None:
        query = query.where(Capture.device_id == device_id)
    if label is not None:
        query = query.where(Capture.label == label)
    if before is not None:
        query = query.where(Capture.id < before)
    rows = (await session.execute(query)).all()
    items = [_public(Capture(**row._mapping)) for row in rows[:limit]]
    return CapturesPublic(items=items, next_before=items[-1].id if len(rows) > limit else None)


Label = Annotated[str | None, Query(max_length=64, description="Only captures with this label")]
Before = Annotated[int | None, Query(ge=1, description="Only captures older than this id (paging)")]
PageSize = Annotated[int, Query(ge=1, le=500)]


@router.get("/devices/{device_id}/captures", summary="List a device's captures, newest first", responses=_NOT_FOUND)
async def list_device_captures(
    session: SessionDep, _principal: ReadScope, device_id: DeviceIdDep, label: Label = None, before: Before = None,
    limit: PageSize = 100,
) -> CapturesPublic:  # fmt: skip
    if await session.get(Device, device_id) is None:
        raise NotFoundError(f"unknown device {device_id!r}")
    return await _list(session, device_id=device_id, label=label, before=before, limit=limit)


@router.get("/captures", summary="List the captures of every device, newest first")
async def list_captures(
    session: SessionDep, _principal: ReadScope, label: Label = None, before: Before = None, limit: PageSize = 100
) -> CapturesPublic:
    return await _list(session, device_id=None, label=label, before=before, limit=limit)


@router.get(
    "/devices/{device_id}/captures/{capture_id}",
    summary="Download a capture (the CSV as uploaded)",
    response_class=Response,
    responses={**_NOT_FOUND, 200: {"content": {"text/csv": {"example": _EXAMPLE}}, "description": "The CSV"}},
)
async def download_capture(
    session: SessionDep, _principal: ReadScope, device_id: DeviceIdDep, capture_id: Annotated[int, Path(ge=1)]
) -> Response:
    row = await session.get(Capture, capture_id)
    if row is None or row.device_id != device_id:
        raise NotFoundError(f"no capture {capture_id} of device {device_id!r}")
    return Response(
        content=row.body, media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{device_id}-capture-{row.id}.csv"',
                 "ETag": f'"{row.sha256}"'},
    )  # fmt: skip
