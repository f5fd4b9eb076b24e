"""The bounded hand-over between the MQTT network thread and the database writer.

The network thread `put`s raw messages; the writer `take`s a batch that closed on size or on a deadline
counted from its first message. Every message stays *pending* until the writer calls `release` after the
batch is committed and acknowledged, and `put` blocks while `max_pending` messages are pending: blocking
the network thread stops reading the socket, which pushes back on the broker (whose in-flight limit cannot
be relied on: Mosquitto 2.0 stops enforcing it once acknowledgements flow).
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple


class Incoming(NamedTuple):
    """One MQTT message as received, before decoding."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int
    received_ms: int
    retained: bool = False


class Batcher:
    def __init__(self, *, max_events: int, max_delay_s: float, max_pending: int) -> None:
        if max_pending < max_events:
            raise ValueError("max_pending must be at least max_events")
        self._max_events = max_events
        self._max_delay_s = max_delay_s
        self._max_pending = max_pending
        self._cond = threading.Condition(threading.Lock())
        self._items: list[Incoming] = []
        self._first_at = 0.0
        self._pending = 0
        self._closed = False
        self._flush_now = False

    @property
    def pending(self) -> int:
        return self._pending

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, item: Incoming) -> bool:
        """Add one message; block while the pending bound is reached. False when closed (not taken)."""
        with self._cond:
            while self._pending >= self._max_pending and not self._closed:
                self._cond.wait(0.5)
            if self._closed:
                return False
            items = self._items
            items.append(item)
            self._pending += 1
            n = len(items)
            if n == 1:
                self._first_at = time.monotonic()
                self._cond.notify_all()
            elif n >= self._max_events:
                self._cond.notify_all()
            return True

    def take(self, timeout: float | None = None) -> list[Incoming]:
        """The next batch, once it is full or its deadline passed; [] on timeout or when closed and empty."""
        give_up = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                if self._closed:
                    return []
                remaining = None if give_up is None else give_up - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return []
                self._cond.wait(remaining)
            deadline = self._first_at + self._max_delay_s
            while len(self._items) < self._max_events and not (self._closed or self._flush_now):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch = self._items[: self._max_events]
            del self._items[: self._max_events]
            if self._items:
                self._first_at = time.monotonic()
            self._flush_now = False
            return batch

    def release(self, count: int) -> None:
        """`count` messages were committed and acknowledged (or given up): room for more."""
        with self._cond:
            self._pending -= count
            self._cond.notify_all()

    def flush(self) -> None:
        """Close the current batch now instead of at its deadline."""
        with self._cond:
            self._flush_now = True
            self._cond.notify_all()

    def close(self) -> None:
        """Take no more messages; what is queued can still be taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
