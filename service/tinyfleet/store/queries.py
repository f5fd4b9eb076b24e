"""Read-side queries for the REST API. The same SQL runs on hypertables and on plain tables.

Pages are keyset-paginated with opaque cursors (URL-safe base64 of the last row's key): a cursor stays valid
while rows are inserted, and a page never repeats or skips a row that existed when the first page was read.
A malformed cursor (or one from another listing) raises `InvalidCursor` (a ValueError: HTTP 400).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, NamedTuple, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.store.models import Base

T = TypeVar("T")

MAX_LIMIT = 10_000
MAX_BUCKETS = 10_000
#: Origin of the stats buckets: a Monday at 00:00 UTC, like TimescaleDB's time_bucket, so hours, days and
#: weeks start where one expects (weeks on Monday) and both storage paths give identical buckets.
BUCKET_ORIGIN = datetime(2000, 1, 3, tzinfo=UTC)

devices_t = Base.metadata.tables["devices"]
events_t = Base.metadata.tables["events"]
dead_letters_t = Base.metadata.tables["dead_letters"]


class InvalidCursor(ValueError):
    """The cursor was not produced by this listing (or was tampered with)."""


class Page(NamedTuple, Generic[T]):
    """One page of a listing; `next_cursor` is None on the last page. Unpacks as `(items, next_cursor)`."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    id: str
    first_seen: datetime
    last_seen: datetime | None
    online: bool
    online_changed_at: datetime | None
    last_boot: int | None
    firmware: str | None
    model: str | None
    mver: int | None
    capabilities: dict[str, Any] | None
    state: dict[str, Any] | None
    tags: dict[str, Any]
    enabled: bool
    provisioned_at: datetime | None
    decommissioned_at: datetime | None
    state_at: datetime | None


@dataclass(frozen=True, slots=True)
class EventRecord:
    device_id: str
    time: datetime
    boot: int
    seq: int
    received_at: datetime
    device_time: bool
    model: str
    mver: int | None
    kind: int
    label: int | None
    score: float | None
    anom: float | None
    val: list[float] | None
    top: list[Any] | None
    lat_us: int | None
    extras: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class DeadLetterRecord:
    id: int
    received_at: datetime
    topic: str
    device_id: str | None
    payload: bytes
    code: str
    detail: str
    event_index: int | None


@dataclass(frozen=True, slots=True)
class StatsBucket:
    """Events in [bucket_start, bucket_start + bucket). `labels` counts labelled events per class index;
    `count` counts all events (including those without a label). Empty buckets are not returned."""

    bucket_start: datetime
    count: int
    labels: dict[int, int]
    avg_score: float | None
    max_anom: float | None


def _record(cls: type[T], row: sa.Row[Any]) -> T:
    return cls(**row._mapping)


def _columns(table: sa.Table, cls: type[Any]) -> list[sa.ColumnElement[Any]]:
    return [table.c[f.name] for f in fields(cls)]


# ---------------------------------------------------------------------------------------------- cursors


def _encode_cursor(kind: str, key: list[Any]) -> str:
    raw = json.dumps([kind, *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode_cursor(kind: str, cursor: str, types: tuple[type, ...]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise InvalidCursor("malformed cursor") from exc
    if (
        not isinstance(value, list)
        or len(value) != len(types) + 1
        or value[0] != kind
        or not all(type(v) is t for v, t in zip(value[1:], types, strict=True))
        or not all(-(2**63) <= v < 2**63 for v in value[1:] if isinstance(v, int))
    ):
        raise InvalidCursor(f"not a {kind} cursor")
    return value[1:]


def _micros(t: datetime) -> int:
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_micros(us: int) -> datetime:
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    except OverflowError:
        raise InvalidCursor("cursor time out of range") from None


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")


def _page(rows: list[T], limit: int, key: Any) -> Page[T]:
    """`rows` was fetched with limit + 1: the extra row only says whether there is a next page."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, key(rows[-1]))
    return Page(rows, None)


# ---------------------------------------------------------------------------------------------- devices


async def list_devices(
    session: AsyncSession,
    *,
    online: bool | None = None,
    limit: int = 100,
    cursor: str | None = None,
    where: sa.ColumnElement[bool] | None = None,
) -> Page[DeviceRecord]:
    """Devices ordered by id, optionally only the online (or offline) ones, and those meeting `where`."""
    _check_limit(limit)
    query = sa.select(*_columns(devices_t, DeviceRecord)).order_by(devices_t.c.id).limit(limit + 1)
    if online is not None:
        query = query.where(devices_t.c.online.is_(online))
    if where is not None:
        query = query.where(where)
    if cursor is not None:
        (after,) = _decode_cursor("d", cursor, (str,))
        query = query.where(devices_t.c.id > after)
    rows = [_record(DeviceRecord, row) for row in await session.execute(query)]
    return _page(rows, limit, lambda d: _encode_cursor("d", [d.id]))


async def get_device(session: AsyncSession, device_id: str) -> DeviceRecord | None:
    query = sa.select(*_columns(devices_t, DeviceRecord)).where(devices_t.c.id == device_id)
    row = (await session.execute(query)).first()
    return None if row is None else _record(DeviceRecord, row)


# ---------------------------------------------------------------------------------------------- events


async def list_events(
    session: AsyncSession,
    device_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
    model: str | None = None,
    label: int | None = None,
    kind: int | None = None,
) -> Page[EventRecord]:
    """One device's events, newest first (`since` ≤ time < `until`), keyset-paginated on (time, boot, seq)."""
    _check_limit(limit)
    t = events_t.c
    query = (
        sa.select(*_columns(events_t, EventRecord))
        .where(t.device_id == device_id)
        .order_by(t.time.desc(), t.boot.desc(), t.seq.desc())
        .limit(limit + 1)
    )
    if since is not None:
        query = query.where(t.time >= since)
    if until is not None:
        query = query.where(t.time < until)
    if model is not None:
        query = query.where(t.model == model)
    if label is not None:
        query = query.where(t.label == label)
    if kind is not None:
        query = query.where(t.kind == kind)
    if cursor is not None:
        us, boot, seq = _decode_cursor("e", cursor, (int, int, int))
        last = _from_micros(us)
        # The plain `time <=` bound lets the (device_id, time DESC) index start at the cursor.
        query = query.where(t.time <= last, sa.tuple_(t.time, t.boot, t.seq) < sa.tuple_(last, boot, seq))
    rows = [_record(EventRecord, row) for row in await session.execute(query)]
    return _page(rows, limit, lambda e: _encode_cursor("e", [_micros(e.time), e.boot, e.seq]))


async def event_stats(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    bucket: timedelta,
    device_id: str | None = None,
    model: str | None = None,
) -> list[StatsBucket]:
    """Events per time bucket in [since, until): count, label histogram, mean score, max anomaly score.

    Buckets are `date_bin(bucket, time, 2000-01-03 UTC)` — the same boundaries TimescaleDB's time_bucket
    uses — on both storage paths, so results do not depend on whether TimescaleDB is installed.
    """
    if bucket <= timedelta(0):
        raise ValueError("bucket must be positive")
    if until <= since:
        return []
    if (until - since) / bucket > MAX_BUCKETS:
        raise ValueError(f"more than {MAX_BUCKETS} buckets requested; use a larger bucket")
    t = events_t.c
    bucket_col = sa.func.date_bin(
        sa.cast(sa.literal(bucket), sa.Interval()),
        t.time,
        sa.cast(sa.literal(BUCKET_ORIGIN), sa.DateTime(timezone=True)),
    ).label("bucket")
    # Group by the output name: the bind parameters would make a repeated expression look different.
    by_bucket: sa.ColumnElement[datetime] = sa.literal_column("bucket")
    score: sa.ColumnElement[float] = sa.cast(t.score, sa.Double())
    query = (
        sa.select(
            bucket_col,
            t.label,
            sa.func.count().label("n"),
            sa.func.sum(score).label("score_sum"),
            sa.func.count(t.score).label("score_n"),
            sa.func.max(sa.cast(t.anom, sa.Double())).label("max_anom"),
        )
        .where(t.time >= since, t.time < until)
        .group_by(by_bucket, t.label)
        .order_by(by_bucket, t.label)
    )
    if device_id is not None:
        query = query.where(t.device_id == device_id)
    if model is not None:
        query = query.where(t.model == model)

    acc: dict[datetime, dict[str, Any]] = {}
    for row in await session.execute(query):
        b = acc.setdefault(row.bucket, {"n": 0, "labels": {}, "sum": 0.0, "sn": 0, "max": None})
        b["n"] += row.n
        if row.label is not None:
            b["labels"][row.label] = row.n
        if row.score_n:
            b["sum"] += row.score_sum
            b["sn"] += row.score_n
        if row.max_anom is not None and (b["max"] is None or row.max_anom > b["max"]):
            b["max"] = row.max_anom
    return [
        StatsBucket(
            bucket_start=start,
            count=b["n"],
            labels=b["labels"],
            avg_score=b["sum"] / b["sn"] if b["sn"] else None,
            max_anom=b["max"],
        )
        for start, b in acc.items()
    ]


# ---------------------------------------------------------------------------------------------- dead letters


async def list_dead_letters(
    session: AsyncSession,
    *,
    code: str | None = None,
    device_id: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[DeadLetterRecord]:
    """Dead letters newest first (by id), optionally filtered by reason code, device and receipt time."""
    _check_limit(limit)
    t = dead_letters_t.c
    query = sa.select(*_columns(dead_letters_t, DeadLetterRecord)).order_by(t.id.desc()).limit(limit + 1)
    if code is not None:
        query = query.where(t.code == code)
    if device_id is not None:
        query = query.where(t.device_id == device_id)
    if since is not None:
        query = query.where(t.received_at >= since)
    if cursor is not None:
        (before,) = _decode_cursor("x", cursor, (int,))
        query = query.where(t.id < before)
    rows = [_record(DeadLetterRecord, row) for row in await session.execute(query)]
    return _page(rows, limit, lambda d: _encode_cursor("x", [d.id]))
