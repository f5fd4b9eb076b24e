"""The device's non-volatile memory: the store-and-forward queue of encoded events, the boot counter, settings.

    with DeviceStore(state_dir / "device.db", max_events=100_000) as store:
        boot = store.next_boot()                       # persisted +1 at every start
        store.put(boot, seq, "cbor", payload)          # durable before it is published
        rows = store.pending(64, after_id=last_sent)   # oldest first
        store.ack([row.id for row in rows])            # after the broker's PUBACK

SQLite (stdlib) in WAL mode with ``synchronous=FULL``: a committed ``put`` survives a kill -9 and a power cut,
so an event is either on disk or was never produced. The queue is bounded: when it is full the **oldest**
events are dropped (the freshest data matters most after a long outage) and counted — ``dropped_since_boot``
goes into telemetry, ``dropped_total`` stays on disk. Events keep their ``(boot, seq)``, so a replay after a
restart is deduplicated by the service.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from .errors import StoreError

__all__ = ["DEFAULT_MAX_EVENTS", "DeviceStore", "StoredEvent"]

DEFAULT_MAX_EVENTS = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    fmt TEXT NOT NULL,
    payload BLOB NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class StoredEvent:
    id: int
    boot: int
    seq: int
    fmt: str
    payload: bytes


class DeviceStore:
    def __init__(self, path: Path, *, max_events: int = DEFAULT_MAX_EVENTS) -> None:
        if max_events < 1:
            raise StoreError("max_events must be at least 1")
        self.path = path
        self.max_events = max_events
        self.dropped_since_boot = 0
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the device store {self.path}: {exc}") from exc
        self._db = db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the device store is not open")
        return self._db

    def _tx(self, statements: Iterable[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        out: list[list[Any]] = []
        with self._lock:
            db = self._conn
            try:
                db.execute("BEGIN IMMEDIATE")
                for sql, args in statements:
                    out.append(db.execute(sql, args).fetchall())
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"device store: {exc}") from exc
        return out

    # ---------------------------------------------------------------------------------------------- meta
    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row is not None else default

    def set(self, key: str, value: Any) -> None:
        self._tx([("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                   (key, json.dumps(value)))])  # fmt: skip

    def next_boot(self) -> int:
        """Increment and return the persisted boot counter (1 at the first start). Resets the since-boot drops."""
        sel = "SELECT value FROM meta WHERE key = 'boot'"
        upsert = (
            "INSERT INTO meta(key, value) VALUES ('boot', '1') "
            "ON CONFLICT(key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)"
        )
        rows = self._tx([(upsert, ()), (sel, ())])
        self.dropped_since_boot = 0
        boot = int(json.loads(rows[1][0][0]))
        if boot > 0xFFFF_FFFF:
            raise StoreError("the boot counter is exhausted (uint32)")
        return boot

    @property
    def boot(self) -> int:
        return int(self.get("boot", 0))

    @property
    def dropped_total(self) -> int:
        return int(self.get("dropped_total", 0))

    # --------------------------------------------------------------------------------------------- queue
    def put(self, boot: int, seq: int, fmt: str, payload: bytes) -> int:
        """Store one encoded event durably; returns how many old events were dropped to make room."""
        with self._lock:
            db = self._conn
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO outbox(boot, seq, fmt, payload) VALUES (?, ?, ?, ?)", (boot, seq, fmt, payload))
                (count,) = db.execute("SELECT count(*) FROM outbox").fetchone()
                dropped = max(0, int(count) - self.max_events)
                if dropped:
                    db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (dropped,))
                    db.execute(
                        "INSERT INTO meta(key, value) VALUES ('dropped_total', ?) ON CONFLICT(key) DO UPDATE SET "
                        "value = CAST(CAST(value AS INTEGER) + ? AS TEXT)",
                        (str(dropped), dropped),
                    )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"device store: cannot store an event: {exc}") from exc
        self.dropped_since_boot += dropped
        return dropped

    def pending(self, limit: int, *, after_id: int = 0) -> list[StoredEvent]:
        """Up to ``limit`` stored events with ``id > after_id``, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, boot, seq, fmt, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [StoredEvent(int(r[0]), int(r[1]), int(r[2]), str(r[3]), bytes(r[4])) for r in rows]

    def ack(self, ids: Iterable[int]) -> None:
        """Forget delivered events."""
        batch = [(i,) for i in ids]
        if not batch:
            return
        with self._lock:
            db = self._conn
            try:
                db.execute("BEGIN IMMEDIATE")
                db.executemany("DELETE FROM outbox WHERE id = ?", batch)
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise StoreError(f"device store: cannot forget delivered events: {exc}") from exc

    def backlog(self) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT count(*) FROM outbox").fetchone()
        return int(n)
