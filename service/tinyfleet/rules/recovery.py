"""What the rules runtime keeps in and reads back from the database: checkpoints, events to replay, device tags.

    cp = await load_checkpoint(session, "tinyfleet-ingest")          # None on a first start
    engine = RuleEngine.restore(ruleset, cp.snapshot)
    async for facts in events_since(database, cp.fed_until_ms, cp.fed_keys):   # receive order, in pages
        ...
    await save_checkpoint(session, Checkpoint(...))

A checkpoint is the engine's snapshot plus the position of the last event it was fed: `fed_until_ms` (the
largest receive time fed) and the keys of the events at exactly that millisecond that were fed (a batch
boundary may split one millisecond). The events after that position are in the `events` table (the ingest
commits before the rules see a batch), so replaying them rebuilds the state the engine had when it stopped.

Transitions the replay produces may have been written already (the checkpoint is periodic, the alerts are
written per batch): `last_transitions` gives, per (rule, group), the time of the newest alert event, and a
replayed transition not later than that is a repeat (a replayed transition is never later than the live one:
the replay evaluates wake-ups at their exact due times, the live tick up to a second after).
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.rules.engine import EventFact, to_ms
from tinyfleet.store.db import Database
from tinyfleet.store.models import Alert, AlertEvent, Base, Device, Event, RulesCheckpoint

__all__ = [
    "Checkpoint",
    "DeviceInfo",
    "EventKey",
    "device_info",
    "events_since",
    "last_transitions",
    "load_checkpoint",
    "save_checkpoint",
]

EventKey = tuple[str, int, int]

_checkpoints = Base.metadata.tables[RulesCheckpoint.__tablename__]
_events = Base.metadata.tables[Event.__tablename__]
_devices = Base.metadata.tables[Device.__tablename__]
_alerts = Base.metadata.tables[Alert.__tablename__]
_alert_events = Base.metadata.tables[AlertEvent.__tablename__]

#: The alert events a rules engine produces (not the actions' delivery records, not an operator's ack).
_ENGINE_KINDS = ("open", "resolve", "escalate", "renotify")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    name: str
    snapshot: dict[str, Any]
    fed_until_ms: int | None
    fed_keys: frozenset[EventKey]
    events_fed: int
    saved_at: datetime


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """What the rules see of a device besides its events: `site` is its tag `site`."""

    site: str | None
    tags: Mapping[str, str] | None


def encode_snapshot(snapshot: Mapping[str, Any], duty: float = 1.0) -> bytes:
    """Compressed JSON of `RuleEngine.snapshot()`. Meant for a worker thread: the JSON is made one rule at a
    time, so the thread gives the GIL back between rules (one `json.dumps` of a big state holds it for its
    whole run, which would stall the event loop and the MQTT thread); zlib level 1 releases it too.
    `duty` < 1 paces the work to that share of a core (sleeping between rules)."""
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    compressor = zlib.compressobj(1)
    head = {k: v for k, v in snapshot.items() if k != "rules"}
    out = [compressor.compress((dumps(head)[:-1] + ("," if head else "") + '"rules":{').encode())]
    for i, (rule_id, state) in enumerate(snapshot["rules"].items()):
        started = time.perf_counter()
        out.append(compressor.compress(("," if i else "").encode() + (dumps(rule_id) + ":" + dumps(state)).encode()))
        if duty < 1.0:
            time.sleep((time.perf_counter() - started) * (1.0 / duty - 1.0))
    out.append(compressor.compress(b"}}"))
    out.append(compressor.flush())
    return b"".join(out)


def decode_snapshot(data: bytes) -> dict[str, Any]:
    value = json.loads(zlib.decompress(data))
    if not isinstance(value, dict):
        raise ValueError("a rules checkpoint is not a JSON object")
    return value


async def load_checkpoint(session: AsyncSession, name: str) -> Checkpoint | None:
    c = _checkpoints.c
    row = (await session.execute(sa.select(_checkpoints).where(c.name == name))).first()
    if row is None:
        return None
    return Checkpoint(
        name=row.name,
        snapshot=decode_snapshot(row.snapshot),
        fed_until_ms=to_ms(row.fed_until) if row.fed_until is not None else None,
        fed_keys=frozenset((d, int(b), int(s)) for d, b, s in row.fed_keys),
        events_fed=row.events_fed,
        saved_at=row.saved_at,
    )


async def save_checkpoint(session: AsyncSession, name: str, encoded: bytes, fed_until_ms: int | None,
                          fed_keys: Iterable[EventKey], events_fed: int) -> None:  # fmt: skip
    """Upsert the checkpoint of `name` (`encoded`: `encode_snapshot(engine.snapshot())`)."""
    values = {
        "name": name,
        "saved_at": datetime.now(UTC),
        "fed_until": datetime.fromtimestamp(fed_until_ms / 1000, UTC) if fed_until_ms is not None else None,
        "fed_keys": [list(k) for k in sorted(fed_keys)],
        "events_fed": events_fed,
        "snapshot": encoded,
    }
    stmt = pg_insert(_checkpoints).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[_checkpoints.c.name], set_={k: stmt.excluded[k] for k in values if k != "name"}
    )
    await session.execute(stmt)


def _fact(row: Any, devices: Mapping[str, DeviceInfo]) -> EventFact:
    info = devices.get(row.device_id)
    return EventFact(
        device_id=row.device_id, time=to_ms(row.received_at), model=row.model, kind=row.kind, mver=row.mver,
        label=row.label, score=row.score, anom=row.anom, lat=row.lat_us, x=row.extras,
        site=info.site if info is not None else None, tags=info.tags if info is not None else None,
    )  # fmt: skip


async def events_since(
    database: Database,
    fed_until_ms: int,
    fed_keys: frozenset[EventKey] = frozenset(),
    devices: Mapping[str, DeviceInfo] | None = None,
    *,
    page: int = 5000,
) -> AsyncIterator[tuple[list[EventFact], int, frozenset[EventKey]]]:
    """The events received at or after `fed_until_ms` (less `fed_keys`), in receive order, as engine facts
    (time = receive time, as live), in pages: `(facts, position_ms, keys_at_position)` — the position after
    the page, to continue from. One server-side cursor: a single scan of the BRIN range, however long."""
    e = _events.c
    query = (
        sa.select(e.device_id, e.boot, e.seq, e.received_at, e.model, e.mver, e.kind, e.label, e.score, e.anom,
                  e.lat_us, e.extras)
        .where(e.received_at >= datetime.fromtimestamp(fed_until_ms / 1000, UTC))
        .order_by(e.received_at, e.device_id, e.boot, e.seq)
    )  # fmt: skip
    known = devices or {}
    position, at_position = fed_until_ms, set(fed_keys)
    async with database.engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=page))
        async for rows in result.partitions(page):
            facts: list[EventFact] = []
            for row in rows:
                key = (row.device_id, row.boot, row.seq)
                t = to_ms(row.received_at)
                if t == fed_until_ms and key in fed_keys:
                    continue
                if t > position:
                    position, at_position = t, set()
                at_position.add(key)
                facts.append(_fact(row, known))
            if facts:
                yield facts, position, frozenset(at_position)


async def last_transitions(session: AsyncSession, since_ms: int) -> dict[tuple[str, str], int]:
    """Per (rule, group): the time of its newest engine transition recorded at or after `since_ms`."""
    a, ev = _alerts.c, _alert_events.c
    query = (
        sa.select(a.rule_id, a.group_key, sa.func.max(ev.at))
        .join(_alert_events, ev.alert_id == a.id)
        .where(ev.at >= datetime.fromtimestamp(since_ms / 1000, UTC), ev.kind.in_(_ENGINE_KINDS))
        .group_by(a.rule_id, a.group_key)
    )
    return {(r, g): to_ms(at) for r, g, at in await session.execute(query)}


async def device_info(session: AsyncSession) -> dict[str, DeviceInfo]:
    """Site and tags of every device that has tags (the others are the default: no site, no tags)."""
    d = _devices.c
    rows = await session.execute(sa.select(d.id, d.tags).where(d.tags != sa.text("'{}'::jsonb")))
    out: dict[str, DeviceInfo] = {}
    for device_id, tags in rows:
        if not isinstance(tags, dict):
            continue
        clean = {str(k): str(v) for k, v in tags.items() if v is not None}
        out[device_id] = DeviceInfo(clean.get("site"), clean)
    return out


async def devices_last_seen(session: AsyncSession) -> list[tuple[str, str | None, int]]:
    """(device, model, last seen ms) of every device that was ever seen: the absence clocks of a fresh start."""
    d = _devices.c
    rows = await session.execute(sa.select(d.id, d.model, d.last_seen).where(d.last_seen.is_not(None)))
    return [(i, m, to_ms(t)) for i, m, t in rows]
