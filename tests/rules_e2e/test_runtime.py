"""RulesRuntime against the real database: ingest-shaped rows from another thread → alert + outbox rows;
restart without double-firing; reload keeps the old set when the new one is invalid."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.actions.conftest import eventually, make_settings
from tests.rules_e2e.conftest import rule_file
from tinyfleet import alerts
from tinyfleet.rules.runtime import RulesRuntime
from tinyfleet.store.db import Database


def row(device: str, *, label: int = 1, score: float = 0.9, recv_ms: int | None = None) -> tuple[Any, ...]:
    now = recv_ms if recv_ms is not None else int(time.time() * 1000)
    return (device, 1, 1, now, now, "vib-cls", 1, 0, label, score, None, None, None, 1200, None)


def from_thread(fn: Callable[[], None]) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join()


async def test_rows_open_one_alert_with_its_outbox_row_and_restart_does_not_refire(
    migrated_url: str, db: Database, rules_dir: Path
) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9"))
    settings = make_settings(migrated_url, rules_dir=rules_dir)
    async with RulesRuntime(settings, db) as rt:
        assert [r["id"] for r in rt.status()["rules"]] == ["bearing-burst"]
        from_thread(lambda: rt.listener([row("p1"), row("p1", label=0)], None))
        from_thread(lambda: rt.listener([row("p1"), row("p1")], None))

        async def opened() -> bool:
            async with db.sessionmaker() as s:
                return len(await alerts.active_alerts(s)) == 1

        await eventually(opened)
        assert rt.status()["rules"][0]["last_firing"]["kind"] == "open"
    async with db.sessionmaker() as s:
        (alert,) = await alerts.active_alerts(s)
        outbox = (await alerts.list_outbox(s, alert_id=alert.id)).items
    assert (alert.rule_id, alert.group_key, alert.state) == ("bearing-burst", "p1", "open")
    assert [o.kind for o in outbox] == ["webhook"]

    # a restart knows the alert is open: three more faults do not open a second one (nor a second outbox row)
    async with RulesRuntime(settings, db) as rt:
        from_thread(lambda: rt.listener([row("p1"), row("p1"), row("p1"), row("p2")], None))
        await eventually(lambda: rt._queue.empty())
        await rt.stop()
        assert rt.applied == 0
    async with db.sessionmaker() as s:
        assert [a.id for a in await alerts.active_alerts(s)] == [alert.id]
        assert len((await alerts.list_outbox(s)).items) == 1


async def test_reload_refuses_a_bad_set_and_keeps_the_old_one(migrated_url: str, db: Database, rules_dir: Path) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9"))
    # the file watcher is off here: this test drives reload() itself
    async with RulesRuntime(make_settings(migrated_url, rules_dir=rules_dir, rules_watch=False), db) as rt:
        (rules_dir / "bad.yml").write_text(
            "- id: broken\n  match: {model: vib-cls}\n  window: {count: 0, within: -1m}\n"
        )
        issues = await rt.reload()
        assert issues
        assert all(i.file.endswith("bad.yml") and i.line >= 1 and i.column >= 1 for i in issues)
        status = rt.status()
        assert [r["id"] for r in status["rules"]] == ["bearing-burst"]
        assert status["errors"][0]["location"].startswith(str(rules_dir / "bad.yml"))
        (rules_dir / "bad.yml").unlink()
        assert await rt.reload() == []
        assert rt.status()["errors"] == []


async def test_rule_files_reload_when_they_change(migrated_url: str, db: Database, rules_dir: Path) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9"))
    async with RulesRuntime(make_settings(migrated_url, rules_dir=rules_dir), db) as rt:
        assert [r["id"] for r in rt.status()["rules"]] == ["bearing-burst"]
        await asyncio.sleep(0.5)  # the watcher has set up its inotify watch
        (rules_dir / "bad.yml").write_text("- id: broken\n  match: {model: vib-cls}\n  window: {count: 0}\n")
        await eventually_async(lambda: bool(rt.status()["errors"]))
        assert [r["id"] for r in rt.status()["rules"]] == ["bearing-burst"]  # refused: the old set runs on
        (rules_dir / "bad.yml").unlink()
        second = rule_file("http://127.0.0.1:9").replace("bearing-burst", "bearing-burst-2")
        (rules_dir / "r2.yml").write_text(second)
        await eventually_async(lambda: len(rt.status()["rules"]) == 2 and not rt.status()["errors"])
        assert sorted(r["id"] for r in rt.status()["rules"]) == ["bearing-burst", "bearing-burst-2"]


async def eventually_async(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - polls state that the runtime's own tasks change
            await asyncio.sleep(0.05)


async def test_a_full_queue_drops_and_counts_batches_without_blocking_the_caller(
    migrated_url: str, db: Database, rules_dir: Path
) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9"))
    async with RulesRuntime(make_settings(migrated_url, rules_dir=rules_dir), db, queue_size=1) as rt:
        async with rt._lock:  # the five hand-overs run back to back: one queued, four dropped
            started = time.monotonic()
            for _ in range(5):
                from_thread(lambda: rt.listener([row("p9", label=0)], None))
            assert time.monotonic() - started < 1.0
            await eventually(lambda: rt.dropped_batches == 4)
        assert rt.status()["dropped_batches"] == 4
