"""Property: an engine pruned, snapshotted and restored (through JSON) at arbitrary points emits exactly the
transitions of an engine that ran without interruption — a restart neither loses nor double-fires an alert."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyfleet.rules import EventFact, RuleEngine, Transition, load_rules_text

T0 = 1_764_072_000_000

RULES = {
    "models.yml": "models:\n  vib-cls: {labels: [normal, imbalance, misalignment, bearing_fault]}\n",
    "r.yml": """\
- id: window
  match: {model: vib-cls, label: bearing_fault, score: {gte: 0.5}}
  window: {count: 3, within: 20s}
  cooldown: 15s
  hysteresis: 1
- id: silent
  absence: {for: 12s}
- id: for
  match: {model: vib-cls, label: {ne: normal}}
  for: 5s
  escalate: {after: 10s, severity: critical}
  renotify_every: 7s
- id: stats
  match: {model: vib-cls}
  stats: {of: score, fn: p90, within: 15s, gt: 0.8, min_count: 3}
  clear_after: 4s
- id: site-any
  any:
    - match: {model: vib-cls, label: misalignment}
      window: {count: 2, within: 10s}
    - not: {absence: {of: {model: vib-cls, label: imbalance}, for: 30s}}
  per: site
- id: rate
  match: {model: vib-cls, label: {ne: normal}}
  rate: {window: 10s, baseline: 20s, above_baseline_factor: 2, min_baseline_events: 2}
""",
}
RS = load_rules_text(RULES)

events = st.lists(
    st.tuples(
        st.integers(0, 3000),  # ms since the previous event
        st.sampled_from(["d1", "d2", "d3"]),
        st.integers(0, 3),
        st.floats(0, 1),
    ),
    max_size=120,
)


def facts(spec: list[tuple[int, str, int, float]]) -> list[EventFact]:
    t = T0
    out = []
    for gap, dev, label, score in spec:
        t += gap
        out.append(
            EventFact(dev, t, "vib-cls", 0, label=label, score=score, site="s" + dev[-1:] if dev != "d3" else "s1")
        )
    return out


def run(evs: list[EventFact], restore_at: set[int]) -> list[tuple[str, str, str, str, int]]:
    eng = RuleEngine(RS)
    out: list[Transition] = []
    next_tick = T0 + 1000
    for i, e in enumerate(evs):
        assert isinstance(e.time, int)
        while next_tick <= e.time:
            out += eng.tick(next_tick)
            next_tick += 1000
        if i in restore_at:
            eng.prune()
            eng = RuleEngine.restore(RS, json.loads(json.dumps(eng.snapshot())))
        out += eng.feed([e])
    end = next_tick + 60_000
    while next_tick <= end:
        out += eng.tick(next_tick)
        next_tick += 1000
    return [(t.rule_id, t.group, t.kind, t.severity, t.at_ms) for t in out]


@settings(max_examples=150, deadline=None)
@given(events, st.sets(st.integers(0, 119), max_size=10))
def test_restore_anywhere_changes_nothing(spec: list[tuple[int, str, int, float]], restore_at: set[int]) -> None:
    evs = facts(spec)
    assert run(evs, restore_at) == run(evs, set())
