"""`tinyfleet demo --embedded` as a user runs it: embedded amqtt + embedded PostgreSQL 18, simulated devices,
events arriving through the real ingest path, a clean exit on SIGINT with nothing left running."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]
import pytest

from tests.support.instances import free_port, wait_for
from tests.test_cli import Proc, clean_env

DEVICES = 3


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=3)
    except httpx.HTTPError:
        return None


def _total_events(api: str) -> int:
    resp = _get(f"{api}/api/v1/events/stats?bucket=1m")
    return int(resp.json()["total"]) if resp is not None and resp.status_code == 200 else -1


def _processes_using(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _stop_everything(proc: Proc, data_dir: Path) -> None:
    """After a failure: a graceful stop first (so the demo stops its PostgreSQL), then force."""
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGINT)
        try:
            proc.popen.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    for leftover in _processes_using(data_dir):  # a PostgreSQL the demo could not stop
        leftover.terminate()


def test_demo_embedded_runs_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    env = clean_env(TINYFLEET_DATA_DIR=str(data_dir), TINYFLEET_HTTP_PORT=str(port))
    proc = Proc(["demo", "--embedded", "--devices", str(DEVICES), "--seed", "7"], tmp_path, env)
    try:
        # All devices are listed (their retained birth states went through the embedded broker into the DB).
        def devices_listed() -> list[str] | None:
            resp = _get(f"{api}/api/v1/devices")
            if resp is None or resp.status_code != 200:
                return None
            ids = [d["id"] for d in resp.json()["items"] if d["online"]]
            return ids if len(ids) == DEVICES else None

        try:
            ids = wait_for(devices_listed, timeout=90, interval=0.5)
        except TimeoutError:
            pytest.fail(f"the demo's devices never showed up online: {proc.stderr}")
        assert ids == [f"demo-{i:02d}" for i in range(1, DEVICES + 1)]

        # Events arrive and keep arriving.
        first = wait_for(lambda: _total_events(api) > 0 and _total_events(api), timeout=30, interval=0.5)
        wait_for(lambda: _total_events(api) >= first + 2 * DEVICES, timeout=30, interval=0.5)

        # Both streams arrive: single classification events and batches of anomaly scores.
        def models() -> set[str] | None:
            items = httpx.get(f"{api}/api/v1/devices/{ids[0]}/events", params={"limit": 100}).json()["items"]
            seen = {e["model"] for e in items}
            return seen if seen >= {"vib-cls", "vib-anom"} else None

        wait_for(models, timeout=30, interval=1, message="classification and anomaly events did not both arrive")
        # Everything the simulated devices send is valid: nothing is dead-lettered.
        dead = httpx.get(f"{api}/api/v1/dead-letters").json()["items"]
        assert dead == [], f"the demo's own events were refused: {[(d['code'], d['detail']) for d in dead[:3]]}"

        # The banner says where to look.
        banner = (f"{api}/api/v1/devices", f"{api}/metrics", "web UI", "mqtt://127.0.0.1:", "host=",
                  "TINYFLEET_MQTT_URL")  # fmt: skip
        for fragment in banner:
            assert fragment in proc.stdout, proc.stdout

        ready = httpx.get(f"{api}/readyz")
        assert ready.status_code == 200, ready.text
        assert "tinyfleet_devices_online 3.0" in httpx.get(f"{api}/metrics").text
        home = httpx.get(f"{api}/")
        assert "/docs" in home.text
        assert "<h1>Fleet</h1>" in home.text  # the web UI, readable from localhost in dev mode

        # The embedded PostgreSQL runs from the data dir, socket only.
        pg_pid = int((data_dir / "demo-pg" / "postmaster.pid").read_text().split()[0])
        assert psutil.pid_exists(pg_pid)

        started = time.monotonic()
        code = proc.stop(signal.SIGINT, timeout=20)
        assert time.monotonic() - started < 20
    finally:
        _stop_everything(proc, data_dir)
    assert code == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    out = proc.stderr
    assert "embedded PostgreSQL stopped" in out
    assert "embedded MQTT broker stopped" in out

    # Nothing left behind: no postgres of the data dir, no child of the demo.
    wait_for(lambda: not psutil.pid_exists(pg_pid) or psutil.Process(pg_pid).status() == psutil.STATUS_ZOMBIE, 10)
    assert _processes_using(data_dir) == []
    assert not (data_dir / "demo-pg" / "postmaster.pid").exists()
