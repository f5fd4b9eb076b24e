"""Releases and rollouts as the API and the CLI see them: create, start, pause, resume, abort, status."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.fleet.cohorts import device_condition, get_cohort, selector_of
from tinyfleet.fleet.errors import FleetError
from tinyfleet.fleet.selectors import parse_selector
from tinyfleet.rollouts.controller import record_decision
from tinyfleet.rollouts.plan import RolloutPlan, assign_waves
from tinyfleet.rollouts.ports import ArtifactCatalog, ReleaseConflict, ReleaseNotFound, RolloutError
from tinyfleet.store.models import Device, OtaReport, Release, Rollout, RolloutDecision, RolloutDevice

#: Checks one device's capabilities against the release's artifact: a list of reasons it cannot run it.
CompatibilityCheck = Callable[[dict[str, Any] | None, Any], Sequence[str]]
#: Resolves a cohort selector to device ids.
CohortResolver = Callable[[AsyncSession, dict[str, Any]], Awaitable[list[str]]]


class CohortSelector(BaseModel):
    """Which devices a release is for. The parts given must all hold (AND); an empty selector means every
    device. Disabled and decommissioned devices are never part of a cohort."""

    model_config = ConfigDict(extra="forbid")

    cohort: str | None = Field(default=None, description="A saved cohort (`/api/v1/cohorts`) by name",
                               examples=["plant-a-presses"])  # fmt: skip
    query: str | None = Field(default=None, max_length=4096, description="A tag selector (docs/devices.md)",
                              examples=["site=plant-a AND line in (1,2)"])  # fmt: skip
    tags: dict[str, str] | None = Field(
        default=None, description="Tags every device must have", examples=[{"site": "plant-a"}]
    )
    devices: list[str] | None = Field(default=None, description="Device ids", examples=[["pump-0001"]])


async def _cohort_condition(session: AsyncSession, sel: CohortSelector) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = [Device.enabled.is_(True), Device.decommissioned_at.is_(None)]
    try:
        if sel.cohort is not None:
            conditions.append(device_condition(selector_of(await get_cohort(session, sel.cohort))))
        if sel.query is not None:
            conditions.append(device_condition(parse_selector(sel.query)))
    except FleetError as exc:
        raise RolloutError(f"cohort: {exc}") from exc
    if sel.devices is not None:
        conditions.append(Device.id.in_(sel.devices))
    if sel.tags:
        conditions.append(Device.tags.contains(sel.tags))
    return conditions


async def resolve_cohort(session: AsyncSession, selector: dict[str, Any]) -> list[str]:
    """The device ids a release's cohort selects now, in id order."""
    conditions = await _cohort_condition(session, CohortSelector.model_validate(selector))
    q = sa.select(Device.id).where(*conditions).order_by(Device.id)
    return list((await session.execute(q)).scalars())


async def create_release(
    session: AsyncSession,
    *,
    name: str,
    model: str,
    model_version: int,
    cohort: dict[str, Any],
    plan: RolloutPlan,
    catalog: ArtifactCatalog,
    component: str = "model",
    firmware_version: str | None = None,
    description: str | None = None,
    created_by: str | None = None,
) -> Release:
    if await catalog.artifact(model, model_version) is None:
        raise RolloutError(f"model {model} version {model_version} is not in the registry")
    await _cohort_condition(session, CohortSelector.model_validate(cohort))  # a bad query or cohort: 422 now
    release = Release(
        name=name,
        component=component,
        model=model,
        model_version=model_version,
        firmware_version=firmware_version,
        cohort=cohort,
        plan=plan.model_dump(mode="json"),
        description=description,
        created_by=created_by,
    )
    session.add(release)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ReleaseConflict(f"a release named {name!r} exists") from exc
    return release


async def get_release(session: AsyncSession, release_id: int) -> Release:
    release = await session.get(Release, release_id)
    if release is None:
        raise ReleaseNotFound(f"release {release_id} not found")
    return release


async def start_rollout(
    session: AsyncSession,
    release_id: int,
    *,
    catalog: ArtifactCatalog,
    resolve_cohort: CohortResolver = resolve_cohort,
    compatibility: CompatibilityCheck | None = None,
    actor: str = "api",
    now: datetime | None = None,
) -> Rollout:
    """Snapshot the cohort, put each device in its wave (or mark it current / incompatible), and start."""
    now = now or datetime.now(UTC)
    release = await get_release(session, release_id)
    plan = RolloutPlan.model_validate(release.plan)
    artifact = await catalog.artifact(release.model, release.model_version)
    if artifact is None:
        raise RolloutError(f"model {release.model} version {release.model_version} is not in the registry")
    device_ids = await resolve_cohort(session, release.cohort)
    if not device_ids:
        raise RolloutError("the release's cohort has no devices")
    rollout = Rollout(release_id=release.id, state="running", wave=0, wave_started_at=now, started_at=now,
                      updated_at=now)  # fmt: skip
    session.add(rollout)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ReleaseConflict(f"release {release_id} has a rollout under way") from exc
    devices = {d.id: d for d in (await session.execute(sa.select(Device).where(Device.id.in_(device_ids)))).scalars()}
    waves = assign_waves(rollout.id, device_ids, plan.waves)
    counts: Counter[str] = Counter()
    rows = []
    for device_id in device_ids:
        d = devices[device_id]
        status, reason = "pending", None
        if d.model == release.model and d.mver == release.model_version:
            status, reason = "current", "already runs this version"
        elif compatibility is not None:
            problems = compatibility(d.capabilities, artifact)
            if problems:
                status, reason = "skipped", "incompatible: " + "; ".join(problems)
        counts[status] += 1
        rows.append(
            {
                "rollout_id": rollout.id,
                "device_id": device_id,
                "wave": waves[device_id],
                "from_model": d.model,
                "from_version": d.mver,
                "status": status,
                "reason": reason,
                "status_at": now,
            }
        )
    await session.execute(sa.insert(RolloutDevice), rows)
    per_wave = Counter(waves.values())
    await record_decision(
        session, rollout.id, 0, "start", f"{len(device_ids)} device(s) in {len(plan.waves)} wave(s)",
        {"devices": len(device_ids), "per_wave": [per_wave[k] for k in range(len(plan.waves))],
         "statuses": dict(counts)},
        actor=actor, at=now,
    )  # fmt: skip
    return rollout


async def get_rollout(session: AsyncSession, rollout_id: int, *, lock: bool = False) -> Rollout:
    q = sa.select(Rollout).where(Rollout.id == rollout_id)
    if lock:
        q = q.with_for_update()
    rollout = (await session.execute(q)).scalar_one_or_none()
    if rollout is None:
        raise ReleaseNotFound(f"rollout {rollout_id} not found")
    return rollout


_TRANSITIONS = {
    "pause": ({"running"}, "paused"),
    "resume": ({"paused"}, "running"),
    "abort": ({"running", "paused", "rolling_back"}, "aborted"),
}


async def operate(session: AsyncSession, rollout_id: int, op: str, *, actor: str, reason: str | None = None
                  ) -> Rollout:  # fmt: skip
    """pause / resume / abort by an operator. An abort sends nothing more; what was sent stays."""
    allowed, target = _TRANSITIONS[op]
    rollout = await get_rollout(session, rollout_id, lock=True)
    if rollout.state not in allowed:
        raise ReleaseConflict(f"cannot {op} a rollout that is {rollout.state}")
    now = datetime.now(UTC)
    rollout.state = target
    rollout.updated_at = now
    rollout.reason = reason or f"{op} by {actor}"
    if op == "abort":
        rollout.finished_at = now
        await session.execute(
            sa.update(RolloutDevice)
            .where(RolloutDevice.rollout_id == rollout_id, RolloutDevice.status == "pending")
            .values(status="skipped", reason="rollout aborted", status_at=now)
        )
    if op == "resume":  # the soak of the current wave starts again: the pause may have hidden a problem
        rollout.wave_started_at = now
    await record_decision(session, rollout_id, rollout.wave, op, rollout.reason, None, actor=actor, at=now)
    return rollout


async def rollout_summary(session: AsyncSession, rollout_id: int) -> dict[str, Any]:
    rollout = await get_rollout(session, rollout_id)
    rows = await session.execute(
        sa.select(RolloutDevice.wave, RolloutDevice.status, sa.func.count())
        .where(RolloutDevice.rollout_id == rollout_id)
        .group_by(RolloutDevice.wave, RolloutDevice.status)
    )
    waves: dict[int, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    for wave, status, n in rows:
        waves.setdefault(int(wave), {})[str(status)] = int(n)
        totals[str(status)] += int(n)
    return {"rollout": rollout, "waves": waves, "totals": dict(totals)}


async def list_decisions(session: AsyncSession, rollout_id: int) -> list[RolloutDecision]:
    q = sa.select(RolloutDecision).where(RolloutDecision.rollout_id == rollout_id).order_by(RolloutDecision.id)
    return list((await session.execute(q)).scalars())


async def list_rollout_devices(
    session: AsyncSession, rollout_id: int, *, status: str | None = None, limit: int = 1000, after: str | None = None
) -> list[RolloutDevice]:
    q = sa.select(RolloutDevice).where(RolloutDevice.rollout_id == rollout_id)
    if status is not None:
        q = q.where(RolloutDevice.status == status)
    if after is not None:
        q = q.where(RolloutDevice.device_id > after)
    return list((await session.execute(q.order_by(RolloutDevice.device_id).limit(limit))).scalars())


async def list_releases(session: AsyncSession, limit: int = 100) -> list[Release]:
    q = sa.select(Release).order_by(Release.id.desc()).limit(limit)
    return list((await session.execute(q)).scalars())


async def list_rollouts(session: AsyncSession, *, state: str | None = None, limit: int = 100) -> list[Rollout]:
    q = sa.select(Rollout).order_by(Rollout.id.desc()).limit(limit)
    if state is not None:
        q = q.where(Rollout.state == state)
    return list((await session.execute(q)).scalars())


async def list_ota_reports(session: AsyncSession, device_id: str, limit: int = 100) -> list[OtaReport]:
    q = (
        sa.select(OtaReport)
        .where(OtaReport.device_id == device_id)
        .order_by(OtaReport.received_at.desc(), OtaReport.id.desc())
        .limit(limit)
    )
    return list((await session.execute(q)).scalars())
