"""Downlink commands (topic ``tf/v1/{device}/cmd``) and their acknowledgements (``tf/v1/{device}/cmd/ack``).

One map per message, CBOR integer keys or JSON names, like telemetry. A command names what to do (``cmd``) and
carries its parameters in ``args`` (a map of text keys to scalars, bounded like ``x``). ``v`` may be omitted in a
command (it then means 1): rule actions publish bare JSON such as ``{"cmd": "capture", "seconds": 10}``, and in
lenient mode (what the reference device uses) such unknown top-level keys become ``args``. The ack repeats the
command's ``id`` and ``cmd`` and says how it went (``status``), with a short ``detail`` and results in ``x``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

import msgspec

from . import _codec
from ._checks import (
    FieldSpec,
    check_extras,
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

__all__ = [
    "ACK_FIELDS",
    "COMMAND_FIELDS",
    "MAX_COMMAND_BYTES",
    "AckStatus",
    "Command",
    "CommandAck",
    "CommandName",
    "decode_command",
    "decode_command_ack",
    "encode_command",
    "encode_command_ack",
]

#: a cmd or cmd/ack payload, in bytes
MAX_COMMAND_BYTES = 1024
#: characters of an ack's ``detail``
MAX_DETAIL_LEN = 160


class CommandName(StrEnum):
    """The commands of the reference device (a device may support more, or fewer: it acks ``unsupported``)."""

    SET_THRESHOLD = "set_threshold"  # args: threshold (number)
    SET_SAMPLING = "set_sampling"  # args: interval_ms (uint) — time between inference windows
    INJECT_FAULT = "inject_fault"  # args: fault (text), severity (number, default 1)
    CAPTURE = "capture"  # args: samples (uint) or seconds (number), label (text)
    REBOOT = "reboot"  # no args


class AckStatus(StrEnum):
    OK = "ok"  # done
    REJECTED = "rejected"  # the arguments are wrong (detail says which)
    UNSUPPORTED = "unsupported"  # the device does not know this command
    FAILED = "failed"  # tried and failed (detail says why)


class Command(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    v: int = 1
    ts: int | None = None
    id: str | int | None = None
    cmd: str
    args: dict[str, Any] | None = None


class CommandAck(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    v: int = 1
    ts: int | None = None
    id: str | int | None = None
    cmd: str
    status: AckStatus
    detail: str | None = None
    boot: int | None = None
    x: dict[str, Any] | None = None


_STATUSES: dict[str, AckStatus] = {s.value: s for s in AckStatus}


def _status_check(field: str, v: Any, _limits: Limits, _now: int | None) -> AckStatus:
    if type(v) is not str:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected text, got {describe(v)}")
    status = _STATUSES.get(v)
    if status is None:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"{v[:24]!r} is not one of {', '.join(_STATUSES)}")
    return status


def _detail_check(field: str, v: Any, _limits: Limits, _now: int | None) -> str:
    if type(v) is not str:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected text, got {describe(v)}")
    if not 0 < len(v) <= MAX_DETAIL_LEN or "\x00" in v:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"text must have 1..{MAX_DETAIL_LEN} characters without NUL")
    return v


_ARGS = 4
_X = 13
_CMD_SPECS = (
    FieldSpec(0, "v", version_check),  # optional in a command: absent means 1
    FieldSpec(1, "ts", ts_check),
    FieldSpec(2, "id", model_check),  # text 1..64 or uint32, like a model id
    FieldSpec(3, "cmd", text_check, True),
    FieldSpec(_ARGS, "args", text_check),  # checked by check_extras
)
_ACK_SPECS = (
    FieldSpec(0, "v", version_check, True),
    FieldSpec(1, "ts", ts_check),
    FieldSpec(2, "id", model_check),
    FieldSpec(3, "cmd", text_check, True),
    FieldSpec(4, "status", _status_check, True),
    FieldSpec(5, "detail", _detail_check),
    FieldSpec(6, "boot", uint_check(U32, "uint32")),
    FieldSpec(_X, "x", text_check),  # checked by check_extras
)
#: CBOR key -> JSON name
COMMAND_FIELDS: dict[int, str] = {s.key: s.name for s in _CMD_SPECS}
ACK_FIELDS: dict[int, str] = {s.key: s.name for s in _ACK_SPECS}


def _load(payload: bytes, what: str) -> tuple[dict[Any, Any], bool]:
    obj = _codec.load_payload(payload, MAX_COMMAND_BYTES)
    if type(obj) is not dict:
        raise WireError(ErrorCode.NOT_AN_EVENT, f"{what} must be a map, got {describe(obj)}")
    return obj, _codec.is_json(payload)


def decode_command(
    payload: bytes, *, strict: bool = True, now_ms: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> Command:
    """Decode and validate one command; raises WireError. Lenient mode keeps unknown keys in ``args``."""
    obj, json_form = _load(payload, "a command")
    values, unknown = validate_record(obj, _CMD_SPECS, json_form, strict, now_ms, limits, raw_keys=frozenset({_ARGS}))
    args = check_extras("args", values.pop("args", None), limits, unknown)
    values["v"] = 1
    return Command(**values, args=args)


def decode_command_ack(
    payload: bytes, *, strict: bool = True, now_ms: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> CommandAck:
    """Decode and validate one command ack; raises WireError. Lenient mode keeps unknown keys in ``x``."""
    obj, json_form = _load(payload, "a command ack")
    values, unknown = validate_record(obj, _ACK_SPECS, json_form, strict, now_ms, limits, raw_keys=frozenset({_X}))
    x = check_extras("x", values.pop("x", None), limits, unknown)
    return CommandAck(**values, x=x)


def _encode(
    rec: Command | CommandAck, fields: dict[int, str], map_key: str, fmt: Literal["cbor", "json"]
) -> bytes:
    d = {name: getattr(rec, name) for name in fields.values()}
    if "status" in d:
        d["status"] = str(d["status"])
    extras = d.pop(map_key)
    if fmt == "json":
        out = {k: v for k, v in d.items() if v is not None}
        if extras is not None:
            out[map_key] = {k: extras[k] for k in sorted(extras, key=_codec.x_key_order)}
        payload = msgspec.json.encode(out)
    elif fmt == "cbor":
        cbor_map: dict[int, Any] = {}
        for key, name in fields.items():
            value = extras if name == map_key else d[name]
            if value is not None:
                if name == map_key:
                    value = {k: value[k] for k in sorted(value, key=_codec.x_key_order)}
                cbor_map[key] = _codec.wrap_floats(value)
        payload = _codec.dumps(cbor_map)
    else:
        raise ValueError(f"unknown format {fmt!r}")
    if len(payload) > MAX_COMMAND_BYTES:
        raise WireError(ErrorCode.MESSAGE_TOO_LARGE, f"{len(payload)} bytes, the limit is {MAX_COMMAND_BYTES}")
    return payload


def encode_command(command: Command, *, fmt: Literal["cbor", "json"] = "cbor") -> bytes:
    """Canonical encoding (``v`` always written); raises WireError for what the decoder would refuse."""
    payload = _encode(command, COMMAND_FIELDS, "args", fmt)
    decode_command(payload)
    return payload


def encode_command_ack(ack: CommandAck, *, fmt: Literal["cbor", "json"] = "cbor") -> bytes:
    """Canonical encoding; raises WireError for what the decoder would refuse."""
    payload = _encode(ack, ACK_FIELDS, "x", fmt)
    decode_command_ack(payload)
    return payload
