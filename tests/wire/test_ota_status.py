"""The ota/status payload (tinyfleet.wire.ota_status): vectors, round trips, fuzzing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cbor2
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinyfleet.wire import (
    OTA_REASONS,
    OTA_STATUS_FIELDS,
    Channel,
    OtaState,
    OtaStatus,
    Topics,
    WireError,
    decode_ota_status,
    encode_ota_status,
)
from tinyfleet_device.manifest import Reason

DOC: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[2] / "device_sdk" / "test-vectors" / "ota_status.json").read_text()
)


def _plain(v: Any) -> dict[str, Any]:
    return {k: e for k, e in json.loads(json.dumps(msgspec.to_builtins(v))).items() if e is not None}


@pytest.mark.parametrize("case", DOC["valid"], ids=lambda c: c["name"])
def test_valid_vector(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["hex"])
    got = decode_ota_status(payload, strict=case["strict"])
    assert _plain(got) == case["decoded"]
    enc = encode_ota_status(msgspec.convert(case["decoded"], OtaStatus), fmt=case["format"])
    assert (enc == payload) == case["canonical"]


@pytest.mark.parametrize("case", DOC["invalid"], ids=lambda c: c["name"])
def test_invalid_vector(case: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        decode_ota_status(bytes.fromhex(case["hex"]), strict=case["strict"])
    assert info.value.code.value == case["error"]
    if "field" in case:
        assert info.value.field == case["field"]


def test_vectors_cover_every_state() -> None:
    assert {c["decoded"]["state"] for c in DOC["valid"]} == {s.value for s in OtaState}


def test_reason_codes_are_the_device_sdk_reasons() -> None:
    assert {r.value for r in Reason} == OTA_REASONS
    assert OTA_STATUS_FIELDS[2] == "state"
    assert OTA_STATUS_FIELDS[3] == "seq"


def test_topic() -> None:
    topics = Topics("tf/v1")
    assert topics.ota_status("press-007") == "tf/v1/press-007/ota/status"
    assert topics.parse("tf/v1/press-007/ota/status") == ("press-007", Channel.OTA_STATUS)
    assert topics.filter(Channel.OTA_STATUS, share="svc") == "$share/svc/tf/v1/+/ota/status"


def test_encoder_refuses_a_failure_without_reason() -> None:
    with pytest.raises(WireError) as info:
        encode_ota_status(OtaStatus(state=OtaState.FAILED, seq=1))
    assert info.value.field == "reason"
    with pytest.raises(WireError):
        encode_ota_status(OtaStatus(state=OtaState.FAILED, seq=1, reason="no_such_reason"))


def test_cbor_uses_integer_keys_and_text_values() -> None:
    st_ = OtaStatus(state=OtaState.APPLIED, seq=9, model="kws-ref", mver=12, progress=1033, ts=1_790_000_000_000)
    decoded = cbor2.loads(encode_ota_status(st_))
    assert decoded == {0: 1, 1: 1_790_000_000_000, 2: "applied", 3: 9, 6: "kws-ref", 7: 12, 9: 1033}


statuses = st.builds(
    OtaStatus,
    state=st.sampled_from(list(OtaState)),
    seq=st.integers(0, 2**32 - 1),
    ts=st.none() | st.integers(946_684_800_000, 253_402_300_799_999),
    reason=st.sampled_from(sorted(OTA_REASONS)),
    msg=st.none()
    | st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=160),
    model=st.none() | st.integers(0, 2**32 - 1) | st.text("abc-", min_size=1, max_size=64),
    mver=st.none() | st.integers(0, 2**32 - 1),
    fw=st.none() | st.text("0123456789.", min_size=1, max_size=64),
    progress=st.none() | st.integers(0, 2**32 - 1),
    x=st.none() | st.dictionaries(st.text("xyz", min_size=1, max_size=4), st.integers(-5, 5), max_size=3),
)
SETTINGS = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(statuses, st.sampled_from(["cbor", "json"]))
def test_round_trip(status: OtaStatus, fmt: str) -> None:
    assert decode_ota_status(encode_ota_status(status, fmt=fmt)) == status  # type: ignore[arg-type]


def _only_wire_errors(payload: bytes, strict: bool) -> None:
    """The decoder returns or raises WireError with a detail; anything else fails the test."""
    detail = "decoded"
    try:
        decode_ota_status(payload, strict=strict, now_ms=1_790_000_000_000)
    except WireError as exc:
        detail = exc.detail
    assert detail


@SETTINGS
@given(st.binary(max_size=200), st.booleans())
def test_fuzz_bytes(payload: bytes, strict: bool) -> None:
    _only_wire_errors(payload, strict)


leaf = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8),
                 st.binary(max_size=8))  # fmt: skip
values = st.recursive(leaf, lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=3), v, max_size=3),
                      max_leaves=8)  # fmt: skip


@SETTINGS
@given(st.dictionaries(st.integers(0, 20) | st.text(max_size=8), values, max_size=12), st.booleans(), st.booleans())
def test_fuzz_maps(m: dict[Any, Any], strict: bool, as_json: bool) -> None:
    if as_json:
        try:
            payload = json.dumps({str(k): v for k, v in m.items()}, default=lambda b: b.hex()).encode()
        except ValueError:
            return
    else:
        payload = cbor2.dumps(m)
    _only_wire_errors(payload, strict)
