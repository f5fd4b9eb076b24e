"""The device's manifest verifier (tinyfleet_device.manifest): round trip, each rejection, artifact checks."""

from __future__ import annotations

import dataclasses
import hashlib
import io

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tinyfleet_device.manifest import (
    ALG_EDDSA,
    KID_LEN,
    ArtifactVerifier,
    Compat,
    Component,
    DeviceCapabilities,
    Key,
    Manifest,
    ManifestError,
    Reason,
    TrustedKeys,
    assemble,
    decode_payload,
    encode_payload,
    key_id,
    normalize_op,
    parse_manifest,
    protected_header,
    raw_public_key,
    sig_structure,
    verify_artifact,
    verify_manifest,
)
from tinyfleet_device.tflite_ops import BUILTIN_OP_CODES, BUILTIN_OP_NAMES

from .conftest import ARTIFACT, DEVICE, IAT, OPS, typical_manifest

NOW = IAT + 60


def sign_bytes(payload: bytes, key: Ed25519PrivateKey, protected: bytes | None = None) -> bytes:
    p = protected_header(key_id(key.public_key())) if protected is None else protected
    return assemble(p, payload, key.sign(sig_structure(p, payload)))


def sign(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    return sign_bytes(encode_payload(manifest), key)


def verify(data: bytes, keys: TrustedKeys, **over: object) -> Manifest:
    kwargs: dict[str, object] = {"keys": keys, "last_seq": 0, "now": NOW, "device": DEVICE}
    kwargs.update(over)
    return verify_manifest(data, **kwargs)  # type: ignore[arg-type]


def reason_of(data: bytes, keys: TrustedKeys, **over: object) -> Reason:
    with pytest.raises(ManifestError) as info:
        verify(data, keys, **over)
    assert info.value.message  # every rejection explains itself
    return info.value.reason


# --------------------------------------------------------------------------------------------- round trip
def test_round_trip_typical(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    m = typical_manifest()
    assert verify(sign(m, signing_key), trusted) == m


def test_round_trip_every_field(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    m = typical_manifest(
        component=Component.FIRMWARE,
        artifact_id=17,
        version="2.0.1",
        compat=Compat(flash=1, ops=(3, "MY_CUSTOM_OP"), device_class="nucleo-f746zg"),
        labels=("idle", "run", "fault"),
        rollout="r-17",
        device="press-007",
    )
    device = dataclasses.replace(DEVICE, ops=frozenset({"CONV_2D", "MY_CUSTOM_OP"}))
    got = verify(sign(m, signing_key), trusted, device=device)
    assert got == m
    assert got.as_dict()["component"] == "firmware"
    assert got.as_dict()["sha256"] == m.sha256.hex()


def test_the_cose_structure_is_rfc9052(signing_key: Ed25519PrivateKey) -> None:
    data = sign(typical_manifest(), signing_key)
    obj = cbor2.loads(data)
    assert obj.tag == 18
    protected, unprotected, payload, signature = obj.value
    assert cbor2.loads(protected) == {1: ALG_EDDSA, 4: key_id(signing_key.public_key())}
    assert unprotected == {}
    assert len(signature) == 64
    # the signature is over the Sig_structure, checked here with cryptography directly
    tbs = cbor2.dumps(["Signature1", protected, b"", payload])
    signing_key.public_key().verify(signature, tbs)


def test_kid_is_a_short_sha256_of_the_raw_key(signing_key: Ed25519PrivateKey) -> None:
    raw = raw_public_key(signing_key.public_key())
    assert key_id(raw) == hashlib.sha256(raw).digest()[:KID_LEN]
    assert KID_LEN == 8


def test_size_with_a_64_byte_uri_is_at_most_256(signing_key: Ed25519PrivateKey) -> None:
    uri = "https://fleet.example.com/" + "u" * 38
    assert len(uri) == 64
    data = sign(typical_manifest(uri=uri, seq=123_456), signing_key)
    assert len(data) <= 256, len(data)


def test_rotation_trusts_several_keys(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    both = TrustedKeys([signing_key.public_key(), raw_public_key(other_key.public_key())])
    m = typical_manifest()
    assert verify(sign(m, other_key), both) == m
    assert verify(sign(m, signing_key), both) == m
    assert set(both.kids) == {key_id(signing_key.public_key()), key_id(other_key.public_key())}
    assert reason_of(sign(m, other_key), trusted) is Reason.UNKNOWN_KEY


def test_no_trusted_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one"):
        TrustedKeys([])
    with pytest.raises(ValueError, match="32 bytes"):
        TrustedKeys([b"short"])


# --------------------------------------------------------------------------------------------- rejections
def test_tampered_payload(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    data = bytearray(sign(typical_manifest(), signing_key))
    i = data.index(b"versions/12") + len("versions/1")
    data[i] ^= 0x01
    assert reason_of(bytes(data), trusted) is Reason.BAD_SIGNATURE


def test_every_single_bit_flip_is_rejected(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    data = sign(typical_manifest(), signing_key)
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[i] ^= bit
            with pytest.raises(ManifestError):
                verify(bytes(flipped), trusted)


def test_wrong_key_with_the_trusted_kid(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    payload = encode_payload(typical_manifest())
    forged = sign_bytes(payload, other_key, protected_header(key_id(signing_key.public_key())))
    assert reason_of(forged, trusted) is Reason.BAD_SIGNATURE


def test_unknown_key(other_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    assert reason_of(sign(typical_manifest(), other_key), trusted) is Reason.UNKNOWN_KEY


def test_lower_and_equal_sequence(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    data = sign(typical_manifest(seq=7), signing_key)
    assert verify(data, trusted, last_seq=6).seq == 7
    assert reason_of(data, trusted, last_seq=7) is Reason.REPLAYED_SEQUENCE
    assert reason_of(data, trusted, last_seq=100) is Reason.REPLAYED_SEQUENCE


def test_expired_and_the_clockless_device(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    m = typical_manifest()
    data = sign(m, signing_key)
    assert verify(data, trusted, now=m.expires_at) == m
    assert reason_of(data, trusted, now=m.expires_at + 1) is Reason.EXPIRED
    assert verify(data, trusted, now=None) == m


@pytest.mark.parametrize(
    ("device_change", "needle"),
    [
        ({"flash": 1_000_000}, "flash"),
        ({"ram": 100}, "ram"),
        ({"arena": 59_999}, "arena"),
        ({"ops": frozenset({"CONV_2D", "SOFTMAX"})}, "DEPTHWISE_CONV_2D"),
    ],
)
def test_incompatible_device(
    signing_key: Ed25519PrivateKey, trusted: TrustedKeys, device_change: dict[str, object], needle: str
) -> None:
    data = sign(typical_manifest(), signing_key)
    device = dataclasses.replace(DEVICE, **device_change)  # type: ignore[arg-type]
    with pytest.raises(ManifestError) as info:
        verify(data, trusted, device=device)
    assert info.value.reason is Reason.INCOMPATIBLE
    assert needle in info.value.message


def test_incompatible_device_class(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    data = sign(typical_manifest(compat=Compat(device_class="esp32-s3")), signing_key)
    assert reason_of(data, trusted) is Reason.INCOMPATIBLE
    assert verify(data, trusted, device=dataclasses.replace(DEVICE, device_class="esp32-s3")).compat.device_class


def test_ops_by_code_or_name_on_either_side(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    by_name = sign(typical_manifest(compat=Compat(ops=("CONV_2D", "SOFTMAX"))), signing_key)
    codes = DeviceCapabilities(ops=frozenset({3, 25}))
    assert verify(by_name, trusted, device=codes)
    assert normalize_op("CONV_2D") == 3
    assert normalize_op("NOT_AN_OP") == "NOT_AN_OP"
    assert normalize_op(25) == 25


def test_unknown_capabilities_are_not_checked(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    data = sign(typical_manifest(device="someone-else", compat=Compat(device_class="x", arena=10**6)), signing_key)
    assert verify(data, trusted, device=DeviceCapabilities()).device == "someone-else"


def test_wrong_device(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    data = sign(typical_manifest(device="press-008"), signing_key)
    assert reason_of(data, trusted) is Reason.WRONG_DEVICE


def test_checks_run_in_the_documented_order(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey, trusted: TrustedKeys
) -> None:
    """A manifest that fails everything reports the first check of docs/ota.md's order."""
    bad = typical_manifest(seq=1, expires_at=IAT + 1, device="press-008", compat=Compat(arena=10**9))
    data = sign(bad, signing_key)
    both = TrustedKeys([signing_key.public_key(), other_key.public_key()])
    assert reason_of(sign(bad, other_key), trusted) is Reason.UNKNOWN_KEY
    assert reason_of(data[:-1] + bytes([data[-1] ^ 1]), both) is Reason.BAD_SIGNATURE
    assert reason_of(data, trusted, last_seq=5) is Reason.WRONG_DEVICE
    device = dataclasses.replace(DEVICE, device_id=None)
    assert reason_of(data, trusted, last_seq=5, device=device) is Reason.REPLAYED_SEQUENCE
    assert reason_of(data, trusted, device=device) is Reason.EXPIRED
    assert reason_of(data, trusted, device=device, now=None) is Reason.INCOMPATIBLE


def _cose(protected: bytes, unprotected: object, payload: object, signature: object) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(18, [protected, unprotected, payload, signature]), canonical=True)


def test_malformed_envelopes(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    good = sign(typical_manifest(), signing_key)
    p, _u, payload, sig = cbor2.loads(good).value
    kid = key_id(signing_key.public_key())
    cases = {
        "empty": b"",
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "wrong tag": b"\xd8\x62" + good[1:],
        "untagged": good[1:],
        "not cbor": b"\xff\xff",
        "tag of a map": cbor2.dumps(cbor2.CBORTag(18, {})),
        "three items": cbor2.dumps(cbor2.CBORTag(18, [p, {}, payload])),
        "unprotected alg": _cose(p, {1: -8}, payload, sig),
        "unprotected kid": _cose(p, {4: kid}, payload, sig),
        "protected not bytes": _cose(cbor2.loads(p), {}, payload, sig),  # type: ignore[arg-type]
        "protected crit": _cose(cbor2.dumps({1: -8, 2: [1], 4: kid}), {}, payload, sig),
        "protected no alg": _cose(cbor2.dumps({4: kid}), {}, payload, sig),
        "protected alg bytes": _cose(cbor2.dumps({1: b"\x27", 4: kid}), {}, payload, sig),
        "protected kid text": _cose(cbor2.dumps({1: -8, 4: "kid"}), {}, payload, sig),
        "protected not a map": _cose(cbor2.dumps([1, -8]), {}, payload, sig),
        "protected unsorted": _cose(b"\xa2\x04\x48" + kid + b"\x01\x27", {}, payload, sig),
        "detached": _cose(p, {}, None, sig),
        "short signature": _cose(p, {}, payload, sig[:63]),
        "signature text": _cose(p, {}, payload, "x" * 64),
        "too large": _cose(p, {}, b"\x00" * 1024, sig),
    }
    for name, data in cases.items():
        with pytest.raises(ManifestError) as info:
            verify(data, trusted)
        assert info.value.reason is Reason.MALFORMED, name


def test_unsupported_algorithm(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    kid = key_id(signing_key.public_key())
    for alg in (-7, -19, "EdDSA"):
        data = sign_bytes(encode_payload(typical_manifest()), signing_key, cbor2.dumps({1: alg, 4: kid}))
        assert reason_of(data, trusted) is Reason.UNSUPPORTED_ALGORITHM, alg


def _payload_map(**over: object) -> dict[int, object]:
    m: dict[int, object] = cbor2.loads(encode_payload(typical_manifest()))
    for name, value in over.items():
        alias = {"ver": "version", "dev": "device"}.get(name, name)
        key = int(name[1:]) if name[0] == "k" and name[1:].isdigit() else int(Key[alias.upper()])
        if value is None:
            m.pop(key, None)
        else:
            m[key] = value
    return m


@pytest.mark.parametrize(
    "over",
    [
        {"sha256": None},
        {"uri": None},
        {"seq": None},
        {"sha256": b"\x00" * 31},
        {"sha256": "00" * 32},
        {"size": "12"},
        {"size": 0},
        {"size": True},
        {"seq": -1},
        {"seq": 2**32},
        {"iat": 1.5},
        {"exp": IAT},
        {"component": 2},
        {"id": ""},
        {"id": b"kws"},
        {"id": "a" * 65},
        {"ver": -1},
        {"uri": "https://x/\n"},
        {"uri": "u" * 257},
        {"compat": [1]},
        {"compat": {9: 1}},
        {"compat": {3: "CONV_2D"}},
        {"compat": {3: [1.0]}},
        {"compat": {0: -1}},
        {"labels": "a"},
        {"labels": [""]},
        {"rollout": [1]},
        {"dev": 7},
        {"k14": 1},
        {"text_key": 1},
    ],
    ids=repr,
)
def test_malformed_payloads_are_refused_even_when_signed(
    signing_key: Ed25519PrivateKey, trusted: TrustedKeys, over: dict[str, object]
) -> None:
    if "text_key" in over:
        m: dict[object, object] = dict(_payload_map())
        m["x"] = 1
    else:
        m = dict(_payload_map(**over))
    data = sign_bytes(cbor2.dumps(m, canonical=True), signing_key)
    assert reason_of(data, trusted) is Reason.MALFORMED


def test_payload_encoding_must_be_deterministic(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    payload = encode_payload(typical_manifest())
    assert payload[1:3] == b"\x00\x01"  # {0: 1, ...
    longer = payload[:1] + b"\x00\x18\x01" + payload[3:]  # v written as 0x18 0x01
    assert cbor2.loads(longer) == cbor2.loads(payload)
    assert reason_of(sign_bytes(longer, signing_key), trusted) is Reason.MALFORMED


def test_unsupported_version(signing_key: Ed25519PrivateKey, trusted: TrustedKeys) -> None:
    m = _payload_map(v=2, k20="a field of v2")
    assert reason_of(sign_bytes(cbor2.dumps(m, canonical=True), signing_key), trusted) is Reason.UNSUPPORTED_VERSION
    m = _payload_map(v="1")
    assert reason_of(sign_bytes(cbor2.dumps(m, canonical=True), signing_key), trusted) is Reason.MALFORMED


def test_encode_refuses_what_a_device_refuses() -> None:
    for bad in (
        typical_manifest(sha256=b"\x00"),
        typical_manifest(expires_at=IAT - 1),
        typical_manifest(uri=""),
        typical_manifest(seq=-5),
        typical_manifest(artifact_id=1.5),
        typical_manifest(compat=Compat(ops=(b"op",))),  # type: ignore[arg-type]
    ):
        with pytest.raises(ManifestError) as info:
            encode_payload(bad)
        assert info.value.reason is Reason.MALFORMED


def test_parse_manifest_does_not_check_the_signature(
    signing_key: Ed25519PrivateKey, other_key: Ed25519PrivateKey
) -> None:
    data = sign(typical_manifest(), other_key)
    parsed = parse_manifest(data)
    assert parsed.kid == key_id(other_key.public_key())
    assert parsed.alg == ALG_EDDSA
    assert parsed.size == len(data)
    assert decode_payload(parsed.payload) == typical_manifest()


def test_error_text() -> None:
    err = ManifestError(Reason.EXPIRED, "too late")
    assert str(err) == "expired: too late"
    assert "expired" in repr(err)
    assert isinstance(err, ValueError)


# ------------------------------------------------------------------------------------------------ artifact
def test_artifact_ok_in_chunks_and_from_a_file() -> None:
    m = typical_manifest()
    assert verify_artifact([ARTIFACT[i : i + 7] for i in range(0, len(ARTIFACT), 7)], m) == len(ARTIFACT)
    assert verify_artifact(io.BytesIO(ARTIFACT), m, chunk_size=100) == len(ARTIFACT)


def test_artifact_hash_mismatch() -> None:
    tampered = ARTIFACT[:-1] + bytes([ARTIFACT[-1] ^ 1])
    with pytest.raises(ManifestError) as info:
        verify_artifact([tampered], typical_manifest())
    assert info.value.reason is Reason.HASH_MISMATCH


def test_artifact_too_long_fails_as_soon_as_it_overflows() -> None:
    v = ArtifactVerifier.for_manifest(typical_manifest())
    v.update(ARTIFACT)
    with pytest.raises(ManifestError) as info:
        v.update(b"\x00")
    assert info.value.reason is Reason.SIZE_MISMATCH


def test_artifact_too_short() -> None:
    with pytest.raises(ManifestError) as info:
        verify_artifact(io.BytesIO(ARTIFACT[:-1]), typical_manifest())
    assert info.value.reason is Reason.SIZE_MISMATCH


# ------------------------------------------------------------------------------------------------ op table
def test_op_table_matches_the_tflite_schema() -> None:
    from tflite.BuiltinOperator import BuiltinOperator

    schema = {k: v for k, v in vars(BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}
    assert schema == BUILTIN_OP_CODES
    assert all(BUILTIN_OP_NAMES[code] == name for name, code in BUILTIN_OP_CODES.items())
    assert [normalize_op(op) for op in OPS] == [3, 4, 1, 22, 9, 25]


def test_reason_values_are_the_published_codes() -> None:
    assert {r.value for r in Reason} == {
        "malformed",
        "unsupported_version",
        "unsupported_algorithm",
        "unknown_key",
        "bad_signature",
        "wrong_device",
        "replayed_sequence",
        "expired",
        "incompatible",
        "size_mismatch",
        "hash_mismatch",
        "download_failed",
        "storage_failed",
        "apply_failed",
        "boot_failed",
    }
