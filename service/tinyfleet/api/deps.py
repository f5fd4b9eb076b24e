"""FastAPI dependencies and their `Annotated` aliases (the style of full-stack-fastapi-template).

Everything a route needs lives on ``app.state`` (set by :func:`tinyfleet.api.app.create_app`): the settings,
the :class:`~tinyfleet.store.db.Database`, the optional in-process ingest worker and the Prometheus registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.api.errors import InvalidParameterError, ServiceUnavailableError
from tinyfleet.config import Settings
from tinyfleet.ingest.service import IngestService
from tinyfleet.registry.storage import ArtifactStore, artifact_store_from_settings
from tinyfleet.rules.runtime import RulesRuntime
from tinyfleet.store.db import Database
from tinyfleet.wire import DEVICE_ID_PATTERN, validate_device_id
from tinyfleet.wire.errors import WireError


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_database(request: Request) -> Database:
    database: Database | None = request.app.state.database
    if database is None:  # only between create_app() and the lifespan's start
        raise ServiceUnavailableError("the database is not set up yet", code="starting")
    return database


def get_ingest(request: Request) -> IngestService | None:
    ingest: IngestService | None = request.app.state.ingest
    return ingest


def get_rules(request: Request) -> RulesRuntime | None:
    rules: RulesRuntime | None = getattr(request.app.state, "rules", None)
    return rules


async def get_write_session(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    """A unit of work that writes (alert ack/resolve): committed when the route returns, rolled back on error."""
    async with database.session() as session:
        yield session


def get_artifact_store(request: Request) -> ArtifactStore:
    """The model registry's artifact store, made from the settings on first use (kept on app.state)."""
    store: ArtifactStore | None = getattr(request.app.state, "artifact_store", None)
    if store is None:
        store = artifact_store_from_settings(request.app.state.settings)
        request.app.state.artifact_store = store
    return store


def get_registry(request: Request) -> CollectorRegistry:
    registry: CollectorRegistry = request.app.state.registry
    return registry


async def get_session(database: Annotated[Database, Depends(get_database)]) -> AsyncIterator[AsyncSession]:
    """A read-only unit of work: the API never writes, so the session is rolled back (closed) at the end."""
    async with database.sessionmaker() as session:
        yield session


def device_id_path(
    device_id: Annotated[
        str,
        Path(
            description="Device id (= MQTT username): 1-64 of A-Z a-z 0-9 . _ : - (alphanumeric first)",
            examples=["press-07"],
            json_schema_extra={"pattern": f"^{DEVICE_ID_PATTERN}$"},
        ),
    ],
) -> str:
    try:
        validate_device_id(device_id)
    except WireError as exc:
        raise InvalidParameterError(f"invalid device id: {exc.detail}", code="bad_device_id") from None
    return device_id


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
IngestDep = Annotated[IngestService | None, Depends(get_ingest)]
RegistryDep = Annotated[CollectorRegistry, Depends(get_registry)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
WriteSessionDep = Annotated[AsyncSession, Depends(get_write_session)]
RulesDep = Annotated[RulesRuntime | None, Depends(get_rules)]
DeviceIdDep = Annotated[str, Depends(device_id_path)]
ArtifactStoreDep = Annotated[ArtifactStore, Depends(get_artifact_store)]
