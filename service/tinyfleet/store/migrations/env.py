"""Alembic environment for tinyfleet's store.

Run programmatically through `tinyfleet.store.migrate` (which hands over an open sync psycopg connection in
``config.attributes["connection"]``), or with the `alembic` command line: the URL then comes from
``-x url=…``, the ``sqlalchemy.url`` option, or TINYFLEET_DATABASE_URL (via the Settings), and
``-x timescaledb=off`` selects the plain-table path.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text
from sqlalchemy.engine import Connection

from tinyfleet.store.migrate import include_object
from tinyfleet.store.models import Base

config = context.config
target_metadata = Base.metadata

#: Key of the advisory lock held while migrating, so two service instances never migrate at once.
MIGRATION_LOCK_KEY = 0x7446_6D69_6772  # "tfmigr"


def _option(name: str) -> str | None:
    value = context.get_x_argument(as_dictionary=True).get(name)
    return value if value else None


def _use_timescaledb() -> bool:
    if "use_timescaledb" in config.attributes:
        return bool(config.attributes["use_timescaledb"])
    flag = _option("timescaledb")
    return flag is None or flag.lower() not in ("0", "off", "false", "no")


def _url() -> str:
    from tinyfleet.config import load_settings, to_sqlalchemy_url

    url = _option("url") or config.get_main_option("sqlalchemy.url")
    if not url:
        url = load_settings().database_url
    return to_sqlalchemy_url(url, driver="psycopg")


def _run(connection: Connection) -> None:
    config.attributes["use_timescaledb"] = _use_timescaledb()
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool, connect_args={"options": "-c TimeZone=UTC"})
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the TimescaleDB setup inspects the database")
run_migrations_online()
