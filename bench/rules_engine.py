"""Benchmark of the pure rule engine (tinyfleet.rules): events/s fed through 100 rules of mixed kinds.

    .venv/bin/python bench/rules_engine.py [--events N] [--devices N] [--quick]

The rule set: 10 models with 12 labels each; per model 4 count-in-window rules, 1 threshold match, 1 `for`
rule, 1 stats (p95 of anom), 1 rate-change rule, 1 composition (all/not) and 1 absence of the model (= 100),
plus nothing else. 1,000 devices (each runs one model; `--rate` events/s each, default 1: 1,000 events per
simulated second; labels and scores random but seeded). `tick` is called once per simulated second and its
time is included.
Prints events/s and per-event cost, then one JSON line `{"bench": "rules_engine", ...}`. Best of 3 runs.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import random
import sys
import time
from typing import Any

from tinyfleet.rules import EventFact, RuleEngine, load_rules_text

T0 = 1_764_072_000_000
N_MODELS = 10
LABELS = [f"c{i}" for i in range(12)]


def rule_text() -> dict[str, str]:
    models = "models:\n" + "".join(f"  m{m}: {{labels: [{', '.join(LABELS)}]}}\n" for m in range(N_MODELS))
    rules: list[str] = []
    for m in range(N_MODELS):
        for k in range(4):
            rules.append(
                f"- id: m{m}-window-{k}\n  match: {{model: m{m}, label: c{k + 1}, score: {{gte: 0.{5 + k}}}}}\n"
                f"  window: {{count: {3 + k}, within: {k + 1}m}}\n  cooldown: 10m\n"
            )
        rules.append(f"- id: m{m}-threshold\n  match: {{model: m{m}, label: c5, score: {{gte: 0.99}}}}\n")
        rules.append(f"- id: m{m}-for\n  match: {{model: m{m}, label: {{ne: c0}}}}\n  for: 20s\n  severity: minor\n")
        rules.append(
            f"- id: m{m}-stats\n  match: {{model: m{m}}}\n  stats: {{of: anom, fn: p95, within: 1m, gt: 0.97, "
            f"min_count: 10}}\n  hysteresis: 0.02\n"
        )
        rules.append(
            f"- id: m{m}-rate\n  match: {{model: m{m}, label: c11}}\n"
            f"  rate: {{window: 1m, baseline: 5m, above_baseline_factor: 3}}\n"
        )
        rules.append(
            f"- id: m{m}-combo\n  all:\n    - match: {{model: m{m}, label: c6}}\n"
            "      window: {count: 2, within: 30s}\n"
            f"  not: {{match: {{model: m{m}, label: c0}}, window: {{count: 1, within: 30s}}}}\n"
        )
        rules.append(f"- id: m{m}-silent\n  absence: {{of: {{model: m{m}}}, for: 30s}}\n  per: device\n")
    return {"models.yml": models, "rules.yml": "".join(rules)}


def make_events(n: int, devices: int, seed: int = 1, rate: float = 1.0) -> list[EventFact]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        d = i % devices
        model = f"m{d % N_MODELS}"
        # mostly c0 (normal), the rest spread over the other classes
        label = 0 if rnd.random() < 0.7 else rnd.randrange(12)
        out.append(
            EventFact(
                f"dev-{d}", T0 + int(i * 1000 / (devices * rate)), model, 0, label=label, score=rnd.random(),
                anom=rnd.random(), lat=2000,
            )
        )  # fmt: skip
    return out


def run(events: list[EventFact], rs: Any) -> tuple[float, int, float]:
    eng = RuleEngine(rs)
    transitions = 0
    tick_s = 0.0
    gc.collect()
    t0 = time.perf_counter()
    next_tick = T0 + 1000
    chunk: list[EventFact] = []
    for e in events:
        t = e.time
        assert isinstance(t, int)
        if t >= next_tick:
            transitions += len(eng.feed(chunk))
            chunk = []
            a = time.perf_counter()
            transitions += len(eng.tick(next_tick))
            tick_s += time.perf_counter() - a
            next_tick += 1000
        chunk.append(e)
    transitions += len(eng.feed(chunk))
    return time.perf_counter() - t0, transitions, tick_s


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rate", type=float, default=1.0, help="events per second per device")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n = 30_000 if args.quick else args.events
    rs = load_rules_text(rule_text())
    assert len(rs.rules) == 100
    events = make_events(n, args.devices, rate=args.rate)
    best: tuple[float, int, float] | None = None
    for _ in range(1 if args.quick else 3):
        r = run(events, rs)
        if best is None or r[0] < best[0]:
            best = r
    assert best is not None
    secs, transitions, tick_s = best
    eps = n / secs
    eng = RuleEngine(rs)
    visits = sum(len(eng._rules_for(e)) for e in events[:10_000]) / min(n, 10_000)
    sim_s = n / (args.devices * args.rate)
    print(
        f"rules: {len(rs.rules)}  devices: {args.devices} x {args.rate:g} events/s  events: {n:,}  "
        f"simulated: {sim_s:.0f} s"
    )
    print(f"fed: {eps:,.0f} events/s  ({secs * 1e6 / n:.2f} µs/event, ticks {tick_s * 1e3:.0f} ms in total)")
    print(f"rules visited per event (index): {visits:.2f} of {len(rs.rules)}; transitions: {transitions:,}")
    print(json.dumps({
        "bench": "rules_engine", "rules": len(rs.rules), "devices": args.devices, "rate_per_device": args.rate,
        "events": n, "simulated_s": round(sim_s, 1),
        "events_per_s": round(eps), "us_per_event": round(secs * 1e6 / n, 3), "tick_ms_total": round(tick_s * 1e3, 1),
        "rules_visited_per_event": round(visits, 2), "transitions": transitions,
        "python": sys.version.split()[0], "machine": platform.machine(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
