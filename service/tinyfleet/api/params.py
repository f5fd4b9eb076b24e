"""Query-parameter parsing shared by the routers: strict bucket widths, time ranges, filters."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Query
from pydantic import BeforeValidator

from tinyfleet.api.errors import InvalidParameterError
from tinyfleet.wire import DEVICE_ID_PATTERN, validate_device_id
from tinyfleet.wire.errors import WireError

#: Largest page a listing returns.
MAX_PAGE = 1000
DEFAULT_PAGE = 100
#: `since` defaults to this long before `until` for statistics.
DEFAULT_STATS_RANGE = timedelta(hours=24)

_BUCKET_RE = re.compile(r"([1-9][0-9]{0,5})([smhd])")
BUCKET_PATTERN = f"^{_BUCKET_RE.pattern}$"
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

#: ISO-8601 date-time (a date alone is midnight UTC); pydantic alone would also take Unix timestamps.
_ISO_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)?)?")

#: The device-id rule as an OpenAPI pattern (documented only: the route checks it itself, with a clear message).
DEVICE_ID_SCHEMA = {"pattern": f"^{DEVICE_ID_PATTERN}$"}

#: Plain text filters (model ids, error codes): printable, no NUL, bounded.
TEXT_FILTER_PATTERN = r"^[^\x00-\x1f\x7f]{1,64}$"


def parse_bucket(value: str) -> timedelta:
    """`30s`, `1m`, `5m`, `1h`, `1d`, … → timedelta. Anything else (spaces, `1.5m`, `0m`, `m`) is refused."""
    match = _BUCKET_RE.fullmatch(value)
    if match is None:
        raise InvalidParameterError(
            f"bucket must be a positive whole number followed by s, m, h or d (like 1m, 5m, 1h, 1d), got {value!r}",
            code="invalid_bucket",
        )
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def _iso8601(value: object) -> object:
    if isinstance(value, str) and _ISO_DATETIME.fullmatch(value) is None:
        raise ValueError("expected an ISO-8601 date-time like 2026-11-25T12:00:00Z")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso8601)]


def as_utc(value: datetime | None) -> datetime | None:
    """ISO-8601 timestamps without an offset are taken as UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def check_range(since: datetime | None, until: datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise InvalidParameterError("since must be before until", code="invalid_range")


def check_device_id(device_id: str | None) -> str | None:
    if device_id is None:
        return None
    try:
        validate_device_id(device_id)
    except WireError as exc:
        raise InvalidParameterError(f"invalid device id: {exc.detail}", code="bad_device_id") from None
    return device_id


Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Items per page (1–{MAX_PAGE})")]
Cursor = Annotated[
    str | None,
    Query(max_length=512, description="`next_cursor` of the previous page (opaque)"),
]
Since = Annotated[
    IsoDatetime | None,
    Query(description="Inclusive lower bound, ISO-8601 (UTC when no offset)", examples=["2026-11-25T11:00:00Z"]),
]
Until = Annotated[
    IsoDatetime | None,
    Query(description="Exclusive upper bound, ISO-8601 (UTC when no offset)", examples=["2026-11-25T12:00:00Z"]),
]
ModelFilter = Annotated[str | None, Query(pattern=TEXT_FILTER_PATTERN, description="Model id", examples=["vib-cls"])]
DeviceFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=256,
        description="Device id",
        examples=["press-07"],
        json_schema_extra=DEVICE_ID_SCHEMA,
    ),
]
