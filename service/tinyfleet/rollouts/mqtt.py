"""Retained manifests on the devices' `ota` topics, over the service's own MQTT connection."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from tinyfleet.actions.senders import MqttPublisher
from tinyfleet.config import Settings


class MqttManifestPublisher:
    """QoS 1, retained: a device that is offline now gets its manifest when it next subscribes."""

    def __init__(self, settings: Settings) -> None:
        self._mqtt = MqttPublisher(settings)

    async def publish_retained(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if messages:
            await asyncio.to_thread(self._mqtt.publish_many, messages, retain=True)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._mqtt.close)
