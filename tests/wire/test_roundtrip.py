"""Property tests: encode -> decode is the identity (CBOR and JSON, single and batch)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tinyfleet.wire import (
    Caps,
    DeviceState,
    ErrorCode,
    Event,
    Telemetry,
    WireError,
    decode_events,
    decode_state,
    decode_telemetry,
    encode_event,
    encode_events,
    encode_state,
    encode_telemetry,
)

from .strategies import U32, events, extras, text

SETTINGS = settings(max_examples=400, deadline=None)


def encode_within_limits(event: Event, **kw: Any) -> bytes:
    """encode_event, for generated events that fit a single-event payload (JSON is the larger form)."""
    try:
        return encode_event(event, **kw)
    except WireError as exc:
        if exc.code is not ErrorCode.EVENT_TOO_LARGE:
            raise
        assume(False)
        raise


def test_encoder_refuses_an_event_the_decoder_would_refuse_for_its_size() -> None:
    big = Event(seq=1, boot=1, model="m", kind=2, val=[0.123456789012345] * 64)
    assert len(encode_event(big)) < 1024  # CBOR: 9 bytes a float64
    with pytest.raises(WireError) as err:  # JSON: 17 digits a value
        encode_event(big, fmt="json")
    assert err.value.code is ErrorCode.EVENT_TOO_LARGE


@SETTINGS
@given(events())
def test_cbor_round_trip(event: Event) -> None:
    payload = encode_within_limits(event)
    r = decode_events(payload)
    assert r.events == [event]
    assert not r.is_batch
    assert encode_event(r.events[0]) == payload  # canonical is stable


@SETTINGS
@given(events(float32_scores=False))
def test_json_round_trip(event: Event) -> None:
    payload = encode_within_limits(event, fmt="json")
    assert decode_events(payload).events == [event]


@SETTINGS
@given(st.lists(events(), min_size=1, max_size=12), st.sampled_from(["cbor", "json"]))
def test_batch_round_trip(batch: list[Event], fmt: Any) -> None:
    r = decode_events(encode_events(batch, fmt=fmt))
    assert r.is_batch
    assert r.rejects == []
    assert r.events == batch


@SETTINGS
@given(events(float32_scores=False), st.sampled_from(["cbor", "json"]))
def test_uint8_scores_round_trip_within_quantization(event: Event, fmt: Any) -> None:
    r = decode_events(encode_within_limits(event, fmt=fmt, score_uint8=True))
    (got,) = r.events
    if event.score is not None:
        assert got.score is not None
        assert abs(got.score - event.score) <= 0.5 / 255 + 1e-12
    if event.top is not None:
        assert got.top is not None
        for (la, sa), (lb, sb) in zip(got.top, event.top, strict=True):
            assert la == lb
            assert abs(sa - sb) <= 0.5 / 255 + 1e-12


@SETTINGS
@given(events(float32_scores=False))
def test_cbor_score_is_float32(event: Event) -> None:
    (got,) = decode_events(encode_within_limits(event)).events
    if event.score is not None:
        assert got.score is not None
        assert abs(got.score - event.score) <= 2**-24


opt_u32 = st.none() | st.integers(0, U32)


@st.composite
def telemetry(draw: st.DrawFn) -> Telemetry:
    return Telemetry(
        ts=draw(st.none() | st.integers(946_684_800_000, 4_102_444_800_000)),
        uptime_s=draw(opt_u32),
        boot=draw(opt_u32),
        battery_pct=draw(st.none() | st.integers(0, 100)),
        battery_mv=draw(st.none() | st.integers(0, 0xFFFF)),
        rssi_dbm=draw(st.none() | st.integers(-128, 127)),
        heap_free=draw(opt_u32),
        arena_free=draw(opt_u32),
        infer_count=draw(st.none() | st.integers(0, 2**63 - 1)),
        lat_avg_us=draw(opt_u32),
        lat_max_us=draw(opt_u32),
        dropped=draw(opt_u32),
        x=draw(st.none() | extras),
    )


@SETTINGS
@given(telemetry(), st.sampled_from(["cbor", "json"]))
def test_telemetry_round_trip(tel: Telemetry, fmt: Any) -> None:
    assert decode_telemetry(encode_telemetry(tel, fmt=fmt)) == tel


@st.composite
def states(draw: st.DrawFn) -> DeviceState:
    caps = draw(
        st.none()
        | st.builds(
            Caps,
            flash=opt_u32,
            ram=opt_u32,
            arena=opt_u32,
            ops=st.none() | st.lists(text, max_size=8),
        )
    )
    return DeviceState(
        online=draw(st.booleans()),
        ts=draw(st.none() | st.integers(946_684_800_000, 4_102_444_800_000)),
        boot=draw(opt_u32),
        model=draw(st.none() | text | st.integers(0, U32)),
        mver=draw(opt_u32),
        fw=draw(st.none() | text),
        caps=caps,
        reason=draw(st.none() | text),
        x=draw(st.none() | extras),
    )


@SETTINGS
@given(states(), st.sampled_from(["cbor", "json"]))
def test_state_round_trip(state: DeviceState, fmt: Any) -> None:
    assert decode_state(encode_state(state, fmt=fmt)) == state
