"""Broker authentication and authorisation over HTTP, for brokers that ask a web service instead of reading
files: EMQX (HTTP authentication + HTTP authorization) and Mosquitto with mosquitto-go-auth's HTTP backend.

Same rules as the files of :mod:`tinyfleet.fleet.broker_auth`: the service user may do anything; a device may
log in while enabled, not decommissioned and with its active password, publish only its own write channels and
subscribe only to its own ``ota`` and ``cmd``. Answers are decided from the database on every call (so a
disabled device is refused at once, no reload needed).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.config import Settings
from tinyfleet.fleet.broker_auth import DEVICE_READ_CHANNELS, DEVICE_WRITE_CHANNELS
from tinyfleet.fleet.passwords import verify_mosquitto_hash
from tinyfleet.store.models import Device, DeviceCredential
from tinyfleet.wire.errors import WireError
from tinyfleet.wire.topics import Topics

Action = Literal["publish", "subscribe"]


@dataclass(frozen=True, slots=True)
class Decision:
    allow: bool
    superuser: bool = False
    reason: str = ""


async def _active_hash(session: AsyncSession, username: str) -> str | None:
    query = (
        sa.select(DeviceCredential.password_hash)
        .join(Device, Device.id == DeviceCredential.device_id)
        .where(
            Device.id == username,
            Device.enabled.is_(True),
            Device.decommissioned_at.is_(None),
            DeviceCredential.revoked_at.is_(None),
        )
    )
    return (await session.execute(query)).scalar_one_or_none()


def _is_service(settings: Settings, username: str) -> bool:
    return settings.mqtt.username is not None and username == settings.mqtt.username


async def check_login(session: AsyncSession, settings: Settings, username: str, password: str) -> Decision:
    if _is_service(settings, username):
        ok = hmac.compare_digest((settings.mqtt.password or "").encode(), password.encode())
        return Decision(ok, superuser=ok, reason="" if ok else "wrong password")
    stored = await _active_hash(session, username)
    if stored is None:
        return Decision(False, reason="unknown, disabled or decommissioned device")
    if not verify_mosquitto_hash(password, stored):
        return Decision(False, reason="wrong password")
    return Decision(True)


async def check_acl(session: AsyncSession, settings: Settings, username: str, topic: str, action: Action) -> Decision:
    if _is_service(settings, username):
        return Decision(True, superuser=True)
    try:
        parsed = Topics(settings.topic_prefix).parse(topic)
    except WireError:
        return Decision(False, reason="not a device topic")
    if parsed.device_id != username:
        return Decision(False, reason="another device's topic")
    allowed = DEVICE_WRITE_CHANNELS if action == "publish" else DEVICE_READ_CHANNELS
    if parsed.channel not in allowed:
        return Decision(False, reason=f"{action} on {parsed.channel.value} is not allowed for devices")
    if await _active_hash(session, username) is None:
        return Decision(False, reason="unknown, disabled or decommissioned device")
    return Decision(True)
