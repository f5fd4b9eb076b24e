"""Downlink commands to a device: one JSON message, QoS 1, not retained, on ``tf/v1/{device}/cmd``.

    commander = DeviceCommander(settings)
    sent = await commander.send("press-07", "reboot", {"delay_s": 5}, by="user:alice")
    await commander.aclose()

The payload (docs/protocol.md): ``{"id": "<32 hex>", "name": "reboot", "args": {...}, "ts": <ms>, "by": "…"}``.
The device answers on ``…/cmd/ack`` with ``{"id": …, "ok": true|false, "result"|"error": …}``. The publish
returns once the broker has acknowledged it (PUBACK); whether the device acted on it is for its ack to say.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from tinyfleet.actions.senders import DeliveryError, MqttPublisher
from tinyfleet.config import Settings
from tinyfleet.fleet.errors import FleetError, InvalidDeviceInput
from tinyfleet.wire import Topics

COMMAND_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,31}$")
MAX_COMMAND_BYTES = 4096


class CommandNotSent(FleetError):
    """The broker did not take the command (not connected, no PUBACK in time)."""


@dataclass(frozen=True, slots=True)
class SentCommand:
    id: str
    device_id: str
    topic: str
    name: str
    args: dict[str, Any]
    ts: int
    payload: bytes


def build_command(prefix: str, device_id: str, name: str, args: dict[str, Any], *, by: str) -> SentCommand:
    if not COMMAND_NAME.fullmatch(name):
        raise InvalidDeviceInput("a command name is 1-32 of a-z 0-9 _ . - starting with a letter", details=name)
    ts = int(time.time() * 1000)
    command_id = uuid.uuid4().hex
    body = {"id": command_id, "name": name, "args": args, "ts": ts, "by": by}
    payload = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
    if len(payload) > MAX_COMMAND_BYTES:
        raise InvalidDeviceInput(f"a command is at most {MAX_COMMAND_BYTES} bytes as JSON ({len(payload)} given)")
    return SentCommand(command_id, device_id, Topics(prefix).cmd(device_id), name, args, ts, payload)


class DeviceCommander:
    """Publishes commands over the service's own MQTT connection (opened on first use)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._mqtt = MqttPublisher(settings)

    async def send(self, device_id: str, name: str, args: dict[str, Any], *, by: str) -> SentCommand:
        command = build_command(self.settings.topic_prefix, device_id, name, args, by=by)
        try:
            await asyncio.to_thread(self._mqtt.publish, command.topic, command.payload, command.id)
        except DeliveryError as exc:
            raise CommandNotSent(f"the broker did not take the command: {exc}") from exc
        return command

    async def aclose(self) -> None:
        await asyncio.to_thread(self._mqtt.close)
