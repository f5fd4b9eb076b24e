"""Liveness, readiness (real broker and database), Prometheus metrics, the home page and the OpenAPI doc."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Seeder, api_settings
from tests.conftest import MQTT_HOST, MQTT_PORT
from tests.support.instances import free_port
from tinyfleet.api import create_app
from tinyfleet.ingest.metrics import IngestMetrics
from tinyfleet.ingest.service import IngestService


async def test_healthz(client: httpx.AsyncClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok"}


async def test_readyz_without_ingest_is_503(client: httpx.AsyncClient) -> None:
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    body = resp.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["mqtt"]["ok"] is False
    assert body["checks"]["database"] == {"ok": True, "detail": "select 1 answered"}


async def test_readyz_follows_the_broker_connection(migrated_db: str, make_client: Callable[..., Any]) -> None:
    # A worker whose broker is not there: not ready, and the reason says so.
    down = api_settings(migrated_db, mqtt_url=f"mqtt://127.0.0.1:{free_port()}")
    ingest = IngestService(down)
    ingest.start()
    try:
        async with make_client(create_app(down, ingest=ingest)) as client:
            resp = await client.get("/readyz")
            assert resp.status_code == 503, resp.text
            assert resp.json()["checks"]["mqtt"]["ok"] is False
            assert resp.json()["checks"]["database"]["ok"] is True
    finally:
        await asyncio.to_thread(ingest.stop)

    # The same with the real broker: ready once connected, and its metrics are in the app's registry.
    up = api_settings(migrated_db, mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}", mqtt_session_expiry_s=60)
    registry = CollectorRegistry()
    ingest = IngestService(up, metrics=IngestMetrics(registry))
    ingest.start()
    try:
        assert await asyncio.to_thread(ingest.wait_connected, 10), "ingest did not connect to Mosquitto"
        async with make_client(create_app(up, ingest=ingest, registry=registry)) as client:
            resp = await client.get("/readyz")
            assert resp.status_code == 200, resp.text
            assert resp.json()["status"] == "ready"
            metrics = (await client.get("/metrics")).text
            assert "tinyfleet_mqtt_connected 1.0" in metrics
    finally:
        await asyncio.to_thread(ingest.stop)


async def test_readyz_database_down(make_client: Callable[..., Any]) -> None:
    settings = api_settings(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    async with make_client(create_app(settings)) as client:
        resp = await client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["database"]["ok"] is False
        assert (await client.get("/healthz")).status_code == 200
        # A query while the database is down is a 503 in the error shape, not a 500.
        resp = await client.get("/api/v1/devices")
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"]["code"] == "database_unavailable"
        metrics = (await client.get("/metrics")).text
        assert "tinyfleet_db_up 0.0" in metrics


async def test_unmigrated_database_is_503(database_url: str, make_client: Callable[..., Any]) -> None:
    async with make_client(create_app(api_settings(database_url))) as client:
        resp = await client.get("/api/v1/devices")
        assert resp.status_code == 503
        assert resp.json()["error"]["code"] == "database_not_migrated"
        assert "tinyfleet db upgrade" in resp.json()["error"]["message"]


async def test_metrics(client: httpx.AsyncClient, seed: Seeder) -> None:
    seed.device("a", online=True)
    seed.device("b", online=True)
    seed.device("c", online=False)
    await client.get("/api/v1/devices")
    resp = await client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }
    assert samples[("tinyfleet_devices", ())] == 3
    assert samples[("tinyfleet_devices_online", ())] == 2
    assert samples[("tinyfleet_db_up", ())] == 1
    key = (
        "tinyfleet_http_requests_total",
        (("method", "GET"), ("route", "/api/v1/devices"), ("status", "200")),
    )
    assert samples.get(key) == 1, [k for k in samples if k[0].startswith("tinyfleet_http")]


async def test_home_page_and_openapi(client: httpx.AsyncClient) -> None:
    home = await client.get("/")
    assert home.status_code == 200
    assert "/docs" in home.text
    spec = (await client.get("/openapi.json")).json()
    assert {t["name"] for t in spec["tags"]} >= {"devices", "events", "dead-letters", "health"}
    for name in ("DevicePublic", "EventPublic", "StatsPublic", "DeadLetterPublic", "ErrorResponse"):
        assert spec["components"]["schemas"][name].get("examples"), name
    for path, ops in spec["paths"].items():
        for op in ops.values():
            assert op.get("tags"), path
