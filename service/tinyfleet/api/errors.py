"""The API's own exceptions and how every error becomes ``{"error": {"code", "message"}}`` JSON.

Routes raise :class:`ApiError` subclasses (or let a store/wire error through, mapped here); FastAPI's request
validation errors become 422 with the offending parameters listed; anything unexpected is logged and answered
with a 500 of the same shape (never a stack trace).
"""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from tinyfleet.registry import errors as registry_errors
from tinyfleet.store.queries import InvalidCursor
from tinyfleet.wire.errors import WireError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details
        self.headers = headers


class NotFoundError(ApiError):
    status_code = 404
    code = "not_found"


class InvalidParameterError(ApiError):
    """A query or path parameter that parses but makes no sense (bad cursor, since > until, bad device id)."""

    status_code = 422
    code = "invalid_parameter"


class ServiceUnavailableError(ApiError):
    status_code = 503
    code = "unavailable"


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return {"error": body}


def _json(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        status_code=status, content=jsonable_encoder(error_body(code, message, details)), headers=headers
    )


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json(exc.status_code, exc.code, exc.message, exc.details, headers=exc.headers)


async def _invalid_cursor(_request: Request, exc: Exception) -> JSONResponse:
    return _json(422, "invalid_cursor", f"invalid cursor: {exc}; pass back the next_cursor of a previous page")


async def _wire_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WireError)
    return _json(422, exc.code.value, exc.detail)


def _describe_validation(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details: list[dict[str, Any]] = []
    parts: list[str] = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body", "header")]
        where = ".".join(loc) or "request"
        msg = str(err.get("msg", "invalid value"))
        details.append({"location": [str(p) for p in err.get("loc", ())], "message": msg, "type": err.get("type")})
        parts.append(f"{where}: {msg}")
    return "; ".join(parts) or "invalid request", details


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    message, details = _describe_validation(list(exc.errors()))
    return _json(422, "validation_error", message, details)


def _allowed_methods(request: Request) -> str | None:
    """Every method any route of this path takes (Starlette's own `Allow` names only the first such route's)."""
    # Of the routes whose template matches, the most specific (most literal characters) are the resource:
    # `POST /devices/{id:path}/enable` rather than `GET /devices/{id:path}`, which matches any longer path too.
    best = -1
    methods: set[str] = set()
    probe = {**request.scope, "method": "\x00"}
    pending: list[Any] = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        inner = getattr(route, "original_router", None)  # FastAPI's included routers hold the routes
        if inner is not None:
            pending.extend(inner.routes)
            continue
        match, _child = route.matches(probe)
        if match is Match.NONE:
            continue
        literal = len(re.sub(r"\{[^}]*\}", "", str(getattr(route, "path", ""))))
        if literal > best:
            best, methods = literal, set()
        if literal == best:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods)) or None


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    if exc.status_code == 400 and str(exc.detail).startswith("There was an error parsing the body"):
        # FastAPI's answer to a body that is not JSON: a validation error like any other (documented 422).
        return _json(422, "invalid_body", "the request body is not valid JSON")
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405 and (allow := _allowed_methods(request)) is not None:
        headers["Allow"] = allow
    return _json(exc.status_code, code, str(exc.detail), headers=headers or None)


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    orig = getattr(exc, "orig", None)
    if isinstance(orig, psycopg.DataError):  # a parameter the database could not take (out of range, NUL, …)
        return _json(422, "invalid_parameter", f"the database refused a parameter: {str(orig).strip()[:200]}")
    if isinstance(orig, psycopg.errors.UndefinedTable):
        log.error("database not migrated (%s); run `tinyfleet db upgrade`", str(orig).strip().splitlines()[0])
        return _json(503, "database_not_migrated", "the database has no tinyfleet tables: run `tinyfleet db upgrade`")
    if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.TimeoutError) or isinstance(
        orig, psycopg.OperationalError
    ):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return _json(503, "database_unavailable", "the database is unavailable; try again shortly")
    return await _unexpected(request, exc)


#: The model registry's errors (tinyfleet.registry.errors) as HTTP answers; the first matching class wins.
_REGISTRY_ERRORS: list[tuple[type[registry_errors.RegistryError], int, str]] = [
    (registry_errors.ModelInspectionError, 422, "invalid_model"),
    (registry_errors.InvalidModelCardError, 422, "invalid_model_card"),
    (registry_errors.VersionConflictError, 409, "version_exists"),
    (registry_errors.ModelNotFoundError, 404, "not_found"),
    (registry_errors.DeviceNotFoundError, 404, "not_found"),
    (registry_errors.ArtifactNotFoundError, 503, "artifact_missing"),
    (registry_errors.ArtifactStoreError, 503, "artifact_store_unavailable"),
]


async def _registry_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, registry_errors.RegistryError)
    for kind, status, code in _REGISTRY_ERRORS:
        if isinstance(exc, kind):
            if status >= 500:
                log.error("model registry on %s %s: %s", request.method, request.url.path, exc.message)
            return _json(status, code, exc.message)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json(500, "internal_error", "internal server error (logged)")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(WireError, _wire_error)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(registry_errors.RegistryError, _registry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(sa_exc.DBAPIError, _database_error)
    app.add_exception_handler(sa_exc.TimeoutError, _database_error)
    app.add_exception_handler(Exception, _unexpected)
