"""OTA status (topic ``tf/v1/{device}/ota/status``): a device's report on the manifest it is acting on.

One map per message, CBOR integer keys or JSON names, like telemetry. ``state`` and ``reason`` are text in
both encodings; ``reason`` is one of the device SDK's :class:`tinyfleet_device.manifest.Reason` codes.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import msgspec

from tinyfleet_device.manifest import Reason

from . import _codec
from ._checks import (
    FieldSpec,
    check_extras,
    describe,
    err,
    fail_missing,
    model_check,
    text_check,
    ts_check,
    uint_check,
    validate_record,
    version_check,
)
from .errors import ErrorCode, WireError
from .limits import DEFAULT_LIMITS, U32, Limits

__all__ = ["OTA_REASONS", "OTA_STATUS_FIELDS", "OtaState", "OtaStatus", "decode_ota_status", "encode_ota_status"]

#: characters of the free-text ``msg``
MAX_MESSAGE_LEN = 160
#: an ota/status payload, in bytes
MAX_OTA_STATUS_BYTES = 1024


class OtaState(StrEnum):
    """Where the device is with the manifest ``seq``."""

    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    VERIFIED = "verified"
    APPLIED = "applied"
    FAILED = "failed"
    ROLLED_BACK = "rolled_back"


#: the reason codes a device may report (the device SDK's Reason values)
OTA_REASONS: frozenset[str] = frozenset(r.value for r in Reason)
_STATES: dict[str, OtaState] = {s.value: s for s in OtaState}


class OtaStatus(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """``reason`` is required when ``state`` is ``failed``; ``model``/``mver``/``fw`` name what the device runs
    now (after ``applied`` the new version, after ``rolled_back`` the old one); ``progress`` counts the bytes
    downloaded so far."""

    v: int = 1
    ts: int | None = None
    state: OtaState
    seq: int
    reason: str | None = None
    msg: str | None = None
    model: str | int | None = None
    mver: int | None = None
    fw: str | None = None
    progress: int | None = None
    x: dict[str, Any] | None = None


def _state_check(field: str, v: Any, _limits: Limits, _now: int | None) -> OtaState:
    if type(v) is not str:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected text, got {describe(v)}")
    state = _STATES.get(v)
    if state is None:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"{v[:24]!r} is not one of {', '.join(_STATES)}")
    return state


def _reason_check(field: str, v: Any, _limits: Limits, _now: int | None) -> str:
    if type(v) is not str:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected text, got {describe(v)}")
    if v not in OTA_REASONS:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"{v[:24]!r} is not a known reason code (docs/ota.md)")
    return v


def _message_check(field: str, v: Any, _limits: Limits, _now: int | None) -> str:
    if type(v) is not str:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected text, got {describe(v)}")
    if not 0 < len(v) <= MAX_MESSAGE_LEN or "\x00" in v:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"text must have 1..{MAX_MESSAGE_LEN} characters without NUL")
    return v


_X = 13
_SPECS = (
    FieldSpec(0, "v", version_check, True),
    FieldSpec(1, "ts", ts_check),
    FieldSpec(2, "state", _state_check, True),
    FieldSpec(3, "seq", uint_check(U32, "uint32"), True),
    FieldSpec(4, "reason", _reason_check),
    FieldSpec(5, "msg", _message_check),
    FieldSpec(6, "model", model_check),
    FieldSpec(7, "mver", uint_check(U32, "uint32")),
    FieldSpec(8, "fw", text_check),
    FieldSpec(9, "progress", uint_check(U32, "uint32")),
    FieldSpec(_X, "x", version_check),  # checked by check_extras
)
#: CBOR key -> JSON name
OTA_STATUS_FIELDS: dict[int, str] = {s.key: s.name for s in _SPECS}


def _check_consistency(values: dict[str, Any]) -> None:
    if values["state"] is OtaState.FAILED and "reason" not in values:
        fail_missing("reason")


def decode_ota_status(
    payload: bytes, *, strict: bool = True, now_ms: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> OtaStatus:
    """Decode and validate one ota/status payload; raises WireError."""
    obj = _codec.load_payload(payload, MAX_OTA_STATUS_BYTES)
    if type(obj) is not dict:
        raise WireError(ErrorCode.NOT_AN_EVENT, f"ota status must be a map, got {describe(obj)}")
    json_form = _codec.is_json(payload)
    values, unknown = validate_record(obj, _SPECS, json_form, strict, now_ms, limits, raw_keys=frozenset({_X}))
    _check_consistency(values)
    x = check_extras("x", values.pop("x", None), limits, unknown)
    return OtaStatus(**values, x=x)


def encode_ota_status(status: OtaStatus, *, fmt: Literal["cbor", "json"] = "cbor") -> bytes:
    """Canonical encoding: integer keys ascending, shortest integers, null fields omitted."""
    d = {name: getattr(status, name) for name in OTA_STATUS_FIELDS.values()}
    d["state"] = str(d["state"])
    # refuse what the decoder would refuse
    checked, _ = validate_record(d | {"x": None}, _SPECS, True, True, None, DEFAULT_LIMITS, raw_keys=frozenset({_X}))
    _check_consistency(checked)
    check_extras("x", status.x, DEFAULT_LIMITS)
    if fmt == "json":
        out = {k: v for k, v in d.items() if v is not None and k != "x"}
        if status.x is not None:
            out["x"] = {k: status.x[k] for k in sorted(status.x, key=_codec.x_key_order)}
        return msgspec.json.encode(out)
    if fmt != "cbor":
        raise ValueError(f"unknown format {fmt!r}")
    cbor_map = {key: _codec.wrap_floats(d[name]) for key, name in OTA_STATUS_FIELDS.items() if d[name] is not None}
    return _codec.dumps(cbor_map)
