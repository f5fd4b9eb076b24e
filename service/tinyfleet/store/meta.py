"""The `tinyfleet_meta` record: which storage path the migrations took, read back by maintenance and tests.

Keys (all values are text):

- ``timescaledb``: ``on`` when events/telemetry are hypertables, ``off`` for plain tables with BRIN indexes.
- ``timescaledb_version``, ``timescaledb_license``: what the extension reported (absent when ``off``).
- ``events_hourly``: ``continuous_aggregate`` (license ``timescale``) or ``materialized_view``.
- ``compression``: ``on`` when events/telemetry have Timescale compression policies, else ``off``.
- ``hypertables``: comma-separated hypertable names (empty when ``off``).
- ``timescaledb_created``: ``yes`` when the migration created the extension (its downgrade then drops it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection

KEY_TIMESCALEDB = "timescaledb"
KEY_TIMESCALEDB_VERSION = "timescaledb_version"
KEY_TIMESCALEDB_LICENSE = "timescaledb_license"
KEY_TIMESCALEDB_CREATED = "timescaledb_created"
KEY_EVENTS_HOURLY = "events_hourly"
KEY_COMPRESSION = "compression"
KEY_HYPERTABLES = "hypertables"

ROLLUP_CONTINUOUS = "continuous_aggregate"
ROLLUP_MATERIALIZED = "materialized_view"

_SELECT = text("SELECT key, value FROM tinyfleet_meta")


@dataclass(frozen=True, slots=True)
class StoreLayout:
    """How the store is laid out in one database (read from `tinyfleet_meta`)."""

    timescaledb: bool
    license: str | None
    version: str | None
    hypertables: frozenset[str]
    rollup: str
    compression: bool

    @classmethod
    def from_mapping(cls, values: dict[str, str]) -> StoreLayout:
        hypertables = values.get(KEY_HYPERTABLES, "")
        return cls(
            timescaledb=values.get(KEY_TIMESCALEDB) == "on",
            license=values.get(KEY_TIMESCALEDB_LICENSE),
            version=values.get(KEY_TIMESCALEDB_VERSION),
            hypertables=frozenset(name for name in hypertables.split(",") if name),
            rollup=values.get(KEY_EVENTS_HOURLY, ROLLUP_MATERIALIZED),
            compression=values.get(KEY_COMPRESSION) == "on",
        )

    def is_hypertable(self, table: str) -> bool:
        return table in self.hypertables


def _to_dict(rows: Any) -> dict[str, str]:
    return {str(key): str(value) for key, value in rows}


def read_meta_sync(conn: Connection) -> dict[str, str]:
    return _to_dict(conn.execute(_SELECT).all())


async def read_meta(conn: AsyncConnection) -> dict[str, str]:
    return _to_dict((await conn.execute(_SELECT)).all())


async def read_layout(conn: AsyncConnection) -> StoreLayout:
    """The layout recorded by the migrations. Raises if the database has not been migrated."""
    return StoreLayout.from_mapping(await read_meta(conn))
