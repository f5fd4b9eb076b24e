"""API keys: create (token shown once), list, revoke. Admin scope only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from tinyfleet.api.audit import note
from tinyfleet.api.auth import AdminScope
from tinyfleet.api.deps import SessionDep, WriteSessionDep
from tinyfleet.api.fleet_schemas import ApiKeyCreate, ApiKeyCreatedPublic, ApiKeyPublic, ApiKeysPublic
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.fleet import api_keys

router = APIRouter(prefix=f"{API_PREFIX}/api-keys", tags=["api-keys"])

KeyRef = Annotated[
    str,
    Path(
        pattern=r"^([0-9]{1,18}|tfk_[0-9a-f]{8})$",
        description="Key id or public prefix",
        examples=["4", "tfk_3f9a1c2b"],
    ),
]


@router.get("", summary="API keys (never their tokens)")
async def list_api_keys(
    session: SessionDep,
    _principal: AdminScope,
    include_revoked: Annotated[bool, Query(description="Revoked keys too")] = True,
) -> ApiKeysPublic:
    keys = await api_keys.list_keys(session, include_revoked=include_revoked)
    return ApiKeysPublic(items=[ApiKeyPublic.model_validate(k) for k in keys])


@router.post(
    "",
    status_code=201,
    summary="Create an API key: the token is in this answer only",
    responses={422: {"model": ErrorResponse, "description": "Unknown scope"}},
)
async def create_api_key(
    request: Request, session: WriteSessionDep, principal: AdminScope, body: ApiKeyCreate
) -> ApiKeyCreatedPublic:
    new = await api_keys.create_key(session, body.name, body.scopes, created_by=principal.actor)
    public = ApiKeyCreatedPublic.model_validate(
        {**ApiKeyPublic.model_validate(new.key).model_dump(), "token": new.token}
    )
    await session.commit()
    note(request, created_key=public.prefix, scopes=public.scopes, name=public.name)
    return public


@router.delete(
    "/{key}",
    summary="Revoke an API key (it stops working at once; the row is kept)",
    responses={404: {"model": ErrorResponse, "description": "No such key"}},
)
async def revoke_api_key(
    request: Request, session: WriteSessionDep, _principal: AdminScope, key: KeyRef
) -> ApiKeyPublic:
    revoked = await api_keys.revoke_key(session, key)
    public = ApiKeyPublic.model_validate(revoked)
    await session.commit()
    note(request, revoked_key=public.prefix)
    return public
