"""Fixtures of the fleet tests: an MQTT 5 device client that reports CONNACK and PUBACK reason codes."""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tinyfleet.wire import Event, encode_event


class DeviceClient:
    """A device over MQTT 5 (or 3.1.1) with its own credentials: `connect()` returns the CONNACK reason code
    (0 = accepted), `publish()` the PUBACK reason code (135 = not authorized; always 0 in MQTT 3.1.1, whose
    PUBACK has no reason code)."""

    def __init__(self, host: str, port: int, username: str, password: str | None, *, protocol: int = 5) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{username}-{secrets.token_hex(3)}",
            protocol=mqtt.MQTTv5 if protocol == 5 else mqtt.MQTTv311,
        )
        self.client.username_pw_set(username, password)
        self.host, self.port = host, port
        self._connack: list[int] = []
        self._pubacks: dict[int, int] = {}
        self._cond = threading.Condition()
        self.disconnected = threading.Event()

        def on_connect(_c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
            with self._cond:
                self._connack.append(int(reason.value))
                self._cond.notify_all()

        def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
            with self._cond:
                self._pubacks[mid] = int(reason.value)
                self._cond.notify_all()

        def on_disconnect(*_args: Any) -> None:
            self.disconnected.set()

        self.client.on_connect = on_connect
        self.client.on_publish = on_publish
        self.client.on_disconnect = on_disconnect

    def connect(self, timeout: float = 10.0) -> int:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._connack), timeout):
                raise TimeoutError("no CONNACK")
            return self._connack[0]

    def publish(self, topic: str, payload: bytes, timeout: float = 10.0) -> int:
        info = self.client.publish(topic, payload, qos=1)
        with self._cond:
            if not self._cond.wait_for(lambda: info.mid in self._pubacks, timeout):
                raise TimeoutError(f"no PUBACK for {topic}")
            return self._pubacks[info.mid]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connack_of(host: str, port: int, username: str, password: str | None) -> int:
    client = DeviceClient(host, port, username, password)
    try:
        return client.connect()
    finally:
        client.close()


def event_payload(seq: int) -> bytes:
    return encode_event(Event(ts=int(time.time() * 1000), seq=seq, boot=1, model="vib-cls", kind=0, label=1, score=0.9))
