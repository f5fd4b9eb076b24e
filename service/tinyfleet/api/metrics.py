"""The API's Prometheus metrics: HTTP requests, and gauges derived from the database at scrape time.

Everything lives in the app's own :class:`CollectorRegistry` (never the global one), next to the ingest
worker's metrics when it runs in the same process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinyfleet.store.db import Database
from tinyfleet.store.models import Device

log = logging.getLogger(__name__)

#: A scrape never waits longer than this for the database-derived gauges.
DB_SCRAPE_TIMEOUT_S = 2.0


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "tinyfleet_http_requests_total",
            "HTTP requests answered, by route template and status",
            ["method", "route", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "tinyfleet_http_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=registry,
        )
        self.db_up = Gauge("tinyfleet_db_up", "1 when the database answered the last scrape", registry=registry)
        self.devices = Gauge("tinyfleet_devices", "Devices known to the service", registry=registry)
        self.devices_online = Gauge(
            "tinyfleet_devices_online", "Devices whose last state says online", registry=registry
        )
        self.maintenance_runs = Gauge(
            "tinyfleet_maintenance_runs",
            "Maintenance runs since start (retention, dedup pruning, rollups)",
            registry=registry,
        )
        self.maintenance_failures = Gauge(
            "tinyfleet_maintenance_failures", "Maintenance runs that failed since start", registry=registry
        )

    async def refresh_from_database(self, database: Database) -> None:
        """Update the database-derived gauges (bounded in time; a failure only sets `tinyfleet_db_up 0`)."""
        try:
            async with asyncio.timeout(DB_SCRAPE_TIMEOUT_S), database.engine.connect() as conn:
                row = (
                    await conn.execute(
                        select(func.count(), func.count().filter(Device.online.is_(True))).select_from(Device)
                    )
                ).one()
        except Exception as exc:  # any failure is what the gauge reports
            log.debug("metrics: database gauges not refreshed: %s", exc)
            self.db_up.set(0)
            return
        self.db_up.set(1)
        self.devices.set(int(row[0]))
        self.devices_online.set(int(row[1]))

    def refresh_from_maintenance(self, scheduler: Any) -> None:
        if scheduler is None:
            return
        self.maintenance_runs.set(int(getattr(scheduler, "runs", 0)))
        self.maintenance_failures.set(int(getattr(scheduler, "failures", 0)))


class RequestMetricsMiddleware:
    """Pure ASGI middleware counting requests by route template (bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", None) or "unmatched")
            self.metrics.requests.labels(scope.get("method", "?"), template, str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - started)
