"""A router whose 405 answers list every method of the path.

Starlette asks only the first route of a path, so a path with separate GET and POST (or PUT) routes would
answer a wrong method with `Allow: POST` alone; a client (and schemathesis) then believe GET is not there.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Receive, Scope, Send


def all_methods_router(**kwargs: Any) -> APIRouter:
    """An `APIRouter(**kwargs)` whose routes answer 405 with every method of their path in `Allow`."""
    holder: list[APIRouter] = []

    class AllMethodsRoute(APIRoute):
        async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
            if self.methods and scope["method"] not in self.methods:
                methods = set(self.methods)
                for route in holder[0].routes:
                    if isinstance(route, APIRoute) and route.path == self.path and route.methods:
                        methods |= route.methods
                raise StarletteHTTPException(405, headers={"Allow": ", ".join(sorted(methods))})
            await super().handle(scope, receive, send)

    router = APIRouter(route_class=AllMethodsRoute, **kwargs)
    holder.append(router)
    return router
