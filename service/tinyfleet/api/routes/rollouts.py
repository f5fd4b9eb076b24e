"""Releases and their staged rollouts: create, start, watch, pause / resume / abort (docs/rollouts.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from tinyfleet.api.auth import ReadScope, WriteScope
from tinyfleet.api.deps import DeviceIdDep, SessionDep, WriteSessionDep
from tinyfleet.api.errors import ApiError, InvalidParameterError, NotFoundError, ServiceUnavailableError
from tinyfleet.api.rollout_schemas import (
    OtaPublicKeyPublic,
    OtaReportPublic,
    OtaReportsPublic,
    ReleaseCreate,
    ReleasePublic,
    ReleasesPublic,
    RolloutDecisionPublic,
    RolloutDecisionsPublic,
    RolloutDevicePublic,
    RolloutDevicesPublic,
    RolloutOperation,
    RolloutPublic,
    RolloutsPublic,
)
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.ota.keys import PublicKeyFormat, export_public_key
from tinyfleet.rollouts import service
from tinyfleet.rollouts.context import RolloutsContext
from tinyfleet.rollouts.ports import ReleaseConflict, ReleaseNotFound, RolloutError
from tinyfleet.store.models import ROLLOUT_DEVICE_STATES
from tinyfleet_device.manifest import key_id, raw_public_key

router = APIRouter(prefix=API_PREFIX, tags=["rollouts"])

ReleaseId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Release id", examples=[3])]
RolloutId = Annotated[int, Path(ge=1, le=2**63 - 1, description="Rollout id", examples=[7])]


class RolloutConflictError(ApiError):
    status_code = 409
    code = "rollout_state"


def get_context(request: Request) -> RolloutsContext:
    ctx: RolloutsContext | None = getattr(request.app.state, "rollouts", None)
    if ctx is None:
        raise ServiceUnavailableError("rollouts are not enabled in this service", code="rollouts_disabled")
    return ctx


ContextDep = Annotated[RolloutsContext, Depends(get_context)]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such release or rollout"}}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: {"description": "Not possible in the current state"}}


def _rollout_public(summary: dict[str, object]) -> RolloutPublic:
    base = RolloutPublic.model_validate(summary["rollout"])
    return base.model_copy(update={"waves": summary["waves"], "totals": summary["totals"]})


@router.post(
    "/releases",
    status_code=201,
    summary="Create a release: a model version for a cohort, with its plan",
    responses={**_CONFLICT, 422: {"description": "Invalid plan, or the model version is not registered"}},
)
async def create_release(
    body: ReleaseCreate, session: WriteSessionDep, ctx: ContextDep, principal: WriteScope
) -> ReleasePublic:
    try:
        release = await service.create_release(
            session, name=body.name, model=body.model, model_version=body.model_version,
            cohort=body.cohort.model_dump(exclude_none=True), plan=body.plan, catalog=ctx.catalog,
            component=body.component, firmware_version=body.firmware_version, description=body.description,
            created_by=principal.actor,
        )  # fmt: skip
    except ReleaseConflict as exc:
        raise RolloutConflictError(str(exc)) from None
    except RolloutError as exc:
        raise InvalidParameterError(str(exc), code="bad_release") from None
    return ReleasePublic.model_validate(release)


@router.get("/releases", summary="Releases, newest first")
async def list_releases(
    session: SessionDep, _principal: ReadScope, limit: Annotated[int, Query(ge=1, le=500)] = 100
) -> ReleasesPublic:
    return ReleasesPublic(items=[ReleasePublic.model_validate(r) for r in await service.list_releases(session, limit)])


@router.get("/releases/{release_id}", summary="One release", responses=_NOT_FOUND)
async def get_release(session: SessionDep, _principal: ReadScope, release_id: ReleaseId) -> ReleasePublic:
    try:
        return ReleasePublic.model_validate(await service.get_release(session, release_id))
    except ReleaseNotFound as exc:
        raise NotFoundError(str(exc)) from None


@router.post(
    "/releases/{release_id}/rollouts",
    status_code=201,
    summary="Start the staged rollout of a release",
    responses={**_NOT_FOUND, **_CONFLICT, 422: {"description": "Empty cohort or unregistered version"}},
)
async def start_rollout(
    session: WriteSessionDep, ctx: ContextDep, principal: WriteScope, release_id: ReleaseId
) -> RolloutPublic:
    try:
        rollout = await service.start_rollout(
            session, release_id, catalog=ctx.catalog, resolve_cohort=ctx.resolve_cohort,
            compatibility=ctx.compatibility, actor=principal.actor,
        )  # fmt: skip
        summary = await service.rollout_summary(session, rollout.id)
    except ReleaseNotFound as exc:
        raise NotFoundError(str(exc)) from None
    except ReleaseConflict as exc:
        raise RolloutConflictError(str(exc)) from None
    except RolloutError as exc:
        raise InvalidParameterError(str(exc), code="bad_rollout") from None
    await session.commit()
    ctx.wake()
    return _rollout_public(summary)


@router.get("/rollouts", summary="Rollouts, newest first")
async def list_rollouts(
    session: SessionDep,
    _principal: ReadScope,
    state: Annotated[str | None, Query(pattern="^(running|paused|completed|aborted|rolling_back|rolled_back)$")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> RolloutsPublic:
    items = []
    for r in await service.list_rollouts(session, state=state, limit=limit):
        items.append(_rollout_public(await service.rollout_summary(session, r.id)))
    return RolloutsPublic(items=items)


@router.get("/rollouts/{rollout_id}", summary="A rollout: state, current wave, devices per status and wave",
            responses=_NOT_FOUND)  # fmt: skip
async def get_rollout(session: SessionDep, _principal: ReadScope, rollout_id: RolloutId) -> RolloutPublic:
    try:
        return _rollout_public(await service.rollout_summary(session, rollout_id))
    except ReleaseNotFound as exc:
        raise NotFoundError(str(exc)) from None


@router.get("/rollouts/{rollout_id}/devices", summary="Per-device status of a rollout", responses=_NOT_FOUND)
async def rollout_devices(
    session: SessionDep,
    _principal: ReadScope,
    rollout_id: RolloutId,
    status: Annotated[str | None, Query(pattern=f"^({'|'.join(ROLLOUT_DEVICE_STATES)})$")] = None,
    after: Annotated[str | None, Query(max_length=64, description="Device id to continue after")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> RolloutDevicesPublic:
    try:
        await service.get_rollout(session, rollout_id)
    except ReleaseNotFound as exc:
        raise NotFoundError(str(exc)) from None
    rows = await service.list_rollout_devices(session, rollout_id, status=status, limit=limit, after=after)
    return RolloutDevicesPublic(
        items=[RolloutDevicePublic.model_validate(r) for r in rows],
        next_after=rows[-1].device_id if len(rows) == limit else None,
    )


@router.get("/rollouts/{rollout_id}/decisions", summary="Every decision of a rollout with its evidence",
            responses=_NOT_FOUND)  # fmt: skip
async def rollout_decisions(
    session: SessionDep, _principal: ReadScope, rollout_id: RolloutId
) -> RolloutDecisionsPublic:
    try:
        await service.get_rollout(session, rollout_id)
    except ReleaseNotFound as exc:
        raise NotFoundError(str(exc)) from None
    rows = await service.list_decisions(session, rollout_id)
    return RolloutDecisionsPublic(items=[RolloutDecisionPublic.model_validate(r) for r in rows])


async def _operate(session: WriteSessionDep, ctx: RolloutsContext, rollout_id: int, op: str,
                   body: RolloutOperation | None, actor: str) -> RolloutPublic:  # fmt: skip
    try:
        await service.operate(session, rollout_id, op, actor=actor, reason=body.reason if body else None)
        summary = await service.rollout_summary(session, rollout_id)
    except ReleaseNotFound as exc:
        raise NotFoundError(str(exc)) from None
    except ReleaseConflict as exc:
        raise RolloutConflictError(str(exc)) from None
    await session.commit()
    ctx.wake()
    return _rollout_public(summary)


@router.post("/rollouts/{rollout_id}/pause", summary="Pause: send nothing more, advance no wave",
             responses={**_NOT_FOUND, **_CONFLICT})  # fmt: skip
async def pause(session: WriteSessionDep, ctx: ContextDep, principal: WriteScope, rollout_id: RolloutId,
                body: RolloutOperation | None = None) -> RolloutPublic:  # fmt: skip
    return await _operate(session, ctx, rollout_id, "pause", body, principal.actor)


@router.post("/rollouts/{rollout_id}/resume", summary="Resume a paused rollout (the wave's soak starts again)",
             responses={**_NOT_FOUND, **_CONFLICT})  # fmt: skip
async def resume(session: WriteSessionDep, ctx: ContextDep, principal: WriteScope, rollout_id: RolloutId,
                 body: RolloutOperation | None = None) -> RolloutPublic:  # fmt: skip
    return await _operate(session, ctx, rollout_id, "resume", body, principal.actor)


@router.post("/rollouts/{rollout_id}/abort", summary="Abort: stop for good (what was sent stays; no rollback)",
             responses={**_NOT_FOUND, **_CONFLICT})  # fmt: skip
async def abort(session: WriteSessionDep, ctx: ContextDep, principal: WriteScope, rollout_id: RolloutId,
                body: RolloutOperation | None = None) -> RolloutPublic:  # fmt: skip
    return await _operate(session, ctx, rollout_id, "abort", body, principal.actor)


@router.get("/devices/{device_id}/ota-reports", tags=["devices"], summary="A device's OTA status reports, newest "
            "first (downloading, verified, applied, failed + reason)")  # fmt: skip
async def ota_reports(
    session: SessionDep,
    _principal: ReadScope,
    device_id: DeviceIdDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> OtaReportsPublic:
    rows = await service.list_ota_reports(session, device_id, limit)
    return OtaReportsPublic(items=[OtaReportPublic.model_validate(r) for r in rows])


@router.get("/ota/public-key", tags=["rollouts"], summary="The public key devices verify manifests with",
            responses={404: {"model": ErrorResponse, "description": "No signing key is configured"}})  # fmt: skip
async def public_key(ctx: ContextDep) -> OtaPublicKeyPublic:
    if ctx.public_key is None:
        raise NotFoundError("no OTA signing key is configured (TINYFLEET_OTA_SIGNING_KEY_FILE)", code="no_signing_key")
    raw = raw_public_key(ctx.public_key)
    return OtaPublicKeyPublic(
        kid=key_id(raw).hex(), hex=raw.hex(), pem=export_public_key(ctx.public_key, PublicKeyFormat.PEM)
    )
