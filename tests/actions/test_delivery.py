"""Delivery through the outbox with real receivers: aiosmtpd, a local HTTP server checking the HMAC,
Mosquitto. Targets that are down, down for good, two workers, and a worker started after a "crash"."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import ssl
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.smtp import AuthResult
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import MQTT_HOST, MQTT_PORT
from tinyfleet import alerts
from tinyfleet.actions import OutboxWorker, backoff_delay, sign, verify
from tinyfleet.alerts import ActionSpec, AlertTransition
from tinyfleet.store.db import Database

from .conftest import SECRET, HttpReceiver, NodeRed, SmtpServer, eventually, free_port, make_settings

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


async def open_alert(
    db: Database, actions: list[ActionSpec], group: str = "device=pump-7", rule: str = "bearing-fault"
) -> alerts.AppliedTransition:
    async with db.session() as session:
        applied = await alerts.apply_transition(
            session, AlertTransition(rule, group, "open", "critical", T0, {"count": 3, "label": "bearing"}), actions
        )
    assert applied is not None
    return applied


async def outbox_rows(db: Database, **filters: Any) -> list[alerts.OutboxRecord]:
    async with db.session() as session:
        return (await alerts.list_outbox(session, **filters)).items


async def all_in_state(db: Database, state: str, n: int) -> bool:
    rows = await outbox_rows(db)
    return len(rows) == n and all(r.state == state for r in rows)


# ------------------------------------------------------------------------------------------------- email


async def test_email_is_delivered_with_templates_and_a_stable_message_id(
    db: Database, migrated_url: str, smtp_server: Callable[..., SmtpServer]
) -> None:
    # The server refuses the first two DATA commands (451): the worker retries, each time with the same message.
    server = smtp_server(refuse=2)
    settings = make_settings(migrated_url, smtp_port=server.port)
    action = ActionSpec(
        "email",
        "lead@example.test, shift@example.test",
        {
            "subject": "{{ alert.severity | upper }}: {{ alert.rule_id }} on {{ alert.group_key }}",
            "body": "Count {{ alert.evidence.count }} ({{ transition.kind }}) key={{ idempotency_key }}",
        },
    )
    applied = await open_alert(db, [action])
    key = applied.outbox[0].idempotency_key
    async with OutboxWorker(settings):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert len(server.receiver.attempts) == 3
    assert len(server.receiver.accepted) == 1
    msg = server.receiver.accepted[0]
    assert msg["Subject"] == "CRITICAL: bearing-fault on device=pump-7"
    assert msg["From"] == "alerts@tinyfleet.test"
    assert msg["X-Envelope-To"] == "lead@example.test, shift@example.test"
    assert msg.get_content().strip() == f"Count 3 (open) key={key}"
    assert {m["Message-ID"] for m in server.receiver.attempts} == {f"<{key}@tinyfleet.test>"}
    (row,) = await outbox_rows(db)
    assert row.attempts == 3
    assert row.delivered_at is not None


async def test_default_email_templates(db: Database, migrated_url: str, smtp_server: Callable[..., SmtpServer]) -> None:
    server = smtp_server()
    await open_alert(db, [ActionSpec("email", "lead@example.test")])
    async with OutboxWorker(make_settings(migrated_url, smtp_port=server.port)):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    msg = server.receiver.accepted[0]
    assert msg["Subject"] == "[tinyfleet] CRITICAL bearing-fault open (device=pump-7)"
    body = msg.get_content()
    assert "Rule:      bearing-fault" in body
    assert "label: bearing" in body


async def test_smtp_down_for_a_while_then_delivered(
    db: Database, migrated_url: str, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server(start=False)  # nothing listens on the port yet
    settings = make_settings(migrated_url, smtp_port=server.port)
    applied = await open_alert(db, [ActionSpec("email", "lead@example.test")])
    async with OutboxWorker(settings):
        await eventually(lambda: _attempted(db, 2))
        (row,) = await outbox_rows(db)
        assert row.state == "pending"
        assert row.last_error is not None
        assert "SMTP" in row.last_error
        server.start()
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert [m["Message-ID"] for m in server.receiver.accepted] == [
        f"<{applied.outbox[0].idempotency_key}@tinyfleet.test>"
    ]


async def _attempted(db: Database, n: int) -> bool:
    return any(r.attempts >= n for r in await outbox_rows(db))


# ------------------------------------------------------------------------------------------------- webhook


async def test_webhook_is_signed_and_carries_the_idempotency_key(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    receiver = http_receiver()
    applied = await open_alert(
        db, [ActionSpec("webhook", f"{receiver.url}/hooks/tinyfleet", {"headers": {"X-A": "b"}})]
    )
    async with OutboxWorker(make_settings(migrated_url)):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    (req,) = receiver.requests
    assert req.signature_ok
    assert req.path == "/hooks/tinyfleet"
    assert req.headers["Idempotency-Key"] == applied.outbox[0].idempotency_key
    assert req.headers["Content-Type"] == "application/json"
    assert req.headers["X-A"] == "b"
    doc = req.json()
    assert doc["idempotency_key"] == applied.outbox[0].idempotency_key
    assert doc["alert"]["rule_id"] == "bearing-fault"
    assert doc["alert"]["evidence"] == {"count": 3, "label": "bearing"}
    assert doc["transition"]["kind"] == "open"
    async with db.session() as session:
        history = await alerts.list_alert_events(session, applied.alert.id)
    assert [e.kind for e in history] == ["open", "action_delivered"]
    assert history[1].detail is not None
    assert history[1].detail["idempotency_key"] == applied.outbox[0].idempotency_key


async def test_webhook_secret_from_the_env_var_named_in_the_action(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver = http_receiver()
    monkeypatch.setenv("TF_TEST_HOOK_SECRET", SECRET)
    await open_alert(db, [ActionSpec("webhook", receiver.url, {"secret_env": "TF_TEST_HOOK_SECRET"})])
    # the global secret is wrong: only the action's own secret makes the receiver accept
    async with OutboxWorker(make_settings(migrated_url, webhook_secret="not-the-secret")):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert [r.signature_ok for r in receiver.requests] == [True]


async def test_webhook_failing_then_recovering_retries_with_the_same_key(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    receiver = http_receiver(fail=3, fail_status=503)
    applied = await open_alert(db, [ActionSpec("webhook", receiver.url)])
    async with OutboxWorker(make_settings(migrated_url)):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert len(receiver.requests) == 4
    assert {r.headers["Idempotency-Key"] for r in receiver.requests} == {applied.outbox[0].idempotency_key}
    assert len({r.body for r in receiver.requests}) == 1  # the same body every time


async def test_webhook_down_then_back_is_delivered(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    receiver = http_receiver(start=False)  # connection refused until started
    applied = await open_alert(db, [ActionSpec("webhook", f"{receiver.url}/in")])
    async with OutboxWorker(make_settings(migrated_url)):
        await eventually(lambda: _attempted(db, 3))
        (row,) = await outbox_rows(db)
        assert row.state == "pending"
        assert "ConnectError" in (row.last_error or "")
        receiver.start()
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == [applied.outbox[0].idempotency_key]


async def test_target_down_for_good_is_dead_after_n_attempts(db: Database, migrated_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}/never"
    applied = await open_alert(db, [ActionSpec("webhook", url), ActionSpec("nodered", "/also-never")])
    settings = make_settings(migrated_url, actions_max_attempts=3, nodered_url=f"http://127.0.0.1:{free_port()}")
    async with OutboxWorker(settings):
        await eventually(lambda: all_in_state(db, "dead", 2))
    dead = await outbox_rows(db, state="dead")
    assert len(dead) == 2
    for row in dead:
        assert row.attempts == 3
        assert row.last_error is not None
        assert "ConnectError" in row.last_error
    assert await outbox_rows(db, state="pending") == []
    async with db.session() as session:
        history = await alerts.list_alert_events(session, applied.alert.id)
    assert sorted(e.kind for e in history) == ["action_dead", "action_dead", "open"]
    assert all("ConnectError" in (e.detail or {}).get("error", "") for e in history if e.kind == "action_dead")


async def test_nodered_action_posts_to_the_base_url_plus_path(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    # A stand-in HTTP server at the Node-RED base URL (the real Node-RED is not started by these tests).
    receiver = http_receiver()
    await open_alert(db, [ActionSpec("nodered", "/tinyfleet/alert")])
    async with OutboxWorker(make_settings(migrated_url, nodered_url=receiver.url + "/")):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    (req,) = receiver.requests
    assert req.path == "/tinyfleet/alert"
    assert req.signature_ok


# ------------------------------------------------------------------------------------------------- workers


async def test_two_workers_never_deliver_the_same_row_twice(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    receiver = http_receiver(delay_s=0.01)
    n = 60
    async with db.session() as session:
        for i in range(n):
            await alerts.apply_transition(
                session,
                AlertTransition("r", f"device=d{i}", "open", "warning", T0),
                [ActionSpec("webhook", receiver.url)],
            )
    settings = make_settings(migrated_url, actions_batch_size=4, actions_concurrency=3)
    async with OutboxWorker(settings, name="w1") as w1, OutboxWorker(settings, name="w2") as w2:
        await eventually(lambda: all_in_state(db, "delivered", n))
    keys = [r.headers["Idempotency-Key"] for r in receiver.requests]
    assert len(keys) == n
    assert len(set(keys)) == n
    assert w1.delivered + w2.delivered == n
    assert w1.delivered > 0
    assert w2.delivered > 0


async def test_delivered_after_a_restart_between_alert_and_delivery(
    migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    receiver = http_receiver(fail=1)
    settings = make_settings(migrated_url)
    # "Service" 1: commits the transition, then dies before any delivery (its worker never ran).
    async with Database(migrated_url) as db1:
        applied = await open_alert(db1, [ActionSpec("webhook", receiver.url)])
        # its worker got as far as one failed attempt before the crash
        worker = OutboxWorker(settings, sessionmaker=db1.sessionmaker, listen=False)
        assert await worker.run_once() == 1
        await worker.senders.aclose()
    key = applied.outbox[0].idempotency_key
    # "Service" 2: a fresh worker with its own engine finds the row and delivers it.
    async with Database(migrated_url) as db2:
        (row,) = await outbox_rows(db2)
        assert row.state == "pending"
        assert row.attempts == 1
        async with OutboxWorker(settings):
            await eventually(lambda: all_in_state(db2, "delivered", 1))
    assert [r.headers["Idempotency-Key"] for r in receiver.requests] == [key, key]


async def test_a_new_row_wakes_a_listening_worker_quickly(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    receiver = http_receiver()
    # polling every 30 s: only the NOTIFY sent at commit can make the delivery fast
    async with OutboxWorker(make_settings(migrated_url, actions_poll_interval_s=30.0)):
        await asyncio.sleep(0.3)  # let the LISTEN connection come up
        await open_alert(db, [ActionSpec("webhook", receiver.url)])
        await eventually(lambda: all_in_state(db, "delivered", 1), within=5.0)


# ------------------------------------------------------------------------------------------------- MQTT


async def test_mqtt_action_reaches_a_subscriber(db: Database, migrated_url: str) -> None:
    received: list[mqtt.MQTTMessage] = []
    got = threading.Event()
    subscribed = threading.Event()
    prefix = f"tftest{free_port()}"
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)

    def on_connect(client: mqtt.Client, *_: Any) -> None:
        client.subscribe(f"{prefix}/+/cmd", qos=1)

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        received.append(msg)
        got.set()

    sub.on_connect = on_connect
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = on_message
    sub.connect(MQTT_HOST, MQTT_PORT)
    sub.loop_start()
    try:
        assert await asyncio.to_thread(subscribed.wait, 10)
        action = ActionSpec(
            "mqtt", prefix + "/{{ alert.group_key | replace('device=', '') }}/cmd", {"payload": {"cmd": "stop"}}
        )
        applied = await open_alert(db, [action])
        settings = make_settings(migrated_url, mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}")
        async with OutboxWorker(settings):
            await eventually(lambda: all_in_state(db, "delivered", 1))
        assert await asyncio.to_thread(got.wait, 10)
    finally:
        sub.loop_stop()
        sub.disconnect()
    (msg,) = received
    assert msg.topic == f"{prefix}/pump-7/cmd"
    assert json.loads(msg.payload) == {"cmd": "stop"}
    assert msg.qos == 1
    props = dict(msg.properties.UserProperty) if msg.properties and hasattr(msg.properties, "UserProperty") else {}
    assert props.get("idempotency-key") == applied.outbox[0].idempotency_key


async def test_mqtt_broker_down_retries_then_dead(db: Database, migrated_url: str) -> None:
    await open_alert(db, [ActionSpec("mqtt", "tf/v1/pump-7/cmd")])
    settings = make_settings(migrated_url, mqtt_url=f"mqtt://127.0.0.1:{free_port()}", actions_max_attempts=2)
    async with OutboxWorker(settings):
        await eventually(lambda: all_in_state(db, "dead", 1))
    (row,) = await outbox_rows(db)
    assert "MQTT" in (row.last_error or "")


# ------------------------------------------------------------------------------------------------- pure parts


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    assert backoff_delay(1, 1.0, 2.0, 60.0, rand=lambda: 1.0) == 1.0
    assert backoff_delay(4, 1.0, 2.0, 60.0, rand=lambda: 1.0) == 8.0
    assert backoff_delay(4, 1.0, 2.0, 60.0, rand=lambda: 0.0) == 4.0
    assert backoff_delay(30, 1.0, 2.0, 60.0, rand=lambda: 1.0) == 60.0
    assert backoff_delay(10_000, 1.0, 2.0, 60.0, rand=lambda: 1.0) == 60.0


def test_signature_roundtrip_and_tampering() -> None:
    body = b'{"a":1}'
    sig = sign("k", "1700000000", body)
    assert sig.startswith("sha256=")
    assert verify("k", "1700000000", sig, body, now=1700000010)
    assert not verify("k", "1700000000", sig, b'{"a":2}', now=1700000010)
    assert not verify("other", "1700000000", sig, body, now=1700000010)
    assert not verify("k", "1700000000", sig, body, now=1700009999)  # too old: a replay
    assert not verify("k", None, sig, body)


# ------------------------------------------------------------------------------------------------- Node-RED


async def test_nodered_action_reaches_a_real_node_red(db: Database, migrated_url: str, nodered: NodeRed) -> None:
    applied = await open_alert(db, [ActionSpec("nodered", "/tinyfleet/alert")])
    async with OutboxWorker(make_settings(migrated_url, nodered_url=nodered.url)):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    await eventually(lambda: len(nodered.received()) == 1, within=10)
    (got,) = nodered.received()
    key = applied.outbox[0].idempotency_key
    assert got["headers"]["idempotency-key"] == key
    assert got["body"]["idempotency_key"] == key
    assert got["body"]["alert"]["rule_id"] == "bearing-fault"
    # The body is canonical JSON (sorted keys, no spaces): what Node-RED parsed re-serialises to the signed bytes.
    body = json.dumps(got["body"], sort_keys=True, separators=(",", ":")).encode()
    assert verify(SECRET, got["headers"]["x-tinyfleet-timestamp"], got["headers"]["x-tinyfleet-signature"], body)


async def test_node_red_down_for_a_while_then_delivered(db: Database, migrated_url: str, nodered: NodeRed) -> None:
    nodered.stop()
    applied = await open_alert(db, [ActionSpec("nodered", "/tinyfleet/alert")])
    async with OutboxWorker(make_settings(migrated_url, nodered_url=nodered.url)):
        await eventually(lambda: _attempted(db, 2))
        (row,) = await outbox_rows(db)
        assert row.state == "pending"
        assert "ConnectError" in (row.last_error or "")
        await asyncio.to_thread(nodered.start)
        await eventually(lambda: all_in_state(db, "delivered", 1))
    await eventually(lambda: len(nodered.received()) == 1, within=10)
    (got,) = nodered.received()
    assert got["headers"]["idempotency-key"] == applied.outbox[0].idempotency_key


# ------------------------------------------------------------------------------------------------- a killed worker

_WORKER_SCRIPT = """
import asyncio, os
from tinyfleet.actions import OutboxWorker
from tinyfleet.config import Settings

async def main():
    settings = Settings(_env_file=None, database_url=os.environ["URL"], webhook_secret=os.environ["SECRET"],
                        actions_poll_interval_s=0.05, actions_timeout_s=60)
    async with OutboxWorker(settings):
        await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_worker_killed_mid_delivery_the_row_is_delivered_by_the_next_worker(
    db: Database, migrated_url: str, http_receiver: Callable[..., HttpReceiver]
) -> None:
    # The first delivery hangs at the receiver; the worker process holding the row is SIGKILLed meanwhile.
    receiver = http_receiver(first_delay_s=30)
    applied = await open_alert(db, [ActionSpec("webhook", receiver.url)])
    key = applied.outbox[0].idempotency_key
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _WORKER_SCRIPT, env={**os.environ, "URL": migrated_url, "SECRET": SECRET}
    )
    try:
        await eventually(lambda: len(receiver.arrivals) == 1, within=30)
        # While that worker holds the row locked, another worker skips it (SKIP LOCKED): no second delivery.
        other = OutboxWorker(make_settings(migrated_url), sessionmaker=db.sessionmaker, listen=False)
        assert await other.run_once() == 0
        await other.senders.aclose()
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    (row,) = await outbox_rows(db)
    assert row.state == "pending"
    assert row.attempts == 0  # the killed worker never recorded its attempt
    async with OutboxWorker(make_settings(migrated_url)):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert [h["Idempotency-Key"] for h in receiver.arrivals] == [key, key]


async def test_a_broken_template_makes_the_row_dead_with_the_reason(
    db: Database, migrated_url: str, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    await open_alert(db, [ActionSpec("email", "lead@example.test", {"subject": "{{ alert.no_such_field }}"})])
    async with OutboxWorker(make_settings(migrated_url, smtp_port=server.port, actions_max_attempts=2)):
        await eventually(lambda: all_in_state(db, "dead", 1))
    (row,) = await outbox_rows(db)
    assert "template error" in (row.last_error or "")
    assert "no_such_field" in (row.last_error or "")
    assert server.receiver.attempts == []


async def test_rule_file_placeholders_and_a_text_mqtt_payload(db: Database, migrated_url: str) -> None:
    # Rule files write `tf/v1/{device}/cmd` and payloads as text; per-device rules group by the device id.
    got = threading.Event()
    subscribed = threading.Event()
    received: list[mqtt.MQTTMessage] = []
    prefix = f"tfph{free_port()}"
    sub = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sub.on_connect = lambda client, *_: client.subscribe(f"{prefix}/+/cmd", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, msg: (received.append(msg), got.set())
    sub.connect(MQTT_HOST, MQTT_PORT)
    sub.loop_start()
    try:
        assert await asyncio.to_thread(subscribed.wait, 10)
        text = '{"cmd":"capture","rule":"{rule}","seconds":10}'
        await open_alert(db, [ActionSpec("mqtt", prefix + "/{device}/cmd", {"payload": text, "qos": 1})], group="m-3")
        settings = make_settings(migrated_url, mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}", mqtt_protocol=4)
        async with OutboxWorker(settings):
            await eventually(lambda: all_in_state(db, "delivered", 1))
        assert await asyncio.to_thread(got.wait, 10)
    finally:
        sub.loop_stop()
        sub.disconnect()
    (msg,) = received
    assert msg.topic == f"{prefix}/m-3/cmd"
    assert json.loads(msg.payload) == {"cmd": "capture", "rule": "bearing-fault", "seconds": 10}


async def test_rule_file_email_subject_and_template(
    db: Database, migrated_url: str, smtp_server: Callable[..., SmtpServer]
) -> None:
    server = smtp_server()
    params = {"subject": "Bearing fault on {device}", "template": "{{ rule }} / {{ severity }} on {{ device }}"}
    await open_alert(db, [ActionSpec("email", "lead@example.test", params)], group="pump-7")
    async with OutboxWorker(make_settings(migrated_url, smtp_port=server.port)):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    (msg,) = server.receiver.accepted
    assert msg["Subject"] == "Bearing fault on pump-7"
    assert msg.get_content().strip() == "bearing-fault / critical on pump-7"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("mode", ["starttls", "implicit_tls"])
async def test_email_over_tls_with_authentication(
    db: Database,
    migrated_url: str,
    smtp_server: Callable[..., SmtpServer],
    tls_cert: tuple[Path, Path],
    mode: str,
) -> None:
    cert, key = tls_cert
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"tinyfleet", b"s3cret"))

    if mode == "starttls":
        tls_kwargs: dict[str, Any] = {"tls_context": context, "require_starttls": True}
    else:  # implicit TLS wraps the socket below aiosmtpd, which cannot see it: let it offer AUTH anyway
        tls_kwargs = {"ssl_context": context, "auth_require_tls": False}
    server = smtp_server(auth_required=True, authenticator=authenticator, **tls_kwargs)
    settings = make_settings(
        migrated_url,
        smtp_port=server.port,
        smtp_starttls=mode == "starttls",
        smtp_tls=mode == "implicit_tls",
        smtp_username="tinyfleet",
        smtp_password="s3cret",
        smtp_cert_bundle=cert,
    )
    await open_alert(db, [ActionSpec("email", "lead@example.test")])
    async with OutboxWorker(settings):
        await eventually(lambda: all_in_state(db, "delivered", 1))
    assert logins == [(b"tinyfleet", b"s3cret")]
    assert len(server.receiver.accepted) == 1
