"""The rule engine: every condition kind, grouping, lifecycle, timing and snapshot/restore. Pure code, no mocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from tinyfleet.rules import EventFact, RuleEngine, RuleSet, Transition, load_rules_text
from tinyfleet.rules.engine import to_ms

T0 = 1_764_072_000_000  # 2025-11-25T12:00:00Z
S = 1000
M = 60 * S

MODELS = """\
models:
  vib-cls: {labels: [normal, imbalance, misalignment, bearing_fault]}
  kws: {labels: [down, go, left, "no", "off", "on", right, stop, up, "yes", silence, unknown]}
"""
BEARING = 3


def ruleset(text: str) -> RuleSet:
    return load_rules_text({"models.yml": MODELS, "r.yml": text})


def engine(text: str) -> RuleEngine:
    return RuleEngine(ruleset(text))


def vib(t: int, label: int = BEARING, score: float = 0.9, dev: str = "pump-1", **kw: Any) -> EventFact:
    return EventFact(dev, t, "vib-cls", 0, label=label, score=score, **kw)


def ad(t: int, anom: float, dev: str = "m-1", **kw: Any) -> EventFact:
    return EventFact(dev, t, "ad01", 1, anom=anom, **kw)


def kinds(ts: list[Transition]) -> list[tuple[str, str, str]]:
    return [(t.rule_id, t.group, t.kind) for t in ts]


def run_ticks(eng: RuleEngine, start: int, end: int, step: int = S) -> list[Transition]:
    out: list[Transition] = []
    for t in range(start, end + 1, step):
        out += eng.tick(t)
    return out


# -- match -----------------------------------------------------------------------------------------------------


def test_match_threshold_opens_and_resolves_on_the_latest_event() -> None:
    eng = engine("- id: hot\n  match: {model: vib-cls, label: bearing_fault, score: {gte: 0.8}}\n")
    assert eng.feed([vib(T0, score=0.5)]) == []
    opened = eng.feed([vib(T0 + S, score=0.85)])
    assert kinds(opened) == [("hot", "pump-1", "open")]
    assert opened[0].evidence["match"]["score"] == 0.85
    assert opened[0].at == datetime(2025, 11, 25, 12, 0, 1, tzinfo=UTC)
    assert eng.feed([vib(T0 + 2 * S, score=0.95)]) == []  # one open alert per (rule, group)
    assert kinds(eng.feed([vib(T0 + 3 * S, label=0)])) == [("hot", "pump-1", "resolve")]
    # events of other models are out of scope: they neither open nor resolve
    assert eng.feed([EventFact("pump-1", T0 + 4 * S, "kws", 0, label=7, score=1.0)]) == []


def test_match_fields_and_operators() -> None:
    eng = engine("""\
- id: a
  match: {model: vib-cls, mver: {gte: 4}, kind: classification, label: {in: [imbalance, 2]}, lat: {between: [100, 200]},
          x.temp: {gt: 40}, x.phase: B}
- id: b
  match: {model: kws, label: {not_in: [silence, unknown]}, score: {ne: 0.5}, device: [mic-1], site: hall}
- id: c
  match: {kind: anomaly, anom: {gt: 2}, tags: {line: [l1, l2]}, x.flag: {exists: true}}
""")
    ok = vib(T0, label=1, mver=4, lat=150, x={"temp": 41.5, "phase": "B"})
    assert kinds(eng.feed([ok])) == [("a", "pump-1", "open")]
    eng2 = engine("- id: a\n  match: {model: vib-cls, mver: {gte: 4}, x.temp: {gt: 40}}\n")
    assert eng2.feed([vib(T0, mver=3, x={"temp": 50})]) == []
    assert eng2.feed([vib(T0, mver=4, x={"temp": "hot"})]) == []
    assert eng2.feed([vib(T0, mver=4)]) == []
    assert kinds(eng2.feed([vib(T0, mver=4, x={"temp": 40.5})])) == [("a", "pump-1", "open")]

    mic = EventFact("mic-1", T0, "kws", 0, label=7, score=0.9, site="hall")
    assert kinds(eng.feed([mic])) == [("b", "mic-1", "open")]
    eng3 = engine("- id: b\n  match: {model: kws, label: {not_in: [silence, unknown]}, site: hall}\n")
    assert eng3.feed([EventFact("mic-1", T0, "kws", 0, label=10, site="hall")]) == []
    assert eng3.feed([EventFact("mic-2", T0, "kws", 0, label=7, site="yard")]) == []

    anom = EventFact("m-1", T0, "ad01", 1, anom=2.5, tags={"line": "l2"}, x={"flag": False})
    assert kinds(eng.feed([anom])) == [("c", "m-1", "open")]
    eng4 = engine("- id: c\n  match: {kind: anomaly, anom: {gt: 2}, tags: {line: [l1, l2]}}\n")
    assert eng4.feed([EventFact("m-1", T0, "ad01", 1, anom=2.5, tags={"line": "l3"})]) == []


def test_label_by_index_and_numeric_model_ids() -> None:
    eng = engine("- id: a\n  match: {model: 17, label: 2}\n")
    assert kinds(eng.feed([EventFact("d", T0, 17, 0, label=2)])) == [("a", "d", "open")]
    eng = engine("- id: a\n  match: {model: '17', label: 2}\n")
    assert kinds(eng.feed([EventFact("d", T0, 17, 0, label=2)])) == [("a", "d", "open")]


def test_time_as_datetime() -> None:
    eng = engine("- id: a\n  match: {model: vib-cls, label: bearing_fault}\n")
    when = datetime(2025, 11, 25, 12, 0, tzinfo=UTC)
    (t,) = eng.feed([EventFact("pump-1", when, "vib-cls", 0, label=3)])
    assert t.at_ms == T0
    assert to_ms(when.replace(tzinfo=None)) == T0


# -- window -----------------------------------------------------------------------------------------------------

BEARING_RULE = """\
- id: bearing-fault
  match: {model: vib-cls, label: bearing_fault, score: {gte: 0.8}}
  window: {count: 3, within: 5m, per: device}
  severity: major
"""


def test_window_count_per_device_and_auto_resolve_on_expiry() -> None:
    eng = engine(BEARING_RULE)
    assert eng.feed([vib(T0), vib(T0 + M), vib(T0 + 2 * M, dev="pump-2"), vib(T0 + 2 * M, score=0.5)]) == []
    opened = eng.feed([vib(T0 + 4 * M)])
    assert kinds(opened) == [("bearing-fault", "pump-1", "open")]
    assert opened[0].severity == "major"
    assert opened[0].evidence["window"]["count"] == 3
    # the first event leaves the window at T0 + 5 m: the count drops to 2 and the alert resolves
    assert run_ticks(eng, T0 + 4 * M, T0 + 5 * M - S) == []
    assert kinds(eng.tick(T0 + 5 * M)) == [("bearing-fault", "pump-1", "resolve")]


def test_window_not_fooled_by_old_events() -> None:
    eng = engine(BEARING_RULE)
    assert eng.feed([vib(T0), vib(T0 + 3 * M), vib(T0 + 6 * M)]) == []  # never 3 within 5 m


# -- for ---------------------------------------------------------------------------------------------------------


def test_for_duration_needs_the_condition_continuously() -> None:
    eng = engine("- id: imb\n  match: {model: vib-cls, label: imbalance}\n  for: 10m\n")
    eng.feed([vib(T0, label=1)])
    assert run_ticks(eng, T0, T0 + 9 * M, 30 * S) == []
    eng.feed([vib(T0 + 9 * M + 30 * S, label=0)])  # broken: the clock restarts
    eng.feed([vib(T0 + 9 * M + 40 * S, label=1)])
    assert run_ticks(eng, T0 + 9 * M + 40 * S, T0 + 19 * M + 39 * S) == []
    assert kinds(eng.tick(T0 + 19 * M + 40 * S)) == [("imb", "pump-1", "open")]
    assert kinds(eng.feed([vib(T0 + 20 * M, label=0)])) == [("imb", "pump-1", "resolve")]


# -- absence -----------------------------------------------------------------------------------------------------

SILENT = "- id: silent\n  absence: {of: any_event, for: 15m, per: device}\n  severity: warning\n"


def test_absence_fires_at_t_not_before_and_within_t_plus_1s() -> None:
    eng = engine(SILENT)
    last = T0 + 437  # not on a tick boundary
    eng.feed([vib(T0 - M), vib(last, label=0)])
    fired: list[tuple[int, Transition]] = []
    for t in range(T0, last + 15 * M + 5 * S, S):  # tick every second
        fired += [(t, x) for x in eng.tick(t)]
    assert len(fired) == 1
    at, tr = fired[0]
    assert tr.kind == "open"
    assert last + 15 * M <= at <= last + 15 * M + S
    assert tr.evidence["absence"]["last_ms"] == last
    # the device comes back: resolved at once
    assert kinds(eng.feed([vib(at + 10 * S, label=0)])) == [("silent", "pump-1", "resolve")]


def test_absence_of_a_match_and_per_site() -> None:
    eng = engine("""\
- id: no-kws
  absence: {of: {model: kws, label: {not_in: [silence, unknown]}}, for: 10m}
  per: site
""")
    eng.feed([EventFact("mic-1", T0, "kws", 0, label=7, site="a"), EventFact("mic-2", T0, "kws", 0, label=7, site="b")])
    # site b keeps hearing keywords; site a only silence
    out: list[Transition] = []
    for k in range(1, 12):
        out += eng.tick(T0 + k * M - S)
        out += eng.feed([EventFact("mic-1", T0 + k * M, "kws", 0, label=10, site="a"),
                         EventFact("mic-2", T0 + k * M, "kws", 0, label=1, site="b")])  # fmt: skip
    out += run_ticks(eng, T0 + 11 * M, T0 + 12 * M)
    assert kinds(out) == [("no-kws", "a", "open")]
    assert out[0].at_ms == T0 + 10 * M


def test_absence_many_devices_tick_cost_is_only_what_is_due() -> None:
    eng = engine(SILENT)
    eng.feed([vib(T0 + i, dev=f"d{i}", label=0) for i in range(5000)])
    assert eng.tick(T0 + 15 * M - 1) == []
    assert len(eng.tick(T0 + 15 * M + 5000)) == 5000


# -- rate --------------------------------------------------------------------------------------------------------


def test_rate_above_baseline() -> None:
    eng = engine("""\
- id: storm
  match: {model: vib-cls, label: {ne: normal}}
  rate: {window: 5m, baseline: 1h, above_baseline_factor: 4, min_baseline_events: 10}
""")
    # one non-normal event per minute for an hour, then 10 per minute
    evs = [vib(T0 + k * M, label=1) for k in range(65)]
    assert eng.feed(evs) == []
    burst = [vib(T0 + 65 * M + k * 6 * S, label=2) for k in range(40)]
    out = eng.feed(burst)
    assert kinds(out) == [("storm", "pump-1", "open")]
    assert out[0].evidence["rate"]["per_min"] > 4 * out[0].evidence["rate"]["baseline_per_min"]
    # the burst ends: once the window has passed the rate is back to normal
    out = run_ticks(eng, T0 + 69 * M, T0 + 75 * M, 10 * S)
    assert kinds(out) == [("storm", "pump-1", "resolve")]


def test_rate_below_baseline_and_warm_up() -> None:
    eng = engine("""\
- id: quiet
  match: {model: vib-cls}
  rate: {window: 5m, baseline: 30m, below_baseline_factor: 0.2, min_baseline_events: 10}
""")
    eng.feed([vib(T0 + k * 10 * S, label=0) for k in range(6 * 36)])  # 6/min for 36 min
    out = run_ticks(eng, T0 + 36 * M, T0 + 42 * M, 10 * S)
    assert kinds(out) == [("quiet", "pump-1", "open")]
    # a new device is not compared before it has a baseline
    eng2 = engine(
        "- id: quiet\n  match: {model: vib-cls}\n  rate: {window: 5m, baseline: 30m, below_baseline_factor: 0.5}\n"
    )
    eng2.feed([vib(T0 + k * S, label=0) for k in range(60)])
    assert run_ticks(eng2, T0, T0 + 20 * M, 30 * S) == []


# -- stats -------------------------------------------------------------------------------------------------------


def test_stats_p95_and_mean() -> None:
    eng = engine("""\
- id: p95
  match: {model: ad01}
  stats: {of: anom, fn: p95, within: 10m, gt: 0.7, min_count: 20}
- id: mean
  match: {model: ad01}
  stats: {of: anom, fn: mean, within: 10m, gte: 0.5, min_count: 20}
""")
    # 19 low values then one high: p95 of 20 (nearest rank) is the 19th value
    assert eng.feed([ad(T0 + k * S, 0.1) for k in range(19)]) == []
    assert eng.feed([ad(T0 + 19 * S, 0.9)]) == []
    out = eng.feed([ad(T0 + 20 * S, 0.95)])
    assert kinds(out) == [("p95", "m-1", "open")]
    assert out[0].evidence["stats"]["value"] == 0.9
    out = eng.feed([ad(T0 + 21 * S + k, 0.99) for k in range(20)])
    assert kinds(out) == [("mean", "m-1", "open")]


def test_stats_on_latency_and_max() -> None:
    eng = engine("- id: slow\n  match: {model: vib-cls}\n  stats: {of: lat, fn: max, within: 1m, gt: 50000}\n")
    assert eng.feed([vib(T0, label=0, lat=1000), vib(T0 + S, label=0)]) == []
    assert kinds(eng.feed([vib(T0 + 2 * S, label=0, lat=60000)])) == [("slow", "pump-1", "open")]
    assert kinds(run_ticks(eng, T0 + 3 * S, T0 + 70 * S)) == [("slow", "pump-1", "resolve")]


# -- composition -------------------------------------------------------------------------------------------------


def test_all_any_not() -> None:
    eng = engine("""\
- id: both
  all:
    - match: {model: kws, label: go}
      window: {count: 2, within: 1m}
    - match: {model: kws, label: stop}
      window: {count: 2, within: 1m}
- id: either
  any:
    - match: {model: kws, label: "yes"}
    - match: {model: kws, label: "no"}
- id: not-normal
  not: {match: {model: vib-cls, label: normal}}
""")

    def k(t: int, label: int) -> EventFact:
        return EventFact("mic", t, "kws", 0, label=label)

    assert kinds(eng.feed([k(T0, 1), k(T0 + S, 1), k(T0 + 2 * S, 7)])) == []
    assert kinds(eng.feed([k(T0 + 3 * S, 7)])) == [("both", "mic", "open")]
    assert kinds(eng.feed([k(T0 + 4 * S, 9)])) == [("either", "mic", "open")]
    assert kinds(eng.feed([k(T0 + 5 * S, 3)])) == []
    assert kinds(eng.feed([k(T0 + 6 * S, 0)])) == [("either", "mic", "resolve")]
    assert kinds(eng.tick(T0 + 61 * S)) == [("both", "mic", "resolve")]
    assert kinds(eng.feed([vib(T0 + 70 * S, label=0)])) == []
    assert kinds(eng.feed([vib(T0 + 71 * S, label=2)])) == [("not-normal", "pump-1", "open")]


def test_alive_but_deaf_composition() -> None:
    eng = engine("""\
- id: deaf
  absence: {of: {model: kws, label: {not_in: [silence, unknown]}}, for: 30m}
  not: {absence: {of: any_event, for: 5m}}
""")
    evs = [EventFact("mic", T0 + k * M, "kws", 0, label=10) for k in range(40)]
    out = eng.feed(evs)
    assert kinds(out) == [("deaf", "mic", "open")]
    assert out[0].at_ms == T0 + 30 * M
    # then the microphone dies completely: not "alive" any more, resolved after 5 minutes of silence
    out = run_ticks(eng, T0 + 39 * M, T0 + 45 * M)
    assert kinds(out) == [("deaf", "mic", "resolve")]
    assert out[0].at_ms == T0 + 44 * M


# -- grouping ----------------------------------------------------------------------------------------------------


def test_per_site_tag_model_global() -> None:
    text = "".join(
        f"- id: by-{name}\n  match: {{model: vib-cls, label: bearing_fault}}\n  window: {{count: 2, within: 1m}}\n"
        f"  per: {per}\n"
        for name, per in [("site", "site"), ("tag", "tag:line"), ("model", "model"), ("global", "global")]
    )
    eng = engine(text)
    a = vib(T0, dev="p1", site="s1", tags={"line": "L1"})
    b = vib(T0 + S, dev="p2", site="s1", tags={"line": "L2"})
    out = eng.feed([a, b])
    assert sorted(kinds(out)) == [("by-global", "*", "open"), ("by-model", "vib-cls", "open"),
                                  ("by-site", "s1", "open")]  # fmt: skip
    out = eng.feed([vib(T0 + 2 * S, dev="p3", site="s2", tags={"line": "L2"})])
    assert kinds(out) == [("by-tag", "L2", "open")]


# -- lifecycle ---------------------------------------------------------------------------------------------------


def test_cooldown_after_resolve() -> None:
    eng = engine("- id: hot\n  match: {model: ad01, anom: {gt: 1}}\n  cooldown: 10m\n")
    assert kinds(eng.feed([ad(T0, 2)])) == [("hot", "m-1", "open")]
    assert kinds(eng.feed([ad(T0 + M, 0)])) == [("hot", "m-1", "resolve")]
    assert eng.feed([ad(T0 + 2 * M, 2)]) == []  # in cooldown
    assert run_ticks(eng, T0 + 2 * M, T0 + 11 * M - S, 10 * S) == []
    # still true when the cooldown ends: opens then, from a tick
    out = eng.tick(T0 + 11 * M)
    assert kinds(out) == [("hot", "m-1", "open")]
    assert out[0].at_ms == T0 + 11 * M


def test_hysteresis_on_a_threshold() -> None:
    eng = engine("- id: hot\n  match: {model: ad01, anom: {gt: 1.0}}\n  hysteresis: 0.2\n")
    assert eng.feed([ad(T0, 0.95)]) == []
    assert kinds(eng.feed([ad(T0 + S, 1.1)])) == [("hot", "m-1", "open")]
    assert eng.feed([ad(T0 + 2 * S, 0.9), ad(T0 + 3 * S, 0.85)]) == []  # above 1.0 - 0.2: stays open
    assert kinds(eng.feed([ad(T0 + 4 * S, 0.79)])) == [("hot", "m-1", "resolve")]


def test_hysteresis_on_stats_and_window() -> None:
    eng = engine("""\
- id: p
  match: {model: ad01}
  stats: {of: anom, fn: max, within: 1h, gt: 0.5}
  hysteresis: 0.1
- id: w
  match: {model: vib-cls, label: bearing_fault}
  window: {count: 3, within: 1m}
  hysteresis: 1
""")
    assert kinds(eng.feed([ad(T0, 0.6)])) == [("p", "m-1", "open")]
    eng.feed([vib(T0, dev="v"), vib(T0 + 10 * S, dev="v")])
    assert kinds(eng.feed([vib(T0 + 20 * S, dev="v")])) == [("w", "v", "open")]
    assert eng.tick(T0 + 61 * S) == []  # 2 left: 3 - hysteresis 1 keeps it open
    assert kinds(eng.tick(T0 + 71 * S)) == [("w", "v", "resolve")]


def test_clear_after() -> None:
    eng = engine("- id: hot\n  match: {model: ad01, anom: {gt: 1}}\n  clear_after: 2m\n")
    eng.feed([ad(T0, 2)])
    eng.feed([ad(T0 + M, 0)])
    assert eng.feed([ad(T0 + 2 * M, 2), ad(T0 + 2 * M + S, 0)]) == []  # flapping: the clear clock restarts
    assert run_ticks(eng, T0 + 2 * M + S, T0 + 4 * M) == []
    assert kinds(eng.tick(T0 + 4 * M + S)) == [("hot", "m-1", "resolve")]


def test_escalation_and_acknowledge() -> None:
    text = (
        "- id: hot\n  match: {model: ad01, anom: {gt: 1}}\n  severity: minor\n"
        "  escalate: {after: 30m, severity: critical}\n"
    )
    eng = engine(text)
    eng.feed([ad(T0, 2, dev="a"), ad(T0, 2, dev="b")])
    assert eng.acknowledge("hot", "b")
    assert not eng.acknowledge("hot", "nobody")
    assert run_ticks(eng, T0, T0 + 30 * M - S, 10 * S) == []
    out = eng.tick(T0 + 30 * M)
    assert [(t.group, t.kind, t.severity) for t in out] == [("a", "escalate", "critical")]
    assert run_ticks(eng, T0 + 30 * M, T0 + 3 * 60 * M, M) == []  # once
    assert kinds(eng.feed([ad(T0 + 4 * 60 * M, 0, dev="a")]))[0][2] == "resolve"


def test_renotify_until_acknowledged() -> None:
    eng = engine("- id: hot\n  match: {model: ad01, anom: {gt: 1}}\n  renotify_every: 1h\n")
    eng.feed([ad(T0, 2)])
    out = run_ticks(eng, T0, T0 + 150 * M, M)
    assert [(t.kind, t.at_ms) for t in out] == [("renotify", T0 + 60 * M), ("renotify", T0 + 120 * M)]
    eng.acknowledge("hot", "m-1")
    assert run_ticks(eng, T0 + 150 * M, T0 + 300 * M, M) == []


def test_manual_resolve() -> None:
    eng = engine("- id: hot\n  match: {model: ad01, anom: {gt: 1}}\n  resolve: manual\n")
    eng.feed([ad(T0, 2)])
    assert eng.feed([ad(T0 + S, 0)]) == []  # stays open
    tr = eng.resolve("hot", "m-1", T0 + 2 * S)
    assert tr is not None
    assert (tr.kind, tr.at_ms, tr.evidence["manual"]) == ("resolve", T0 + 2 * S, True)
    assert eng.resolve("hot", "m-1") is None
    assert kinds(eng.feed([ad(T0 + 3 * S, 2)])) == [("hot", "m-1", "open")]
    assert eng.open_alerts()[0]["rule_id"] == "hot"


def test_disabled_rules_do_nothing() -> None:
    eng = engine("- id: hot\n  enabled: false\n  match: {model: ad01, anom: {gt: 1}}\n")
    assert eng.feed([ad(T0, 2)]) == []


def test_index_only_visits_rules_that_can_match() -> None:
    eng = engine(
        BEARING_RULE + SILENT + "- id: kw\n  match: {model: kws, label: stop}\n  window: {count: 1, within: 1m}\n"
    )
    ids = lambda e: [cr.id for cr in eng._rules_for(e)]  # noqa: E731
    assert ids(vib(T0)) == ["bearing-fault", "silent"]
    assert ids(vib(T0, label=0)) == ["silent"]
    assert ids(EventFact("m", T0, "kws", 0, label=7)) == ["silent", "kw"]
    assert ids(EventFact("m", T0, "kws", 0, label=6)) == ["silent"]


# -- snapshot / restore ------------------------------------------------------------------------------------------


def roundtrip(eng: RuleEngine, rs: RuleSet) -> RuleEngine:
    return RuleEngine.restore(rs, json.loads(json.dumps(eng.snapshot())))


def test_restore_keeps_windows_and_open_alerts_without_double_fire() -> None:
    text = BEARING_RULE + SILENT + "- id: imb\n  match: {model: vib-cls, label: imbalance}\n  for: 10m\n"
    rs = ruleset(text)
    eng = RuleEngine(rs)
    eng.feed([vib(T0), vib(T0 + M)])
    eng.feed([vib(T0 + M, dev="pump-2", label=1)])
    eng2 = roundtrip(eng, rs)
    # the window survived: the third event opens
    assert kinds(eng2.feed([vib(T0 + 2 * M)])) == [("bearing-fault", "pump-1", "open")]
    eng3 = roundtrip(eng2, rs)
    assert eng3.tick(T0 + 2 * M) == []
    # open stays open: no second open for more matching events
    assert eng3.feed([vib(T0 + 3 * M)]) == []
    # the `for` clock survived too
    assert ("imb", "pump-2", "open") in kinds(eng3.tick(T0 + 11 * M))
    # absence clock survived: pump-1 last seen at T0 + 3 m
    eng4 = roundtrip(eng3, rs)
    out = run_ticks(eng4, T0 + 11 * M, T0 + 19 * M)
    assert ("silent", "pump-1", "open") in kinds(out)
    assert ("silent", "pump-2", "open") in kinds(out)
    assert eng4.tick(T0 + 20 * M) == []


def test_restore_with_a_changed_rule_keeps_alerts() -> None:
    rs = ruleset(BEARING_RULE)
    eng = RuleEngine(rs)
    eng.feed([vib(T0), vib(T0 + S), vib(T0 + 2 * S)])
    rs2 = ruleset(BEARING_RULE.replace("count: 3", "count: 4"))
    eng2 = RuleEngine.restore(rs2, eng.snapshot())
    assert eng2.open_alerts()[0]["group"] == "pump-1"
    # condition state restarted (count 0 < 4): the open alert resolves on the next evaluation
    assert kinds(eng2.tick(T0 + 3 * S)) == [("bearing-fault", "pump-1", "resolve")]


def test_from_ingest_row() -> None:
    from tinyfleet.ingest.writer import EVENT_STAGING_COLUMNS

    row = dict.fromkeys(EVENT_STAGING_COLUMNS)
    row.update(device_id="pump-1", boot=1, seq=2, ts_ms=None, recv_ms=T0, model="vib-cls", kind=0, label=3,
               score=0.9, lat_us=2500, extras='{"temp": 41}')  # fmt: skip
    e = EventFact.from_row(tuple(row[c] for c in EVENT_STAGING_COLUMNS), site="s1")
    assert (e.device_id, e.time, e.label, e.lat, e.x, e.site) == ("pump-1", T0, 3, 2500, {"temp": 41}, "s1")
    row.update(ts_ms=T0 - 5000)
    values = tuple(row[c] for c in EVENT_STAGING_COLUMNS)
    assert EventFact.from_row(values).time == T0  # the receive time: one clock for the engine
    assert EventFact.from_row(values, device_time=True).time == T0 - 5000


def test_example_rule_set_runs() -> None:
    from pathlib import Path

    from tinyfleet.rules import load_rules

    eng = RuleEngine(load_rules(Path(__file__).resolve().parents[2] / "rules"))
    out = eng.feed([vib(T0 + k * S) for k in range(3)])
    assert kinds(out) == [("bearing-fault", "pump-1", "open")]
    stop = eng.feed([EventFact("mic-1", T0 + 5 * S, "kws", 0, label=7, score=0.95)])
    assert kinds(stop) == [("kws-stop-command", "mic-1", "open")]
    out = run_ticks(eng, T0, T0 + int(timedelta(minutes=16).total_seconds()) * S)
    assert ("device-silent", "pump-1", "open") in kinds(out)


def test_cel_when() -> None:
    eng = engine("""\
- id: hot
  match: {model: vib-cls, label: bearing_fault, when: "has(x.temp_c) && double(x.temp_c) > 70.0 && tags.line == 'L1'"}
""")
    tags = {"line": "L1"}
    assert eng.feed([vib(T0, x={"temp_c": 65}, tags=tags)]) == []
    assert eng.feed([vib(T0 + S, tags=tags)]) == []  # no temp_c: has() is false
    assert eng.feed([vib(T0 + 2 * S, x={"temp_c": "hot"}, tags=tags)]) == []  # error in CEL: no match
    assert kinds(eng.feed([vib(T0 + 3 * S, x={"temp_c": 71}, tags=tags)])) == [("hot", "pump-1", "open")]
    eng = engine("- id: d\n  match: {model: ad01, when: 'anom > 2.0 && device.startsWith(\"m-\")'}\n")
    assert eng.feed([ad(T0, 1.0)]) == []
    assert kinds(eng.feed([ad(T0 + S, 3.0)])) == [("d", "m-1", "open")]
    assert eng.feed([ad(T0, 3.0, dev="x-1")]) == []


def test_replay_has_exact_times() -> None:
    from tinyfleet.rules import replay

    rs = ruleset(SILENT + BEARING_RULE)
    events = [vib(T0 + 123), vib(T0 + M), vib(T0 + 2 * M), vib(T0 + 40 * M, label=0)]
    out = replay(rs, events, until=T0 + 60 * M)
    assert [(t.rule_id, t.kind, t.at_ms) for t in out] == [
        ("bearing-fault", "open", T0 + 2 * M),
        ("bearing-fault", "resolve", T0 + 123 + 5 * M),  # the first event leaves the window
        ("silent", "open", T0 + 17 * M),  # exactly 15 min after the last event
        ("silent", "resolve", T0 + 40 * M),
        ("silent", "open", T0 + 55 * M),
    ]


def test_expected_devices_that_never_send_are_silent() -> None:
    eng = engine(SILENT + "- id: no-kws\n  absence: {of: {model: kws}, for: 5m}\n")
    assert eng.expect("pump-9", T0, model="vib-cls") == []  # a vib-cls device: no kws clock
    assert eng.expect("mic-9", T0, model="kws") == []
    assert eng.expect("other", T0) == []  # model unknown: only rules naming no model
    out = run_ticks(eng, T0, T0 + 16 * M, 10 * S)
    assert sorted((t.rule_id, t.group, t.at_ms) for t in out) == [
        ("no-kws", "mic-9", T0 + 5 * M),
        ("silent", "mic-9", T0 + 15 * M),
        ("silent", "other", T0 + 15 * M),
        ("silent", "pump-9", T0 + 15 * M),
    ]
    # a clock already running is not reset
    eng.feed([vib(T0 + 16 * M, dev="pump-9", label=0)])
    eng.expect("pump-9", T0 + 20 * M, model="vib-cls")
    assert [t.at_ms for t in run_ticks(eng, T0 + 17 * M, T0 + 32 * M, 10 * S)] == [T0 + 31 * M]


def test_evidence_of_a_composition_is_json() -> None:
    eng = engine("""\
- id: combo
  all:
    - match: {model: ad01}
      stats: {of: anom, fn: mean, within: 1m, gt: 1}
    - any:
        - match: {model: ad01, anom: {gt: 5}}
        - absence: {for: 1h}
  for: 2s
""")
    eng.feed([ad(T0, 2.0), ad(T0 + S, 6.0)])
    (t,) = eng.tick(T0 + 3 * S)
    assert t.kind == "open"
    assert set(t.evidence) == {"for", "all.0.stats", "all.1.any.0.match", "all.1.any.1.absence"}
    assert t.evidence["all.0.stats"]["value"] == 4.0
    json.dumps(t.evidence)


def test_prune_forgets_idle_groups_only() -> None:
    eng = engine(BEARING_RULE + SILENT + "- id: hot\n  match: {model: ad01, anom: {gt: 1}}\n  cooldown: 10m\n")
    eng.feed([vib(T0, dev=f"p{i}") for i in range(100)])
    eng.feed([ad(T0, 2.0), ad(T0 + S, 0.5)])  # opened and resolved: cooldown running
    assert eng.prune() == 0  # windows hold events
    eng.tick(T0 + 6 * M)
    # the windows are empty now; the absence clocks (101 devices) and the cooldown stay
    assert eng.prune() == 100
    assert eng.prune() == 0
    eng.tick(T0 + 12 * M)
    assert eng.prune() == 1  # cooldown over
    snap = eng.snapshot()
    assert set(snap["rules"]["bearing-fault"]["groups"]) == set()
    assert len(snap["rules"]["silent"]["groups"]) == 101
