"""Shared fixtures: real services only. A service that is not reachable fails the test loudly, never skips it."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest

PG_ADMIN_URL = os.environ.get("TINYFLEET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MQTT_HOST = os.environ.get("TINYFLEET_TEST_MQTT_HOST", "127.0.0.1")
MQTT_PORT = int(os.environ.get("TINYFLEET_TEST_MQTT_PORT", "1883"))


def _with_db(url: str, dbname: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{dbname}"


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=5) as conn:
            conn.execute("select 1")
    except psycopg.OperationalError as exc:  # pragma: no cover - environment failure
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}", pytrace=False)
    return PG_ADMIN_URL


@pytest.fixture(scope="session")
def make_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    """Create fresh, uniquely named databases for this run; drop them all at the end."""
    created: list[str] = []

    def make() -> str:
        name = f"tftest_{os.getpid()}_{secrets.token_hex(4)}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        created.append(name)
        return _with_db(pg_admin_url, name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def database_url(make_database: Callable[[], str]) -> str:
    """An empty database of its own for one test (postgresql:// URL)."""
    return make_database()
