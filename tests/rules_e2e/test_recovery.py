"""The rules' state across restarts and overloads, against the real database: checkpoints and the replay of
committed events (windows survive, nothing fires twice), the catch-up after a full queue, device tags."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.actions.conftest import eventually, make_settings
from tests.rules_e2e.conftest import rule_file
from tests.rules_e2e.test_runtime import from_thread
from tests.support.instances import PostgresInstance
from tinyfleet import alerts
from tinyfleet.config import Settings
from tinyfleet.ingest.writer import BatchWriter, PreparedBatch
from tinyfleet.rules.runtime import RulesRuntime
from tinyfleet.store import migrate
from tinyfleet.store.db import Database

Row = tuple[Any, ...]


class Stream:
    """Fault events of one device as the ingest commits them: stored in `events` with the real writer."""

    def __init__(self, url: str, device: str = "p1") -> None:
        self.url = url
        self.device = device
        self.seq = 0

    def rows(self, n: int, *, label: int = 1, recv_ms: int | None = None) -> list[Row]:
        out = []
        for _ in range(n):
            self.seq += 1
            t = recv_ms if recv_ms is not None else int(time.time() * 1000)
            out.append((self.device, 1, self.seq, t, t, "vib-cls", 1, 0, label, 0.93, None, None, None, 900, None))
        return out

    def commit(self, rows: list[Row]) -> list[Row]:
        writer = BatchWriter(self.url)
        try:
            writer.write(PreparedBatch(event_rows=rows, event_sources=[("t", b"", None)] * len(rows)))
        finally:
            writer.close()
        return rows


def settings_for(url: str, rules_dir: Path, **kw: Any) -> Settings:
    return make_settings(url, rules_dir=rules_dir, rules_watch=False, **kw)


async def feed(rt: RulesRuntime, rows: list[Row]) -> None:
    before = rt.events_fed
    from_thread(lambda: rt.listener(rows, None))
    await eventually(
        lambda: rt.events_fed >= before + len(rows)
        and rt._queue.empty()
        and not rt._lock.locked()
        and rt._written == rt._queued  # the transitions are in the database
    )


async def alert_rows(db: Database) -> list[alerts.AlertRecord]:
    async with db.sessionmaker() as s:
        return (await alerts.list_alerts(s, limit=100)).items


async def outbox_count(db: Database) -> int:
    async with db.sessionmaker() as s:
        return len((await alerts.list_outbox(s, limit=100)).items)


async def one_fault_then_stop(url: str, db: Database, rules_dir: Path) -> tuple[Settings, Stream]:
    """Rules "3 faults within 1 m" and a runtime that saw one fault and stopped (its checkpoint saved)."""
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9", count=3, within="1m"))
    settings = settings_for(url, rules_dir)
    stream = Stream(url)
    async with RulesRuntime(settings, db) as rt:
        await feed(rt, stream.commit(stream.rows(1)))
    return settings, stream


async def test_windows_survive_a_restart(migrated_url: str, db: Database, rules_dir: Path) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9", count=3, within="1m"))
    settings = settings_for(migrated_url, rules_dir)
    stream = Stream(migrated_url)
    async with RulesRuntime(settings, db) as rt:
        await feed(rt, stream.commit(stream.rows(2)))
    assert await alert_rows(db) == []
    assert rt.checkpoint_bytes > 0
    async with RulesRuntime(settings, db) as rt:
        assert rt.recovered_events == 0  # everything committed had been fed before the checkpoint
        await feed(rt, stream.commit(stream.rows(1)))  # the third fault within the minute
        await eventually(lambda: rt.applied == 1)
    (alert,) = await alert_rows(db)
    assert (alert.rule_id, alert.group_key, alert.state) == ("bearing-burst", "p1", "open")
    assert alert.evidence is not None
    assert [w["count"] for w in alert.evidence.values()] == [3]  # two faults from before the restart + this one


async def test_events_committed_but_never_evaluated_are_replayed_at_start(
    migrated_url: str, db: Database, rules_dir: Path
) -> None:
    settings, stream = await one_fault_then_stop(migrated_url, db, rules_dir)
    stream.commit(stream.rows(2))  # committed by the ingest, then the process died before the rules saw them
    async with RulesRuntime(settings, db) as rt:
        assert rt.recovered_events == 2
        assert rt.applied == 1  # the replay opened the alert the crash had kept from opening
        assert rt.status()["events_fed"] == 3
    (alert,) = await alert_rows(db)
    assert alert.state == "open"
    assert await outbox_count(db) == 1


async def test_a_crash_after_the_alert_and_before_the_checkpoint_does_not_fire_again(
    migrated_url: str, db: Database, rules_dir: Path
) -> None:
    settings, stream = await one_fault_then_stop(migrated_url, db, rules_dir)
    with psycopg.connect(migrated_url) as conn:  # the checkpoint a crash would leave behind
        (old,) = conn.execute("SELECT fed_until, fed_keys, events_fed, snapshot FROM rules_checkpoints").fetchall()
    async with RulesRuntime(settings, db) as rt:
        await feed(rt, stream.commit(stream.rows(2)))
        await eventually(lambda: rt.applied == 1)
        (alert,) = await alert_rows(db)
        async with db.session() as s:  # an operator resolves it at once
            await alerts.resolve(s, alert.id, by="shift-lead")
        await rt.resolved(alert.rule_id, alert.group_key)
    with psycopg.connect(migrated_url) as conn:  # ... as if it had died before its next checkpoint
        conn.execute(
            "UPDATE rules_checkpoints SET fed_until = %s, fed_keys = %s, events_fed = %s, snapshot = %s",
            (old[0], psycopg.types.json.Jsonb(old[1]), old[2], old[3]),
        )
    async with RulesRuntime(settings, db) as rt:
        assert rt.recovered_events == 2  # replayed: the window is whole again ...
        assert rt.applied == 0  # ... but the alert they opened is in the database already: not opened again
        assert rt.engine.open_alerts() == []  # and resolved there, which the engine now knows
    assert [a.state for a in await alert_rows(db)] == ["resolved"]
    assert await outbox_count(db) == 1


async def test_a_full_queue_loses_nothing_the_events_come_from_the_database(
    migrated_url: str, db: Database, rules_dir: Path
) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9", count=5, within="1m"))
    stream = Stream(migrated_url)
    async with RulesRuntime(settings_for(migrated_url, rules_dir), db, queue_size=1) as rt:
        async with rt._lock:  # the rules are busy: one batch is queued, the next four are not
            for _ in range(5):
                rows = stream.commit(stream.rows(1))
                from_thread(lambda rows=rows: rt.listener(rows, None))  # type: ignore[misc]
            await eventually(lambda: rt.dropped_batches == 4)
        await eventually(lambda: rt.events_fed == 5)
        assert rt.recovered_events == 4
        await eventually(lambda: rt.applied == 1)  # the fifth fault, read back from the database, opened it
        # live again: the rows the catch-up read are not fed a second time
        await feed(rt, stream.rows(1, label=0))
        assert rt.events_fed == 6
    (alert,) = await alert_rows(db)
    assert alert.state == "open"


async def test_device_site_and_tags_reach_the_rules(migrated_url: str, db: Database, rules_dir: Path) -> None:
    with psycopg.connect(migrated_url) as conn:
        conn.execute("""INSERT INTO devices (id, tags) VALUES ('p7', '{"site": "plant-a", "line": "2"}')""")
    (rules_dir / "r.yml").write_text(
        """
models:
  vib-cls: {labels: [normal, bearing_fault]}
rules:
  - id: plant-a-faults
    match: {model: vib-cls, label: bearing_fault, site: plant-a}
    per: site
    resolve: manual
  - id: line-2-faults
    match: {model: vib-cls, label: bearing_fault, tags: {line: "2"}}
    per: tag:line
    resolve: manual
"""
    )
    async with RulesRuntime(settings_for(migrated_url, rules_dir), db) as rt:
        await feed(rt, Stream(migrated_url, "p7").rows(1))
        await feed(rt, Stream(migrated_url, "p8").rows(1))  # no tags: neither rule
        await eventually(lambda: rt.applied == 2)
    assert sorted((a.rule_id, a.group_key) for a in await alert_rows(db)) == [
        ("line-2-faults", "2"),
        ("plant-a-faults", "plant-a"),
    ]


async def test_without_a_checkpoint_what_holds_now_opens_now_and_silent_devices_are_noticed(
    migrated_url: str, db: Database, rules_dir: Path
) -> None:
    now = int(time.time() * 1000)
    stream = Stream(migrated_url)
    stream.commit(stream.rows(3, recv_ms=now - 20_000))  # three faults 20 s ago: the window holds now
    with psycopg.connect(migrated_url) as conn:  # a device last heard of a minute ago
        conn.execute("INSERT INTO devices (id, last_seen) VALUES ('quiet', now() - interval '1 minute')")
    (rules_dir / "r.yml").write_text(
        rule_file("http://127.0.0.1:9", count=3, within="1m")
        + "  - id: silent\n    absence: {for: 30s}\n    severity: warning\n"
    )
    async with RulesRuntime(settings_for(migrated_url, rules_dir), db, tick_interval_s=0.1) as rt:
        await eventually(lambda: rt.applied == 2)
    opened = {a.rule_id: a for a in await alert_rows(db)}
    assert sorted((r, a.group_key) for r, a in opened.items()) == [("bearing-burst", "p1"), ("silent", "quiet")]
    # opened now (at start), not back-dated to the replayed events
    assert opened["bearing-burst"].opened_at.timestamp() * 1000 >= now - 1000


async def test_an_alert_write_that_fails_while_the_database_is_down_is_retried(rules_dir: Path) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9", count=1, within="1m"))
    with PostgresInstance(timescaledb=False) as pg:
        url = pg.create_database("rules_retry")
        migrate.upgrade(url, use_timescaledb=False)
        async with Database(url) as database, RulesRuntime(settings_for(url, rules_dir), database) as rt:
            pg.stop(mode="fast")
            from_thread(lambda: rt.listener(Stream(url).rows(1), None))  # the batch committed just before
            await eventually(lambda: rt.write_retries >= 2)
            assert rt.applied == 0
            pg.start()
            await eventually(lambda: rt.applied == 1, within=30)
            (alert,) = await alert_rows(database)
            assert alert.rule_id == "bearing-burst"
            assert rt.status()["write_retries"] >= 2


async def test_a_database_away_at_start_keeps_the_checkpoint_and_recovers_when_it_is_back(rules_dir: Path) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9", count=3, within="1m"))
    with PostgresInstance(timescaledb=False) as pg:
        url = pg.create_database("rules_late")
        migrate.upgrade(url, use_timescaledb=False)
        settings = settings_for(url, rules_dir, rules_checkpoint_interval_s=0.2)
        stream = Stream(url)
        async with Database(url) as database:
            async with RulesRuntime(settings, database) as rt:
                await feed(rt, stream.commit(stream.rows(2)))
            pg.stop(mode="fast")
            async with RulesRuntime(settings, database) as rt:
                await asyncio.sleep(0.5)  # checkpoints would be due: none may overwrite the saved state
                assert not rt._recovered
                pg.start()
                await eventually(lambda: rt._recovered, within=30)
                await feed(rt, stream.commit(stream.rows(1)))
                await eventually(lambda: rt.applied == 1)  # the two faults from before + this one


async def test_a_batch_without_events_is_nothing_to_the_rules(migrated_url: str, db: Database, rules_dir: Path) -> None:
    (rules_dir / "r.yml").write_text(rule_file("http://127.0.0.1:9"))
    async with RulesRuntime(settings_for(migrated_url, rules_dir), db) as rt:
        from_thread(lambda: rt.listener([], None))  # a batch of telemetry or state messages only
        rt._enqueue([])
        await feed(rt, Stream(migrated_url).rows(1))
        assert (rt.failed_batches, rt.events_fed) == (0, 1)
