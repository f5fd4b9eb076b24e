"""Writes one batch of decoded messages in one transaction: events, telemetry, device state, dead letters.

Events go through binary COPY into a temporary staging table, then one INSERT … ON CONFLICT DO NOTHING into
`events`, so redelivered or resent events (same device, boot, seq) are stored once. Events without a device
clock claim their (device, boot, seq) in `event_dedup` first, which also fixes their time to the first receipt.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg.types.json import Jsonb

log = logging.getLogger(__name__)

EVENT_STAGING_COLUMNS = (
    "device_id", "boot", "seq", "ts_ms", "recv_ms", "model", "mver", "kind", "label", "score", "anom",
    "val", "top", "lat_us", "extras",
)  # fmt: skip
EVENT_STAGING_TYPES = (
    "text", "int8", "int8", "int8", "int8", "text", "int4", "int2", "int4", "float4", "float4",
    "float8[]", "jsonb", "int8", "jsonb",
)  # fmt: skip
TELEMETRY_STAGING_COLUMNS = (
    "device_id", "ts_ms", "recv_ms", "uptime_s", "battery_pct", "battery_mv", "rssi_dbm", "heap_free",
    "arena_free", "infer_count", "lat_avg_us", "lat_max_us", "dropped", "extras",
)  # fmt: skip
TELEMETRY_STAGING_TYPES = (
    "text", "int8", "int8", "int8", "float4", "int4", "int2", "int8", "int8", "int8", "int8", "int8", "int8",
    "jsonb",
)  # fmt: skip

_EPOCH = "'epoch'::timestamptz"

SETUP_SQL = f"""
CREATE TEMP TABLE IF NOT EXISTS ingest_events (
    {", ".join(f"{c} {t}" for c, t in zip(EVENT_STAGING_COLUMNS, EVENT_STAGING_TYPES, strict=True))}
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS ingest_telemetry (
    {", ".join(f"{c} {t}" for c, t in zip(TELEMETRY_STAGING_COLUMNS, TELEMETRY_STAGING_TYPES, strict=True))}
) ON COMMIT DELETE ROWS;
"""

INSERT_EVENTS_SQL = f"""
WITH clockless AS (
    SELECT DISTINCT ON (device_id, boot, seq) device_id, boot, seq, recv_ms
    FROM ingest_events WHERE ts_ms IS NULL
    ORDER BY device_id, boot, seq, recv_ms
), claimed AS (
    INSERT INTO event_dedup (device_id, boot, seq, time)
    SELECT device_id, boot, seq, {_EPOCH} + recv_ms * interval '1 millisecond' FROM clockless
    ON CONFLICT DO NOTHING
    RETURNING device_id, boot, seq, time
)
INSERT INTO events (device_id, boot, seq, time, received_at, device_time, model, mver, kind, label, score,
                    anom, val, top, lat_us, extras)
SELECT i.device_id, i.boot, i.seq,
       COALESCE({_EPOCH} + i.ts_ms * interval '1 millisecond', c.time),
       {_EPOCH} + i.recv_ms * interval '1 millisecond',
       i.ts_ms IS NOT NULL, i.model, i.mver, i.kind, i.label, i.score, i.anom, i.val, i.top, i.lat_us, i.extras
FROM ingest_events i
LEFT JOIN claimed c ON i.ts_ms IS NULL AND c.device_id = i.device_id AND c.boot = i.boot AND c.seq = i.seq
WHERE i.ts_ms IS NOT NULL OR c.device_id IS NOT NULL
ON CONFLICT DO NOTHING
"""

# The common case, every event with a device timestamp: no dedup-table claim needed.
INSERT_TIMED_EVENTS_SQL = f"""
INSERT INTO events (device_id, boot, seq, time, received_at, device_time, model, mver, kind, label, score,
                    anom, val, top, lat_us, extras)
SELECT device_id, boot, seq, {_EPOCH} + ts_ms * interval '1 millisecond',
       {_EPOCH} + recv_ms * interval '1 millisecond', true, model, mver, kind, label, score, anom, val, top,
       lat_us, extras
FROM ingest_events
ON CONFLICT DO NOTHING
"""

INSERT_TELEMETRY_SQL = f"""
INSERT INTO telemetry (device_id, time, received_at, device_time, uptime_s, battery_pct, battery_mv, rssi_dbm,
                       heap_free, arena_free, infer_count, lat_avg_us, lat_max_us, dropped, extras)
SELECT device_id, {_EPOCH} + COALESCE(ts_ms, recv_ms) * interval '1 millisecond',
       {_EPOCH} + recv_ms * interval '1 millisecond', ts_ms IS NOT NULL, uptime_s, battery_pct, battery_mv,
       rssi_dbm, heap_free, arena_free, infer_count, lat_avg_us, lat_max_us, dropped, extras
FROM ingest_telemetry
ON CONFLICT DO NOTHING
"""

TOUCH_DEVICES_SQL = f"""
INSERT INTO devices (id, first_seen, last_seen)
SELECT id, {_EPOCH} + ms * interval '1 millisecond', {_EPOCH} + ms * interval '1 millisecond'
FROM unnest(%s::text[], %s::int8[]) AS t(id, ms)
ORDER BY id
ON CONFLICT (id) DO UPDATE SET last_seen = GREATEST(devices.last_seen, EXCLUDED.last_seen)
"""

UPSERT_STATE_SQL = f"""
INSERT INTO devices (id, first_seen, last_seen, online, online_changed_at, last_boot, firmware, model, mver,
                     capabilities, state, state_at)
VALUES (%(id)s, {_EPOCH} + %(ms)s * interval '1 millisecond', {_EPOCH} + %(ms)s * interval '1 millisecond',
        %(online)s, {_EPOCH} + %(ms)s * interval '1 millisecond', %(boot)s, %(fw)s, %(model)s, %(mver)s,
        %(caps)s, %(state)s, {_EPOCH} + %(ms)s * interval '1 millisecond')
ON CONFLICT (id) DO UPDATE SET
    last_seen = CASE WHEN %(touch)s THEN GREATEST(devices.last_seen, EXCLUDED.last_seen) ELSE devices.last_seen END,
    online_changed_at = CASE WHEN devices.online IS DISTINCT FROM EXCLUDED.online
                             THEN EXCLUDED.online_changed_at ELSE devices.online_changed_at END,
    online = EXCLUDED.online,
    last_boot = COALESCE(EXCLUDED.last_boot, devices.last_boot),
    firmware = COALESCE(EXCLUDED.firmware, devices.firmware),
    model = COALESCE(EXCLUDED.model, devices.model),
    mver = COALESCE(EXCLUDED.mver, devices.mver),
    capabilities = COALESCE(EXCLUDED.capabilities, devices.capabilities),
    state = CASE WHEN EXCLUDED.online THEN EXCLUDED.state ELSE devices.state END,
    state_at = CASE WHEN EXCLUDED.online THEN EXCLUDED.state_at ELSE devices.state_at END
"""

INSERT_DEAD_LETTER_SQL = """
INSERT INTO dead_letters (received_at, topic, device_id, payload, code, detail, event_index)
VALUES ('epoch'::timestamptz + %s * interval '1 millisecond', %s, %s, %s, %s, %s, %s)
"""


@dataclass(slots=True)
class DeadLetterRow:
    received_ms: int
    topic: str
    device_id: str | None
    payload: bytes
    code: str
    detail: str
    event_index: int | None = None

    def params(self) -> tuple[Any, ...]:
        return (
            self.received_ms, self.topic, self.device_id, self.payload, self.code, self.detail, self.event_index,
        )  # fmt: skip


@dataclass(slots=True)
class StateRow:
    device_id: str
    received_ms: int
    online: bool
    boot: int | None
    firmware: str | None
    model: str | None
    mver: int | None
    capabilities: dict[str, Any] | None
    state: dict[str, Any]
    touch: bool
    topic: str
    payload: bytes

    def params(self) -> dict[str, Any]:
        return {
            "id": self.device_id,
            "ms": self.received_ms,
            "online": self.online,
            "boot": self.boot,
            "fw": self.firmware,
            "model": self.model,
            "mver": self.mver,
            "caps": Jsonb(self.capabilities) if self.capabilities is not None else None,
            "state": Jsonb(self.state),
            "touch": self.touch,
        }


INSERT_OTA_REPORT_SQL = f"""
INSERT INTO ota_reports (device_id, received_at, state, seq, reason, message, model, mver, report)
VALUES (%(id)s, {_EPOCH} + %(ms)s * interval '1 millisecond', %(state)s, %(seq)s, %(reason)s, %(msg)s, %(model)s,
        %(mver)s, %(report)s)
"""


@dataclass(slots=True)
class OtaReportRow:
    """One `ota/status` message: what the device says of the manifest `seq` it acts on."""

    device_id: str
    received_ms: int
    state: str
    seq: int
    reason: str | None
    message: str | None
    model: str | None
    mver: int | None
    report: dict[str, Any]
    topic: str
    payload: bytes

    def params(self) -> dict[str, Any]:
        return {
            "id": self.device_id,
            "ms": self.received_ms,
            "state": self.state,
            "seq": self.seq,
            "reason": self.reason,
            "msg": self.message,
            "model": self.model,
            "mver": self.mver,
            "report": Jsonb(self.report),
        }


_Probed = TypeVar("_Probed", "StateRow", "OtaReportRow")


def _probe_each(
    conn: psycopg.Connection[Any], rows: list[_Probed], sql: str, what: str, refused: list[DeadLetterRow]
) -> list[_Probed]:
    """The rows the database takes, each tried in a savepoint; the others become dead letters in `refused`."""
    ok: list[_Probed] = []
    for row in rows:
        try:
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(sql, row.params())
        except psycopg.DataError as exc:
            detail = f"{what} refused by the database: {exc}".strip()[:2000]
            refused.append(DeadLetterRow(row.received_ms, row.topic, row.device_id, row.payload, "db_rejected", detail))
            continue
        ok.append(row)
    return ok


@dataclass(slots=True)
class PreparedBatch:
    """A batch decoded into rows, ready to write; kept as is across database retries."""

    event_rows: list[tuple[Any, ...]] = field(default_factory=list)
    telemetry_rows: list[tuple[Any, ...]] = field(default_factory=list)
    # Where each row came from (topic, raw payload, index in its batch), aligned with the rows above, so a row
    # the database refuses is dead-lettered with the original bytes.
    event_sources: list[tuple[str, bytes, int | None]] = field(default_factory=list)
    telemetry_sources: list[tuple[str, bytes, int | None]] = field(default_factory=list)
    states: list[StateRow] = field(default_factory=list)
    ota_reports: list[OtaReportRow] = field(default_factory=list)
    dead_letters: list[DeadLetterRow] = field(default_factory=list)
    touched: dict[str, int] = field(default_factory=dict)
    clockless: int = 0  # events without a device timestamp (they take the slower, deduplicating path)
    channel_counts: dict[str, int] = field(default_factory=dict)


#: Appended to the events INSERT when the caller wants to know which rows were new (see `WriteResult`).
RETURNING_KEYS_SQL = "RETURNING device_id, boot, seq"

EventKey = tuple[str, int, int]


@dataclass(slots=True, frozen=True)
class WriteResult:
    events_inserted: int
    events_offered: int
    telemetry_inserted: int
    dead_letters: int
    # With `BatchWriter(want_inserted_keys=True)`: the (device, boot, seq) of the rows the database took when
    # it did not take all that were offered (duplicates, refused rows); None when every offered row is new.
    inserted_keys: frozenset[EventKey] | None = None

    def new_rows(self, offered: Sequence[Sequence[Any]]) -> list[Sequence[Any]]:
        """The offered rows (in staging-column order) that are new in the database: each inserted key once,
        so neither a redelivery nor a resend inside one batch reaches a commit listener twice."""
        if self.inserted_keys is None:
            return list(offered)
        keys = set(self.inserted_keys)
        out = []
        for row in offered:
            key = (row[0], row[1], row[2])
            if key in keys:
                keys.discard(key)
                out.append(row)
        return out


class BatchWriter:
    """Owns one database connection (psycopg 3, sync: it runs on the writer thread)."""

    def __init__(
        self, conninfo: str, *, application_name: str = "tinyfleet-ingest", want_inserted_keys: bool = False
    ) -> None:
        self._conninfo = conninfo
        self._application_name = application_name
        self._want_keys = want_inserted_keys
        self._conn: psycopg.Connection[Any] | None = None

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def connect(self) -> None:
        self.close()
        conn = psycopg.connect(
            self._conninfo, autocommit=False, connect_timeout=5, application_name=self._application_name
        )
        conn.execute(SETUP_SQL)
        conn.commit()
        self._conn = conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """The connection for one transaction: committed on success, rolled back (or dropped) on error."""
        if self._conn is None or self._conn.closed:
            self.connect()
        conn = self._conn
        assert conn is not None
        try:
            yield conn
            conn.commit()
        except BaseException:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg.Error:
                    self.close()
            raise

    def write(self, batch: PreparedBatch) -> WriteResult:
        """Write and commit the whole batch; raises psycopg.Error (the transaction is rolled back)."""
        with self._transaction() as conn:
            return self._write(conn, batch)

    def write_isolated(self, batch: PreparedBatch) -> tuple[WriteResult, list[DeadLetterRow]]:
        """Fallback after a data error: probe row by row in savepoints; rows the database refuses become
        dead letters (code `db_rejected`) so one poison row cannot block the stream."""
        refused: list[DeadLetterRow] = []
        ok = PreparedBatch(touched=batch.touched, clockless=batch.clockless)
        with self._transaction() as conn:
            # Open the transaction first, so that each probe below is a SAVEPOINT inside it (psycopg's
            # transaction() on an idle connection would BEGIN and COMMIT instead).
            conn.execute("SELECT 1")
            for kind, rows, sources in (
                ("events", batch.event_rows, batch.event_sources),
                ("telemetry", batch.telemetry_rows, batch.telemetry_sources),
            ):
                for row, source in zip(rows, sources, strict=True):
                    probe = PreparedBatch(
                        clockless=1,
                        event_rows=[row] if kind == "events" else [],
                        telemetry_rows=[row] if kind == "telemetry" else [],
                    )
                    try:
                        with conn.transaction():
                            conn.execute("TRUNCATE ingest_events, ingest_telemetry")
                            self._write_rows(conn, probe)
                    except psycopg.DataError as exc:
                        refused.append(_refused_row(kind, row, source, exc))
                        continue
                    if kind == "events":
                        ok.event_rows.append(row)
                        ok.event_sources.append(source)
                    else:
                        ok.telemetry_rows.append(row)
                        ok.telemetry_sources.append(source)
            ok.states = _probe_each(conn, batch.states, UPSERT_STATE_SQL, "state", refused)
            ok.ota_reports = _probe_each(conn, batch.ota_reports, INSERT_OTA_REPORT_SQL, "ota status", refused)
            conn.rollback()  # the probes only sorted the rows; write the good ones for real
            ok.dead_letters = [*batch.dead_letters, *refused]
            result = self._write(conn, ok)
        if self._want_keys and result.inserted_keys is None and len(ok.event_rows) < len(batch.event_rows):
            keys = frozenset((r[0], r[1], r[2]) for r in ok.event_rows)
            result = dataclasses.replace(result, inserted_keys=keys)
        return result, refused

    def _write(self, conn: psycopg.Connection[Any], batch: PreparedBatch) -> WriteResult:
        inserted, telemetry, keys = self._write_rows(conn, batch, want_keys=self._want_keys)
        with conn.cursor() as cur:
            for state in batch.states:
                cur.execute(UPSERT_STATE_SQL, state.params())
            if batch.ota_reports:
                cur.executemany(INSERT_OTA_REPORT_SQL, [r.params() for r in batch.ota_reports])
            if batch.touched:
                ids = sorted(batch.touched)
                cur.execute(TOUCH_DEVICES_SQL, (ids, [batch.touched[i] for i in ids]))
            if batch.dead_letters:
                cur.executemany(INSERT_DEAD_LETTER_SQL, [d.params() for d in batch.dead_letters])
        return WriteResult(
            events_inserted=inserted,
            events_offered=len(batch.event_rows),
            telemetry_inserted=telemetry,
            dead_letters=len(batch.dead_letters),
            inserted_keys=keys,
        )

    @staticmethod
    def _write_rows(
        conn: psycopg.Connection[Any], batch: PreparedBatch, *, want_keys: bool = False
    ) -> tuple[int, int, frozenset[EventKey] | None]:
        inserted = telemetry = 0
        keys: frozenset[EventKey] | None = None
        with conn.cursor() as cur:
            if batch.event_rows:
                with cur.copy(
                    f"COPY ingest_events ({', '.join(EVENT_STAGING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(EVENT_STAGING_TYPES)
                    write_row = copy.write_row
                    for row in batch.event_rows:
                        write_row(row)
                sql = INSERT_EVENTS_SQL if batch.clockless else INSERT_TIMED_EVENTS_SQL
                if want_keys:
                    cur.execute(sql + RETURNING_KEYS_SQL)
                    inserted = cur.rowcount
                    if inserted < len(batch.event_rows):  # rows are parsed only when fetched: rarely
                        keys = frozenset((d, b, q) for d, b, q in cur.fetchall())
                else:
                    cur.execute(sql)
                    inserted = cur.rowcount
            if batch.telemetry_rows:
                with cur.copy(
                    f"COPY ingest_telemetry ({', '.join(TELEMETRY_STAGING_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
                ) as copy:
                    copy.set_types(TELEMETRY_STAGING_TYPES)
                    for row in batch.telemetry_rows:
                        copy.write_row(row)
                cur.execute(INSERT_TELEMETRY_SQL)
                telemetry = cur.rowcount
        return inserted, telemetry, keys


def _refused_row(
    kind: str, row: Sequence[Any], source: tuple[str, bytes, int | None], exc: psycopg.Error
) -> DeadLetterRow:
    topic, payload, index = source
    recv_ms = row[4] if kind == "events" else row[2]
    detail = f"{kind} row refused by the database: {exc}".strip()[:2000]
    return DeadLetterRow(recv_ms, topic, row[0], payload, "db_rejected", detail, index)
