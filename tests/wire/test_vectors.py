"""The shared test vectors (device_sdk/test-vectors/*.json) against tinyfleet.wire."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from tinyfleet.wire import (
    DeviceState,
    ErrorCode,
    Event,
    Limits,
    Telemetry,
    Topics,
    WireError,
    decode_events,
    decode_state,
    decode_telemetry,
    encode_event,
    encode_events,
    encode_state,
    encode_telemetry,
    validate_device_id,
)

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "device_sdk" / "test-vectors"


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((VECTORS / name).read_text())
    assert doc["version"] == 1
    return doc


EVENTS = _load("events.json")
TELEMETRY = _load("telemetry.json")
STATE = _load("state.json")
TOPICS = _load("topics.json")


def _plain(v: Any) -> Any:
    """JSON data without the null fields of records (x entries are left alone)."""
    v = json.loads(json.dumps(msgspec.to_builtins(v)))
    return _drop(v)


def _drop(v: Any) -> Any:
    if isinstance(v, list):
        return [_drop(e) for e in v]
    if isinstance(v, dict):
        return {k: (_drop(e) if k == "caps" else e) for k, e in v.items() if e is not None}
    return v


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


def test_vector_counts_and_names() -> None:
    total = sum(len(d["valid"]) + len(d["invalid"]) for d in (EVENTS, TELEMETRY, STATE))
    assert total >= 40
    for doc in (EVENTS, TELEMETRY, STATE):
        names = _ids(doc["valid"]) + _ids(doc["invalid"])
        assert len(names) == len(set(names))


def test_every_payload_error_code_has_a_vector() -> None:
    seen = {c["error"] for d in (EVENTS, TELEMETRY, STATE) for c in d["invalid"]}
    seen |= {c["error"] for c in TOPICS["topics"]["invalid"]} | {"bad_device_id"}
    assert seen == {c.value for c in ErrorCode}


def test_design_example_is_verbatim() -> None:
    case = next(c for c in EVENTS["valid"] if c["name"] == "design_example")
    assert case["hex"] == "aa0001011b0000019abae28a000205030304677669622d636c7305040600070308fa3f6e147b0c1909c4"
    assert len(bytes.fromhex(case["hex"])) == 42
    assert case["canonical"] is True


@pytest.mark.parametrize("case", EVENTS["valid"], ids=_ids(EVENTS["valid"]))
def test_valid_event_vector(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["hex"])
    assert case["format"] == ("json" if payload.lstrip()[:1] in (b"{", b"[") else "cbor")
    r = decode_events(
        payload, strict=case["strict"], now_ms=case.get("now_ms"), limits=Limits(**case.get("limits", {}))
    )
    want = case["decoded"]
    assert r.rejects == []
    assert r.is_batch == isinstance(want, list)
    got = r.events if r.is_batch else r.events[0]
    assert _plain(got) == want
    # canonical: the encoder reproduces the bytes exactly (and only then)
    opts = {"fmt": case["format"], "score_uint8": bool(case.get("encode", {}).get("score_uint8"))}
    if r.is_batch:
        enc = encode_events([msgspec.convert(d, Event) for d in want], **opts)
    else:
        enc = encode_event(msgspec.convert(want, Event), **opts)
    assert (enc == payload) is case["canonical"], enc.hex()


@pytest.mark.parametrize("case", EVENTS["invalid"], ids=_ids(EVENTS["invalid"]))
def test_invalid_event_vector(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["hex"])
    kwargs = {
        "strict": case["strict"],
        "now_ms": case.get("now_ms"),
        "limits": Limits(**case.get("limits", {})),
    }
    if case["index"] is None:
        with pytest.raises(WireError) as info:
            decode_events(payload, **kwargs)
        err = info.value
        assert err.index is None
    else:
        r = decode_events(payload, **kwargs)
        assert r.is_batch
        assert r.rejects, "expected a rejected event"
        err = r.rejects[0]
        assert err.index == case["index"]
        assert _plain(r.events) == case.get("decoded", [])
    assert err.code == ErrorCode(case["error"])
    if "field" in case:
        assert err.field == case["field"]
        assert err.detail.startswith(case["field"])


@pytest.mark.parametrize("case", TELEMETRY["valid"], ids=_ids(TELEMETRY["valid"]))
def test_valid_telemetry_vector(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["hex"])
    tel = decode_telemetry(payload, strict=case["strict"])
    assert _plain(tel) == case["decoded"]
    enc = encode_telemetry(msgspec.convert(case["decoded"], Telemetry), fmt=case["format"])
    assert (enc == payload) is case["canonical"]
    assert decode_telemetry(enc) == msgspec.convert(case["decoded"], Telemetry)


@pytest.mark.parametrize("case", TELEMETRY["invalid"], ids=_ids(TELEMETRY["invalid"]))
def test_invalid_telemetry_vector(case: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        decode_telemetry(bytes.fromhex(case["hex"]), strict=case["strict"])
    assert info.value.code == ErrorCode(case["error"])
    if "field" in case:
        assert info.value.field == case["field"]


@pytest.mark.parametrize("case", STATE["valid"], ids=_ids(STATE["valid"]))
def test_valid_state_vector(case: dict[str, Any]) -> None:
    payload = bytes.fromhex(case["hex"])
    state = decode_state(payload, strict=case["strict"])
    if case["decoded"] is None:
        assert state is None
        assert (encode_state(None) == payload) is case["canonical"]
        return
    assert _plain(state) == case["decoded"]
    enc = encode_state(msgspec.convert(case["decoded"], DeviceState), fmt=case["format"])
    assert (enc == payload) is case["canonical"]
    assert decode_state(enc) == msgspec.convert(case["decoded"], DeviceState)


@pytest.mark.parametrize("case", STATE["invalid"], ids=_ids(STATE["invalid"]))
def test_invalid_state_vector(case: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        decode_state(bytes.fromhex(case["hex"]), strict=case["strict"])
    assert info.value.code == ErrorCode(case["error"])
    if "field" in case:
        assert info.value.field == case["field"]


@pytest.mark.parametrize("device_id", TOPICS["device_ids"]["valid"])
def test_valid_device_id_vector(device_id: str) -> None:
    assert validate_device_id(device_id) == device_id


@pytest.mark.parametrize("case", TOPICS["device_ids"]["invalid"], ids=lambda c: c["why"])
def test_invalid_device_id_vector(case: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        validate_device_id(case["id"])
    assert info.value.code is ErrorCode.BAD_DEVICE_ID


@pytest.mark.parametrize("case", TOPICS["topics"]["valid"], ids=lambda c: c["topic"])
def test_valid_topic_vector(case: dict[str, Any]) -> None:
    topics = Topics(TOPICS["prefix"])
    parsed = topics.parse(case["topic"])
    assert (parsed.device_id, parsed.channel.value) == (case["device_id"], case["channel"])
    assert topics.topic(case["device_id"], case["channel"]) == case["topic"]


@pytest.mark.parametrize("case", TOPICS["topics"]["invalid"], ids=lambda c: c["topic"])
def test_invalid_topic_vector(case: dict[str, Any]) -> None:
    with pytest.raises(WireError) as info:
        Topics(TOPICS["prefix"]).parse(case["topic"])
    assert info.value.code == ErrorCode(case["error"])


def test_vector_files_are_up_to_date() -> None:
    """The committed files are exactly what generate.py writes (and its own checks pass)."""
    proc = subprocess.run(
        [sys.executable, str(VECTORS / "generate.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
