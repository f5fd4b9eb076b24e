"""The device's MQTT connection (paho-mqtt): MQTT 5, falling back to 3.1.1 when the broker refuses v5.

    link = MqttLink(MqttOptions(url, device_id, password), will=lwt_payload, will_topic=state_topic,
                    on_connect=publish_birth_and_subscribe, on_message=handle, on_published=forget)
    link.start()                 # connects in the background, reconnects by itself (paho's loop thread)
    info = link.publish(topic, payload, qos=1)
    link.stop(final=(state_topic, offline_payload))   # a clean goodbye: no LWT

The username is the device id (the broker's ACL lets it write only under its own id). The session is
persistent (MQTT 5 ``clean_start=False`` with a session expiry, 3.1.1 ``clean_session=False``) so commands sent
while the device is offline are delivered when it is back. A v5 CONNACK "unsupported protocol version" (132, or
1 from a 3.1.1 broker), a broker that twice closes the connection before any CONNACK, or no CONNACK to the
first MQTT 5 CONNECT within 10 s makes the link
rebuild its client as 3.1.1 once and log it; paho itself retransmits
unacknowledged QoS 1 publishes after every reconnect.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from .errors import DeviceError

__all__ = ["MqttLink", "MqttOptions", "ProtocolChoice"]

log = logging.getLogger(__name__)

ProtocolChoice = Literal["auto", "5", "3.1.1"]
_UNSUPPORTED_VERSION = frozenset({1, 132})
#: a broker that has not answered the first MQTT 5 CONNECT in this time is taken not to speak MQTT 5
CONNACK_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class MqttOptions:
    url: str  # mqtt://host:port or mqtts://host:port (user info in the URL is ignored for the username)
    device_id: str
    password: str | None = None
    protocol: ProtocolChoice = "auto"
    keepalive_s: int = 30
    session_expiry_s: int = 24 * 3600
    reconnect_min_s: int = 1
    reconnect_max_s: int = 4
    max_inflight: int = 20


class MqttLink:
    def __init__(
        self,
        options: MqttOptions,
        *,
        will_topic: str,
        will: bytes,
        on_connect: Callable[[], None],
        on_message: Callable[[str, bytes], None],
        on_published: Callable[[int, int], None],
        on_disconnect: Callable[[], None] | None = None,
    ) -> None:
        parts = urlsplit(options.url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise DeviceError(f"unsupported MQTT URL scheme in {options.url!r} (use mqtt:// or mqtts://)")
        self.options = options
        self.host = parts.hostname or "127.0.0.1"
        self.tls = parts.scheme in ("mqtts", "ssl")
        self.port = parts.port or (8883 if self.tls else 1883)
        self.password = options.password if options.password is not None else (
            unquote(parts.password) if parts.password else None
        )  # fmt: skip
        self._will_topic = will_topic
        self._will = will
        self._on_connect_cb = on_connect
        self._on_message_cb = on_message
        self._on_published_cb = on_published
        self._on_disconnect_cb = on_disconnect
        self.protocol: Literal["5", "3.1.1"] = "3.1.1" if options.protocol == "3.1.1" else "5"
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._fallback = threading.Event()
        self._stopping = threading.Event()
        self._client = self._make_client()
        self._watcher: threading.Thread | None = None
        self.connects = 0
        self._awaiting_connack = False
        self._closed_before_connack = 0

    # ---------------------------------------------------------------------------------------- client
    def _make_client(self) -> mqtt.Client:
        v5 = self.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.options.device_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        client.username_pw_set(self.options.device_id, self.password)
        if self.tls:
            client.tls_set_context(ssl.create_default_context())
        client.will_set(self._will_topic, self._will, qos=1, retain=True)
        client.reconnect_delay_set(self.options.reconnect_min_s, self.options.reconnect_max_s)
        client.max_inflight_messages_set(self.options.max_inflight)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        client.on_socket_open = self._on_socket_open
        client.on_socket_close = self._on_socket_close
        client.enable_logger(logging.getLogger("tinyfleet_device.paho"))
        return client

    def _connect_args(self) -> dict[str, Any]:
        if self.protocol != "5":
            return {}
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.options.session_expiry_s
        return {"clean_start": False, "properties": props}

    def start(self) -> None:
        self._client.connect_async(self.host, self.port, self.options.keepalive_s, **self._connect_args())
        self._client.loop_start()
        if self.options.protocol == "auto" and self._watcher is None:
            self._watcher = threading.Thread(target=self._watch_fallback, name="tf-mqtt-fallback", daemon=True)
            self._watcher.start()

    def _watch_fallback(self) -> None:
        while not self._stopping.is_set():
            if not self._fallback.wait(0.5):
                continue
            with self._lock:
                old = self._client
                old.loop_stop()
                old.disconnect()
                self.protocol = "3.1.1"
                log.warning("the broker refused MQTT 5: reconnecting with MQTT 3.1.1")
                self._client = self._make_client()
                self._client.connect_async(self.host, self.port, self.options.keepalive_s)
                self._client.loop_start()
            return

    def stop(self, *, final: tuple[str, bytes] | None = None, timeout: float = 3.0) -> None:
        """Publish ``final`` (a retained state: the clean goodbye), disconnect (no LWT), stop the loop."""
        self._stopping.set()
        with self._lock:
            client = self._client
        if final is not None and self.connected.is_set():
            try:
                info = client.publish(final[0], final[1], qos=1, retain=True)
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError) as exc:
                log.info("could not publish the final state: %s", exc)
        client.disconnect()
        client.loop_stop()
        self.connected.clear()

    # -------------------------------------------------------------------------------------- callbacks
    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        self._awaiting_connack = False
        code = int(getattr(reason, "value", reason))
        if code != 0:
            if self.protocol == "5" and self.options.protocol == "auto" and code in _UNSUPPORTED_VERSION:
                self._fallback.set()
                return
            log.warning("broker refused the connection: %s", reason)
            return
        self.connects += 1
        self._closed_before_connack = 0
        self.connected.set()
        log.info(
            "connected to %s:%s as %s (MQTT %s, session %s)", self.host, self.port, self.options.device_id,
            self.protocol, "resumed" if getattr(flags, "session_present", False) else "new",
        )  # fmt: skip
        try:
            self._on_connect_cb()
        except Exception:  # a failing callback must not kill paho's thread
            log.exception("on_connect handler failed")

    def _on_socket_open(self, _c: mqtt.Client, _u: Any, _sock: Any) -> None:
        self._awaiting_connack = True
        if self.protocol == "5" and self.options.protocol == "auto" and self.connects == 0:
            timer = threading.Timer(CONNACK_TIMEOUT_S, self._connack_overdue)
            timer.daemon = True
            timer.start()

    def _connack_overdue(self) -> None:
        # some 3.1.1 brokers neither answer a v5 CONNECT nor close the connection (amqtt, with a will)
        if self._awaiting_connack and self.connects == 0 and self.protocol == "5" and not self._stopping.is_set():
            log.info("no CONNACK to an MQTT 5 CONNECT within %g s", CONNACK_TIMEOUT_S)
            self._fallback.set()

    def _on_socket_close(self, _c: mqtt.Client, _u: Any, _sock: Any) -> None:
        if not self._awaiting_connack:
            return
        self._awaiting_connack = False
        # Some 3.1.1 brokers close the connection on a v5 CONNECT instead of answering "unsupported version"
        # (amqtt does when the CONNECT has a will): twice in a row means they do not speak MQTT 5.
        self._closed_before_connack += 1
        if self.protocol == "5" and self.options.protocol == "auto" and self._closed_before_connack >= 2:
            self._fallback.set()

    def _on_connect_fail(self, _c: mqtt.Client, _u: Any) -> None:
        log.info("cannot reach the broker at %s:%s; retrying", self.host, self.port)

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        was = self.connected.is_set()
        self.connected.clear()
        if was and not self._stopping.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)
        if self._on_disconnect_cb is not None:
            self._on_disconnect_cb()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            self._on_message_cb(msg.topic, bytes(msg.payload))
        except Exception:
            log.exception("message handler failed for %s", msg.topic)

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        try:
            self._on_published_cb(mid, int(getattr(reason, "value", 0) or 0))
        except Exception:
            log.exception("publish handler failed")

    # ------------------------------------------------------------------------------------------ calls
    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        with self._lock:
            return self._client.publish(topic, payload, qos=qos, retain=retain)

    def subscribe(self, topics: list[str], qos: int = 1) -> None:
        with self._lock:
            self._client.subscribe([(t, qos) for t in topics])
