"""The service's own maintenance: retention, dedup pruning, rollup refresh.

The Apache-licensed TimescaleDB build has no job scheduler (no policies, no add_job), and plain PostgreSQL
has none either, so the service runs this itself every `maintenance_interval_s`:

- retention per table (`retention_{events,telemetry,dead_letters}_days`, 0 = keep forever):
  ``drop_chunks(table, older_than => cutoff)`` on hypertables — whole chunks only, so rows outlive the cutoff
  by at most one chunk interval (1 day) — and batched ``DELETE … WHERE time < cutoff`` on plain tables;
- ``event_dedup`` rows older than `dedup_window_days`;
- ``REFRESH MATERIALIZED VIEW CONCURRENTLY events_hourly`` when the rollup is a plain materialized view
  (a continuous aggregate is refreshed by its own TimescaleDB policy).

A session-level advisory lock makes concurrent service instances take turns: the loser reports `skipped`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Literal, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from tinyfleet.config import Settings
from tinyfleet.store.meta import ROLLUP_MATERIALIZED, StoreLayout, read_layout

log = logging.getLogger(__name__)

#: Key of the advisory lock held by the instance running maintenance.
MAINTENANCE_LOCK_KEY = 0x7446_6D61_696E  # "tfmain"
#: Rows per DELETE statement (and transaction) on plain tables.
DELETE_BATCH = 10_000
TASK_NAME = "tinyfleet-maintenance"

RetentionMethod = Literal["drop_chunks", "delete", "keep"]

# table -> (time column, Settings field with the retention in days)
RETENTION_TABLES: dict[str, tuple[str, str]] = {
    "events": ("time", "retention_events_days"),
    "telemetry": ("time", "retention_telemetry_days"),
    "dead_letters": ("received_at", "retention_dead_letters_days"),
}


@dataclass(slots=True)
class TableRetention:
    """What retention did to one table."""

    table: str
    method: RetentionMethod
    cutoff: datetime | None = None
    chunks_dropped: int = 0
    rows_deleted: int = 0


@dataclass(slots=True)
class MaintenanceReport:
    """One maintenance run. `errors` holds the steps that failed (the others still ran)."""

    started_at: datetime
    duration_s: float = 0.0
    skipped: bool = False
    timescaledb: bool = False
    retention: dict[str, TableRetention] = field(default_factory=dict)
    dedup_rows_deleted: int = 0
    rollup: Literal["refreshed", "continuous_aggregate", "not_run"] = "not_run"
    rollup_refresh_s: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


async def _delete_batched(conn: AsyncConnection, table: str, column: str, cutoff: datetime) -> int:
    """DELETE rows with `column < cutoff` in short transactions of at most DELETE_BATCH rows."""
    statement = text(
        f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {column} < :cutoff LIMIT :batch))"
    )
    total = 0
    while True:
        result = await conn.execute(statement, {"cutoff": cutoff, "batch": DELETE_BATCH})
        await conn.commit()
        total += result.rowcount
        if result.rowcount < DELETE_BATCH:
            return total


async def _drop_chunks(conn: AsyncConnection, table: str, cutoff: datetime) -> int:
    result = await conn.execute(
        text(f"SELECT count(*) FROM drop_chunks('{table}', older_than => CAST(:cutoff AS timestamptz))"),
        {"cutoff": cutoff},
    )
    dropped = int(result.scalar_one())
    await conn.commit()
    return dropped


async def _retention(
    conn: AsyncConnection, layout: StoreLayout, settings: Settings, now: datetime, report: MaintenanceReport
) -> None:
    for table, (column, setting) in RETENTION_TABLES.items():
        days = int(getattr(settings, setting))
        if days <= 0:
            report.retention[table] = TableRetention(table, "keep")
            continue
        cutoff = now - timedelta(days=days)
        entry = TableRetention(table, "drop_chunks" if layout.is_hypertable(table) else "delete", cutoff)
        report.retention[table] = entry
        try:
            if entry.method == "drop_chunks":
                entry.chunks_dropped = await _drop_chunks(conn, table, cutoff)
            else:
                entry.rows_deleted = await _delete_batched(conn, table, column, cutoff)
        except Exception as exc:
            await conn.rollback()
            log.exception("retention on %s failed", table)
            report.errors.append(f"retention {table}: {exc}")


async def _prune_dedup(conn: AsyncConnection, settings: Settings, now: datetime, report: MaintenanceReport) -> None:
    try:
        cutoff = now - timedelta(days=settings.dedup_window_days)
        report.dedup_rows_deleted = await _delete_batched(conn, "event_dedup", "time", cutoff)
    except Exception as exc:
        await conn.rollback()
        log.exception("pruning event_dedup failed")
        report.errors.append(f"dedup: {exc}")


async def refresh_rollup(conn: AsyncConnection) -> None:
    """Refresh the plain `events_hourly` view: CONCURRENTLY once populated (readers are never blocked)."""
    populated = (
        await conn.execute(text("SELECT ispopulated FROM pg_matviews WHERE matviewname = 'events_hourly'"))
    ).scalar()
    concurrently = "CONCURRENTLY " if populated else ""
    await conn.execute(text(f"REFRESH MATERIALIZED VIEW {concurrently}events_hourly"))
    await conn.commit()


async def _refresh(conn: AsyncConnection, layout: StoreLayout, report: MaintenanceReport) -> None:
    if layout.rollup != ROLLUP_MATERIALIZED:
        report.rollup = "continuous_aggregate"
        return
    started = time.perf_counter()
    try:
        await refresh_rollup(conn)
        report.rollup = "refreshed"
    except Exception as exc:
        await conn.rollback()
        log.exception("refreshing events_hourly failed")
        report.errors.append(f"rollup: {exc}")
    report.rollup_refresh_s = time.perf_counter() - started


def _describe(entry: TableRetention) -> str:
    if entry.method == "drop_chunks":
        return f"{entry.table} -{entry.chunks_dropped} chunks"
    return f"{entry.table} -{entry.rows_deleted} rows"


async def run_maintenance_once(engine: AsyncEngine, settings: Settings) -> MaintenanceReport:
    """Run every maintenance step once. Step failures are logged and listed in `report.errors`;
    a database that cannot be reached (or was never migrated) raises."""
    started = time.perf_counter()
    async with engine.connect() as conn:
        now: datetime = (await conn.execute(text("SELECT now()"))).scalar_one()
        report = MaintenanceReport(started_at=now)
        got_lock = (
            await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": MAINTENANCE_LOCK_KEY})
        ).scalar_one()
        await conn.commit()
        if not got_lock:
            report.skipped = True
            log.info("maintenance skipped: another instance holds the lock")
            return report
        try:
            layout = await read_layout(conn)
            await conn.commit()
            report.timescaledb = layout.timescaledb
            await _retention(conn, layout, settings, now, report)
            await _prune_dedup(conn, settings, now, report)
            await _refresh(conn, layout, report)
        finally:
            await conn.rollback()
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MAINTENANCE_LOCK_KEY})
            await conn.commit()
    report.duration_s = time.perf_counter() - started
    log.info(
        "maintenance done in %.3fs: %s; dedup -%d; rollup %s%s",
        report.duration_s,
        ", ".join(_describe(r) for r in report.retention.values() if r.method != "keep") or "no retention",
        report.dedup_rows_deleted,
        report.rollup,
        f"; errors: {report.errors}" if report.errors else "",
    )
    return report


class MaintenanceScheduler:
    """Runs `run_maintenance_once` at start and then every `interval_s` in a named asyncio task.

        async with MaintenanceScheduler(engine, settings) as scheduler:
            ...                                   # scheduler.last_report feeds /metrics

    A failing run is logged and counted (`failures`, `last_error`); the loop carries on.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        interval_s: float | None = None,
        on_report: Callable[[MaintenanceReport], None] | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.interval_s = settings.maintenance_interval_s if interval_s is None else interval_s
        self.on_report = on_report
        self.runs = 0
        self.failures = 0
        self.last_report: MaintenanceReport | None = None
        self.last_error: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._ran = asyncio.Condition()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._loop(), name=TASK_NAME)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def run_once(self) -> MaintenanceReport | None:
        """One run with the scheduler's bookkeeping and error handling (never raises but CancelledError)."""
        report: MaintenanceReport | None = None
        try:
            report = await run_maintenance_once(self.engine, self.settings)
        except Exception as exc:
            self.failures += 1
            self.last_error = exc
            log.exception("maintenance run failed")
        else:
            self.last_report = report
            if report.errors:
                self.failures += 1
            if self.on_report is not None:
                try:
                    self.on_report(report)
                except Exception:
                    log.exception("maintenance on_report callback failed")
        async with self._ran:
            self.runs += 1
            self._ran.notify_all()
        return report

    async def wait_for_runs(self, n: int) -> None:
        """Wait until at least `n` runs have completed (successfully or not). Bound it with a timeout."""
        async with self._ran:
            await self._ran.wait_for(lambda: self.runs >= n)

    async def _loop(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self.interval_s)
