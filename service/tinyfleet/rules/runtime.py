"""The rules at run time: ingest batches → engine → alerts + outbox rows, plus a 1 s tick, reload and status.

    async with RulesRuntime(settings, database) as rules:     # loads settings.rules_dir, rebuilds open alerts
        ingest.add_listener(rules.listener)                    # before the ingest starts
        ...
        await rules.reload()                                   # validate the directory again; keep the old set on error

Threads: the ingest calls `listener(rows, result)` on its writer thread after each commit. The listener only
hands the batch to the event loop (`loop.call_soon_threadsafe`, no waiting); there it goes into a bounded
queue. When the queue is full the batch is dropped, logged and counted (`dropped_batches`): the ingest is
never held up by the rules. Everything else (engine, database) runs on the event loop, in two named tasks:
`tinyfleet-rules-feed` (one database transaction per batch: every transition with its rule's actions through
`tinyfleet.alerts.apply_transition`) and `tinyfleet-rules-tick` (every `tick_interval_s`: absence, `for:`,
escalation, re-notification, auto-resolve by time).

Restart: at start the alerts that are not resolved are read from the database and handed to the engine as
open (or acknowledged) alerts of their (rule, group) — via `RuleEngine.restore` with alert state only — so an
`open` is not fired again while they stay open (if the database cannot be read then, the engine starts empty;
the database still refuses a second open alert per (rule, group), so at worst the engine believes it opened
one that already was, and no action is written for it). Windows and clocks are NOT rebuilt (they start empty): a rule
with `resolve: auto` whose condition is false on the first tick after the restart resolves its alert then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
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
from tinyfleet.rules.model import Action, Rule
from tinyfleet.store.db import Database

log = logging.getLogger(__name__)

__all__ = ["Firing", "RulesRuntime", "action_specs"]

_STOP = object()


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
        queue_size: int = 1000,
        tick_interval_s: float = 1.0,
    ) -> None:
        self.settings = settings
        self.database = database
        self.rules_dir = Path(rules_dir if rules_dir is not None else settings.rules_dir)
        self.tick_interval_s = tick_interval_s
        self.ruleset = RuleSet(rules=())
        self.engine = RuleEngine(self.ruleset)
        self.last_errors: list[RuleIssue] = []
        self.loaded_at: datetime | None = None
        self.last_firing: dict[str, Firing] = {}
        self.dropped_batches = 0
        self.failed_batches = 0
        self.applied = 0
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
        self.engine = await self._rebuild(self.ruleset)
        self._tasks = [
            asyncio.create_task(self._feed_loop(), name="tinyfleet-rules-feed"),
            asyncio.create_task(self._tick_loop(), name="tinyfleet-rules-tick"),
        ]
        if self.settings.rules_watch and self.rules_dir.is_dir():
            self._tasks.append(asyncio.create_task(self._watch_loop(), name="tinyfleet-rules-watch"))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """Apply the batches already queued (the ingest is stopped before), then stop both tasks."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        feed, *timers = tasks  # the tick and (when on) the file watcher
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

    async def _rebuild(self, ruleset: RuleSet) -> RuleEngine:
        """An engine that knows the alerts the database holds open (alert state only, see the module doc)."""
        try:
            async with self.database.sessionmaker() as session:
                active = await alerts.active_alerts(session)
        except Exception as exc:  # database away or not migrated: the ingest copes with that, so do we
            # No double alert even so: `apply_transition` ignores an `open` for a (rule, group) already open.
            log.error("rules: cannot read the open alerts (%s); starting with none", str(exc).splitlines()[0])
            active = []
        known = {r.id for r in ruleset.rules}
        rules: dict[str, Any] = {}
        for a in active:
            if a.rule_id not in known:
                continue
            opened = to_ms(a.opened_at)
            rules.setdefault(a.rule_id, {"fingerprint": "", "groups": {}})["groups"][a.group_key] = {
                "alert": {
                    "opened_at": opened,
                    "severity": a.severity,
                    "acked": a.state == "acknowledged",
                    "escalated": a.escalated,
                    "notified_at": to_ms(a.last_notified_at) if a.last_notified_at else opened,
                },
                "resolved_at": None,
                "clear_since": None,
                "nodes": [],
            }
        now = to_ms(datetime.now(UTC))
        if rules:
            log.info("rules: %d open alerts restored from the database", sum(len(r["groups"]) for r in rules.values()))
        return RuleEngine.restore(ruleset, {"version": 1, "now": now, "rules": rules})

    # ---------------------------------------------------------------------------------------- ingest side
    def listener(self, rows: Sequence[Sequence[Any]], result: Any = None) -> None:
        """The ingest's commit listener (runs on the ingest writer thread): hands the rows to the event loop."""
        loop = self._loop
        if loop is None or not self._tasks:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: the service is stopping
            loop.call_soon_threadsafe(self._enqueue, list(rows))

    def _enqueue(self, rows: list[Sequence[Any]]) -> None:
        try:
            self._queue.put_nowait(rows)
        except asyncio.QueueFull:
            self.dropped_batches += 1
            log.warning("rules queue full: dropped a batch of %d events (%d so far)", len(rows), self.dropped_batches)

    # ---------------------------------------------------------------------------------------- loops
    async def _feed_loop(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            rows: list[Sequence[Any]] = item  # type: ignore[assignment]
            try:
                facts = [EventFact.from_row(r) for r in rows]
                async with self._lock:
                    await self._apply(self.engine.feed(facts))
            except Exception:
                self.failed_batches += 1
                log.exception("rules: a batch of %d events failed", len(rows))

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.tick_interval_s)
            try:
                async with self._lock:
                    await self._apply(self.engine.tick(datetime.now(UTC)))
            except Exception:
                log.exception("rules: tick failed")

    async def _apply(self, transitions: list[Transition]) -> None:
        """All transitions of one batch (or tick) in one transaction, each with its rule's actions."""
        if not transitions:
            return
        ruleset = self.ruleset
        written: list[tuple[Transition, int]] = []
        async with self.database.session() as session:
            for t in transitions:
                try:
                    actions = action_specs(ruleset.rule(t.rule_id))
                except KeyError:
                    actions = []
                applied = await alerts.apply_transition(session, t, actions)
                if applied is not None:
                    written.append((t, applied.alert.id))
        for t, alert_id in written:
            self.last_firing[t.rule_id] = Firing(str(t.kind), t.group, t.at, alert_id)
        self.applied += len(written)

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
        }
