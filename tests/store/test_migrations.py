"""Migrations: one head; up → down → up on both storage paths; the schema matches the models."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tinyfleet.store import migrate
from tinyfleet.store.db import create_engine
from tinyfleet.store.migrate import include_object
from tinyfleet.store.models import Base

from .conftest import PATHS

HEAD = "0009_users"


def _fetch(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _public_relations(url: str) -> set[tuple[str, str]]:
    rows = _fetch(
        url,
        "SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'p')",
    )
    return {(str(name), str(kind)) for name, kind in rows}


def _hypertables(url: str) -> set[str]:
    if not _fetch(url, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'"):
        return set()
    sql = "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'"
    return {str(r[0]) for r in _fetch(url, sql)}


def _indexes(url: str) -> dict[str, str]:
    rows = _fetch(url, "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    return {str(name): str(definition) for name, definition in rows}


def _meta(url: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _fetch(url, "SELECT key, value FROM tinyfleet_meta")}


def test_exactly_one_head() -> None:
    assert migrate.heads() == [HEAD]
    script = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = list(script.walk_revisions())
    assert len(script.get_bases()) == 1
    assert all(len(r.nextrev) <= 1 for r in revisions), "branched history"


def _assert_layout(url: str, path: str) -> None:
    relations = _public_relations(url)
    tables = {name for name, kind in relations if kind in ("r", "p")}
    assert {"devices", "events", "event_dedup", "telemetry", "dead_letters", "tinyfleet_meta"} <= tables
    assert {"alerts", "alert_events", "outbox"} <= tables
    assert {"models", "model_versions"} <= tables
    assert "UNIQUE INDEX ux_model_versions_model_version" in _indexes(url)["ux_model_versions_model_version"]
    assert "WHERE (state <> 'resolved'::text)" in _indexes(url)["ux_alerts_active"]
    indexes = _indexes(url)
    meta = _meta(url)
    licensed = meta.get("timescaledb_license") == "timescale"
    # The rollup exists on every path, with the same columns.
    columns = [
        str(r[0])
        for r in _fetch(
            url,
            "SELECT attname FROM pg_attribute WHERE attrelid = 'events_hourly'::regclass AND attnum > 0 "
            "ORDER BY attnum",
        )
    ]
    assert columns == [
        "bucket",
        "device_id",
        "model",
        "mver",
        "label",
        "event_count",
        "avg_score",
        "max_anom",
        "avg_lat_us",
    ]
    viewdef = str(_fetch(url, "SELECT pg_get_viewdef('events_hourly'::regclass)")[0][0])
    if licensed:
        # A continuous aggregate shows up as a view over its materialization hypertable.
        assert ("events_hourly", "v") in relations
        assert meta["events_hourly"] == "continuous_aggregate"
        assert meta["compression"] == "on"
    else:
        assert ("events_hourly", "m") in relations
        assert meta["events_hourly"] == "materialized_view"
        assert meta["compression"] == "off"
        assert "ux_events_hourly" in indexes
    if path == "timescaledb":
        assert _hypertables(url) == {"events", "telemetry"}
        assert meta["timescaledb"] == "on"
        assert meta["hypertables"] == "events,telemetry"
        assert meta["timescaledb_license"] in ("apache", "timescale")
        assert "time_bucket" in viewdef
        # no TimescaleDB default b-tree on time: the BRIN index below serves time ranges at a fraction of the cost
        assert "events_time_idx" not in indexes
    else:
        assert _hypertables(url) == set()
        assert meta == {
            "timescaledb": "off",
            "hypertables": "",
            "events_hourly": "materialized_view",
            "compression": "off",
        }
        assert "date_bin" in viewdef
    assert 'USING brin ("time")' in indexes["ix_events_time_brin"]
    assert 'USING brin ("time")' in indexes["ix_telemetry_time_brin"]
    assert indexes["pk_events"].endswith("(device_id, \"time\", boot, seq)")


@pytest.mark.parametrize("path", PATHS)
def test_up_down_up(database_url: str, path: str) -> None:
    use_ts = path == "timescaledb"
    assert migrate.current(database_url) is None

    migrate.upgrade(database_url, use_timescaledb=use_ts)
    assert migrate.current(database_url) == HEAD
    _assert_layout(database_url, path)

    migrate.downgrade(database_url, "base")
    assert migrate.current(database_url) is None
    assert _public_relations(database_url) == {("alembic_version", "r")}
    # The migration created the extension, so its downgrade removed it.
    assert _fetch(database_url, "SELECT extname FROM pg_extension WHERE extname = 'timescaledb'") == []

    migrate.upgrade(database_url, use_timescaledb=use_ts)
    assert migrate.current(database_url) == HEAD
    _assert_layout(database_url, path)
    migrate.upgrade(database_url, use_timescaledb=use_ts)  # idempotent at head


@pytest.mark.parametrize("path", PATHS)
def test_schema_matches_models(database_url: str, path: str) -> None:
    migrate.upgrade(database_url, use_timescaledb=path == "timescaledb")
    engine = migrate.sync_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn,
                opts={
                    "include_object": include_object,
                    "compare_type": True,
                    "compare_server_default": True,
                },
            )
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_existing_extension_is_used_and_kept(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
    migrate.upgrade(database_url)
    meta = _meta(database_url)
    assert meta["timescaledb"] == "on"
    assert meta["timescaledb_created"] == "no"
    migrate.downgrade(database_url, "base")
    assert _fetch(database_url, "SELECT extname FROM pg_extension WHERE extname = 'timescaledb'") != []


def test_failing_create_extension_falls_back_to_plain_tables(database_url: str) -> None:
    # A schema TimescaleDB wants to create already exists: CREATE EXTENSION fails inside its SAVEPOINT and
    # the migration carries on in the same transaction on the plain-table path.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA _timescaledb_catalog")
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == HEAD
    assert _meta(database_url)["timescaledb"] == "off"
    _assert_layout(database_url, "plain")


def test_use_timescaledb_false_ignores_an_installed_extension(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION timescaledb")
    migrate.upgrade(database_url, use_timescaledb=False)
    _assert_layout(database_url, "plain")


async def test_upgrade_async_over_an_async_engine(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate.upgrade_async(engine, use_timescaledb=False)
        async with engine.connect() as conn:
            value = await conn.execute(sa.text("SELECT value FROM tinyfleet_meta WHERE key = 'timescaledb'"))
            assert value.scalar() == "off"
    finally:
        await engine.dispose()
    assert migrate.current(database_url) == HEAD


def test_upgrade_works_from_another_directory(
    database_url: str, tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(str(tmp_path))
    migrate.upgrade(database_url, use_timescaledb=False)
    assert migrate.current(database_url) == HEAD


def test_licensed_timescaledb_uses_continuous_aggregate_and_compression(database_url: str) -> None:
    """Only on a server whose TimescaleDB has the Timescale License (e.g. the official docker image)."""
    migrate.upgrade(database_url)
    meta = _meta(database_url)
    if meta.get("timescaledb_license") != "timescale":
        pytest.skip(f"TimescaleDB license here is {meta.get('timescaledb_license')!r}, not 'timescale'")
    _assert_layout(database_url, "timescaledb")
    caggs = _fetch(
        database_url,
        "SELECT view_name, materialized_only FROM timescaledb_information.continuous_aggregates",
    )
    assert caggs == [("events_hourly", False)]
    compressed = _fetch(
        database_url,
        "SELECT DISTINCT hypertable_name FROM timescaledb_information.compression_settings "
        "WHERE hypertable_schema = 'public' AND segmentby_column_index = 1 AND attname = 'device_id'",
    )
    assert {r[0] for r in compressed} == {"events", "telemetry"}
    jobs = _fetch(
        database_url,
        "SELECT proc_name, coalesce(hypertable_name, '') FROM timescaledb_information.jobs "
        "WHERE proc_name IN ('policy_compression', 'policy_refresh_continuous_aggregate')",
    )
    assert {str(r[0]) for r in jobs} == {"policy_compression", "policy_refresh_continuous_aggregate"}
    assert len(jobs) == 3
    migrate.downgrade(database_url, "base")
    assert _public_relations(database_url) == {("alembic_version", "r")}
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == HEAD
