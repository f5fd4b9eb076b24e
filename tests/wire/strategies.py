"""Hypothesis strategies for wire payloads."""

from __future__ import annotations

import struct
from typing import Any

from hypothesis import strategies as st

from tinyfleet.wire import Event, EventKind

U32 = 0xFFFF_FFFF
TS_FLOOR = 946_684_800_000
TS_MAX = 253_402_300_799_999


def f32(x: float) -> float:
    return float(struct.unpack(">f", struct.pack(">f", x))[0])


finite = st.floats(allow_nan=False, allow_infinity=False)
# scores survive the float32 rounding of the canonical CBOR encoder exactly
score32 = st.floats(0.0, 1.0, width=32)
text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=64
)
ascii_key = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    finite,
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=10),
)
extras = st.dictionaries(ascii_key, scalar, max_size=6)


@st.composite
def events(draw: st.DrawFn, *, float32_scores: bool = True) -> Event:
    kind = draw(st.sampled_from(list(EventKind)))
    sc = score32 if float32_scores else st.floats(0.0, 1.0)
    fields: dict[str, Any] = {
        "seq": draw(st.integers(0, U32)),
        "boot": draw(st.integers(0, U32)),
        "model": draw(st.one_of(text, st.integers(0, U32))),
        "kind": int(kind),
        "ts": draw(st.none() | st.integers(TS_FLOOR, TS_MAX)),
        "mver": draw(st.none() | st.integers(0, U32)),
        "label": draw(st.none() | st.integers(0, 0xFFFF)),
        "score": draw(st.none() | sc),
        "anom": draw(st.none() | finite),
        "val": draw(st.none() | finite | st.lists(finite, min_size=1, max_size=64)),
        "top": draw(st.none() | st.lists(st.tuples(st.integers(0, 0xFFFF), sc), min_size=1, max_size=16)),
        "lat": draw(st.none() | st.integers(0, U32)),
        "x": draw(st.none() | extras),
    }
    # what the kind needs
    if kind == EventKind.CLASSIFICATION and fields["label"] is None:
        fields["label"] = draw(st.integers(0, 0xFFFF))
    if kind == EventKind.ANOMALY and fields["anom"] is None:
        fields["anom"] = draw(finite)
    if kind == EventKind.REGRESSION and fields["val"] is None:
        fields["val"] = draw(finite)
    if kind == EventKind.DETECTION and fields["top"] is None and fields["label"] is None:
        fields["top"] = draw(st.lists(st.tuples(st.integers(0, 0xFFFF), sc), min_size=1, max_size=16))
    return Event(**fields)


# values that break one rule or another, for the fast-path/reference comparison
odd_value = st.one_of(
    scalar,
    st.just(float("nan")),
    st.just(float("inf")),
    st.integers(-(2**70), 2**70),
    st.binary(max_size=3),
    st.lists(st.one_of(st.integers(-3, 300), finite, st.just(float("nan"))), max_size=3),
    st.dictionaries(st.one_of(ascii_key, st.integers(0, 3)), scalar, max_size=3),
    st.text(max_size=70),
)
