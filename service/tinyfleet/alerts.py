"""The alert lifecycle in the database: alerts, their history and the outbox of actions, in one transaction.

    async with db.session() as session:                       # one transaction
        applied = await apply_transition(session, AlertTransition("pump-bearing", "device=p1", "open",
                                                                    "critical", now, {"count": 3}),
                                         [ActionSpec("webhook", "https://ops.example/hook")])
    # committed together: the alert, its `open` event and one outbox row per action (or none of them)

Nothing here commits: the caller's transaction holds the alert change and its outbox rows, so either both
are stored or neither is (a crash between the two cannot lose an action or send one for a rolled-back alert).
Delivery is `tinyfleet.actions.OutboxWorker`'s job.

States: open → acknowledged → resolved (or open → resolved). At most one alert that is not resolved exists
per (rule, group): the partial unique index ``ux_alerts_active`` enforces it, and an `open` transition for a
group that already has one is a no-op (returns None), so replaying a transition never opens a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.store.models import ACTION_KINDS, ALERT_STATES, OUTBOX_STATES, Alert, AlertEvent, Base, Outbox
from tinyfleet.store.queries import Page, _check_limit, _decode_cursor, _encode_cursor

#: The predicate of the partial unique index ux_alerts_active (written exactly as in the migration).
ACTIVE_PREDICATE = "state <> 'resolved'"

#: Transition kinds the rules engine produces (acks and manual resolves come from people, see below).
TRANSITION_KINDS = ("open", "ack", "resolve", "escalate", "renotify")

alerts_t = Base.metadata.tables[Alert.__tablename__]
alert_events_t = Base.metadata.tables[AlertEvent.__tablename__]
outbox_t = Base.metadata.tables[Outbox.__tablename__]


class AlertError(Exception):
    """Base of the errors of this module."""


class AlertNotFound(AlertError, LookupError):
    """No alert with that id."""


class AlertStateError(AlertError, ValueError):
    """The transition is not allowed from the alert's current state (e.g. acknowledging a resolved alert)."""


class TransitionLike(Protocol):
    """What `apply_transition` reads; the rules engine's own Transition objects fit if they have these
    (the group may be called `group_key` or `group`)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def kind(self) -> Any: ...  # a str or a str-valued Enum
    @property
    def severity(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def evidence(self) -> Mapping[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class AlertTransition:
    """A change of one (rule, group)'s alert, as decided by the rules engine."""

    rule_id: str
    group_key: str
    kind: str  # open | ack | resolve | escalate | renotify
    severity: str = "warning"
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    evidence: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """One action of a rule: `kind` email|webhook|nodered|mqtt, `target` (addresses, URL, path or topic),
    `params` the sender's options (templates, `secret_env`, headers, payload, ...; see docs/actions.md)."""

    kind: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ACTION_KINDS:
            raise ValueError(f"unknown action kind {self.kind!r} (expected one of {', '.join(ACTION_KINDS)})")
        if not self.target:
            raise ValueError(f"a {self.kind} action needs a target")


@dataclass(frozen=True, slots=True)
class AlertRecord:
    id: int
    rule_id: str
    group_key: str
    state: str
    severity: str
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolved_how: str | None
    last_notified_at: datetime | None
    escalated: bool
    evidence: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class AlertEventRecord:
    id: int
    alert_id: int
    at: datetime
    kind: str
    detail: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    alert_id: int
    transition_id: int
    action_index: int
    kind: str
    target: str
    payload: dict[str, Any]
    idempotency_key: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


@dataclass(frozen=True, slots=True)
class AppliedTransition:
    """What one transition wrote: the alert after it, its history event and the outbox rows."""

    alert: AlertRecord
    event: AlertEventRecord
    outbox: list[OutboxRecord]


def idempotency_key(alert_id: int, transition_id: int, action_index: int) -> str:
    """Deterministic per (alert, transition, action): the same on every delivery attempt."""
    return f"tf-{alert_id}-{transition_id}-{action_index}"


def _cols(table: sa.Table, cls: type[Any]) -> list[sa.ColumnElement[Any]]:
    return [table.c[f.name] for f in fields(cls)]


def _rec(cls: type[Any], row: Any) -> Any:
    return cls(**row._mapping)


def _kind(value: Any) -> str:
    kind = value.value if isinstance(value, Enum) else value
    kind = str(kind)
    if kind not in TRANSITION_KINDS:
        raise ValueError(f"unknown transition kind {kind!r} (expected one of {', '.join(TRANSITION_KINDS)})")
    return kind


def _group_key(transition: Any) -> str:
    group = getattr(transition, "group_key", None)
    if group is None:
        group = getattr(transition, "group", None)
    if group is None:
        raise ValueError("a transition needs a group_key (or group)")
    return str(group)


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """Evidence as plain JSON: datetimes, enums and other objects the engine may put there become strings."""
    safe: dict[str, Any] = json.loads(json.dumps(value, default=_json_default))
    return safe


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(UTC).isoformat()


def alert_document(alert: AlertRecord) -> dict[str, Any]:
    """The alert as JSON (what actions carry and templates see as `alert`)."""
    return {
        "id": alert.id,
        "rule_id": alert.rule_id,
        "group_key": alert.group_key,
        "state": alert.state,
        "severity": alert.severity,
        "opened_at": _iso(alert.opened_at),
        "acknowledged_at": _iso(alert.acknowledged_at),
        "acknowledged_by": alert.acknowledged_by,
        "resolved_at": _iso(alert.resolved_at),
        "resolved_by": alert.resolved_by,
        "resolved_how": alert.resolved_how,
        "escalated": alert.escalated,
        "evidence": alert.evidence,
    }


# Statements built once, with bind parameters: SQLAlchemy then only binds and looks up its compiled form.
# Building them per call cost ~0.4 ms of CPU each (coercions and cache keys), which an alert storm pays per
# transition (measured: 775 → 330 µs per statement).
_JSON_OR_NULL = JSONB(none_as_null=True)
_ALERT_COLS = _cols(alerts_t, AlertRecord)
_ACTIVE_FOR_UPDATE = (
    sa.select(*_ALERT_COLS)
    .where(
        alerts_t.c.rule_id == sa.bindparam("rule_id"),
        alerts_t.c.group_key == sa.bindparam("group_key"),
        alerts_t.c.state != "resolved",
    )
    .with_for_update()
)
_BY_ID_FOR_UPDATE = sa.select(*_ALERT_COLS).where(alerts_t.c.id == sa.bindparam("alert_id")).with_for_update()
_INSERT_EVENT = (
    sa.insert(alert_events_t)
    .values(
        alert_id=sa.bindparam("alert_id"),
        at=sa.bindparam("at"),
        kind=sa.bindparam("kind"),
        detail=sa.bindparam("detail", type_=_JSON_OR_NULL),
    )
    .returning(*_cols(alert_events_t, AlertEventRecord))
)
_INSERT_OUTBOX = sa.insert(outbox_t).returning(*_cols(outbox_t, OutboxRecord))
_UPDATES: dict[tuple[str, ...], sa.Update] = {}


def _update_stmt(columns: tuple[str, ...]) -> sa.Update:
    stmt = _UPDATES.get(columns)
    if stmt is None:
        stmt = _UPDATES[columns] = (
            sa.update(alerts_t)
            .where(alerts_t.c.id == sa.bindparam("alert_id_"))
            .values({c: sa.bindparam(f"v_{c}") for c in columns})
            .returning(*_ALERT_COLS)
        )
    return stmt


async def _active_for_update(session: AsyncSession, rule_id: str, group_key: str) -> AlertRecord | None:
    row = (await session.execute(_ACTIVE_FOR_UPDATE, {"rule_id": rule_id, "group_key": group_key})).first()
    return None if row is None else _rec(AlertRecord, row)


async def _by_id_for_update(session: AsyncSession, alert_id: int) -> AlertRecord:
    row = (await session.execute(_BY_ID_FOR_UPDATE, {"alert_id": alert_id})).first()
    if row is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return _rec(AlertRecord, row)  # type: ignore[no-any-return]


async def _update(session: AsyncSession, alert_id: int, **values: Any) -> AlertRecord:
    stmt = _update_stmt(tuple(sorted(values)))
    params = {"alert_id_": alert_id, **{f"v_{k}": v for k, v in values.items()}}
    return _rec(AlertRecord, (await session.execute(stmt, params)).one())  # type: ignore[no-any-return]


async def _record_transition(
    session: AsyncSession,
    alert: AlertRecord,
    kind: str,
    at: datetime,
    detail: Mapping[str, Any] | None,
    actions: Sequence[ActionSpec],
) -> AppliedTransition:
    """Append the history event, then one outbox row per action keyed by (alert, event, index)."""
    params = {"alert_id": alert.id, "at": at, "kind": kind, "detail": dict(detail) if detail else None}
    event_row = (await session.execute(_INSERT_EVENT, params)).one()
    event: AlertEventRecord = _rec(AlertEventRecord, event_row)
    outbox: list[OutboxRecord] = []
    if actions:
        document = alert_document(alert)
        transition = {"id": event.id, "kind": kind, "at": _iso(at), "detail": event.detail}
        rows = [
            {
                "alert_id": alert.id,
                "transition_id": event.id,
                "action_index": index,
                "kind": action.kind,
                "target": action.target,
                "payload": {"alert": document, "transition": transition, "params": dict(action.params)},
                "idempotency_key": idempotency_key(alert.id, event.id, index),
            }
            for index, action in enumerate(actions)
        ]
        result = await session.execute(_INSERT_OUTBOX, rows)
        outbox = sorted((_rec(OutboxRecord, r) for r in result), key=lambda o: o.action_index)
        # Wakes listening outbox workers when (and only if) this transaction commits.
        await session.execute(_NOTIFY_OUTBOX)
    return AppliedTransition(alert, event, outbox)


#: NOTIFY channel signalled by every transaction that writes outbox rows.
OUTBOX_CHANNEL = "tinyfleet_outbox"
_NOTIFY_OUTBOX = sa.select(sa.func.pg_notify(OUTBOX_CHANNEL, ""))
_OPEN = (
    pg_insert(alerts_t)
    .values(
        rule_id=sa.bindparam("rule_id"),
        group_key=sa.bindparam("group_key"),
        state="open",
        severity=sa.bindparam("severity"),
        opened_at=sa.bindparam("at"),
        last_notified_at=sa.bindparam("at"),
        evidence=sa.bindparam("evidence", type_=_JSON_OR_NULL),
    )
    # A literal predicate: a bound parameter would not match the partial index once psycopg prepares the
    # statement server-side ("no unique or exclusion constraint matching the ON CONFLICT").
    .on_conflict_do_nothing(
        index_elements=[alerts_t.c.rule_id, alerts_t.c.group_key], index_where=sa.text(ACTIVE_PREDICATE)
    )
    .returning(*_ALERT_COLS)
)


async def apply_transition(
    session: AsyncSession, transition: TransitionLike, actions: Sequence[ActionSpec] = ()
) -> AppliedTransition | None:
    """Apply one transition of the rules engine inside the caller's transaction (does not commit).

    * ``open``: creates the alert unless (rule, group) already has one that is not resolved (then None);
    * ``ack``: open → acknowledged (by ``"rules"``);
    * ``resolve``: auto-resolves the active alert;
    * ``escalate``: marks an open (unacknowledged, not yet escalated) alert escalated, with the new severity;
    * ``renotify``: records a re-notification of the active alert.

    Returns None when there is nothing to change (no active alert, already escalated, ...): no event, no action.
    """
    kind = _kind(transition.kind)
    group_key = _group_key(transition)
    at = transition.at
    evidence = _json_safe(dict(transition.evidence)) if transition.evidence is not None else None
    detail: dict[str, Any] | None = {"evidence": evidence} if evidence is not None else None
    if kind == "open":
        params = {
            "rule_id": transition.rule_id,
            "group_key": group_key,
            "severity": transition.severity,
            "at": at,
            "evidence": evidence,
        }
        row = (await session.execute(_OPEN, params)).first()
        if row is None:
            return None
        return await _record_transition(session, _rec(AlertRecord, row), "open", at, detail, actions)

    alert = await _active_for_update(session, transition.rule_id, group_key)
    if alert is None:
        return None
    if kind == "ack":
        if alert.state != "open":
            return None
        alert = await _update(session, alert.id, state="acknowledged", acknowledged_at=at, acknowledged_by="rules")
    elif kind == "resolve":
        alert = await _update(
            session, alert.id, state="resolved", resolved_at=at, resolved_by="rules", resolved_how="auto"
        )
    elif kind == "escalate":
        if alert.state != "open" or alert.escalated:
            return None
        alert = await _update(session, alert.id, escalated=True, severity=transition.severity, last_notified_at=at)
    else:  # renotify
        alert = await _update(session, alert.id, last_notified_at=at)
    return await _record_transition(session, alert, kind, at, detail, actions)


# ---------------------------------------------------------------------------------------------------------------
# Many transitions at once (the rules runtime): a few multi-row statements on the session's psycopg connection.
# The ORM path above costs ~1 ms of CPU per transition (3–4 statements through SQLAlchemy's async session);
# an alert storm writes hundreds per second. Same rows, same checks, same transaction.

_ALERT_COLUMNS = ", ".join(f.name for f in fields(AlertRecord))
_A_ALERT_COLUMNS = ", ".join(f"a.{f.name}" for f in fields(AlertRecord))

_OPEN_MANY_SQL = f"""
INSERT INTO alerts (rule_id, group_key, state, severity, opened_at, last_notified_at, evidence)
SELECT u.r, u.g, 'open', u.s, u.t, u.t, u.e::jsonb
FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[], %s::text[]) WITH ORDINALITY AS u(r, g, s, t, e, n)
ORDER BY u.n
ON CONFLICT (rule_id, group_key) WHERE {ACTIVE_PREDICATE} DO NOTHING
RETURNING {_ALERT_COLUMNS}
"""

# One UPDATE for every kind but `open`, with the checks of `apply_transition`: ack and escalate only an open
# alert (escalate once), resolve and renotify any active one.
_CHANGE_MANY_SQL = f"""
UPDATE alerts a SET
    state = CASE u.k WHEN 'resolve' THEN 'resolved' WHEN 'ack' THEN 'acknowledged' ELSE a.state END,
    acknowledged_at = CASE WHEN u.k = 'ack' THEN u.t ELSE a.acknowledged_at END,
    acknowledged_by = CASE WHEN u.k = 'ack' THEN 'rules' ELSE a.acknowledged_by END,
    resolved_at = CASE WHEN u.k = 'resolve' THEN u.t ELSE a.resolved_at END,
    resolved_by = CASE WHEN u.k = 'resolve' THEN 'rules' ELSE a.resolved_by END,
    resolved_how = CASE WHEN u.k = 'resolve' THEN 'auto' ELSE a.resolved_how END,
    escalated = CASE WHEN u.k = 'escalate' THEN true ELSE a.escalated END,
    severity = CASE WHEN u.k = 'escalate' THEN u.s ELSE a.severity END,
    last_notified_at = CASE WHEN u.k IN ('escalate', 'renotify') THEN u.t ELSE a.last_notified_at END
FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[]) AS u(r, g, k, s, t)
WHERE a.rule_id = u.r AND a.group_key = u.g AND a.{ACTIVE_PREDICATE}
  AND (u.k IN ('resolve', 'renotify') OR (a.state = 'open' AND (u.k = 'ack' OR NOT a.escalated)))
RETURNING {_A_ALERT_COLUMNS}
"""

_EVENTS_MANY_SQL = """
INSERT INTO alert_events (alert_id, at, kind, detail)
SELECT u.a, u.t, u.k, u.d::jsonb
FROM unnest(%s::int8[], %s::timestamptz[], %s::text[], %s::text[]) WITH ORDINALITY AS u(a, t, k, d, n)
ORDER BY u.n
RETURNING id, alert_id
"""

_OUTBOX_MANY_SQL = """
INSERT INTO outbox (alert_id, transition_id, action_index, kind, target, payload, idempotency_key)
SELECT u.a, u.e, u.i, u.k, u.t, u.p::jsonb, u.key
FROM unnest(%s::int8[], %s::int8[], %s::int4[], %s::text[], %s::text[], %s::text[], %s::text[])
     WITH ORDINALITY AS u(a, e, i, k, t, p, key, n)
ORDER BY u.n
"""


def _segments(keys: Sequence[tuple[str, str]]) -> list[tuple[int, int]]:
    """Split into consecutive runs in which no (rule, group) appears twice (one statement per run and kind
    then sees each alert at most once, and the history keeps the order of the transitions)."""
    out: list[tuple[int, int]] = []
    start = 0
    seen: set[tuple[str, str]] = set()
    for i, k in enumerate(keys):
        if k in seen:
            out.append((start, i))
            start, seen = i, set()
        seen.add(k)
    if start < len(keys):
        out.append((start, len(keys)))
    return out


async def apply_transitions(
    session: AsyncSession, items: Sequence[tuple[TransitionLike, Sequence[ActionSpec]]]
) -> list[int | None]:
    """`apply_transition` for each (transition, actions) in order, inside the caller's transaction (does not
    commit), in a few multi-row statements: per run of distinct (rule, group)s one INSERT of the opened alerts,
    one UPDATE of the others and one INSERT of their history events; then one INSERT of all outbox rows and
    one NOTIFY. Returns per item the alert's id, or None where `apply_transition` would (nothing to change)."""
    result: list[int | None] = [None] * len(items)
    if not items:
        return result
    prepared = []
    for transition, actions in items:
        kind = _kind(transition.kind)
        evidence = _json_safe(dict(transition.evidence)) if transition.evidence is not None else None
        prepared.append((transition.rule_id, _group_key(transition), kind, transition.severity, transition.at,
                         evidence, actions))  # fmt: skip
    conn = await session.connection()
    raw = (await conn.get_raw_connection()).driver_connection
    if raw is None:
        raise AlertError("the session's connection is closed")
    outbox: list[tuple[int, int, int, str, str, str, str]] = []
    async with raw.cursor() as cur:
        for start, end in _segments([(p[0], p[1]) for p in prepared]):
            seg = range(start, end)
            alerts_of: dict[tuple[str, str], AlertRecord] = {}
            opens = [i for i in seg if prepared[i][2] == "open"]
            changes = [i for i in seg if prepared[i][2] != "open"]
            if opens:
                ps = [prepared[i] for i in opens]
                await cur.execute(_OPEN_MANY_SQL, (
                    [p[0] for p in ps], [p[1] for p in ps], [p[3] for p in ps], [p[4] for p in ps],
                    [None if p[5] is None else json.dumps(p[5]) for p in ps],
                ))  # fmt: skip
                for row in await cur.fetchall():
                    rec = AlertRecord(*row)
                    alerts_of[(rec.rule_id, rec.group_key)] = rec
            if changes:
                ps = [prepared[i] for i in changes]
                await cur.execute(_CHANGE_MANY_SQL, (
                    [p[0] for p in ps], [p[1] for p in ps], [p[2] for p in ps], [p[3] for p in ps],
                    [p[4] for p in ps],
                ))  # fmt: skip
                for row in await cur.fetchall():
                    rec = AlertRecord(*row)
                    alerts_of[(rec.rule_id, rec.group_key)] = rec
            done = [(i, alerts_of[(prepared[i][0], prepared[i][1])]) for i in seg
                    if (prepared[i][0], prepared[i][1]) in alerts_of]  # fmt: skip
            if not done:
                continue
            details = [None if prepared[i][5] is None else {"evidence": prepared[i][5]} for i, _ in done]
            await cur.execute(_EVENTS_MANY_SQL, (
                [a.id for _, a in done], [prepared[i][4] for i, _ in done], [prepared[i][2] for i, _ in done],
                [None if d is None else json.dumps(d) for d in details],
            ))  # fmt: skip
            event_of = {alert_id: event_id for event_id, alert_id in await cur.fetchall()}
            for (i, alert), detail in zip(done, details, strict=True):
                result[i] = alert.id
                actions = prepared[i][6]
                if not actions:
                    continue
                event_id = event_of[alert.id]
                kind, at = prepared[i][2], prepared[i][4]
                document = alert_document(alert)
                change = {"id": event_id, "kind": kind, "at": _iso(at), "detail": detail}
                for index, action in enumerate(actions):
                    payload = {"alert": document, "transition": change, "params": dict(action.params)}
                    outbox.append((alert.id, event_id, index, action.kind, action.target,
                                   json.dumps(payload, default=_json_default),
                                   idempotency_key(alert.id, event_id, index)))  # fmt: skip
        if outbox:
            await cur.execute(_OUTBOX_MANY_SQL, tuple(list(col) for col in zip(*outbox, strict=True)))
            # Wakes listening outbox workers when (and only if) this transaction commits.
            await cur.execute("SELECT pg_notify(%s, '')", (OUTBOX_CHANNEL,))
    return result


async def acknowledge(
    session: AsyncSession,
    alert_id: int,
    by: str,
    actions: Sequence[ActionSpec] = (),
    *,
    at: datetime | None = None,
) -> AppliedTransition | None:
    """A person acknowledges an alert (does not commit). Already acknowledged → None; resolved → AlertStateError."""
    if not by or not by.strip():
        raise ValueError("say who: `by` must not be empty")
    at = at or datetime.now(UTC)
    alert = await _by_id_for_update(session, alert_id)
    if alert.state == "resolved":
        raise AlertStateError(f"alert {alert_id} is resolved")
    if alert.state == "acknowledged":
        return None
    alert = await _update(session, alert_id, state="acknowledged", acknowledged_at=at, acknowledged_by=by)
    return await _record_transition(session, alert, "ack", at, {"by": by}, actions)


async def resolve(
    session: AsyncSession,
    alert_id: int,
    by: str,
    actions: Sequence[ActionSpec] = (),
    *,
    at: datetime | None = None,
) -> AppliedTransition | None:
    """A person resolves an alert (``resolved_how = 'manual'``; does not commit). Already resolved → None."""
    if not by or not by.strip():
        raise ValueError("say who: `by` must not be empty")
    at = at or datetime.now(UTC)
    alert = await _by_id_for_update(session, alert_id)
    if alert.state == "resolved":
        return None
    alert = await _update(session, alert_id, state="resolved", resolved_at=at, resolved_by=by, resolved_how="manual")
    return await _record_transition(session, alert, "resolve", at, {"by": by}, actions)


async def get_alert(session: AsyncSession, alert_id: int) -> AlertRecord | None:
    row = (await session.execute(sa.select(*_cols(alerts_t, AlertRecord)).where(alerts_t.c.id == alert_id))).first()
    return None if row is None else _rec(AlertRecord, row)


async def active_alerts(session: AsyncSession) -> list[AlertRecord]:
    """Every alert that is not resolved (what the rules engine rebuilds its state from after a restart)."""
    query = sa.select(*_cols(alerts_t, AlertRecord)).where(alerts_t.c.state != "resolved").order_by(alerts_t.c.id)
    return [_rec(AlertRecord, r) for r in await session.execute(query)]


async def list_alerts(
    session: AsyncSession,
    *,
    state: str | None = None,
    rule_id: str | None = None,
    severity: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[AlertRecord]:
    """Alerts newest first (by id), optionally filtered; keyset pages like the other listings."""
    if state is not None and state not in ALERT_STATES:
        raise ValueError(f"unknown alert state {state!r}")
    filters = {"state": state, "rule_id": rule_id, "severity": severity}
    return await _newest_first(session, alerts_t, AlertRecord, filters, limit, cursor, "a")


async def list_alert_events(session: AsyncSession, alert_id: int) -> list[AlertEventRecord]:
    """The history of one alert, oldest first."""
    t = alert_events_t.c
    query = sa.select(*_cols(alert_events_t, AlertEventRecord)).where(t.alert_id == alert_id).order_by(t.id)
    return [_rec(AlertEventRecord, r) for r in await session.execute(query)]


async def list_outbox(
    session: AsyncSession,
    *,
    state: str | None = None,
    alert_id: int | None = None,
    kind: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> Page[OutboxRecord]:
    """Outbox rows newest first (by id): pending, delivered or dead (with their last error)."""
    if state is not None and state not in OUTBOX_STATES:
        raise ValueError(f"unknown outbox state {state!r}")
    filters = {"state": state, "alert_id": alert_id, "kind": kind}
    return await _newest_first(session, outbox_t, OutboxRecord, filters, limit, cursor, "o")


async def _newest_first(
    session: AsyncSession,
    table: sa.Table,
    record: type[Any],
    filters: dict[str, Any],
    limit: int,
    cursor: str | None,
    cursor_kind: str,
) -> Page[Any]:
    """Rows of `table` newest first by id, equal to every non-None filter, in keyset pages."""
    _check_limit(limit)
    query = sa.select(*_cols(table, record)).order_by(table.c.id.desc()).limit(limit + 1)
    for column, value in filters.items():
        if value is not None:
            query = query.where(table.c[column] == value)
    if cursor is not None:
        (before,) = _decode_cursor(cursor_kind, cursor, (int,))
        query = query.where(table.c.id < before)
    rows = [_rec(record, r) for r in await session.execute(query)]
    return _paged(rows, limit, cursor_kind)


def _paged(rows: list[Any], limit: int, kind: str) -> Page[Any]:
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, _encode_cursor(kind, [rows[-1].id]))
    return Page(rows, None)
