"""Field checks shared by events, telemetry and state. Hot paths inline the cheap part of a check and call
the ``fail_*`` helpers (which always raise) only to classify the failure."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, NoReturn

from cbor2 import CBORTag

from ._codec import Tagged
from .errors import ErrorCode, WireError
from .limits import I64_MAX, I64_MIN, TS_FLOOR_MS, TS_MAX_MS, Limits


def describe(v: Any) -> str:
    """Short description of a decoded value for error details."""
    if v is None:
        return "null"
    if v is True or v is False:
        return f"bool {'true' if v else 'false'}"
    if type(v) is int:
        return f"int {v}" if -(10**20) < v < 10**20 else "a very large int"
    if type(v) is float:
        return f"float {v!r}"
    if type(v) is str:
        return f"text {v[:24]!r}" + ("…" if len(v) > 24 else "")
    if isinstance(v, bytes | bytearray):
        return f"byte string ({len(v)} bytes)"
    if isinstance(v, list | tuple):
        return f"array of {len(v)}"
    if isinstance(v, Mapping):
        return f"map of {len(v)}"
    if isinstance(v, Tagged | CBORTag):
        return f"tag {v.tag} (tags are not allowed)"
    return type(v).__name__


def err(code: ErrorCode, field: str, msg: str) -> WireError:
    return WireError(code, f"{field}: {msg}", field=field)


def fail_missing(field: str) -> NoReturn:
    raise err(ErrorCode.MISSING_FIELD, field, "required field is missing")


def fail_uint(field: str, v: Any, maxv: int, what: str) -> NoReturn:
    """Classify a value that is not an int in ``0..maxv``."""
    if type(v) is int:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"expected {what} (0..{maxv}), got {v}")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected {what}, got {describe(v)}")


def fail_int_range(field: str, v: Any, lo: int, hi: int) -> NoReturn:
    if type(v) is int:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"expected an integer in {lo}..{hi}, got {v}")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected an integer, got {describe(v)}")


def fail_float(field: str, v: Any, lo: float | None = None, hi: float | None = None) -> NoReturn:
    if type(v) is float:
        if not math.isfinite(v):
            raise err(ErrorCode.NON_FINITE, field, f"NaN and infinities are not allowed, got {v!r}")
        raise err(ErrorCode.OUT_OF_RANGE, field, f"expected a number in [{lo}, {hi}], got {v!r}")
    if type(v) is int:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"integer {describe(v)} is out of range")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected a number, got {describe(v)}")


def fail_text(field: str, v: Any, limits: Limits) -> NoReturn:
    if type(v) is str:
        if "\x00" in v:
            raise err(ErrorCode.OUT_OF_RANGE, field, "text must not contain NUL")
        raise err(
            ErrorCode.OUT_OF_RANGE,
            field,
            f"text must have 1..{limits.max_text_len} characters, got {len(v)}",
        )
    raise err(ErrorCode.WRONG_TYPE, field, f"expected text, got {describe(v)}")


def check_text(field: str, v: Any, limits: Limits) -> str:
    if type(v) is not str or not 0 < len(v) <= limits.max_text_len or "\x00" in v:
        fail_text(field, v, limits)
    return v


def check_model(field: str, v: Any, limits: Limits) -> str | int:
    """Model id: text of 1..max_text_len characters (no NUL) or a uint32."""
    if type(v) is str:
        if 0 < len(v) <= limits.max_text_len and "\x00" not in v:
            return v
        fail_text(field, v, limits)
    if type(v) is int:
        if 0 <= v <= 0xFFFF_FFFF:
            return v
        raise err(ErrorCode.OUT_OF_RANGE, field, f"a numeric model id must be a uint32, got {v}")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected text or uint32, got {describe(v)}")


def check_ts(field: str, v: Any, now_ms: int | None, limits: Limits) -> int:
    """Device time in ms since the Unix epoch, not before 2000-01-01 and not too far in the future."""
    if type(v) is not int:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected uint ms since the Unix epoch, got {describe(v)}")
    if v < TS_FLOOR_MS:
        if v < 0:
            raise err(ErrorCode.OUT_OF_RANGE, field, f"expected uint ms since the Unix epoch, got {v}")
        raise err(
            ErrorCode.TS_BEFORE_EPOCH_FLOOR,
            field,
            f"{v} is before 2000-01-01 ({TS_FLOOR_MS}): the device clock is not set (omit ts instead)",
        )
    if v > TS_MAX_MS:
        raise err(ErrorCode.OUT_OF_RANGE, field, f"{v} is after 9999-12-31")
    if now_ms is not None and v - now_ms > limits.max_future_ms:
        raise err(
            ErrorCode.TS_IN_FUTURE,
            field,
            f"{v} is {v - now_ms} ms ahead of the receiver's clock (limit {limits.max_future_ms})",
        )
    return v


def scalar_size(field: str, v: Any, limits: Limits) -> int:
    """Check one extras value and return its size contribution (see Limits.max_extras_bytes)."""
    t = type(v)
    if t is str:
        if len(v) > limits.max_text_len or "\x00" in v:
            if "\x00" in v:
                raise err(ErrorCode.OUT_OF_RANGE, field, "text must not contain NUL")
            raise err(ErrorCode.OUT_OF_RANGE, field, f"text longer than {limits.max_text_len} characters")
        return len(v.encode("utf-8"))
    if t is int:
        if not I64_MIN <= v <= I64_MAX:
            raise err(ErrorCode.OUT_OF_RANGE, field, "integers in x must fit in int64")
        return 8
    if t is float:
        if v - v != 0.0:
            fail_float(field, v)
        return 8
    if t is bool or v is None:
        return 1
    raise err(ErrorCode.WRONG_TYPE, field, f"extras values must be text, number, bool or null, got {describe(v)}")


def check_extras(field: str, v: Any, limits: Limits, unknown: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``x``: a map of text keys to scalars, bounded in entries and size. ``unknown`` holds the unknown
    top-level keys kept by lenient mode; they are merged in and bounded together with ``x``."""
    if v is None:
        if not unknown:
            return None
        out: dict[str, Any] = {}
    elif type(v) is dict or isinstance(v, Mapping):
        out = dict(v)
    else:
        raise err(ErrorCode.WRONG_TYPE, field, f"expected a map of text keys, got {describe(v)}")
    for k in out:
        if type(k) is not str:
            raise err(ErrorCode.WRONG_TYPE, field, f"keys must be text, got {describe(k)}")
    if unknown:
        for k, val in unknown.items():
            if k in out:
                raise err(
                    ErrorCode.DUPLICATE_KEY,
                    f"{field}.{k}",
                    "an unknown top-level key has the same name as an entry of x",
                )
            out[k] = val
    if len(out) > limits.max_extras_keys:
        raise err(ErrorCode.EXTRAS_TOO_LARGE, field, f"{len(out)} entries, the limit is {limits.max_extras_keys}")
    size = 0
    for k, val in out.items():
        if not 0 < len(k) <= limits.max_text_len or "\x00" in k:
            raise err(
                ErrorCode.OUT_OF_RANGE,
                field,
                f"keys must be 1..{limits.max_text_len} characters without NUL, got {describe(k)}",
            )
        size += len(k.encode("utf-8")) + scalar_size(f"{field}.{k}", val, limits)
    if size > limits.max_extras_bytes:
        raise err(ErrorCode.EXTRAS_TOO_LARGE, field, f"{size} bytes, the limit is {limits.max_extras_bytes}")
    return out


def unknown_keys(
    m: Mapping[Any, Any], known: frozenset[Any], other_form: frozenset[Any], strict: bool, field: str = ""
) -> dict[str, Any]:
    """Strict: raise ``unknown_key`` for the first unknown key (in payload order).
    Lenient: return the unknown entries keyed by name (text key) or ``str(int key)``; a key of another type
    cannot be named and is ``unknown_key`` in both modes. ``other_form`` holds the keys of the other
    encoding (names for CBOR, nothing for JSON) to hint at a mix-up."""
    out: dict[str, Any] = {}
    for k, val in m.items():
        if k in known:
            continue
        if type(k) is str:
            name = k
        elif type(k) is int:
            name = str(k)
        else:
            raise err(ErrorCode.UNKNOWN_KEY, field or "(key)", f"unknown key {describe(k)}")
        if strict:
            hint = " (CBOR events use integer keys)" if k in other_form else ""
            raise err(ErrorCode.UNKNOWN_KEY, f"{field}.{name}" if field else name, f"unknown key{hint}")
        out[name] = val
    return out


# ------------------------------------------------------------------------- table-driven records (tel, state)
Check = Callable[[str, Any, Limits, "int | None"], Any]


class FieldSpec(NamedTuple):
    key: int
    name: str
    check: Check
    required: bool = False


def uint_check(maxv: int, what: str) -> Check:
    def check(field: str, v: Any, _limits: Limits, _now: int | None) -> int:
        if type(v) is not int or not 0 <= v <= maxv:
            fail_uint(field, v, maxv, what)
        return v

    return check


def int_check(lo: int, hi: int) -> Check:
    def check(field: str, v: Any, _limits: Limits, _now: int | None) -> int:
        if type(v) is not int or not lo <= v <= hi:
            fail_int_range(field, v, lo, hi)
        return v

    return check


def version_check(field: str, v: Any, _limits: Limits, _now: int | None) -> int:
    if type(v) is int:
        if v == 1:
            return v
        raise err(ErrorCode.UNSUPPORTED_VERSION, field, f"schema version {v} is not supported (expected 1)")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected uint, got {describe(v)}")


def ts_check(field: str, v: Any, limits: Limits, now: int | None) -> int:
    return check_ts(field, v, now, limits)


def text_check(field: str, v: Any, limits: Limits, _now: int | None) -> str:
    return check_text(field, v, limits)


def model_check(field: str, v: Any, limits: Limits, _now: int | None) -> str | int:
    return check_model(field, v, limits)


def bool_check(field: str, v: Any, _limits: Limits, _now: int | None) -> bool:
    if v is True or v is False:
        return bool(v)
    raise err(ErrorCode.WRONG_TYPE, field, f"expected bool, got {describe(v)}")


def validate_record(
    m: Any,
    specs: tuple[FieldSpec, ...],
    json_form: bool,
    strict: bool,
    now_ms: int | None,
    limits: Limits,
    prefix: str = "",
    raw_keys: frozenset[int] = frozenset(),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Validate a map against ``specs`` in the same order as events: ``v`` first, then unknown keys, then
    the fields in key order. Returns ``(values by name, unknown entries)``; the latter is empty in strict
    mode, which raises ``unknown_key`` instead. Fields whose key is in ``raw_keys`` are returned unchecked
    (the caller checks them, e.g. ``x`` together with the unknown entries)."""
    if not isinstance(m, Mapping):
        field = prefix.rstrip(".") or "(payload)"
        code = ErrorCode.WRONG_TYPE if prefix else ErrorCode.NOT_AN_EVENT
        raise err(code, field, f"expected a map, got {describe(m)}")
    known = frozenset(s.name if json_form else s.key for s in specs)
    other: frozenset[Any] = frozenset() if json_form else frozenset(s.name for s in specs)
    ordered = sorted(specs, key=lambda s: (s.name != "v", s.key))
    out: dict[str, Any] = {}
    unknown: dict[str, Any] = {}
    for i, spec in enumerate(ordered):
        if i == 1 and any(k not in known for k in m):
            unknown = unknown_keys(m, known, other, strict, prefix.rstrip("."))
        k = spec.name if json_form else spec.key
        field = f"{prefix}{spec.name}"
        val = m.get(k)
        if val is None:
            if spec.required:
                if k in m:
                    raise err(ErrorCode.WRONG_TYPE, field, "must not be null")
                fail_missing(field)
            continue
        out[spec.name] = val if spec.key in raw_keys else spec.check(field, val, limits, now_ms)
    return out, unknown
