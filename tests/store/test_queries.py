"""Read-side queries, identical on both storage paths: filters, keyset pagination, stats, dead letters."""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tinyfleet.store import queries
from tinyfleet.store.queries import InvalidCursor, Page

from .conftest import dead_letters_t, devices_t, event, events_t, insert

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def test_records_cover_every_column() -> None:
    for table, record in (
        (devices_t, queries.DeviceRecord),
        (events_t, queries.EventRecord),
        (dead_letters_t, queries.DeadLetterRecord),
    ):
        assert [f.name for f in dataclasses.fields(record)] == [c.name for c in table.columns]


# ---------------------------------------------------------------------------------------------- devices


async def test_devices_pages_filters_and_get(engine: AsyncEngine, session: AsyncSession) -> None:
    await insert(
        engine,
        devices_t,
        [{"id": f"dev-{i:03d}", "online": i % 3 == 0, "firmware": "1.0", "tags": {"site": "a"}} for i in range(25)],
    )
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await queries.list_devices(session, limit=10, cursor=cursor)
        pages += 1
        seen += [d.id for d in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == [f"dev-{i:03d}" for i in range(25)]

    online, nxt = await queries.list_devices(session, online=True, limit=100)
    assert [d.id for d in online] == [f"dev-{i:03d}" for i in range(25) if i % 3 == 0]
    assert nxt is None
    offline = await queries.list_devices(session, online=False, limit=100)
    assert len(offline.items) == 25 - len(online)

    exact = await queries.list_devices(session, limit=25)
    assert len(exact.items) == 25
    assert exact.next_cursor is None  # no empty last page

    dev = await queries.get_device(session, "dev-003")
    assert dev is not None
    assert dev.online is True
    assert dev.tags == {"site": "a"}
    assert dev.first_seen.tzinfo is not None
    assert await queries.get_device(session, "nope") is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64 !!",
        base64.urlsafe_b64encode(b"not json").decode(),
        base64.urlsafe_b64encode(json.dumps(["e", 1, 2, 3]).encode()).decode(),  # an events cursor
        base64.urlsafe_b64encode(json.dumps(["d", 5]).encode()).decode(),  # wrong type
    ],
)
async def test_foreign_or_malformed_cursor_is_rejected(session: AsyncSession, cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        await queries.list_devices(session, cursor=cursor)
    assert issubclass(InvalidCursor, ValueError)


@pytest.mark.parametrize("key", [[10**18, 1, 1], [-(10**18), 1, 1], [0, 2**63, 1], [0, 1, -(2**64)], [0, True, 1]])
async def test_out_of_range_event_cursor_is_rejected(session: AsyncSession, key: list[object]) -> None:
    cursor = base64.urlsafe_b64encode(json.dumps(["e", *key]).encode()).decode()
    with pytest.raises(InvalidCursor):
        await queries.list_events(session, "d1", cursor=cursor)


async def test_limit_is_bounded(session: AsyncSession) -> None:
    with pytest.raises(ValueError, match="limit"):
        await queries.list_devices(session, limit=0)
    with pytest.raises(ValueError, match="limit"):
        await queries.list_events(session, "d1", limit=queries.MAX_LIMIT + 1)


# ---------------------------------------------------------------------------------------------- events


def _dataset() -> list[dict[str, object]]:
    """250 events of d1 (several sharing a timestamp: different boots/seqs), plus another device's."""
    rows: list[dict[str, object]] = []
    for i in range(250):
        t = T0 + timedelta(seconds=(i // 3) * 10, microseconds=7)  # three events per timestamp
        rows.append(
            event(
                "d1",
                1 + i % 2,
                i,
                t,
                model="vib-cls" if i % 5 else "kws",
                label=i % 4,
                kind=0 if i % 7 else 1,
                score=(i % 10) / 10,
            )
        )
    rows += [event("d2", 1, s, T0 + timedelta(seconds=s)) for s in range(20)]
    return rows


def _key(e: queries.EventRecord) -> tuple[datetime, int, int]:
    return (e.time, e.boot, e.seq)


async def _all_pages(
    session: AsyncSession, device_id: str, limit: int, **filters: Any
) -> list[list[queries.EventRecord]]:
    pages: list[list[queries.EventRecord]] = []
    cursor: str | None = None
    while True:
        items, cursor = await queries.list_events(session, device_id, limit=limit, cursor=cursor, **filters)
        pages.append(items)
        if cursor is None:
            return pages


async def test_events_keyset_pagination_newest_first(engine: AsyncEngine, session: AsyncSession) -> None:
    rows = _dataset()
    await insert(engine, events_t, rows)
    pages = await _all_pages(session, "d1", 37)
    assert len(pages) == 7  # 250 / 37
    got = [e for page in pages for e in page]
    keys = [_key(e) for e in got]
    expected = sorted(((r["time"], r["boot"], r["seq"]) for r in rows if r["device_id"] == "d1"), reverse=True)
    assert keys == expected  # no duplicates, no gaps, newest first
    first = got[0]
    assert isinstance(first, queries.EventRecord)
    assert first.device_id == "d1"
    assert first.time.microsecond == 7


async def test_events_pagination_is_stable_under_inserts(engine: AsyncEngine, session: AsyncSession) -> None:
    rows = _dataset()
    await insert(engine, events_t, rows)
    first, cursor = await queries.list_events(session, "d1", limit=50)
    # Newer events arrive while the client pages: they must not shift the following pages.
    await insert(engine, events_t, [event("d1", 9, s, T0 + timedelta(days=1, seconds=s)) for s in range(30)])
    rest: list[queries.EventRecord] = []
    while cursor is not None:
        items, cursor = await queries.list_events(session, "d1", limit=50, cursor=cursor)
        rest += items
    keys = [_key(e) for e in first + rest]
    assert len(keys) == len(set(keys)) == 250
    assert all(k[0] < T0 + timedelta(days=1) for k in keys)


async def test_event_filters(engine: AsyncEngine, session: AsyncSession) -> None:
    rows = _dataset()
    await insert(engine, events_t, rows)
    d1 = [r for r in rows if r["device_id"] == "d1"]

    async def count(**filters: object) -> int:
        return sum(len(p) for p in await _all_pages(session, "d1", 33, **filters))

    assert await count(model="kws") == sum(1 for r in d1 if r["model"] == "kws")
    assert await count(label=2) == sum(1 for r in d1 if r["label"] == 2)
    assert await count(kind=1) == sum(1 for r in d1 if r["kind"] == 1)
    assert await count(model="vib-cls", label=1, kind=0) == sum(
        1 for r in d1 if (r["model"], r["label"], r["kind"]) == ("vib-cls", 1, 0)
    )
    since, until = T0 + timedelta(seconds=100), T0 + timedelta(seconds=300)
    in_range = [r for r in d1 if since <= r["time"] < until]  # type: ignore[operator]
    assert await count(since=since, until=until) == len(in_range)
    assert await count(since=T0 + timedelta(days=5)) == 0
    items, nxt = await queries.list_events(session, "nobody")
    assert (items, nxt) == ([], None)
    d2 = await queries.list_events(session, "d2", limit=100)
    assert isinstance(d2, Page)
    assert [e.seq for e in d2.items] == list(range(19, -1, -1))


# ---------------------------------------------------------------------------------------------- stats


async def test_event_stats_histogram(engine: AsyncEngine, session: AsyncSession) -> None:
    h = T0  # 10:00 UTC
    await insert(
        engine,
        events_t,
        [
            event("d1", 1, 1, h + timedelta(minutes=1), label=1, score=0.2),
            event("d1", 1, 2, h + timedelta(minutes=2), label=1, score=0.4),
            event("d1", 1, 3, h + timedelta(minutes=3), label=2, score=0.9),
            event("d1", 1, 4, h + timedelta(minutes=4), kind=1, label=None, score=None, anom=3.5),
            event("d2", 1, 1, h + timedelta(minutes=5), label=2, score=0.6, anom=1.0),
            event("d2", 1, 2, h + timedelta(minutes=6), model="kws", label=0, score=1.0),
            event("d1", 1, 5, h + timedelta(hours=2, minutes=30), label=1, score=0.5),
            event("d1", 1, 6, h - timedelta(minutes=1), label=1, score=0.5),  # before `since`
        ],
    )
    stats = await queries.event_stats(session, since=h, until=h + timedelta(hours=4), bucket=timedelta(hours=1))
    assert [s.bucket_start for s in stats] == [h, h + timedelta(hours=2)]  # empty buckets are left out
    first = stats[0]
    assert first.count == 6
    assert first.labels == {0: 1, 1: 2, 2: 2}
    assert first.avg_score == pytest.approx((0.2 + 0.4 + 0.9 + 0.6 + 1.0) / 5, rel=1e-6)
    assert first.max_anom == pytest.approx(3.5)
    assert stats[1].count == 1
    assert stats[1].max_anom is None

    by_device = await queries.event_stats(
        session, since=h, until=h + timedelta(hours=4), bucket=timedelta(hours=1), device_id="d2"
    )
    assert [(s.count, s.labels) for s in by_device] == [(2, {2: 1, 0: 1})]
    by_model = await queries.event_stats(
        session, since=h, until=h + timedelta(hours=4), bucket=timedelta(hours=1), model="kws"
    )
    assert [(s.count, s.avg_score) for s in by_model] == [(1, 1.0)]

    # 15-minute buckets, and a day bucket aligned on UTC midnight.
    quarter = await queries.event_stats(
        session, since=h - timedelta(hours=1), until=h + timedelta(hours=1), bucket=timedelta(minutes=15)
    )
    assert [(s.bucket_start, s.count) for s in quarter] == [(h - timedelta(minutes=15), 1), (h, 6)]
    day = await queries.event_stats(
        session, since=h - timedelta(days=1), until=h + timedelta(days=1), bucket=timedelta(days=1)
    )
    assert [(s.bucket_start, s.count) for s in day] == [(h.replace(hour=0), 8)]
    week = await queries.event_stats(
        session, since=h - timedelta(days=8), until=h + timedelta(days=8), bucket=timedelta(weeks=1)
    )
    assert week[0].bucket_start.weekday() == 0  # weeks start on Monday, as with time_bucket

    assert await queries.event_stats(session, since=h, until=h, bucket=timedelta(hours=1)) == []
    with pytest.raises(ValueError, match="bucket"):
        await queries.event_stats(session, since=h, until=h + timedelta(hours=1), bucket=timedelta(0))
    with pytest.raises(ValueError, match="buckets"):
        await queries.event_stats(session, since=h, until=h + timedelta(days=365), bucket=timedelta(seconds=1))


# ---------------------------------------------------------------------------------------------- dead letters


async def test_dead_letters(engine: AsyncEngine, session: AsyncSession) -> None:
    rows = [
        {
            "received_at": T0 + timedelta(minutes=i),
            "topic": f"tf/v1/d{i % 3}/evt",
            "device_id": f"d{i % 3}" if i % 5 else None,
            "payload": bytes([i]),
            "code": "bad_cbor" if i % 2 else "too_big",
            "detail": f"#{i}",
            "event_index": None,
        }
        for i in range(45)
    ]
    await insert(engine, dead_letters_t, rows)
    got: list[queries.DeadLetterRecord] = []
    cursor: str | None = None
    while True:
        page = await queries.list_dead_letters(session, limit=20, cursor=cursor)
        got += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    assert [d.detail for d in got] == [f"#{i}" for i in range(44, -1, -1)]
    assert got[0].payload == bytes([44])

    bad = await queries.list_dead_letters(session, code="bad_cbor", limit=100)
    assert {d.code for d in bad.items} == {"bad_cbor"}
    assert len(bad.items) == 22
    d1 = await queries.list_dead_letters(session, device_id="d1", limit=100)
    assert len(d1.items) == sum(1 for r in rows if r["device_id"] == "d1")
    recent = await queries.list_dead_letters(session, since=T0 + timedelta(minutes=40), code="too_big", limit=2)
    assert [d.detail for d in recent.items] == ["#44", "#42"]
    rest = await queries.list_dead_letters(
        session, since=T0 + timedelta(minutes=40), code="too_big", cursor=recent.next_cursor
    )
    assert [d.detail for d in rest.items] == ["#40"]
    assert rest.next_cursor is None
