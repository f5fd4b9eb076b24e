"""Registering and reading model versions: the functions the API routes and the CLI call.

Registering a version = inspect the bytes, check the card against them, measure the TFLM arena, store the
artifact (by SHA-256), insert the row. Versions are immutable: the same name + version with the same bytes
returns the existing row (idempotent), with other bytes raises :class:`VersionConflictError`.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.registry.analysis import analyze
from tinyfleet.registry.arena import DEFAULT_MAX_ARENA, DEFAULT_TIMEOUT_S, ArenaReport
from tinyfleet.registry.compat import Incompatibility, check_compatibility, unchecked_limits
from tinyfleet.registry.errors import (
    DeviceNotFoundError,
    InvalidModelCardError,
    ModelNotFoundError,
    VersionConflictError,
)
from tinyfleet.registry.inspect import ModelInspection, sha256_hex
from tinyfleet.registry.schemas import MAX_VERSION, MODEL_NAME_PATTERN, ModelCard
from tinyfleet.registry.storage import ArtifactStore
from tinyfleet.store.models import Device, ModelRecord, ModelVersion

_NAME = re.compile(MODEL_NAME_PATTERN)


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidModelCardError(f"invalid model name {name!r}: 1-64 of A-Z a-z 0-9 . _ - (alphanumeric first)")
    return name


def check_version_number(version: int) -> int:
    if not 0 <= version <= MAX_VERSION:
        raise InvalidModelCardError(f"invalid version {version}: an integer 0..{MAX_VERSION} (devices send a uint32)")
    return version


def check_card(card: ModelCard, inspection: ModelInspection) -> ModelCard:
    """Labels must name the classifier's classes, one each; a file's own labels fill in when none are given."""
    source = "given"
    if card.labels is None and inspection.embedded_labels is not None:
        card = card.model_copy(update={"labels": inspection.embedded_labels})
        source = "embedded in the file"
    if card.labels is not None:
        classes = inspection.class_count()
        shapes = ", ".join(str(o.shape) for o in inspection.outputs)
        if classes is None:
            raise InvalidModelCardError(
                f"labels {source}, but the model has no single output with a class dimension (outputs: {shapes})"
            )
        if len(card.labels) != classes:
            raise InvalidModelCardError(
                f"{len(card.labels)} labels {source}, but the output tensor {shapes} has {classes} classes"
            )
        if len(set(card.labels)) != len(card.labels):
            raise InvalidModelCardError("labels must be distinct")
    return card


@dataclass(frozen=True)
class Registered:
    version: ModelVersion
    created: bool


async def _existing(session: AsyncSession, name: str, version: int) -> ModelVersion | None:
    row: ModelVersion | None = await session.scalar(
        select(ModelVersion).where(ModelVersion.model_name == name, ModelVersion.version == version)
    )
    return row


def _same_or_conflict(existing: ModelVersion, sha256: str) -> Registered:
    if existing.sha256 != sha256:
        raise VersionConflictError(
            f"{existing.model_name} version {existing.version} exists with other content "
            f"(sha256 {existing.sha256[:12]}…, this file {sha256[:12]}…): versions are immutable, "
            "push it as a new version"
        )
    return Registered(existing, created=False)


async def register_version(
    session: AsyncSession,
    store: ArtifactStore,
    *,
    name: str,
    version: int,
    data: bytes,
    card: ModelCard,
    model_description: str | None = None,
    max_arena: int = DEFAULT_MAX_ARENA,
    arena_timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Registered:
    check_name(name)
    check_version_number(version)
    sha256 = sha256_hex(data)
    existing = await _existing(session, name, version)
    if existing is not None:  # before the costly part: a retried push answers at once
        return _same_or_conflict(existing, sha256)
    report = await asyncio.to_thread(analyze, data, max_arena=max_arena, timeout_s=arena_timeout_s)
    card = check_card(card, report.inspection)
    key = await asyncio.to_thread(store.put, data)

    await session.execute(
        insert(ModelRecord)
        .values(name=name, description=model_description or card.description)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    inspection = report.inspection
    row = ModelVersion(
        model_name=name,
        version=version,
        sha256=sha256,
        size=inspection.size,
        precision=inspection.precision,
        parameters=inspection.parameters,
        ops=[op.model_dump() for op in inspection.ops],
        arena_bytes=report.arena.arena_bytes if report.arena.loadable else None,
        arena=report.arena.model_dump(),
        inputs=[t.model_dump() for t in inspection.inputs],
        outputs=[t.model_dump() for t in inspection.outputs],
        labels=card.labels,
        card=card.model_dump(),
        inspection=inspection.model_dump(),
        storage_key=key,
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # a concurrent push of the same version won the race
        raced = await _existing(session, name, version)
        if raced is None:
            raise
        return _same_or_conflict(raced, sha256)
    await session.refresh(row)
    return Registered(row, created=True)


@dataclass(frozen=True)
class ModelSummary:
    record: ModelRecord
    versions: int
    latest_version: int | None


async def list_models(session: AsyncSession) -> list[ModelSummary]:
    stmt = (
        select(ModelRecord, func.count(ModelVersion.id), func.max(ModelVersion.version))
        .outerjoin(ModelVersion, ModelVersion.model_name == ModelRecord.name)
        .group_by(ModelRecord.name)
        .order_by(ModelRecord.name)
    )
    return [ModelSummary(record, int(count), latest) for record, count, latest in (await session.execute(stmt)).all()]


async def get_model(session: AsyncSession, name: str) -> ModelRecord:
    record = await session.get(ModelRecord, name)
    if record is None:
        raise ModelNotFoundError(f"model {name!r} not found")
    return record


async def list_versions(session: AsyncSession, name: str) -> list[ModelVersion]:
    await get_model(session, name)
    rows = await session.scalars(
        select(ModelVersion).where(ModelVersion.model_name == name).order_by(ModelVersion.version)
    )
    return list(rows)


async def get_version(session: AsyncSession, name: str, version: int) -> ModelVersion:
    row = await _existing(session, name, version)
    if row is None:
        await get_model(session, name)
        raise ModelNotFoundError(f"model {name!r} has no version {version}")
    return row


@dataclass(frozen=True)
class Compatibility:
    device_id: str
    incompatibilities: list[Incompatibility]
    unchecked: list[str]


def device_capabilities(device: Device) -> dict[str, Any]:
    """The device's reported caps plus its firmware version, as :func:`check_compatibility` takes them."""
    caps = dict(device.capabilities or {})
    if device.firmware is not None:
        caps.setdefault("firmware", device.firmware)
    return caps


async def compatibility(session: AsyncSession, version: ModelVersion, device_id: str) -> Compatibility:
    device = await session.get(Device, device_id)
    if device is None:
        raise DeviceNotFoundError(f"device {device_id!r} not found")
    caps = device_capabilities(device)
    return Compatibility(device_id, check_compatibility(version, caps), unchecked_limits(version, caps))


def arena_of(version: ModelVersion) -> ArenaReport:
    return ArenaReport.model_validate(version.arena)
