"""Run the store's Alembic migrations programmatically (no alembic.ini; works from any directory).

    upgrade("postgresql://postgres@127.0.0.1/tinyfleet")                 # TimescaleDB when available
    upgrade(url, use_timescaledb=False)                                    # plain tables + BRIN
    downgrade(url, "base")

The functions are synchronous (a sync psycopg 3 engine); from async code use `upgrade_async(engine)` or
`asyncio.to_thread(upgrade, url)`. A PostgreSQL advisory lock serialises concurrent upgrades.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.asyncio import AsyncEngine

from tinyfleet.config import to_sqlalchemy_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Indexes and relations the migrations create outside the models: the rollup view and its index.
# Autogenerate must leave them alone.
UNMODELLED_INDEXES = frozenset({"ux_events_hourly"})
UNMODELLED_RELATIONS = frozenset({"events_hourly"})


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic autogenerate filter: ignore what the migrations create beside the models."""
    if not reflected or compare_to is not None:
        return True
    if type_ == "index":
        return name not in UNMODELLED_INDEXES
    if type_ == "table":
        return name not in UNMODELLED_RELATIONS
    return True


def alembic_config(*, use_timescaledb: bool = True, connection: Connection | None = None) -> Config:
    """An Alembic Config pointing at the packaged migrations (pass `connection` to migrate over it)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["use_timescaledb"] = use_timescaledb
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def sync_engine(database_url: str, **engine_kw: Any) -> Engine:
    """A sync psycopg 3 engine without pooling, UTC session time zone."""
    connect_args = {"options": "-c TimeZone=UTC", **engine_kw.pop("connect_args", {})}
    return create_engine(
        to_sqlalchemy_url(database_url, driver="psycopg"),
        poolclass=pool.NullPool,
        connect_args=connect_args,
        **engine_kw,
    )


def _with_connection(database_url: str, fn: Any, **kw: Any) -> Any:
    engine = sync_engine(database_url)
    try:
        with engine.connect() as conn:
            result = fn(conn, **kw)
            conn.commit()
            return result
    finally:
        engine.dispose()


def _upgrade_on(conn: Connection, revision: str = "head", use_timescaledb: bool = True) -> None:
    command.upgrade(alembic_config(use_timescaledb=use_timescaledb, connection=conn), revision)


def _downgrade_on(conn: Connection, revision: str) -> None:
    command.downgrade(alembic_config(connection=conn), revision)


def _current_on(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(database_url: str, revision: str = "head", *, use_timescaledb: bool = True) -> None:
    """Migrate the database up to `revision`. `use_timescaledb=False` forces the plain-table path."""
    _with_connection(database_url, _upgrade_on, revision=revision, use_timescaledb=use_timescaledb)


def downgrade(database_url: str, revision: str) -> None:
    """Migrate down to `revision` (``"base"`` drops everything the migrations created)."""
    _with_connection(database_url, _downgrade_on, revision=revision)


def current(database_url: str) -> str | None:
    """The revision the database is at, or None when it has never been migrated."""
    result: str | None = _with_connection(database_url, _current_on)
    return result


def heads() -> list[str]:
    """The head revisions of the packaged migrations (exactly one is expected)."""
    return list(ScriptDirectory.from_config(alembic_config()).get_heads())


async def upgrade_async(engine: AsyncEngine, revision: str = "head", *, use_timescaledb: bool = True) -> None:
    """`upgrade` over an async engine's connection (runs the sync migration code in the driver's greenlet)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade_on, revision=revision, use_timescaledb=use_timescaledb)
