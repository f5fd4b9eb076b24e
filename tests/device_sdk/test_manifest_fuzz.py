"""Fuzzing the verifier with hypothesis: whatever the bytes, it returns a manifest or raises ManifestError."""

from __future__ import annotations

from typing import Any

import cbor2
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tinyfleet_device.manifest import (
    Manifest,
    ManifestError,
    Reason,
    TrustedKeys,
    assemble,
    encode_payload,
    key_id,
    protected_header,
    sig_structure,
    verify_manifest,
)

from .conftest import DEVICE, IAT, fixed_key, typical_manifest

SETTINGS = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEY: Ed25519PrivateKey = fixed_key("tests/device_sdk signing key")
TRUSTED = TrustedKeys([KEY.public_key()])
GOOD = assemble(
    protected_header(key_id(KEY.public_key())),
    encode_payload(typical_manifest()),
    KEY.sign(sig_structure(protected_header(key_id(KEY.public_key())), encode_payload(typical_manifest()))),
)


def _verdict(data: bytes) -> Manifest | ManifestError:
    """The verifier's answer; any other exception fails the test."""
    try:
        return verify_manifest(data, keys=TRUSTED, last_seq=0, now=IAT + 1, device=DEVICE)
    except ManifestError as exc:
        error = exc
    assert isinstance(error.reason, Reason)
    assert error.message
    return error


def _signed(payload: bytes) -> bytes:
    p = protected_header(key_id(KEY.public_key()))
    return assemble(p, payload, KEY.sign(sig_structure(p, payload)))


@SETTINGS
@given(st.binary(max_size=400))
@example(b"")
@example(b"\xd2")
@example(b"\xd2\x84")
@example(b"\xd2\x9f\xff")
@example(b"\xd2\x84\x40\xa0\x40\x40")
@example(b"\xc1\x1b\xff\xff\xff\xff\xff\xff\xff\xff")
def test_random_bytes(data: bytes) -> None:
    assert isinstance(_verdict(data), ManifestError)


@st.composite
def mutations(draw: st.DrawFn) -> bytes:
    data = bytearray(GOOD)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        i = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and data:
            del data[i : i + draw(st.integers(1, 8))]
        else:
            del data[i:]
    return bytes(data)


@SETTINGS
@given(mutations())
def test_mutated_manifests(data: bytes) -> None:
    v = _verdict(data)
    assert data == GOOD or isinstance(v, ManifestError)


leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**64), 2**64),
    st.floats(allow_nan=True),
    st.text(max_size=70),
    st.binary(max_size=40),
)
cbor_values = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.one_of(st.integers(-2, 20), st.text(max_size=3)), inner, max_size=6),
        st.builds(cbor2.CBORTag, st.sampled_from([0, 1, 2, 18, 24, 55799, 1000]), inner),
    ),
    max_leaves=20,
)


@SETTINGS
@given(st.dictionaries(st.integers(0, 15), cbor_values, max_size=14), st.sampled_from([0, 1, 2]))
def test_signed_random_payloads(fields: dict[int, Any], base: int) -> None:
    """Payloads the signature accepts still never break the payload parser."""
    m: dict[int, Any] = dict(cbor2.loads(encode_payload(typical_manifest()))) if base else {}
    m.update(fields)
    if base == 2:
        m[0] = 1
    try:
        payload = cbor2.dumps(m, canonical=True)
    except Exception:  # an unencodable draw is not a manifest
        return
    _verdict(_signed(payload))


@SETTINGS
@given(cbor_values, cbor_values, cbor_values, cbor_values)
def test_random_envelopes(protected: Any, unprotected: Any, payload: Any, signature: Any) -> None:
    try:
        data = cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]))
    except Exception:  # not encodable: not a manifest
        return
    assert isinstance(_verdict(data), ManifestError)
