"""The MQTT topic tree ``{prefix}/{device}/{channel}`` and device ids."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any, NamedTuple

from .errors import ErrorCode, WireError

__all__ = ["DEVICE_ID_PATTERN", "Channel", "ParsedTopic", "Topics", "validate_device_id"]

#: A device id is also the MQTT username and one topic level: ASCII letters and digits first, then up to 63
#: of letters, digits, ``.``, ``_``, ``:``, ``-`` (so never ``/``, ``+``, ``#``, ``$``, NUL or whitespace).
DEVICE_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}"
_ID = re.compile(DEVICE_ID_PATTERN, re.ASCII)
_id_fullmatch = _ID.fullmatch


def validate_device_id(s: str) -> str:
    """Return ``s`` when it is a valid device id, else raise ``WireError(bad_device_id)``."""
    if type(s) is str and _id_fullmatch(s) is not None:
        return s
    raise WireError(
        ErrorCode.BAD_DEVICE_ID,
        f"device id {s!r} must match {DEVICE_ID_PATTERN} (1..64 ASCII characters)"
        if isinstance(s, str)
        else f"device id must be text, got {type(s).__name__}",
        field="device",
    )


class Channel(StrEnum):
    EVT = "evt"
    TEL = "tel"
    STATE = "state"
    OTA = "ota"
    OTA_STATUS = "ota/status"
    CMD = "cmd"
    CMD_ACK = "cmd/ack"


_CHANNELS: dict[str, Channel] = {c.value: c for c in Channel}


class ParsedTopic(NamedTuple):
    device_id: str
    channel: Channel


class Topics:
    """Topic names under a prefix (default ``tf/v1``)."""

    __slots__ = ("_cache", "_cache_size", "_plen", "_pslash", "prefix")

    def __init__(self, prefix: str = "tf/v1", *, cache_size: int = 65_536) -> None:
        """``cache_size`` bounds the memo of parsed topics (``parse`` runs once per message)."""
        if (
            not isinstance(prefix, str)
            or not prefix
            or prefix.startswith("/")
            or prefix.endswith("/")
            or "//" in prefix
            or any(c in prefix for c in "+#\x00")
            or prefix.startswith("$")
        ):
            raise WireError(ErrorCode.BAD_TOPIC, f"invalid topic prefix {prefix!r}")
        self.prefix = prefix
        self._pslash = prefix + "/"
        self._plen = len(self._pslash)
        self._cache: dict[str, ParsedTopic] = {}
        self._cache_size = cache_size

    def __repr__(self) -> str:
        return f"Topics({self.prefix!r})"

    def __eq__(self, other: Any) -> bool:
        return isinstance(other, Topics) and other.prefix == self.prefix

    def __hash__(self) -> int:
        return hash(self.prefix)

    def topic(self, device_id: str, channel: Channel | str) -> str:
        ch = _CHANNELS.get(str(channel))
        if ch is None:
            raise WireError(ErrorCode.BAD_TOPIC, f"unknown channel {channel!r}")
        return f"{self._pslash}{validate_device_id(device_id)}/{ch.value}"

    def evt(self, device_id: str) -> str:
        return self.topic(device_id, Channel.EVT)

    def tel(self, device_id: str) -> str:
        return self.topic(device_id, Channel.TEL)

    def state(self, device_id: str) -> str:
        return self.topic(device_id, Channel.STATE)

    def ota(self, device_id: str) -> str:
        return self.topic(device_id, Channel.OTA)

    def ota_status(self, device_id: str) -> str:
        return self.topic(device_id, Channel.OTA_STATUS)

    def cmd(self, device_id: str) -> str:
        return self.topic(device_id, Channel.CMD)

    def cmd_ack(self, device_id: str) -> str:
        return self.topic(device_id, Channel.CMD_ACK)

    def filter(self, channel: Channel | str, *, share: str | None = None) -> str:
        """Subscription filter for one channel of every device; ``share`` makes it an MQTT 5 shared
        subscription ``$share/{share}/...``."""
        ch = _CHANNELS.get(str(channel))
        if ch is None:
            raise WireError(ErrorCode.BAD_TOPIC, f"unknown channel {channel!r}")
        f = f"{self._pslash}+/{ch.value}"
        if share is not None:
            if not share or any(c in share for c in "/+#\x00"):
                raise WireError(ErrorCode.BAD_TOPIC, f"invalid shared-subscription group {share!r}")
            f = f"$share/{share}/{f}"
        return f

    def subscriptions(
        self,
        *,
        share: str | None = None,
        channels: tuple[Channel, ...] = (Channel.EVT, Channel.TEL, Channel.STATE, Channel.OTA_STATUS),
    ) -> list[str]:
        """Filters the service subscribes to: evt, tel, state and ota/status of every device by default."""
        return [self.filter(c, share=share) for c in channels]

    def parse(self, topic: str) -> ParsedTopic:
        """Split ``{prefix}/{device}/{channel}``; raises ``bad_topic`` or ``bad_device_id``."""
        hit = self._cache.get(topic)
        if hit is not None:
            return hit
        parsed = self._parse(topic)
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[topic] = parsed
        return parsed

    def _parse(self, topic: str) -> ParsedTopic:
        if type(topic) is not str or not topic.startswith(self._pslash):
            raise WireError(ErrorCode.BAD_TOPIC, f"topic {topic!r} is not under {self._pslash}")
        device, sep, rest = topic[self._plen :].partition("/")
        ch = _CHANNELS.get(rest)
        if not sep or ch is None:
            raise WireError(
                ErrorCode.BAD_TOPIC,
                f"topic {topic!r}: expected {self._pslash}{{device}}/{{{'|'.join(_CHANNELS)}}}",
            )
        validate_device_id(device)
        return ParsedTopic(device, ch)
