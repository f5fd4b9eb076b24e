"""The rule engine: pure, deterministic, no I/O; time is passed in.

    engine = RuleEngine(ruleset)
    transitions = engine.feed(events)      # EventFact objects, in arrival order
    transitions += engine.tick(now)        # call about every second: absence, `for:`, window expiry, escalation

Semantics
* Time is integer milliseconds since the epoch (a `datetime` is accepted anywhere). The engine's clock is the
  largest time it has seen, from events or ticks; a condition is evaluated at that clock. So events and ticks
  must share one clock: in the service, the receive time (`EventFact.from_row` uses it) and the wall clock.
* Every rule keeps its state per group (`per:`: device, site, model, `tag:<name>`, global; default device). A
  group exists from its first event that reaches the rule.
* Conditions: `match` alone is true while the latest event in its scope (its model/kind) matches; `window`
  counts matching events in the sliding window (t > now - within); `stats` computes mean/min/max/percentile
  (nearest rank) of a field over matching events in its window; `rate` compares events per minute over `window`
  with the `baseline` window just before it (only once the group is older than both and the baseline holds at
  least `min_baseline_events`); `absence` is true when no matching event came for `for` (the clock starts
  at the group's first event); `for` requires the rest of its condition to hold continuously; `all`/`any`/`not`.
* Lifecycle per (rule, group): one open alert at most. It opens when the condition becomes true (unless within
  `cooldown` of the last resolve: then it opens when the cooldown ends if the condition still holds). With
  `resolve: auto` it resolves when the condition is false — evaluated with thresholds relaxed by `hysteresis`
  (and a window count lowered by it) — for `clear_after` (default: at once). `escalate` raises the severity
  once after `after` unacknowledged; `renotify_every` repeats while open and unacknowledged. `acknowledge`
  stops both; `resolve` closes an alert by hand.
* Time-driven changes are found by `tick` through a heap of per-(rule, group) wake-up times, so a tick costs
  only what is due. An absence fires at the first tick at or after last event + T.
* `snapshot()` is JSON-serialisable; `RuleEngine.restore(ruleset, snapshot)` continues where it stopped: open
  alerts stay open (no second `open`), windows keep their events. A rule whose definition changed keeps its
  alerts but starts its condition state afresh.
"""

from __future__ import annotations

import bisect
import hashlib
import heapq
import math
import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal, NamedTuple, Protocol

from tinyfleet.rules.loader import RuleSet
from tinyfleet.rules.model import Cmp, Condition, LabelCmp, Match, Rule, XCmp, compile_cel

__all__ = ["EventFact", "RuleEngine", "Transition", "replay", "to_ms"]

TransitionKind = Literal["open", "resolve", "escalate", "renotify"]


def to_ms(t: datetime | int | float) -> int:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=UTC)
        return round(t.timestamp() * 1000)
    return int(t)


_new_tuple = tuple.__new__  # a named tuple from its fields in order, without the keyword handling of __new__


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


class DeviceLike(Protocol):
    """What the engine's facts take from a device besides its events."""

    @property
    def site(self) -> str | None: ...
    @property
    def tags(self) -> Mapping[str, str] | None: ...


class EventFact(NamedTuple):
    """What the rules see of an inference event (plus the device's site and tags). A named tuple: made per
    event of the stream, where a frozen dataclass's `__init__` cost several times as much."""

    device_id: str
    time: datetime | int
    model: str | int
    kind: int = 0
    mver: int | None = None
    label: int | None = None
    score: float | None = None
    anom: float | None = None
    lat: int | None = None
    x: Mapping[str, Any] | None = None
    site: str | None = None
    tags: Mapping[str, str] | None = None

    @classmethod
    def from_row(
        cls,
        row: Sequence[Any],
        *,
        site: str | None = None,
        tags: Mapping[str, str] | None = None,
        device_time: bool = False,
    ) -> EventFact:
        """From an ingest row in the column order of `tinyfleet.ingest.writer.EVENT_STAGING_COLUMNS`
        (device_id, boot, seq, ts_ms, recv_ms, model, mver, kind, label, score, anom, val, top, lat_us, extras).

        The time is the receive time by default: the engine has one clock (the largest time seen), and one device
        whose clock runs ahead (ingest accepts up to 24 h) would otherwise make every other device look silent.
        `device_time=True` uses the device's `ts` when present (replays of trusted recordings)."""
        extras = row[14]
        if isinstance(extras, str | bytes):
            import json

            extras = json.loads(extras)
        t = row[3] if device_time and row[3] is not None else row[4]
        return _new_tuple(cls, (row[0], t, row[5], row[7], row[6], row[8], row[9], row[10], row[13], extras, site,
                                tags))  # fmt: skip

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]], devices: Mapping[str, DeviceLike]) -> list[EventFact]:
        """`from_row` of each row (receive time), with the site and tags of `devices` (by device id): the
        service's path, per event of the stream, so made without the keyword handling."""
        new, get = _new_tuple, devices.get
        out: list[EventFact] = []
        append = out.append
        for r in rows:
            extras = r[14]
            if isinstance(extras, str | bytes):
                import json

                extras = json.loads(extras)
            info = get(r[0])
            site, tags = (None, None) if info is None else (info.site, info.tags)
            append(new(cls, (r[0], r[4], r[5], r[7], r[6], r[8], r[9], r[10], r[13], extras, site, tags)))
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id, "time": to_ms(self.time), "model": self.model, "kind": self.kind,
            "mver": self.mver, "label": self.label, "score": self.score, "anom": self.anom, "lat": self.lat,
            "x": dict(self.x) if self.x is not None else None, "site": self.site,
            "tags": dict(self.tags) if self.tags is not None else None,
        }  # fmt: skip

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EventFact:
        return cls(**d)


@dataclass(frozen=True, slots=True)
class Transition:
    rule_id: str
    group: str
    kind: TransitionKind
    severity: str
    at_ms: int
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def at(self) -> datetime:
        return _dt(self.at_ms)


# ---------------------------------------------------------------------------------------------------------------
# predicates

Pred = Callable[[EventFact], bool]
NumPred = Callable[[float], bool]


def _num_pred(c: Cmp, h: float) -> NumPred:
    # operator.lt(a, v) is a < v, i.e. v > a: partials are faster than lambdas and typed
    checks: list[NumPred] = []
    if c.eq is not None:
        checks.append(partial(operator.eq, c.eq))
    if c.ne is not None:
        checks.append(partial(operator.ne, c.ne))
    if c.gt is not None:
        checks.append(partial(operator.lt, c.gt - h))
    if c.gte is not None:
        checks.append(partial(operator.le, c.gte - h))
    if c.lt is not None:
        checks.append(partial(operator.gt, c.lt + h))
    if c.lte is not None:
        checks.append(partial(operator.ge, c.lte + h))
    if c.in_ is not None:
        checks.append(partial(operator.contains, frozenset(c.in_)))
    if c.not_in is not None:
        excluded = frozenset(c.not_in)

        def not_in(v: float) -> bool:
            return v not in excluded

        checks.append(not_in)
    if c.between is not None:
        lo, hi = c.between[0] - h, c.between[1] + h

        def between(v: float) -> bool:
            return lo <= v <= hi

        checks.append(between)
    if len(checks) == 1:
        return checks[0]
    cs = tuple(checks)
    return lambda v: all(f(v) for f in cs)


def _field_pred(attr: str, c: Cmp, h: float) -> Pred:
    f = _num_pred(c, h)

    def p(e: EventFact) -> bool:
        v = getattr(e, attr)
        return v is not None and f(v)

    return p


def _x_pred(key: str, c: XCmp, h: float) -> Pred:
    num = Cmp.model_construct(
        gt=c.gt, gte=c.gte, lt=c.lt, lte=c.lte, between=c.between, eq=None, ne=None, in_=None, not_in=None
    )
    has_num = any(v is not None for v in (c.gt, c.gte, c.lt, c.lte, c.between))
    f = _num_pred(num, h) if has_num else None
    fields = c.model_fields_set
    eq_set, ne_set = "eq" in fields, "ne" in fields
    ins = tuple(c.in_) if c.in_ is not None else None
    nins = tuple(c.not_in) if c.not_in is not None else None

    def p(e: EventFact) -> bool:
        x = e.x
        present = x is not None and key in x
        if c.exists is not None and present != c.exists:
            return False
        if not present:
            return c.exists is False
        assert x is not None
        v = x[key]
        if eq_set and not ((v == c.eq and type(v) is not bool) or v is c.eq):
            return False
        if ne_set and ((v == c.ne and type(v) is not bool) or v is c.ne):
            return False
        if ins is not None and v not in ins:
            return False
        if nins is not None and v in nins:
            return False
        if f is not None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return False
            return f(float(v))
        return True

    return p


def _label_values(lab: LabelCmp, names: Mapping[str, int] | None) -> tuple[int | None, int | None, set[int], set[int]]:
    def res(v: str | int) -> int:
        if isinstance(v, int):
            return v
        if names is None or v not in names:  # the loader refuses this; a hand-built RuleSet may not
            raise ValueError(f"unknown label {v!r}")
        return names[v]

    return (
        res(lab.eq) if lab.eq is not None else None,
        res(lab.ne) if lab.ne is not None else None,
        {res(v) for v in lab.in_ or ()},
        {res(v) for v in lab.not_in or ()},
    )


@dataclass(frozen=True)
class _Filter:
    """What a node needs to see: None = any."""

    models: frozenset[str | int] | None
    kinds: frozenset[int] | None
    labels: frozenset[int] | None


_ANY = _Filter(None, None, None)


def _and(preds: list[Pred]) -> Pred:
    if not preds:
        return lambda e: True
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda e: a(e) and b(e)
    if len(preds) == 3:
        a, b, c = preds
        return lambda e: a(e) and b(e) and c(e)
    ps = tuple(preds)

    def p(e: EventFact) -> bool:
        for f in ps:  # noqa: SIM110 - a loop is faster than all() over a generator
            if not f(e):
                return False
        return True

    return p


_CEL_GETTERS: dict[str, Callable[[EventFact], Any]] = {
    "device": lambda e: e.device_id,
    "time": lambda e: to_ms(e.time),
    "model": lambda e: e.model,
    "mver": lambda e: e.mver,
    "kind": lambda e: e.kind,
    "label": lambda e: e.label,
    "score": lambda e: e.score,
    "anom": lambda e: e.anom,
    "lat": lambda e: e.lat,
    "x": lambda e: dict(e.x) if e.x is not None else {},
    "site": lambda e: e.site,
    "tags": lambda e: dict(e.tags) if e.tags is not None else {},
}


def _cel_pred(expr: str) -> Pred:
    prog = compile_cel(expr)
    getters = tuple((name, _CEL_GETTERS[name]) for name in prog.variables())

    def p(e: EventFact) -> bool:
        try:
            return prog.execute({name: get(e) for name, get in getters}) is True
        except (TypeError, ValueError, KeyError, RuntimeError, ArithmeticError):
            return False  # e.g. a missing extras key, null compared with a number: no match

    return p


def _tag_pred(tag: str, values: frozenset[str]) -> Pred:
    return lambda e: e.tags is not None and e.tags.get(tag) in values


@dataclass(frozen=True)
class _CompiledMatch:
    scope: Pred  # model and kind only
    pred: Pred  # everything (scope included)
    relaxed: Pred  # with hysteresis
    filter: _Filter


def _compile_match(m: Match | None, ruleset: RuleSet, h: float) -> _CompiledMatch:
    if m is None:
        t: Pred = lambda e: True  # noqa: E731
        return _CompiledMatch(t, t, t, _ANY)
    scope: list[Pred] = []
    kind = m.kind_index
    if m.model is not None:
        model = m.model
        alt = str(model) if isinstance(model, int) else (int(model) if model.isdigit() else model)
        # one closure for the model and the kind: the check every event of a rule's scope pays
        if alt == model:
            scope.append((lambda e: e.model == model) if kind is None else (lambda e: e.model == model
                                                                            and e.kind == kind))  # fmt: skip
        elif kind is None:
            scope.append(lambda e: e.model == model or e.model == alt)
        else:
            scope.append(lambda e: (e.model == model or e.model == alt) and e.kind == kind)
    elif kind is not None:
        scope.append(lambda e: e.kind == kind)
    rest: list[Pred] = []
    relaxed: list[Pred] = []
    labels: frozenset[int] | None = None
    if m.label is not None:
        names = ruleset.labels(m.model) if m.model is not None else None
        eq, ne, ins, nins = _label_values(m.label, names)
        checks: list[Pred] = []
        if eq is not None:
            checks.append(lambda e: e.label == eq)
            labels = frozenset({eq})
        if ne is not None:
            checks.append(lambda e: e.label is not None and e.label != ne)
        if ins:
            fi = frozenset(ins)
            checks.append(lambda e: e.label in fi)
            labels = fi if labels is None else labels & fi
        if nins:
            fn = frozenset(nins)
            checks.append(lambda e: e.label is not None and e.label not in fn)
        rest += checks
        relaxed += checks
    if m.mver is not None:
        rest.append(_field_pred("mver", m.mver, 0.0))
        relaxed.append(rest[-1])
    for attr in ("score", "anom", "lat"):
        c = getattr(m, attr)
        if c is not None:
            rest.append(_field_pred(attr, c, 0.0))
            relaxed.append(_field_pred(attr, c, h) if h else rest[-1])
    for key, xc in (m.x or {}).items():
        rest.append(_x_pred(key, xc, 0.0))
        relaxed.append(_x_pred(key, xc, h) if h else rest[-1])
    if m.device is not None:
        devs = frozenset(m.device)
        rest.append(lambda e: e.device_id in devs)
        relaxed.append(rest[-1])
    if m.site is not None:
        sites = frozenset(m.site)
        rest.append(lambda e: e.site in sites)
        relaxed.append(rest[-1])
    for tag, values in (m.tags or {}).items():
        vs = frozenset(values)
        rest.append(_tag_pred(tag, vs))
        relaxed.append(rest[-1])
    if m.when is not None:
        rest.append(_cel_pred(m.when))
        relaxed.append(rest[-1])
    flt = _Filter(
        frozenset({m.model}) if m.model is not None else None,
        frozenset({kind}) if kind is not None else None,
        labels,
    )
    return _CompiledMatch(_and(scope), _and(scope + rest), _and(scope + relaxed), flt)


# ---------------------------------------------------------------------------------------------------------------
# condition nodes: stateless objects; the state of a group lives in a list indexed by node.idx


class _Node:
    idx: int
    name: str
    filters: list[_Filter]

    def new(self) -> Any:
        return None

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        pass

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        raise NotImplementedError

    def wake(self, st: list[Any], now: int) -> int | None:
        return None

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        pass

    def dump(self, s: Any) -> Any:
        return s

    def load(self, o: Any) -> Any:
        return o

    def blank(self, st: list[Any], now: int) -> bool:
        """True when the state is as good as new (the group can be forgotten without changing anything)."""
        return st[self.idx] is None


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a < b else b


class _MatchNode(_Node):
    def __init__(self, m: _CompiledMatch) -> None:
        self.m = m
        self.scope, self.pred, self.relaxed = m.scope, m.pred, m.relaxed
        self.filters = [_Filter(m.filter.models, m.filter.kinds, None)]  # must see non-matching labels too

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        if self.scope(e):
            st[self.idx] = e

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        e = st[self.idx]
        return e is not None and (self.relaxed(e) if held else self.pred(e))

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        e = st[self.idx]
        if e is not None:
            out[self.name] = {k: v for k, v in e.to_json().items() if v is not None and k not in ("site", "tags")}

    def blank(self, st: list[Any], now: int) -> bool:
        e = st[self.idx]
        return e is None or not self.m.pred(e)  # a latest event that does not match counts as none

    def dump(self, s: Any) -> Any:
        return s.to_json() if s is not None else None

    def load(self, o: Any) -> Any:
        return EventFact.from_json(o) if o is not None else None


class _WindowNode(_Node):
    def __init__(self, m: _CompiledMatch, count: int, within: int, h: float) -> None:
        self.pred = m.pred
        self.count = count
        self.count_held = max(1, count - int(h))
        self.within = within
        self.filters = [m.filter]

    def new(self) -> Any:
        return deque()

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        if self.pred(e):
            dq = st[self.idx]
            if not dq or dq[-1] <= t:
                dq.append(t)
            else:
                lst = list(dq)
                bisect.insort(lst, t)
                st[self.idx] = deque(lst)

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        dq = st[self.idx]
        edge = now - self.within
        while dq and dq[0] <= edge:
            dq.popleft()
        return len(dq) >= (self.count_held if held else self.count)

    def wake(self, st: list[Any], now: int) -> int | None:
        # expiry only lowers the count: a wake-up matters only while the count reaches a threshold, at the
        # moment it falls below it (the plain one first, then the one relaxed by hysteresis)
        dq = st[self.idx]
        n = len(dq)
        if n >= self.count:
            return int(dq[n - self.count]) + self.within
        if n >= self.count_held:
            return int(dq[n - self.count_held]) + self.within
        return None

    def blank(self, st: list[Any], now: int) -> bool:
        self.value(st, now, False)  # expire
        return not st[self.idx]

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        dq = st[self.idx]
        out[self.name] = {"count": len(dq), "within_ms": self.within, "first_ms": dq[0] if dq else None,
                          "last_ms": dq[-1] if dq else None}  # fmt: skip

    def dump(self, s: Any) -> Any:
        return list(s)

    def load(self, o: Any) -> Any:
        return deque(o)


_PCT = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99}


class _StatsNode(_Node):
    def __init__(self, m: _CompiledMatch, rule_stats: Any, h: float) -> None:
        s = rule_stats
        self.pred = m.pred
        self.attr: str = s.of
        self.fn: str = s.fn
        self.within: int = s.within
        self.min_count: int = s.min_count
        op, thr = next((k, v) for k in ("gt", "gte", "lt", "lte") if (v := getattr(s, k)) is not None)
        self.op = op
        self.thr = float(thr)
        self.thr_held = self.thr - h if op in ("gt", "gte") else self.thr + h
        self.filters = [m.filter]

    def new(self) -> Any:
        return [deque(), [], 0.0]  # (t, v) in time order, values sorted, sum

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        v = getattr(e, self.attr)
        if v is None or not self.pred(e):
            return
        s = st[self.idx]
        v = float(v)
        dq = s[0]
        if not dq or dq[-1][0] <= t:
            dq.append((t, v))
        else:
            lst = list(dq)
            bisect.insort(lst, (t, v))
            s[0] = deque(lst)
        bisect.insort(s[1], v)
        s[2] += v

    def _expire(self, s: list[Any], now: int) -> None:
        dq, vals = s[0], s[1]
        edge = now - self.within
        while dq and dq[0][0] <= edge:
            _, v = dq.popleft()
            del vals[bisect.bisect_left(vals, v)]
            s[2] -= v
        if not dq:
            s[2] = 0.0

    def stat(self, s: list[Any]) -> float | None:
        vals = s[1]
        n = len(vals)
        if n == 0:
            return None
        if self.fn == "mean":
            return float(s[2] / n)
        if self.fn == "max":
            return float(vals[-1])
        if self.fn == "min":
            return float(vals[0])
        return float(vals[max(0, math.ceil(_PCT[self.fn] * n) - 1)])

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        s = st[self.idx]
        self._expire(s, now)
        if len(s[1]) < self.min_count:
            return False
        v = self.stat(s)
        assert v is not None
        thr = self.thr_held if held else self.thr
        op = self.op
        if op == "gt":
            return v > thr
        if op == "gte":
            return v >= thr
        if op == "lt":
            return v < thr
        return v <= thr

    def wake(self, st: list[Any], now: int) -> int | None:
        dq = st[self.idx][0]
        return dq[0][0] + self.within if dq else None

    def blank(self, st: list[Any], now: int) -> bool:
        self._expire(st[self.idx], now)
        return not st[self.idx][0]

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        s = st[self.idx]
        out[self.name] = {"of": self.attr, "fn": self.fn, "value": self.stat(s), "count": len(s[1]),
                          self.op: self.thr, "within_ms": self.within}  # fmt: skip

    def dump(self, s: Any) -> Any:
        return list(s[0])  # (time, value) tuples: a C-level copy; JSON writes them as pairs

    def load(self, o: Any) -> Any:
        dq = deque((int(t), float(v)) for t, v in o)
        return [dq, sorted(v for _, v in dq), math.fsum(v for _, v in dq)]


class _RateNode(_Node):
    def __init__(self, m: _CompiledMatch, r: Any) -> None:
        self.pred = m.pred
        self.window: int = r.window
        self.baseline: int = r.baseline
        self.above: float | None = r.above_baseline_factor
        self.below: float | None = r.below_baseline_factor
        self.min_base: int = r.min_baseline_events
        self.filters = [m.filter]

    def new(self) -> Any:
        return [deque(), deque(), None]  # recent, baseline, first seen

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        s = st[self.idx]
        if s[2] is None or t < s[2]:
            s[2] = t
        if self.pred(e):
            recent = s[0]
            if not recent or recent[-1] <= t:
                recent.append(t)
            else:
                lst = list(recent)
                bisect.insort(lst, t)
                s[0] = deque(lst)

    def _shift(self, s: list[Any], now: int) -> None:
        recent, base = s[0], s[1]
        edge = now - self.window
        while recent and recent[0] <= edge:
            base.append(recent.popleft())
        edge -= self.baseline
        while base and base[0] <= edge:
            base.popleft()

    def blank(self, st: list[Any], now: int) -> bool:
        return st[self.idx][2] is None  # the warm-up clock matters

    def rates(self, s: list[Any]) -> tuple[float, float]:
        return len(s[0]) * 60_000 / self.window, len(s[1]) * 60_000 / self.baseline

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        s = st[self.idx]
        self._shift(s, now)
        if s[2] is None or now - s[2] < self.window + self.baseline or len(s[1]) < self.min_base:
            return False
        rr, rb = self.rates(s)
        if self.above is not None and rr > self.above * rb:
            return True
        return self.below is not None and rr < self.below * rb

    def wake(self, st: list[Any], now: int) -> int | None:
        s = st[self.idx]
        w = s[0][0] + self.window if s[0] else None
        w = _min(w, s[1][0] + self.window + self.baseline if s[1] else None)
        if s[2] is not None and now < s[2] + self.window + self.baseline:
            w = _min(w, s[2] + self.window + self.baseline)
        return w if w is not None and w > now else None

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        s = st[self.idx]
        rr, rb = self.rates(s)
        out[self.name] = {"per_min": rr, "baseline_per_min": rb, "window_ms": self.window,
                          "baseline_ms": self.baseline}  # fmt: skip

    def dump(self, s: Any) -> Any:
        return [list(s[0]), list(s[1]), s[2]]

    def load(self, o: Any) -> Any:
        return [deque(o[0]), deque(o[1]), o[2]]


class _AbsenceNode(_Node):
    def __init__(self, m: _CompiledMatch | None, dur: int) -> None:
        self.pred = m.pred if m is not None else None
        self.dur = dur
        self.filters = [m.filter if m is not None else _ANY]

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        last = st[self.idx]
        if last is None or (t > last and (self.pred is None or self.pred(e))):
            st[self.idx] = t

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        last = st[self.idx]
        return last is not None and now - last >= self.dur

    def wake(self, st: list[Any], now: int) -> int | None:
        last = st[self.idx]
        return last + self.dur if last is not None and last + self.dur > now else None

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        last = st[self.idx]
        out[self.name] = {"last_ms": last, "silent_ms": now - last if last is not None else None, "for_ms": self.dur}


class _ForNode(_Node):
    def __init__(self, child: _Node, dur: int) -> None:
        self.child = child
        self.dur = dur
        self.filters = child.filters

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        self.child.on_event(st, e, t)

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        if self.child.value(st, now, held):
            since = st[self.idx]
            if since is None:
                st[self.idx] = since = now
            return bool(now - since >= self.dur)
        st[self.idx] = None
        return False

    def wake(self, st: list[Any], now: int) -> int | None:
        w = self.child.wake(st, now)
        since = st[self.idx]
        if since is not None and now < since + self.dur:
            w = _min(w, since + self.dur)
        return w

    def blank(self, st: list[Any], now: int) -> bool:
        return st[self.idx] is None and self.child.blank(st, now)

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        since = st[self.idx]
        out[self.name] = {"since_ms": since, "for_ms": self.dur}
        self.child.evidence(st, now, out)


class _AllNode(_Node):
    def __init__(self, children: list[_Node], is_any: bool = False) -> None:
        self.children = tuple(children)
        self.is_any = is_any
        self.filters = [f for c in children for f in c.filters]

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        for c in self.children:
            c.on_event(st, e, t)

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        n = 0  # no short cut: `for` nodes track their state
        for c in self.children:
            if c.value(st, now, held):
                n += 1
        return n > 0 if self.is_any else n == len(self.children)

    def wake(self, st: list[Any], now: int) -> int | None:
        w = None
        for c in self.children:
            cw = c.wake(st, now)
            if cw is not None and (w is None or cw < w):
                w = cw
        return w

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        for c in self.children:
            c.evidence(st, now, out)

    def blank(self, st: list[Any], now: int) -> bool:
        return all(c.blank(st, now) for c in self.children)


class _NotNode(_Node):
    def __init__(self, child: _Node) -> None:
        self.child = child
        self.filters = child.filters

    def on_event(self, st: list[Any], e: EventFact, t: int) -> None:
        self.child.on_event(st, e, t)

    def value(self, st: list[Any], now: int, held: bool) -> bool:
        return not self.child.value(st, now, False)

    def wake(self, st: list[Any], now: int) -> int | None:
        return self.child.wake(st, now)

    def blank(self, st: list[Any], now: int) -> bool:
        return self.child.blank(st, now)

    def evidence(self, st: list[Any], now: int, out: dict[str, Any]) -> None:
        self.child.evidence(st, now, out)


# ---------------------------------------------------------------------------------------------------------------
# rules


def _group_fn(per: str) -> Callable[[EventFact], str]:
    if per == "device":
        return lambda e: e.device_id
    if per == "site":
        return lambda e: e.site or ""
    if per == "model":
        return lambda e: str(e.model)
    if per == "global":
        return lambda e: "*"
    tag = per.removeprefix("tag:")
    return lambda e: (e.tags or {}).get(tag, "")


def _rule_per(c: Condition, default: str | None) -> str | None:
    if default is not None:
        return default
    if c.window is not None and c.window.per is not None:
        return c.window.per
    if c.absence is not None and c.absence.per is not None:
        return c.absence.per
    for sub in [*(c.all_ or ()), *(c.any_ or ()), *([c.not_] if c.not_ else [])]:
        p = _rule_per(sub, None)
        if p is not None:
            return p
    return None


class _Alert:
    __slots__ = ("acked", "escalated", "notified_at", "opened_at", "severity")

    def __init__(self, opened_at: int, severity: str) -> None:
        self.opened_at = opened_at
        self.severity = severity
        self.acked = False
        self.escalated = False
        self.notified_at = opened_at

    def dump(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def load(cls, d: Mapping[str, Any]) -> _Alert:
        a = cls(int(d["opened_at"]), str(d["severity"]))
        a.acked, a.escalated, a.notified_at = bool(d["acked"]), bool(d["escalated"]), int(d["notified_at"])
        return a


class _Group:
    __slots__ = ("alert", "clear_since", "nodes", "resolved_at", "wake")

    def __init__(self, nodes: list[Any]) -> None:
        self.nodes = nodes
        self.alert: _Alert | None = None
        self.resolved_at: int | None = None
        self.clear_since: int | None = None
        self.wake: int | None = None


class _CompiledRule:
    def __init__(self, idx: int, rule: Rule, ruleset: RuleSet) -> None:
        self.idx = idx
        self.rule = rule
        self.id = rule.id
        self.fingerprint = hashlib.sha256(rule.model_dump_json().encode()).hexdigest()[:16]
        self.h = float(rule.hysteresis or 0.0) if rule.resolve == "auto" else 0.0
        self.nodes: list[_Node] = []
        self.root = self._compile(rule, ruleset, "")
        per = _rule_per(rule, rule.per) or "device"
        self.group_of = _group_fn(per)
        self.by_device = per == "device"
        self.auto = rule.resolve == "auto"
        self.cooldown = rule.cooldown
        self.clear_after = rule.clear_after
        self.escalate = rule.escalate
        self.renotify = rule.renotify_every
        self.groups: dict[str, _Group] = {}
        fs = self.root.filters
        self.filter = _Filter(
            None if any(f.models is None for f in fs) else frozenset().union(*(f.models or () for f in fs)),
            None if any(f.kinds is None for f in fs) else frozenset().union(*(f.kinds or () for f in fs)),
            None if any(f.labels is None for f in fs) else frozenset().union(*(f.labels or () for f in fs)),
        )

    def _add(self, node: _Node, name: str) -> _Node:
        node.idx = len(self.nodes)
        node.name = name
        self.nodes.append(node)
        return node

    def _compile(self, c: Condition, ruleset: RuleSet, prefix: str) -> _Node:
        m = _compile_match(c.match, ruleset, self.h) if c.match is not None else None
        mm = m or _compile_match(None, ruleset, 0.0)
        parts: list[_Node] = []
        if c.window is not None:
            parts.append(self._add(_WindowNode(mm, c.window.count, c.window.within, self.h), prefix + "window"))
        if c.stats is not None:
            parts.append(self._add(_StatsNode(mm, c.stats, self.h), prefix + "stats"))
        if c.rate is not None:
            parts.append(self._add(_RateNode(mm, c.rate), prefix + "rate"))
        if c.absence is not None:
            of = c.absence.of
            am = _compile_match(of, ruleset, 0.0) if isinstance(of, Match) else m
            parts.append(self._add(_AbsenceNode(am, c.absence.for_), prefix + "absence"))
        if c.all_:
            subs = [self._compile(s, ruleset, f"{prefix}all.{i}.") for i, s in enumerate(c.all_)]
            parts.append(self._add(_AllNode(subs), prefix + "all"))
        if c.any_:
            subs = [self._compile(s, ruleset, f"{prefix}any.{i}.") for i, s in enumerate(c.any_)]
            parts.append(self._add(_AllNode(subs, is_any=True), prefix + "any"))
        if c.not_ is not None:
            parts.append(self._add(_NotNode(self._compile(c.not_, ruleset, prefix + "not.")), prefix + "not"))
        if not parts and m is not None:
            parts.append(self._add(_MatchNode(m), prefix + "match"))
        node = parts[0] if len(parts) == 1 else self._add(_AllNode(parts), prefix + "and")
        if c.for_ is not None:
            node = self._add(_ForNode(node, c.for_), prefix + "for")
        return node

    def new_group(self) -> _Group:
        return _Group([n.new() for n in self.nodes])

    def accepts(self, model: str | int, kind: int, label: int | None) -> bool:
        f = self.filter
        if f.models is not None and model not in f.models and str(model) not in {str(m) for m in f.models}:
            return False
        if f.kinds is not None and kind not in f.kinds:
            return False
        return f.labels is None or label in f.labels


class RuleEngine:
    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self._rules = [_CompiledRule(i, r, ruleset) for i, r in enumerate(r for r in ruleset.rules if r.enabled)]
        self._by_id = {cr.id: cr for cr in self._rules}
        self._index: dict[tuple[str | int, int, int | None], tuple[_CompiledRule, ...]] = {}
        self._heap: list[tuple[int, int, int, str]] = []
        self._seq = 0
        self.now = 0

    # -- feeding ---------------------------------------------------------------------------------------------

    def _rules_for(self, e: EventFact) -> tuple[_CompiledRule, ...]:
        key = (e.model, e.kind, e.label)
        rules = self._index.get(key)
        if rules is None:
            if len(self._index) > 100_000:
                self._index.clear()
            rules = self._index[key] = tuple(cr for cr in self._rules if cr.accepts(e.model, e.kind, e.label))
        return rules

    def feed(self, events: Iterable[EventFact]) -> list[Transition]:
        out: list[Transition] = []
        index = self._index
        evaluate = self._eval
        now = self.now
        for e in events:
            t = e.time
            if type(t) is not int:
                t = to_ms(t)
            if t > now:
                self.now = now = t
            rules = index.get((e.model, e.kind, e.label))
            if rules is None:
                rules = self._rules_for(e)
            for cr in rules:
                g = e.device_id if cr.by_device else cr.group_of(e)
                groups = cr.groups
                gs = groups.get(g)
                if gs is None:
                    gs = groups[g] = cr.new_group()
                cr.root.on_event(gs.nodes, e, t)
                evaluate(cr, g, gs, now, out)
        return out

    def tick(self, now: datetime | int) -> list[Transition]:
        n = to_ms(now)
        if n > self.now:
            self.now = n
        n = self.now
        out: list[Transition] = []
        heap = self._heap
        while heap and heap[0][0] <= n:
            w, _, ri, g = heapq.heappop(heap)
            cr = self._rules[ri]
            gs = cr.groups.get(g)
            if gs is None or gs.wake != w:
                continue
            gs.wake = None
            self._eval(cr, g, gs, n, out)
        if len(out) > 1:  # a canonical order, independent of the heap's history (e.g. after a restore)
            by_id = self._by_id
            out.sort(key=lambda t: (by_id[t.rule_id].idx, t.group))
        return out

    def expect(
        self,
        device_id: str,
        since: datetime | int,
        *,
        model: str | int | None = None,
        site: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Transition]:
        """Start the absence clocks of a device that has sent nothing yet (e.g. one registered in the database
        when the service starts): it then counts as silent from `since`. Only absence rules whose event filter
        admits `model` (any model when None: only rules that do not name one) are concerned; clocks already
        running are left alone."""
        t = to_ms(since)
        probe = EventFact(device_id, t, model if model is not None else "", site=site, tags=tags)
        out: list[Transition] = []
        for cr in self._rules:
            nodes = [n for n in cr.nodes if isinstance(n, _AbsenceNode)]
            if not nodes:
                continue
            if not any(f.models is None or (model is not None and model in f.models) for n in nodes
                       for f in n.filters):  # fmt: skip
                continue
            g = cr.group_of(probe)
            gs = cr.groups.get(g)
            if gs is None:
                gs = cr.groups[g] = cr.new_group()
            for n in nodes:
                if gs.nodes[n.idx] is None:
                    gs.nodes[n.idx] = t
            self._eval(cr, g, gs, max(self.now, t), out)
        return out

    def feed_exact(self, events: Iterable[EventFact]) -> list[Transition]:
        """Feed events (in time order) one by one, each after the wake-ups due before its time, evaluated at
        their own times: the transitions a replay of recorded events yields, with exact timing."""
        out: list[Transition] = []
        for e in events:
            out += self.advance(to_ms(e.time) - 1)
            out += self.feed((e,))
        return out

    def advance(self, to: datetime | int) -> list[Transition]:
        """Like `tick(to)`, but every due wake-up is evaluated at its own time, in order: the transitions carry
        the exact times (an absence opens at last event + T, not at the next tick). For replays."""
        end = to_ms(to)
        out: list[Transition] = []
        heap = self._heap
        while heap and heap[0][0] <= end:
            w = heap[0][0]
            out += self.tick(w)
        if end > self.now:
            self.now = end
        return out

    # -- lifecycle -------------------------------------------------------------------------------------------

    def _eval(self, cr: _CompiledRule, g: str, gs: _Group, now: int, out: list[Transition]) -> None:
        a = gs.alert
        nodes = gs.nodes
        root = cr.root
        if a is None and gs.resolved_at is None and not root.value(nodes, now, False):
            # the common case, short: nothing open, nothing happens
            w = root.wake(nodes, now)
            if w is not None and w > now and (gs.wake is None or w < gs.wake):
                self._schedule(cr, g, gs, w)
            return
        if a is None:
            if root.value(nodes, now, False):
                if gs.resolved_at is not None and cr.cooldown is not None and now < gs.resolved_at + cr.cooldown:
                    self._schedule(cr, g, gs, gs.resolved_at + cr.cooldown)
                else:
                    gs.alert = a = _Alert(now, cr.rule.severity)
                    ev: dict[str, Any] = {}
                    cr.root.evidence(nodes, now, ev)
                    out.append(Transition(cr.id, g, "open", cr.rule.severity, now, ev))
        else:
            cond = cr.root.value(nodes, now, True)
            if cr.auto:
                if cond:
                    gs.clear_since = None
                else:
                    if gs.clear_since is None:
                        gs.clear_since = now
                    if cr.clear_after is None or now - gs.clear_since >= cr.clear_after:
                        self._resolve(cr, g, gs, now, out)
                        a = None
                    else:
                        self._schedule(cr, g, gs, gs.clear_since + cr.clear_after)
        if a is not None and not a.acked:
            esc = cr.escalate
            if esc is not None and not a.escalated:
                if now - a.opened_at >= esc.after:
                    a.escalated = True
                    a.severity = esc.severity
                    a.notified_at = now
                    out.append(Transition(cr.id, g, "escalate", esc.severity, now, {"after_ms": esc.after}))
                else:
                    self._schedule(cr, g, gs, a.opened_at + esc.after)
            if cr.renotify is not None:
                if now - a.notified_at >= cr.renotify:
                    a.notified_at = now
                    out.append(Transition(cr.id, g, "renotify", a.severity, now, {"since_ms": a.opened_at}))
                self._schedule(cr, g, gs, a.notified_at + cr.renotify)
        w = cr.root.wake(nodes, now)
        if w is not None and w > now:
            self._schedule(cr, g, gs, w)

    def _schedule(self, cr: _CompiledRule, g: str, gs: _Group, w: int) -> None:
        if gs.wake is None or w < gs.wake:
            gs.wake = w
            self._seq += 1
            heapq.heappush(self._heap, (w, self._seq, cr.idx, g))

    def _resolve(self, cr: _CompiledRule, g: str, gs: _Group, now: int, out: list[Transition], manual: bool = False
                 ) -> None:  # fmt: skip
        a = gs.alert
        assert a is not None
        gs.alert = None
        gs.resolved_at = now
        gs.clear_since = None
        ev: dict[str, Any] = {"opened_ms": a.opened_at, "manual": manual}
        cr.root.evidence(gs.nodes, now, ev)
        out.append(Transition(cr.id, g, "resolve", a.severity, now, ev))
        if cr.cooldown is not None:
            self._schedule(cr, g, gs, now + cr.cooldown)

    # -- operator actions ------------------------------------------------------------------------------------

    def acknowledge(self, rule_id: str, group: str) -> bool:
        """Stop escalation and re-notification of the open alert. False when there is none."""
        cr = self._by_id.get(rule_id)
        gs = cr.groups.get(group) if cr is not None else None
        if gs is None or gs.alert is None:
            return False
        gs.alert.acked = True
        return True

    def resolve(self, rule_id: str, group: str, at: datetime | int | None = None) -> Transition | None:
        """Resolve an open alert by hand (any rule; the only way for `resolve: manual`)."""
        cr = self._by_id.get(rule_id)
        gs = cr.groups.get(group) if cr is not None else None
        if cr is None or gs is None or gs.alert is None:
            return None
        now = max(self.now, to_ms(at)) if at is not None else self.now
        out: list[Transition] = []
        self._resolve(cr, group, gs, now, out, manual=True)
        return out[0]

    def sync_alert(self, rule_id: str, group: str, alert: Mapping[str, Any] | None, *, at: datetime | int) -> bool:
        """Make the engine's alert of (rule, group) what the database holds, without a transition: `alert`
        (keys of `open_alerts()`: opened_at, severity, acked, escalated, notified_at, times in ms) or None
        (closed there at `at`, e.g. resolved by an operator: cooldown runs from `at`). For a restart. Returns
        whether anything changed; unknown rules are ignored."""
        cr = self._by_id.get(rule_id)
        if cr is None:
            return False
        gs = cr.groups.get(group)
        if alert is None:
            if gs is None or gs.alert is None:
                return False
            gs.alert = None
            gs.resolved_at = to_ms(at)
            gs.clear_since = None
        else:
            if gs is None:
                gs = cr.groups[group] = cr.new_group()
            new = _Alert.load(alert)
            if gs.alert is not None and gs.alert.dump() == new.dump():
                return False
            gs.alert = new
        self._schedule(cr, group, gs, self.now)  # evaluated at the next tick
        return True

    def prune(self) -> int:
        """Forget groups whose state is as good as new (no alert, no cooldown running, empty windows, …), to
        bound memory when groups come and go; returns how many. Changes no future transition. Absence clocks
        and rate warm-ups are kept. Cost: one pass over the groups — call it every few minutes."""
        now = self.now
        n = 0
        for cr in self._rules:
            idle = [
                g for g, gs in cr.groups.items()
                if gs.alert is None and gs.clear_since is None
                and (gs.resolved_at is None or cr.cooldown is None or now >= gs.resolved_at + cr.cooldown)
                and cr.root.blank(gs.nodes, now)
            ]  # fmt: skip
            for g in idle:
                del cr.groups[g]
            n += len(idle)
        return n

    def open_alerts(self) -> list[dict[str, Any]]:
        return [
            {"rule_id": cr.id, "group": g, **gs.alert.dump()}
            for cr in self._rules for g, gs in cr.groups.items() if gs.alert is not None
        ]  # fmt: skip

    # -- persistence -----------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"version": 1, "now": self.now, "rules": dict(self.rule_snapshots())}

    def rule_snapshots(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """`snapshot()["rules"]` one rule at a time, so a caller can let other work run in between (nothing
        may feed or tick the engine meanwhile: the parts must belong to one state)."""
        for cr in self._rules:
            groups = {}
            for g, gs in cr.groups.items():
                groups[g] = {
                    "alert": gs.alert.dump() if gs.alert is not None else None,
                    "resolved_at": gs.resolved_at,
                    "clear_since": gs.clear_since,
                    "nodes": [n.dump(s) for n, s in zip(cr.nodes, gs.nodes, strict=True)],
                }
            yield cr.id, {"fingerprint": cr.fingerprint, "groups": groups}

    @classmethod
    def restore(cls, ruleset: RuleSet, snapshot: Mapping[str, Any]) -> RuleEngine:
        if snapshot.get("version") != 1:
            raise ValueError(f"unknown snapshot version {snapshot.get('version')!r}")
        eng = cls(ruleset)
        eng.now = int(snapshot["now"])
        for rid, rs in snapshot["rules"].items():
            cr = eng._by_id.get(rid)
            if cr is None:
                continue
            same = rs["fingerprint"] == cr.fingerprint
            for g, d in rs["groups"].items():
                gs = cr.new_group()
                if same:
                    gs.nodes = [n.load(o) for n, o in zip(cr.nodes, d["nodes"], strict=True)]
                gs.alert = _Alert.load(d["alert"]) if d["alert"] is not None else None
                gs.resolved_at = d["resolved_at"]
                gs.clear_since = d["clear_since"]
                cr.groups[g] = gs
                # due now or later: the next tick evaluates it (an alert already open is not opened again)
                w = cr.root.wake(gs.nodes, eng.now)
                eng._schedule(cr, g, gs, min(w, eng.now) if w is not None else eng.now)
        return eng


def replay(ruleset: RuleSet, events: Iterable[EventFact], *, until: datetime | int | None = None) -> list[Transition]:
    """Run recorded events (in time order) through a fresh engine with exact timing: before each event the
    wake-ups due before its time are evaluated at their own times; then up to `until` (default: the last event).
    What `tinyfleet rules test` prints."""
    eng = RuleEngine(ruleset)
    out = eng.feed_exact(events)
    if until is not None:
        out += eng.advance(until)
    return out
