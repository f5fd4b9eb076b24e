"""Stable error codes of the wire contract and the exception that carries them.

The *values* of :class:`ErrorCode` are part of the published contract (they are stored in the dead-letter
table, returned by the API and asserted by the device SDK's test vectors): never rename or reuse one.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """Why a payload (or one event of a batch, or a topic, or a device id) was rejected."""

    # message level: the payload as a whole
    EMPTY_PAYLOAD = "empty_payload"
    MESSAGE_TOO_LARGE = "message_too_large"
    MALFORMED_CBOR = "malformed_cbor"
    MALFORMED_JSON = "malformed_json"
    TRAILING_BYTES = "trailing_bytes"
    NOT_AN_EVENT = "not_an_event"
    EMPTY_BATCH = "empty_batch"
    BATCH_TOO_LARGE = "batch_too_large"
    # event level (message level for a single event; per element, with an index, in a batch)
    EVENT_TOO_LARGE = "event_too_large"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_KEY = "unknown_key"
    DUPLICATE_KEY = "duplicate_key"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    OUT_OF_RANGE = "out_of_range"
    NON_FINITE = "non_finite"
    TS_IN_FUTURE = "ts_in_future"
    TS_BEFORE_EPOCH_FLOOR = "ts_before_epoch_floor"
    KIND_FIELD_MISSING = "kind_field_missing"
    EXTRAS_TOO_LARGE = "extras_too_large"
    # addressing
    BAD_DEVICE_ID = "bad_device_id"
    BAD_TOPIC = "bad_topic"


class WireError(ValueError):
    """A payload, event, topic or device id that breaks the wire contract.

    ``code`` is the stable machine-readable reason, ``detail`` a human-readable sentence that starts with the
    offending field's name where there is one (``"seq: expected uint32, got -1"``), ``field`` that name
    (dotted for nested fields: ``"x.temp"``, ``"top[2].score"``; None for message-level errors) and ``index``
    the position of the event in a batch (None for a single event or a message-level error).
    """

    __slots__ = ("code", "detail", "field", "index")

    def __init__(self, code: ErrorCode, detail: str, *, index: int | None = None, field: str | None = None) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail
        self.index = index
        self.field = field

    def with_index(self, index: int) -> WireError:
        """The same error, located at ``index`` of a batch."""
        return WireError(self.code, self.detail, index=index, field=self.field)

    def __str__(self) -> str:
        where = f" (event {self.index})" if self.index is not None else ""
        return f"{self.code.value}: {self.detail}{where}"

    def __repr__(self) -> str:
        return f"WireError({self.code.value!r}, {self.detail!r}, index={self.index!r}, field={self.field!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WireError):
            return NotImplemented
        return (self.code, self.detail, self.index, self.field) == (
            other.code,
            other.detail,
            other.index,
            other.field,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.detail, self.index, self.field))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (self.code.value, self.detail, self.index, self.field))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. for a dead-letter row or an API response."""
        return {"code": self.code.value, "detail": self.detail, "field": self.field, "index": self.index}


def _rebuild(code: str, detail: str, index: int | None, field: str | None) -> WireError:
    return WireError(ErrorCode(code), detail, index=index, field=field)
