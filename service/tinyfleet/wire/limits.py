"""Size and range limits of the wire contract (defaults are the published v1 limits)."""

from __future__ import annotations

from dataclasses import dataclass

#: 2000-01-01T00:00:00Z in ms: a device timestamp before this comes from a device whose clock was never set.
TS_FLOOR_MS = 946_684_800_000
#: 9999-12-31T23:59:59.999Z in ms: the last instant a ``datetime`` (and so the store) can hold.
TS_MAX_MS = 253_402_300_799_999
U8 = 0xFF
U16 = 0xFFFF
U32 = 0xFFFF_FFFF
I64_MIN = -(2**63)
I64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied by the decoders. Every value is inclusive (``len <= max``)."""

    #: a single event (one map, not in an array) may not be larger than this, in payload bytes
    max_event_bytes: int = 1024
    #: events in one batch (array)
    max_batch_events: int = 256
    #: any payload on an event topic (= max_batch_events * max_event_bytes)
    max_message_bytes: int = 262_144
    #: ``ts`` may be at most this far ahead of the receiver's clock (only checked when ``now_ms`` is given)
    max_future_ms: int = 24 * 3600 * 1000
    #: entries in ``x`` (after lenient unknown keys were merged into it)
    max_extras_keys: int = 16
    #: size of ``x`` as defined in docs/protocol.md: UTF-8 bytes of keys and text values, 8 per number, 1 per
    #: bool/null
    max_extras_bytes: int = 256
    #: pairs in ``top``
    max_top_k: int = 16
    #: values in an array ``val``
    max_val_len: int = 64
    #: characters of a text value (model id, x keys and text values, fw, reason, op names)
    max_text_len: int = 64
    #: a telemetry payload, in bytes
    max_telemetry_bytes: int = 1024
    #: a state (birth / LWT) payload, in bytes
    max_state_bytes: int = 8192
    #: entries in ``caps.ops`` of a state payload
    max_ops: int = 128


DEFAULT_LIMITS = Limits()
