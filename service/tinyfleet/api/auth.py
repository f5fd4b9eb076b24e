"""API authentication: bearer API keys with scopes, and their `Annotated` dependency aliases.

    async def route(principal: WriteScope) -> ...     # 401 without a valid key, 403 without the scope

Scopes: ``read``, ``write`` (implies read), ``device-provisioning`` (implies read) and ``admin`` (everything).
Keys come from the ``api_keys`` table (see :mod:`tinyfleet.fleet.api_keys`) or ``TINYFLEET_ADMIN_API_KEY``.
In dev mode (``TINYFLEET_ENV=dev``) a GET from the loopback interface needs no key, so the quick start works
without one; every other request, and every request in prod, must carry a key.

The web UI logs in once (user/password or an API key, :mod:`tinyfleet.web.routes`) and then carries a signed
session cookie (Starlette's SessionMiddleware, SameSite=Strict) instead of a bearer token. The session holds
only the user's or key's id, re-checked on every request (a disabled user or a revoked key stops at once),
and a CSRF token: a request authenticated by the cookie that is not a GET/HEAD/OPTIONS must repeat that token
in the ``X-CSRF-Token`` header (or the form field ``csrf_token``), or it is refused with 403 ``csrf``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tinyfleet.api.errors import ApiError
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.config import Environment, Settings
from tinyfleet.fleet import api_keys, users
from tinyfleet.store.db import Database
from tinyfleet.store.models import API_KEY_SCOPES

#: Session keys: the logged-in user's id, or the API key's id, and the session's CSRF token.
SESSION_USER = "uid"
SESSION_KEY = "kid"
SESSION_CSRF = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

#: The ASGI scope key under which the audit middleware leaves a dict for the principal and route details.
AUDIT_SCOPE_KEY = "tinyfleet.audit"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key: `Authorization: Bearer tfk_…` (created with `tinyfleet api-keys create`)",
)

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "No API key, or an invalid or revoked one"},
    403: {"model": ErrorResponse, "description": "The API key lacks the scope this operation needs"},
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who makes the request: ``key:<id>``, ``admin-env`` (the configured admin key) or ``dev-localhost``."""

    actor: str
    scopes: frozenset[str]
    key_id: int | None = None
    key_prefix: str | None = None


class UnauthorizedError(ApiError):
    status_code = 401
    code = "unauthorized"


class ForbiddenError(ApiError):
    status_code = 403
    code = "forbidden"


class CsrfError(ForbiddenError):
    code = "csrf"


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="tinyfleet"'
    if error is not None:
        value += f', error="{error}"'
    return {"WWW-Authenticate": value}


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def note_principal(request: Request, principal: Principal) -> None:
    """Name the principal of this request for its audit row (the UI's login, which has no key yet)."""
    _note(request, principal)


def is_loopback_client(request: Request) -> bool:
    return _is_loopback(request.client.host if request.client is not None else None)


def _note(request: Request, principal: Principal) -> None:
    holder = request.scope.get(AUDIT_SCOPE_KEY)
    if isinstance(holder, dict):
        holder["principal"] = principal


def session_of(request: Request) -> dict[str, Any] | None:
    """The request's session (a dict) when the SessionMiddleware runs, else None."""
    session = request.scope.get("session")
    return session if isinstance(session, dict) else None


def csrf_token_matches(request: Request, given: str | None) -> bool:
    session = session_of(request)
    expected = session.get(SESSION_CSRF) if session is not None else None
    if not isinstance(expected, str) or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def configured_key_mark(token: str) -> str:
    """What a session keeps of the configured admin key: a digest, so changing the key ends such sessions."""
    return "env:" + api_keys.token_digest("tinyfleet-session:" + token)[:32]


async def session_principal(request: Request) -> Principal | None:
    """The principal a UI session cookie stands for (re-checked in the database), or None."""
    session = session_of(request)
    if not session:
        return None
    uid, kid = session.get(SESSION_USER), session.get(SESSION_KEY)
    if isinstance(kid, str):  # logged in with TINYFLEET_ADMIN_API_KEY: valid while that key is unchanged
        settings: Settings = request.app.state.settings
        if settings.admin_api_key is not None and hmac.compare_digest(
            kid, configured_key_mark(settings.admin_api_key.get_secret_value())
        ):
            return Principal("admin-env", frozenset(API_KEY_SCOPES))
        session.clear()
        return None
    if not isinstance(uid, int) and not isinstance(kid, int):
        return None
    database: Database | None = request.app.state.database
    if database is None:
        return None
    async with database.sessionmaker() as db:
        if isinstance(uid, int):
            user = await users.active_user(db, uid)
            if user is None:
                session.clear()
                return None
            return Principal(f"user:{user.username}", users.ROLE_SCOPES[user.role])
        if not isinstance(kid, int):
            return None
        key = await api_keys.key_by_id(db, kid)
        if key is None:
            session.clear()
            return None
        return Principal(f"key:{key.id}", api_keys.effective_scopes(key.scopes), key.id, key.prefix)


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal | None:
    """The principal of the request's bearer token, or of its UI session cookie; None without either; 401 for
    an unknown or revoked token; 403 ``csrf`` for a cookie-authenticated change without the CSRF token."""
    if credentials is None:
        principal = await session_principal(request)
        if (
            principal is not None
            and request.method not in SAFE_METHODS
            and not csrf_token_matches(request, request.headers.get(CSRF_HEADER))
        ):
            raise CsrfError("a change made with the UI's session needs its CSRF token (X-CSRF-Token)")
        return principal
    token = credentials.credentials
    settings: Settings = request.app.state.settings
    if settings.admin_api_key is not None and api_keys.matches_configured_key(
        token, settings.admin_api_key.get_secret_value()
    ):
        return Principal("admin-env", frozenset(API_KEY_SCOPES))
    database: Database | None = request.app.state.database
    if database is None:
        raise UnauthorizedError("the key store is not available yet", headers=_challenge())
    async with database.session() as session:
        key = await api_keys.authenticate(session, token)
        if key is None:
            raise UnauthorizedError("invalid or revoked API key", headers=_challenge("invalid_token"))
        return Principal(f"key:{key.id}", api_keys.effective_scopes(key.scopes), key.id, key.prefix)


def require_scope(scope: str) -> Any:
    """A dependency that answers 401/403 unless the request's key grants `scope`."""
    if scope not in API_KEY_SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    async def dependency(request: Request, principal: Annotated[Principal | None, Depends(authenticate)]) -> Principal:
        if principal is None:
            settings: Settings = request.app.state.settings
            client = request.client.host if request.client is not None else None
            if (
                scope == "read"
                and settings.env is Environment.DEV
                and request.method in ("GET", "HEAD")
                and _is_loopback(client)
            ):
                return Principal("dev-localhost", frozenset({"read"}))
            raise UnauthorizedError("an API key is required: send `Authorization: Bearer <key>`", headers=_challenge())
        _note(request, principal)
        if scope not in principal.scopes:
            raise ForbiddenError(f"this API key lacks the {scope!r} scope")
        return principal

    dependency.__name__ = f"require_{scope.replace('-', '_')}"
    return dependency


ReadScope = Annotated[Principal, Depends(require_scope("read"))]
WriteScope = Annotated[Principal, Depends(require_scope("write"))]
AdminScope = Annotated[Principal, Depends(require_scope("admin"))]
ProvisioningScope = Annotated[Principal, Depends(require_scope("device-provisioning"))]


async def _device_basic(request: Request) -> Principal | None:
    """A device authenticated by its own MQTT credentials as HTTP Basic (`device id : password`); None
    without a Basic header; 401 for refused credentials."""
    header = request.headers.get("authorization", "")
    if header[:6].lower() != "basic ":
        return None
    from tinyfleet.fleet.broker_http import check_login

    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise UnauthorizedError("malformed Basic credentials", headers=_challenge()) from None
    settings: Settings = request.app.state.settings
    database: Database | None = request.app.state.database
    if database is None:
        raise UnauthorizedError("the credential store is not available yet", headers=_challenge())
    async with database.session() as session:
        decision = await check_login(session, settings, user, password)
    if not decision.allow:
        raise UnauthorizedError(f"device credentials refused: {decision.reason}", headers=_challenge())
    principal = Principal(f"device:{user}", frozenset({"read"}))
    _note(request, principal)
    return principal


def device_of(principal: Principal) -> str | None:
    """The device id of a principal authenticated by device credentials (None for an API key)."""
    return principal.actor[len("device:") :] if principal.actor.startswith("device:") else None


async def device_or_read(request: Request, principal: Annotated[Principal | None, Depends(authenticate)]) -> Principal:
    """Artifact downloads: a read-scoped API key, or a device with its own MQTT credentials as HTTP Basic
    (`device id : password`), so a device needs no API key to fetch the model its manifest names."""
    if principal is not None:
        _note(request, principal)
        if "read" not in principal.scopes:
            raise ForbiddenError("this API key lacks the 'read' scope")
        return principal
    device = await _device_basic(request)
    if device is not None:
        return device
    read: Principal = await require_scope("read")(request, None)
    return read


async def device_or_write(request: Request, principal: Annotated[Principal | None, Depends(authenticate)]) -> Principal:
    """Uploads by a device (captures): the device's own MQTT credentials as HTTP Basic, or a write-scoped API
    key. Which device a device principal may write for is the route's check (:func:`device_of`)."""
    if principal is not None:
        _note(request, principal)
        if "write" not in principal.scopes:
            raise ForbiddenError("this API key lacks the 'write' scope")
        return principal
    device = await _device_basic(request)
    if device is not None:
        return device
    raise UnauthorizedError(
        "device credentials (HTTP Basic) or an API key (Bearer) are required", headers=_challenge()
    )


#: Read access for people (API key) and devices (their MQTT credentials as HTTP Basic).
DeviceOrReadScope = Annotated[Principal, Depends(device_or_read)]
#: Writes by devices (their MQTT credentials as HTTP Basic) and by write-scoped API keys.
DeviceOrWriteScope = Annotated[Principal, Depends(device_or_write)]
