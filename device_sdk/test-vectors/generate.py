#!/usr/bin/env python3
"""Generate the wire-contract v1 test vectors (events.json, telemetry.json, state.json).

Every payload is built byte by byte with the tiny raw CBOR writer below (not with the encoder under test),
the expected decoded value / error code of every case is written here by hand, and the generator asserts
that ``tinyfleet.wire`` agrees before it writes anything. ``canonical`` is asserted the same way: it must
equal "the canonical encoder reproduces the bytes exactly".

    .venv/bin/python device_sdk/test-vectors/generate.py           # rewrite the files
    .venv/bin/python device_sdk/test-vectors/generate.py --check   # fail if the files are stale
"""

from __future__ import annotations

import json
import struct
import sys
from pathlib import Path
from typing import Any

import msgspec

from tinyfleet.wire import (
    DeviceState,
    Event,
    Limits,
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

HERE = Path(__file__).resolve().parent


def check(cond: object, *context: object) -> None:
    """An assertion that also runs under ``python -O``."""
    if not cond:
        raise AssertionError(*context)


VERSION = 1


# ------------------------------------------------------------------------------------------ raw CBOR writer
def head(major: int, n: int, width: int | None = None) -> bytes:
    """Major type + argument; ``width`` forces a (non-shortest) argument size of 0/1/2/4/8 bytes."""
    mt = major << 5
    if width is None:
        width = 0 if n < 24 else 1 if n <= 0xFF else 2 if n <= 0xFFFF else 4 if n <= 0xFFFFFFFF else 8
    if width == 0:
        return bytes((mt | n,))
    ai = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes((mt | ai,)) + n.to_bytes(width, "big")


def u(n: int, width: int | None = None) -> bytes:
    return head(0, n, width) if n >= 0 else head(1, -1 - n, width)


def t(s: str) -> bytes:
    b = s.encode()
    return head(3, len(b)) + b


def bs(b: bytes) -> bytes:
    return head(2, len(b)) + b


def f16(x: float) -> bytes:
    return b"\xf9" + struct.pack(">e", x)


def f32(x: float) -> bytes:
    return b"\xfa" + struct.pack(">f", x)


def f64(x: float) -> bytes:
    return b"\xfb" + struct.pack(">d", x)


def arr(*items: bytes) -> bytes:
    return head(4, len(items)) + b"".join(items)


def mp(*pairs: tuple[bytes, bytes]) -> bytes:
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def ev(**fields: bytes) -> bytes:
    """A map with the event keys (by JSON name) in ascending key order; values are raw CBOR."""
    order = ["v", "ts", "seq", "boot", "model", "mver", "kind", "label", "score", "anom", "val", "top", "lat", "x"]
    return mp(*((u(order.index(k)), fields[k]) for k in order if k in fields))


def extend(m: bytes, *pairs: tuple[bytes, bytes]) -> bytes:
    """Append entries to an encoded definite-length map of fewer than 23 entries (bumps its header)."""
    check(0xA0 <= m[0] < 0xB7 and m[0] + len(pairs) < 0xB8)
    return bytes((m[0] + len(pairs),)) + m[1:] + b"".join(k + v for k, v in pairs)


def tag(n: int, item: bytes) -> bytes:
    return head(6, n) + item


TRUE, FALSE, NULL, UNDEF = b"\xf5", b"\xf4", b"\xf6", b"\xf7"
F32_093 = struct.unpack(">f", struct.pack(">f", 0.93))[0]  # 0.9300000071525574
TS = 1_764_072_000_000  # 2025-11-25T12:00:00Z
NOW = TS + 60_000
DAY = 86_400_000
U32 = 0xFFFFFFFF
EXAMPLE_HEX = "aa0001011b0000019abae28a000205030304677669622d636c7305040600070308fa3f6e147b0c1909c4"
EXAMPLE_JSON = (
    b'{"v":1,"ts":1764072000000,"seq":5,"boot":3,"model":"vib-cls","mver":4,"kind":0,"label":3,"score":0.93,"lat":2500}'
)


def base(**over: bytes) -> dict[str, bytes]:
    """The DESIGN.md example's fields as raw CBOR, with overrides (a value of b"" removes the field)."""
    d = {
        "v": u(1),
        "ts": u(TS),
        "seq": u(5),
        "boot": u(3),
        "model": t("vib-cls"),
        "mver": u(4),
        "kind": u(0),
        "label": u(3),
        "score": f32(0.93),
        "lat": u(2500),
    }
    d.update(over)
    return {k: v for k, v in d.items() if v != b""}


BASE_DECODED: dict[str, Any] = {
    "v": 1,
    "ts": TS,
    "seq": 5,
    "boot": 3,
    "model": "vib-cls",
    "mver": 4,
    "kind": 0,
    "label": 3,
    "score": F32_093,
    "lat": 2500,
}


def dec(**over: Any) -> dict[str, Any]:
    d = dict(BASE_DECODED)
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


def mini(**over: bytes) -> bytes:
    """A minimal classification event (v, seq, boot, model, kind, label) with overrides."""
    d = {"v": u(1), "seq": u(1), "boot": u(1), "model": t("m"), "kind": u(0), "label": u(0)}
    d.update(over)
    return ev(**{k: v for k, v in d.items() if v != b""})


MINI: dict[str, Any] = {"v": 1, "seq": 1, "boot": 1, "model": "m", "kind": 0, "label": 0}


def mdec(**over: Any) -> dict[str, Any]:
    d = dict(MINI)
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


# ------------------------------------------------------------------------------------------------ cases
VALID: list[dict[str, Any]] = []
INVALID: list[dict[str, Any]] = []


def valid(
    name: str,
    payload: bytes,
    decoded: Any,
    *,
    canonical: bool,
    strict: bool = True,
    fmt: str | None = None,
    now_ms: int | None = None,
    score_uint8: bool = False,
    note: str = "",
) -> None:
    case: dict[str, Any] = {
        "name": name,
        "format": fmt or ("json" if payload.lstrip()[:1] in (b"{", b"[") else "cbor"),
        "hex": payload.hex(),
        "decoded": decoded,
        "canonical": canonical,
        "strict": strict,
    }
    if score_uint8:
        case["encode"] = {"score_uint8": True}
    if now_ms is not None:
        case["now_ms"] = now_ms
    if note:
        case["note"] = note
    VALID.append(case)


def invalid(
    name: str,
    payload: bytes,
    error: str,
    *,
    index: int | None = None,
    strict: bool = True,
    now_ms: int | None = None,
    limits: dict[str, int] | None = None,
    decoded: Any = None,
    field: str | None = None,
    note: str = "",
) -> None:
    case: dict[str, Any] = {
        "name": name,
        "format": "json" if payload.lstrip()[:1] in (b"{", b"[") else "cbor",
        "hex": payload.hex(),
        "error": error,
        "index": index,
        "strict": strict,
    }
    if field is not None:
        case["field"] = field
    if now_ms is not None:
        case["now_ms"] = now_ms
    if limits:
        case["limits"] = limits
    if decoded is not None:
        case["decoded"] = decoded  # the valid events of a batch that has rejects
    if note:
        case["note"] = note
    INVALID.append(case)


# --- valid events -------------------------------------------------------------------------------------
example = bytes.fromhex(EXAMPLE_HEX)
check(example == ev(**base()), "the DESIGN.md example hex does not match its fields")
valid("design_example", example, dec(), canonical=True, note="DESIGN.md §3 example, 42 bytes, float32 score")
valid(
    "design_example_json",
    EXAMPLE_JSON,
    dec(score=0.93),
    canonical=True,
    note="the same event as compact JSON (113 bytes); JSON keeps the float64 score",
)
valid("minimal_classification", mini(), mdec(), canonical=True)
valid(
    "no_ts_uint8_score",
    ev(**base(ts=b"", score=u(237))),
    dec(ts=None, score=237 / 255),
    canonical=True,
    score_uint8=True,
    note="no device clock (ts omitted) and a quantized score q=237 -> 237/255: 29 bytes",
)
valid("anomaly", mini(kind=u(1), label=b"", anom=f32(0.25)), mdec(kind=1, label=None, anom=0.25), canonical=True)
valid(
    "anomaly_float64",
    mini(kind=u(1), label=b"", anom=f64(0.1)),
    mdec(kind=1, label=None, anom=0.1),
    canonical=True,
    note="0.1 has no exact float32: the encoder keeps float64 for anom/val/x",
)
valid(
    "anomaly_integer",
    mini(kind=u(1), label=b"", anom=u(3)),
    mdec(kind=1, label=None, anom=3.0),
    canonical=False,
    note="an integer anom is converted to float",
)
valid(
    "regression_scalar",
    mini(kind=u(2), label=b"", val=f32(21.5)),
    mdec(kind=2, label=None, val=21.5),
    canonical=True,
)
valid(
    "regression_array",
    mini(kind=u(2), label=b"", val=arr(f32(1.5), f32(-2.25), f64(0.1))),
    mdec(kind=2, label=None, val=[1.5, -2.25, 0.1]),
    canonical=True,
)
valid(
    "detection_top",
    mini(kind=u(3), label=b"", top=arr(arr(u(1), f32(0.75)), arr(u(4), f32(0.125)))),
    mdec(kind=3, label=None, top=[[1, 0.75], [4, 0.125]]),
    canonical=True,
)
valid(
    "detection_top_uint8",
    mini(kind=u(3), label=b"", top=arr(arr(u(1), u(255)), arr(u(4), u(51)))),
    mdec(kind=3, label=None, top=[[1, 1.0], [4, 0.2]]),
    canonical=True,
    score_uint8=True,
)
valid(
    "detection_label_only",
    mini(kind=u(3), label=u(7)),
    mdec(kind=3, label=7),
    canonical=True,
    note="a detection event needs top or label",
)
valid("score_float16", ev(**base(score=f16(0.5))), dec(score=0.5), canonical=False, note="the encoder writes float32")
valid("score_float32", ev(**base(score=f32(0.5))), dec(score=0.5), canonical=True)
valid(
    "score_float64",
    ev(**base(score=f64(0.93))),
    dec(score=0.93),
    canonical=False,
    note="the encoder rounds scores to float32",
)
valid("score_zero", ev(**base(score=f32(0.0))), dec(score=0.0), canonical=True)
valid("score_one", ev(**base(score=f32(1.0))), dec(score=1.0), canonical=True)
valid("score_uint8_0", ev(**base(score=u(0))), dec(score=0.0), canonical=True, score_uint8=True)
valid("score_uint8_255", ev(**base(score=u(255, 1))), dec(score=1.0), canonical=True, score_uint8=True)
valid("model_uint", ev(**base(model=u(42))), dec(model=42), canonical=True)
valid(
    "boundaries_max",
    ev(
        **base(
            seq=u(U32),
            boot=u(U32),
            model=t("m" * 64),
            mver=u(U32),
            kind=u(0),
            label=u(0xFFFF),
            lat=u(U32),
        )
    ),
    dec(seq=U32, boot=U32, model="m" * 64, mver=U32, label=0xFFFF, lat=U32),
    canonical=True,
    note="uint32 max for seq/boot/mver/lat, uint16 max label, 64-character model id",
)
valid(
    "boundaries_min",
    ev(**base(seq=u(0), boot=u(0), model=u(0), mver=u(0), label=u(0), lat=u(0))),
    dec(seq=0, boot=0, model=0, mver=0, label=0, lat=0),
    canonical=True,
)
valid("ts_epoch_floor", ev(**base(ts=u(946_684_800_000))), dec(ts=946_684_800_000), canonical=True)
valid(
    "ts_future_within_limit",
    ev(**base(ts=u(NOW + DAY))),
    dec(ts=NOW + DAY),
    canonical=True,
    now_ms=NOW,
    note="exactly max_future_ms (24 h) ahead of now_ms is still accepted",
)
valid(
    "extras",
    ev(**base(x=mp((t("n"), NULL), (t("ok"), TRUE), (t("fw"), t("1.2.0")), (t("temp"), f32(21.5)), (t("cnt"), u(-3))))),
    dec(x={"n": None, "ok": True, "fw": "1.2.0", "cnt": -3, "temp": 21.5}),
    canonical=False,
    note="x entries not in canonical order (shorter key first, then bytewise)",
)
valid(
    "extras_canonical",
    ev(**base(x=mp((t("n"), NULL), (t("fw"), t("1.2.0")), (t("ok"), TRUE), (t("cnt"), u(-3)), (t("temp"), f32(21.5))))),
    dec(x={"n": None, "fw": "1.2.0", "ok": True, "cnt": -3, "temp": 21.5}),
    canonical=True,
)
valid(
    "lenient_unknown_int_key",
    extend(ev(**base()), (u(20), u(7))),
    dec(x={"20": 7}),
    canonical=False,
    strict=False,
    note="lenient mode keeps an unknown key in x under str(key)",
)
valid(
    "lenient_unknown_text_key",
    extend(ev(**base()), (t("fw"), t("1.2"))),
    dec(x={"fw": "1.2"}),
    canonical=False,
    strict=False,
)
valid(
    "indefinite_map",
    b"\xbf" + ev(**base())[1:] + b"\xff",
    dec(),
    canonical=False,
    note="indefinite-length items are accepted (never produced by the encoder)",
)
valid(
    "indefinite_text_model",
    ev(**base(model=b"\x7f" + t("vib") + t("-cls") + b"\xff")),
    dec(),
    canonical=False,
)
valid(
    "non_shortest_ints",
    ev(**base(seq=u(5, 4), boot=u(3, 8), kind=u(0, 1))),
    dec(),
    canonical=False,
    note="integers in a longer form than needed are accepted",
)
valid(
    "keys_unordered",
    mp((u(6), u(0)), (u(4), t("vib-cls")), (u(0), u(1)), (u(2), u(5)), (u(3), u(3)), (u(7), u(3))),
    {"v": 1, "seq": 5, "boot": 3, "model": "vib-cls", "kind": 0, "label": 3},
    canonical=False,
)
valid(
    "self_described_cbor_tag",
    tag(55799, example),
    dec(),
    canonical=False,
    note="tag 55799 (self-described CBOR) is the only tag accepted; it is ignored",
)
valid(
    "duplicate_key_last_wins",
    mp((u(0), u(1)), (u(2), u(1)), (u(2), u(2)), (u(3), u(1)), (u(4), t("m")), (u(6), u(0)), (u(7), u(0))),
    mdec(seq=2),
    canonical=False,
    note="not portable: duplicate keys are not detected and the last value wins (as in JSON); do not send them",
)
valid(
    "null_optional_field",
    ev(**base(mver=NULL)),
    dec(mver=None),
    canonical=False,
    note="null for an optional field means absent",
)
valid(
    "batch_two",
    arr(ev(**base()), ev(**base(seq=u(6), score=f32(0.5)))),
    [dec(), dec(seq=6, score=0.5)],
    canonical=True,
)
valid("batch_one", arr(mini()), [mdec()], canonical=True)
valid(
    "batch_mixed_kinds",
    arr(
        mini(), mini(seq=u(2), kind=u(1), label=b"", anom=f32(2.5)), mini(seq=u(3), kind=u(2), label=b"", val=f32(-1.0))
    ),
    [mdec(), mdec(seq=2, kind=1, label=None, anom=2.5), mdec(seq=3, kind=2, label=None, val=-1.0)],
    canonical=True,
)
valid(
    "batch_indefinite",
    b"\x9f" + mini() + mini(seq=u(2)) + b"\xff",
    [mdec(), mdec(seq=2)],
    canonical=False,
)
valid(
    "json_batch",
    b'[{"v":1,"seq":1,"boot":1,"model":"m","kind":0,"label":0},{"v":1,"seq":2,"boot":1,"model":"m","kind":1,"anom":0.5}]',
    [mdec(), mdec(seq=2, kind=1, label=None, anom=0.5)],
    canonical=True,
)
valid(
    "json_whitespace",
    b' \n\t{ "v": 1, "seq": 1, "boot": 1, "model": "m", "kind": 0, "label": 0 }\r\n',
    mdec(),
    canonical=False,
    note="leading blanks before { still mean JSON",
)
valid(
    "json_uint8_score",
    b'{"v":1,"seq":1,"boot":1,"model":"m","kind":0,"label":0,"score":51}',
    mdec(score=0.2),
    canonical=True,
    score_uint8=True,
    note="an integer score is uint8 q/255 in JSON too; write 1.0, not 1, for a float score",
)
valid(
    "json_top_extras_model_uint",
    b'{"v":1,"seq":1,"boot":1,"model":7,"kind":3,"top":[[2,0.5],[9,0.25]],"x":{"t":21.5,"fw":"1.2"}}',
    mdec(model=7, kind=3, label=None, top=[[2, 0.5], [9, 0.25]], x={"t": 21.5, "fw": "1.2"}),
    canonical=True,
)
valid(
    "json_lenient_unknown_key",
    b'{"v":1,"seq":1,"boot":1,"model":"m","kind":0,"label":0,"fw":"1.2"}',
    mdec(x={"fw": "1.2"}),
    canonical=False,
    strict=False,
)
valid(
    "json_null_ts",
    b'{"v":1,"ts":null,"seq":1,"boot":1,"model":"m","kind":0,"label":0}',
    mdec(),
    canonical=False,
)

# an event of exactly max_event_bytes (1024): padded with empty chunks of an indefinite-length model text
_pad_head = ev(**base(model=b"\x7f" + t("vib-cls") + b"\xff"))
_padded = ev(**base(model=b"\x7f" + t("vib-cls") + b"\x60" * (1024 - len(_pad_head)) + b"\xff"))
check(len(_padded) == 1024)
valid("event_1024_bytes", _padded, dec(), canonical=False, note="exactly max_event_bytes")

# --- invalid events -----------------------------------------------------------------------------------
invalid("empty", b"", "empty_payload")
invalid("blank", b" \r\n", "empty_payload", note="only blanks")
invalid("truncated", example[:-1], "malformed_cbor", note="the DESIGN.md example without its last byte")
invalid("truncated_header", example[:12], "malformed_cbor")
invalid("reserved_additional_info", b"\xa1\x00\x1c", "malformed_cbor", note="additional information 28 is reserved")
invalid("stray_break", b"\xff", "malformed_cbor")
invalid("invalid_utf8", ev(**base(model=b"\x62\xc3\x28")), "malformed_cbor")
invalid("indefinite_unterminated", b"\xbf" + ev(**base())[1:], "malformed_cbor")
invalid("trailing_byte", example + b"\x00", "trailing_bytes")
invalid("trailing_break", example + b"\xff", "trailing_bytes")
invalid("trailing_item", example + example, "trailing_bytes", note="two events back to back are not a batch")
invalid("json_truncated", EXAMPLE_JSON[:-1], "malformed_json")
invalid("json_nan_literal", b'{"v":1,"seq":1,"boot":1,"model":"m","kind":1,"anom":NaN}', "malformed_json")
invalid("json_trailing", EXAMPLE_JSON + b"x", "malformed_json", note="JSON trailing garbage is a JSON syntax error")
invalid("json_overflow_number", b'{"v":1,"seq":1,"boot":1,"model":"m","kind":1,"anom":1e999}', "malformed_json")
invalid("not_a_map_int", u(5), "not_an_event")
invalid("not_a_map_text", t("hello"), "not_an_event")
invalid("json_not_a_map", b'["x"]', "not_an_event", index=0, note="a batch element that is not a map")
invalid("empty_batch", b"\x80", "empty_batch")
invalid("json_empty_batch", b"[]", "empty_batch")
invalid(
    "batch_too_large",
    arr(*[mini(seq=u(i)) for i in range(257)]),
    "batch_too_large",
    note="257 events (limit 256)",
)
invalid(
    "batch_too_large_small_limit",
    arr(mini(), mini(seq=u(2)), mini(seq=u(3))),
    "batch_too_large",
    limits={"max_batch_events": 2},
)
invalid(
    "message_too_large_small_limit",
    arr(mini(), mini(seq=u(2))),
    "message_too_large",
    limits={"max_message_bytes": 20},
)
_big = ev(**base(model=b"\x7f" + t("vib-cls") + b"\x60" * (1025 - len(_pad_head)) + b"\xff"))
check(len(_big) == 1025)
invalid("event_1025_bytes", _big, "event_too_large", note="one byte over max_event_bytes")
invalid("unsupported_version", ev(**base(v=u(2))), "unsupported_version", field="v")
invalid("version_zero", ev(**base(v=u(0))), "unsupported_version", field="v")
invalid("version_float", ev(**base(v=f32(1.0))), "wrong_type", field="v")
invalid("unknown_key_strict", extend(ev(**base()), (u(14), u(1))), "unknown_key", field="14")
invalid(
    "text_key_in_cbor",
    mp((u(0), u(1)), (t("seq"), u(1)), (u(3), u(1)), (u(4), t("m")), (u(6), u(0)), (u(7), u(0))),
    "unknown_key",
    field="seq",
    note="CBOR events use integer keys",
)

invalid(
    "lenient_unknown_collides_with_x",
    extend(ev(**base(x=mp((t("fw"), t("a"))))), (t("fw"), t("b"))),
    "duplicate_key",
    strict=False,
    field="x.fw",
)
invalid("missing_v", mini(v=b""), "missing_field", field="v")
invalid("missing_seq", mini(seq=b""), "missing_field", field="seq")
invalid("missing_boot", mini(boot=b""), "missing_field", field="boot")
invalid("missing_model", mini(model=b""), "missing_field", field="model")
invalid("missing_kind", mini(kind=b""), "missing_field", field="kind")
invalid("null_required", mini(seq=NULL), "wrong_type", field="seq")
invalid("seq_bool", mini(seq=TRUE), "wrong_type", field="seq", note="booleans are not integers")
invalid("seq_float", mini(seq=f32(1.0)), "wrong_type", field="seq")
invalid("model_bytes", mini(model=bs(b"m")), "wrong_type", field="model")
invalid("score_text", ev(**base(score=t("0.9"))), "wrong_type", field="score")
invalid("label_float", mini(label=f16(1.0)), "wrong_type", field="label")
invalid("top_not_pairs", mini(kind=u(3), label=b"", top=arr(u(1), u(2))), "wrong_type", field="top[0]")
invalid("x_not_map", ev(**base(x=arr())), "wrong_type", field="x")
invalid("x_value_array", ev(**base(x=mp((t("a"), arr(u(1)))))), "wrong_type", field="x.a")
invalid("x_int_key", ev(**base(x=mp((u(1), u(1))))), "wrong_type", field="x")
invalid("undefined_value", mini(label=UNDEF), "wrong_type", field="label")
invalid(
    "tag_epoch_time_ts", ev(**base(ts=tag(1, u(1_764_072_000)))), "wrong_type", field="ts", note="tags are not allowed"
)
invalid("tag_bignum_seq", mini(seq=tag(2, bs(b"\x05"))), "wrong_type", field="seq", note="bignums are not allowed")
invalid("tag_unknown_score", ev(**base(score=tag(40000, f32(0.5)))), "wrong_type", field="score")
invalid("seq_uint32_plus_one", mini(seq=u(U32 + 1)), "out_of_range", field="seq")
invalid("boot_negative", mini(boot=u(-1)), "out_of_range", field="boot")
invalid("label_uint16_plus_one", mini(label=u(0x10000)), "out_of_range", field="label")
invalid("lat_uint32_plus_one", ev(**base(lat=u(U32 + 1))), "out_of_range", field="lat")
invalid("score_above_one", ev(**base(score=f32(1.5))), "out_of_range", field="score")
invalid("score_negative", ev(**base(score=f32(-0.25))), "out_of_range", field="score")
invalid("score_uint8_256", ev(**base(score=u(256))), "out_of_range", field="score")
invalid("model_empty", mini(model=t("")), "out_of_range", field="model")
invalid("model_65_chars", mini(model=t("m" * 65)), "out_of_range", field="model")
invalid("model_nul", mini(model=t("a\x00b")), "out_of_range", field="model", note="NUL cannot be stored")
invalid("model_uint_too_large", mini(model=u(U32 + 1)), "out_of_range", field="model")
invalid("kind_4", mini(kind=u(4)), "out_of_range", field="kind")
invalid("val_empty_array", mini(kind=u(2), label=b"", val=arr()), "out_of_range", field="val")
invalid(
    "top_17_pairs",
    mini(kind=u(3), label=b"", top=arr(*[arr(u(i), f32(0.5)) for i in range(17)])),
    "out_of_range",
    field="top",
)
invalid("ts_negative", ev(**base(ts=u(-1))), "out_of_range", field="ts")
invalid("score_nan_float16", ev(**base(score=b"\xf9\x7e\x00")), "non_finite", field="score")
invalid("score_inf", ev(**base(score=f32(float("inf")))), "non_finite", field="score")
invalid("anom_neg_inf", mini(kind=u(1), label=b"", anom=f64(float("-inf"))), "non_finite", field="anom")
invalid(
    "val_nan_element", mini(kind=u(2), label=b"", val=arr(f32(1.0), f32(float("nan")))), "non_finite", field="val[1]"
)
invalid(
    "top_score_nan",
    mini(kind=u(3), label=b"", top=arr(arr(u(1), f16(float("nan"))))),
    "non_finite",
    field="top[0].score",
)
invalid("x_value_inf", ev(**base(x=mp((t("t"), f16(float("inf")))))), "non_finite", field="x.t")
invalid("ts_in_future", ev(**base(ts=u(NOW + DAY + 1))), "ts_in_future", now_ms=NOW, field="ts")
invalid("ts_zero", ev(**base(ts=u(0))), "ts_before_epoch_floor", field="ts", note="clock never set")
invalid("ts_before_2000", ev(**base(ts=u(946_684_799_999))), "ts_before_epoch_floor", field="ts")
invalid("classification_without_label", mini(label=b""), "kind_field_missing", field="label")
invalid("anomaly_without_anom", mini(kind=u(1), label=b""), "kind_field_missing", field="anom")
invalid("regression_without_val", mini(kind=u(2), label=b""), "kind_field_missing", field="val")
invalid("detection_without_top_or_label", mini(kind=u(3), label=b""), "kind_field_missing", field="top")
invalid(
    "extras_17_keys",
    ev(**base(x=mp(*[(t(f"k{i:02d}"), u(i)) for i in range(17)]))),
    "extras_too_large",
    field="x",
)
invalid(
    "extras_over_256_bytes",
    ev(**base(x=mp(*[(t(f"k{i}"), t("v" * 60)) for i in range(5)]))),
    "extras_too_large",
    field="x",
    note="5 x (2 + 60) = 310 bytes",
)
invalid(
    "lenient_unknown_key_not_nameable",
    extend(ev(**base()), (bs(b"k"), u(1))),
    "unknown_key",
    strict=False,
    note="a byte-string key cannot be kept in x",
)
invalid(
    "batch_one_bad_event",
    arr(mini(), mini(seq=u(-1)), mini(seq=u(3))),
    "out_of_range",
    index=1,
    field="seq",
    decoded=[mdec(), mdec(seq=3)],
    note="the valid events of a batch are kept; the bad one is rejected with its index",
)
invalid(
    "batch_element_not_map",
    arr(mini(), u(7)),
    "not_an_event",
    index=1,
    decoded=[mdec()],
)
invalid(
    "json_batch_bad_event",
    b'[{"v":1,"seq":1,"boot":1,"model":"m","kind":0,"label":0},{"v":1,"seq":1,"boot":1,"model":"m","kind":0}]',
    "kind_field_missing",
    index=1,
    field="label",
    decoded=[mdec()],
)
invalid("json_bool_seq", b'{"v":1,"seq":true,"boot":1,"model":"m","kind":0,"label":0}', "wrong_type", field="seq")
invalid("json_int_key_name", b'{"v":1,"2":1,"boot":1,"model":"m","kind":0,"label":0}', "unknown_key", field="2")


# --- telemetry --------------------------------------------------------------------------------------------
TEL_ORDER = [
    "v",
    "ts",
    "uptime_s",
    "boot",
    "battery_pct",
    "battery_mv",
    "rssi_dbm",
    "heap_free",
    "arena_free",
    "infer_count",
    "lat_avg_us",
    "lat_max_us",
    "dropped",
    "x",
]


def tel(**fields: bytes) -> bytes:
    return mp(*((u(TEL_ORDER.index(k)), fields[k]) for k in TEL_ORDER if k in fields))


TEL_VALID: list[dict[str, Any]] = []
TEL_INVALID: list[dict[str, Any]] = []


def tvalid(name: str, payload: bytes, decoded: Any, *, canonical: bool, strict: bool = True, note: str = "") -> None:
    c = {"name": name, "format": "json" if payload[:1] == b"{" else "cbor", "hex": payload.hex()}
    c |= {"decoded": decoded, "canonical": canonical, "strict": strict}
    if note:
        c["note"] = note
    TEL_VALID.append(c)


def tinvalid(name: str, payload: bytes, error: str, *, strict: bool = True, field: str | None = None) -> None:
    c: dict[str, Any] = {"name": name, "format": "json" if payload[:1] == b"{" else "cbor", "hex": payload.hex()}
    c |= {"error": error, "index": None, "strict": strict}
    if field:
        c["field"] = field
    TEL_INVALID.append(c)


_tel_full = dict(
    v=u(1),
    ts=u(TS),
    uptime_s=u(86_400),
    boot=u(3),
    battery_pct=u(87),
    battery_mv=u(3_912),
    rssi_dbm=u(-67),
    heap_free=u(48_200),
    arena_free=u(1_024),
    infer_count=u(1_234_567),
    lat_avg_us=u(2_480),
    lat_max_us=u(9_100),
    dropped=u(0),
    x=mp((t("temp_c"), f32(41.5))),
)
tvalid(
    "telemetry_full",
    tel(**_tel_full),
    {
        "v": 1,
        "ts": TS,
        "uptime_s": 86_400,
        "boot": 3,
        "battery_pct": 87,
        "battery_mv": 3_912,
        "rssi_dbm": -67,
        "heap_free": 48_200,
        "arena_free": 1_024,
        "infer_count": 1_234_567,
        "lat_avg_us": 2_480,
        "lat_max_us": 9_100,
        "dropped": 0,
        "x": {"temp_c": 41.5},
    },
    canonical=True,
)
tvalid("telemetry_minimal", tel(v=u(1)), {"v": 1}, canonical=True)
tvalid(
    "telemetry_json",
    b'{"v":1,"uptime_s":60,"rssi_dbm":-80,"dropped":2}',
    {"v": 1, "uptime_s": 60, "rssi_dbm": -80, "dropped": 2},
    canonical=True,
)
tvalid(
    "telemetry_lenient_unknown",
    extend(tel(v=u(1)), (u(30), u(5))),
    {"v": 1, "x": {"30": 5}},
    canonical=False,
    strict=False,
)
tinvalid("telemetry_unknown_key", extend(tel(v=u(1)), (u(30), u(5))), "unknown_key", field="30")
tinvalid("telemetry_battery_101", tel(v=u(1), battery_pct=u(101)), "out_of_range", field="battery_pct")
tinvalid("telemetry_rssi_-129", tel(v=u(1), rssi_dbm=u(-129)), "out_of_range", field="rssi_dbm")
tinvalid("telemetry_version_2", tel(v=u(2)), "unsupported_version", field="v")
tinvalid("telemetry_missing_v", tel(uptime_s=u(1)), "missing_field", field="v")
tinvalid("telemetry_array", arr(tel(v=u(1))), "not_an_event")
tinvalid("telemetry_heap_float", tel(v=u(1), heap_free=f32(1.0)), "wrong_type", field="heap_free")
tinvalid("telemetry_empty", b"", "empty_payload")

# --- state ------------------------------------------------------------------------------------------------
STATE_ORDER = ["v", "ts", "online", "boot", "model", "mver", "fw", "caps", "reason"]
CAPS_ORDER = ["flash", "ram", "arena", "ops"]


def st(**fields: bytes) -> bytes:
    order = STATE_ORDER + [""] * 4 + ["x"]
    return mp(*((u(order.index(k)), fields[k]) for k in order if k and k in fields))


def caps(**fields: bytes) -> bytes:
    return mp(*((u(CAPS_ORDER.index(k)), fields[k]) for k in CAPS_ORDER if k in fields))


ST_VALID: list[dict[str, Any]] = []
ST_INVALID: list[dict[str, Any]] = []


def svalid(name: str, payload: bytes, decoded: Any, *, canonical: bool, strict: bool = True, note: str = "") -> None:
    c = {"name": name, "format": "json" if payload[:1] == b"{" else "cbor", "hex": payload.hex()}
    c |= {"decoded": decoded, "canonical": canonical, "strict": strict}
    if note:
        c["note"] = note
    ST_VALID.append(c)


def sinvalid(name: str, payload: bytes, error: str, *, strict: bool = True, field: str | None = None) -> None:
    c: dict[str, Any] = {"name": name, "format": "json" if payload[:1] == b"{" else "cbor", "hex": payload.hex()}
    c |= {"error": error, "index": None, "strict": strict}
    if field:
        c["field"] = field
    ST_INVALID.append(c)


_ops = ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
svalid(
    "birth",
    st(
        v=u(1),
        ts=u(TS),
        online=TRUE,
        boot=u(3),
        model=t("vib-cls"),
        mver=u(4),
        fw=t("1.4.2"),
        caps=caps(flash=u(1_048_576), ram=u(262_144), arena=u(60_000), ops=arr(*[t(o) for o in _ops])),
    ),
    {
        "v": 1,
        "ts": TS,
        "online": True,
        "boot": 3,
        "model": "vib-cls",
        "mver": 4,
        "fw": "1.4.2",
        "caps": {"flash": 1_048_576, "ram": 262_144, "arena": 60_000, "ops": _ops},
    },
    canonical=True,
)
svalid(
    "lwt",
    st(v=u(1), online=FALSE, reason=t("lwt")),
    {"v": 1, "online": False, "reason": "lwt"},
    canonical=True,
    note="the last will the device registers at connect",
)
svalid("cleared", b"", None, canonical=True, note="an empty retained payload clears the state: decodes to null")
svalid(
    "birth_json",
    b'{"v":1,"online":true,"boot":3,"model":7,"fw":"1.4.2","caps":{"arena":60000,"ops":["ADD"]}}',
    {"v": 1, "online": True, "boot": 3, "model": 7, "fw": "1.4.2", "caps": {"arena": 60000, "ops": ["ADD"]}},
    canonical=True,
)
svalid(
    "birth_lenient_caps_unknown",
    st(v=u(1), online=TRUE, caps=extend(caps(arena=u(1)), (u(9), u(2)))),
    {"v": 1, "online": True, "caps": {"arena": 1}, "x": {"caps.9": 2}},
    canonical=False,
    strict=False,
    note="lenient mode keeps unknown caps keys in x as caps.<key>",
)
sinvalid("state_missing_online", st(v=u(1)), "missing_field", field="online")
sinvalid("state_online_int", st(v=u(1), online=u(1)), "wrong_type", field="online")
sinvalid("state_caps_unknown_key", st(v=u(1), online=TRUE, caps=mp((u(9), u(2)))), "unknown_key", field="caps.9")
sinvalid("state_ops_not_text", st(v=u(1), online=TRUE, caps=caps(ops=arr(u(1)))), "wrong_type", field="caps.ops[0]")
sinvalid("state_fw_too_long", st(v=u(1), online=TRUE, fw=t("1" * 65)), "out_of_range", field="fw")
sinvalid("state_ts_zero", st(v=u(1), online=TRUE, ts=u(0)), "ts_before_epoch_floor", field="ts")
sinvalid("state_blank", b" ", "empty_payload")


# --- topics and device ids ----------------------------------------------------------------------------------
ID_VALID = ["a", "0", "dev-001", "Press_7.line:3", "A" * 64, "x-" + "9" * 62]
ID_INVALID = [
    ("", "empty"),
    ("a" * 65, "65 characters"),
    ("a/b", "slash"),
    ("a+b", "plus"),
    ("a#", "hash"),
    ("a\u0000b", "NUL"),
    ("dév", "non-ASCII"),
    ("-dev", "must start with a letter or digit"),
    (".dev", "must start with a letter or digit"),
    ("dev 1", "space"),
    ("$SYS", "dollar"),
    ("dev\n", "newline"),
]
TOPIC_VALID = [
    ("tf/v1/dev-001/evt", "dev-001", "evt"),
    ("tf/v1/dev-001/tel", "dev-001", "tel"),
    ("tf/v1/dev-001/state", "dev-001", "state"),
    ("tf/v1/dev-001/ota", "dev-001", "ota"),
    ("tf/v1/dev-001/ota/status", "dev-001", "ota/status"),
    ("tf/v1/dev-001/cmd", "dev-001", "cmd"),
    ("tf/v1/dev-001/cmd/ack", "dev-001", "cmd/ack"),
]
TOPIC_INVALID = [
    ("tf/v1/dev-001", "bad_topic"),
    ("tf/v1/dev-001/", "bad_topic"),
    ("tf/v1/dev-001/evt/extra", "bad_topic"),
    ("tf/v1/dev-001/telemetry", "bad_topic"),
    ("tf/v2/dev-001/evt", "bad_topic"),
    ("/tf/v1/dev-001/evt", "bad_topic"),
    ("tf/v1//evt", "bad_device_id"),
    ("tf/v1/+/evt", "bad_device_id"),
    ("tf/v1/d#/evt", "bad_device_id"),
    ("tf/v1/" + "a" * 65 + "/evt", "bad_device_id"),
]


def _check_topics() -> None:
    from tinyfleet.wire import Topics, validate_device_id

    topics = Topics()
    for s in ID_VALID:
        check(validate_device_id(s) == s)
    for s, why in ID_INVALID:
        try:
            validate_device_id(s)
        except WireError as exc:
            check(exc.code.value == "bad_device_id", (s, why))
        else:
            raise AssertionError(f"device id {s!r} ({why}) accepted")
    for topic, dev, ch in TOPIC_VALID:
        p = topics.parse(topic)
        check((p.device_id, p.channel.value) == (dev, ch), topic)
    for topic, code in TOPIC_INVALID:
        try:
            topics.parse(topic)
        except WireError as exc:
            check(exc.code.value == code, (topic, exc))
        else:
            raise AssertionError(f"topic {topic!r} accepted")


# ------------------------------------------------------------------------------------------------ checks
def _limits(case: dict[str, Any]) -> Limits:
    return Limits(**case.get("limits", {}))


def _event(d: dict[str, Any]) -> Event:
    return msgspec.convert(d, Event)


def _check_events() -> None:
    for c in VALID:
        payload = bytes.fromhex(c["hex"])
        r = decode_events(payload, strict=c["strict"], now_ms=c.get("now_ms"), limits=_limits(c))
        want = c["decoded"]
        batch = isinstance(want, list)
        check(r.is_batch == batch and not r.rejects, (c["name"], r))
        got = list(r.events)
        got_cmp = got if batch else got[0]
        check(_norm(got_cmp) == _norm(want), (c["name"], got_cmp, want))
        kw = {"fmt": c["format"], "score_uint8": bool(c.get("encode", {}).get("score_uint8"))}
        events = [_event(d) for d in (want if batch else [want])]
        enc = encode_events(events, **kw) if batch else encode_event(events[0], **kw)  # type: ignore[arg-type]
        check((enc == payload) == c["canonical"], (c["name"], enc.hex(), c["hex"]))
    for c in INVALID:
        payload = bytes.fromhex(c["hex"])
        try:
            r = decode_events(payload, strict=c["strict"], now_ms=c.get("now_ms"), limits=_limits(c))
        except WireError as exc:
            check(c["index"] is None, (c["name"], exc))
            check(exc.code.value == c["error"], (c["name"], exc))
            if "field" in c:
                check(exc.field == c["field"], (c["name"], exc.field))
            continue
        check(c["index"] is not None and r.rejects, (c["name"], r))
        first = r.rejects[0]
        check((first.code.value, first.index) == (c["error"], c["index"]), (c["name"], r.rejects))
        if "field" in c:
            check(first.field == c["field"], (c["name"], first.field))
        check(_norm(r.events) == _norm(c.get("decoded", [])), c["name"])


def _norm(v: Any) -> Any:
    """Plain JSON data without null fields (tuples -> lists) for comparisons."""
    return _drop_nulls(json.loads(json.dumps(msgspec.to_builtins(v))))


def _drop_nulls(v: Any) -> Any:
    """Drop null fields of records (events, telemetry, state, caps); entries of x are kept as they are."""
    if isinstance(v, list):
        return [_drop_nulls(e) for e in v]
    if isinstance(v, dict):
        return {k: (_drop_nulls(e) if k == "caps" else e) for k, e in v.items() if e is not None}
    return v


def _check_records(valid_cases: list[dict[str, Any]], invalid_cases: list[dict[str, Any]], kind: str) -> None:
    decode = decode_telemetry if kind == "telemetry" else decode_state
    for c in valid_cases:
        payload = bytes.fromhex(c["hex"])
        got = decode(payload, strict=c["strict"])
        check(_norm(got) == _norm(c["decoded"]), (c["name"], got))
        if got is None:
            check((encode_state(None) == payload) == c["canonical"])
            continue
        if kind == "telemetry":
            enc = encode_telemetry(msgspec.convert(c["decoded"], Telemetry), fmt=c["format"])
        else:
            enc = encode_state(msgspec.convert(c["decoded"], DeviceState), fmt=c["format"])
        check((enc == payload) == c["canonical"], (c["name"], enc.hex()))
    for c in invalid_cases:
        try:
            decode(bytes.fromhex(c["hex"]), strict=c["strict"])
        except WireError as exc:
            check(exc.code.value == c["error"], (c["name"], exc))
            if "field" in c:
                check(exc.field == c["field"], (c["name"], exc.field))
        else:
            raise AssertionError(f"{c['name']}: decoded without error")


COMMON = {
    "format": "the payload encoding: cbor or json (JSON when the first non-blank byte is { or [)",
    "hex": "the payload bytes, lowercase hex",
    "strict": "decode in strict mode (unknown keys rejected) when true, lenient (kept in x) when false",
    "now_ms": "the receiver's clock for the ts_in_future check; absent = no future check",
    "limits": "overrides of the default limits for this case (names as in docs/protocol.md)",
    "note": "free text",
}


def documents() -> dict[str, dict[str, Any]]:
    return {
        "events.json": {
            "version": VERSION,
            "description": (
                "tinyfleet wire contract v1: inference events (topic tf/v1/{device}/evt). Each valid case "
                "decodes to `decoded` (JSON field names; omitted fields are absent/null; a list for a batch). "
                "`canonical` is true when the canonical encoder (docs/protocol.md) reproduces `hex` exactly "
                "from `decoded`, with the options in `encode` if present. Each invalid case fails with the "
                "error code `error`: for a batch with `index` (the valid events of that batch are in "
                "`decoded`), otherwise the whole message fails and `index` is null. `field`, when present, "
                "names the offending field."
            ),
            "fields": COMMON
            | {
                "decoded": "expected result (valid cases; for invalid batch cases: the events kept)",
                "canonical": "encode(decoded) == bytes(hex)",
                "encode": "encoder options for the canonical check, e.g. {score_uint8: true}",
                "error": "expected error code",
                "index": "position of the rejected event in a batch, null for a message-level error",
                "field": "name of the offending field as reported by the decoder",
            },
            "valid": VALID,
            "invalid": INVALID,
        },
        "telemetry.json": {
            "version": VERSION,
            "description": (
                "tinyfleet wire contract v1: health telemetry (topic tf/v1/{device}/tel); "
                "same layout as events.json, no batches."
            ),
            "fields": COMMON,
            "valid": TEL_VALID,
            "invalid": TEL_INVALID,
        },
        "state.json": {
            "version": VERSION,
            "description": (
                "tinyfleet wire contract v1: device state (retained topic tf/v1/{device}/state): birth and LWT. "
                "Same layout as events.json; `decoded` null means the empty payload that clears the state."
            ),
            "fields": COMMON,
            "valid": ST_VALID,
            "invalid": ST_INVALID,
        },
        "topics.json": {
            "version": VERSION,
            "description": (
                "tinyfleet wire contract v1: device ids (= MQTT username = one topic level, "
                "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}) and the topic tree under the default prefix tf/v1. "
                "device_ids.invalid fail with bad_device_id; topics.invalid with the given error."
            ),
            "prefix": "tf/v1",
            "device_ids": {
                "valid": ID_VALID,
                "invalid": [{"id": s, "why": why, "error": "bad_device_id"} for s, why in ID_INVALID],
            },
            "topics": {
                "valid": [{"topic": tp, "device_id": d, "channel": ch} for tp, d, ch in TOPIC_VALID],
                "invalid": [{"topic": tp, "error": code} for tp, code in TOPIC_INVALID],
            },
        },
    }


def main(argv: list[str]) -> int:
    _check_events()
    _check_records(TEL_VALID, TEL_INVALID, "telemetry")
    _check_records(ST_VALID, ST_INVALID, "state")
    _check_topics()
    stale = []
    for name, doc in documents().items():
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        path = HERE / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    total = sum(len(d.get("valid", ())) + len(d.get("invalid", ())) for d in documents().values())
    total += len(ID_VALID) + len(ID_INVALID) + len(TOPIC_VALID) + len(TOPIC_INVALID)
    if stale:
        print(f"stale: {', '.join(stale)} (run {Path(__file__).name})", file=sys.stderr)
        return 1
    print(f"{total} vectors ({len(VALID)} valid + {len(INVALID)} invalid events) ok")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
