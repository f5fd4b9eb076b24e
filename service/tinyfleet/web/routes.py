"""The web UI's pages (Jinja2), its login/logout, the overview's JSON and the live stream (SSE).

Pages are server-rendered shells: layout, navigation, who is logged in, the CSRF token and the forms; the
small script layer (`static/app.js`) fills them from the same REST API the CLI and integrations use, with
the session cookie instead of a bearer token, and draws the charts as SVG. There is no build step and
nothing is fetched from outside: the UI works offline.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates

import tinyfleet
from tinyfleet.api.auth import (
    SESSION_CSRF,
    SESSION_KEY,
    SESSION_USER,
    Principal,
    ReadScope,
    configured_key_mark,
    csrf_token_matches,
    is_loopback_client,
    note_principal,
    session_of,
    session_principal,
)
from tinyfleet.api.deps import SessionDep, get_database
from tinyfleet.config import Environment, Settings
from tinyfleet.fleet import api_keys, users
from tinyfleet.store.db import Database
from tinyfleet.store.models import API_KEY_SCOPES
from tinyfleet.web import queries
from tinyfleet.web.live import LiveFeed, LiveFeedError
from tinyfleet.wire import DEVICE_ID_PATTERN

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
router = APIRouter(include_in_schema=False)

#: Content-Security-Policy of every page: nothing but this origin (no inline script, no CDN).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
KEEPALIVE_S = 15.0
NAV = (
    ("overview", "/", "Fleet"),
    ("alerts", "/alerts", "Alerts"),
    ("rules", "/rules", "Rules"),
    ("models", "/models", "Models & rollouts"),
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks at a page: a logged-in user or key, or (dev mode, loopback) an anonymous reader."""

    actor: str
    scopes: frozenset[str]
    logged_in: bool

    @property
    def role(self) -> str:
        if "admin" in self.scopes:
            return "admin"
        if "write" in self.scopes:
            return "operator"
        return "read-only"

    @property
    def name(self) -> str:
        return self.actor.partition(":")[2] or self.actor

    @property
    def can_write(self) -> bool:
        return self.logged_in and "write" in self.scopes


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


def csrf_token(request: Request) -> str:
    session = session_of(request)
    if session is None:
        return ""
    token = session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session[SESSION_CSRF] = token
    return token


async def viewer(request: Request) -> Viewer:
    principal = await session_principal(request)
    if principal is not None:
        return Viewer(principal.actor, principal.scopes, True)
    settings: Settings = request.app.state.settings
    if settings.env is Environment.DEV and is_loopback_client(request):
        return Viewer("dev-localhost", frozenset({"read"}), False)
    raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query else ""))


ViewerDep = Annotated[Viewer, Depends(viewer)]


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def render(
    request: Request, template: str, who: Viewer | None, page: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "viewer": who,
            "page": page,
            "nav": NAV,
            "csrf_token": csrf_token(request),
            "version": tinyfleet.__version__,
            "dev": request.app.state.settings.env is Environment.DEV,
            **context,
        },
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    return response


# ------------------------------------------------------------------------------------------------- pages
@router.get("/", response_class=HTMLResponse)
async def overview_page(request: Request, who: ViewerDep) -> HTMLResponse:
    return render(request, "overview.html", who, "overview")


@router.get("/devices/{device_id}", response_class=HTMLResponse)
async def device_page(request: Request, who: ViewerDep, device_id: str) -> HTMLResponse:
    if not re.fullmatch(DEVICE_ID_PATTERN, device_id):
        return render(request, "error.html", who, "overview", message=f"not a device id: {device_id!r}")
    return render(request, "device.html", who, "overview", device_id=device_id)


@router.get("/alerts", response_class=HTMLResponse)
async def alerts_page(request: Request, who: ViewerDep) -> HTMLResponse:
    return render(request, "alerts.html", who, "alerts")


@router.get("/rules", response_class=HTMLResponse)
async def rules_page(request: Request, who: ViewerDep) -> HTMLResponse:
    return render(request, "rules.html", who, "rules")


@router.get("/models", response_class=HTMLResponse)
async def models_page(request: Request, who: ViewerDep) -> HTMLResponse:
    return render(request, "models.html", who, "models")


@router.get("/rollouts/{rollout_id}", response_class=HTMLResponse)
async def rollout_page(request: Request, who: ViewerDep, rollout_id: int) -> HTMLResponse:
    return render(request, "rollout.html", who, "models", rollout_id=rollout_id)


# ------------------------------------------------------------------------------------------ login, logout
@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None, error: str | None = None) -> HTMLResponse:
    principal = await session_principal(request)
    who = Viewer(principal.actor, principal.scopes, True) if principal is not None else None
    return render(request, "login.html", who, "login", next=_safe_next(next), error=error)


def _login_failed(request: Request, message: str, next_url: str, status: int = 401) -> HTMLResponse:
    return render(request, "login.html", None, "login", next=next_url, error=message, status_code=status)


@router.post("/login")
async def login(
    request: Request,
    csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "",
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    api_key: Annotated[str, Form()] = "",
    next_url: Annotated[str, Form(alias="next")] = "/",
) -> Response:
    target = _safe_next(next_url)
    if not csrf_token_matches(request, csrf_token_field):
        return _login_failed(request, "The form expired: please log in again.", target, 403)
    database: Database = get_database(request)
    session = session_of(request)
    assert session is not None
    principal: Principal | None = None
    async with database.session() as db:
        token = api_key.strip()
        settings: Settings = request.app.state.settings
        if token and settings.admin_api_key is not None and api_keys.matches_configured_key(
            token, settings.admin_api_key.get_secret_value()
        ):
            principal = Principal("admin-env", frozenset(API_KEY_SCOPES))
            new_session: dict[str, Any] = {SESSION_KEY: configured_key_mark(token)}
        elif token:
            key = await api_keys.authenticate(db, token)
            if key is not None:
                principal = Principal(f"key:{key.id}", api_keys.effective_scopes(key.scopes), key.id, key.prefix)
                new_session = {SESSION_KEY: key.id}
        elif username:
            user = await users.authenticate(db, username, password)
            if user is not None:
                principal = Principal(f"user:{user.username}", users.ROLE_SCOPES[user.role])
                new_session = {SESSION_USER: user.id}
    if principal is None:
        log.warning("UI login refused for %s from %s", username or "an API key",
                    request.client.host if request.client else "?")  # fmt: skip
        return _login_failed(request, "Wrong user name or password, or an invalid API key.", target)
    note_principal(request, principal)
    session.clear()  # a new session (and CSRF token) at every login: no fixation
    session.update(new_session)
    session[SESSION_CSRF] = secrets.token_urlsafe(32)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request, csrf_token_field: Annotated[str, Form(alias="csrf_token")] = "") -> Response:
    if not csrf_token_matches(request, csrf_token_field):
        return JSONResponse({"error": {"code": "csrf", "message": "missing or wrong CSRF token"}}, status_code=403)
    principal = await session_principal(request)
    if principal is not None:
        note_principal(request, principal)
    session = session_of(request)
    if session is not None:
        session.clear()
    return RedirectResponse("/login", status_code=303)


# --------------------------------------------------------------------------------------------- data feeds
@router.get("/ui/overview.json")
async def overview_json(session: SessionDep, _principal: ReadScope) -> JSONResponse:
    return JSONResponse(await queries.overview(session), headers={"Cache-Control": "no-store"})


def _sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


@router.get("/ui/stream")
async def live_stream(
    request: Request,
    _principal: ReadScope,
    device: Annotated[str | None, Query(pattern=f"^{DEVICE_ID_PATTERN}$")] = None,
) -> Response:
    """Server-sent events: `events` after each ingest commit (the device's, or a sample of the fleet's),
    `reload` when this browser fell behind, a comment every 15 s to keep proxies from closing it."""
    feed: LiveFeed = request.app.state.live
    try:
        subscription = feed.subscribe(device)
        sub = await subscription.__aenter__()
    except LiveFeedError as exc:
        return JSONResponse({"error": {"code": "unavailable", "message": str(exc)}}, status_code=503)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield b"retry: 3000\n" + _sse("hello", {"device": device, "live": request.app.state.ingest is not None})
            messages = aiter(sub)
            while True:
                try:
                    message = await asyncio.wait_for(anext(messages), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                except StopAsyncIteration:
                    yield _sse("bye", {})
                    return
                yield _sse(str(message.get("type", "events")), message)
        finally:
            with contextlib.suppress(Exception):
                await subscription.__aexit__(None, None, None)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def login_redirect(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LoginRequired)
    return RedirectResponse(f"/login?next={quote(exc.next_url, safe='/')}", status_code=303)
