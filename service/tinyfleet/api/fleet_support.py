"""What the fleet routes share: fleet errors as API errors, and the broker sync after a committed change."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc

from tinyfleet.api.errors import error_body
from tinyfleet.fleet import errors as fe
from tinyfleet.fleet.api_keys import InvalidScopes
from tinyfleet.fleet.broker_auth import BrokerAuth
from tinyfleet.fleet.commands import CommandNotSent
from tinyfleet.store.db import Database

log = logging.getLogger(__name__)

_STATUS: list[tuple[type[fe.FleetError], int, str]] = [
    (fe.DeviceNotFound, 404, "not_found"),
    (fe.CohortNotFound, 404, "not_found"),
    (fe.ApiKeyNotFound, 404, "not_found"),
    (fe.DeviceConflict, 409, "device_state"),
    (fe.CohortConflict, 409, "cohort_exists"),
    (fe.InvalidDeviceInput, 422, "invalid_device"),
    (fe.InvalidSelector, 422, "invalid_selector"),
    (InvalidScopes, 422, "invalid_scopes"),
    (fe.UserNotFound, 404, "not_found"),
    (fe.UserConflict, 409, "user_exists"),
    (fe.InvalidUserInput, 422, "invalid_user"),
    (fe.BrokerSyncError, 502, "broker_sync_failed"),
    (CommandNotSent, 502, "command_not_sent"),
]


async def _fleet_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, fe.FleetError)
    for cls, status, code in _STATUS:
        if isinstance(exc, cls):
            return JSONResponse(status_code=status, content=error_body(code, exc.message, exc.details))
    return JSONResponse(status_code=400, content=error_body("fleet_error", exc.message, exc.details))


async def _integrity_error(_request: Request, exc: Exception) -> JSONResponse:
    # Two requests provisioning the same id (or saving the same cohort) at once: the database's unique
    # constraints keep one; the other is told to look again rather than getting a 500.
    log.info("unique constraint refused a concurrent change: %s", str(getattr(exc, "orig", exc)).strip()[:200])
    return JSONResponse(
        status_code=409, content=error_body("conflict", "a concurrent request made the same change; read and retry")
    )


def install_fleet_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(fe.FleetError, _fleet_error)
    app.add_exception_handler(sa_exc.IntegrityError, _integrity_error)


async def sync_broker(request: Request) -> bool | None:
    """Rewrite the broker's files from the committed state and reload it: True when done, None when the files
    are not managed, False when it failed (logged; the change itself is saved and the next sync applies it)."""
    broker: BrokerAuth | None = getattr(request.app.state, "broker_auth", None)
    database: Database | None = request.app.state.database
    if broker is None or not broker.managed or database is None:
        return None
    try:
        async with database.engine.connect() as conn:
            await broker.sync(conn)
    except fe.BrokerSyncError as exc:
        log.error("%s; the change is saved, run `tinyfleet devices sync-broker` once the problem is fixed", exc)
        return False
    return True
