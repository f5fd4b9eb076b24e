"""The `tinyfleet` command line, run as a real subprocess (the installed entry point)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.instances import free_port, wait_for
from tinyfleet.wire import Event, Topics, encode_event

TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any TINYFLEET_* of the caller, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_")}
    env.update(extra)
    return env


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TINYFLEET, *args], cwd=cwd, env=clean_env(**env), capture_output=True, text=True, timeout=120
    )


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = run_cli("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("serve", "ingest", "db", "demo", "version"):
        assert command in result.stdout
    db = run_cli("db", "--help", cwd=tmp_path)
    assert db.returncode == 0
    assert "upgrade" in db.stdout
    assert "downgrade" in db.stdout


def test_version(tmp_path: Path) -> None:
    import tinyfleet

    result = run_cli("version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.strip() == f"tinyfleet {tinyfleet.__version__}"


@pytest.mark.parametrize("command", [["serve"], ["ingest"], ["db", "upgrade"], ["demo"]])
def test_prod_without_admin_key_exits_2_with_one_line(tmp_path: Path, command: list[str]) -> None:
    result = run_cli(*command, cwd=tmp_path, TINYFLEET_ENV="prod")
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tinyfleet: invalid settings: refusing to start in prod mode")
    assert "TINYFLEET_ADMIN_API_KEY" in lines[0]
    assert "Traceback" not in result.stderr


def test_invalid_setting_from_dotenv_exits_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("TINYFLEET_HTTP_PORT=eighty\n")
    result = run_cli("serve", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "TINYFLEET_HTTP_PORT" in result.stderr


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_db_upgrade_current_downgrade(tmp_path: Path, database_url: str) -> None:
    env = {"TINYFLEET_DATABASE_URL": database_url}
    up = run_cli("db", "upgrade", cwd=tmp_path, **env)
    assert up.returncode == 0, up.stderr
    assert up.stdout.startswith("database at revision ")
    assert {"devices", "events", "telemetry", "dead_letters", "alembic_version"} <= _tables(database_url)
    current = run_cli("db", "current", cwd=tmp_path, **env)
    assert current.returncode == 0
    assert current.stdout.strip() == up.stdout.strip().removeprefix("database at revision ")
    down = run_cli("db", "downgrade", "base", cwd=tmp_path, **env)
    assert down.returncode == 0, down.stderr
    assert "events" not in _tables(database_url)


def test_db_upgrade_unreachable_database_is_one_line(tmp_path: Path) -> None:
    result = run_cli(
        "db", "upgrade", cwd=tmp_path, TINYFLEET_DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    )
    assert result.returncode == 1
    assert result.stderr.startswith("tinyfleet: upgrade failed: OperationalError")
    assert "Traceback" not in result.stderr


class Proc:
    """A `tinyfleet` subprocess whose stderr is collected line by line (so a test can wait for a log line)."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.popen = subprocess.Popen(
            [TINYFLEET, *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: list[str] = []
        self.out_lines: list[str] = []
        assert self.popen.stderr is not None
        assert self.popen.stdout is not None
        self._readers = [
            threading.Thread(target=self._read, args=(self.popen.stderr, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.popen.stdout, self.out_lines), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: IO[str], into: list[str]) -> None:
        for line in stream:
            into.append(line)

    @property
    def stdout(self) -> str:
        return "".join(self.out_lines)

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for_line(self, fragment: str, timeout: float = 30) -> None:
        try:
            wait_for(lambda: any(fragment in line for line in self.lines) or self.popen.poll() is not None, timeout)
        except TimeoutError:
            pytest.fail(f"no {fragment!r} in the output within {timeout} s: {self.stderr}")
        if not any(fragment in line for line in self.lines):
            pytest.fail(f"exited ({self.popen.returncode}) before {fragment!r}: {self.stderr}")

    def stop(self, sig: signal.Signals, timeout: float = 20) -> int:
        self.popen.send_signal(sig)
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            pytest.fail(f"did not exit within {timeout} s of {sig.name}: {self.stderr}")
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def _publish_events(prefix: str, device_id: str, n: int) -> None:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"pub-{secrets.token_hex(4)}")
    client.connect(MQTT_HOST, MQTT_PORT)
    client.loop_start()
    try:
        infos = [
            client.publish(
                Topics(prefix).evt(device_id),
                encode_event(Event(ts=int(time.time() * 1000), seq=i, boot=1, model="m", kind=1, anom=0.1)),
                qos=1,
            )
            for i in range(n)
        ]
        for info in infos:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _count_events(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM events").fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_ingest_worker_stores_and_stops_gracefully(
    tmp_path: Path, database_url: str, stop_signal: signal.Signals
) -> None:
    assert run_cli("db", "upgrade", cwd=tmp_path, TINYFLEET_DATABASE_URL=database_url).returncode == 0
    prefix = f"t{secrets.token_hex(4)}/v1"
    env = clean_env(
        TINYFLEET_DATABASE_URL=database_url,
        TINYFLEET_MQTT_URL=f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        TINYFLEET_TOPIC_PREFIX=prefix,
        TINYFLEET_MQTT_SESSION_EXPIRY_S="60",
    )
    metrics_port = free_port()
    args = ["ingest", "--client-id", f"cli-{secrets.token_hex(4)}", "--metrics-port", str(metrics_port)]
    proc = Proc(args, tmp_path, env)
    try:
        proc.wait_for_line("connected to MQTT")
        time.sleep(0.3)  # subscriptions acknowledged
        _publish_events(prefix, "dev-1", 50)
        try:
            wait_for(lambda: _count_events(database_url) == 50, timeout=20)
        except TimeoutError:
            pytest.fail(f"{_count_events(database_url)} of 50 events stored; worker: {proc.stderr}")
        metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert "tinyfleet_events_stored_total 50.0" in metrics
        code = proc.stop(stop_signal)
    finally:
        proc.kill()
    assert code == 0, proc.stderr
    assert "stopped" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path, database_url: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_cli(
            "serve", "--port", str(port), cwd=tmp_path,
            TINYFLEET_DATABASE_URL=database_url, TINYFLEET_TOPIC_PREFIX=f"t{secrets.token_hex(4)}/v1",
            TINYFLEET_MQTT_SESSION_EXPIRY_S="60", TINYFLEET_MQTT_CLIENT_ID=f"cli-{secrets.token_hex(4)}",
        )  # fmt: skip
    assert result.returncode == 1
    assert f"tinyfleet: cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_is_ready_and_stops_on_sigint(tmp_path: Path, database_url: str) -> None:
    assert run_cli("db", "upgrade", cwd=tmp_path, TINYFLEET_DATABASE_URL=database_url).returncode == 0
    port = free_port()
    env = clean_env(
        TINYFLEET_DATABASE_URL=database_url,
        TINYFLEET_MQTT_URL=f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        TINYFLEET_TOPIC_PREFIX=f"t{secrets.token_hex(4)}/v1",
        TINYFLEET_MQTT_SESSION_EXPIRY_S="60",
    )
    proc = Proc(["serve", "--port", str(port), "--client-id", f"cli-{secrets.token_hex(4)}"], tmp_path, env)

    def ready() -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, timeout=30, interval=0.2, message=lambda: f"serve never became ready: {proc.stderr}")
        assert httpx.get(f"http://127.0.0.1:{port}/api/v1/devices").json() == {"items": [], "next_cursor": None}
        assert "tinyfleet_mqtt_connected 1.0" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
        code = proc.stop(signal.SIGINT)
    finally:
        proc.kill()
    assert code == 0, proc.stderr
    assert "Traceback" not in proc.stderr


def test_rules_validate_accepts_the_shipped_rule_set(tmp_path: Path) -> None:
    shipped = Path(__file__).resolve().parents[1] / "rules"
    result = run_cli("rules", "validate", str(shipped), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "rules OK" in result.stdout
    assert "bearing-fault" in result.stdout


def test_rules_validate_names_file_line_and_column_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("- id: x\n  severity: huge\n  match: {model: vib-cls}\n")
    result = run_cli("rules", "validate", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path / 'bad.yml'}:2:13:" in result.stderr
    assert "severity" in result.stderr
    assert "Traceback" not in result.stderr
