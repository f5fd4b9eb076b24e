"""Inference events (topic ``tf/v1/{device}/evt``): decoding, validation and canonical encoding.

The decoder is on the service's hot ingest path, so the per-field checks are inlined (``type(x) is int``
plus a range comparison) and the slow helpers in :mod:`._checks` run only to classify a failure.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any, Literal, NoReturn

import cbor2
import msgspec

from . import _codec
from ._checks import (
    check_extras,
    check_model,
    check_ts,
    describe,
    err,
    fail_float,
    fail_missing,
    fail_uint,
    unknown_keys,
)
from ._codec import F32, Float, dumps, wrap_floats
from .errors import ErrorCode, WireError
from .limits import DEFAULT_LIMITS, I64_MAX, I64_MIN, TS_FLOOR_MS, TS_MAX_MS, U16, U32, Limits

__all__ = [
    "EVENT_FIELDS",
    "DecodeResult",
    "Event",
    "EventKind",
    "decode_events",
    "encode_event",
    "encode_events",
]


class EventKind(IntEnum):
    CLASSIFICATION = 0
    ANOMALY = 1
    REGRESSION = 2
    DETECTION = 3


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One inference event. Field names are the JSON names; CBOR keys are the positions in EVENT_FIELDS."""

    v: int = 1
    ts: int | None = None
    seq: int
    boot: int
    model: str | int
    mver: int | None = None
    kind: int
    label: int | None = None
    score: float | None = None
    anom: float | None = None
    val: float | list[float] | None = None
    top: list[tuple[int, float]] | None = None
    lat: int | None = None
    x: dict[str, Any] | None = None


#: JSON names in CBOR key order: ``EVENT_FIELDS[k]`` is the name of CBOR key ``k``.
EVENT_FIELDS: tuple[str, ...] = (
    "v", "ts", "seq", "boot", "model", "mver", "kind", "label", "score", "anom", "val", "top", "lat", "x",
)  # fmt: skip


class DecodeResult(msgspec.Struct, gc=False):
    """Valid events of a payload, the per-event rejects of a batch (each with its ``index``), and whether
    the payload was a batch (array)."""

    events: list[Event]
    rejects: list[WireError]
    is_batch: bool


# ----------------------------------------------------------------------------------------------- checks
def _fail_required_uint(m: Mapping[Any, Any], key: Any, field: str, v: Any, maxv: int, what: str) -> NoReturn:
    if v is None and key not in m:
        fail_missing(field)
    fail_uint(field, v, maxv, what)


def _fail_version(m: Mapping[Any, Any], key: Any, v: Any) -> NoReturn:
    if v is None and key not in m:
        fail_missing("v")
    if type(v) is int:
        raise err(ErrorCode.UNSUPPORTED_VERSION, "v", f"schema version {v} is not supported (expected 1)")
    raise err(ErrorCode.WRONG_TYPE, "v", f"expected uint, got {describe(v)}")


def _score(field: str, v: Any) -> float:
    """A confidence: float in [0, 1], or uint8 q meaning q/255."""
    if type(v) is float:
        if 0.0 <= v <= 1.0:
            return v
        fail_float(field, v, 0.0, 1.0)
    if type(v) is int:
        if 0 <= v <= 255:
            return v / 255
        raise err(ErrorCode.OUT_OF_RANGE, field, f"a quantized score must be a uint8 (0..255), got {v}")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected float in [0, 1] or uint8, got {describe(v)}")


def _number(field: str, v: Any) -> float:
    """Any finite number (an integer must fit in int64 and is converted)."""
    if type(v) is float:
        if v - v == 0.0:
            return v
        fail_float(field, v)
    if type(v) is int:
        if I64_MIN <= v <= I64_MAX:
            return float(v)
        raise err(ErrorCode.OUT_OF_RANGE, field, "integers must fit in int64")
    raise err(ErrorCode.WRONG_TYPE, field, f"expected a number, got {describe(v)}")


def _val(v: Any, limits: Limits) -> float | list[float]:
    if type(v) is float:
        if v - v == 0.0:
            return v
        fail_float("val", v)
    if type(v) is list or type(v) is tuple:
        n = len(v)
        if not 0 < n <= limits.max_val_len:
            raise err(ErrorCode.OUT_OF_RANGE, "val", f"expected 1..{limits.max_val_len} values, got {n}")
        return [_number(f"val[{i}]", e) for i, e in enumerate(v)]
    return _number("val", v)


def _top(v: Any, limits: Limits) -> list[tuple[int, float]]:
    if type(v) is not list and type(v) is not tuple:
        raise err(ErrorCode.WRONG_TYPE, "top", f"expected an array of [label, score] pairs, got {describe(v)}")
    n = len(v)
    if not 0 < n <= limits.max_top_k:
        raise err(ErrorCode.OUT_OF_RANGE, "top", f"expected 1..{limits.max_top_k} pairs, got {n}")
    out: list[tuple[int, float]] = []
    for i, pair in enumerate(v):
        if (type(pair) is not list and type(pair) is not tuple) or len(pair) != 2:
            raise err(ErrorCode.WRONG_TYPE, f"top[{i}]", f"expected a [label, score] pair, got {describe(pair)}")
        label = pair[0]
        if type(label) is not int or not 0 <= label <= U16:
            fail_uint(f"top[{i}].label", label, U16, "uint16")
        out.append((label, _score(f"top[{i}].score", pair[1])))
    return out


_KIND_NEEDS = {0: "label", 1: "anom", 2: "val", 3: "top (or label)"}
_KIND_NAMES = {k.value: k.name.lower() for k in EventKind}


def _fail_kind(kind: int) -> NoReturn:
    raise WireError(
        ErrorCode.KIND_FIELD_MISSING,
        f"{_KIND_NEEDS[kind].split(' ')[0]}: a {_KIND_NAMES[kind]} event (kind {kind}) needs {_KIND_NEEDS[kind]}",
        field=_KIND_NEEDS[kind].split(" ")[0],
    )


_Validator = Any  # Callable[[dict[Any, Any], bool, int | None, Limits], Event]


def _slow_validate(
    m: dict[Any, Any],
    keys: tuple[Any, ...],
    other_form: frozenset[Any],
    strict: bool,
    now_ms: int | None,
    limits: Limits,
) -> Event:
    """The reference validator: every check, in the documented order, raising the first failure.

    Order: ``v``; unknown keys (strict mode); the fields in key order; the field the kind needs. A null
    value of an optional field means "absent"."""
    kv, kts, kseq, kboot, kmodel, kmver, kkind, klabel, kscore, kanom, kval, ktop, klat, kx = keys
    known = frozenset(keys)
    get = m.get
    v = get(kv)
    if v != 1 or type(v) is not int:
        _fail_version(m, kv, v)
    extra = None
    if any(k not in known for k in m):
        extra = unknown_keys(m, known, other_form, strict)
    ts = get(kts)
    if ts is not None:
        ts = check_ts("ts", ts, now_ms, limits)
    seq = get(kseq)
    if type(seq) is not int or not 0 <= seq <= U32:
        _fail_required_uint(m, kseq, "seq", seq, U32, "uint32")
    boot = get(kboot)
    if type(boot) is not int or not 0 <= boot <= U32:
        _fail_required_uint(m, kboot, "boot", boot, U32, "uint32")
    model = get(kmodel)
    if model is None and kmodel not in m:
        fail_missing("model")
    model = check_model("model", model, limits)
    mver = get(kmver)
    if mver is not None and (type(mver) is not int or not 0 <= mver <= U32):
        fail_uint("mver", mver, U32, "uint32")
    kind = get(kkind)
    if type(kind) is not int or not 0 <= kind <= 3:
        _fail_required_uint(m, kkind, "kind", kind, 3, "kind")
    label = get(klabel)
    if label is not None and (type(label) is not int or not 0 <= label <= U16):
        fail_uint("label", label, U16, "uint16")
    score = get(kscore)
    if score is not None:
        score = _score("score", score)
    anom = get(kanom)
    if anom is not None:
        anom = _number("anom", anom)
    val = get(kval)
    if val is not None:
        val = _val(val, limits)
    top = get(ktop)
    if top is not None:
        top = _top(top, limits)
    lat = get(klat)
    if lat is not None and (type(lat) is not int or not 0 <= lat <= U32):
        fail_uint("lat", lat, U32, "uint32")
    x = get(kx)
    if x is not None or extra:
        x = check_extras("x", x, limits, extra)
    if kind == 0:
        if label is None:
            _fail_kind(0)
    elif kind == 1:
        if anom is None:
            _fail_kind(1)
    elif kind == 2:
        if val is None:
            _fail_kind(2)
    elif top is None and label is None:
        _fail_kind(3)
    return Event(
        v=1, ts=ts, seq=seq, boot=boot, model=model, mver=mver, kind=kind, label=label, score=score,
        anom=anom, val=val, top=top, lat=lat, x=x,
    )  # fmt: skip


def _make_validator(keys: tuple[Any, ...], other_form: frozenset[Any]) -> tuple[_Validator, _Validator]:
    # (the bounds are literals below, not the U32/TS_* names: constants are a little faster than globals)
    assert (U32, U16, TS_FLOOR_MS, TS_MAX_MS) == (0xFFFF_FFFF, 0xFFFF, 946_684_800_000, 253_402_300_799_999)
    """(fast, reference) validators specialised by closure for one key form (CBOR integers or JSON names).

    The fast one handles the common valid shapes with inline checks and hands anything unusual or invalid
    to the reference validator, which alone decides what is accepted and which error is raised; the fast
    path only ever accepts what the reference accepts, with the same result (tests/wire checks this)."""
    kv, kts, kseq, kboot, kmodel, kmver, kkind, klabel, kscore, kanom, kval, ktop, klat, kx = keys

    def slow(m: dict[Any, Any], strict: bool, now_ms: int | None, limits: Limits) -> Event:
        return _slow_validate(m, keys, other_form, strict, now_ms, limits)

    def fast(m: dict[Any, Any], strict: bool, now_ms: int | None, limits: Limits) -> Event:
        try:
            v = m[kv]
            seq = m[kseq]
            boot = m[kboot]
            model = m[kmodel]
            kind = m[kkind]
        except KeyError:
            return slow(m, strict, now_ms, limits)
        if (
            v != 1
            or type(v) is not int
            or type(seq) is not int
            or seq < 0
            or seq > 0xFFFF_FFFF
            or type(boot) is not int
            or boot < 0
            or boot > 0xFFFF_FFFF
            or type(kind) is not int
            or kind < 0
            or kind > 3
        ):
            return slow(m, strict, now_ms, limits)
        if type(model) is str:
            if not 0 < len(model) <= limits.max_text_len or "\x00" in model:
                return slow(m, strict, now_ms, limits)
        elif type(model) is not int or model < 0 or model > 0xFFFF_FFFF:
            return slow(m, strict, now_ms, limits)
        # the fields of a typical classification event first; the rest is looked up only when the map
        # has more entries than counted so far
        n = 5
        get = m.get
        ts = get(kts)
        if ts is not None:
            n += 1
            if (
                type(ts) is not int
                or ts < 946_684_800_000
                or ts > 253_402_300_799_999
                or (now_ms is not None and ts - now_ms > limits.max_future_ms)
            ):
                return slow(m, strict, now_ms, limits)
        mver = get(kmver)
        if mver is not None:
            n += 1
            if type(mver) is not int or mver < 0 or mver > 0xFFFF_FFFF:
                return slow(m, strict, now_ms, limits)
        label = get(klabel)
        if label is not None:
            n += 1
            if type(label) is not int or label < 0 or label > 0xFFFF:
                return slow(m, strict, now_ms, limits)
        score = get(kscore)
        if score is not None:
            n += 1
            if type(score) is not float or not 0.0 <= score <= 1.0:
                return slow(m, strict, now_ms, limits)
        lat = get(klat)
        if lat is not None:
            n += 1
            if type(lat) is not int or lat < 0 or lat > 0xFFFF_FFFF:
                return slow(m, strict, now_ms, limits)
        if n == len(m):
            # no anom, val, top or x: classification (or detection by label) only
            if label is None or kind == 1 or kind == 2:
                return slow(m, strict, now_ms, limits)
            return Event(
                ts=ts, seq=seq, boot=boot, model=model, mver=mver, kind=kind, label=label, score=score, lat=lat
            )  # fmt: skip
        anom = get(kanom)
        if anom is not None:
            n += 1
            if type(anom) is not float or anom - anom != 0.0:
                return slow(m, strict, now_ms, limits)
        val = get(kval)
        if val is not None:
            n += 1
            if type(val) is not float or val - val != 0.0:
                return slow(m, strict, now_ms, limits)
        top = get(ktop)
        if top is not None:
            n += 1
            try:
                top = _top(top, limits)
            except WireError:
                return slow(m, strict, now_ms, limits)
        x = get(kx)
        if x is not None:
            n += 1
            try:
                x = check_extras("x", x, limits)
            except WireError:
                return slow(m, strict, now_ms, limits)
        if n != len(m):  # unknown keys, or null values
            return slow(m, strict, now_ms, limits)
        if (
            (label is None and (kind == 0 or (kind == 3 and top is None)))
            or (kind == 1 and anom is None)
            or (kind == 2 and val is None)
        ):
            return slow(m, strict, now_ms, limits)
        return Event(
            v=1, ts=ts, seq=seq, boot=boot, model=model, mver=mver, kind=kind, label=label, score=score,
            anom=anom, val=val, top=top, lat=lat, x=x,
        )  # fmt: skip

    return fast, slow


_CBOR_KEYS = tuple(range(len(EVENT_FIELDS)))
_validate_cbor, _reference_cbor = _make_validator(_CBOR_KEYS, frozenset(EVENT_FIELDS))
_validate_json, _reference_json = _make_validator(EVENT_FIELDS, frozenset())

_BLANKS = _codec._BLANKS
_loads = cbor2.loads
_SENTINEL = _codec._SENTINEL
_NONCE = _codec._NONCE
_SEMANTIC = _codec._SEMANTIC


def decode_events(
    payload: bytes, *, strict: bool = True, now_ms: int | None = None, limits: Limits = DEFAULT_LIMITS
) -> DecodeResult:
    """Decode an event payload (one event or a batch, CBOR or JSON) and validate every event.

    Raises :class:`WireError` for a message-level failure and for an invalid single event; an invalid event
    of a batch lands in ``rejects`` (with its index) while the valid events of the batch are kept.
    ``now_ms`` (the receiver's clock) enables the ``ts_in_future`` check.
    """
    # Fast path: one CBOR event (a definite or indefinite map, major type 5) within the size limit.
    if payload and 0xA0 <= payload[0] <= 0xBF and len(payload) <= limits.max_event_bytes:
        try:
            pair = _loads(b"\x82" + payload + _SENTINEL, semantic_decoders=_SEMANTIC)
        except Exception:
            pair = None
        if pair is not None and pair[1] == _NONCE and type(m := pair[0]) is dict:
            return DecodeResult([_validate_cbor(m, strict, now_ms, limits)], [], False)
    return _decode_general(payload, strict, now_ms, limits)


def _decode_general(payload: bytes, strict: bool, now_ms: int | None, limits: Limits) -> DecodeResult:
    """Every payload, in the documented order of checks: size, syntax, top-level shape, event size."""
    n = len(payload)
    if n == 0:
        raise WireError(ErrorCode.EMPTY_PAYLOAD, "payload is empty")
    if n > limits.max_message_bytes:
        raise WireError(ErrorCode.MESSAGE_TOO_LARGE, f"payload is {n} bytes, the limit is {limits.max_message_bytes}")
    if _codec.is_json(payload):
        obj = _codec.loads_json(payload)
        validate = _validate_json
    elif payload[0] in _BLANKS and _codec.is_blank(payload):
        raise WireError(ErrorCode.EMPTY_PAYLOAD, "payload is blank")
    else:
        obj = _codec.loads_cbor(payload)
        validate = _validate_cbor
    if type(obj) is dict:
        if n > limits.max_event_bytes:
            raise WireError(ErrorCode.EVENT_TOO_LARGE, f"event is {n} bytes, the limit is {limits.max_event_bytes}")
        return DecodeResult([validate(obj, strict, now_ms, limits)], [], False)
    if type(obj) is list:
        return _decode_batch(obj, validate, strict, now_ms, limits)
    raise WireError(ErrorCode.NOT_AN_EVENT, f"top level must be a map (event) or an array (batch), got {describe(obj)}")


def _decode_batch(
    items: list[Any], validate: _Validator, strict: bool, now_ms: int | None, limits: Limits
) -> DecodeResult:
    n = len(items)
    if n == 0:
        raise WireError(ErrorCode.EMPTY_BATCH, "a batch must hold at least one event")
    if n > limits.max_batch_events:
        raise WireError(ErrorCode.BATCH_TOO_LARGE, f"batch holds {n} events, the limit is {limits.max_batch_events}")
    events: list[Event] = []
    rejects: list[WireError] = []
    for i, item in enumerate(items):
        if type(item) is not dict:
            rejects.append(
                WireError(ErrorCode.NOT_AN_EVENT, f"batch elements must be maps, got {describe(item)}", index=i)
            )
            continue
        try:
            events.append(validate(item, strict, now_ms, limits))
        except WireError as exc:
            exc.index = i
            rejects.append(exc)
    return DecodeResult(events, rejects, True)


# ---------------------------------------------------------------------------------------------- encoder
def _q(score: float) -> int:
    return round(score * 255)


def _check_for_encoding(event: Event) -> None:
    """Refuse to encode what the decoder would reject (so an encoded event always decodes)."""
    _reference_json(_name_dict(event, False), True, None, DEFAULT_LIMITS)


def _name_dict(event: Event, score_uint8: bool) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for name in EVENT_FIELDS:
        value = getattr(event, name)
        if value is None:
            continue
        if name == "score" and score_uint8:
            value = _q(value)
        elif name == "top":
            value = [[lab, _q(s) if score_uint8 else s] for lab, s in value]
        elif name == "x":
            value = {k: value[k] for k in sorted(value, key=_codec.x_key_order)}
        elif name == "kind":
            value = int(value)
        d[name] = value
    return d


def _cbor_event(event: Event, score_uint8: bool) -> dict[int, Any]:
    """The event as the integer-keyed map `dumps` writes canonically."""
    out: dict[int, Any] = {}
    for key, name in enumerate(EVENT_FIELDS):
        value = getattr(event, name)
        if value is None:
            continue
        if name == "score":
            value = _q(value) if score_uint8 else F32(value)
        elif name == "anom":
            value = Float(float(value))
        elif name == "val":
            value = [Float(float(e)) for e in value] if isinstance(value, list | tuple) else Float(float(value))
        elif name == "top":
            value = [[lab, _q(s) if score_uint8 else F32(s)] for lab, s in value]
        elif name == "x":
            value = wrap_floats(value)
        elif name == "kind":
            value = int(value)
        out[key] = value
    return out


def encode_event(event: Event, *, fmt: Literal["cbor", "json"] = "cbor", score_uint8: bool = False) -> bytes:
    """Canonical encoding of one event (docs/protocol.md, "Canonical encoding"). Raises WireError when the
    event breaks the contract."""
    _check_for_encoding(event)
    if fmt == "cbor":
        out = dumps(_cbor_event(event, score_uint8))
    elif fmt == "json":
        out = msgspec.json.encode(_name_dict(event, score_uint8))
    else:
        raise ValueError(f"unknown format {fmt!r}")
    if len(out) > DEFAULT_LIMITS.max_event_bytes:  # the decoder bounds a single event's payload
        raise WireError(
            ErrorCode.EVENT_TOO_LARGE,
            f"event encodes to {len(out)} bytes in {fmt}, the limit is {DEFAULT_LIMITS.max_event_bytes}",
        )
    return out


def encode_events(
    events: Iterable[Event], *, fmt: Literal["cbor", "json"] = "cbor", score_uint8: bool = False
) -> bytes:
    """Canonical encoding of a batch (an array, definite length). Raises WireError for an invalid event
    (with its index) or a batch the decoder would refuse (empty, too many events)."""
    evs = list(events)
    if not evs:
        raise WireError(ErrorCode.EMPTY_BATCH, "a batch must hold at least one event")
    if len(evs) > DEFAULT_LIMITS.max_batch_events:
        raise WireError(
            ErrorCode.BATCH_TOO_LARGE,
            f"batch holds {len(evs)} events, the limit is {DEFAULT_LIMITS.max_batch_events}",
        )
    for i, e in enumerate(evs):
        try:
            _check_for_encoding(e)
        except WireError as exc:
            raise exc.with_index(i) from None
    if fmt == "cbor":
        return dumps([_cbor_event(e, score_uint8) for e in evs])
    if fmt == "json":
        return msgspec.json.encode([_name_dict(e, score_uint8) for e in evs])
    raise ValueError(f"unknown format {fmt!r}")
