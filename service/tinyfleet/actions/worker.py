"""The outbox worker: deliver pending outbox rows, retry with backoff, give up after N attempts.

    async with OutboxWorker(settings) as worker:    # claiming loops + a LISTEN for new rows
        ...                                          # runs until the block ends

Each claiming loop takes up to `actions_batch_size` due rows with ``SELECT … FOR UPDATE SKIP LOCKED``,
delivers them concurrently and records the outcome in the same transaction, so several loops and several
worker processes never deliver the same row at once. A worker killed mid-delivery releases its row locks with
its connection; the rows are still pending and the next worker delivers them again with the same idempotency
key (delivery is at least once; receivers drop repeats by that key).

Failures reschedule with exponential backoff and jitter: ``min(cap, base * factor**(attempts-1))`` scaled by
a random factor in [0.5, 1]. After `actions_max_attempts` the row is ``dead`` with its last error, and an
``action_dead`` event is appended to the alert's history (``action_delivered`` on success).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tinyfleet.actions.senders import Delivery, DeliveryError, Senders
from tinyfleet.alerts import OUTBOX_CHANNEL
from tinyfleet.config import Settings
from tinyfleet.store.db import Database
from tinyfleet.store.models import AlertEvent, Base, Outbox

log = logging.getLogger("tinyfleet.actions")

outbox_t = Base.metadata.tables[Outbox.__tablename__]
alert_events_t = Base.metadata.tables[AlertEvent.__tablename__]

SendFn = Callable[[Delivery], Any]


def backoff_delay(
    attempts: int, base: float, factor: float, cap: float, rand: Callable[[], float] = random.random
) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1-based), with "equal jitter"."""
    exponent = max(0, attempts - 1)
    try:
        delay = min(cap, base * factor**exponent)
    except OverflowError:
        delay = cap
    return delay * (0.5 + 0.5 * rand())


class OutboxWorker:
    """Delivers the outbox. Safe to run several (in one process or many) against the same database."""

    def __init__(
        self,
        settings: Settings,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        senders: Senders | None = None,
        name: str = "outbox-worker",
        listen: bool = True,
    ) -> None:
        self.settings = settings
        self.name = name
        self._db: Database | None = None
        if sessionmaker is None:
            self._db = Database(settings, pool_size=settings.actions_concurrency + 1)
            sessionmaker = self._db.sessionmaker
        self._sessionmaker = sessionmaker
        self._own_senders = senders is None
        self.senders = senders or Senders(settings)
        self._listen = listen
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.delivered = 0
        self.failed_attempts = 0
        self.dead = 0

    # ---------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def start(self) -> None:
        if self._tasks:
            raise RuntimeError("worker already started")
        self._stopping.clear()
        for i in range(self.settings.actions_concurrency):
            self._tasks.append(asyncio.create_task(self._claim_loop(), name=f"{self.name}-claim-{i}"))
        if self._listen:
            self._tasks.append(asyncio.create_task(self._listen_loop(), name=f"{self.name}-listen"))

    async def stop(self) -> None:
        """Finish the batches in hand, then stop; closes what the worker opened."""
        self._stopping.set()
        self._wake.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            if task.get_name().endswith("-listen"):
                task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_senders:
            await self.senders.aclose()
        if self._db is not None:
            await self._db.dispose()

    def wake(self) -> None:
        """Look for due rows now (instead of at the next poll)."""
        self._wake.set()

    # ---------------------------------------------------------------------------------------- loops
    async def _claim_loop(self) -> None:
        poll = self.settings.actions_poll_interval_s
        while not self._stopping.is_set():
            try:
                claimed = await self.run_once()
            except (sa.exc.DBAPIError, OSError) as exc:
                log.warning("%s: outbox claim failed (retrying): %s", self.name, exc)
                claimed = 0
            except Exception:  # a loop must not die: the rows stay pending and are tried again
                log.exception("%s: unexpected error in the outbox loop (retrying)", self.name)
                claimed = 0
            if claimed:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), poll)
            self._wake.clear()

    async def _listen_loop(self) -> None:
        """LISTEN for the NOTIFY of transactions that write outbox rows; polling covers any gap."""
        while not self._stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(self.settings.libpq_url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {OUTBOX_CHANNEL}")
                    self._wake.set()
                    async for _notify in conn.notifies():
                        self._wake.set()
            except psycopg.Error as exc:
                log.info("%s: LISTEN connection lost (polling meanwhile): %s", self.name, exc)
                await asyncio.sleep(self.settings.actions_poll_interval_s)

    # ---------------------------------------------------------------------------------------- one batch
    async def run_once(self) -> int:
        """Claim one batch of due rows, deliver them and record the outcomes. Returns how many were claimed."""
        s = self.settings
        t = outbox_t.c
        async with self._sessionmaker() as session, session.begin():
            query = (
                sa.select(t.id, t.alert_id, t.kind, t.target, t.payload, t.idempotency_key, t.attempts)
                .where(t.state == "pending", t.next_attempt_at <= sa.func.now())
                .order_by(t.next_attempt_at, t.id)
                .limit(s.actions_batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = (await session.execute(query)).all()
            if not rows:
                return 0
            deliveries = [
                Delivery(r.id, r.kind, r.target, r.payload, r.idempotency_key, attempt=r.attempts + 1) for r in rows
            ]
            errors = await asyncio.gather(*(self._attempt(d) for d in deliveries))
            now = datetime.now(UTC)
            for row, delivery, error in zip(rows, deliveries, errors, strict=True):
                await self._record(session, row, delivery, error, now)
        return len(rows)

    async def _attempt(self, delivery: Delivery) -> str | None:
        """Deliver once; the error text, or None when delivered."""
        try:
            async with asyncio.timeout(self.settings.actions_timeout_s * 2):
                await self.senders.send(delivery)
        except DeliveryError as exc:
            return str(exc)
        except TimeoutError:
            return f"timed out after {self.settings.actions_timeout_s * 2:g}s"
        except Exception as exc:
            log.exception("%s: sender %s raised unexpectedly", self.name, delivery.kind)
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _record(
        self, session: AsyncSession, row: Any, delivery: Delivery, error: str | None, now: datetime
    ) -> None:
        s = self.settings
        t = outbox_t.c
        attempts = delivery.attempt
        detail = {
            "outbox_id": row.id,
            "action": row.kind,
            "target": row.target,
            "idempotency_key": row.idempotency_key,
            "attempts": attempts,
        }
        if error is None:
            values: dict[str, Any] = {"state": "delivered", "attempts": attempts, "delivered_at": now}
            event: dict[str, Any] | None = {"kind": "action_delivered", "detail": detail}
            self.delivered += 1
            log.info("%s: delivered %s %s (%s)", self.name, row.kind, row.target, row.idempotency_key)
        elif attempts >= s.actions_max_attempts:
            values = {"state": "dead", "attempts": attempts, "last_error": error}
            event = {"kind": "action_dead", "detail": {**detail, "error": error}}
            self.dead += 1
            log.error("%s: %s %s dead after %d attempts: %s", self.name, row.kind, row.target, attempts, error)
        else:
            delay = backoff_delay(attempts, s.actions_backoff_base_s, s.actions_backoff_factor, s.actions_backoff_cap_s)
            values = {"attempts": attempts, "last_error": error, "next_attempt_at": now + timedelta(seconds=delay)}
            event = None
            self.failed_attempts += 1
            log.warning(
                "%s: %s %s attempt %d failed, retry in %.2fs: %s",
                self.name,
                row.kind,
                row.target,
                attempts,
                delay,
                error,
            )
        await session.execute(sa.update(outbox_t).where(t.id == row.id).values(**values))
        if event is not None:
            await session.execute(sa.insert(alert_events_t).values(alert_id=row.alert_id, at=now, **event))
