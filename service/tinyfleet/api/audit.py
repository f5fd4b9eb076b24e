"""Audit middleware: every request that is not a GET/HEAD/OPTIONS and carried a valid key gets an `audit` row.

The row is written when the answer starts (so it exists before the client sees the answer), with the actor
(the key), the route template, the target (its path parameters), the status, and a summary: the query string
and whatever the route added with :func:`note` (never secrets: no passwords, no tokens).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tinyfleet.api.auth import AUDIT_SCOPE_KEY, Principal
from tinyfleet.fleet import audit
from tinyfleet.store.db import Database

log = logging.getLogger(__name__)

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: POSTs that change nothing: the broker's per-CONNECT auth checks (an audit row each would flood the table).
UNAUDITED_PREFIXES = ("/api/v1/broker/",)


def note(request: Request, **summary: Any) -> None:
    """Add details (counts, ids) to the audit row of this request."""
    holder = request.scope.get(AUDIT_SCOPE_KEY)
    if isinstance(holder, dict):
        holder.setdefault("summary", {}).update(summary)


class AuditMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope.get("method", "GET") in READ_METHODS
            or str(scope.get("path", "")).startswith(UNAUDITED_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        holder: dict[str, Any] = {}
        scope[AUDIT_SCOPE_KEY] = holder

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._record(scope, holder, int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_wrapper)

    async def _record(self, scope: Scope, holder: dict[str, Any], status: int) -> None:
        principal = holder.get("principal")
        if not isinstance(principal, Principal):
            return  # refused before a key was accepted (401): nothing was done
        route = scope.get("route")
        template = str(getattr(route, "path", None) or scope.get("path", ""))
        params = scope.get("path_params") or {}
        target = ",".join(str(v) for v in params.values()) or None
        summary: dict[str, Any] = {"path": scope.get("path")}
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            summary["query"] = query[:1000]
        if principal.key_prefix is not None:
            summary["key_prefix"] = principal.key_prefix
        summary.update(holder.get("summary", {}))
        database: Database | None = getattr(scope["app"].state, "database", None)
        if database is None:
            return
        try:
            async with database.engine.begin() as conn:
                await audit.record(
                    conn,
                    actor=principal.actor,
                    action=f"{scope.get('method')} {template}",
                    target=target,
                    status=status,
                    summary=summary,
                )
        except Exception:  # the change is done; losing its audit row must be loud, not fatal to the answer
            log.exception("could not write the audit row of %s %s", scope.get("method"), scope.get("path"))
