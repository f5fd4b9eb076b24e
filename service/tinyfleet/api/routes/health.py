"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tinyfleet.api.deps import DatabaseDep, IngestDep, RegistryDep
from tinyfleet.api.metrics import ApiMetrics
from tinyfleet.api.schemas import CheckPublic, HealthPublic, ReadinessPublic

router = APIRouter(tags=["health"])

#: `/readyz` waits at most this long for `select 1`.
READY_DB_TIMEOUT_S = 2.0


def _api_metrics(request: Request) -> ApiMetrics:
    metrics: ApiMetrics = request.app.state.api_metrics
    return metrics


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> HealthPublic:
    return HealthPublic()


@router.get(
    "/readyz",
    summary="Readiness: broker connected and database answering",
    responses={503: {"model": ReadinessPublic, "description": "The broker or the database is down"}},
)
async def readyz(database: DatabaseDep, ingest: IngestDep) -> JSONResponse:
    checks: dict[str, CheckPublic] = {}
    if ingest is None:
        checks["mqtt"] = CheckPublic(ok=False, detail="no ingest worker runs in this process")
    else:
        status = ingest.status()
        if status.mqtt_connected:
            checks["mqtt"] = CheckPublic(ok=True, detail="connected")
        else:
            checks["mqtt"] = CheckPublic(ok=False, detail=f"not connected: {status.last_error or 'connecting'}")
    try:
        async with asyncio.timeout(READY_DB_TIMEOUT_S):
            await database.ping()
    except TimeoutError:
        checks["database"] = CheckPublic(ok=False, detail=f"no answer to select 1 within {READY_DB_TIMEOUT_S} s")
    except Exception as exc:
        checks["database"] = CheckPublic(ok=False, detail=f"{type(exc).__name__}: {str(exc).strip()[:200]}")
    else:
        checks["database"] = CheckPublic(ok=True, detail="select 1 answered")
    ready = all(c.ok for c in checks.values())
    body = ReadinessPublic(status="ready" if ready else "not_ready", checks=checks)
    return JSONResponse(status_code=200 if ready else 503, content=body.model_dump(mode="json"))


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}},
)
async def metrics(
    request: Request,
    database: DatabaseDep,
    registry: RegistryDep,
    api_metrics: Annotated[ApiMetrics, Depends(_api_metrics)],
) -> Response:
    await api_metrics.refresh_from_database(database)
    api_metrics.refresh_from_maintenance(getattr(request.app.state, "maintenance", None))
    return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
