"""The alert lifecycle in the database: one active alert per (rule, group), history, and outbox rows written
in the very transaction of the alert change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tinyfleet import alerts
from tinyfleet.alerts import ActionSpec, AlertStateError, AlertTransition
from tinyfleet.store import migrate
from tinyfleet.store.db import Database

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOOK = ActionSpec("webhook", "http://127.0.0.1:9/hook")
MAIL = ActionSpec("email", "lead@example.test", {"subject": "{{ alert.rule_id }}"})


def opening(group: str = "device=p1", rule: str = "bearing", at: datetime = T0) -> AlertTransition:
    return AlertTransition(rule, group, "open", "critical", at, {"count": 3})


async def count(db: Database, table: str) -> int:
    async with db.engine.connect() as conn:
        return int((await conn.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_rollback_leaves_neither_alert_nor_outbox_row(db: Database) -> None:
    async with db.sessionmaker() as session:
        applied = await alerts.apply_transition(session, opening(), [HOOK, MAIL])
        assert applied is not None
        assert len(applied.outbox) == 2
        await session.rollback()
    assert await count(db, "alerts") == 0
    assert await count(db, "outbox") == 0
    assert await count(db, "alert_events") == 0

    # A failure later in the same transaction takes the outbox rows with it too.
    async def crash() -> None:
        async with db.session() as session:
            await alerts.apply_transition(session, opening(), [HOOK])
            raise RuntimeError("crash before commit")

    with pytest.raises(RuntimeError):
        await crash()
    assert await count(db, "outbox") == 0

    async with db.session() as session:
        applied = await alerts.apply_transition(session, opening(), [HOOK, MAIL])
    assert applied is not None
    assert await count(db, "alerts") == 1
    assert await count(db, "outbox") == 2
    a, e = applied.alert.id, applied.event.id
    assert [o.idempotency_key for o in applied.outbox] == [f"tf-{a}-{e}-0", f"tf-{a}-{e}-1"]
    assert all(o.state == "pending" and o.attempts == 0 and o.transition_id == e for o in applied.outbox)
    assert applied.outbox[0].payload["alert"]["rule_id"] == "bearing"
    assert applied.outbox[1].payload["params"] == {"subject": "{{ alert.rule_id }}"}


async def test_lifecycle_open_ack_resolve_and_history(db: Database) -> None:
    async with db.session() as session:
        first = await alerts.apply_transition(session, opening(), [HOOK])
        assert first is not None
        # a second open of the same (rule, group) is a no-op: no duplicate alert, no action
        assert await alerts.apply_transition(session, opening(at=T0 + timedelta(seconds=5)), [HOOK]) is None
        other = await alerts.apply_transition(session, opening(group="device=p2"), [])
        assert other is not None
        assert other.outbox == []
    alert_id = first.alert.id

    async with db.session() as session:
        renotified = await alerts.apply_transition(
            session, AlertTransition("bearing", "device=p1", "renotify", "critical", T0 + timedelta(minutes=10)), [HOOK]
        )
        assert renotified is not None
        assert renotified.alert.last_notified_at == T0 + timedelta(minutes=10)
        escalated = await alerts.apply_transition(
            session, AlertTransition("bearing", "device=p1", "escalate", "page", T0 + timedelta(minutes=15)), [MAIL]
        )
        assert escalated is not None
        assert escalated.alert.escalated
        assert escalated.alert.severity == "page"
        assert (
            await alerts.apply_transition(
                session, AlertTransition("bearing", "device=p1", "escalate", "page", T0 + timedelta(minutes=16))
            )
            is None
        )
        acked = await alerts.acknowledge(session, alert_id, "alice", at=T0 + timedelta(minutes=20))
        assert acked is not None
        assert acked.alert.state == "acknowledged"
        assert acked.alert.acknowledged_by == "alice"
        assert await alerts.acknowledge(session, alert_id, "bob") is None  # already acknowledged

    async with db.session() as session:
        resolved = await alerts.apply_transition(
            session, AlertTransition("bearing", "device=p1", "resolve", "critical", T0 + timedelta(minutes=30)), [HOOK]
        )
        assert resolved is not None
        assert resolved.alert.state == "resolved"
        assert resolved.alert.resolved_how == "auto"
        with pytest.raises(AlertStateError):
            await alerts.acknowledge(session, alert_id, "carol")
        assert await alerts.resolve(session, alert_id, "carol") is None
        # nothing active any more → resolve is a no-op; a new open makes a new alert
        assert (
            await alerts.apply_transition(
                session, AlertTransition("bearing", "device=p1", "resolve", "critical", T0 + timedelta(minutes=31))
            )
            is None
        )
        again = await alerts.apply_transition(session, opening(at=T0 + timedelta(hours=1)), [])
        assert again is not None
        assert again.alert.id != alert_id
        manual = await alerts.resolve(session, again.alert.id, "dave")
        assert manual is not None
        assert manual.alert.resolved_how == "manual"
        assert manual.alert.resolved_by == "dave"

    async with db.session() as session:
        history = await alerts.list_alert_events(session, alert_id)
        assert [e.kind for e in history] == ["open", "renotify", "escalate", "ack", "resolve"]
        assert history[0].detail == {"evidence": {"count": 3}}
        assert history[3].detail == {"by": "alice"}
        outbox = await alerts.list_outbox(session, alert_id=alert_id)
        assert sorted(o.kind for o in outbox.items) == ["email", "webhook", "webhook", "webhook"]


async def test_database_refuses_a_second_active_alert(db: Database) -> None:
    async with db.session() as session:
        await alerts.apply_transition(session, opening(), [])
    with pytest.raises(IntegrityError):
        async with db.session() as session:
            await session.execute(
                sa.insert(alerts.alerts_t).values(
                    rule_id="bearing", group_key="device=p1", state="acknowledged", severity="x", opened_at=T0
                )
            )


async def test_list_alerts_filters_and_pages(db: Database) -> None:
    async with db.session() as session:
        for i in range(5):
            await alerts.apply_transition(
                session, AlertTransition("silent", f"device=d{i}", "open", "warning" if i % 2 else "critical", T0)
            )
        await alerts.apply_transition(session, AlertTransition("silent", "device=d0", "resolve", "critical", T0))
    async with db.session() as session:
        page1 = await alerts.list_alerts(session, rule_id="silent", limit=2)
        assert len(page1.items) == 2
        assert page1.next_cursor is not None
        page2 = await alerts.list_alerts(session, rule_id="silent", limit=2, cursor=page1.next_cursor)
        page3 = await alerts.list_alerts(session, rule_id="silent", limit=2, cursor=page2.next_cursor)
        ids = [a.id for a in page1.items + page2.items + page3.items]
        assert ids == sorted(ids, reverse=True)
        assert len(set(ids)) == 5
        assert page3.next_cursor is None
        assert {a.group_key for a in (await alerts.list_alerts(session, state="open")).items} == {
            f"device=d{i}" for i in range(1, 5)
        }
        assert len((await alerts.list_alerts(session, severity="warning")).items) == 2
        assert [a.group_key for a in (await alerts.list_alerts(session, state="resolved")).items] == ["device=d0"]
        assert len(await alerts.active_alerts(session)) == 4
        with pytest.raises(ValueError, match="cursor"):
            await alerts.list_alerts(session, cursor="garbage")
        with pytest.raises(ValueError, match="state"):
            await alerts.list_alerts(session, state="closed")


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown action kind"):
        ActionSpec("sms", "+100")
    with pytest.raises(ValueError, match="needs a target"):
        ActionSpec("webhook", "")


async def test_unknown_transition_kind_is_refused(db: Database) -> None:
    async with db.sessionmaker() as session:
        with pytest.raises(ValueError, match="unknown transition kind"):
            await alerts.apply_transition(session, AlertTransition("r", "g", "explode"), [])


async def test_evidence_is_stored_as_plain_json(db: Database) -> None:
    evidence = {"since": T0, "labels": ("bearing", "imbalance"), "count": 3}
    async with db.session() as session:
        applied = await alerts.apply_transition(session, AlertTransition("r", "g", "open", "minor", T0, evidence))
        assert applied is not None
        no_evidence = await alerts.apply_transition(session, AlertTransition("r", "g2", "open", "minor", T0))
        assert no_evidence is not None
    async with db.session() as session:
        stored = await alerts.get_alert(session, applied.alert.id)
        assert stored is not None
        assert stored.evidence == {"since": "2026-11-25T12:00:00+00:00", "labels": ["bearing", "imbalance"], "count": 3}
        empty = await alerts.get_alert(session, no_evidence.alert.id)
        assert empty is not None
        assert empty.evidence is None
        with pytest.raises(ValueError, match="by"):
            await alerts.acknowledge(session, applied.alert.id, " ")
        with pytest.raises(alerts.AlertNotFound):
            await alerts.resolve(session, 999_999, "alice")


@dataclass(frozen=True)
class EngineShapedTransition:
    """The shape the rules engine produces: `group` instead of `group_key`, `at` derived from `at_ms`."""

    rule_id: str
    group: str
    kind: str
    severity: str
    at_ms: int
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def at(self) -> datetime:
        return datetime.fromtimestamp(self.at_ms / 1000, UTC)


async def test_engine_shaped_transitions_are_accepted(db: Database) -> None:
    at_ms = int(T0.timestamp() * 1000)
    async with db.session() as session:
        opened = await alerts.apply_transition(
            session, EngineShapedTransition("silent", "dev-9", "open", "warning", at_ms, {"quiet_s": 900}), [HOOK]
        )
        assert opened is not None
        assert opened.alert.group_key == "dev-9"
        assert opened.alert.opened_at == T0
        resolved = await alerts.apply_transition(
            session, EngineShapedTransition("silent", "dev-9", "resolve", "warning", at_ms + 1000)
        )
        assert resolved is not None
        assert resolved.alert.state == "resolved"


# ------------------------------------------------------------------------------------------------------------
# `apply_transitions`: the rules runtime's multi-row path writes what `apply_transition` writes one by one.

B0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
B_HOOK = ActionSpec("webhook", "http://127.0.0.1:9/hook", {"secret_env": "X"})
B_MAIL = ActionSpec("email", "ops@example.org")


def _t(rule: str, group: str, kind: str, s: int, severity: str = "major", ev: Any = None) -> AlertTransition:
    return AlertTransition(rule, group, kind, severity, B0 + timedelta(seconds=s), ev)


SEQUENCE: list[tuple[AlertTransition, list[ActionSpec]]] = [
    (_t("r1", "d1", "open", 0, ev={"count": 3, "at": B0}), [B_HOOK, B_MAIL]),
    (_t("r1", "d2", "open", 0), [B_HOOK]),
    (_t("r1", "d1", "open", 1), [B_HOOK]),  # already open: nothing
    (_t("r1", "d1", "renotify", 2, ev={"since_ms": 1}), [B_HOOK]),
    (_t("r1", "d1", "escalate", 3, "critical"), [B_MAIL]),
    (_t("r1", "d1", "escalate", 4, "critical"), [B_MAIL]),  # once only
    (_t("r1", "d2", "ack", 4), []),
    (_t("r1", "d2", "escalate", 5, "critical"), [B_MAIL]),  # acknowledged: not escalated
    (_t("r1", "d1", "resolve", 6, ev={"opened_ms": 0}), [B_HOOK]),
    (_t("r1", "d1", "resolve", 7), [B_HOOK]),  # nothing active
    (_t("r1", "d1", "open", 8), [B_HOOK]),  # a new alert of the same group
    (_t("r2", "d1", "renotify", 8), [B_HOOK]),  # never opened
    (_t("r1", "d2", "resolve", 9), []),
]


async def _dump(db: Database) -> dict[str, Any]:
    async with db.session() as s:
        a = (
            await s.execute(
                sa.text(
                    "SELECT id, rule_id, group_key, state, severity, opened_at, acknowledged_at, acknowledged_by,"
                    " resolved_at, resolved_by, resolved_how, last_notified_at, escalated, evidence"
                    " FROM alerts ORDER BY id"
                )
            )
        ).all()
        e = (await s.execute(sa.text("SELECT id, alert_id, at, kind, detail FROM alert_events ORDER BY id"))).all()
        o = (
            await s.execute(
                sa.text(
                    "SELECT id, alert_id, transition_id, action_index, kind, target, payload, idempotency_key, state"
                    " FROM outbox ORDER BY id"
                )
            )
        ).all()
    return {"alerts": [tuple(r) for r in a], "events": [tuple(r) for r in e], "outbox": [tuple(r) for r in o]}


async def test_batch_writes_the_same_rows_as_one_by_one(make_database: Callable[[], str]) -> None:
    one_url, many_url = make_database(), make_database()
    for url in (one_url, many_url):
        migrate.upgrade(url, use_timescaledb=False)
    async with Database(one_url) as db:
        expected_ids = []
        async with db.session() as s:
            for t, actions in SEQUENCE:
                applied = await alerts.apply_transition(s, t, actions)
                expected_ids.append(None if applied is None else applied.alert.id)
        one = await _dump(db)
    async with Database(many_url) as db:
        async with db.session() as s:
            ids = await alerts.apply_transitions(s, SEQUENCE[:5])
        async with db.session() as s:
            ids += await alerts.apply_transitions(s, SEQUENCE[5:])
        many = await _dump(db)
    assert ids == expected_ids
    assert [i for i, alert_id in enumerate(ids) if alert_id is None] == [2, 5, 7, 9, 11]
    assert many == one
    assert len(one["outbox"]) == 7
    assert len(one["events"]) == 8


async def test_batch_rolls_back_with_its_transaction(make_database: Callable[[], str]) -> None:
    url = make_database()
    migrate.upgrade(url, use_timescaledb=False)
    async with Database(url) as db:
        try:
            async with db.session() as s:
                await alerts.apply_transitions(s, SEQUENCE[:2])
                raise RuntimeError("crash before commit")
        except RuntimeError:
            pass
        dump = await _dump(db)
    assert dump == {"alerts": [], "events": [], "outbox": []}
