"""The public API: names, error codes, limits, encoders' refusals, details."""

from __future__ import annotations

import pickle

import cbor2
import pytest

import tinyfleet.wire as wire
from tinyfleet.wire import (
    DEFAULT_LIMITS,
    Caps,
    DecodeResult,
    DeviceState,
    ErrorCode,
    Event,
    EventKind,
    Limits,
    Telemetry,
    WireError,
    _codec,
    decode_events,
    decode_state,
    decode_telemetry,
    encode_event,
    encode_events,
    encode_state,
    encode_telemetry,
)

EXAMPLE = bytes.fromhex("aa0001011b0000019abae28a000205030304677669622d636c7305040600070308fa3f6e147b0c1909c4")

#: Published codes: values must never change. Adding a code means adding it here (and to docs/protocol.md).
PUBLISHED = {
    "empty_payload", "message_too_large", "malformed_cbor", "malformed_json", "trailing_bytes", "not_an_event",
    "empty_batch", "batch_too_large", "event_too_large", "unsupported_version", "unknown_key", "duplicate_key",
    "missing_field", "wrong_type", "out_of_range", "non_finite", "ts_in_future", "ts_before_epoch_floor",
    "kind_field_missing", "extras_too_large", "bad_device_id", "bad_topic",
}  # fmt: skip


def test_error_codes_are_stable() -> None:
    assert {c.value for c in ErrorCode} == PUBLISHED
    for c in ErrorCode:
        assert c.value == c.name.lower()


def test_error_codes_are_documented() -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    for c in ErrorCode:
        assert f"`{c.value}`" in doc, c


def test_public_names() -> None:
    for name in [
        "ErrorCode", "WireError", "Limits", "Event", "EventKind", "DecodeResult", "decode_events",
        "encode_event", "encode_events", "Telemetry", "decode_telemetry", "encode_telemetry", "DeviceState",
        "decode_state", "encode_state", "validate_device_id", "Topics",
    ]:  # fmt: skip
        assert hasattr(wire, name), name
        assert name in wire.__all__


def test_limits_defaults() -> None:
    lim = Limits()
    assert (lim.max_event_bytes, lim.max_batch_events, lim.max_message_bytes) == (1024, 256, 262_144)
    assert lim.max_future_ms == 24 * 3600 * 1000
    assert (lim.max_extras_keys, lim.max_extras_bytes, lim.max_top_k, lim.max_val_len, lim.max_text_len) == (
        16,
        256,
        16,
        64,
        64,
    )
    assert lim.max_batch_events * lim.max_event_bytes == lim.max_message_bytes
    assert lim == DEFAULT_LIMITS
    with pytest.raises(AttributeError):
        lim.max_event_bytes = 5  # type: ignore[misc]


def test_event_struct() -> None:
    e = decode_events(EXAMPLE).events[0]
    assert isinstance(e, Event)
    assert e.kind == EventKind.CLASSIFICATION
    with pytest.raises(AttributeError):
        e.seq = 6  # type: ignore[misc]
    with pytest.raises(TypeError):
        Event(1, 5, 3, "m", 0)  # type: ignore[misc]


def test_wire_error_shape_and_pickle() -> None:
    with pytest.raises(WireError) as info:
        decode_events(cbor2.dumps({0: 1, 2: -1, 3: 1, 4: "m", 6: 0, 7: 0}))
    err = info.value
    assert err.code is ErrorCode.OUT_OF_RANGE
    assert err.field == "seq"
    assert err.detail.startswith("seq: ")
    assert err.index is None
    assert str(err).startswith("out_of_range: seq")
    assert pickle.loads(pickle.dumps(err)) == err
    assert err.as_dict() == {"code": "out_of_range", "detail": err.detail, "field": "seq", "index": None}
    assert isinstance(err, ValueError)


def test_batch_rejects_keep_index_and_order() -> None:
    good = encode_event(Event(seq=1, boot=1, model="m", kind=0, label=1))
    bad = cbor2.dumps({0: 1, 2: 1, 3: 1, 4: "m", 6: 1})
    payload = b"\x84" + good + bad + bad + good
    r = decode_events(payload)
    assert isinstance(r, DecodeResult)
    assert r.is_batch
    assert [e.seq for e in r.events] == [1, 1]
    assert [(x.code, x.index) for x in r.rejects] == [
        (ErrorCode.KIND_FIELD_MISSING, 1),
        (ErrorCode.KIND_FIELD_MISSING, 2),
    ]
    assert "event 1" in str(r.rejects[0])


def test_single_event_and_batch_of_one_differ_in_is_batch() -> None:
    assert decode_events(EXAMPLE).is_batch is False
    assert decode_events(b"\x81" + EXAMPLE).is_batch is True


def test_encoder_refuses_invalid_events() -> None:
    with pytest.raises(WireError) as info:
        encode_event(Event(seq=1, boot=1, model="m", kind=0))
    assert info.value.code is ErrorCode.KIND_FIELD_MISSING
    with pytest.raises(WireError) as info:
        encode_event(Event(seq=1, boot=1, model="m", kind=0, label=1, score=float("nan")))
    assert info.value.code is ErrorCode.NON_FINITE
    with pytest.raises(WireError) as info:
        encode_events([Event(seq=1, boot=1, model="m", kind=0, label=1), Event(seq=-1, boot=1, model="m", kind=0)])
    assert info.value.index == 1
    with pytest.raises(WireError) as info:
        encode_events([])
    assert info.value.code is ErrorCode.EMPTY_BATCH
    with pytest.raises(ValueError, match="format"):
        encode_event(Event(seq=1, boot=1, model="m", kind=0, label=1), fmt="xml")  # type: ignore[arg-type]


def test_encoder_accepts_event_kind_members() -> None:
    e = Event(seq=1, boot=1, model="m", kind=EventKind.ANOMALY, anom=0.5)
    assert decode_events(encode_event(e)).events[0].kind == 1
    assert decode_events(encode_event(e, fmt="json")).events[0].kind == 1


def test_canonical_float_rules() -> None:
    e = Event(seq=1, boot=1, model="m", kind=2, val=[0.5, 0.1, 1e300], score=0.93, anom=1.0)
    b = encode_event(e)
    assert b"\xfa" + bytes.fromhex("3f6e147b") in b  # score as float32
    assert bytes.fromhex("fa3f000000") in b  # 0.5: float32 exact
    assert bytes.fromhex("fb3fb999999999999a") in b  # 0.1: float64
    assert b"\xf9" not in b  # never float16


def test_score_uint8_encoding() -> None:
    e = Event(seq=1, boot=1, model="m", kind=0, label=1, score=0.5)
    b = encode_event(e, score_uint8=True)
    assert b.endswith(bytes.fromhex("08187f")) or b.endswith(bytes.fromhex("081880"))
    assert decode_events(b).events[0].score == round(0.5 * 255) / 255


def test_now_ms_future_limit_is_inclusive() -> None:
    now = 1_764_072_000_000
    ok = Event(ts=now + 86_400_000, seq=1, boot=1, model="m", kind=0, label=1)
    assert decode_events(encode_event(ok), now_ms=now).events == [ok]
    late = Event(ts=now + 86_400_001, seq=1, boot=1, model="m", kind=0, label=1)
    with pytest.raises(WireError) as info:
        decode_events(encode_event(late), now_ms=now)
    assert info.value.code is ErrorCode.TS_IN_FUTURE
    assert decode_events(encode_event(late)).events == [late]  # no clock given: no future check


def test_custom_limits() -> None:
    e = Event(seq=1, boot=1, model="model-name", kind=0, label=1, x={"a": 1, "b": 2})
    p = encode_event(e)
    with pytest.raises(WireError) as info:
        decode_events(p, limits=Limits(max_text_len=4))
    assert info.value.code is ErrorCode.OUT_OF_RANGE
    with pytest.raises(WireError) as info:
        decode_events(p, limits=Limits(max_extras_keys=1))
    assert info.value.code is ErrorCode.EXTRAS_TOO_LARGE
    with pytest.raises(WireError) as info:
        decode_events(p, limits=Limits(max_event_bytes=10))
    assert info.value.code is ErrorCode.EVENT_TOO_LARGE


def test_lenient_keeps_unknown_keys_in_x() -> None:
    p = cbor2.dumps({0: 1, 2: 1, 3: 1, 4: "m", 6: 0, 7: 0, 13: {"a": 1}, 99: "z", "fw": "1.0"})
    with pytest.raises(WireError) as info:
        decode_events(p)
    assert info.value.code is ErrorCode.UNKNOWN_KEY
    (e,) = decode_events(p, strict=False).events
    assert e.x == {"a": 1, "99": "z", "fw": "1.0"}


def test_unknown_key_hint_for_names_in_cbor() -> None:
    with pytest.raises(WireError) as info:
        decode_events(cbor2.dumps({0: 1, "seq": 1, 3: 1, 4: "m", 6: 0, 7: 0}))
    assert "integer keys" in info.value.detail


def test_v_checked_before_everything() -> None:
    with pytest.raises(WireError) as info:
        decode_events(cbor2.dumps({0: 2, 99: 1}))
    assert info.value.code is ErrorCode.UNSUPPORTED_VERSION


def test_cbor2_builtin_tags_are_all_overridden() -> None:
    """Re-probe cbor2 for tags it decodes itself: every one must be in _codec's override table."""
    found = []
    for n in [*range(1100), 1004, 43000, 55799]:
        head = bytes((0xC0 + n,)) if n < 24 else (b"\xd8" + bytes((n,)) if n < 256 else b"\xd9" + n.to_bytes(2, "big"))
        try:
            r = cbor2.loads(head + b"\x00")
        except Exception:
            found.append(n)
            continue
        if not (isinstance(r, cbor2.CBORTag) and r.tag == n):
            found.append(n)
    assert set(found) <= set(_codec._SEMANTIC), sorted(set(found) - set(_codec._SEMANTIC))


def test_deep_nesting_is_malformed_not_a_crash() -> None:
    deep = b"\xa1\x0d" + b"\x81" * 5000 + b"\x00"
    with pytest.raises(WireError) as info:
        decode_events(deep)
    assert info.value.code is ErrorCode.MALFORMED_CBOR
    with pytest.raises(WireError) as info:
        decode_events(b"[" * 5000 + b"]" * 5000)
    assert info.value.code is ErrorCode.MALFORMED_JSON


def test_bytearray_and_memoryview_payloads() -> None:
    assert decode_events(bytearray(EXAMPLE)).events == decode_events(EXAMPLE).events  # type: ignore[arg-type]
    assert decode_events(memoryview(EXAMPLE)).events == decode_events(EXAMPLE).events  # type: ignore[arg-type]


def test_state_cleared_and_lwt() -> None:
    assert decode_state(b"") is None
    assert encode_state(None) == b""
    lwt = DeviceState(online=False, reason="lwt")
    assert decode_state(encode_state(lwt)) == lwt
    birth = DeviceState(online=True, fw="1.0", caps=Caps(arena=1000, ops=["ADD", "CONV_2D"]))
    assert decode_state(encode_state(birth, fmt="json")) == birth


def test_telemetry_rejects_batches_and_bools() -> None:
    with pytest.raises(WireError) as info:
        decode_telemetry(b"\x81" + encode_telemetry(Telemetry(uptime_s=1)))
    assert info.value.code is ErrorCode.NOT_AN_EVENT
    with pytest.raises(WireError) as info:
        decode_telemetry(cbor2.dumps({0: 1, 2: True}))
    assert info.value.code is ErrorCode.WRONG_TYPE
    with pytest.raises(WireError) as info:
        decode_telemetry(b'{"v":1,"uptime_s":1.5}')
    assert info.value.code is ErrorCode.WRONG_TYPE
    with pytest.raises(WireError) as info:
        decode_telemetry(b"a" * 2000)
    assert info.value.code is ErrorCode.MESSAGE_TOO_LARGE


def test_numeric_keys_compare_by_value() -> None:
    """Documented (not portable): a CBOR key false/true or 2.0 is the integer key of the same value."""
    m = {False: 1, 2.0: 7, 3: 1, 4: "m", 6: 0, 7: 0}
    assert decode_events(cbor2.dumps(m)).events[0].seq == 7


def test_duplicate_keys_last_wins() -> None:
    payload = bytes.fromhex("a70001020102020301046161060007 00".replace(" ", ""))
    assert decode_events(payload).events[0].seq == 2
    assert decode_events(b'{"v":1,"seq":1,"seq":2,"boot":1,"model":"m","kind":0,"label":0}').events[0].seq == 2
