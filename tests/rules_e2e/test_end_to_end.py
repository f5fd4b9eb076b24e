"""Rules end to end, real services only: MQTT (Mosquitto) → ingest → rules → alert in PostgreSQL → outbox →
signed webhook to a real local HTTP server; ack / resolve / reload through the HTTP API of the same `Service`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx

from tests.actions.conftest import SECRET, HttpReceiver, eventually
from tests.ingest.conftest import Publisher, make_settings
from tests.rules_e2e.conftest import rule_file
from tinyfleet.app import Service
from tinyfleet.wire import Event, encode_event

ADMIN_KEY = "tfk_rules_e2e_admin_key_0123456789"


def fault(seq: int, *, label: int = 1, score: float = 0.93) -> bytes:
    return encode_event(Event(seq=seq, boot=1, model="vib-cls", mver=1, kind=0, label=label, score=score, lat=900))


async def test_mqtt_events_open_an_alert_deliver_a_signed_webhook_and_the_api_manages_it(
    migrated_db: str,
    prefix: str,
    publisher: Publisher,
    rules_dir: Path,
    http_receiver: Callable[..., HttpReceiver],
) -> None:
    receiver = http_receiver()
    (rules_dir / "pumps.yml").write_text(rule_file(receiver.url, count=3, within="1m"))
    settings = make_settings(
        migrated_db,
        prefix,
        rules_dir=rules_dir,
        webhook_secret=SECRET,
        admin_api_key=ADMIN_KEY,
        actions_poll_interval_s=0.05,
        actions_backoff_base_s=0.05,
        actions_backoff_cap_s=0.2,
    )
    async with Service(settings, maintenance=False) as service:
        assert service.ingest is not None
        assert service.app is not None
        assert await asyncio.to_thread(service.ingest.wait_connected, 10)
        await asyncio.sleep(0.3)  # subscriptions acknowledged
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers={"Authorization": f"Bearer {ADMIN_KEY}"}
        ) as api:
            # two faults, a normal one and a low-score fault on pump-1, three faults on pump-2 → one alert (pump-2)
            for payload in [fault(0), fault(1), fault(2, label=0), fault(3, score=0.5)]:
                publisher.publish(f"{prefix}/pump-1/evt", payload)
            for seq in range(3):
                publisher.publish(f"{prefix}/pump-2/evt", fault(seq))

            async def alert_open() -> bool:
                r = await api.get("/api/v1/alerts", params={"state": "open"})
                return r.status_code == 200 and len(r.json()["items"]) == 1

            await eventually(alert_open)
            await eventually(lambda: len(receiver.accepted()) == 1)
            (hook,) = receiver.accepted()
            assert hook.signature_ok
            body = hook.json()
            assert body["alert"]["rule_id"] == "bearing-burst"
            assert body["alert"]["group_key"] == "pump-2"
            assert body["transition"]["kind"] == "open"
            assert hook.headers["Idempotency-Key"] == body["idempotency_key"]

            (alert,) = (await api.get("/api/v1/alerts", params={"rule_id": "bearing-burst"})).json()["items"]
            assert (alert["state"], alert["severity"], alert["group_key"]) == ("open", "major", "pump-2")
            assert (await api.get("/api/v1/alerts", params={"severity": "critical"})).json()["items"] == []

            rules = (await api.get("/api/v1/rules")).json()
            assert rules["running"] is True
            assert rules["rules"][0]["last_firing"]["alert_id"] == alert["id"]

            # mutations need a key with the write scope, even from localhost in dev mode
            r = await api.post(f"/api/v1/alerts/{alert['id']}/ack", headers={"Authorization": ""})
            assert r.status_code == 401
            r = await api.post(f"/api/v1/alerts/{alert['id']}/ack", params={"by": "shift-lead"})
            assert r.status_code == 200, r.text
            assert (r.json()["state"], r.json()["acknowledged_by"]) == ("acknowledged", "shift-lead")
            r = await api.post(f"/api/v1/alerts/{alert['id']}/resolve")
            assert r.status_code == 200, r.text
            assert (r.json()["state"], r.json()["resolved_how"], r.json()["resolved_by"]) == (
                "resolved",
                "manual",
                "api",
            )
            r = await api.post(f"/api/v1/alerts/{alert['id']}/ack")
            assert r.status_code == 409
            assert r.json()["error"]["code"] == "alert_state"
            detail = (await api.get(f"/api/v1/alerts/{alert['id']}")).json()
            kinds = [e["kind"] for e in detail["history"]]
            assert kinds[0] == "open"
            assert "ack" in kinds
            assert kinds[-1] in ("resolve", "action_delivered")
            assert (await api.get("/api/v1/alerts/999999")).status_code == 404

            # a bad file: 422 with file:line:column, nothing applied, the old rule still fires
            (rules_dir / "bad.yml").write_text(
                "- id: broken\n  match: {model: vib-cls}\n  window: {count: 0, within: 1m}\n"
            )
            r = await api.post("/api/v1/rules/reload")
            assert r.status_code == 422
            err = r.json()["error"]
            assert err["code"] == "invalid_rules"
            assert err["details"][0]["file"].endswith("bad.yml")
            assert err["details"][0]["line"] >= 1
            rules = (await api.get("/api/v1/rules")).json()
            assert [x["id"] for x in rules["rules"]] == ["bearing-burst"]
            assert rules["errors"][0]["file"].endswith("bad.yml")

            for seq in range(3, 6):  # pump-2 again: a new alert (the previous one was resolved), under the old set
                publisher.publish(f"{prefix}/pump-2/evt", fault(seq))

            async def reopened() -> bool:
                r = await api.get("/api/v1/alerts", params={"state": "open", "rule_id": "bearing-burst"})
                return len(r.json()["items"]) == 1

            await eventually(reopened)
            await eventually(lambda: len(receiver.accepted()) == 2)

            (rules_dir / "bad.yml").unlink()
            r = await api.post("/api/v1/rules/reload")
            assert r.status_code == 200
            assert r.json()["errors"] == []
