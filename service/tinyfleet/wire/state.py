"""Device state (topic ``tf/v1/{device}/state``, retained): the birth message a device publishes on connect
and the LWT (``online: false``) the broker publishes when the device is lost. An empty retained payload
clears the retained state; :func:`decode_state` returns None for it."""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from . import _codec
from ._checks import (
    FieldSpec,
    bool_check,
    check_extras,
    check_text,
    describe,
    err,
    model_check,
    text_check,
    ts_check,
    uint_check,
    validate_record,
    version_check,
)
from .errors import ErrorCode, WireError
from .limits import DEFAULT_LIMITS, U32, Limits

__all__ = ["CAPS_FIELDS", "STATE_FIELDS", "Caps", "DeviceState", "decode_state", "encode_state"]


class Caps(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the device can run: flash and RAM (bytes), tensor arena (bytes), supported TFLite ops."""

    flash: int | None = None
    ram: int | None = None
    arena: int | None = None
    ops: list[str] | None = None


class DeviceState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    v: int = 1
    ts: int | None = None
    online: bool
    boot: int | None = None
    model: str | int | None = None
    mver: int | None = None
    fw: str | None = None
    caps: Caps | None = None
    reason: str | None = None
    x: dict[str, Any] | None = None


def _ops_check(field: str, v: Any, limits: Limits, _now: int | None) -> list[str]:
    if type(v) is not list and type(v) is not tuple:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected an array of text, got {describe(v)}")
    if len(v) > limits.max_ops:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"{len(v)} ops, the limit is {limits.max_ops}")
    return [check_text(f"{field}[{i}]", op, limits) for i, op in enumerate(v)]


_CAPS_SPECS = (
    FieldSpec(0, "flash", uint_check(U32, "uint32")),
    FieldSpec(1, "ram", uint_check(U32, "uint32")),
    FieldSpec(2, "arena", uint_check(U32, "uint32")),
    FieldSpec(3, "ops", _ops_check),
)
_X = 13
_CAPS = 7
_SPECS = (
    FieldSpec(0, "v", version_check, True),
    FieldSpec(1, "ts", ts_check),
    FieldSpec(2, "online", bool_check, True),
    FieldSpec(3, "boot", uint_check(U32, "uint32")),
    FieldSpec(4, "model", model_check),
    FieldSpec(5, "mver", uint_check(U32, "uint32")),
    FieldSpec(6, "fw", text_check),
    FieldSpec(_CAPS, "caps", text_check),  # checked below
    FieldSpec(8, "reason", text_check),
    FieldSpec(_X, "x", text_check),  # checked by check_extras
)
#: CBOR key -> JSON name
STATE_FIELDS: dict[int, str] = {s.key: s.name for s in _SPECS}
CAPS_FIELDS: dict[int, str] = {s.key: s.name for s in _CAPS_SPECS}


def decode_state(
    payload: bytes, *, strict: bool = True, now_ms: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> DeviceState | None:
    """Decode a state payload; None for the empty payload that clears a retained state. Raises WireError.

    In lenient mode unknown keys of ``caps`` are kept in ``x`` as ``caps.<name>``."""
    if len(payload) == 0:
        return None
    obj = _codec.load_payload(payload, limits.max_state_bytes)
    if type(obj) is not dict:
        raise WireError(ErrorCode.NOT_AN_EVENT, f"state must be a map, got {describe(obj)}")
    json_form = _codec.is_json(payload)
    values, unknown = validate_record(obj, _SPECS, json_form, strict, now_ms, limits, raw_keys=frozenset({_X, _CAPS}))
    caps = values.pop("caps", None)
    if caps is not None:
        cvals, cunknown = validate_record(caps, _CAPS_SPECS, json_form, strict, now_ms, limits, "caps.")
        for k, v in cunknown.items():
            unknown[f"caps.{k}"] = v
        values["caps"] = Caps(**cvals)
    x = check_extras("x", values.pop("x", None), limits, unknown)
    return DeviceState(**values, x=x)


def _caps_dict(c: Caps) -> dict[str, Any]:
    return {n: getattr(c, n) for n in CAPS_FIELDS.values() if getattr(c, n) is not None}


def encode_state(state: DeviceState | None, *, fmt: Literal["cbor", "json"] = "cbor") -> bytes:
    """Canonical encoding; None encodes as the empty payload (clears the retained state)."""
    if state is None:
        return b""
    d: dict[str, Any] = {}
    for name in STATE_FIELDS.values():
        v = getattr(state, name)
        if v is None:
            continue
        if name == "caps":
            v = _caps_dict(v)
        elif name == "x":
            v = {k: v[k] for k in sorted(v, key=_codec.x_key_order)}
        d[name] = v
    # refuse what the decoder would refuse
    decoded = decode_state(msgspec.json.encode(d), limits=DEFAULT_LIMITS)
    assert decoded is not None
    if fmt == "json":
        return msgspec.json.encode(d)
    if fmt != "cbor":
        raise ValueError(f"unknown format {fmt!r}")
    out: dict[int, Any] = {}
    for key, name in STATE_FIELDS.items():
        if name not in d:
            continue
        v = d[name]
        if name == "caps":
            v = {ck: v[cn] for ck, cn in CAPS_FIELDS.items() if cn in v}
        elif name == "x":
            v = _codec.wrap_floats(v)
        out[key] = v
    return _codec.dumps(out)
