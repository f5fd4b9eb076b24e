"""Mounting the web UI on the FastAPI app: session middleware, static files, pages."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from tinyfleet.config import Settings
from tinyfleet.web.live import LiveFeed
from tinyfleet.web.routes import HERE, LoginRequired, login_redirect, router

log = logging.getLogger(__name__)

SESSION_COOKIE = "tinyfleet_session"


def session_secret(settings: Settings) -> str:
    """TINYFLEET_SESSION_SECRET; else a key derived from the admin API key (stable across workers and
    restarts); else a random one for this process (logins end when it restarts)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value()
    if settings.admin_api_key is not None:
        admin = settings.admin_api_key.get_secret_value().encode()
        return hmac.new(admin, b"tinyfleet web session v1", hashlib.sha256).hexdigest()
    log.info("no TINYFLEET_SESSION_SECRET: UI logins last until this process restarts")
    return secrets.token_urlsafe(32)


def install_web(app: FastAPI, settings: Settings, live: LiveFeed) -> None:
    app.state.live = live
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_s,
        same_site="strict",
        https_only=settings.session_https_only,
    )
    app.add_exception_handler(LoginRequired, login_redirect)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)
