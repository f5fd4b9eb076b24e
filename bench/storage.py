"""Bytes per stored event and per telemetry row in the store as the migrations lay it out (the sizing input of
docs/scaling.md).

    .venv/bin/python bench/storage.py [--rows N] [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a scratch database, migrates it (TimescaleDB when installed), inserts N rows per table for 1,000 devices
at one row per device per minute — rows shaped like the demo's classification events and telemetry — and reports
``hypertable_size`` (heap + primary key + BRIN, uncompressed) per row; then one JSON line
``{"bench": "storage", ...}``. Compression (Timescale License builds only) is not measured here.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys

import psycopg

from tinyfleet.store import migrate

EVENTS = """
INSERT INTO events (device_id, time, boot, seq, received_at, device_time, model, mver, kind, label, score, lat_us)
SELECT 'dev-' || lpad((g %% 1000)::text, 4, '0'), now() - make_interval(mins => g / 1000), 1, g, now(), true,
       'vib-cls', 4, 0, g %% 4, 0.5 + (g %% 50) / 100.0, 2200 + g %% 900
FROM generate_series(1, %(rows)s) g
"""
TELEMETRY = """
INSERT INTO telemetry (device_id, time, received_at, device_time, uptime_s, battery_pct, battery_mv, rssi_dbm,
                       heap_free, arena_free, infer_count, lat_avg_us, lat_max_us, dropped)
SELECT 'dev-' || lpad((g %% 1000)::text, 4, '0'), now() - make_interval(mins => g / 1000), now(), true, g, 80, 4000,
       -60, 45000, 2500, g, 2500, 3100, 0
FROM generate_series(1, %(rows)s) g
"""


def size_of(conn: psycopg.Connection, table: str, timescaledb: bool) -> int:
    fn = "hypertable_size" if timescaledb else "pg_total_relation_size"
    row = conn.execute(f"SELECT {fn}('{table}')").fetchone()
    assert row is not None
    return int(row[0])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args(argv)
    base, _, _ = args.database_url.rpartition("/")
    name = f"tf_bench_storage_{secrets.token_hex(3)}"
    with psycopg.connect(args.database_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{base}/{name}"
        migrate.upgrade(url)
        with psycopg.connect(url, autocommit=True) as conn:
            meta = dict(conn.execute("SELECT key, value FROM tinyfleet_meta").fetchall())
            ts = meta.get("timescaledb") == "on"
            conn.execute(EVENTS, {"rows": args.rows})
            conn.execute(TELEMETRY, {"rows": args.rows})
            conn.execute("VACUUM ANALYZE events")
            conn.execute("VACUUM ANALYZE telemetry")
            ev, tel = size_of(conn, "events", ts), size_of(conn, "telemetry", ts)
            pg = conn.execute("SHOW server_version").fetchone()
    finally:
        with psycopg.connect(args.database_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    per_event, per_tel = round(ev / args.rows, 1), round(tel / args.rows, 1)
    print(f"events: {per_event} B/row, telemetry: {per_tel} B/row ({args.rows:,} rows each)", file=sys.stderr)
    print(json.dumps({
        "bench": "storage", "rows": args.rows, "devices": 1000, "event_bytes_per_row": per_event,
        "telemetry_bytes_per_row": per_tel, "timescaledb": meta.get("timescaledb"),
        "timescaledb_license": meta.get("timescaledb_license"), "compression": meta.get("compression"),
        "postgres": pg[0] if pg else None,
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
