"""Live updates for the web UI: a bounded fan-out of the ingest's commits to browser subscribers (SSE).

    feed = LiveFeed(max_queue=200)
    ingest.add_listener(feed.listener)                # before the ingest starts; runs on the writer thread
    async with feed.subscribe(device="press-07") as sub:
        async for message in sub:                     # {"type": "events", ...} or {"type": "reload"}
            ...

The ingest never waits for a browser: the listener only hands the committed rows to the event loop
(``call_soon_threadsafe``), and each subscriber has a bounded queue. A subscriber that falls behind (a slow
tablet on Wi-Fi, a tab in the background) loses its queue and gets one ``reload`` hint instead: the page then
re-reads the current state from the API. Nothing is lost for the database; the live view is a convenience.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

#: Positions in the ingest's event rows (tinyfleet.ingest.writer.EVENT_STAGING_COLUMNS).
_DEVICE, _BOOT, _SEQ, _TS, _RECV, _MODEL, _MVER, _KIND, _LABEL, _SCORE, _ANOM = range(11)
_LAT = 13
#: Events per message to a subscriber of the whole fleet (it shows counts; a device page gets them all).
FLEET_SAMPLE = 20
DEVICE_MAX = 500


def _num(value: Any) -> float | None:
    if value is None:
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def event_view(row: Sequence[Any]) -> dict[str, Any]:
    """The few fields a page shows, from one committed event row."""
    ts = row[_TS] if row[_TS] is not None else row[_RECV]
    return {
        "device_id": row[_DEVICE],
        "time_ms": ts,
        "model": row[_MODEL],
        "mver": row[_MVER],
        "kind": row[_KIND],
        "label": row[_LABEL],
        "score": _num(row[_SCORE]),
        "anom": _num(row[_ANOM]),
        "lat_us": row[_LAT] if len(row) > _LAT else None,
    }


@dataclass(eq=False)
class Subscriber:
    device: str | None
    queue: asyncio.Queue[dict[str, Any] | None]
    overflowed: bool = False
    sent: int = 0

    def offer(self, message: dict[str, Any]) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            # Drop what it has not read and tell it to re-read the state instead.
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait({"type": "reload", "reason": "behind"})
            self.overflowed = True

    def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            message = await self.queue.get()
            if message is None:
                return
            if message.get("type") == "reload":
                self.overflowed = False
            self.sent += 1
            yield message


@dataclass
class LiveStats:
    batches: int = 0
    events: int = 0
    overflows: int = 0
    started: float = field(default_factory=time.monotonic)


class LiveFeed:
    """Fan-out of committed events to at most `max_subscribers` browsers, each with `max_queue` messages."""

    def __init__(self, *, max_queue: int = 200, max_subscribers: int = 200) -> None:
        self.max_queue = max_queue
        self.max_subscribers = max_subscribers
        self._subscribers: set[Subscriber] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.stats = LiveStats()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def bind(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """The loop the subscribers live on (the HTTP server's); taken at the first subscription otherwise."""
        self._loop = loop or asyncio.get_running_loop()

    # ---------------------------------------------------------------------------------- ingest side (thread)
    def listener(self, rows: Sequence[Sequence[Any]], result: Any = None) -> None:
        """The ingest's commit listener: never blocks, never raises into the ingest."""
        loop = self._loop
        if loop is None or not rows or not self._subscribers:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the service is stopping
            loop.call_soon_threadsafe(self._publish, list(rows))

    # ------------------------------------------------------------------------------------ loop side
    def _publish(self, rows: list[Sequence[Any]]) -> None:
        self.stats.batches += 1
        self.stats.events += len(rows)
        if not self._subscribers:
            return
        now_ms = int(time.time() * 1000)
        per_device: dict[str, list[Sequence[Any]]] = {}
        for row in rows:
            per_device.setdefault(str(row[_DEVICE]), []).append(row)
        fleet_message: dict[str, Any] | None = None
        for sub in list(self._subscribers):
            if sub.device is None:
                if fleet_message is None:
                    fleet_message = {
                        "type": "events",
                        "at_ms": now_ms,
                        "count": len(rows),
                        "devices": {d: len(r) for d, r in per_device.items()},
                        "events": [event_view(r) for r in rows[-FLEET_SAMPLE:]],
                    }
                was = sub.overflowed
                sub.offer(fleet_message)
            else:
                mine = per_device.get(sub.device)
                if not mine:
                    continue
                was = sub.overflowed
                sub.offer({
                    "type": "events",
                    "at_ms": now_ms,
                    "count": len(mine),
                    "devices": {sub.device: len(mine)},
                    "events": [event_view(r) for r in mine[-DEVICE_MAX:]],
                })  # fmt: skip
            if sub.overflowed and not was:
                self.stats.overflows += 1

    @asynccontextmanager
    async def subscribe(self, device: str | None = None) -> AsyncIterator[Subscriber]:
        if self._closed:
            raise LiveFeedClosed("the service is stopping")
        if len(self._subscribers) >= self.max_subscribers:
            raise LiveFeedFull(f"{self.max_subscribers} live views are open already")
        if self._loop is None:
            self.bind()
        sub = Subscriber(device, asyncio.Queue(self.max_queue + 1))  # +1: room for the reload hint
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every subscription (at shutdown, so the HTTP server need not wait for the streams)."""
        self._closed = True
        for sub in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                sub.queue.put_nowait(None)
            if sub.queue.full():
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)


class LiveFeedError(RuntimeError):
    pass


class LiveFeedClosed(LiveFeedError):
    pass


class LiveFeedFull(LiveFeedError):
    pass
