"""The private Mosquitto and PostgreSQL instances of tests/support work as fault tests rely on them."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest

from tests.support.instances import (
    MOSQUITTO_DEFAULT_MAX_QUEUED_MESSAGES,
    MosquittoInstance,
    PostgresInstance,
    free_port,
    port_is_free,
    wait_for,
)

# ------------------------------------------------------------------------------------------------- helpers


def _client(port: int, client_id: str, *, clean_session: bool = True) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv311,
        clean_session=clean_session,
    )
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port, keepalive=30)
    client.loop_start()
    wait_for(client.is_connected, 10, message=f"{client_id} did not connect")
    return client


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


class _Collector:
    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        self.lock = threading.Lock()

    def __call__(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.payloads.append(bytes(msg.payload))

    def count(self) -> int:
        with self.lock:
            return len(self.payloads)


def _subscribe(client: mqtt.Client, topic: str) -> None:
    done = threading.Event()
    client.on_subscribe = lambda *args: done.set()
    client.subscribe(topic, qos=1)
    assert done.wait(10), "no SUBACK"


def _publish_all(port: int, topic: str, payloads: list[bytes]) -> None:
    """Publish QoS1 and wait for every PUBACK (the broker has then taken responsibility for each message)."""
    pub = _client(port, f"pub-{uuid.uuid4().hex[:8]}")
    try:
        infos = [pub.publish(topic, p, qos=1) for p in payloads]
        for info in infos:
            info.wait_for_publish(30)
            assert info.is_published()
    finally:
        _close(pub)


def _queue_for_offline_subscriber(broker: MosquittoInstance, n: int) -> tuple[str, str, set[bytes]]:
    """A persistent-session subscriber subscribes and goes offline; ``n`` QoS1 messages are published."""
    client_id, topic = f"sub-{uuid.uuid4().hex[:8]}", f"selftest/{uuid.uuid4().hex[:8]}"
    sub = _client(broker.port, client_id, clean_session=False)
    _subscribe(sub, topic)
    _close(sub)
    sent = [f"m{i:05d}".encode() for i in range(n)]
    _publish_all(broker.port, topic, sent)
    return client_id, topic, set(sent)


def _drain(port: int, client_id: str, expect: int, settle: float = 1.0) -> list[bytes]:
    """Reconnect the persistent session; collect what the broker delivers (until quiet for ``settle`` s)."""
    got = _Collector()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311,
                      clean_session=False)  # fmt: skip
    sub.on_message = got
    sub.connect("127.0.0.1", port, keepalive=30)
    sub.loop_start()
    try:
        deadline = time.monotonic() + 60
        last, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            n = got.count()
            if n != last:
                last, last_change = n, time.monotonic()
            elif n >= expect or time.monotonic() - last_change > settle:
                break
            time.sleep(0.05)
        time.sleep(0.2)  # anything beyond the expected count would show up here
    finally:
        _close(sub)
    return list(got.payloads)


# ------------------------------------------------------------------------------------------------- generic


def test_free_port_is_bindable_and_wait_for_times_out() -> None:
    port = free_port()
    assert 1024 < port < 65536
    assert port_is_free(port)
    assert wait_for(lambda: 42, 1) == 42
    with pytest.raises(TimeoutError, match="never"):
        wait_for(lambda: False, 0.1, 0.01, "never")


# ----------------------------------------------------------------------------------------------- Mosquitto


def test_mosquitto_qos1_round_trip_and_cleanup() -> None:
    with MosquittoInstance() as broker:
        port, folder = broker.port, broker.dir
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        assert broker.running
        assert not port_is_free(port)
        sub = _client(port, "rt-sub")
        got = _Collector()
        sub.on_message = got
        _subscribe(sub, "selftest/rt")
        _publish_all(port, "selftest/rt", [b"hello"])
        wait_for(lambda: got.count() == 1, 10, message="QoS1 message not delivered")
        assert got.payloads == [b"hello"]
        _close(sub)
        assert "max_queued_messages 1000000" in broker.conf_path.read_text()
    assert port_is_free(port)
    assert not Path(folder).exists()


def test_mosquitto_persistent_session_survives_restart_beyond_default_queue_limit() -> None:
    n = 2000  # more than Mosquitto's default max_queued_messages (1000)
    with MosquittoInstance() as broker:
        client_id, _topic, sent = _queue_for_offline_subscriber(broker, n)
        broker.restart()
        received = _drain(broker.port, client_id, n)
    assert len(received) == n, f"{n - len(set(received))} of {n} queued QoS1 messages lost"
    assert set(received) == sent


def test_mosquitto_default_queue_limit_drops_messages() -> None:
    """Why the limit is raised everywhere: with the default, a lagging subscriber silently loses messages."""
    with MosquittoInstance(max_queued_messages=MOSQUITTO_DEFAULT_MAX_QUEUED_MESSAGES) as broker:
        client_id, _topic, _sent = _queue_for_offline_subscriber(broker, 1500)
        received = _drain(broker.port, client_id, 1500, settle=0.5)
        assert len(received) == MOSQUITTO_DEFAULT_MAX_QUEUED_MESSAGES
        assert "Outgoing messages are being dropped" in broker.log_text()


def test_mosquitto_kill_frees_port_and_start_again() -> None:
    with MosquittoInstance() as broker:
        broker.kill()
        assert not broker.running
        assert port_is_free(broker.port)
        broker.start()
        assert broker.mqtt_ping()


# ---------------------------------------------------------------------------------------------- PostgreSQL


def test_postgres_timescaledb_restart_kill_and_cleanup() -> None:
    with PostgresInstance() as pg:
        port, folder = pg.port, pg.dir
        assert pg.url == f"postgresql://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(pg.url) as conn:
            assert conn.execute("select 1").fetchone() == (1,)
        url = pg.create_database("selftest")
        assert url.endswith("/selftest")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION timescaledb")
            conn.execute("CREATE TABLE t (ts timestamptz NOT NULL, v int)")
            conn.execute("SELECT create_hypertable('t', 'ts')")
            conn.execute("INSERT INTO t SELECT now(), g FROM generate_series(1, 100) g")

        pg.restart()  # pg_ctl stop -m fast, then start
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.execute("select count(*) from t").fetchone() == (100,)
            conn.execute("INSERT INTO t SELECT now(), g FROM generate_series(1, 50) g")

        pg.kill()  # SIGKILL: no checkpoint, crash recovery at start
        assert not pg.running
        assert port_is_free(port)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        pg.start()
        with psycopg.connect(url) as conn:
            assert conn.execute("select count(*) from t").fetchone() == (150,)
    assert port_is_free(port)
    assert not Path(folder).exists()


def test_postgres_without_timescaledb() -> None:
    with PostgresInstance(timescaledb=False) as pg, psycopg.connect(pg.url) as conn:
        assert conn.execute("show shared_preload_libraries").fetchone() == ("",)
        assert conn.execute("show fsync").fetchone() == ("on",)
