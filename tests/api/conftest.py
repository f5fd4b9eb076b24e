"""Fixtures for the API tests: a migrated database, rows inserted directly, the app without ingest."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from tinyfleet.api import create_app
from tinyfleet.config import Settings
from tinyfleet.store.migrate import upgrade

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def api_settings(database_url: str, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": database_url,
        "topic_prefix": f"t{secrets.token_hex(4)}/v1",
        "mqtt_client_id": f"test-api-{secrets.token_hex(4)}",
    }
    base.update(kw)
    return Settings(_env_file=None, **base)


@pytest.fixture
def migrated_db(database_url: str) -> str:
    upgrade(database_url)
    return database_url


class Seeder:
    """Inserts known rows straight into the tables (the API only reads)."""

    def __init__(self, url: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True, options="-c TimeZone=UTC")

    def close(self) -> None:
        self.conn.close()

    def device(self, device_id: str, *, online: bool = True, model: str | None = "vib-cls", **kw: Any) -> None:
        self.conn.execute(
            "INSERT INTO devices (id, online, model, mver, firmware, last_seen, tags) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                device_id, online, model, kw.get("mver", 4), kw.get("firmware", "1.0.0"),
                kw.get("last_seen", T0), Jsonb(kw.get("tags", {})),
            ),
        )  # fmt: skip

    def event(
        self,
        device_id: str,
        seq: int,
        time: datetime,
        *,
        boot: int = 1,
        model: str = "vib-cls",
        kind: int = 0,
        label: int | None = 0,
        score: float | None = 0.5,
        anom: float | None = None,
    ) -> None:
        self.events([(device_id, boot, seq, time, model, kind, label, score, anom)])

    def events(self, rows: Sequence[tuple[Any, ...]]) -> None:
        """Rows of (device_id, boot, seq, time, model, kind, label, score, anom)."""
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO events (device_id, boot, seq, time, received_at, device_time, model, mver, "
                "kind, label, score, anom) VALUES (%s, %s, %s, %s, %s, true, %s, 4, %s, %s, %s, %s)",
                [(d, b, s, t, t, m, k, lab, sc, an) for (d, b, s, t, m, k, lab, sc, an) in rows],
            )

    def dead_letter(self, *, topic: str, device_id: str | None, payload: bytes, code: str, detail: str) -> None:
        self.conn.execute(
            "INSERT INTO dead_letters (topic, device_id, payload, code, detail) VALUES (%s, %s, %s, %s, %s)",
            (topic, device_id, payload, code, detail),
        )


@pytest.fixture
def seed(migrated_db: str) -> Iterator[Seeder]:
    seeder = Seeder(migrated_db)
    yield seeder
    seeder.close()


@pytest.fixture
def settings(migrated_db: str) -> Settings:
    return api_settings(migrated_db)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, ingest=None)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c,
    ):
        yield c


@pytest.fixture
def make_client() -> Callable[[FastAPI], Any]:
    """For tests that build their own app (other settings, an ingest worker)."""

    def make(app: FastAPI) -> Any:
        class _Ctx:
            async def __aenter__(self) -> httpx.AsyncClient:
                self._life = app.router.lifespan_context(app)
                await self._life.__aenter__()
                self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
                return self._client

            async def __aexit__(self, *exc: object) -> None:
                await self._client.aclose()
                await self._life.__aexit__(None, None, None)

        return _Ctx()

    return make


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# ------------------------------------------------------------------------------------------- API keys
def make_api_key(url: str, *scopes: str, name: str = "test") -> str:
    """A real key in the api_keys table (as `tinyfleet api-keys create` makes it); returns the token."""
    import asyncio

    from tinyfleet.fleet.api_keys import create_key
    from tinyfleet.store.db import Database

    async def create() -> str:
        async with Database(url, pool_size=1, max_overflow=0) as db, db.session() as session:
            return (await create_key(session, name, scopes, created_by="test")).token

    return asyncio.run(create())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def keys(migrated_db: str) -> dict[str, str]:
    """One token per scope: read, write, admin, device-provisioning."""
    return {s: make_api_key(migrated_db, s, name=f"{s} key") for s in ("read", "write", "admin", "device-provisioning")}
