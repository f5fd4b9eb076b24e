"""The broker's password and ACL files, owned by the service and rewritten whenever credentials change.

Mosquitto reads ``password_file`` and ``acl_file`` at start and on SIGHUP. After every change of devices or
credentials the service renders both files from the database (so any process, the API or the CLI, writes the
same complete state), replaces each atomically (temporary file + rename in the same folder, so the broker never
reads half a file) and reloads the broker: SIGHUP to the pid in ``broker_pid_file`` or ``broker_reload_command``.

Only enabled, not decommissioned devices with an active credential are written: a disabled device's CONNECT is
refused, and on reload Mosquitto disconnects clients whose credentials are gone. The ACL gives each device
write access to its own channels and read access to its own ``ota`` and ``cmd``; the service user (from
``TINYFLEET_MQTT_URL``) gets everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import shlex
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tinyfleet.config import Settings
from tinyfleet.fleet.errors import BrokerSyncError
from tinyfleet.fleet.passwords import mosquitto_hash
from tinyfleet.store.models import Device, DeviceCredential
from tinyfleet.wire.topics import Channel

log = logging.getLogger(__name__)

#: What a device may publish (its own channels) and subscribe to (its own OTA manifest and commands). Listed
#: one by one rather than ``%u/#``, which would also let a device overwrite its own retained `ota` manifest.
DEVICE_WRITE_CHANNELS = (Channel.EVT, Channel.TEL, Channel.STATE, Channel.OTA_STATUS, Channel.CMD_ACK)
DEVICE_READ_CHANNELS = (Channel.OTA, Channel.CMD)


@dataclass(frozen=True, slots=True)
class BrokerUser:
    username: str
    password_hash: str


def render_password_file(users: list[BrokerUser]) -> str:
    return "".join(f"{u.username}:{u.password_hash}\n" for u in users)


def render_acl_file(prefix: str, service_user: str | None) -> str:
    lines = ["# Managed by tinyfleet: rewritten whenever devices or credentials change. Do not edit.", ""]
    if service_user is not None:
        lines += [f"user {service_user}", "topic readwrite #", ""]
    # `pattern` lines apply to every user; %u is the username, which is the device id.
    lines += [f"pattern write {prefix}/%u/{ch.value}" for ch in DEVICE_WRITE_CHANNELS]
    lines += [f"pattern read {prefix}/%u/{ch.value}" for ch in DEVICE_READ_CHANNELS]
    return "\n".join(lines) + "\n"


def _write_atomically(path: Path, text: str, group: str | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # Readable by the broker's group only: the file holds password hashes.
        os.chmod(tmp, 0o640)
        if group is not None:
            os.chown(tmp, -1, grp.getgrnam(group).gr_gid)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class BrokerAuth:
    """Renders the files from the database and reloads the broker (one sync at a time per process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()

    @property
    def managed(self) -> bool:
        return self.settings.broker_password_file is not None

    def service_user(self) -> BrokerUser | None:
        endpoint = self.settings.mqtt
        if endpoint.username is None:
            return None
        # A fresh salt each time is fine: the file is rewritten whole anyway.
        return BrokerUser(endpoint.username, mosquitto_hash(endpoint.password or ""))

    async def users(self, conn: AsyncConnection) -> list[BrokerUser]:
        d, c = Device.__table__, DeviceCredential.__table__
        query = (
            sa.select(d.c.id, c.c.password_hash)
            .join(c, sa.and_(c.c.device_id == d.c.id, c.c.revoked_at.is_(None)))
            .where(d.c.enabled.is_(True), d.c.decommissioned_at.is_(None))
            .order_by(d.c.id)
        )
        return [BrokerUser(row.id, row.password_hash) for row in await conn.execute(query)]

    async def sync(self, conn: AsyncConnection) -> int | None:
        """Rewrite the files from what `conn` sees and reload the broker; the number of device users written,
        or None when the files are not managed (no `TINYFLEET_BROKER_PASSWORD_FILE`)."""
        s = self.settings
        if s.broker_password_file is None:
            return None
        async with self._lock:
            devices = await self.users(conn)
            service = self.service_user()
            if service is not None and any(u.username == service.username for u in devices):
                raise BrokerSyncError(f"a device is named like the service's MQTT user {service.username!r}")
            users = ([service] if service is not None else []) + devices
            try:
                await asyncio.to_thread(self._write_and_reload, users)
            except (OSError, KeyError, ValueError, subprocess.SubprocessError) as exc:
                raise BrokerSyncError(f"cannot update the broker's credentials: {exc}") from exc
            log.info("broker credentials written: %d device(s)", len(devices))
            return len(devices)

    def _write_and_reload(self, users: list[BrokerUser]) -> None:
        s = self.settings
        assert s.broker_password_file is not None
        _write_atomically(s.broker_password_file, render_password_file(users), s.broker_file_group)
        if s.broker_acl_file is not None:
            service = s.mqtt.username
            _write_atomically(s.broker_acl_file, render_acl_file(s.topic_prefix, service), s.broker_file_group)
        self.reload()

    async def sync_at_start(self) -> None:
        """Write the files before the service connects to the broker (whose password file must already hold
        the service's own user): raises RuntimeError with one clear line when they cannot be written."""
        if not self.managed:
            return
        from tinyfleet.store.db import Database

        try:
            async with Database(self.settings, pool_size=1, max_overflow=0) as db, db.engine.connect() as conn:
                count = await self.sync(conn)
        except BrokerSyncError as exc:
            raise RuntimeError(exc.message) from exc
        except sa.exc.DBAPIError as exc:
            log.warning("broker credentials not written at start (database: %s)", str(exc.orig).strip()[:200])
            return
        log.info("broker credentials written at start: %s device(s)", count)

    def reload(self) -> None:
        s = self.settings
        if s.broker_reload_command:
            subprocess.run(shlex.split(s.broker_reload_command), check=True, timeout=30, capture_output=True)
        elif s.broker_pid_file is not None:
            pid = int(s.broker_pid_file.read_text().strip())
            os.kill(pid, signal.SIGHUP)
        else:
            log.warning("broker files rewritten but no TINYFLEET_BROKER_PID_FILE or _RELOAD_COMMAND: not reloaded")
