"""Fixtures for the ingest tests: a migrated database, a topic prefix of its own, running ingest workers."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import MQTT_HOST, MQTT_PORT
from tinyfleet.config import Settings
from tinyfleet.ingest.service import IngestService
from tinyfleet.store.migrate import upgrade


@pytest.fixture
def migrated_db(database_url: str) -> str:
    upgrade(database_url)
    return database_url


@pytest.fixture
def prefix() -> str:
    """A topic prefix no other test uses, so tests never see each other's messages on a shared broker."""
    return f"t{secrets.token_hex(4)}/v1"


def make_settings(database_url: str, prefix: str, mqtt_url: str | None = None, **kw: Any) -> Settings:
    base: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_url": mqtt_url or f"mqtt://{MQTT_HOST}:{MQTT_PORT}",
        "topic_prefix": prefix,
        "mqtt_client_id": f"test-ingest-{secrets.token_hex(4)}",
        "mqtt_session_expiry_s": 300,
        "batch_max_delay_ms": 5.0,
    }
    base.update(kw)
    return Settings(_env_file=None, **base)  # type: ignore[call-arg]


@pytest.fixture
def start_ingest() -> Iterator[Callable[..., IngestService]]:
    started: list[IngestService] = []

    def start(settings: Settings, **kw: Any) -> IngestService:
        svc = IngestService(settings, **kw)
        svc.start()
        started.append(svc)
        if not svc.wait_connected(10):
            pytest.fail(f"ingest did not connect to the broker at {settings.mqtt_url}", pytrace=False)
        time.sleep(0.2)  # subscriptions acknowledged
        return svc

    yield start
    for svc in started:
        svc.stop()


class Publisher:
    """A QoS 1 paho publisher that waits for the broker's PUBACK of everything it sent."""

    def __init__(
        self, host: str, port: int, *, client_id: str | None = None, protocol: int = 5, persistent: bool = False
    ) -> None:
        v5 = protocol == 5 and not persistent
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"pub-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            # a persistent session makes paho resend unacknowledged QoS 1 messages after a reconnect
            clean_session=None if v5 else not persistent,
        )
        self.client.max_inflight_messages_set(1000)
        self.sent = 0
        self.acked = 0
        self._lock = threading.Lock()

        def on_publish(*_: Any) -> None:
            with self._lock:
                self.acked += 1

        self.client.on_publish = on_publish
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        # While disconnected paho queues QoS 1 messages (rc "no connection") and sends them on reconnect.
        self.client.publish(topic, payload, qos=qos, retain=retain)
        self.sent += 1

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until the broker acknowledged everything (messages queued while disconnected included)."""
        deadline = time.monotonic() + timeout
        while self.acked < self.sent:
            if time.monotonic() > deadline:
                raise TimeoutError(f"broker acknowledged {self.acked} of {self.sent} messages within {timeout} s")
            time.sleep(0.01)

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def publisher() -> Iterator[Publisher]:
    pub = Publisher(MQTT_HOST, MQTT_PORT)
    yield pub
    pub.close()


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def scalar(database_url: str, sql: str, *params: Any) -> Any:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0]


def rows(database_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, params).fetchall()
