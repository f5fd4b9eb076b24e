#!/usr/bin/env python3
"""Ingest benchmark: tinyfleet ingest against the bare-subscriber ceiling measured in the same run.

Not a test. It starts a private Mosquitto (raised queue limits, no persistence) and uses a fresh database on
the local PostgreSQL (TimescaleDB when installed), compiles the C load generator (bench/loadgen.c, libmosquitto)
and measures, each consumer in a process of its own:

1. publisher-bound, single-event QoS 1 messages over 1,000 device ids: a bare paho subscriber that only counts
   (the ceiling) vs. tinyfleet ingest (events committed); plus a binary COPY of the same rows into a scratch
   table (what the database alone takes);
2. the same with batches of 10 events per message (events committed per second);
3. drain: N messages queued in the broker for a persistent session first, then the consumer started;
4. latency: publish→committed p50/p99 at a steady 1,000 events/s.

Ends with one JSON line of all figures. Usage: bench/ingest.py [--messages N] [--drain-messages N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LOADGEN_SRC = ROOT / "bench" / "loadgen.c"
PG_ADMIN_URL = os.environ.get("TINYFLEET_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DEVICES = 1000


# ------------------------------------------------------------------------------------------------ consumers
def run_bare(port: int, prefix: str, count: int, client_id: str, register_only: bool) -> dict[str, Any]:
    """A paho subscriber that only counts (QoS 1, automatic acknowledgement, persistent session)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    state = {"n": 0, "first": 0.0, "last": 0.0}
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        n = state["n"] = state["n"] + 1
        if n == 1:
            state["first"] = time.time()
        if n >= count:
            state["last"] = time.time()
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
    client.on_message = on_message
    client.on_connect = lambda c, *_: c.subscribe(f"{prefix}/+/evt", 1)
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    subscribed.wait(10)
    print("READY", flush=True)
    if not register_only:
        done.wait(600)
    client.disconnect()
    client.loop_stop()
    return {"messages": state["n"], "first": state["first"], "last": state["last"]}


def run_ingest(
    port: int, prefix: str, count: int, client_id: str, register_only: bool, database_url: str, latency: bool
) -> dict[str, Any]:
    """tinyfleet ingest (the real IngestService); `count` is the number of events to see committed."""
    from tinyfleet.config import Settings
    from tinyfleet.ingest.service import IngestService

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        mqtt_url=f"mqtt://127.0.0.1:{port}",
        topic_prefix=prefix,
        mqtt_client_id=client_id,
        mqtt_protocol=4,
    )
    svc = IngestService(settings)
    state = {"events": 0, "first": 0.0, "last": 0.0}
    lat_ms: list[float] = []
    done = threading.Event()

    def on_commit(rows: Any, result: Any) -> None:
        now = time.time()
        if latency:
            now_us = now * 1e6
            lat_ms.extend((now_us - row[14]["p"]) / 1000.0 for row in rows)
        state["events"] += result.events_inserted
        if state["first"] == 0.0:
            state["first"] = now
        if state["events"] >= count:
            state["last"] = now
            done.set()

    first_receive = stamp_first_receive(svc)
    if latency:  # rows come back from the writer process only when a listener asks for them
        svc.add_listener(on_commit)
    svc.start()
    svc.wait_connected(10)
    time.sleep(0.3)
    print("READY", flush=True)
    if not register_only:
        stored = svc.metrics.events_stored
        deadline = time.monotonic() + 600
        while not done.is_set() and time.monotonic() < deadline:
            if not latency and stored._value.get() >= count:
                state["events"] = int(stored._value.get())
                state["last"] = time.time()
                break
            time.sleep(0.002)
    svc.stop()
    out: dict[str, Any] = {"events": state["events"], "first": first_receive["t"], "last": state["last"]}
    if latency and lat_ms:
        lat_ms = lat_ms[len(lat_ms) // 10 :]  # the first 10 % warm up connections and caches
        lat_ms.sort()
        out["p50_ms"] = statistics.median(lat_ms)
        out["p99_ms"] = lat_ms[int(len(lat_ms) * 0.99) - 1]
        out["latency_samples"] = len(lat_ms)
    return out


def worker_main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["bare", "ingest"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--client-id", required=True)
    p.add_argument("--register-only", action="store_true")
    p.add_argument("--database-url")
    p.add_argument("--latency", action="store_true")
    a = p.parse_args(argv)
    if a.mode == "bare":
        res = run_bare(a.port, a.prefix, a.count, a.client_id, a.register_only)
    else:
        res = run_ingest(a.port, a.prefix, a.count, a.client_id, a.register_only, a.database_url, a.latency)
    print("RESULT " + json.dumps(res), flush=True)


# ---------------------------------------------------------------------------------------------- orchestration
class Consumer:
    """A consumer in a process of its own; `start()` returns once it is subscribed."""

    def __init__(self, mode: str, port: int, prefix: str, count: int, client_id: str, **kw: Any) -> None:
        args = [sys.executable, __file__, "--worker", mode, "--port", str(port), "--prefix", prefix,
                "--count", str(count), "--client-id", client_id]  # fmt: skip
        if kw.get("database_url"):
            args += ["--database-url", kw["database_url"]]
        if kw.get("latency"):
            args.append("--latency")
        if kw.get("register_only"):
            args.append("--register-only")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("READY"):
                return
        raise RuntimeError("consumer exited before it was ready")

    def result(self, timeout: float = 600) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("RESULT "):
                self.proc.wait(timeout)
                return dict(json.loads(line[7:]))
        raise RuntimeError(f"consumer exited with {self.proc.wait()} and no result")


def stamp_first_receive(svc: Any) -> dict[str, float]:
    """Wrap the ingest's batcher so the returned dict's "t" becomes the wall time of the first message taken."""
    first = {"t": 0.0}
    put = svc._batcher.put

    def timed_put(item: Any) -> bool:
        if not first["t"]:
            first["t"] = time.time()
        return put(item)

    svc._batcher.put = timed_put
    return first


def build_loadgen(out_dir: Path) -> Path:
    binary = out_dir / "loadgen"
    if binary.exists() and binary.stat().st_mtime >= LOADGEN_SRC.stat().st_mtime:
        return binary
    if not Path("/usr/include/mosquitto.h").exists() or not shutil.which("gcc"):
        sys.exit("bench: needs gcc and libmosquitto-dev: apt-get install -y gcc libmosquitto-dev")
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(LOADGEN_SRC), "-lmosquitto"], check=True)
    return binary


def loadgen(binary: Path, port: int, prefix: str, count: int, *, batch: int = 1, rate: float = 0,
            stamp: bool = False, boot: int) -> dict[str, Any]:  # fmt: skip
    args = [str(binary), "--port", str(port), "--prefix", prefix, "--count", str(count), "--devices",
            str(DEVICES), "--batch", str(batch), "--boot", str(boot), "--client-id", f"loadgen-{boot}"]  # fmt: skip
    if rate:
        args += ["--rate", str(rate)]
    if stamp:
        args.append("--stamp")
    out = subprocess.run(args, check=True, capture_output=True, text=True, timeout=900)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def rate_of(res: dict[str, Any], key: str) -> float:
    span = res["last"] - res["first"]
    return res[key] / span if span > 0 else 0.0


def copy_ceiling(database_url: str, rows: int) -> float:
    """Rows/s of a binary COPY of the same rows into a scratch table, in 1,000-row transactions."""
    import psycopg

    now = int(time.time() * 1000)
    data = [(f"dev-{i % DEVICES:05d}", 1, i, now + i, now, "vib-cls", 4, 0, i % 4, 0.9, None, 2500)
            for i in range(rows)]  # fmt: skip
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "create table if not exists copy_scratch (device_id text, boot int8, seq int8, ts_ms int8, recv_ms int8,"
            " model text, mver int4, kind int2, label int4, score float4, anom float4, lat_us int8)"
        )
        conn.commit()
        types = ["text", "int8", "int8", "int8", "int8", "text", "int4", "int2", "int4", "float4", "float4", "int8"]
        t0 = time.perf_counter()
        for start in range(0, rows, 1000):
            with conn.cursor() as cur, cur.copy("COPY copy_scratch FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(types)
                for row in data[start : start + 1000]:
                    cp.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - t0
        conn.execute("drop table copy_scratch")
        conn.commit()
    return rows / elapsed


def measure_pair(binary: Path, port: int, db: str, n_msgs: int, batch: int, boot: int) -> tuple[float, float]:
    """Publisher-bound: (bare msgs/s, ingest events/s)."""
    prefix = f"b{secrets.token_hex(3)}/v1"
    bare = Consumer("bare", port, prefix, n_msgs, f"bare-{boot}")
    bare.wait_ready()
    loadgen(binary, port, prefix, n_msgs, batch=batch, boot=boot)
    bare_res = bare.result()
    prefix = f"i{secrets.token_hex(3)}/v1"
    ing = Consumer("ingest", port, prefix, n_msgs * batch, f"ingest-{boot}", database_url=db)
    ing.wait_ready()
    loadgen(binary, port, prefix, n_msgs, batch=batch, boot=boot + 1)
    ing_res = ing.result()
    return rate_of(bare_res, "messages"), rate_of(ing_res, "events")


def measure_drain(binary: Path, port: int, db: str, n_msgs: int, boot: int) -> tuple[float, float]:
    out = []
    for mode in ("bare", "ingest"):
        prefix = f"d{secrets.token_hex(3)}/v1"
        cid = f"drain-{mode}-{boot}"
        reg = Consumer(mode, port, prefix, n_msgs, cid, database_url=db, register_only=True)
        reg.wait_ready()
        reg.result()
        loadgen(binary, port, prefix, n_msgs, boot=boot)
        time.sleep(0.5)
        consumer = Consumer(mode, port, prefix, n_msgs, cid, database_url=db)
        res = consumer.result()
        out.append(rate_of(res, "messages" if mode == "bare" else "events"))
        boot += 1
    return out[0], out[1]


def median_pair(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """The (baseline, tinyfleet) pair whose ratio is the median of the runs."""
    ranked = sorted(pairs, key=lambda p: p[1] / p[0] if p[0] else 0.0)
    return ranked[len(ranked) // 2]


def fmt_pairs(pairs: list[tuple[float, float]]) -> str:
    return ", ".join(f"{b:,.0f}/{t:,.0f}" for b, t in pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=100_000, help="messages per publisher-bound phase")
    ap.add_argument("--drain-messages", type=int, default=100_000)
    ap.add_argument("--latency-seconds", type=float, default=15.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of each throughput phase; the median ratio is kept")
    args = ap.parse_args()

    import psycopg

    from tests.support.instances import MosquittoInstance
    from tinyfleet.store.migrate import upgrade

    binary = build_loadgen(ROOT / ".tinyfleet" / "bench")
    dbname = f"tinyfleet_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
        pg_version = conn.execute("show server_version").fetchone()[0]  # type: ignore[index]
    db = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"
    boot = int(time.time()) % 1_000_000 * 100
    figures: dict[str, Any] = {"bench": "ingest"}
    try:
        upgrade(db)
        with psycopg.connect(db) as conn:
            row = conn.execute("select value from tinyfleet_meta where key = 'timescaledb'").fetchone()
            figures["timescaledb"] = row[0] if row else "unknown"
        with MosquittoInstance(persistence=False, max_inflight_messages=1000) as broker:
            port = broker.port
            # Each consumer pair runs back to back and the pair with the median ratio is reported: the ratio of
            # two runs seconds apart is far steadier on a shared 2-core machine than either absolute figure.
            singles, batches, drains = [], [], []
            for _ in range(args.repeat):
                singles.append(measure_pair(binary, port, db, args.messages, 1, boot))
                batches.append(measure_pair(binary, port, db, args.messages // 10, 10, boot + 3))
                drains.append(measure_drain(binary, port, db, args.drain_messages, boot + 6))
                boot += 10
            ceiling, single = median_pair(singles)
            bare10, batch10 = median_pair(batches)
            drain_ceiling, drain = median_pair(drains)
            print(f"publisher-bound single: ceiling {ceiling:,.0f} msgs/s, ingest {single:,.0f} events/s "
                  f"({single / ceiling:.1%}); runs {fmt_pairs(singles)}", file=sys.stderr)  # fmt: skip
            print(f"publisher-bound batch10: ceiling {bare10:,.0f} msgs/s, ingest {batch10:,.0f} events/s; "
                  f"runs {fmt_pairs(batches)}", file=sys.stderr)  # fmt: skip
            print(f"drain: ceiling {drain_ceiling:,.0f} msgs/s, ingest {drain:,.0f} events/s "
                  f"({drain / drain_ceiling:.1%}); runs {fmt_pairs(drains)}", file=sys.stderr)  # fmt: skip
            copy_rate = copy_ceiling(db, args.messages)
            print(f"COPY of the same rows: {copy_rate:,.0f} rows/s", file=sys.stderr)
            # Steady state: the throughput phases above leave the server flushing gigabytes of dirty pages;
            # start from a checkpoint, as a service that has been running at 1,000 events/s would be.
            with psycopg.connect(db, autocommit=True) as conn:
                conn.execute("CHECKPOINT")
                conn.execute("VACUUM ANALYZE events")
            n_lat = int(1000 * args.latency_seconds)
            prefix = f"l{secrets.token_hex(3)}/v1"
            ing = Consumer("ingest", port, prefix, n_lat, f"lat-{boot}", database_url=db, latency=True)
            ing.wait_ready()
            loadgen(binary, port, prefix, n_lat, rate=1000, stamp=True, boot=boot)
            lat = ing.result()
            print(f"latency at 1,000 events/s: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms", file=sys.stderr)
        figures.update({
            "ceiling_msgs_per_s": round(ceiling),
            "single_events_per_s": round(single),
            "single_ratio": round(single / ceiling, 3),
            "copy_rows_per_s": round(copy_rate),
            "batch10_ceiling_msgs_per_s": round(bare10),
            "batch10_events_per_s": round(batch10),
            "drain_ceiling_msgs_per_s": round(drain_ceiling),
            "drain_events_per_s": round(drain),
            "drain_ratio": round(drain / drain_ceiling, 3),
            "p50_ms_at_1000": round(lat["p50_ms"], 2),
            "p99_ms_at_1000": round(lat["p99_ms"], 2),
            "runs": args.repeat,
            "messages": args.messages,
            "drain_messages": args.drain_messages,
            "devices": DEVICES,
            "cpus": os.cpu_count(),
            "postgres": pg_version,
        })  # fmt: skip
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    print(json.dumps(figures))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
