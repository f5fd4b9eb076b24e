"""Device provisioning and lifecycle: register (one or a CSV of many), tags, enable/disable, decommission,
credential rotation. Functions work in the caller's session (the caller commits, then syncs the broker).

A device's MQTT username is its id; its password is generated here, returned once and only its Mosquitto hash
is stored. At most one credential is active per device; rotating or decommissioning revokes it (rows are kept).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.fleet.errors import DeviceConflict, DeviceNotFound, InvalidDeviceInput
from tinyfleet.fleet.passwords import generate_password, mosquitto_hash
from tinyfleet.fleet.selectors import TAG_KEY_PATTERN
from tinyfleet.store.models import Device, DeviceCredential
from tinyfleet.wire import validate_device_id
from tinyfleet.wire.errors import WireError

MAX_TAGS = 64
MAX_TAG_VALUE = 256
MAX_CSV_ROWS = 10_000
#: CSV columns that are not tags.
CSV_ID_COLUMNS = ("device_id", "id")
_TAG_KEY = re.compile(TAG_KEY_PATTERN)

TagValue = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Provisioned:
    device: Device
    password: str

    @property
    def username(self) -> str:
        return self.device.id


def check_device_id(device_id: str) -> str:
    try:
        return validate_device_id(device_id)
    except WireError as exc:
        raise InvalidDeviceInput(f"invalid device id: {exc.detail}") from exc


def check_tags(tags: dict[str, Any], *, allow_null: bool = False) -> dict[str, Any]:
    """Tags are flat: names like ``site`` or ``line_2``, values text (≤ 256), numbers or booleans."""
    if len(tags) > MAX_TAGS:
        raise InvalidDeviceInput(f"at most {MAX_TAGS} tags per device")
    for key, value in tags.items():
        if not _TAG_KEY.fullmatch(key):
            raise InvalidDeviceInput(f"invalid tag name {key!r}: must match {TAG_KEY_PATTERN}")
        if value is None and allow_null:
            continue
        if not isinstance(value, str | int | float | bool):
            raise InvalidDeviceInput(f"tag {key!r}: value must be text, a number or a boolean")
        if isinstance(value, str) and (len(value) > MAX_TAG_VALUE or "\x00" in value):
            raise InvalidDeviceInput(f"tag {key!r}: value longer than {MAX_TAG_VALUE} characters or has NUL")
    return tags


async def _lock_device(session: AsyncSession, device_id: str) -> Device | None:
    return (await session.scalars(sa.select(Device).where(Device.id == device_id).with_for_update())).first()


async def get_device(session: AsyncSession, device_id: str) -> Device:
    device = await session.get(Device, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id!r} not found")
    return device


async def _active_credential(session: AsyncSession, device_id: str) -> DeviceCredential | None:
    query = sa.select(DeviceCredential).where(
        DeviceCredential.device_id == device_id, DeviceCredential.revoked_at.is_(None)
    )
    return (await session.scalars(query.with_for_update())).first()


async def _problem(session: AsyncSession, device: Device | None) -> str | None:
    """Why `device` cannot be provisioned, or None."""
    if device is None:
        return None
    if device.decommissioned_at is not None:
        return f"device {device.id!r} is decommissioned; ids are not reused"
    if await _active_credential(session, device.id) is not None:
        return f"device {device.id!r} is already provisioned (rotate its credentials instead)"
    return None


async def _provision_one(session: AsyncSession, device_id: str, tags: dict[str, Any]) -> Provisioned:
    # A device the ingest has seen without credentials (an open broker in dev) is adopted, keeping its history.
    await session.execute(
        pg_insert(Device).values(id=device_id, tags={}, enabled=True).on_conflict_do_nothing(index_elements=["id"])
    )
    device = await _lock_device(session, device_id)
    assert device is not None
    problem = await _problem(session, device)
    if problem is not None:
        raise DeviceConflict(problem)
    password = generate_password()
    session.add(DeviceCredential(device_id=device_id, password_hash=mosquitto_hash(password)))
    device.tags = {**(device.tags or {}), **tags}
    device.enabled = True
    device.provisioned_at = sa.func.now()
    await session.flush()
    await session.refresh(device)
    return Provisioned(device, password)


async def provision(session: AsyncSession, device_id: str, tags: dict[str, Any] | None = None) -> Provisioned:
    """Register one device and give it a password (returned once)."""
    check_device_id(device_id)
    return await _provision_one(session, device_id, check_tags(dict(tags or {})))


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int
    device_id: str
    tags: dict[str, str]


def parse_csv(text: str) -> list[CsvRow]:
    """Rows of a provisioning CSV: a header with ``device_id`` (or ``id``), every other column a tag (empty
    cells give no tag). Raises :class:`InvalidDeviceInput` listing every bad row."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidDeviceInput("empty CSV: expected a header line with a device_id column") from None
    except csv.Error as exc:
        raise InvalidDeviceInput(f"unreadable CSV header: {exc}") from exc
    names = [h.strip() for h in header]
    id_cols = [i for i, n in enumerate(names) if n in CSV_ID_COLUMNS]
    if len(id_cols) != 1:
        raise InvalidDeviceInput(f"the CSV header needs exactly one device_id column, got {names!r}")
    id_col = id_cols[0]
    errors: list[dict[str, Any]] = []
    for i, n in enumerate(names):
        if i != id_col and not _TAG_KEY.fullmatch(n):
            errors.append({"line": 1, "device_id": None, "message": f"invalid tag column {n!r}"})
    if len(set(names)) != len(names):
        errors.append({"line": 1, "device_id": None, "message": "duplicate column names"})
    if errors:
        raise InvalidDeviceInput("invalid CSV header", details=errors)
    rows: list[CsvRow] = []
    seen: dict[str, int] = {}
    try:
        for record in reader:
            line = reader.line_num
            if not record or all(not c.strip() for c in record):
                continue
            if len(rows) + len(errors) >= MAX_CSV_ROWS:
                raise InvalidDeviceInput(f"more than {MAX_CSV_ROWS} rows; split the file")
            device_id = record[id_col].strip() if id_col < len(record) else ""
            if len(record) != len(names):
                errors.append({"line": line, "device_id": device_id or None,
                               "message": f"{len(record)} cells, the header has {len(names)}"})  # fmt: skip
                continue
            tags = {names[i]: c.strip() for i, c in enumerate(record) if i != id_col and c.strip()}
            try:
                check_device_id(device_id)
                check_tags(tags)
            except InvalidDeviceInput as exc:
                errors.append({"line": line, "device_id": device_id or None, "message": exc.message})
                continue
            if device_id in seen:
                errors.append({"line": line, "device_id": device_id,
                               "message": f"duplicate of line {seen[device_id]}"})  # fmt: skip
                continue
            seen[device_id] = line
            rows.append(CsvRow(line, device_id, tags))
    except csv.Error as exc:
        errors.append({"line": reader.line_num, "device_id": None, "message": f"unreadable CSV: {exc}"})
    if errors:
        raise InvalidDeviceInput(f"{len(errors)} invalid row(s); nothing was provisioned", details=errors)
    if not rows:
        raise InvalidDeviceInput("the CSV has no device rows")
    return rows


async def provision_many(session: AsyncSession, rows: list[CsvRow]) -> list[Provisioned]:
    """Provision every row or none: rows that conflict with the database are all reported first.

    A handful of set-based statements whatever the row count (10,000 devices in about 2 s with the broker
    reload), instead of the per-device round trips of :func:`provision`."""
    ids = [r.device_id for r in rows]
    existing = {
        d.id: d
        for d in (await session.scalars(sa.select(Device).where(Device.id.in_(ids)).with_for_update())).all()
    }
    credentialed = set(
        (
            await session.scalars(
                sa.select(DeviceCredential.device_id).where(
                    DeviceCredential.device_id.in_(ids), DeviceCredential.revoked_at.is_(None)
                )
            )
        ).all()
    )
    errors = []
    for r in rows:
        device = existing.get(r.device_id)
        if device is not None and device.decommissioned_at is not None:
            message = f"device {r.device_id!r} is decommissioned; ids are not reused"
        elif r.device_id in credentialed:
            message = f"device {r.device_id!r} is already provisioned (rotate its credentials instead)"
        else:
            continue
        errors.append({"line": r.line, "device_id": r.device_id, "message": message})
    if errors:
        raise DeviceConflict(f"{len(errors)} row(s) conflict with existing devices; nothing was provisioned",
                             details=errors)  # fmt: skip
    new_rows = [{"id": r.device_id, "tags": r.tags, "enabled": True} for r in rows if r.device_id not in existing]
    if new_rows:
        await session.execute(pg_insert(Device).on_conflict_do_nothing(index_elements=["id"]), new_rows)
    for r in rows:  # devices seen before provisioning keep their tags, the CSV's added on top
        if (device := existing.get(r.device_id)) is not None:
            device.tags = {**(device.tags or {}), **r.tags}
    passwords = {r.device_id: generate_password() for r in rows}
    await session.execute(
        sa.insert(DeviceCredential),
        [{"device_id": i, "password_hash": mosquitto_hash(pw)} for i, pw in passwords.items()],
    )
    await session.execute(
        sa.update(Device).where(Device.id.in_(ids)).values(enabled=True, provisioned_at=sa.func.now())
    )
    await session.flush()
    session.expire_all()
    devices = {d.id: d for d in (await session.scalars(sa.select(Device).where(Device.id.in_(ids)))).all()}
    return [Provisioned(devices[i], passwords[i]) for i in ids]


async def update_tags(session: AsyncSession, device_id: str, tags: dict[str, Any], *, replace: bool = False) -> Device:
    """Merge `tags` into the device's tags (a null value removes that tag), or replace them all."""
    check_tags(tags, allow_null=True)
    device = await _lock_device(session, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id!r} not found")
    merged = {} if replace else dict(device.tags or {})
    for key, value in tags.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    check_tags(merged)
    device.tags = merged
    await session.flush()
    return device


async def set_enabled(session: AsyncSession, device_id: str, enabled: bool) -> Device:
    device = await _lock_device(session, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id!r} not found")
    if enabled and device.decommissioned_at is not None:
        raise DeviceConflict(f"device {device_id!r} is decommissioned and cannot be enabled")
    device.enabled = enabled
    await session.flush()
    return device


async def decommission(session: AsyncSession, device_id: str) -> Device:
    """Retire a device for good: disabled, credentials revoked; its events and history are kept."""
    device = await _lock_device(session, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id!r} not found")
    if device.decommissioned_at is None:
        device.decommissioned_at = sa.func.now()
        device.enabled = False
        await session.execute(
            sa.update(DeviceCredential)
            .where(DeviceCredential.device_id == device_id, DeviceCredential.revoked_at.is_(None))
            .values(revoked_at=sa.func.now())
        )
        await session.flush()
        await session.refresh(device)
    return device


async def rotate_credentials(session: AsyncSession, device_id: str) -> Provisioned:
    """A new password for the device (returned once); the old one is revoked at the same moment."""
    device = await _lock_device(session, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id!r} not found")
    if device.decommissioned_at is not None:
        raise DeviceConflict(f"device {device_id!r} is decommissioned")
    old = await _active_credential(session, device_id)
    if old is not None:
        old.rotated_at = sa.func.now()
        old.revoked_at = sa.func.now()
        await session.flush()  # the partial unique index allows one active row: retire the old one first
    password = generate_password()
    session.add(DeviceCredential(device_id=device_id, password_hash=mosquitto_hash(password)))
    if device.provisioned_at is None:
        device.provisioned_at = sa.func.now()
    await session.flush()
    await session.refresh(device)
    return Provisioned(device, password)


async def list_credentials(session: AsyncSession, device_id: str) -> list[DeviceCredential]:
    await get_device(session, device_id)
    query = sa.select(DeviceCredential).where(DeviceCredential.device_id == device_id)
    return list((await session.scalars(query.order_by(DeviceCredential.id))).all())


def credential_state(c: DeviceCredential) -> str:
    if c.revoked_at is None:
        return "active"
    return "rotated" if c.rotated_at is not None else "revoked"
