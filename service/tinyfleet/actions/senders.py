"""Senders: deliver one outbox row (email, webhook, Node-RED, MQTT). Success returns; failure raises.

Every sender gets the row's `Delivery` (kind, target, payload as written with the transition, idempotency key)
and carries the idempotency key so a receiver can drop repeats: `Message-ID` of an email, the
`Idempotency-Key` header of HTTP deliveries, the `idempotency_key` field of every JSON body (and an MQTT 5
user property). Bodies and emails are built from the stored payload only, so every attempt sends the same.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any, Protocol

import aiosmtplib
import httpx
import jinja2
import paho.mqtt.client as mqtt
from jinja2.sandbox import SandboxedEnvironment
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tinyfleet.actions.signing import IDEMPOTENCY_HEADER, signature_headers
from tinyfleet.config import Settings

log = logging.getLogger("tinyfleet.actions")

DEFAULT_SUBJECT = (
    "[tinyfleet] {{ alert.severity | upper }} {{ alert.rule_id }} {{ transition.kind }} ({{ alert.group_key }})"
)
DEFAULT_BODY = """\
Rule:      {{ alert.rule_id }}
Group:     {{ alert.group_key }}
Severity:  {{ alert.severity }}
State:     {{ alert.state }}{% if alert.escalated %} (escalated){% endif %}
Event:     {{ transition.kind }} at {{ transition.at }}
Opened at: {{ alert.opened_at }}
{% if alert.evidence %}
Evidence:
{% for key, value in alert.evidence | dictsort %}  {{ key }}: {{ value }}
{% endfor %}{% endif %}
Alert id {{ alert.id }} · delivery {{ idempotency_key }}
"""


class DeliveryError(Exception):
    """The target refused or could not be reached; the worker retries (or gives up after N attempts)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a sender needs of one outbox row."""

    id: int
    kind: str
    target: str
    payload: Mapping[str, Any]
    idempotency_key: str
    attempt: int  # 1 for the first attempt

    @property
    def params(self) -> Mapping[str, Any]:
        params = self.payload.get("params") or {}
        return params if isinstance(params, Mapping) else {}

    def context(self) -> dict[str, Any]:
        """What templates see: `alert`, `transition`, `params`, `idempotency_key`, and the shortcuts `rule`,
        `group`, `device` (evidence's `device`, else the group), `severity` (also as `{rule}`-style placeholders)."""
        alert = self.payload.get("alert") or {}
        evidence = alert.get("evidence") or {}
        group = str(alert.get("group_key", ""))
        return {
            "alert": alert,
            "transition": self.payload.get("transition", {}),
            "params": self.params,
            "idempotency_key": self.idempotency_key,
            "rule": str(alert.get("rule_id", "")),
            "group": group,
            "device": str(evidence.get("device", group)) if isinstance(evidence, Mapping) else group,
            "severity": str(alert.get("severity", "")),
        }

    def document(self) -> dict[str, Any]:
        """The JSON body of webhook, Node-RED and (by default) MQTT deliveries."""
        return {
            "idempotency_key": self.idempotency_key,
            "alert": self.payload.get("alert", {}),
            "transition": self.payload.get("transition", {}),
        }

    def body(self) -> bytes:
        return json.dumps(self.document(), sort_keys=True, separators=(",", ":")).encode()


class Sender(Protocol):
    async def __call__(self, delivery: Delivery) -> None: ...


_templates = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


#: Single-brace placeholders of rule files (`tf/v1/{device}/cmd`), replaced before Jinja2 runs.
_PLACEHOLDER = re.compile(r"(?<!\{)\{(rule|group|device|severity)\}(?!\})")


def render(template: str, context: Mapping[str, Any]) -> str:
    """Render a (sandboxed, strict) Jinja2 template, after the `{rule}`/`{group}`/`{device}`/`{severity}`
    placeholders; an error is a DeliveryError naming the problem."""
    template = _PLACEHOLDER.sub(lambda m: str(context.get(m.group(1), m.group(0))), template)
    try:
        return _templates.from_string(template).render(**context)
    except jinja2.TemplateError as exc:
        raise DeliveryError(f"template error: {exc}") from exc


def message_id(idempotency_key: str, domain: str) -> str:
    return f"<{idempotency_key}@{domain}>"


def _secret(settings: Settings, params: Mapping[str, Any]) -> str | None:
    env_name = params.get("secret_env")
    if env_name:
        value = os.environ.get(str(env_name))
        if not value:
            raise DeliveryError(f"environment variable {env_name} (the action's secret_env) is not set")
        return value
    return settings.webhook_secret.get_secret_value() if settings.webhook_secret else None


class Senders:
    """The four senders sharing one HTTP client and one MQTT connection. `async with` closes them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http = httpx.AsyncClient(timeout=settings.actions_timeout_s, follow_redirects=False)
        self._mqtt = MqttPublisher(settings)
        self.by_kind: dict[str, Sender] = {
            "email": self.email,
            "webhook": self.webhook,
            "nodered": self.nodered,
            "mqtt": self.mqtt,
        }

    async def __aenter__(self) -> Senders:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await asyncio.to_thread(self._mqtt.close)

    async def send(self, delivery: Delivery) -> None:
        sender = self.by_kind.get(delivery.kind)
        if sender is None:
            raise DeliveryError(f"no sender for action kind {delivery.kind!r}")
        await sender(delivery)

    # ------------------------------------------------------------------------------------------------ email
    def build_email(self, delivery: Delivery) -> EmailMessage:
        params, context, s = delivery.params, delivery.context(), self.settings
        sender = str(params.get("from") or s.smtp_from)
        domain = sender.rpartition("@")[2].strip(">") or "tinyfleet.local"
        msg = EmailMessage()
        msg["From"] = sender
        msg["To"] = " ".join(delivery.target.split())
        # One line whatever the template and the alert's fields contain (no header injection).
        msg["Subject"] = " ".join(render(str(params.get("subject", DEFAULT_SUBJECT)), context).split())
        msg["Message-ID"] = message_id(delivery.idempotency_key, domain)
        msg["X-Tinyfleet-Idempotency-Key"] = delivery.idempotency_key
        at = delivery.payload.get("transition", {}).get("at")
        when = datetime.fromisoformat(at) if isinstance(at, str) else datetime.now(UTC)
        msg["Date"] = format_datetime(when)
        msg.set_content(render(str(params.get("body", params.get("template", DEFAULT_BODY))), context))
        return msg

    async def email(self, delivery: Delivery) -> None:
        s = self.settings
        msg = self.build_email(delivery)
        recipients = [a.strip() for a in delivery.target.split(",") if a.strip()]
        try:
            await aiosmtplib.send(
                msg,
                recipients=recipients,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_tls,
                start_tls=s.smtp_starttls,
                cert_bundle=str(s.smtp_cert_bundle) if s.smtp_cert_bundle else None,
                timeout=s.actions_timeout_s,
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP {s.smtp_host}:{s.smtp_port}: {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------------------------------------------ HTTP
    async def _post(self, url: str, delivery: Delivery) -> None:
        params = delivery.params
        body = delivery.body()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "tinyfleet-actions",
            IDEMPOTENCY_HEADER: delivery.idempotency_key,
        }
        extra = params.get("headers")
        if isinstance(extra, Mapping):
            headers.update({str(k): str(v) for k, v in extra.items()})
        secret = _secret(self.settings, params)
        if secret is not None:
            headers.update(signature_headers(secret, body))
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {url}: {type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryError(f"POST {url}: HTTP {response.status_code} {response.text[:200]!r}")

    async def webhook(self, delivery: Delivery) -> None:
        await self._post(delivery.target, delivery)

    async def nodered(self, delivery: Delivery) -> None:
        url = f"{self.settings.nodered_url.rstrip('/')}/{delivery.target.lstrip('/')}"
        await self._post(url, delivery)

    # ------------------------------------------------------------------------------------------------ MQTT
    async def mqtt(self, delivery: Delivery) -> None:
        topic = render(delivery.target, delivery.context())
        if not topic or any(c in topic for c in "+#\0"):
            raise DeliveryError(f"not a topic to publish to: {topic!r}")
        params = delivery.params
        given = params.get("payload")
        if given is None:
            payload = delivery.body()
        elif isinstance(given, str):  # a text payload is a template too
            payload = render(given, delivery.context()).encode()
        else:
            payload = json.dumps(given, sort_keys=True, separators=(",", ":")).encode()
        qos = int(params.get("qos", 1))
        if qos not in (0, 1):
            raise DeliveryError(f"MQTT actions publish with QoS 0 or 1, not {qos}")
        await asyncio.to_thread(
            self._mqtt.publish, topic, payload, delivery.idempotency_key, bool(params.get("retain", False)), qos
        )


class MqttPublisher:
    """One paho connection to the service's broker (settings.mqtt_url), opened on first use, QoS 1 publishes
    that return only after the PUBACK. Thread-safe; called from worker threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self._refused: str | None = None

    def _connect(self) -> mqtt.Client:
        s = self.settings
        v5 = s.mqtt_protocol == 5
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"{s.mqtt_client_id}-actions-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        )
        endpoint = s.mqtt
        if endpoint.username:
            client.username_pw_set(endpoint.username, endpoint.password)
        if endpoint.tls:
            client.tls_set()
        self._connected.clear()
        self._refused = None

        def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
            if getattr(reason, "is_failure", False):
                self._refused = str(reason)
            else:
                self._connected.set()

        def on_disconnect(_c: mqtt.Client, _u: Any, _f: Any, _r: Any, _p: Any = None) -> None:
            self._connected.clear()

        client.on_connect = on_connect
        client.on_disconnect = on_disconnect
        client.connect(endpoint.host, endpoint.port, keepalive=s.mqtt_keepalive_s)
        client.loop_start()
        if not self._connected.wait(s.actions_timeout_s):
            client.loop_stop()
            client.disconnect()
            raise DeliveryError(f"MQTT {endpoint}: not connected ({self._refused or 'no CONNACK'})")
        return client

    def publish(self, topic: str, payload: bytes, idempotency_key: str, retain: bool = False, qos: int = 1) -> None:
        with self._lock:
            try:
                if self._client is None or not self._connected.is_set():
                    self._drop()
                    self._client = self._connect()
                client = self._client
                properties = None
                if self.settings.mqtt_protocol == 5:
                    properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
                    properties.UserProperty = ("idempotency-key", idempotency_key)
                info = client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
                info.wait_for_publish(self.settings.actions_timeout_s)
                if not info.is_published():
                    self._drop()
                    raise DeliveryError(f"MQTT publish to {topic}: no PUBACK within {self.settings.actions_timeout_s}s")
            except DeliveryError:
                raise
            except (OSError, RuntimeError, ValueError) as exc:
                self._drop()
                raise DeliveryError(f"MQTT publish to {topic}: {type(exc).__name__}: {exc}") from exc

    def publish_many(self, messages: Sequence[tuple[str, bytes]], *, retain: bool = False, qos: int = 1) -> None:
        """Publish all, then wait for every PUBACK (one round trip's wait for the lot, not one per message)."""
        with self._lock:
            try:
                if self._client is None or not self._connected.is_set():
                    self._drop()
                    self._client = self._connect()
                client = self._client
                infos = [client.publish(topic, payload, qos=qos, retain=retain) for topic, payload in messages]
                deadline = time.monotonic() + self.settings.actions_timeout_s + len(messages) / 1000
                for info in infos:
                    info.wait_for_publish(max(0.0, deadline - time.monotonic()))
                    if not info.is_published():
                        self._drop()
                        raise DeliveryError(f"MQTT publish of {len(messages)} message(s): PUBACKs missing")
            except DeliveryError:
                raise
            except (OSError, RuntimeError, ValueError) as exc:
                self._drop()
                raise DeliveryError(f"MQTT publish: {type(exc).__name__}: {exc}") from exc

    def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()

    def close(self) -> None:
        with self._lock:
            self._drop()
