"""Store fixtures: fresh databases migrated on the TimescaleDB path or the plain-table path.

`store_path` parametrizes over both, so every test taking `migrated_url`/`engine`/`session` runs twice.
The TimescaleDB path requires the extension on the test server: if it is missing the tests fail, not skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from tinyfleet.config import Settings
from tinyfleet.store import migrate
from tinyfleet.store.db import create_engine, create_sessionmaker
from tinyfleet.store.models import Base

PATHS = ("timescaledb", "plain")

events_t = Base.metadata.tables["events"]
telemetry_t = Base.metadata.tables["telemetry"]
dead_letters_t = Base.metadata.tables["dead_letters"]
devices_t = Base.metadata.tables["devices"]
event_dedup_t = Base.metadata.tables["event_dedup"]


@pytest.fixture(params=PATHS)
def store_path(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def migrated_url(database_url: str, store_path: str) -> str:
    migrate.upgrade(database_url, use_timescaledb=store_path == "timescaledb")
    with psycopg.connect(database_url) as conn:
        meta: dict[str, str] = dict(conn.execute("SELECT key, value FROM tinyfleet_meta").fetchall())
    expected = "on" if store_path == "timescaledb" else "off"
    if meta["timescaledb"] != expected:
        pytest.fail(f"asked for the {store_path} path, got timescaledb={meta['timescaledb']} (is it installed?)")
    return database_url


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(migrated_url)
    yield eng
    await eng.dispose()


@pytest.fixture
async def session(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    async with create_sessionmaker(engine)() as s:
        yield s


def make_settings(url: str, **overrides: Any) -> Settings:
    """Settings for a test: no .env file, explicit database URL."""
    return Settings(_env_file=None, database_url=url, **overrides)


def event(device_id: str, boot: int, seq: int, time: datetime, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "device_id": device_id,
        "boot": boot,
        "seq": seq,
        "time": time,
        "received_at": fields.pop("received_at", time),
        "device_time": True,
        "model": "vib-cls",
        "mver": 4,
        "kind": 0,
        "label": 3,
        "score": 0.5,
        "anom": None,
        "lat_us": 2500,
    }
    row.update(fields)
    return row


async def insert(engine: AsyncEngine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    if rows:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(table), rows)


async def scalar(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(sa.text(sql), params)).scalar()


@pytest.fixture
def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
