"""Engine, sessions and the Database lifecycle."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tinyfleet.store import migrate
from tinyfleet.store.db import Database, create_engine, session_scope, sqlalchemy_url
from tinyfleet.store.models import Device

from .conftest import make_settings


def test_sqlalchemy_url_accepts_settings_and_urls() -> None:
    assert sqlalchemy_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert sqlalchemy_url(make_settings("postgresql://u@h/db")) == "postgresql+psycopg://u@h/db"


async def test_database_sessions_commit_and_roll_back(database_url: str) -> None:
    migrate.upgrade(database_url, use_timescaledb=False)
    async with Database(make_settings(database_url)) as db:
        await db.ping()
        async with db.session() as session:
            session.add(Device(id="kept"))

        async def fail_after_flush() -> None:
            async with db.session() as session:
                session.add(Device(id="rolled-back"))
                await session.flush()
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            await fail_after_flush()

        dependency = db.session_dependency()
        session = await anext(dependency)
        session.add(Device(id="via-dependency"))
        with pytest.raises(StopAsyncIteration):
            await anext(dependency)

        async with session_scope(db.sessionmaker) as session:
            ids = (await session.execute(sa.select(Device.id).order_by(Device.id))).scalars().all()
            assert ids == ["kept", "via-dependency"]
            tz = (await session.execute(sa.text("SHOW TimeZone"))).scalar()
            assert tz == "UTC"
        assert db.engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_ping_fails_loudly_when_unreachable() -> None:
    async with Database("postgresql://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2}) as db:
        with pytest.raises(sa.exc.OperationalError):
            await db.ping()
    engine = create_engine("postgresql://postgres@127.0.0.1:1/nothing", connect_args={"connect_timeout": 2})
    assert engine.url.drivername == "postgresql+psycopg"
    await engine.dispose()
