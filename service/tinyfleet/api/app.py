"""The FastAPI application factory.

    app = create_app(settings)                          # API only (tests): readiness reports no broker
    app = create_app(settings, ingest=ingest, database=db, registry=registry, maintenance=scheduler)

The composition root (`tinyfleet.app`) builds the database, the ingest worker and the maintenance scheduler
and hands them over; anything not handed over that the API needs (the database, the metrics registry) is
created here and owned by the app's lifespan.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector

import tinyfleet
from tinyfleet.api.audit import AuditMiddleware
from tinyfleet.api.auth import AUTH_RESPONSES
from tinyfleet.api.errors import install_error_handlers
from tinyfleet.api.fleet_support import install_fleet_error_handlers
from tinyfleet.api.metrics import ApiMetrics, RequestMetricsMiddleware
from tinyfleet.api.routes import alerts, dead_letters, device_ops, devices, events, health
from tinyfleet.api.routes import api_keys as api_keys_routes
from tinyfleet.api.routes import audit as audit_routes
from tinyfleet.api.routes import broker as broker_routes
from tinyfleet.api.routes import captures as captures_routes
from tinyfleet.api.routes import cohorts as cohorts_routes
from tinyfleet.api.routes import models as models_routes
from tinyfleet.api.routes import rollouts as rollouts_routes
from tinyfleet.api.routes import rules as rules_routes
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.config import Settings
from tinyfleet.fleet.broker_auth import BrokerAuth
from tinyfleet.ingest.service import IngestService
from tinyfleet.rollouts.context import RolloutsContext
from tinyfleet.rollouts.runtime import RegistryCatalog, compatibility_problems
from tinyfleet.store.db import CONNECT_OPTIONS, Database
from tinyfleet.web.live import LiveFeed

#: The API's queries are bounded in time: a runaway query answers 503 instead of holding a connection.
API_STATEMENT_TIMEOUT_MS = 30_000

TAGS: list[dict[str, Any]] = [
    {
        "name": "devices",
        "description": "Devices as the service has seen them (first/last seen, online state).",
    },
    {"name": "events", "description": "Inference events: per device, and statistics per time bucket."},
    {
        "name": "dead-letters",
        "description": "Messages refused by the wire contract, with raw bytes and reason.",
    },
    {"name": "alerts", "description": "Alerts opened by the rules: list, history, acknowledge, resolve."},
    {"name": "rules", "description": "The rules this process runs (from `TINYFLEET_RULES_DIR`); reload."},
    {
        "name": "rollouts",
        "description": "Releases (a model version for a cohort) and their staged rollouts: waves, soak, "
        "canary-vs-control gates, automatic rollback, every decision with its evidence.",
    },
    {
        "name": "models",
        "description": "The model registry: push .tflite versions, inspection and TFLM arena, compatibility "
        "with a device, resumable downloads (docs/models.md).",
    },
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
    {"name": "cohorts", "description": "Saved tag selectors (`site=plant-a AND line in (1,2)`) and their devices."},
    {"name": "api-keys", "description": "API keys and their scopes (admin). Tokens are shown once."},
    {"name": "audit", "description": "Who changed what, when (admin)."},
    {"name": "broker", "description": "HTTP auth for EMQX / mosquitto-go-auth (instead of the password file)."},
]

_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "Invalid parameter"},
    503: {"model": ErrorResponse, "description": "Database unavailable"},
}
#: Every route behind an API key (all but health, metrics and the home page) documents 401 and 403.
_PROTECTED_RESPONSES: dict[int | str, dict[str, Any]] = {**_ERROR_RESPONSES, **AUTH_RESPONSES}


def api_database(settings: Settings) -> Database:
    """The API's connection pool: small, UTC, with a statement timeout."""
    return Database(
        settings,
        pool_size=5,
        max_overflow=5,
        pool_timeout=10,
        connect_args={"options": f"{CONNECT_OPTIONS} -c statement_timeout={API_STATEMENT_TIMEOUT_MS}"},
    )


def create_app(
    settings: Settings,
    *,
    ingest: IngestService | None = None,
    database: Database | None = None,
    registry: CollectorRegistry | None = None,
    maintenance: Any = None,
    rules: Any = None,
    rollouts: RolloutsContext | None = None,
    live: LiveFeed | None = None,
) -> FastAPI:
    owns_database = database is None
    db = database if database is not None else api_database(settings)
    if registry is None:
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
    api_metrics = ApiMetrics(registry)
    # Fed by the ingest's commits when the service registered it as a listener; silent otherwise.
    live_feed = live if live is not None else LiveFeed(max_queue=settings.ui_live_queue)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        live_feed.bind()
        try:
            yield
        finally:
            live_feed.close()
            commander = getattr(_app.state, "commander", None)
            if commander is not None:
                await commander.aclose()
            if owns_database:
                await db.dispose()

    app = FastAPI(
        title="tinyfleet",
        version=tinyfleet.__version__,
        summary="Backend for fleets of TinyML devices: inference events from MQTT, stored in TimescaleDB.",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = db
    app.state.ingest = ingest
    app.state.registry = registry
    app.state.api_metrics = api_metrics
    app.state.maintenance = maintenance
    app.state.rules = rules
    # Without a service around it (no controller, no signing key): releases and rollouts can be created and
    # read; nothing is sent until a controller runs.
    app.state.rollouts = rollouts or RolloutsContext(
        catalog=RegistryCatalog(lambda: app.state.database.sessionmaker, settings.public_base_url),
        compatibility=compatibility_problems,
    )
    app.state.broker_auth = BrokerAuth(settings)

    install_error_handlers(app)
    install_fleet_error_handlers(app)
    app.add_middleware(AuditMiddleware)
    app.add_middleware(RequestMetricsMiddleware, metrics=api_metrics)
    from tinyfleet.web.mount import install_web  # beside api, importing api.auth: not at module level

    install_web(app, settings, live_feed)
    app.include_router(health.router)
    # Before devices: its `/devices/{device_id:path}` would take `/devices/{id}/ota-reports` for an id.
    app.include_router(rollouts_routes.router, responses=_PROTECTED_RESPONSES)
    app.include_router(captures_routes.router, responses=_PROTECTED_RESPONSES)
    app.include_router(device_ops.router, responses=_PROTECTED_RESPONSES)
    app.include_router(devices.router, responses=_PROTECTED_RESPONSES)
    app.include_router(events.router, responses=_PROTECTED_RESPONSES)
    app.include_router(dead_letters.router, responses=_PROTECTED_RESPONSES)
    app.include_router(alerts.router, responses=_PROTECTED_RESPONSES)
    app.include_router(rules_routes.router, responses=AUTH_RESPONSES)
    app.include_router(cohorts_routes.router, responses=_PROTECTED_RESPONSES)
    app.include_router(api_keys_routes.router, responses=_PROTECTED_RESPONSES)
    app.include_router(audit_routes.router, responses=_PROTECTED_RESPONSES)
    app.include_router(broker_routes.router, responses=_PROTECTED_RESPONSES)
    app.include_router(models_routes.router, responses=_PROTECTED_RESPONSES)
    return app
