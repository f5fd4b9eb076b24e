"""The UI's live feed: a bounded fan-out of committed rows that never blocks the ingest's thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tinyfleet.web.live import LiveFeed, LiveFeedClosed, LiveFeedFull


def _row(device: str, seq: int, anom: float | None = None) -> tuple[Any, ...]:
    # EVENT_STAGING_COLUMNS: device_id, boot, seq, ts_ms, recv_ms, model, mver, kind, label, score, anom, val,
    # top, lat_us, extras
    return (device, 1, seq, None, 1_765_000_000_000 + seq, "m", 1, 0, 2, 0.9, anom, None, None, 2500, None)


async def _next(sub: Any) -> dict[str, Any]:
    return await asyncio.wait_for(anext(aiter(sub)), 2)


async def test_device_and_fleet_subscribers_get_what_is_theirs_from_the_writer_thread() -> None:
    feed = LiveFeed(max_queue=10)
    feed.bind()
    async with feed.subscribe() as fleet, feed.subscribe("a") as dev_a, feed.subscribe("b") as dev_b:
        rows = [_row("a", 1), _row("a", 2, anom=float("nan")), _row("c", 3)]
        t = threading.Thread(target=feed.listener, args=(rows, None))  # as the ingest's writer thread calls it
        t.start()
        t.join()
        m = await _next(fleet)
        assert m["type"] == "events"
        assert m["count"] == 3
        assert m["devices"] == {"a": 2, "c": 1}
        a = await _next(dev_a)
        assert [e["device_id"] for e in a["events"]] == ["a", "a"]
        assert a["events"][0]["time_ms"] == 1_765_000_000_001  # no device clock: receipt time
        assert a["events"][1]["anom"] is None  # NaN never reaches JSON
        assert a["events"][0]["lat_us"] == 2500
        assert dev_b.queue.empty()  # nothing for b
    assert feed.subscribers == 0


async def test_a_subscriber_that_falls_behind_gets_one_reload_hint_and_nobody_waits() -> None:
    feed = LiveFeed(max_queue=3)
    feed.bind()
    async with feed.subscribe() as slow:
        for i in range(50):
            feed.listener([_row("a", i)])
        await asyncio.sleep(0.05)  # let the loop run the queued publishes
        assert feed.stats.batches == 50
        assert slow.queue.qsize() == 1
        assert (await _next(slow))["type"] == "reload"
        assert feed.stats.overflows == 1
        feed.listener([_row("a", 99)])  # after the reload it is live again
        await asyncio.sleep(0.05)
        assert (await _next(slow))["count"] == 1


async def test_limits_and_close() -> None:
    feed = LiveFeed(max_queue=2, max_subscribers=1)
    async with feed.subscribe() as sub:
        with pytest.raises(LiveFeedFull):
            async with feed.subscribe():
                pass
        feed.close()
        assert [m async for m in sub] == []  # the stream ends
    with pytest.raises(LiveFeedClosed):
        async with feed.subscribe():
            pass
    feed.listener([_row("a", 1)])  # no subscribers: nothing happens, nothing raises
