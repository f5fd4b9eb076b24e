"""`tinyfleet rules test`: recorded events (a JSON-lines file or the events table) replayed through a rule set.

Pure apart from reading the file / the database; the engine's `advance` gives the exact times of time-driven
transitions (absence, `for:`, window expiry, escalation), so the output says when an alert would have fired.

Events file: one JSON object per line (blank lines and lines starting with `#` are skipped)::

    {"device": "pump-1", "time": "2026-11-25T10:00:00Z", "model": "vib-cls", "label": "normal", "score": 0.97}

`device` (or `device_id`), `time` (ISO-8601, naive = UTC, or epoch milliseconds) and `model` are required; the
v1 event fields `mver`, `kind` (0..3 or classification/anomaly/regression/detection, default 0), `label` (index,
or a name of the model's labels in the rule set), `score`, `anom`, `lat` (µs), `x` (extras) are optional, as
are `site` and `tags` (the device's). `v`, `ts`, `seq`, `boot`, `val`, `top` are accepted and ignored. Events
are replayed in time order (a stable sort: equal times keep the file order).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tinyfleet.rules.engine import EventFact, RuleEngine, Transition, _rule_per, to_ms
from tinyfleet.rules.loader import RuleSet

__all__ = [
    "EventsFileError",
    "ReplayResult",
    "db_event_pages",
    "format_time",
    "parse_event",
    "parse_time",
    "read_events_file",
    "run_replay",
]

KINDS = {"classification": 0, "anomaly": 1, "regression": 2, "detection": 3}
_FIELDS = {"mver", "kind", "label", "score", "anom", "lat", "x", "site", "tags"}
_IGNORED = {"v", "ts", "seq", "boot", "val", "top"}
_KNOWN = {"device", "device_id", "time", "model"} | _FIELDS | _IGNORED


class EventsFileError(ValueError):
    """A bad line of an events file: `str()` is `FILE:LINE: message`."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path = path
        self.line = line
        self.message = message


def parse_time(value: object) -> int:
    """ISO-8601 (naive = UTC; `Z` accepted) or epoch milliseconds (int or digit string) → epoch ms."""
    if isinstance(value, bool):
        raise ValueError("time must be ISO-8601 or epoch milliseconds, got a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        s = value.strip()
        if s.isdigit():
            return int(s)
        try:
            dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError(f"bad time {value!r}: use ISO-8601 (2026-11-25T10:00:00Z) or epoch ms") from None
        return to_ms(dt)
    raise ValueError(f"time must be ISO-8601 or epoch milliseconds, got {type(value).__name__}")


def format_time(ms: int) -> str:
    """`2026-11-25T10:03:12Z` (milliseconds only when not zero)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    if ms % 1000:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _number(d: Mapping[str, Any], key: str, *, integer: bool = False) -> Any:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or (integer and not isinstance(v, int)):
        raise ValueError(f"{key}: expected {'an integer' if integer else 'a number'}, got {json.dumps(v)}")
    return v


def parse_event(d: object, ruleset: RuleSet) -> EventFact:
    """One decoded JSON object of an events file → EventFact; ValueError with a short reason."""
    if not isinstance(d, dict):
        raise ValueError(f"expected a JSON object, got {type(d).__name__}")
    unknown = sorted(set(d) - _KNOWN)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}")
    device = d.get("device", d.get("device_id"))
    if not isinstance(device, str) or not device:
        raise ValueError("device: required, a non-empty string")
    if "time" not in d:
        raise ValueError("time: required (ISO-8601 or epoch milliseconds)")
    t = parse_time(d["time"])
    model = d.get("model")
    if isinstance(model, bool) or not isinstance(model, str | int) or model == "":
        raise ValueError("model: required, a string or an integer")
    kind = d.get("kind", 0)
    if isinstance(kind, str):
        if kind.lower() not in KINDS:
            raise ValueError(f"kind: unknown kind {kind!r} (use {', '.join(KINDS)} or 0..3)")
        kind = KINDS[kind.lower()]
    elif isinstance(kind, bool) or not isinstance(kind, int) or not 0 <= kind <= 3:
        raise ValueError(f"kind: expected 0..3 or a kind name, got {json.dumps(kind)}")
    label = d.get("label")
    if isinstance(label, str):
        names = ruleset.labels(model)
        if names is None:
            raise ValueError(f"label: {label!r} is a name, but the rule set lists no labels for model {model!r}")
        if label not in names:
            raise ValueError(f"label: unknown label {label!r} of model {model!r} (known: {', '.join(names)})")
        label = names[label]
    elif label is not None and (isinstance(label, bool) or not isinstance(label, int) or label < 0):
        raise ValueError(f"label: expected an index or a label name, got {json.dumps(label)}")
    x = d.get("x")
    if x is not None and not isinstance(x, dict):
        raise ValueError("x: expected an object")
    site = d.get("site")
    if site is not None and not isinstance(site, str):
        raise ValueError("site: expected a string")
    tags = d.get("tags")
    if tags is not None and (not isinstance(tags, dict) or not all(isinstance(v, str) for v in tags.values())):
        raise ValueError("tags: expected an object of strings")
    return EventFact(
        device_id=device, time=t, model=model, kind=kind, mver=_number(d, "mver", integer=True), label=label,
        score=_number(d, "score"), anom=_number(d, "anom"), lat=_number(d, "lat", integer=True), x=x, site=site,
        tags=tags,
    )  # fmt: skip


def read_events_file(path: str | Path, ruleset: RuleSet) -> list[EventFact]:
    """All events of a JSON-lines file, sorted by time (stable). EventsFileError names the first bad line;
    OSError when the file cannot be read."""
    name = str(path)
    events: list[EventFact] = []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as exc:
                raise EventsFileError(name, no, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
            try:
                events.append(parse_event(obj, ruleset))
            except ValueError as exc:
                raise EventsFileError(name, no, str(exc)) from None
    events.sort(key=lambda e: e.time)  # all times are int ms here
    return events


# ---------------------------------------------------------------------------------------------------------------
# the replay


@dataclass
class ReplayResult:
    ruleset: RuleSet
    transitions: list[Transition] = field(default_factory=list)
    events: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    until_ms: int | None = None
    devices: set[str] = field(default_factory=set)

    def group_label(self, t: Transition) -> str:
        rule = self.ruleset.rule(t.rule_id)
        per = _rule_per(rule, rule.per) or "device"
        if per == "global":
            return "group=global"
        return f"{per.removeprefix('tag:')}={t.group}"

    def line(self, t: Transition) -> str:
        evidence = json.dumps(t.evidence, separators=(",", ":"), sort_keys=True, default=str)
        return (f"{format_time(t.at_ms)} {t.kind.upper()} {t.rule_id} {self.group_label(t)} "
                f"severity={t.severity} evidence={evidence}")  # fmt: skip

    def summary(self) -> dict[str, dict[str, int]]:
        out = {r.id: {"opened": 0, "resolved": 0, "escalated": 0, "renotified": 0}
               for r in self.ruleset.rules if r.enabled}  # fmt: skip
        names = {"open": "opened", "resolve": "resolved", "escalate": "escalated", "renotify": "renotified"}
        for t in self.transitions:
            out.setdefault(t.rule_id, {"opened": 0, "resolved": 0, "escalated": 0, "renotified": 0})
            out[t.rule_id][names[t.kind]] += 1
        return out

    def table(self) -> list[str]:
        summary = self.summary()
        width = max([len("rule"), *(len(r) for r in summary)])
        rows = [f"{'rule':<{width}}  opened  resolved  escalated  renotified"]
        for rid, c in summary.items():
            rows.append(f"{rid:<{width}}  {c['opened']:>6}  {c['resolved']:>8}  {c['escalated']:>9}  "
                        f"{c['renotified']:>10}")  # fmt: skip
        return rows

    def to_json(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "devices": sorted(self.devices),
            "first": format_time(self.first_ms) if self.first_ms is not None else None,
            "last": format_time(self.last_ms) if self.last_ms is not None else None,
            "until": format_time(self.until_ms) if self.until_ms is not None else None,
            "transitions": [
                {
                    "time": format_time(t.at_ms),
                    "at_ms": t.at_ms,
                    "kind": t.kind,
                    "rule": t.rule_id,
                    "group": t.group,
                    "severity": t.severity,
                    "evidence": t.evidence,
                }
                for t in self.transitions
            ],
            "summary": self.summary(),
        }


class Replayer:
    """Feeds events (in time order) through a fresh engine, evaluating due wake-ups at their own times."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.engine = RuleEngine(ruleset)
        self.result = ReplayResult(ruleset)

    def feed(self, events: Iterable[EventFact]) -> None:
        r, eng = self.result, self.engine
        for e in events:
            t = to_ms(e.time)
            r.transitions += eng.advance(t - 1)
            r.transitions += eng.feed((e,))
            r.events += 1
            r.devices.add(e.device_id)
            if r.first_ms is None:
                r.first_ms = t
            r.last_ms = t if r.last_ms is None else max(r.last_ms, t)

    def finish(self, until: int | None = None) -> ReplayResult:
        r = self.result
        end = until if until is not None else r.last_ms
        if end is not None:
            r.transitions += self.engine.advance(end)
            r.until_ms = end
        return r


def run_replay(ruleset: RuleSet, events: Iterable[EventFact], until: int | None = None) -> ReplayResult:
    rp = Replayer(ruleset)
    rp.feed(events)
    return rp.finish(until)


async def db_event_pages(
    url: str, start_ms: int, end_ms: int, device: str | None = None, page: int = 5000
) -> AsyncIterator[list[EventFact]]:
    """Events with start <= time < end from the `events` table, in time order, in pages (keyset pagination on
    the primary key), with the device's `tags` (and `site` = its `site` tag) from `devices`."""
    from sqlalchemy import text

    from tinyfleet.store.db import Database

    where = "time >= :start AND time < :end" + (" AND device_id = :device" if device is not None else "")
    first = text(f"SELECT device_id, time, boot, seq, model, mver, kind, label, score, anom, lat_us, extras "
                 f"FROM events WHERE {where} ORDER BY time, device_id, boot, seq LIMIT :page")  # fmt: skip
    nxt = text(f"SELECT device_id, time, boot, seq, model, mver, kind, label, score, anom, lat_us, extras "
               f"FROM events WHERE {where} AND (time, device_id, boot, seq) > (:t, :d, :b, :s) "
               f"ORDER BY time, device_id, boot, seq LIMIT :page")  # fmt: skip
    params: dict[str, Any] = {
        "start": datetime.fromtimestamp(start_ms / 1000, tz=UTC),
        "end": datetime.fromtimestamp(end_ms / 1000, tz=UTC),
        "page": page,
    }
    if device is not None:
        params["device"] = device
    tags: dict[str, dict[str, str]] = {}
    async with Database(url) as db:
        last: Any = None
        while True:
            async with db.session() as s:
                if last is None:
                    rows = (await s.execute(first, params)).all()
                else:
                    rows = (await s.execute(nxt, {**params, "t": last[1], "d": last[0], "b": last[2],
                                                  "s": last[3]})).all()  # fmt: skip
                new = sorted({r[0] for r in rows} - set(tags))
                if new:
                    found = await s.execute(text("SELECT id, tags FROM devices WHERE id = ANY(:ids)"), {"ids": new})
                    for did, tg in found.all():
                        tags[did] = {str(k): str(v) for k, v in (tg or {}).items()}
                    for did in new:
                        tags.setdefault(did, {})
            if not rows:
                return
            out = []
            for r in rows:
                tg = tags[r[0]]
                out.append(EventFact(
                    device_id=r[0], time=to_ms(r[1]), model=r[4], mver=r[5], kind=r[6], label=r[7], score=r[8],
                    anom=r[9], lat=r[10], x=r[11], site=tg.get("site"), tags=tg or None,
                ))  # fmt: skip
            yield out
            if len(rows) < page:
                return
            last = rows[-1]


def iter_lines(result: ReplayResult) -> Iterator[str]:
    for t in result.transitions:
        yield result.line(t)
