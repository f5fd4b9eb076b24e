"""Initial store: devices, events, event_dedup, telemetry, dead_letters, tinyfleet_meta; Timescale; rollup.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25

TimescaleDB, when asked for (`use_timescaledb`, default on) and installable:

- ``CREATE EXTENSION IF NOT EXISTS timescaledb`` inside a SAVEPOINT (a failure falls back to plain tables);
- ``events`` and ``telemetry`` become hypertables with 1-day chunks (``dead_letters`` stays a plain table:
  its key is a serial id the API pages over, and its volume is small);
- with ``timescaledb.license = 'timescale'``: ``events_hourly`` is a real-time continuous aggregate with a
  refresh policy, and events/telemetry get compression (segmentby device_id) after 7 days;
- with the Apache-only build: ``events_hourly`` is a plain materialized view built with ``time_bucket``.

Without TimescaleDB: BRIN indexes on ``time`` and a plain materialized view built with ``date_bin`` (UTC
hours). The view has the same columns on every path. Which path was taken is written to ``tinyfleet_meta``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

revision: str = "0001_initial"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("tinyfleet.store.migrations")

CHUNK_INTERVAL = "1 day"
COMPRESS_AFTER = "7 days"
HYPERTABLES = ("events", "telemetry")

_ROLLUP_SELECT = """
SELECT {bucket} AS bucket,
       device_id, model, mver, label,
       count(*) AS event_count,
       avg(score) AS avg_score,
       max(anom) AS max_anom,
       avg(lat_us) AS avg_lat_us
FROM events
GROUP BY bucket, device_id, model, mver, label
"""
_BUCKET_TIMESCALE = "time_bucket(INTERVAL '1 hour', time)"
_BUCKET_PLAIN = "date_bin(INTERVAL '1 hour', time, TIMESTAMPTZ '2000-01-03 00:00:00+00')"


def _create_tables() -> None:
    ts = sa.DateTime(timezone=True)
    op.create_table(
        "devices",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("first_seen", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("last_seen", ts, nullable=True),
        sa.Column("online", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("online_changed_at", ts, nullable=True),
        sa.Column("last_boot", sa.BigInteger(), nullable=True),
        sa.Column("firmware", sa.Text(), nullable=True),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("mver", sa.Integer(), nullable=True),
        sa.Column("capabilities", postgresql.JSONB(), nullable=True),
        sa.Column("state", postgresql.JSONB(), nullable=True, comment="last decoded state payload"),
        sa.Column("tags", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_devices"),
    )
    op.create_table(
        "events",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("time", ts, nullable=False),
        sa.Column("boot", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("device_time", sa.Boolean(), nullable=False),
        sa.Column("model", sa.Text(), nullable=False),
        sa.Column("mver", sa.Integer(), nullable=True),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("label", sa.Integer(), nullable=True),
        sa.Column("score", sa.REAL(), nullable=True),
        sa.Column("anom", sa.REAL(), nullable=True),
        sa.Column("val", postgresql.ARRAY(sa.Double()), nullable=True),
        sa.Column("top", postgresql.JSONB(), nullable=True),
        sa.Column("lat_us", sa.BigInteger(), nullable=True),
        sa.Column("extras", postgresql.JSONB(), nullable=True),
        # One b-tree for dedup and per-device time order; each extra b-tree costs ingest throughput.
        sa.PrimaryKeyConstraint("device_id", "time", "boot", "seq", name="pk_events"),
    )
    op.create_index("ix_events_time_brin", "events", ["time"], postgresql_using="brin")
    op.create_table(
        "event_dedup",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("boot", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("time", ts, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "boot", "seq", name="pk_event_dedup"),
    )
    op.create_index("ix_event_dedup_time", "event_dedup", ["time"])
    op.create_table(
        "telemetry",
        sa.Column("device_id", sa.Text(), nullable=False),
        sa.Column("time", ts, nullable=False),
        sa.Column("received_at", ts, nullable=False),
        sa.Column("device_time", sa.Boolean(), nullable=False),
        sa.Column("uptime_s", sa.BigInteger(), nullable=True),
        sa.Column("battery_pct", sa.REAL(), nullable=True),
        sa.Column("battery_mv", sa.Integer(), nullable=True),
        sa.Column("rssi_dbm", sa.SmallInteger(), nullable=True),
        sa.Column("heap_free", sa.BigInteger(), nullable=True),
        sa.Column("arena_free", sa.BigInteger(), nullable=True),
        sa.Column("infer_count", sa.BigInteger(), nullable=True),
        sa.Column("lat_avg_us", sa.BigInteger(), nullable=True),
        sa.Column("lat_max_us", sa.BigInteger(), nullable=True),
        sa.Column("dropped", sa.BigInteger(), nullable=True),
        sa.Column("extras", postgresql.JSONB(), nullable=True),
        sa.PrimaryKeyConstraint("device_id", "time", name="pk_telemetry"),
    )
    op.create_index("ix_telemetry_time_brin", "telemetry", ["time"], postgresql_using="brin")
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("received_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.Column("topic", sa.Text(), nullable=False),
        sa.Column("device_id", sa.Text(), nullable=True),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("event_index", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_dead_letters"),
    )
    op.create_index("ix_dead_letters_code", "dead_letters", ["code"])
    op.create_index("ix_dead_letters_device_id", "dead_letters", ["device_id"])
    op.create_index("ix_dead_letters_received_at", "dead_letters", ["received_at"])
    op.create_table(
        "tinyfleet_meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", ts, server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_tinyfleet_meta"),
    )


def _use_timescaledb() -> bool:
    cfg = op.get_context().config
    return True if cfg is None else bool(cfg.attributes.get("use_timescaledb", True))


_EXTVERSION = sa.text("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")


def _try_timescaledb(conn: Connection) -> dict[str, str] | None:
    """Make sure the extension exists; None when it cannot be had. Never aborts the migration transaction."""
    installed = conn.execute(_EXTVERSION).scalar()
    created = False
    if installed is None:
        available = conn.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")).scalar()
        if available is None:
            log.info("TimescaleDB is not installed on this server: plain tables with BRIN indexes")
            return None
        try:
            with conn.begin_nested():
                conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS timescaledb"))
        except sa.exc.DBAPIError as exc:
            log.warning("CREATE EXTENSION timescaledb failed, using plain tables: %s", str(exc.orig).strip())
            return None
        created = True
    version = conn.execute(_EXTVERSION).scalar()
    license_ = conn.execute(sa.text("SELECT current_setting('timescaledb.license', true)")).scalar()
    return {
        "timescaledb": "on",
        "timescaledb_version": str(version),
        "timescaledb_license": str(license_ or "unknown"),
        "timescaledb_created": "yes" if created else "no",
    }


def upgrade() -> None:
    _create_tables()
    conn = op.get_bind()
    meta: dict[str, str]
    ts = _try_timescaledb(conn) if _use_timescaledb() else None
    if ts is not None:
        meta = dict(ts)
        for table in HYPERTABLES:
            conn.execute(
                sa.text(
                    f"SELECT create_hypertable('{table}', 'time', chunk_time_interval => INTERVAL '{CHUNK_INTERVAL}',"
                    " create_default_indexes => false)"
                )
            )
        meta["hypertables"] = ",".join(HYPERTABLES)
        licensed = ts["timescaledb_license"] == "timescale"
    else:
        meta = {"timescaledb": "off", "hypertables": ""}
        licensed = False

    if licensed:
        op.execute(
            "CREATE MATERIALIZED VIEW events_hourly "
            "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS"
            + _ROLLUP_SELECT.format(bucket=_BUCKET_TIMESCALE)
            + "WITH NO DATA"
        )
        op.execute(
            "SELECT add_continuous_aggregate_policy('events_hourly', start_offset => INTERVAL '3 days', "
            "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes')"
        )
        op.execute(
            "ALTER TABLE events SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', "
            "timescaledb.compress_orderby = 'time DESC, boot DESC, seq DESC')"
        )
        op.execute(
            "ALTER TABLE telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', "
            "timescaledb.compress_orderby = 'time DESC')"
        )
        for table in HYPERTABLES:
            op.execute(f"SELECT add_compression_policy('{table}', compress_after => INTERVAL '{COMPRESS_AFTER}')")
        meta["events_hourly"] = "continuous_aggregate"
        meta["compression"] = "on"
    else:
        bucket = _BUCKET_TIMESCALE if ts is not None else _BUCKET_PLAIN
        op.execute("CREATE MATERIALIZED VIEW events_hourly AS" + _ROLLUP_SELECT.format(bucket=bucket) + "WITH DATA")
        # REFRESH … CONCURRENTLY needs a unique index on plain columns covering every row.
        op.execute(
            "CREATE UNIQUE INDEX ux_events_hourly ON events_hourly "
            "(bucket, device_id, model, mver, label) NULLS NOT DISTINCT"
        )
        meta["events_hourly"] = "materialized_view"
        meta["compression"] = "off"

    meta_table = sa.table("tinyfleet_meta", sa.column("key", sa.Text()), sa.column("value", sa.Text()))
    op.bulk_insert(meta_table, [{"key": k, "value": v} for k, v in sorted(meta.items())])
    log.info("store layout: %s", meta)


def downgrade() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT key, value FROM tinyfleet_meta")).all()
    meta: dict[str, str] = {str(key): str(value) for key, value in rows}
    # Drops a continuous aggregate (with its policy and materialization table) or a plain view alike.
    op.execute("DROP MATERIALIZED VIEW IF EXISTS events_hourly")
    for table in ("tinyfleet_meta", "dead_letters", "telemetry", "event_dedup", "events", "devices"):
        op.drop_table(table)
    if meta.get("timescaledb_created") == "yes":
        op.execute("DROP EXTENSION IF EXISTS timescaledb")
