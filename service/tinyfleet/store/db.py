"""Async engine and sessions (SQLAlchemy 2 + psycopg 3).

    async with Database(settings) as db:
        async with db.session() as session:      # commits on success, rolls back on error
            ...

For FastAPI, `Database.session_dependency` is an async generator usable with `Depends`.
Every connection runs with ``TimeZone=UTC`` so time arithmetic in SQL never depends on the server's zone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Self

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.ext.asyncio import (
    create_async_engine as _create_async_engine,
)

from tinyfleet.config import Settings, to_sqlalchemy_url

SettingsOrUrl = Settings | str

#: libpq options sent with every connection.
CONNECT_OPTIONS = "-c TimeZone=UTC"


def sqlalchemy_url(settings_or_url: SettingsOrUrl) -> str:
    """`postgresql+psycopg://…` from Settings or any postgres URL (postgresql://, postgres://, +driver)."""
    if isinstance(settings_or_url, Settings):
        return settings_or_url.sqlalchemy_url
    return to_sqlalchemy_url(settings_or_url, driver="psycopg")


def create_engine(settings_or_url: SettingsOrUrl, **engine_kw: Any) -> AsyncEngine:
    """An async engine on psycopg 3. Keyword arguments go to SQLAlchemy (pool_size, echo, …)."""
    connect_args: dict[str, Any] = dict(engine_kw.pop("connect_args", {}))
    connect_args.setdefault("options", CONNECT_OPTIONS)
    engine_kw.setdefault("pool_pre_ping", True)
    return _create_async_engine(sqlalchemy_url(settings_or_url), connect_args=connect_args, **engine_kw)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded attributes after commit (objects are handed to the API layer)."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def session_scope(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block ends normally, roll back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        else:
            await session.commit()


class Database:
    """Engine + sessionmaker with an `async with` lifecycle that disposes the engine's pool at the end."""

    def __init__(self, settings_or_url: SettingsOrUrl, **engine_kw: Any) -> None:
        self.engine: AsyncEngine = create_engine(settings_or_url, **engine_kw)
        self.sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(self.engine)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.dispose()

    async def dispose(self) -> None:
        await self.engine.dispose()

    def session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """`async with db.session() as s:` — commit on success, rollback on error."""
        return session_scope(self.sessionmaker)

    async def session_dependency(self) -> AsyncIterator[AsyncSession]:
        """FastAPI-style dependency: `Depends(db.session_dependency)`."""
        async with session_scope(self.sessionmaker) as session:
            yield session

    async def ping(self) -> None:
        """Raise if the database cannot be reached."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
