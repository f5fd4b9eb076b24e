"""Maintenance on both storage paths: retention, dedup pruning, rollup refresh, locking, the scheduler."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from tinyfleet.store import maintenance
from tinyfleet.store.db import create_engine
from tinyfleet.store.maintenance import MaintenanceScheduler, run_maintenance_once

from .conftest import (
    dead_letters_t,
    event,
    event_dedup_t,
    events_t,
    insert,
    make_settings,
    scalar,
    telemetry_t,
)


def telemetry(device_id: str, time: datetime) -> dict[str, object]:
    return {
        "device_id": device_id,
        "time": time,
        "received_at": time,
        "device_time": True,
        "battery_pct": 80.0,
    }


def dead_letter(time: datetime, code: str = "bad_cbor", device_id: str | None = "d1") -> dict[str, object]:
    return {
        "received_at": time,
        "topic": f"tf/v1/{device_id}/evt",
        "device_id": device_id,
        "payload": b"\xff",
        "code": code,
        "detail": "test",
    }


async def _chunks(engine: AsyncEngine, table: str) -> int:
    return int(
        await scalar(engine, "SELECT count(*) FROM timescaledb_information.chunks WHERE hypertable_name = :t", t=table)
    )


async def test_retention_drops_old_data_and_keeps_fresh(
    engine: AsyncEngine, migrated_url: str, store_path: str, now: datetime
) -> None:
    old, fresh = now - timedelta(days=100), now - timedelta(hours=1)
    await insert(
        engine,
        events_t,
        [event(f"d{i}", 1, s, old + timedelta(minutes=s)) for i in range(3) for s in range(5)]
        + [event(f"d{i}", 2, s, fresh + timedelta(seconds=s)) for i in range(3) for s in range(4)],
    )
    await insert(engine, telemetry_t, [telemetry("d1", old), telemetry("d1", now - timedelta(days=40))])
    await insert(engine, telemetry_t, [telemetry("d1", fresh)])
    await insert(engine, dead_letters_t, [dead_letter(old), dead_letter(old), dead_letter(fresh)])
    if store_path == "timescaledb":
        chunks_before = await _chunks(engine, "events")
        assert chunks_before == 2

    settings = make_settings(migrated_url)  # defaults: events 90 d, telemetry 30 d, dead letters 30 d
    report = await run_maintenance_once(engine, settings)

    assert report.ok, report.errors
    assert not report.skipped
    assert report.timescaledb is (store_path == "timescaledb")
    ev, tel, dl = (report.retention[t] for t in ("events", "telemetry", "dead_letters"))
    assert dl.method == "delete"
    assert dl.rows_deleted == 2
    if store_path == "timescaledb":
        assert (ev.method, tel.method) == ("drop_chunks", "drop_chunks")
        assert ev.chunks_dropped == 1
        assert tel.chunks_dropped == 2
        assert await _chunks(engine, "events") == 1
    else:
        assert (ev.method, tel.method) == ("delete", "delete")
        assert ev.rows_deleted == 15
        assert tel.rows_deleted == 2
    assert ev.cutoff == report.started_at - timedelta(days=90)
    assert await scalar(engine, "SELECT count(*) FROM events") == 12
    assert await scalar(engine, "SELECT min(time) FROM events") == fresh
    assert await scalar(engine, "SELECT count(*) FROM telemetry") == 1
    assert await scalar(engine, "SELECT count(*) FROM dead_letters") == 1

    again = await run_maintenance_once(engine, settings)
    assert again.ok
    assert again.retention["events"].chunks_dropped == 0
    assert again.retention["events"].rows_deleted == 0


async def test_zero_retention_keeps_everything(engine: AsyncEngine, migrated_url: str, now: datetime) -> None:
    ancient = now - timedelta(days=3000)
    await insert(engine, events_t, [event("d1", 1, 1, ancient)])
    await insert(engine, telemetry_t, [telemetry("d1", ancient)])
    await insert(engine, dead_letters_t, [dead_letter(ancient)])
    settings = make_settings(
        migrated_url, retention_events_days=0, retention_telemetry_days=0, retention_dead_letters_days=0
    )
    report = await run_maintenance_once(engine, settings)
    assert report.ok
    assert {r.method for r in report.retention.values()} == {"keep"}
    for table in ("events", "telemetry", "dead_letters"):
        assert await scalar(engine, f"SELECT count(*) FROM {table}") == 1


async def test_plain_delete_runs_in_batches(
    engine: AsyncEngine, migrated_url: str, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maintenance, "DELETE_BATCH", 7)
    old = now - timedelta(days=50)
    await insert(engine, dead_letters_t, [dead_letter(old) for _ in range(23)] + [dead_letter(now)])
    report = await run_maintenance_once(engine, make_settings(migrated_url))
    assert report.retention["dead_letters"].rows_deleted == 23
    assert await scalar(engine, "SELECT count(*) FROM dead_letters") == 1


async def test_dedup_pruning(engine: AsyncEngine, migrated_url: str, now: datetime) -> None:
    rows = [{"device_id": "d1", "boot": 1, "seq": s, "time": now - timedelta(days=10, seconds=s)} for s in range(5)] + [
        {"device_id": "d1", "boot": 2, "seq": s, "time": now - timedelta(days=1)} for s in range(3)
    ]
    await insert(engine, event_dedup_t, rows)
    report = await run_maintenance_once(engine, make_settings(migrated_url, dedup_window_days=7))
    assert report.dedup_rows_deleted == 5
    assert await scalar(engine, "SELECT count(*) FROM event_dedup") == 3
    assert await scalar(engine, "SELECT min(boot) FROM event_dedup") == 2


async def test_rollup_refresh_gives_right_counts(engine: AsyncEngine, migrated_url: str, now: datetime) -> None:
    hour = now.replace(minute=0, second=0) - timedelta(hours=3)
    rows = [
        event("d1", 1, 1, hour + timedelta(minutes=1), label=1, score=0.25, lat_us=100),
        event("d1", 1, 2, hour + timedelta(minutes=2), label=1, score=0.75, lat_us=300),
        event("d1", 1, 3, hour + timedelta(minutes=59), label=2, score=0.5),
        event("d1", 1, 4, hour + timedelta(minutes=61), label=1, score=1.0),
        event("d2", 1, 1, hour + timedelta(minutes=5), kind=1, label=None, score=None, anom=2.5),
        event("d2", 1, 2, hour + timedelta(minutes=6), kind=1, label=None, score=None, anom=4.0),
    ]
    await insert(engine, events_t, rows)
    settings = make_settings(migrated_url)
    report = await run_maintenance_once(engine, settings)
    # A real-time continuous aggregate (Timescale License) needs no refresh to show the same numbers.
    licensed = await scalar(engine, "SELECT value FROM tinyfleet_meta WHERE key = 'events_hourly'")
    expected_rollup = "refreshed" if licensed == "materialized_view" else "continuous_aggregate"
    assert report.rollup == expected_rollup

    sql = (
        "SELECT bucket, device_id, label, event_count, avg_score, max_anom, avg_lat_us FROM events_hourly "
        "ORDER BY bucket, device_id, label NULLS LAST"
    )
    async with engine.connect() as conn:
        got = [tuple(r) for r in await conn.execute(sa.text(sql))]
    assert got == [
        (hour, "d1", 1, 2, 0.5, None, 200),
        (hour, "d1", 2, 1, 0.5, None, 2500),
        (hour, "d2", None, 2, None, 4.0, 2500),
        (hour + timedelta(hours=1), "d1", 1, 1, 1.0, None, 2500),
    ]

    # Populated now, so the next refresh is CONCURRENTLY; the NULL-label group must survive it.
    await insert(engine, events_t, [event("d2", 1, 3, hour + timedelta(minutes=7), kind=1, label=None, anom=9.0)])
    await insert(engine, events_t, [event("d1", 1, 5, hour + timedelta(minutes=8), label=1, score=1.0)])
    assert (await run_maintenance_once(engine, settings)).rollup == expected_rollup
    async with engine.connect() as conn:
        got = [tuple(r) for r in await conn.execute(sa.text(sql))]
    assert got[0][3] == 3
    assert got[2][2:6] == (None, 3, 0.5, 9.0)
    assert len(got) == 4


async def test_second_instance_skips_while_the_lock_is_held(engine: AsyncEngine, migrated_url: str) -> None:
    async with engine.connect() as holder:
        await holder.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": maintenance.MAINTENANCE_LOCK_KEY})
        report = await run_maintenance_once(engine, make_settings(migrated_url))
        assert report.skipped
        assert report.retention == {}
        await holder.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": maintenance.MAINTENANCE_LOCK_KEY})
    assert not (await run_maintenance_once(engine, make_settings(migrated_url))).skipped


async def test_scheduler_runs_periodically(engine: AsyncEngine, migrated_url: str, now: datetime) -> None:
    await insert(engine, dead_letters_t, [dead_letter(now - timedelta(days=31))])
    reports: list[maintenance.MaintenanceReport] = []
    settings = make_settings(migrated_url, maintenance_interval_s=0.05)
    async with MaintenanceScheduler(engine, settings, on_report=reports.append) as scheduler:
        assert scheduler.running
        assert scheduler._task is not None
        assert scheduler._task.get_name() == "tinyfleet-maintenance"
        async with asyncio.timeout(10):
            await scheduler.wait_for_runs(3)
    assert not scheduler.running
    assert scheduler.failures == 0
    assert scheduler.last_report is not None
    assert scheduler.last_report.ok
    assert reports[0].retention["dead_letters"].rows_deleted == 1
    assert len(reports) >= 3


async def test_scheduler_survives_failing_runs(database_url: str) -> None:
    # A database that was never migrated: every run fails (no tinyfleet_meta), the loop carries on.
    engine = create_engine(database_url)
    try:
        settings = make_settings(database_url, maintenance_interval_s=0.02)
        async with MaintenanceScheduler(engine, settings) as scheduler:
            async with asyncio.timeout(10):
                await scheduler.wait_for_runs(3)
            assert scheduler.running
        assert scheduler.failures >= 3
        assert scheduler.last_report is None
        assert "tinyfleet_meta" in str(scheduler.last_error)
        # The failed runs released the advisory lock.
        held = await scalar(
            engine,
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database()",
        )
        assert held == 0
    finally:
        await engine.dispose()
