"""Faults mid-stream: every event sent is stored exactly once at the end.

Each test starts its own broker and/or database (temporary folders, free ports) so that killing them disturbs
nothing else, and runs the ingest worker as the real `tinyfleet ingest` process where it is killed.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.ingest.conftest import Publisher, make_settings, scalar, wait_until
from tests.support.instances import MosquittoInstance, PostgresInstance
from tinyfleet.store.migrate import upgrade
from tinyfleet.wire import Event, encode_event

pytestmark = pytest.mark.slow
TINYFLEET = str(Path(sys.executable).with_name("tinyfleet"))
TOTAL = 6000


def events_stored(url: str) -> tuple[int, int]:
    """(rows, distinct keys) in events."""
    with psycopg.connect(url, connect_timeout=3) as conn:
        row = conn.execute("select count(*), count(distinct (device_id, boot, seq)) from events").fetchone()
        assert row is not None
        return int(row[0]), int(row[1])


def safe_events_stored(url: str) -> int:
    try:
        return events_stored(url)[0]
    except psycopg.Error:
        return -1


class StreamPublisher(threading.Thread):
    """Publishes TOTAL QoS 1 events over 20 devices at a steady pace, riding out broker restarts."""

    def __init__(self, host: str, port: int, prefix: str, total: int = TOTAL, rate: float = 1500.0) -> None:
        super().__init__(name="stream-publisher", daemon=True)
        self.pub = Publisher(host, port, client_id=f"stream-{secrets.token_hex(3)}", persistent=True)
        self.pub.client.reconnect_delay_set(0, 1)
        self.prefix, self.total, self.rate = prefix, total, rate
        self.sent = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            t0 = time.monotonic()
            now = int(time.time() * 1000)
            for i in range(self.total):
                due = t0 + i / self.rate
                if (delay := due - time.monotonic()) > 0:
                    time.sleep(delay)
                dev = f"dev-{i % 20:02d}"
                ev = Event(v=1, ts=now + i, seq=i // 20, boot=1, model="vib-cls", kind=0, label=i % 4, score=0.9)
                self.pub.publish(f"{self.prefix}/{dev}/evt", encode_event(ev))
                self.sent += 1
            self.pub.flush(timeout=120)
        except BaseException as exc:  # reported by the test
            self.error = exc

    def finish(self) -> None:
        self.join(180)
        assert not self.is_alive(), "publisher did not finish"
        if self.error:
            raise self.error
        self.pub.close()


def ingest_env(settings_kw: dict[str, Any]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TINYFLEET_")}
    env.update({f"TINYFLEET_{k.upper()}": str(v) for k, v in settings_kw.items()})
    return env


@pytest.fixture
def broker() -> Iterator[MosquittoInstance]:
    with MosquittoInstance() as mq:
        yield mq


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen([TINYFLEET, "ingest"], env=env, stdout=out, stderr=subprocess.STDOUT)


def test_ingest_killed_with_sigkill_mid_stream_loses_and_duplicates_nothing(database_url, broker, tmp_path):
    upgrade(database_url)
    prefix = f"k{secrets.token_hex(3)}/v1"
    env = ingest_env(
        {
            "database_url": database_url,
            "mqtt_url": broker.url,
            "topic_prefix": prefix,
            "mqtt_client_id": "fault-kill",
            "batch_max_delay_ms": 5,
        }
    )
    log = tmp_path / "ingest.log"
    worker = start_worker(env, log)
    try:
        assert wait_until(lambda: "connected to MQTT" in log.read_text(errors="replace"), 20), log.read_text()
        stream = StreamPublisher(broker.host, broker.port, prefix)
        stream.start()
        assert wait_until(lambda: safe_events_stored(database_url) > TOTAL // 4, 30)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        time.sleep(0.5)
        worker = start_worker(env, log)
        stream.finish()
        assert wait_until(lambda: safe_events_stored(database_url) >= TOTAL, 60), events_stored(database_url)
        time.sleep(1)
        assert events_stored(database_url) == (TOTAL, TOTAL)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(20) == 0, log.read_text()


def test_postgres_restarted_mid_stream(broker, start_ingest, tmp_path):
    with PostgresInstance() as pg:
        url = pg.create_database("faults")
        upgrade(url)
        prefix = f"p{secrets.token_hex(3)}/v1"
        svc = start_ingest(make_settings(url, prefix, mqtt_url=broker.url))
        stream = StreamPublisher(broker.host, broker.port, prefix)
        stream.start()
        assert wait_until(lambda: safe_events_stored(url) > TOTAL // 4, 30)
        pg.stop(mode="fast")
        time.sleep(2.0)  # the stream goes on; ingest holds its acks and retries
        assert svc.status().pending > 0
        pg.start()
        stream.finish()
        assert wait_until(lambda: safe_events_stored(url) >= TOTAL, 90), events_stored(url)
        time.sleep(1)
        assert events_stored(url) == (TOTAL, TOTAL)
        assert svc.metrics.db_errors._value.get() >= 1


def test_mosquitto_restarted_mid_stream_with_persistent_session(migrated_db, broker, start_ingest):
    prefix = f"m{secrets.token_hex(3)}/v1"
    svc = start_ingest(make_settings(migrated_db, prefix, mqtt_url=broker.url))
    stream = StreamPublisher(broker.host, broker.port, prefix)
    stream.start()
    assert wait_until(lambda: safe_events_stored(migrated_db) > TOTAL // 4, 30)
    broker.restart()
    stream.finish()
    assert wait_until(lambda: safe_events_stored(migrated_db) >= TOTAL, 90), events_stored(migrated_db)
    time.sleep(1)
    assert events_stored(migrated_db) == (TOTAL, TOTAL)
    assert svc.metrics.mqtt_connects._value.get() >= 2


def test_two_workers_on_a_shared_subscription_split_the_load(migrated_db, broker, start_ingest):
    prefix = f"s{secrets.token_hex(3)}/v1"
    a = start_ingest(
        make_settings(migrated_db, prefix, mqtt_url=broker.url, mqtt_shared_group="tf", mqtt_client_id="worker-a")
    )
    b = start_ingest(
        make_settings(migrated_db, prefix, mqtt_url=broker.url, mqtt_shared_group="tf", mqtt_client_id="worker-b")
    )
    stream = StreamPublisher(broker.host, broker.port, prefix, total=4000, rate=4000)
    stream.start()
    stream.finish()
    assert wait_until(lambda: safe_events_stored(migrated_db) >= 4000, 60)
    time.sleep(0.5)
    assert events_stored(migrated_db) == (4000, 4000)
    got_a, got_b = a.metrics.events_stored._value.get(), b.metrics.events_stored._value.get()
    assert got_a + got_b == 4000
    assert got_a > 1000, (got_a, got_b)
    assert got_b > 1000, (got_a, got_b)


def test_shared_subscription_worker_killed_mid_stream(migrated_db, broker, tmp_path):
    prefix = f"x{secrets.token_hex(3)}/v1"
    common = {
        "database_url": migrated_db,
        "mqtt_url": broker.url,
        "topic_prefix": prefix,
        "mqtt_shared_group": "tf",
        "batch_max_delay_ms": 5,
    }
    env_a = ingest_env({**common, "mqtt_client_id": "kill-a"})
    env_b = ingest_env({**common, "mqtt_client_id": "kill-b"})
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a, b = start_worker(env_a, log_a), start_worker(env_b, log_b)
    try:
        for log in (log_a, log_b):
            assert wait_until(lambda log=log: "connected to MQTT" in log.read_text(errors="replace"), 20)
        stream = StreamPublisher(broker.host, broker.port, prefix)
        stream.start()
        assert wait_until(lambda: safe_events_stored(migrated_db) > TOTAL // 3, 30)
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        stream.finish()
        # the survivor goes on; what the broker had sent to the dead worker's session comes back with it
        a = start_worker(env_a, log_a)
        assert wait_until(lambda: safe_events_stored(migrated_db) >= TOTAL, 60), events_stored(migrated_db)
        time.sleep(1)
        assert events_stored(migrated_db) == (TOTAL, TOTAL)
    finally:
        for w in (a, b):
            w.send_signal(signal.SIGTERM)
        for w, log in ((a, log_a), (b, log_b)):
            assert w.wait(20) == 0, log.read_text()


def test_graceful_stop_drains_the_current_batch(migrated_db, broker, start_ingest):
    prefix = f"g{secrets.token_hex(3)}/v1"
    settings = make_settings(
        migrated_db,
        prefix,
        mqtt_url=broker.url,
        batch_max_delay_ms=500,
        batch_max_events=100_000,
        max_pending_messages=200_000,
    )
    svc = start_ingest(settings)
    pub = Publisher(broker.host, broker.port)
    now = int(time.time() * 1000)
    for i in range(300):
        pub.publish(f"{prefix}/d/evt", encode_event(Event(v=1, ts=now, seq=i, boot=1, model="m", kind=0, label=0)))
    pub.flush()
    time.sleep(0.05)
    svc.stop()
    assert scalar(migrated_db, "select count(*) from events") == 300
    pub.close()


def test_writer_process_killed_mid_stream_is_restarted_and_loses_nothing(migrated_db, broker, start_ingest):
    prefix = f"w{secrets.token_hex(3)}/v1"
    svc = start_ingest(make_settings(migrated_db, prefix, mqtt_url=broker.url))
    stream = StreamPublisher(broker.host, broker.port, prefix)
    stream.start()
    assert wait_until(lambda: safe_events_stored(migrated_db) > TOTAL // 4, 30)
    child = svc._writer._proc  # the decode-and-write process
    assert child is not None
    os.kill(child.pid, signal.SIGKILL)
    stream.finish()
    assert wait_until(lambda: safe_events_stored(migrated_db) >= TOTAL, 60), events_stored(migrated_db)
    time.sleep(1)
    assert events_stored(migrated_db) == (TOTAL, TOTAL)
    assert svc._writer._proc is not child  # a new one took over
    assert "writer process went away" in (svc.status().last_error or "")
