"""Cohorts: saved tag selectors resolving to devices (write scope to change, read to list and resolve)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from tinyfleet.api.audit import note
from tinyfleet.api.auth import ReadScope, WriteScope
from tinyfleet.api.deps import SessionDep, WriteSessionDep
from tinyfleet.api.fleet_schemas import CohortCreate, CohortPublic, CohortsPublic, CohortUpdate
from tinyfleet.api.params import DEFAULT_PAGE, Cursor, Limit
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import DevicePublic, DevicesPublic, ErrorResponse
from tinyfleet.fleet import cohorts
from tinyfleet.store import queries

router = APIRouter(prefix=f"{API_PREFIX}/cohorts", tags=["cohorts"])

CohortName = Annotated[
    str, Path(pattern=f"^{cohorts.COHORT_NAME_PATTERN}$", description="Cohort name", examples=["plant-a-canary"])
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such cohort"}}
_BAD_QUERY: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorResponse, "description": "The selector does not parse"}
}


@router.get("", summary="All cohorts")
async def list_cohorts(session: SessionDep, _principal: ReadScope) -> CohortsPublic:
    return CohortsPublic(items=[CohortPublic.model_validate(c) for c in await cohorts.list_cohorts(session)])


@router.post(
    "",
    status_code=201,
    summary="Save a cohort (a named tag selector)",
    responses={409: {"model": ErrorResponse, "description": "A cohort of that name exists"}, **_BAD_QUERY},
)
async def create_cohort(
    request: Request, session: WriteSessionDep, _principal: WriteScope, body: CohortCreate
) -> CohortPublic:
    cohort = await cohorts.save_cohort(session, body.name, body.query, body.description, create=True)
    public = CohortPublic.model_validate(cohort)
    await session.commit()
    note(request, query=public.query)
    return public


@router.get("/{name}", summary="One cohort", responses=_NOT_FOUND)
async def get_cohort(session: SessionDep, _principal: ReadScope, name: CohortName) -> CohortPublic:
    return CohortPublic.model_validate(await cohorts.get_cohort(session, name))


@router.put("/{name}", summary="Create or replace a cohort's selector", responses=_BAD_QUERY)
async def put_cohort(
    request: Request, session: WriteSessionDep, _principal: WriteScope, name: CohortName, body: CohortUpdate
) -> CohortPublic:
    cohort = await cohorts.save_cohort(session, name, body.query, body.description, create=False)
    public = CohortPublic.model_validate(cohort)
    await session.commit()
    note(request, query=public.query)
    return public


@router.delete("/{name}", status_code=204, summary="Delete a cohort (devices are untouched)", responses=_NOT_FOUND)
async def delete_cohort(session: WriteSessionDep, _principal: WriteScope, name: CohortName) -> Response:
    await cohorts.delete_cohort(session, name)
    await session.commit()
    return Response(status_code=204)


@router.get("/{name}/devices", summary="The devices the cohort's selector resolves to now", responses=_NOT_FOUND)
async def cohort_devices(
    session: SessionDep,
    _principal: ReadScope,
    name: CohortName,
    include_decommissioned: Annotated[bool, Query(description="Decommissioned devices too")] = False,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> DevicesPublic:
    cohort = await cohorts.get_cohort(session, name)
    where = cohorts.device_condition(cohorts.selector_of(cohort), include_decommissioned=include_decommissioned)
    page = await queries.list_devices(session, limit=limit, cursor=cursor, where=where)
    return DevicesPublic(items=[DevicePublic.model_validate(d) for d in page.items], next_cursor=page.next_cursor)
