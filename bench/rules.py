#!/usr/bin/env python3
"""Rules benchmark (the "Rules" issue): 100 rules of mixed kinds in process and end to end through MQTT.

    .venv/bin/python bench/rules.py [--quick] [--events N] [--rate R] [--repeat N] [--latency-seconds S] ...

Not a test. Phases, all in one run:

1. **In-process feed**: `RuleEngine.feed` + `tick` over the 100-rule set and the event stream of
   `bench/rules_engine.py` (imported from there: 10 models × 12 labels; per model 4 count windows, a threshold,
   a `for`, a p95 stats, a rate change, an all/not composition and an absence; 1,000 devices at 1 event/s
   each), best of 3: events/s.
2. **End to end through MQTT, rules off vs on**: a private Mosquitto (as bench/ingest.py starts it), a fresh
   database per run (TimescaleDB when installed; fresh because the rules runtime reads history from the
   database when it starts), and the real service composition
   `Service(settings, http=False, maintenance=False, rules=False|True)` — ingest alone, or ingest +
   `RulesRuntime` with the same 100 rules + `OutboxWorker` — in a process of its own per run, fed the same
   message stream at a steady offered load (default 20,000 single-event QoS 1 messages/s, 1,000 devices).
   Runs alternate off/on, `--repeat` pairs; the pair with the median CPU ratio is reported (as
   bench/ingest.py does; every run is printed). Per run:
     * events/s = events ÷ (last event committed — and, rules on, fed through the engine — minus the first
       message received); the committed-only rate is printed too (the rules lag behind the commits when
       they cannot keep up: they are fed from a queue);
     * CPU = user+system seconds of the service's whole process tree (the process that runs paho, the
       ingest writer thread and the event loop with the rules and the outbox, plus the ingest's
       decode+DB writer child process), read with psutil from the moment the publisher starts until every
       event is committed (and evaluated), ÷ events. `cpu_extra_pct` = (with / without − 1) × 100.
       Also printed: CPU by thread (where the time goes), the engine's own CPU per event in the service
       (thread time inside `RuleEngine.feed`), the CPU of the database backends serving the run's database,
       of the broker and of the publisher, machine-wide busy CPU, and what other processes used meanwhile
       (the run is flagged when the machine was not idle; before each run the bench waits up to
       `--quiet-wait` s for an idle machine).
     * Rules on: the events the engine was fed (counted by wrapping `RuleEngine.feed` in the service
       process), `dropped_batches` / `failed_batches` of the runtime, transitions written (the synthetic
       rule set opens and resolves alerts all the time: one transition per 40–80 events here, each a
       database transaction through `alerts.apply_transition`), the largest depth the rules queue reached,
       and how long the feed was held up by alert writes (`RulesRuntime._apply`), ticks and snapshots.
   A last off/on pair at `--equal-rate` (default 5,000 events/s), which both keep up with, gives the CPU
   extra without the effects of overload (at 20,000/s the rules-on run falls behind and works at another
   rate, and CPU per event depends on the rate: batch sizes, thread wake-ups).
3. **Latency**: a steady 1,000 events/s of the same stream for `--latency-warmup` (default 65) +
   `--latency-seconds` (default 25) s, of which every 100th event is a "firing" event: model `bench-fire`,
   a device id of its own, so the extra rule `bench-webhook` (`match: {model: bench-fire}`, `per: device`,
   `resolve: manual`, one webhook action; 101 rules in all) opens one alert per firing event and the outbox
   sends one webhook, signed with `TINYFLEET_WEBHOOK_SECRET`, to an HTTP receiver (keep-alive) in this
   process, which verifies the HMAC (`X-Tinyfleet-Signature`). The publisher stamps the publish time into the
   event's extras (`x.p`, µs, like `bench/loadgen.c --stamp`); the alert's match evidence carries the event,
   so the receiver reads `x.p` from the webhook body: publish → webhook received. p50/p99 over the deliveries
   of the events published after the warm-up, on a fresh database that starts from a CHECKPOINT. The warm-up
   is needed because all 1,000 devices start at once: the p95 rule of each model opens or resolves the alerts
   of hundreds of devices within the same second at 10, 20, 40 and 60 s (when the window holds 10, 20, 40,
   60 events); those storms of ~250 transitions, written one by one, hold up the alerts behind them. The
   warm-up figures are printed too, with the slowest deliveries split into publish → received by the ingest →
   committed → fed to the engine → webhook received, and the seconds with the most transitions. Nothing is
   tuned for the bench: the outbox runs with its defaults (LISTEN/NOTIFY wake-up, 0.5 s poll, 2 claiming
   loops), ingest batching with its defaults.

The service connects with MQTT 3.1.1 by default, as bench/ingest.py does (`--mqtt-protocol 5` for the
service's own default: paho's MQTT 5 path costs about twice as much Python per message). The publisher is
`bench/loadgen.c` (libmosquitto) reading a file of pre-built messages: the events `rules_engine.make_events`
draws (model per device, 70 % label c0, random score and anom), CBOR-encoded as protocol v1, every 100th a
firing event whose publish time loadgen writes in just before sending; it costs little CPU per message and
leaves the two cores to broker, database and service. Each run uses device ids and a topic prefix of its own.

Ends with one JSON line of all figures. `--quick`: a few seconds per phase (a smoke test; figures are noisy).
`--profile` writes a cProfile of the service's event-loop thread per rules-on run next to the logs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import logging
import math
import os
import random
import secrets
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.ingest import PG_ADMIN_URL, stamp_first_receive  # noqa: E402
from bench.rules_engine import LABELS, N_MODELS, make_events, rule_text, run  # noqa: E402

SECRET = "bench-webhook-secret-0123456789abcdef"
FIRE_MODEL = "bench-fire"
FIRE_RULE = "bench-webhook"
TICK_S = 0.005


# ================================================================================================= publisher
#: A placeholder for the publish time in firing events: a CBOR uint64 (0x1b + 8 bytes) that loadgen overwrites.
_STAMP = 0x7FFF_FFFF_FFFF_FFFF
_STAMP_BYTES = b"\x1b" + _STAMP.to_bytes(8, "big")


def _record(topic: bytes, payload: bytes, *, stamp: bool = False) -> bytes:
    """One message of bench/loadgen.c's payload file (see its header)."""
    offset = payload.rindex(_STAMP_BYTES) + 1 if stamp else 0
    return (struct.pack("<BH", 1 if stamp else 0, len(topic) + 1) + topic + b"\0"
            + struct.pack("<HH", len(payload), offset) + payload)  # fmt: skip


def publisher_main(a: argparse.Namespace) -> None:
    """Write the stream to a payload file, run bench/loadgen.c (libmosquitto) on it: READY, wait for `go` on
    stdin, send paced (firing events stamped with their publish time), wait for every PUBACK, RESULT."""
    import cbor2
    from bench.ingest import build_loadgen

    from tinyfleet.wire import decode_events

    rnd = random.Random(a.seed)
    ts_ms = int(time.time() * 1000)
    devices = a.devices
    topics = [f"{a.prefix}/{a.device_prefix}-{d:05d}/evt".encode() for d in range(devices)]
    seqs = [0] * devices
    records: list[bytes] = []
    fire = 0
    sample = b""
    for i in range(a.count):
        if a.fire_every and i % a.fire_every == a.fire_every - 1:
            topic = f"{a.prefix}/{a.device_prefix}-fire-{fire:05d}/evt".encode()
            fire += 1
            payload = cbor2.dumps({0: 1, 1: ts_ms, 2: 0, 3: a.boot, 4: FIRE_MODEL, 6: 0, 7: 1, 8: 0.9,
                                   13: {"p": _STAMP}})  # fmt: skip
            records.append(_record(topic, payload, stamp=True))
            continue
        d = i % devices
        # the draws of rules_engine.make_events
        label = 0 if rnd.random() < 0.7 else rnd.randrange(len(LABELS))
        score, anom = rnd.random(), rnd.random()
        seq = seqs[d]
        seqs[d] = seq + 1
        sample = cbor2.dumps({0: 1, 1: ts_ms, 2: seq, 3: a.boot, 4: f"m{d % N_MODELS}", 5: 1, 6: 0, 7: label,
                              8: score, 9: anom, 12: 2000})  # fmt: skip
        records.append(_record(topics[d], sample))
    if sample:
        assert not decode_events(sample).rejects
    work = Path(tempfile.mkdtemp(prefix="tf-bench-publisher-"))
    path = work / "payloads.bin"
    path.write_bytes(b"".join(records))
    binary = build_loadgen(work)
    cmd = [str(binary), "--port", str(a.port), "--payloads", str(path), "--ready", "--rate", str(a.rate or 0),
           "--inflight", "1000", "--client-id", a.client_id]  # fmt: skip
    gen = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert gen.stdin is not None
    assert gen.stdout is not None
    if gen.stdout.readline().strip() != "READY":
        sys.exit(f"publisher: loadgen did not start ({gen.wait()})")
    print("READY", flush=True)
    sys.stdin.readline()
    gen.stdin.write("go\n")
    gen.stdin.flush()
    line = gen.stdout.readline()
    if gen.wait(300) != 0 or not line.startswith("RESULT "):
        sys.exit(f"publisher: loadgen failed ({gen.returncode}): {line!r}")
    res = json.loads(line[len("RESULT ") :])
    shutil.rmtree(work, ignore_errors=True)
    out = {"sent": res["sent"], "acked": res["acked"], "first": res["first"], "last": res["last"], "fire": fire,
           "cpu": res["cpu"]}  # fmt: skip
    print("RESULT " + json.dumps(out), flush=True)


# ================================================================================================= service
def _cpu(p: Any) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def _snapshot(pg_pids: dict[int, Any], broker: Any) -> dict[str, Any]:
    """CPU seconds so far: this process (by thread), its children, the given database backends, the broker,
    the whole machine."""
    import psutil

    me = psutil.Process()
    names = {t.native_id: t.name for t in threading.enumerate()}
    threads: dict[str, float] = {}
    for th in me.threads():
        name = names.get(th.id, "other")
        if name.startswith("paho-mqtt-client"):
            name = "paho network"
        elif name.startswith(("asyncio_", "ThreadPoolExecutor")):
            name = "executor threads"
        threads[name] = threads.get(name, 0.0) + th.user_time + th.system_time
    children = 0.0
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            children += _cpu(child)
    db = {}
    for pid, proc in pg_pids.items():
        with contextlib.suppress(psutil.Error):
            db[pid] = _cpu(proc)
    m = psutil.cpu_times()
    busy = m.user + m.nice + m.system + m.irq + m.softirq + getattr(m, "steal", 0.0)
    return {
        "self": _cpu(me), "children": children, "threads": threads, "db": db,
        "broker": _cpu(broker) if broker is not None else 0.0, "machine": busy, "t": time.time(),
    }  # fmt: skip


def _delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    threads = {k: v - a["threads"].get(k, 0.0) for k, v in b["threads"].items()}
    return {
        "tree": (b["self"] + b["children"]) - (a["self"] + a["children"]),
        "writer_child": b["children"] - a["children"],
        "threads": {k: round(v, 3) for k, v in sorted(threads.items(), key=lambda kv: -kv[1]) if v > 0.005},
        "db": sum(v - a["db"].get(pid, 0.0) for pid, v in b["db"].items()),
        "broker": b["broker"] - a["broker"],
        "machine": b["machine"] - a["machine"],
        "wall": b["t"] - a["t"],
    }


def _write_profile(profiler: Any, path: str) -> None:
    import pstats

    profiler.dump_stats(path.removesuffix(".txt") + ".pstats")
    with open(path, "w") as f:
        pstats.Stats(profiler, stream=f).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=f).sort_stats("cumulative").print_stats(40)


def service_main(a: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.switch_interval:
        sys.setswitchinterval(a.switch_interval)
    res = asyncio.run(_service(a))
    print("RESULT " + json.dumps(res), flush=True)


async def _service(a: argparse.Namespace) -> dict[str, Any]:
    import psutil
    import psycopg

    from tinyfleet.app import Service
    from tinyfleet.config import Settings
    from tinyfleet.rules.engine import RuleEngine
    from tinyfleet.rules.runtime import RulesRuntime

    fed = {"events": 0, "t": 0.0, "engine_s": 0.0, "dropped_events": 0}
    original_feed = RuleEngine.feed

    def counting_feed(self: RuleEngine, facts: Any) -> Any:
        t = time.thread_time()  # CPU of this thread: not the time other threads held the GIL meanwhile
        out = original_feed(self, facts)
        fed["engine_s"] += time.thread_time() - t
        fed["events"] += len(facts)
        fed["t"] = time.time()
        return out

    RuleEngine.feed = counting_feed  # type: ignore[method-assign,assignment]
    # Where the feed waits: alert writes (`_apply`, one transaction per batch or tick), ticks, snapshots.
    stalls: dict[str, Any] = {"apply_s": 0.0, "apply_n": 0, "apply_max_s": 0.0, "apply_max_transitions": 0,
                              "tick_s": 0.0, "tick_max_s": 0.0, "snapshot_s": 0.0, "snapshot_max_s": 0.0,
                              "long": []}  # fmt: skip
    original_apply = RulesRuntime._apply

    async def timed_apply(self: RulesRuntime, transitions: Any, *args: Any, **kw: Any) -> Any:
        t = time.perf_counter()
        try:
            return await original_apply(self, transitions, *args, **kw)
        finally:
            d = time.perf_counter() - t
            if transitions:
                if a.trace_fire:  # transitions per second, by kind of rule (m3-stats → stats)
                    sec = stalls.setdefault("per_s", {}).setdefault(str(int(time.time())), {})
                    for tr in transitions:
                        name = f"{tr.rule_id.split('-', 1)[-1].split('-')[0]} {tr.kind}"
                        sec[name] = sec.get(name, 0) + 1
                stalls["apply_s"] += d
                stalls["apply_n"] += 1
                stalls["apply_max_s"] = max(stalls["apply_max_s"], d)
                stalls["apply_max_transitions"] = max(stalls["apply_max_transitions"], len(transitions))
                if d > 0.05:
                    stalls["long"].append((round(time.time() - d, 3), "apply", round(d, 3), len(transitions)))

    def timed(name: str, fn: Any) -> Any:
        def wrapper(self: Any, *args: Any, **kw: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(self, *args, **kw)
            finally:
                d = time.perf_counter() - t
                stalls[f"{name}_s"] += d
                stalls[f"{name}_max_s"] = max(stalls[f"{name}_max_s"], d)
                if d > 0.05:
                    stalls["long"].append((round(time.time() - d, 3), name, round(d, 3), 0))

        return wrapper

    RulesRuntime._apply = timed_apply  # type: ignore[method-assign]
    # Latency run: when each firing event was committed (the rules' commit listener) and fed to the engine.
    fire_times: dict[str, list[float]] = {}
    if a.trace_fire:
        original_listener = RulesRuntime.listener
        original_feed_traced = RuleEngine.feed

        def tracing_listener(self: RulesRuntime, rows: Any, result: Any = None) -> None:
            now = time.time()
            for r in rows:
                if r[5] == FIRE_MODEL:
                    fire_times[r[0]] = [now]
            original_listener(self, rows, result)

        def tracing_feed(self: RuleEngine, facts: Any) -> Any:
            now = time.time()
            for f in facts:
                if f.model == FIRE_MODEL and f.device_id in fire_times:
                    fire_times[f.device_id].append(now)
            return original_feed_traced(self, facts)

        RulesRuntime.listener = tracing_listener  # type: ignore[method-assign]
        RuleEngine.feed = tracing_feed  # type: ignore[method-assign,assignment]
    RuleEngine.tick = timed("tick", RuleEngine.tick)  # type: ignore[method-assign]
    RuleEngine.snapshot = timed("snapshot", RuleEngine.snapshot)  # type: ignore[method-assign]
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=a.database_url,
        mqtt_url=f"mqtt://127.0.0.1:{a.port}",
        topic_prefix=a.prefix,
        mqtt_client_id=a.client_id,
        rules_dir=a.rules_dir or "rules",
        webhook_secret=SECRET,
        log_level="WARNING",
        mqtt_protocol=a.mqtt_protocol,
    )
    rules_on = bool(a.rules_dir)
    async with Service(settings, http=False, maintenance=False, rules=rules_on) as svc:
        ingest = svc.ingest
        assert ingest is not None
        assert await asyncio.to_thread(ingest.wait_connected, 10)
        await asyncio.sleep(0.3)  # subscriptions acknowledged
        rules = svc.rules
        n_rules = 0
        if rules is not None:
            n_rules = len(rules.ruleset.rules)
            assert n_rules == a.expect_rules, f"{n_rules} rules loaded, expected {a.expect_rules}"
            enqueue = rules._enqueue
            queue = rules._queue

            def counting_enqueue(rows: list[Any]) -> None:
                if queue.full():
                    fed["dropped_events"] += len(rows)
                enqueue(rows)

            rules._enqueue = counting_enqueue  # type: ignore[method-assign]
        first = stamp_first_receive(ingest)
        with psycopg.connect(a.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()"
            ).fetchall()
        pg_pids = {}
        for (pid,) in rows:
            with contextlib.suppress(psutil.Error):
                pg_pids[pid] = psutil.Process(pid)
        broker = psutil.Process(a.broker_pid) if a.broker_pid else None
        print("READY", flush=True)
        await asyncio.to_thread(sys.stdin.readline)
        gc.collect()
        s0 = _snapshot(pg_pids, broker)
        print("GO", flush=True)
        profiler = None
        if a.profile:  # the event loop's thread only (rules feed, tick, checkpoints, outbox)
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        stored = ingest.metrics.events_stored
        n = a.count
        t_committed = 0.0
        qmax = 0
        timed_out = False
        deadline = time.monotonic() + a.timeout
        while True:
            committed = int(stored._value.get())
            if rules is not None:
                qmax = max(qmax, rules._queue.qsize())
            if committed >= n and not t_committed:
                t_committed = time.time()
            # a runtime that reads dropped batches back from the database (`recovered_events`) evaluates every
            # event in the end; one that does not loses the dropped ones
            evaluated = (
                rules is None
                or fed["events"] >= committed
                or (not hasattr(rules, "recovered_events") and fed["events"] + fed["dropped_events"] >= committed)
            )
            delivered = svc.outbox.delivered if svc.outbox is not None else 0
            if t_committed and evaluated and delivered >= a.deliveries:
                break
            if time.monotonic() > deadline:
                timed_out = True
                break
            await asyncio.sleep(0.01)
        s1 = _snapshot(pg_pids, broker)
        if profiler is not None:
            profiler.disable()
            _write_profile(profiler, a.profile)
        end = max(t_committed, fed["t"]) if rules is not None else t_committed
        out: dict[str, Any] = {
            "committed": int(stored._value.get()),
            "fed": fed["events"],
            "dropped_events": fed["dropped_events"],
            "first": first["t"],
            "end": end or time.time(),
            "committed_at": t_committed,
            "lag_after_commit_s": max(0.0, fed["t"] - t_committed) if rules is not None and t_committed else 0.0,
            "engine_s": fed["engine_s"],
            "rules": n_rules,
            "timed_out": timed_out,
            "cpu": _delta(s0, s1),
            "queue_max": qmax,
            "stalls": stalls,
            "fire_times": fire_times,
        }
        out["batches"] = ingest._batches
        if rules is not None:
            out.update(dropped_batches=rules.dropped_batches, failed_batches=rules.failed_batches,
                       transitions=rules.applied)  # fmt: skip
        if svc.outbox is not None:
            out.update(delivered=svc.outbox.delivered, delivery_failures=svc.outbox.failed_attempts)
    return out


# ================================================================================================= orchestration
class Worker:
    """This script in another process (`--worker ROLE`), talking line by line over stdin/stdout."""

    def __init__(self, role: str, args: list[str], log_path: Path) -> None:
        self.log_path = log_path
        self._log: IO[str] = log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", role, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, cwd=ROOT,
        )  # fmt: skip

    def expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(word):
                return line[len(word) :].strip()
        self.proc.wait(10)
        raise RuntimeError(f"worker exited ({self.proc.returncode}) before {word!r}; see {self.log_path}:\n"
                           + self.log_path.read_text()[-3000:])  # fmt: skip

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self) -> dict[str, Any]:
        res = dict(json.loads(self.expect("RESULT ")))
        self.proc.wait(60)
        self._log.close()
        return res

    def problems(self) -> list[str]:
        """WARNING/ERROR lines of the worker's log (its stderr)."""
        return [ln for ln in self.log_path.read_text().splitlines() if " WARNING " in ln or " ERROR " in ln
                or "Traceback" in ln]  # fmt: skip


class Bench:
    """One end-to-end run = a fresh database (migrated), a service process, a publisher process."""

    def __init__(self, args: argparse.Namespace, work: Path, port: int, broker_pid: int | None) -> None:
        self.args = args
        self.work = work
        self.port = port
        self.broker_pid = broker_pid
        self.runs = 0
        self.problems: list[str] = []
        self.timescaledb = "unknown"
        self.quiet_waits: list[float] = []

    @contextlib.contextmanager
    def database(self, tag: str) -> Iterator[str]:
        """A database of its own per run: the rules runtime reads history from the database at start (warm-up,
        device clocks), so every run must start from the same, empty, state."""
        import psycopg

        from tinyfleet.store.migrate import upgrade

        name = f"tinyfleet_bench_rules_{os.getpid()}_{tag}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        try:
            upgrade(url)
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute("select value from tinyfleet_meta where key = 'timescaledb'").fetchone()
                self.timescaledb = row[0] if row else "unknown"
                # Start from a checkpoint: no run pays for the dirty pages of the run before (bench/ingest.py).
                conn.execute("CHECKPOINT")
            yield url
        finally:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def wait_quiet(self, limit_s: float) -> None:
        """Wait (at most `limit_s`) until the machine is nearly idle: another workload (a test run) would take
        cores from the service and distort the figures."""
        import psutil

        t0 = time.monotonic()
        psutil.cpu_percent(None)
        while time.monotonic() - t0 < limit_s:
            if psutil.cpu_percent(0.5) < 15.0 and psutil.cpu_percent(0.5) < 15.0:
                break
        self.quiet_waits.append(time.monotonic() - t0)

    def run(self, *, rules_dir: Path | None, count: int, rate: float, expect_rules: int = 0,
            fire_every: int = 0, deliveries: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
        self.runs += 1
        tag = f"run{self.runs}"
        prefix = f"b{secrets.token_hex(3)}/v1"
        with self.database(tag) as db:
            self.wait_quiet(self.args.quiet_wait)
            svc_args = ["--database-url", db, "--port", str(self.port), "--prefix", prefix, "--count", str(count),
                        "--client-id", f"bench-rules-{tag}-{secrets.token_hex(2)}", "--expect-rules",
                        str(expect_rules), "--deliveries", str(deliveries),
                        "--timeout", str(self.args.run_timeout)]  # fmt: skip
            if rules_dir is not None:
                svc_args += ["--rules-dir", str(rules_dir)]
            if self.broker_pid:
                svc_args += ["--broker-pid", str(self.broker_pid)]
            svc_args += ["--mqtt-protocol", str(self.args.mqtt_protocol)]
            if fire_every:
                svc_args.append("--trace-fire")
            if self.args.switch_interval:
                svc_args += ["--switch-interval", str(self.args.switch_interval)]
            if self.args.profile and rules_dir is not None:
                svc_args += ["--profile", str(self.work / f"{tag}-main-thread.prof.txt")]
            svc = Worker("service", svc_args, self.work / f"{tag}-service.log")
            svc.expect("READY")
            pub = Worker("publish", ["--port", str(self.port), "--prefix", prefix, "--count", str(count),
                                     "--rate", str(rate), "--devices", str(self.args.devices), "--device-prefix", tag,
                                     "--boot", str(self.runs), "--seed", str(self.runs), "--fire-every",
                                     str(fire_every), "--client-id", f"bench-pub-{tag}"],
                         self.work / f"{tag}-publisher.log")  # fmt: skip
            pub.expect("READY")
            svc.send("go")
            svc.expect("GO")
            pub.send("go")
            p = pub.result()
            s = svc.result()
        for w, name in ((svc, "service"), (pub, "publisher")):
            lines = w.problems()
            if lines:
                self.problems.append(f"{tag} {name}: {len(lines)} warning/error lines, first: {lines[0][:300]}")
        if s["timed_out"]:
            self.problems.append(f"{tag}: timed out with {s['committed']:,} of {count:,} committed, "
                                 f"{s['fed']:,} evaluated")  # fmt: skip
        c = s["cpu"]
        other = max(0.0, c["machine"] - c["tree"] - c["db"] - c["broker"] - p["cpu"]) / c["wall"] if c["wall"] else 0.0
        if other > 0.25:
            self.problems.append(f"{tag}: the machine was not idle, other processes used {other:.2f} cores meanwhile")
        return s, p


def per_event_us(seconds: float, events: int) -> float:
    return seconds * 1e6 / events if events else 0.0


def summarize(s: dict[str, Any], p: dict[str, Any], count: int) -> dict[str, Any]:
    span = s["end"] - s["first"]
    return {
        "events_per_s": count / span if span > 0 else 0.0,
        "commit_events_per_s": count / (s["committed_at"] - s["first"]) if s["committed_at"] > s["first"] else 0.0,
        "offered_per_s": p["sent"] / (p["last"] - p["first"]) if p["last"] > p["first"] else 0.0,
        "cpu_us": per_event_us(s["cpu"]["tree"], count),
        "db_us": per_event_us(s["cpu"]["db"], count),
        "broker_us": per_event_us(s["cpu"]["broker"], count),
        "machine_us": per_event_us(s["cpu"]["machine"], count),
        "threads_us": {k: round(per_event_us(v, count), 2) for k, v in s["cpu"]["threads"].items()},
        "writer_child_us": per_event_us(s["cpu"]["writer_child"], count),
        "publisher_us": per_event_us(p["cpu"], count),
        # what the rest of the machine used meanwhile (cores): anything but service, its database backends,
        # broker and publisher — another workload on the machine shows here
        "other_cores": max(0.0, c["machine"] - c["tree"] - c["db"] - c["broker"] - p["cpu"]) / c["wall"]
        if (c := s["cpu"])["wall"] > 0
        else 0.0,
        "raw": s,
    }


def fmt_run(label: str, r: dict[str, Any]) -> str:
    raw = r["raw"]
    extra = stalls = ""
    st = raw.get("stalls")
    if raw.get("rules") and st:
        stalls = (f"; feed held up by alert writes {st['apply_s']:.1f} s in {st['apply_n']} transactions (longest "
                  f"{st['apply_max_s'] * 1e3:.0f} ms, at most {st['apply_max_transitions']} transitions), ticks "
                  f"{st['tick_s']:.1f} s (longest {st['tick_max_s'] * 1e3:.0f} ms), snapshots {st['snapshot_s']:.1f} s "
                  f"(longest {st['snapshot_max_s'] * 1e3:.0f} ms)")  # fmt: skip
    if raw.get("rules"):
        extra = (f", evaluated {raw['fed']:,}, dropped batches {raw.get('dropped_batches', 0)}, transitions "
                 f"{raw.get('transitions', 0):,}, rules queue max {raw['queue_max']}, engine "
                 f"{per_event_us(raw['engine_s'], raw['fed'] or 1):.1f} µs/event")  # fmt: skip
    return (f"  {label}: offered {r['offered_per_s']:,.0f}/s, {r['events_per_s']:,.0f} events/s (committed "
            f"{r['commit_events_per_s']:,.0f}/s), CPU "
            f"{r['cpu_us']:.1f} µs/event (writer child {r['writer_child_us']:.1f},"
            f" threads {r['threads_us']}), db backends {r['db_us']:.1f}, broker {r['broker_us']:.1f}, publisher "
            f"{r['publisher_us']:.1f}, machine {r['machine_us']:.1f} µs/event (other processes "
            f"{r['other_cores']:.2f} cores){extra}{stalls}")  # fmt: skip


# ------------------------------------------------------------------------------------------------ webhooks
class Receiver:
    """A local HTTP server that verifies each webhook's HMAC and records publish → received."""

    def __init__(self) -> None:
        from tinyfleet.actions import verify

        self.records: list[dict[str, Any]] = []
        self.bad_signatures = 0
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a production receiver would

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received = time.time()
                ok = verify(SECRET, self.headers.get("X-Tinyfleet-Timestamp"),
                            self.headers.get("X-Tinyfleet-Signature"), body)  # fmt: skip
                self.send_response(200 if ok else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                doc = json.loads(body) if ok else {}
                with lock:
                    if not ok:
                        outer.bad_signatures += 1
                        return
                    event = _find_event(doc.get("alert", {}).get("evidence")) or {}
                    outer.records.append({
                        "received": received, "key": doc.get("idempotency_key"),
                        "rule": doc.get("alert", {}).get("rule_id"), "kind": doc.get("transition", {}).get("kind"),
                        "p_us": (event.get("x") or {}).get("p"), "recv_ms": event.get("time"),
                        "device": event.get("device_id"),
                    })  # fmt: skip

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _find_event(evidence: Any) -> dict[str, Any] | None:
    """The event in the alert's evidence (the match node keeps the event that opened it): its `x.p` is the
    publish time (µs), its `time` the ingest's receive time (ms)."""
    if isinstance(evidence, dict):
        x = evidence.get("x")
        if isinstance(x, dict) and isinstance(x.get("p"), int):
            return evidence
        for v in evidence.values():
            found = _find_event(v)
            if found is not None:
                return found
    return None


def write_rules(directory: Path, webhook_url: str | None) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in rule_text().items():
        (directory / name).write_text(text)
    if webhook_url:
        (directory / "zz-bench-webhook.yml").write_text(
            f"- id: {FIRE_RULE}\n"
            "  description: one alert per firing device (each firing event has a device id of its own)\n"
            f"  match: {{model: {FIRE_MODEL}}}\n  per: device\n  resolve: manual\n"
            f"  actions:\n    - webhook: {webhook_url}\n"
        )


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


# ------------------------------------------------------------------------------------------------ main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few seconds per phase (smoke run)")
    ap.add_argument("--engine-events", type=int, default=200_000)
    ap.add_argument("--events", type=int, default=150_000, help="events per end-to-end run")
    ap.add_argument("--rate", type=float, default=20_000, help="offered events/s of the end-to-end runs")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="off/on pairs; the pair with the median ratio is kept")
    ap.add_argument("--equal-rate", type=float, default=5000,
                    help="offered events/s of one more off/on pair that both keep up with (0: skip)")  # fmt: skip
    ap.add_argument("--equal-events", type=int, default=40_000)
    ap.add_argument("--mqtt-protocol", type=int, choices=[4, 5], default=4,
                    help="of the service's connection (4 as bench/ingest.py; the service's default is 5)")  # fmt: skip
    ap.add_argument("--latency-seconds", type=float, default=25.0, help="measured, after the warm-up")
    ap.add_argument("--latency-warmup", type=float, default=65.0,
                    help="s at 1,000 events/s before the latency is measured (the synthetic rule set opens and "
                    "resolves alerts of all devices at once at 10, 20, 40 and 60 s)")  # fmt: skip
    ap.add_argument("--run-timeout", type=float, default=240.0)
    ap.add_argument("--profile", action="store_true",
                    help="cProfile the event-loop thread of the service with rules on (slower)")  # fmt: skip
    ap.add_argument("--switch-interval", type=float, default=0.0,
                    help="experiment: sys.setswitchinterval() in the service process (default 0.005)")  # fmt: skip
    ap.add_argument("--quiet-wait", type=float, default=20.0,
                    help="seconds to wait at most before each run for the machine to be idle")  # fmt: skip
    args = ap.parse_args()
    if args.quick:
        args.engine_events, args.events, args.repeat, args.latency_seconds = 30_000, 40_000, 1, 5.0
        args.latency_warmup = 3.0
        args.equal_events = 10_000
        args.quiet_wait = 3.0

    import psycopg

    from tests.support.instances import MosquittoInstance
    from tinyfleet.rules import load_rules_text

    say = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    figures: dict[str, Any] = {"bench": "rules"}
    started = time.monotonic()

    # ---- 1. in-process feed
    rs = load_rules_text(rule_text())
    assert len(rs.rules) == 100
    events = make_events(args.engine_events, 1000)
    best = min((run(events, rs) for _ in range(1 if args.quick else 3)), key=lambda r: r[0])
    engine_eps = args.engine_events / best[0]
    say(f"engine in process: {engine_eps:,.0f} events/s ({best[0] * 1e6 / args.engine_events:.2f} µs/event), "
        f"100 rules, {args.engine_events:,} events over 1,000 devices, {best[1]:,} transitions")  # fmt: skip
    del events
    gc.collect()

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        pg_version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
    work = Path(tempfile.mkdtemp(prefix="tf-bench-rules-"))
    receiver: Receiver | None = None
    try:
        rules_dir = work / "rules"
        write_rules(rules_dir, None)
        with MosquittoInstance(persistence=False, max_inflight_messages=1000) as broker:
            bench = Bench(args, work, broker.port, broker.pid)

            # ---- 2. end to end, rules off vs on, alternating
            n = args.events
            say(f"end to end: {n:,} events per run at {args.rate:,.0f} events/s offered, {args.devices:,} devices, "
                f"{args.repeat} off/on pairs")  # fmt: skip
            pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
            for rep in range(args.repeat):
                order = (False, True) if rep % 2 == 0 else (True, False)
                got: dict[bool, dict[str, Any]] = {}
                for with_rules in order:
                    s, p = bench.run(rules_dir=rules_dir if with_rules else None, count=n, rate=args.rate,
                                     expect_rules=100 if with_rules else 0)  # fmt: skip
                    got[with_rules] = summarize(s, p, n)
                    say(fmt_run(f"pair {rep + 1} rules {'on ' if with_rules else 'off'}", got[with_rules]))
                pairs.append((got[False], got[True]))
            e2e: dict[str, Any] = {}
            if pairs:  # --repeat 0 skips them
                ranked = sorted(pairs, key=lambda pr: pr[1]["cpu_us"] / pr[0]["cpu_us"])
                off, on = ranked[len(ranked) // 2]
                extra = (on["cpu_us"] / off["cpu_us"] - 1) * 100
                all_pairs = ", ".join(f"{(b['cpu_us'] / a['cpu_us'] - 1) * 100:+.1f} %" for a, b in pairs)
                say(f"CPU per event, service process tree: without rules {off['cpu_us']:.1f} µs, with 100 rules "
                    f"{on['cpu_us']:.1f} µs: {extra:+.1f} % (target ≤ +20 %); all pairs: "
                    f"{all_pairs}")  # fmt: skip
                say(f"events/s committed: without rules {off['events_per_s']:,.0f}, with rules (committed and "
                    f"evaluated) {on['events_per_s']:,.0f} (committed {on['commit_events_per_s']:,.0f})")  # fmt: skip
                e2e = {
                    "e2e_offered_events_per_s": round(on["offered_per_s"]),
                    "e2e_events_per_s_without_rules": round(off["events_per_s"]),
                    "e2e_events_per_s_with_rules": round(on["events_per_s"]),
                    "e2e_committed_events_per_s_with_rules": round(on["commit_events_per_s"]),
                    "cpu_us_per_event_without_rules": round(off["cpu_us"], 2),
                    "cpu_us_per_event_with_rules": round(on["cpu_us"], 2),
                    "cpu_extra_pct": round(extra, 1),
                    "cpu_extra_pct_runs": [round((b["cpu_us"] / a["cpu_us"] - 1) * 100, 1) for a, b in pairs],
                    "cpu_us_per_event_threads_with_rules": on["threads_us"],
                    "engine_us_per_event_in_service": round(per_event_us(on["raw"]["engine_s"], on["raw"]["fed"]), 1),
                    "db_cpu_us_per_event_without_rules": round(off["db_us"], 2),
                    "db_cpu_us_per_event_with_rules": round(on["db_us"], 2),
                    "machine_cpu_us_per_event_without_rules": round(off["machine_us"], 2),
                    "machine_cpu_us_per_event_with_rules": round(on["machine_us"], 2),
                    "evaluated_events_with_rules": on["raw"]["fed"],
                    "transitions_with_rules": on["raw"].get("transitions", 0),
                }

            # ---- 2b. the same at a rate both keep up with: CPU per event without overload effects
            equal: tuple[dict[str, Any], dict[str, Any]] | None = None
            extra_equal = 0.0
            if args.equal_rate:
                m = args.equal_events
                got = {}
                for on_ in (False, True):
                    s, p = bench.run(rules_dir=rules_dir if on_ else None, count=m, rate=args.equal_rate,
                                     expect_rules=100 if on_ else 0)  # fmt: skip
                    got[on_] = summarize(s, p, m)
                    say(fmt_run(f"at {args.equal_rate:,.0f}/s rules {'on ' if on_ else 'off'}", got[on_]))
                equal = (got[False], got[True])
                extra_equal = (equal[1]["cpu_us"] / equal[0]["cpu_us"] - 1) * 100
                say(f"CPU per event at {args.equal_rate:,.0f} events/s: without rules {equal[0]['cpu_us']:.1f} µs, "
                    f"with 100 rules {equal[1]['cpu_us']:.1f} µs: {extra_equal:+.1f} %")  # fmt: skip

            # ---- 3. latency at 1,000 events/s: a warm-up, then the measured window
            receiver = Receiver()
            lat_dir = work / "rules-webhook"
            write_rules(lat_dir, receiver.url)
            warmup = args.latency_warmup
            n_lat = int(1000 * (warmup + args.latency_seconds))
            fire_every = 100
            n_fire = n_lat // fire_every
            say(f"latency: 1,000 events/s for {warmup:g} s of warm-up + {args.latency_seconds:g} s measured, every "
                f"{fire_every}th event fires the webhook rule")  # fmt: skip
            s, p = bench.run(rules_dir=lat_dir, count=n_lat, rate=1000, expect_rules=101, fire_every=fire_every,
                             deliveries=n_fire)  # fmt: skip
            lat_run = summarize(s, p, n_lat)
            say(fmt_run("1,000 events/s with 101 rules", lat_run))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if len({r["key"] for r in receiver.records if r["rule"] == FIRE_RULE}) >= n_fire:
                    break
                time.sleep(0.05)
            seen: set[str] = set()
            hooks = []
            for r in sorted(receiver.records, key=lambda r: r["received"]):
                if r["rule"] == FIRE_RULE and r["kind"] == "open" and r["p_us"] and r["key"] not in seen:
                    seen.add(r["key"])
                    hooks.append(r)
            t_first = p["first"]
            steady = [r for r in hooks if r["p_us"] / 1e6 - t_first >= warmup]
            early = [r for r in hooks if r["p_us"] / 1e6 - t_first < warmup]

            def latency(r: dict[str, Any]) -> float:
                return float(r["received"] * 1e3 - r["p_us"] / 1e3)

            lat_ms = sorted(latency(r) for r in steady)
            if not lat_ms:
                raise RuntimeError(f"no webhook deliveries were received; see the logs in {work}")
            p50, p99 = statistics.median(lat_ms), percentile(lat_ms, 0.99)
            early_ms = sorted(latency(r) for r in early)
            ft = s.get("fire_times", {})

            def stages(r: dict[str, Any]) -> str:
                pub = r["p_us"] / 1e3
                marks = [r["recv_ms"] or pub, *(t * 1e3 for t in ft.get(r["device"], [])[:2]), r["received"] * 1e3]
                marks = [pub, *marks] if len(marks) == 4 else [pub, marks[0], marks[-1]]
                return "/".join(f"{b - a:.0f}" for a, b in itertools.pairwise(marks))

            for label, group in (("warm-up", early), ("measured", steady)):
                slow = sorted(group, key=latency, reverse=True)[:4]
                say(f"  slowest deliveries, {label} (s after the first publish: ms publish→received by ingest/"
                    "→committed/→fed to the engine/→webhook received): "
                    + ", ".join(f"{r['p_us'] / 1e6 - t_first:.1f}: {stages(r)}" for r in slow))  # fmt: skip
            per_s = s["stalls"].get("per_s", {})
            busiest = sorted(per_s.items(), key=lambda kv: -sum(kv[1].values()))[:4]
            say("  most transitions in one second (s after the first publish: count, kinds): " + ", ".join(
                f"{int(sec) - t_first:.0f}: {sum(k.values())} {dict(sorted(k.items(), key=lambda kv: -kv[1])[:2])}"
                for sec, k in busiest))  # fmt: skip
            long_stalls = [x for x in s["stalls"]["long"] if x[0] >= t_first]
            if long_stalls:
                say(f"  feed held up > 50 ms {len(long_stalls)} times (s after the first publish: what, ms): "
                    + ", ".join(f"{x[0] - t_first:.1f}: {x[1]} {x[2] * 1e3:.0f}"
                                + (f" ({x[3]} transitions)" if x[3] else "") for x in long_stalls[:12]))  # fmt: skip
            if early_ms:
                say(f"publish→webhook delivered during the warm-up (all 1,000 devices start at once: synchronized "
                    f"alert storms): p50 {statistics.median(early_ms):.1f} ms, p99 {percentile(early_ms, 0.99):.1f} "
                    f"ms over {len(early_ms)} deliveries")  # fmt: skip
            say(f"publish→webhook delivered at 1,000 events/s after the warm-up: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
                f"(target ≤ 100 ms), max {lat_ms[-1]:.1f} ms over {len(lat_ms)} deliveries ({len(hooks)} of "
                f"{n_fire} received in all), bad signatures {receiver.bad_signatures}")  # fmt: skip

        on_runs = [pr[1]["raw"] for pr in pairs] + [lat_run["raw"]] + ([equal[1]["raw"]] if equal else [])
        figures.update({
            "engine_events_per_s": round(engine_eps),
            "engine_us_per_event": round(best[0] * 1e6 / args.engine_events, 2),
            **e2e,
            "equal_rate": args.equal_rate,
            "cpu_us_per_event_at_equal_rate_without_rules": round(equal[0]["cpu_us"], 2) if equal else None,
            "cpu_us_per_event_at_equal_rate_with_rules": round(equal[1]["cpu_us"], 2) if equal else None,
            "cpu_extra_pct_at_equal_rate": round(extra_equal, 1) if equal else None,
            "webhook_p50_ms_at_1000": round(p50, 1),
            "webhook_p99_ms_at_1000": round(p99, 1),
            "webhook_max_ms_at_1000": round(lat_ms[-1], 1),
            "deliveries": len(lat_ms),
            "webhook_p50_ms_during_warmup": round(statistics.median(early_ms), 1) if early_ms else None,
            "webhook_p99_ms_during_warmup": round(percentile(early_ms, 0.99), 1) if early_ms else None,
            "latency_warmup_s": warmup,
            "bad_signatures": receiver.bad_signatures,
            "cpu_us_per_event_at_1000_with_rules": round(lat_run["cpu_us"], 1),
            "dropped_batches": sum(r.get("dropped_batches", 0) for r in on_runs),
            "failed_batches": sum(r.get("failed_batches", 0) for r in on_runs),
            "rules": 100,
            "latency_rules": 101,
            "events_per_run": n,
            "runs": args.repeat,
            "devices": args.devices,
            "mqtt_protocol": args.mqtt_protocol,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "postgres": pg_version,
            "timescaledb": bench.timescaledb,
            "quiet_wait_s": round(sum(bench.quiet_waits), 1),
            "seconds": round(time.monotonic() - started),
        })  # fmt: skip
        for line in bench.problems:
            say(f"problem: {line}")
        if bench.problems or args.profile:
            say(f"logs of the service and publisher processes: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    finally:
        if receiver is not None:
            receiver.close()
    print(json.dumps(figures))


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["service", "publish"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--database-url")
    p.add_argument("--rules-dir")
    p.add_argument("--expect-rules", type=int, default=0)
    p.add_argument("--deliveries", type=int, default=0)
    p.add_argument("--timeout", type=float, default=240.0)
    p.add_argument("--broker-pid", type=int, default=0)
    p.add_argument("--rate", type=float, default=0.0)
    p.add_argument("--devices", type=int, default=1000)
    p.add_argument("--device-prefix", default="dev")
    p.add_argument("--boot", type=int, default=1)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--fire-every", type=int, default=0)
    p.add_argument("--profile", default="")
    p.add_argument("--trace-fire", action="store_true")
    p.add_argument("--switch-interval", type=float, default=0.0)
    p.add_argument("--mqtt-protocol", type=int, default=5)
    a = p.parse_args(argv)
    if a.role == "service":
        service_main(a)
    else:
        publisher_main(a)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
