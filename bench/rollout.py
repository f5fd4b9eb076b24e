"""Benchmark of staged rollouts: 1,000 simulated devices, a good release and a bad canary.

    .venv/bin/python bench/rollout.py [--devices 1000] [--events-per-s 1] [--quick]

The service runs in-process (ingest, HTTP API on a free port, rollout controller stepping every 0.5 s) on a
private Mosquitto and a fresh database. The fleet (tinyfleet_device.ota_sim) is 1,000 devices on one MQTT
connection; each really verifies its signed manifest, downloads the artifact over HTTP (8 at a time), checks
size and SHA-256, loads it in TFLM and publishes its new retained state. The model is MLCommons Tiny's KWS
DS-CNN (../shared/models); v2 is the same network with other bytes, v3 always predicts one class.

Phases:
1. release v2 with waves 1 % → 10 % → 50 % → 100 % (soak 5 s each, gates on 50+ events per side): time from
   "release created" to "all devices confirmed on v2" (confirmed = their retained state shows it);
2. release v3 with a 1 % canary (soak 120 s): time to detect (the rollback decision) and to roll back (the
   canaries confirmed on v2 again);
3. the manifest size (as sent, and with a 64-byte URI), and artifact download throughput through the API
   (Range-capable route) against a plain threaded HTTP file server in the same run (`ratio`).

Ends with one JSON line: {"bench": "rollout", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rollouts.conftest import KWS, KWS_LABELS, patch_output_bias  # noqa: E402
from tests.support.instances import MosquittoInstance, free_port  # noqa: E402
from tinyfleet.app import Service  # noqa: E402
from tinyfleet.config import Settings  # noqa: E402
from tinyfleet.ota.keys import generate_signing_key, write_signing_key  # noqa: E402
from tinyfleet.ota.manifest import manifest_size  # noqa: E402
from tinyfleet.store.migrate import upgrade  # noqa: E402
from tinyfleet_device.manifest import DeviceCapabilities, raw_public_key  # noqa: E402
from tinyfleet_device.ota_sim import OtaFleet, SimDevice  # noqa: E402

ADMIN_KEY = "bench-rollout-admin-key-0123456789"
PG_ADMIN_URL = os.environ.get("TINYFLEET_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


async def wait_for(predicate: Any, within: float, interval: float = 0.2) -> float:
    t0 = time.monotonic()
    while True:
        if await predicate():
            return time.monotonic() - t0
        if time.monotonic() - t0 > within:
            raise TimeoutError(f"not reached within {within} s")
        await asyncio.sleep(interval)


def download_throughput(url: str, size: int, *, requests: int, parallel: int) -> float:
    """MB/s for `requests` GETs of `url`, `parallel` at a time (each on its own keep-alive client)."""
    clients = [httpx.Client(timeout=60) for _ in range(parallel)]

    def fetch(i: int) -> int:
        r = clients[i % parallel].get(url)
        r.raise_for_status()
        return len(r.content)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        total = sum(pool.map(fetch, range(requests)))
    took = time.perf_counter() - t0
    for c in clients:
        c.close()
    assert total == size * requests
    return total / took / 1e6


def plain_file_server(directory: Path) -> tuple[ThreadingHTTPServer, int]:
    class Quiet(SimpleHTTPRequestHandler):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, directory=str(directory), **kw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


async def run(args: argparse.Namespace, work: Path, db: str, broker_port: int) -> dict[str, Any]:
    key = generate_signing_key()
    write_signing_key(work / "ota.pem", key)
    port = free_port()
    settings = Settings(
        _env_file=None,
        database_url=db, mqtt_url=f"mqtt://127.0.0.1:{broker_port}", topic_prefix="bench/v1",
        mqtt_client_id=f"bench-rollout-{os.getpid()}", http_port=port, public_url=f"http://127.0.0.1:{port}",
        data_dir=work / "data", ota_signing_key_file=work / "ota.pem", rollouts_interval_s=0.5,
        rules_dir=work, log_level="WARNING", admin_api_key=ADMIN_KEY,
    )  # fmt: skip
    v1 = KWS.read_bytes()
    v2 = patch_output_bias(v1, label=0, delta=1)
    v3 = patch_output_bias(v1, label=3, delta=2**24)
    figures: dict[str, Any] = {"devices": args.devices, "events_per_s_per_device": args.events_per_s,
                               "artifact_bytes": len(v2)}  # fmt: skip
    async with Service(settings, rules=False) as service:
        stop = asyncio.Event()
        started = asyncio.Event()
        serving = asyncio.create_task(service.serve(stop, started=started.set))
        await asyncio.wait_for(started.wait(), 30)
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120, headers=headers) as api:
            for version, data in ((1, v1), (2, v2), (3, v3)):
                r = await api.put(f"/api/v1/models/kws/versions/{version}", content=data, params={"labels": KWS_LABELS})
                r.raise_for_status()
            devices = [
                SimDevice(f"sim-{i:04d}", "kws", 1, artifact=v1,
                          caps=DeviceCapabilities(flash=1 << 20, ram=256 << 10, arena=128 << 10))
                for i in range(args.devices)
            ]  # fmt: skip
            with OtaFleet(devices, host="127.0.0.1", port=broker_port, prefix="bench/v1",
                          trusted_keys=[raw_public_key(key.public_key())], events_per_s=args.events_per_s,
                          workers=8) as fleet:  # fmt: skip

                async def registered() -> bool:
                    async with await psycopg.AsyncConnection.connect(db) as c:
                        cur = await c.execute("select count(*) from devices where mver = 1")
                        row = await cur.fetchone()
                        return bool(row and row[0] >= args.devices)

                await wait_for(registered, 120)
                await asyncio.sleep(3)  # some history of v1 events for the control group

                soak = 2.0 if args.quick else 5.0
                plan = {"waves": [{"percent": 1, "soak_s": soak}, {"percent": 10, "soak_s": soak},
                                  {"percent": 50, "soak_s": soak}, {"percent": 100, "soak_s": 0}],
                        "gates": {"min_events": 50}}  # fmt: skip
                t0 = time.monotonic()
                rel = (await api.post("/api/v1/releases", json={"name": "v2", "model": "kws", "model_version": 2,
                                                                "plan": plan})).json()  # fmt: skip
                ro = (await api.post(f"/api/v1/releases/{rel['id']}/rollouts")).json()

                async def all_confirmed() -> bool:
                    r = (await api.get(f"/api/v1/rollouts/{ro['id']}")).json()
                    return bool(r["totals"].get("confirmed", 0) >= args.devices)

                await wait_for(all_confirmed, 600)
                figures["release_to_all_confirmed_s"] = round(time.monotonic() - t0, 2)
                decisions = (await api.get(f"/api/v1/rollouts/{ro['id']}/decisions")).json()["items"]
                sends = [d for d in decisions if d["action"] == "send"]
                last = next(d for d in reversed(decisions) if d["action"] == "advance")
                figures["waves_soak_s_total"] = soak * 3
                figures["manifest_bytes_sent"] = sends[0]["evidence"]["manifest_bytes"]
                state = (await api.get(f"/api/v1/rollouts/{ro['id']}")).json()
                figures["last_wave_to_all_confirmed_s"] = round(
                    _since(last["at"], state["updated_at"]) if state["state"] == "completed" else float("nan"), 2
                )
                figures["downloads"] = int(fleet.bytes_downloaded / len(v2))
                figures["download_mb_s_per_stream"] = round(fleet.bytes_downloaded / fleet.download_s / 1e6, 2)
                assert set(fleet.running().values()) == {("kws", 2)}, "not every device runs v2"

                # the bad canary
                bad_plan = {"waves": [{"percent": 1, "soak_s": 120}, {"percent": 100, "soak_s": 0}],
                            "gates": {"min_events": 50}}  # fmt: skip
                t0 = time.monotonic()
                rel = (await api.post("/api/v1/releases", json={"name": "v3-bad", "model": "kws", "model_version": 3,
                                                                "plan": bad_plan})).json()  # fmt: skip
                ro = (await api.post(f"/api/v1/releases/{rel['id']}/rollouts")).json()

                async def state_is(s: str) -> bool:
                    return bool((await api.get(f"/api/v1/rollouts/{ro['id']}")).json()["state"] in s.split("|"))

                figures["bad_canary_detect_s"] = round(await wait_for(lambda: state_is("rolling_back|rolled_back"),
                                                                      120), 2)  # fmt: skip
                await wait_for(lambda: state_is("rolled_back"), 120)
                figures["bad_canary_rolled_back_s"] = round(time.monotonic() - t0, 2)
                decisions = (await api.get(f"/api/v1/rollouts/{ro['id']}/decisions")).json()["items"]
                rb = next(d for d in decisions if d["action"] == "rollback")
                figures["bad_canary_reason"] = rb["reason"]
                figures["bad_canary_devices"] = rb["evidence"]["counts"].get("confirmed", 0)
                assert set(fleet.running().values()) == {("kws", 2)}, "the fleet did not end on v2"
                figures["sim_errors"] = len(fleet.errors)

            # download throughput: the API's artifact route against a plain file server, same bytes
            art = work / "kws.tflite"
            art.write_bytes(v2)
            plain, plain_port = plain_file_server(work)
            n = 200 if args.quick else 1000
            api_mb_s = await asyncio.to_thread(download_throughput,
                                               f"http://127.0.0.1:{port}/api/v1/models/kws/versions/2/artifact",
                                               len(v2), requests=n, parallel=8)  # fmt: skip
            plain_mb_s = await asyncio.to_thread(download_throughput, f"http://127.0.0.1:{plain_port}/kws.tflite",
                                                 len(v2), requests=n, parallel=8)  # fmt: skip
            plain.shutdown()
            figures["download_mb_s"] = round(api_mb_s, 2)
            figures["plain_server_mb_s"] = round(plain_mb_s, 2)
            figures["ratio"] = round(api_mb_s / plain_mb_s, 3)
        stop.set()
        await asyncio.wait_for(serving, 30)
    size = manifest_size(64)
    figures["manifest_bytes_64b_uri"] = size.total
    return figures


def _since(a: str, b: str) -> float:
    from datetime import datetime

    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--events-per-s", type=float, default=1.0, help="inference events per device per second")
    ap.add_argument("--quick", action="store_true", help="100 devices, short soaks")
    args = ap.parse_args()
    if args.quick:
        args.devices = min(args.devices, 100)
    dbname = f"tinyfleet_bench_rollout_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}"')
    db = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"
    try:
        upgrade(db)
        with tempfile.TemporaryDirectory(prefix="tinyfleet-bench-rollout-") as tmp, MosquittoInstance(
            persistence=False, max_inflight_messages=1000
        ) as broker:
            figures = asyncio.run(run(args, Path(tmp), db, broker.port))
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
    print(f"devices: {figures['devices']}  artifact: {figures['artifact_bytes']:,} B")
    print(f"release created → all confirmed on v2: {figures['release_to_all_confirmed_s']} s "
          f"(of which soak {figures['waves_soak_s_total']:g} s; last wave → all confirmed "
          f"{figures['last_wave_to_all_confirmed_s']} s)")  # fmt: skip
    print(f"bad canary: detected after {figures['bad_canary_detect_s']} s, rolled back after "
          f"{figures['bad_canary_rolled_back_s']} s ({figures['bad_canary_reason']})")  # fmt: skip
    print(f"manifest: {figures['manifest_bytes_sent']} B as sent, {figures['manifest_bytes_64b_uri']} B with a "
          f"64-byte URI (target ≤ 256)")  # fmt: skip
    print(f"download: {figures['download_mb_s']} MB/s through the API vs {figures['plain_server_mb_s']} MB/s "
          f"plain file server (ratio {figures['ratio']}); {figures['download_mb_s_per_stream']} MB/s per device "
          f"stream during the rollout")  # fmt: skip
    figures.update({"python": sys.version.split()[0], "machine": platform.machine(), "cpus": os.cpu_count()})
    print(json.dumps({"bench": "rollout", **figures}))


if __name__ == "__main__":
    main()
