"""The rules at run time: ingest batches → engine → alerts + outbox rows, plus a 1 s tick, reload and status.

    async with RulesRuntime(settings, database) as rules:     # loads settings.rules_dir, recovers its state
        ingest.add_listener(rules.listener)                    # before the ingest starts
        ...
        await rules.reload()                                   # validate the directory again; keep the old set on error

Threads: the ingest calls `listener(rows, result)` on its writer thread after each commit, with the rows the
database took as new (no duplicates). The listener only hands the batch to the event loop
(`loop.call_soon_threadsafe`, no waiting); there it goes into a bounded queue. The ingest is never held up by
the rules: when the queue is full, further batches are not queued (`dropped_batches`), and once the queue has
drained the events since the last one fed are read from the `events` table instead (a catch-up): nothing is
lost, only later. Everything else runs on the event loop, in named tasks: `tinyfleet-rules-feed` (the engine),
`tinyfleet-rules-tick` (every `tick_interval_s`: absence, `for:`, escalation, re-notification, auto-resolve by
time), `tinyfleet-rules-writer` (the transitions, in order, all that wait in one transaction, each with its
rule's actions through `tinyfleet.alerts.apply_transitions`, multi-row; a failed write is retried until it succeeds),
`tinyfleet-rules-checkpoint` and `tinyfleet-rules-devices` (device site and tags for the facts).

Restart: every `rules_checkpoint_interval_s` and at stop the engine's state (windows, clocks, alerts) is saved
with its position in the event stream (`tinyfleet.rules.recovery`). At start the checkpoint is restored and the
events received since are replayed from the database with exact timing; their transitions are written unless
the database already has them (a replayed transition is never later than the live one, see
`recovery.last_transitions`), so a restart neither loses nor repeats an alert. Then the engine's alerts are
made the database's (acknowledged or resolved meanwhile by an operator). Without a checkpoint (first start,
or one from an incompatible version), the windows are warmed up silently on the events of the longest window
of the rules (at most `rules_warmup_max_s`), absence clocks start from each device's `last_seen`, and the
alerts come from the database: what holds now opens now, what held only in the past is not sent late.

One runtime per event stream: the checkpoint is named after the ingest client id. With several ingest workers
on a shared subscription each sees only its share of the events, see docs/architecture.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from tinyfleet import alerts
from tinyfleet.alerts import ActionSpec
from tinyfleet.config import Settings
from tinyfleet.rules.engine import EventFact, RuleEngine, Transition, to_ms
from tinyfleet.rules.loader import RuleIssue, RuleSet, RuleSetError, load_rules
from tinyfleet.rules.model import Action, Condition, Rule
from tinyfleet.rules.recovery import (
    DeviceInfo,
    EventKey,
    device_info,
    devices_last_seen,
    encode_snapshot,
    events_since,
    last_transitions,
    load_checkpoint,
    save_checkpoint,
)
from tinyfleet.store.db import Database

log = logging.getLogger(__name__)

__all__ = ["Firing", "RulesRuntime", "action_specs", "history_needed_s"]

_STOP = object()

#: Clocks of this machine and the database may differ this much (receive times vs. `now()` of alert events).
CLOCK_MARGIN_MS = 60_000
#: Share of one core the checkpoint's encoding may take: spread over a second or so instead of a burst that
#: takes a core from paho, the broker and the database on a small machine (seen as publish→ingest delays).
CHECKPOINT_DUTY = 0.25
#: How often the engine forgets idle groups (bounded memory when devices come and go).
PRUNE_INTERVAL_S = 300.0


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def history_needed_s(ruleset: RuleSet) -> float:
    """How far back events matter to the rules now: the longest window (`within`, rate window + baseline,
    `for:`; a rule's own `for:` added on top) of any rule, in seconds. What a start without a checkpoint
    warms up on."""

    def of(c: Condition) -> int:
        spans = [
            c.window.within if c.window else 0,
            c.stats.within if c.stats else 0,
            c.rate.window + c.rate.baseline if c.rate else 0,
            c.for_ or 0,
            of(c.not_) if c.not_ else 0,
            *(of(x) for x in [*(c.all_ or ()), *(c.any_ or ())]),
        ]
        return max(spans)

    ms = max((of(r) + (r.for_ or 0) for r in ruleset.rules if r.enabled), default=0)
    return ms / 1000.0


def action_specs(rule: Rule) -> list[ActionSpec]:
    """A rule's actions as the outbox stores them (see docs/actions.md)."""
    return [_spec(a) for a in rule.actions]


def _spec(a: Action) -> ActionSpec:
    if a.email is not None:
        params: dict[str, Any] = {}
        if a.email.subject is not None:
            params["subject"] = a.email.subject
        if a.email.template is not None:
            params["template"] = a.email.template
        return ActionSpec("email", ",".join(a.email.to), params)
    if a.webhook is not None:
        return ActionSpec(
            "webhook", a.webhook.url, {"secret_env": a.webhook.secret_env} if a.webhook.secret_env else {}
        )
    if a.nodered is not None:
        return ActionSpec("nodered", a.nodered.path)
    assert a.mqtt is not None
    return ActionSpec("mqtt", a.mqtt.topic, {"payload": a.mqtt.payload, "qos": a.mqtt.qos})


@dataclass(frozen=True, slots=True)
class Firing:
    """The last transition of a rule that was written to the database."""

    kind: str
    group: str
    at: datetime
    alert_id: int


class RulesRuntime:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        *,
        rules_dir: str | Path | None = None,
        name: str | None = None,
        queue_size: int = 1000,
        tick_interval_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.database = database
        self.rules_dir = Path(rules_dir if rules_dir is not None else settings.rules_dir)
        self.name = name if name is not None else settings.mqtt_client_id
        self.tick_interval_s = tick_interval_s
        self.ruleset = RuleSet(rules=())
        self.engine = RuleEngine(self.ruleset)
        self.last_errors: list[RuleIssue] = []
        self.loaded_at: datetime | None = None
        self.last_firing: dict[str, Firing] = {}
        self.dropped_batches = 0  # not queued (queue full): their events were then read from the database
        self.failed_batches = 0  # the engine raised on a batch (a bug): its events are not evaluated
        self.write_retries = 0  # alert writes that failed and were retried
        self.applied = 0
        self.events_fed = 0
        self.recovered_events = 0  # fed from the events table: the replay at start and catch-ups after a gap
        self.checkpoint_saved_at: datetime | None = None
        self.checkpoint_bytes = 0
        self._devices: dict[str, DeviceInfo] = {}
        self._action_specs: dict[str, list[ActionSpec]] = {}  # rule id → its actions as the outbox stores them
        self._action_specs_of: RuleSet | None = None  # the rule set they were built from
        # Position in the event stream: the largest receive time fed, and the keys fed at exactly that time.
        self._fed_until: int | None = None
        self._fed_keys: set[EventKey] = set()
        # After a catch-up from the database, live rows up to this position were fed already.
        self._skip_until: int | None = None
        self._skip_keys: frozenset[EventKey] = frozenset()
        self._gap = False  # batches were dropped: read them from the database before the next live batch
        self._stopping = False
        self._recovered = False  # the state was restored from the database (no checkpoint is saved before)
        self._unapplied = False  # transitions given up at stop: no checkpoint past them may be saved
        # Transitions go to the database in order through one writer task, coalesced into one transaction per
        # round, so the engine never waits on a commit: `_queued` counts what was handed over, `_written` what
        # is in the database (a checkpoint waits until its snapshot's transitions are).
        self._outgoing: list[Transition] = []
        self._outgoing_ready = asyncio.Event()
        self._queued = 0
        self._written = 0
        self._written_cond = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None
        self._close_writer = False  # set once the feed has stopped: the writer ends when it has drained
        self._last_saved: tuple[int, int] | None = None  # (events_fed, queued) of the last checkpoint
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue_size)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []

    # ---------------------------------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> Self:
        self._loop = asyncio.get_running_loop()
        try:
            ruleset = await asyncio.to_thread(load_rules, self.rules_dir)
        except RuleSetError as exc:
            # The service still runs (no rules); the errors are visible in status() / GET /api/v1/rules.
            self.last_errors = exc.issues
            log.error("rules in %s are invalid, running without rules:\n%s", self.rules_dir, exc)
        else:
            self.ruleset = ruleset
            self.loaded_at = datetime.now(UTC)
            log.info("loaded %d rules from %s", len(ruleset.rules), self.rules_dir)
        await self._try_recover()
        self._writer = asyncio.create_task(self._write_loop(), name="tinyfleet-rules-writer")
        self._tasks = [
            asyncio.create_task(self._feed_loop(), name="tinyfleet-rules-feed"),
            asyncio.create_task(self._tick_loop(), name="tinyfleet-rules-tick"),
            asyncio.create_task(self._checkpoint_loop(), name="tinyfleet-rules-checkpoint"),
            asyncio.create_task(self._devices_loop(), name="tinyfleet-rules-devices"),
        ]
        if self.settings.rules_watch and self.rules_dir.is_dir():
            self._tasks.append(asyncio.create_task(self._watch_loop(), name="tinyfleet-rules-watch"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Apply the batches already queued (the ingest is stopped before), save a checkpoint, stop the tasks."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        self._stopping = True
        feed, *timers = tasks  # the tick, the checkpoint, the devices refresh and (when on) the file watcher
        for task in timers:
            task.cancel()
        try:
            self._queue.put_nowait(_STOP)
        except asyncio.QueueFull:
            feed.cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(feed), 10)
        feed.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer, self._writer = self._writer, None
        if writer is not None:  # it drains what the feed handed over, then ends
            self._close_writer = True
            self._outgoing_ready.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(writer), 10)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            if self._outgoing:
                self._unapplied = True
                log.error("rules: %d transitions not written at stop", len(self._outgoing))
        try:
            await self.checkpoint()
        except Exception as exc:  # the next start replays from the previous checkpoint instead
            log.error("rules: the checkpoint at stop failed: %s", _first_line(exc))

    # ---------------------------------------------------------------------------------------- recovery
    async def _try_recover(self) -> bool:
        """Recover, or leave it to the feed loop to try again (the database may be away at start: the ingest
        copes with that, so do we). Until then no checkpoint is saved, so the one in the database survives."""
        try:
            await self._recover()
        except Exception as exc:
            log.error("rules: cannot restore the state from the database (%s); retrying", _first_line(exc))
            self.engine = RuleEngine(self.ruleset)
            return False
        self._recovered = True
        return True

    async def _recover(self) -> None:
        """Rebuild the engine: from the checkpoint plus the events received since (writing the transitions
        that were not written yet), or, without a checkpoint, by warming the windows up silently on recent
        events; then make its alerts those the database holds (operators may have acted meanwhile)."""
        now = to_ms(datetime.now(UTC))
        ruleset = self.ruleset
        async with self.database.sessionmaker() as session:
            self._devices = await device_info(session)
            checkpoint = await load_checkpoint(session, self.name)
            seen = await devices_last_seen(session) if checkpoint is None else []
        engine: RuleEngine | None = None
        if checkpoint is not None:
            try:
                engine = RuleEngine.restore(ruleset, checkpoint.snapshot)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                log.error("rules: checkpoint %r is unusable (%s); rebuilding from recent events", self.name, exc)
        if engine is not None and checkpoint is not None:
            silent = False
            start = checkpoint.fed_until_ms
            if start is None:  # nothing was fed before it was saved
                start = to_ms(checkpoint.saved_at) - CLOCK_MARGIN_MS
            keys = checkpoint.fed_keys
            self.events_fed = checkpoint.events_fed
        else:
            silent = True
            start = now - int(min(self.settings.rules_warmup_max_s, history_needed_s(ruleset)) * 1000)
            keys = frozenset()
            engine = RuleEngine(ruleset)
            engine.now = start
        self.engine = engine
        self._fed_until, self._fed_keys = (None, set()) if silent else (start, set(keys))
        repeats: dict[tuple[str, str], int] = {}
        if not silent:
            async with self.database.sessionmaker() as session:
                repeats = await last_transitions(session, start - CLOCK_MARGIN_MS)
        replayed = 0
        async for facts, position, at_position in events_since(self.database, start, keys, self._devices):
            out = engine.feed_exact(facts)
            if not silent:
                await self._apply(out, repeats=repeats)
            self._fed_until, self._fed_keys = position, set(at_position)
            replayed += len(facts)
        for device_id, model, last_seen in seen:  # absence clocks of devices silent since before the start
            info = self._devices.get(device_id)
            engine.expect(device_id, last_seen, model=model, site=info.site if info else None,
                          tags=info.tags if info else None)  # fmt: skip
        out = engine.advance(now)
        if not silent:
            await self._apply(out, repeats=repeats)
        await self._sync_alerts(now)
        # Live batches queued while this ran (a retry after a failed start) hold rows replayed already.
        self._skip_until, self._skip_keys = self._fed_until, frozenset(self._fed_keys)
        self.recovered_events += replayed
        self.events_fed += replayed
        log.info(
            "rules: state %s, %d events replayed since %s",
            "restored from the checkpoint" if not silent else "warmed up without a checkpoint",
            replayed,
            datetime.fromtimestamp(start / 1000, UTC).isoformat(timespec="milliseconds"),
        )

    async def _sync_alerts(self, now: int) -> None:
        """The engine's open alerts := the database's (which wins: acks and resolves by operators)."""
        async with self.database.sessionmaker() as session:
            active = await alerts.active_alerts(session)
        engine = self.engine
        in_db = {(a.rule_id, a.group_key) for a in active}
        for held in engine.open_alerts():
            if (held["rule_id"], held["group"]) not in in_db:
                engine.sync_alert(held["rule_id"], held["group"], None, at=now)
        for a in active:
            opened = to_ms(a.opened_at)
            engine.sync_alert(
                a.rule_id,
                a.group_key,
                {
                    "opened_at": opened,
                    "severity": a.severity,
                    "acked": a.state == "acknowledged",
                    "escalated": a.escalated,
                    "notified_at": to_ms(a.last_notified_at) if a.last_notified_at else opened,
                },
                at=now,
            )
        if active:
            log.info("rules: %d open alerts in the database", len(active))

    async def checkpoint(self) -> None:
        """Save the engine's state and its position in the event stream (also done every
        `rules_checkpoint_interval_s` and at stop)."""
        async with self._lock:
            if self._unapplied or not self._recovered or self._last_saved == (self.events_fed, self._queued):
                return
            # One rule at a time, letting the event loop run in between (the outbox, the API); the lock keeps
            # the feed and the tick out, so the parts belong to one state.
            engine = self.engine
            rules: dict[str, Any] = {}
            for rule_id, state in engine.rule_snapshots():
                rules[rule_id] = state
                await asyncio.sleep(0)
            snapshot = {"version": 1, "now": engine.now, "rules": rules}
            position, keys, fed, target = self._fed_until, frozenset(self._fed_keys), self.events_fed, self._queued
        async with self._written_cond:  # the transitions of this state must be in the database first
            await self._written_cond.wait_for(lambda: self._written >= target or self._unapplied)
        if self._unapplied:
            return
        encoded = await asyncio.to_thread(encode_snapshot, snapshot, CHECKPOINT_DUTY)
        async with self.database.session() as session:
            await save_checkpoint(session, self.name, encoded, position, keys, fed)
        self.checkpoint_saved_at = datetime.now(UTC)
        self.checkpoint_bytes = len(encoded)
        self._last_saved = (fed, target)

    # ---------------------------------------------------------------------------------------- ingest side
    def listener(self, rows: Sequence[Sequence[Any]], result: Any = None) -> None:
        """The ingest's commit listener (runs on the ingest writer thread): hands the rows to the event loop."""
        loop = self._loop
        if loop is None or not self._tasks or not rows:  # no event in the batch (telemetry, state only)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the service is stopping
            loop.call_soon_threadsafe(self._enqueue, list(rows))

    def _enqueue(self, rows: list[Sequence[Any]]) -> None:
        if self._gap:  # being dropped already: the catch-up reads them from the database
            self.dropped_batches += 1
            return
        try:
            self._queue.put_nowait(rows)
        except asyncio.QueueFull:
            self._gap = True
            self.dropped_batches += 1
            log.warning("rules queue full: reading the events from the database once it has drained")

    def _facts(self, rows: Sequence[Sequence[Any]]) -> list[EventFact]:
        """Engine facts of a committed batch (less what a catch-up fed already), and the new position."""
        if not rows:
            return []
        skip = self._skip_until
        if skip is not None:
            if min(r[4] for r in rows) > skip:
                self._skip_until = None
            else:
                keys = self._skip_keys
                rows = [r for r in rows if r[4] > skip or (r[4] == skip and (r[0], r[1], r[2]) not in keys)]
                if not rows:
                    return []
        facts = EventFact.from_rows(rows, self._devices)
        top = max(r[4] for r in rows)
        at_top = {(r[0], r[1], r[2]) for r in rows if r[4] == top}
        if self._fed_until is None or top > self._fed_until:
            self._fed_until, self._fed_keys = top, at_top
        elif top == self._fed_until:
            self._fed_keys |= at_top
        self.events_fed += len(facts)
        return facts

    # ---------------------------------------------------------------------------------------- loops
    async def _feed_loop(self) -> None:
        while not self._recovered:
            await asyncio.sleep(1.0)
            if self._stopping:  # the queued batches are in the database: the next start replays them
                return
            async with self._lock:
                await self._try_recover()
        while True:
            if self._gap and self._queue.empty():
                self._gap = False  # the listener queues again from now on; the catch-up covers the rest
                try:
                    async with self._lock:
                        await self._catch_up()
                except Exception as exc:
                    self._gap = True
                    log.error("rules: catching up from the database failed (%s); retrying", _first_line(exc))
                    await asyncio.sleep(1.0)
                    continue
            item = await self._queue.get()
            if item is _STOP:
                return
            rows: list[Sequence[Any]] = item  # type: ignore[assignment]
            async with self._lock:
                try:
                    facts = self._facts(rows)
                    transitions = self.engine.feed(facts) if facts else []
                except Exception:
                    self.failed_batches += 1
                    log.exception("rules: a batch of %d events failed", len(rows))
                    continue
                self._submit(transitions)

    async def _catch_up(self) -> None:
        """Feed the events committed since the position, from the database (after dropped batches)."""
        start = self._fed_until if self._fed_until is not None else to_ms(datetime.now(UTC)) - CLOCK_MARGIN_MS
        n = 0
        async for facts, position, at_position in events_since(
            self.database, start, frozenset(self._fed_keys), self._devices
        ):
            self._submit(self.engine.feed(facts))
            self._fed_until, self._fed_keys = position, set(at_position)
            n += len(facts)
        self._skip_until, self._skip_keys = self._fed_until, frozenset(self._fed_keys)
        self.recovered_events += n
        self.events_fed += n
        log.info("rules: caught up on %d events from the database", n)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_s)
            try:
                async with self._lock:
                    self._submit(self.engine.tick(datetime.now(UTC)))
            except Exception:
                log.exception("rules: tick failed")

    async def _checkpoint_loop(self) -> None:
        interval = self.settings.rules_checkpoint_interval_s
        last_prune = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                if time.monotonic() - last_prune >= PRUNE_INTERVAL_S:
                    last_prune = time.monotonic()
                    async with self._lock:
                        self.engine.prune()
                await self.checkpoint()
            except Exception as exc:
                log.error("rules: checkpoint failed (%s); the next one retries", _first_line(exc))

    async def _devices_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.rules_device_refresh_s)
            try:
                async with self.database.sessionmaker() as session:
                    self._devices = await device_info(session)
            except Exception as exc:
                log.warning("rules: cannot refresh device tags (%s)", _first_line(exc))

    def _submit(self, transitions: list[Transition]) -> None:
        if transitions:
            self._outgoing += transitions
            self._queued += len(transitions)
            self._outgoing_ready.set()

    async def _write_loop(self) -> None:
        """Writes what the feed and the tick hand over, in order, all that is waiting in one transaction."""
        while True:
            if not self._outgoing:
                if self._close_writer:
                    return
                self._outgoing_ready.clear()
                await self._outgoing_ready.wait()
                continue
            batch, self._outgoing = self._outgoing, []
            await self._apply(batch)
            if self._unapplied:  # given up at stop
                self._outgoing = batch + self._outgoing
                return
            async with self._written_cond:
                self._written += len(batch)
                self._written_cond.notify_all()

    async def _apply(self, transitions: list[Transition], *, repeats: Mapping[tuple[str, str], int] | None = None
                     ) -> None:  # fmt: skip
        """All transitions of one batch (or tick) in one transaction, each with its rule's actions. A failed
        write is retried (the caller holds the lock, so the stream waits; the ingest does not: a full queue
        becomes a catch-up from the database). `repeats`: skip what a replay finds already written."""
        if repeats:
            transitions = [t for t in transitions if t.at_ms > repeats.get((t.rule_id, t.group), -1)]
        if not transitions:
            return
        delay = 0.2
        while True:
            try:
                written = await self._write(transitions)
                break
            except Exception as exc:
                if self._stopping:
                    # Not lost: no checkpoint is saved past them, so the next start replays and writes them.
                    self._unapplied = True
                    log.error("rules: %d transitions not written at stop (%s)", len(transitions), _first_line(exc))
                    return
                self.write_retries += 1
                log.warning("rules: writing %d transitions failed (%s); retrying in %.1f s",
                            len(transitions), _first_line(exc), delay)  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        for t, alert_id in written:
            self.last_firing[t.rule_id] = Firing(str(t.kind), t.group, t.at, alert_id)
        self.applied += len(written)

    async def _write(self, transitions: list[Transition]) -> list[tuple[Transition, int]]:
        ruleset = self.ruleset
        specs = self._action_specs
        if self._action_specs_of is not ruleset:  # built once per rule set
            specs.clear()
            self._action_specs_of = ruleset
        items: list[tuple[Transition, list[ActionSpec]]] = []
        for t in transitions:
            actions = specs.get(t.rule_id)
            if actions is None:
                try:
                    actions = specs[t.rule_id] = action_specs(ruleset.rule(t.rule_id))
                except KeyError:
                    actions = []
            items.append((t, actions))
        async with self.database.session() as session:
            ids = await alerts.apply_transitions(session, items)
        return [(t, alert_id) for t, alert_id in zip(transitions, ids, strict=True) if alert_id is not None]

    # ---------------------------------------------------------------------------------------- operations
    async def _watch_loop(self) -> None:
        """Hot reload: a change to a rule file (a save, a `git pull` of the rules checkout) reloads the set,
        which is refused as a whole, old set kept, while it is invalid."""
        from watchfiles import awatch

        def is_rule_file(_change: object, path: str) -> bool:
            return path.endswith((".yml", ".yaml"))

        try:
            async for _changes in awatch(self.rules_dir, watch_filter=is_rule_file, debounce=300):
                await self.reload()
        except Exception:  # the watcher is a convenience: POST /api/v1/rules/reload still works
            log.exception("watching %s for rule changes failed; reload through the API", self.rules_dir)

    async def reload(self) -> list[RuleIssue]:
        """Load the rules directory again. Invalid → the old set stays, the issues are returned and remembered;
        valid → the new set replaces it, keeping the state of unchanged rules (and all open alerts)."""
        try:
            ruleset = await asyncio.to_thread(load_rules, self.rules_dir)
        except RuleSetError as exc:
            self.last_errors = exc.issues
            log.error("rules reload refused, keeping the %d rules in use:\n%s", len(self.ruleset.rules), exc)
            return exc.issues
        async with self._lock:
            self.engine = RuleEngine.restore(ruleset, self.engine.snapshot())
            self.ruleset = ruleset
            self.last_errors = []
            self.loaded_at = datetime.now(UTC)
        log.info("reloaded %d rules from %s", len(ruleset.rules), self.rules_dir)
        return []

    async def acknowledged(self, rule_id: str, group: str) -> None:
        """An operator acknowledged the alert in the database: stop escalation / re-notification."""
        async with self._lock:
            self.engine.acknowledge(rule_id, group)

    async def resolved(self, rule_id: str, group: str) -> None:
        """An operator resolved the alert in the database: the engine may open it again."""
        async with self._lock:
            self.engine.resolve(rule_id, group)

    def status(self) -> dict[str, Any]:
        rules = []
        for r in self.ruleset.rules:
            src = self.ruleset.sources.get(r.id)
            firing = self.last_firing.get(r.id)
            rules.append(
                {
                    "id": r.id,
                    "description": r.description,
                    "enabled": r.enabled,
                    "severity": r.severity,
                    "source": f"{src[0]}:{src[1]}:{src[2]}" if src else None,
                    "actions": [a.type for a in r.actions],
                    "last_firing": (
                        {"kind": firing.kind, "group": firing.group, "at": firing.at, "alert_id": firing.alert_id}
                        if firing is not None
                        else None
                    ),
                }
            )
        return {
            "rules_dir": str(self.rules_dir),
            "loaded_at": self.loaded_at,
            "rules": rules,
            "errors": [
                {"file": i.file, "line": i.line, "column": i.column, "message": i.message, "location": str(i)}
                for i in self.last_errors
            ],
            "dropped_batches": self.dropped_batches,
            "failed_batches": self.failed_batches,
            "write_retries": self.write_retries,
            "events_fed": self.events_fed,
            "recovered_events": self.recovered_events,
            "checkpoint_saved_at": self.checkpoint_saved_at,
            "checkpoint_bytes": self.checkpoint_bytes,
        }
