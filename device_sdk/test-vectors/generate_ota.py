#!/usr/bin/env python3
"""Generate the OTA test vectors: manifests.json (signed manifests and artifacts) and ota_status.json.

Every manifest is built byte by byte with the small raw CBOR writer below and signed with `cryptography`
directly (Ed25519 is deterministic, and the vector keys come from fixed seeds — for vectors only, never for a
real fleet), so the files do not depend on the encoder under test. The expected verdict of each case is
written here by hand, and the generator asserts that ``tinyfleet_device.manifest`` (and, for ota_status.json,
``tinyfleet.wire``) agree before it writes anything.

    .venv/bin/python device_sdk/test-vectors/generate_ota.py           # rewrite the files
    .venv/bin/python device_sdk/test-vectors/generate_ota.py --check   # fail if the files are stale
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tinyfleet.wire import OtaStatus, WireError, decode_ota_status, encode_ota_status
from tinyfleet_device.manifest import (
    ArtifactVerifier,
    DeviceCapabilities,
    ManifestError,
    TrustedKeys,
    verify_manifest,
)

HERE = Path(__file__).resolve().parent
VERSION = 1


def check(cond: object, *context: object) -> None:
    """An assertion that also runs under ``python -O``."""
    if not cond:
        raise AssertionError(*context)


# ------------------------------------------------------------------------------------------ raw CBOR writer
def head(major: int, n: int, width: int | None = None) -> bytes:
    mt = major << 5
    if width is None:
        width = 0 if n < 24 else 1 if n <= 0xFF else 2 if n <= 0xFFFF else 4 if n <= 0xFFFFFFFF else 8
    if width == 0:
        return bytes((mt | n,))
    return bytes((mt | {1: 24, 2: 25, 4: 26, 8: 27}[width],)) + n.to_bytes(width, "big")


def u(n: int, width: int | None = None) -> bytes:
    return head(0, n, width) if n >= 0 else head(1, -1 - n, width)


def t(s: str) -> bytes:
    b = s.encode()
    return head(3, len(b)) + b


def bs(b: bytes) -> bytes:
    return head(2, len(b)) + b


def arr(*items: bytes) -> bytes:
    return head(4, len(items)) + b"".join(items)


def mp(*pairs: tuple[bytes, bytes]) -> bytes:
    return head(5, len(pairs)) + b"".join(k + v for k, v in pairs)


def tag(n: int, item: bytes) -> bytes:
    return head(6, n) + item


NULL, TRUE = b"\xf6", b"\xf5"


# ------------------------------------------------------------------------------------------------- keys
def seed(name: str) -> bytes:
    return hashlib.sha256(f"tinyfleet OTA test-vector key {name} - never use for a fleet".encode()).digest()


KEYS = {name: Ed25519PrivateKey.from_private_bytes(seed(name)) for name in ("k1", "k2", "k3")}


def pub(name: str) -> bytes:
    return KEYS[name].public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def kid(name: str) -> bytes:
    return hashlib.sha256(pub(name)).digest()[:8]


def protected(alg: bytes = u(-8), kid_bytes: bytes | None = None, key: str = "k1") -> bytes:
    return mp((u(1), alg), (u(4), bs(kid(key) if kid_bytes is None else kid_bytes)))


def sign(payload: bytes, key: str = "k1", prot: bytes | None = None) -> tuple[bytes, bytes]:
    """(protected, signature) of ``payload``: Sig_structure ["Signature1", protected, h'', payload]."""
    p = protected(key=key) if prot is None else prot
    return p, KEYS[key].sign(arr(t("Signature1"), bs(p), bs(b""), bs(payload)))


def cose(payload: bytes, key: str = "k1", prot: bytes | None = None, unprotected: bytes = b"\xa0") -> bytes:
    p, sig = sign(payload, key, prot)
    return tag(18, arr(bs(p), unprotected, bs(payload), bs(sig)))


# ---------------------------------------------------------------------------------------------- payload
ORDER = ["v", "seq", "iat", "exp", "component", "id", "ver", "size", "sha256", "uri", "compat", "labels"]
ORDER += ["rollout", "dev"]
COMPAT_ORDER = ["flash", "ram", "arena", "ops", "class"]


def payload(**fields: bytes) -> bytes:
    """A payload map by field name (values raw CBOR), keys ascending; a key not in ORDER is an int key."""
    pairs = []
    for k in ORDER:
        if k in fields:
            pairs.append((u(ORDER.index(k)), fields[k]))
    for k, v in fields.items():
        if k.startswith("key"):
            pairs.append((u(int(k[3:])), v))
    return mp(*pairs)


def compat(**fields: bytes) -> bytes:
    return mp(*((u(COMPAT_ORDER.index(k)), fields[k]) for k in COMPAT_ORDER if k in fields))


IAT = 1_790_000_000  # 2026-09-21T13:33:20Z
EXP = IAT + 30 * 86_400
NOW = IAT + 3_600
ARTIFACT = bytes(range(256)) * 4 + b"tinyfleet"  # 1,033 bytes
ARTIFACT_SHA = hashlib.sha256(ARTIFACT).digest()
URI64 = "https://fleet.example.com/api/v1/models/kws-ref/versions/12/blob"
check(len(URI64) == 64)
OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]
OP_CODES = [3, 4, 1, 22, 9, 25]  # their TFLite BuiltinOperator codes


def fields(**over: bytes) -> dict[str, bytes]:
    """The typical model manifest's fields (raw CBOR), with overrides (b"" removes a field)."""
    d = {
        "v": u(1),
        "seq": u(11),
        "iat": u(IAT),
        "exp": u(EXP),
        "component": u(0),
        "id": t("kws-ref"),
        "ver": u(12),
        "size": u(len(ARTIFACT)),
        "sha256": bs(ARTIFACT_SHA),
        "uri": t(URI64),
        "compat": compat(flash=u(1_048_576), ram=u(262_144), arena=u(60_000), ops=arr(*(u(c) for c in OP_CODES))),
    }
    d.update(over)
    return {k: v for k, v in d.items() if v != b""}


DECODED: dict[str, Any] = {
    "v": 1,
    "seq": 11,
    "iat": IAT,
    "exp": EXP,
    "component": "model",
    "id": "kws-ref",
    "ver": 12,
    "size": len(ARTIFACT),
    "sha256": ARTIFACT_SHA.hex(),
    "uri": URI64,
    "compat": {"flash": 1_048_576, "ram": 262_144, "arena": 60_000, "ops": OP_CODES},
}


def decoded(**over: Any) -> dict[str, Any]:
    d = dict(DECODED)
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


DEVICE: dict[str, Any] = {
    "flash": 2_097_152,
    "ram": 327_680,
    "arena": 64_000,
    "ops": [*OPS, "ADD"],
    "class": "nucleo-f746zg",
    "id": "press-007",
}

# ------------------------------------------------------------------------------------------------ cases
CASES: list[dict[str, Any]] = []


def case(
    name: str,
    message: bytes,
    verdict: str,
    *,
    decoded_payload: dict[str, Any] | None = None,
    trusted: tuple[str, ...] = ("k1",),
    last_seq: int = 10,
    now: int | None = NOW,
    device: dict[str, Any] | None = None,
    note: str = "",
) -> None:
    c: dict[str, Any] = {
        "name": name,
        "hex": message.hex(),
        "size": len(message),
        "trusted_keys": [pub(k).hex() for k in trusted],
        "last_seq": last_seq,
        "now": now,
        "device": DEVICE if device is None else device,
        "verdict": verdict,
    }
    if verdict == "ok":
        check(decoded_payload is not None, name)
        c["payload"] = decoded_payload
    if note:
        c["note"] = note
    CASES.append(c)


typical = cose(payload(**fields()))
case(
    "valid_typical",
    typical,
    "ok",
    decoded_payload=decoded(),
    note="a model update with a 64-character URI and flash/RAM/arena/6-op requirements",
)
case(
    "valid_minimal",
    cose(payload(**fields(id=u(42), ver=t("1.4.2-rc1"), compat=b""))),
    "ok",
    decoded_payload=decoded(id=42, ver="1.4.2-rc1", compat=None),
    note="numeric artifact id, text version, no compatibility requirements",
)
_fw_compat = compat(flash=u(524_288), ops=arr(u(3), t("TFLite_Detection_PostProcess")), **{"class": t("nucleo-f746zg")})
case(
    "valid_firmware_all_fields",
    cose(
        payload(
            **fields(
                component=u(1),
                id=t("tf-fw"),
                ver=t("2.0.1"),
                compat=_fw_compat,
                labels=arr(t("idle"), t("run")),
                rollout=t("r-2026-09"),
                dev=t("press-007"),
            )
        )
    ),
    "ok",
    decoded_payload=decoded(
        component="firmware",
        id="tf-fw",
        ver="2.0.1",
        compat={"flash": 524_288, "ops": [3, "TFLite_Detection_PostProcess"], "class": "nucleo-f746zg"},
        labels=["idle", "run"],
        rollout="r-2026-09",
        dev="press-007",
    ),
    device=DEVICE | {"ops": [*DEVICE["ops"], "TFLite_Detection_PostProcess"]},
    note="every optional field; a custom op by name; the device id and class match",
)
case(
    "valid_no_clock_expired",
    cose(payload(**fields(exp=u(IAT + 60)))),
    "ok",
    decoded_payload=decoded(exp=IAT + 60),
    now=None,
    note="a device without a clock passes now=null: the expiry is not checked",
)
case(
    "valid_rotated_key",
    cose(payload(**fields()), key="k3"),
    "ok",
    decoded_payload=decoded(),
    trusted=("k1", "k3"),
    note="signed with the new key k3 while the device trusts both k1 and k3",
)
case(
    "valid_device_without_limits",
    typical,
    "ok",
    decoded_payload=decoded(),
    device={},
    note="capabilities the device does not pass are not checked",
)
case("valid_seq_just_above", typical, "ok", decoded_payload=decoded(), last_seq=10)

_typ_payload = payload(**fields())
_p, _sig = sign(_typ_payload)
_tampered = bytearray(_typ_payload)
_tampered[_typ_payload.index(b"kws-ref/versions/12") + 17] ^= 0x01  # ".../12/" -> ".../13/"
case(
    "tampered_payload",
    tag(18, arr(bs(_p), b"\xa0", bs(bytes(_tampered)), bs(_sig))),
    "bad_signature",
    note="one bit of the URI flipped after signing",
)
case(
    "tampered_signature",
    tag(18, arr(bs(_p), b"\xa0", bs(_typ_payload), bs(_sig[:-1] + bytes([_sig[-1] ^ 0x80])))),
    "bad_signature",
)
_p2, _sig2 = sign(_typ_payload, key="k2", prot=protected(key="k1"))
case(
    "wrong_key_same_kid",
    tag(18, arr(bs(_p2), b"\xa0", bs(_typ_payload), bs(_sig2))),
    "bad_signature",
    note="signed by k2 but claims k1's kid",
)
case("untrusted_key", cose(_typ_payload, key="k2"), "unknown_key", note="signed by k2, which the device does not trust")
case("no_trusted_key_matches", typical, "unknown_key", trusted=("k2", "k3"))
case("lower_sequence", typical, "replayed_sequence", last_seq=12)
case("equal_sequence", typical, "replayed_sequence", last_seq=11, note="the same manifest again")
case("expired", typical, "expired", now=EXP + 1)
case("valid_at_expiry", typical, "ok", decoded_payload=decoded(), now=EXP, note="exp itself is still valid")
case("incompatible_arena", typical, "incompatible", device=DEVICE | {"arena": 59_999})
case("incompatible_flash", typical, "incompatible", device=DEVICE | {"flash": 1_000_000})
case("incompatible_ram", typical, "incompatible", device=DEVICE | {"ram": 131_072})
case(
    "incompatible_ops",
    typical,
    "incompatible",
    device=DEVICE | {"ops": ["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]},
    note="the device lacks DEPTHWISE_CONV_2D, AVERAGE_POOL_2D and RESHAPE",
)
case(
    "incompatible_class",
    cose(payload(**fields(compat=compat(**{"class": t("esp32-s3")})))),
    "incompatible",
)
case("wrong_device", cose(payload(**fields(dev=t("press-008")))), "wrong_device")
case(
    "unsupported_version",
    cose(payload(**fields(v=u(2), key14=u(1)))),
    "unsupported_version",
    note="version 2 (with a key v1 does not know): refused before its fields are judged",
)
case("unsupported_algorithm", cose(_typ_payload, prot=protected(alg=u(-7))), "unsupported_algorithm", note="ES256")

# malformed: the envelope
case("truncated", typical[:-1], "malformed")
case("truncated_half", typical[: len(typical) // 2], "malformed")
case("empty", b"", "malformed")
case("trailing_bytes", typical + b"\x00", "malformed")
case("wrong_tag", b"\xd8\x62" + typical[1:], "malformed", note="tag 98 (COSE_Sign) instead of 18")
case("untagged", typical[1:], "malformed", note="the bare array without tag 18")
case("not_an_array", tag(18, mp()), "malformed")
case("array_of_three", tag(18, arr(bs(_p), b"\xa0", bs(_typ_payload))), "malformed")
case(
    "unprotected_alg",
    cose(_typ_payload, unprotected=mp((u(1), u(-8)))),
    "malformed",
    note="alg in the unprotected header: v1 requires it empty",
)
case(
    "protected_extra_label",
    cose(_typ_payload, prot=mp((u(1), u(-8)), (u(3), u(0)), (u(4), bs(kid("k1"))))),
    "malformed",
    note="content type (3) in the protected header",
)
case("protected_without_kid", cose(_typ_payload, prot=mp((u(1), u(-8)))), "malformed")
case(
    "detached_payload",
    tag(18, arr(bs(_p), b"\xa0", NULL, bs(_sig))),
    "malformed",
    note="payload nil (detached) is not supported",
)
case("signature_63_bytes", tag(18, arr(bs(_p), b"\xa0", bs(_typ_payload), bs(_sig[:63]))), "malformed")
case(
    "envelope_not_deterministic",
    tag(18, arr(bs(_p), b"\xa0", b"\x59" + len(_typ_payload).to_bytes(2, "big") + _typ_payload, bs(_sig))),
    "malformed",
    note="the payload's length in a longer head than needed",
)
case("oversized", tag(18, arr(bs(_p), b"\xa0", bs(b"\x00" * 1000), bs(_sig))), "malformed", note="over 1,024 bytes")

# malformed: a correctly signed payload a device must still refuse
case("missing_sha256", cose(payload(**fields(sha256=b""))), "malformed")
case("missing_version", cose(payload(**fields(v=b""))), "malformed")
case("sha256_31_bytes", cose(payload(**fields(sha256=bs(ARTIFACT_SHA[:31])))), "malformed")
case("size_as_text", cose(payload(**fields(size=t("1033")))), "malformed")
case("size_zero", cose(payload(**fields(size=u(0)))), "malformed")
case("unknown_payload_key", cose(payload(**fields(key14=u(1)))), "malformed")
case("unknown_component", cose(payload(**fields(component=u(2)))), "malformed")
case("unknown_compat_key", cose(payload(**fields(compat=mp((u(9), u(1)))))), "malformed")
case("exp_before_iat", cose(payload(**fields(exp=u(IAT)))), "malformed")
case("payload_not_a_map", cose(arr(u(1))), "malformed")
case(
    "payload_not_deterministic",
    cose(payload(**fields(seq=u(11, 4)))),
    "malformed",
    note="seq written in 5 bytes instead of 1",
)
case(
    "payload_unsorted_keys",
    cose(mp(*((u(i), v) for i, v in reversed(list(enumerate(fields().values())))))),
    "malformed",
)
case(
    "payload_duplicate_key",
    cose(bytes([0xA0 + len(fields()) + 2]) + payload(**fields())[1:] + u(13) + t("a") + u(13) + t("b")),
    "malformed",
)
case(
    "payload_indefinite_map",
    cose(b"\xbf" + payload(**fields())[1:] + b"\xff"),
    "malformed",
)
case("payload_trailing_bytes", cose(payload(**fields()) + b"\x00"), "malformed")
case("uri_empty", cose(payload(**fields(uri=t("")))), "malformed")
case("seq_negative", cose(payload(**fields(seq=u(-1)))), "malformed")
case("payload_tagged_value", cose(payload(**fields(iat=tag(1, u(IAT))))), "malformed", note="tag 1 (epoch time)")

ARTIFACTS = [
    {"name": "artifact_ok", "hex": ARTIFACT.hex(), "verdict": "ok"},
    {"name": "artifact_one_bit", "hex": (ARTIFACT[:-1] + b"T").hex(), "verdict": "hash_mismatch"},
    {"name": "artifact_short", "hex": ARTIFACT[:-1].hex(), "verdict": "size_mismatch"},
    {"name": "artifact_long", "hex": (ARTIFACT + b"\x00").hex(), "verdict": "size_mismatch"},
    {"name": "artifact_empty", "hex": "", "verdict": "size_mismatch"},
]


# ---------------------------------------------------------------------------------------------- ota/status
ST_ORDER = ["v", "ts", "state", "seq", "reason", "msg", "model", "mver", "fw", "progress"]
TS_MS = 1_790_000_000_000
STATUS_VALID: list[dict[str, Any]] = []
STATUS_INVALID: list[dict[str, Any]] = []


def status(**f: bytes) -> bytes:
    order = [*ST_ORDER, "", "", "", "x"]
    return mp(*((u(order.index(k)), f[k]) for k in order if k and k in f))


def svalid(name: str, p: bytes, dec: dict[str, Any], *, canonical: bool, strict: bool = True, note: str = "") -> None:
    c: dict[str, Any] = {"name": name, "format": "json" if p[:1] == b"{" else "cbor", "hex": p.hex()}
    c |= {"decoded": dec, "canonical": canonical, "strict": strict}
    if note:
        c["note"] = note
    STATUS_VALID.append(c)


def sinvalid(name: str, p: bytes, error: str, *, field: str | None = None, strict: bool = True) -> None:
    c: dict[str, Any] = {"name": name, "format": "json" if p[:1] == b"{" else "cbor", "hex": p.hex()}
    c |= {"error": error, "index": None, "strict": strict}
    if field:
        c["field"] = field
    STATUS_INVALID.append(c)


svalid(
    "downloading",
    status(v=u(1), ts=u(TS_MS), state=t("downloading"), seq=u(11), progress=u(4096)),
    {"v": 1, "ts": TS_MS, "state": "downloading", "seq": 11, "progress": 4096},
    canonical=True,
)
svalid(
    "downloaded",
    status(v=u(1), state=t("downloaded"), seq=u(11), progress=u(1033)),
    {"v": 1, "state": "downloaded", "seq": 11, "progress": 1033},
    canonical=True,
)
svalid(
    "verified", status(v=u(1), state=t("verified"), seq=u(11)), {"v": 1, "state": "verified", "seq": 11}, canonical=True
)
svalid(
    "applied",
    status(v=u(1), state=t("applied"), seq=u(11), model=t("kws-ref"), mver=u(12)),
    {"v": 1, "state": "applied", "seq": 11, "model": "kws-ref", "mver": 12},
    canonical=True,
    note="the model the device now runs",
)
svalid(
    "failed_hash",
    status(
        v=u(1),
        state=t("failed"),
        seq=u(11),
        reason=t("hash_mismatch"),
        msg=t("SHA-256 differs"),
        model=u(7),
        mver=u(11),
    ),
    {"v": 1, "state": "failed", "seq": 11, "reason": "hash_mismatch", "msg": "SHA-256 differs", "model": 7, "mver": 11},
    canonical=True,
)
svalid(
    "rolled_back",
    status(v=u(1), state=t("rolled_back"), seq=u(11), reason=t("boot_failed"), model=t("kws-ref"), mver=u(11)),
    {"v": 1, "state": "rolled_back", "seq": 11, "reason": "boot_failed", "model": "kws-ref", "mver": 11},
    canonical=True,
)
svalid(
    "firmware_applied_json",
    b'{"v":1,"state":"applied","seq":3,"fw":"2.0.1"}',
    {"v": 1, "state": "applied", "seq": 3, "fw": "2.0.1"},
    canonical=True,
)
svalid(
    "lenient_unknown",
    bytes([0xA4]) + status(v=u(1), state=t("verified"), seq=u(1))[1:] + u(20) + u(5),
    {"v": 1, "state": "verified", "seq": 1, "x": {"20": 5}},
    canonical=False,
    strict=False,
)
sinvalid("status_missing_seq", status(v=u(1), state=t("verified")), "missing_field", field="seq")
sinvalid("status_missing_state", status(v=u(1), seq=u(1)), "missing_field", field="state")
sinvalid("status_unknown_state", status(v=u(1), state=t("installing"), seq=u(1)), "out_of_range", field="state")
sinvalid("status_state_int", status(v=u(1), state=u(3), seq=u(1)), "wrong_type", field="state")
sinvalid("status_failed_without_reason", status(v=u(1), state=t("failed"), seq=u(1)), "missing_field", field="reason")
sinvalid(
    "status_unknown_reason",
    status(v=u(1), state=t("failed"), seq=u(1), reason=t("cosmic_ray")),
    "out_of_range",
    field="reason",
)
sinvalid(
    "status_msg_too_long",
    status(v=u(1), state=t("failed"), seq=u(1), reason=t("expired"), msg=t("m" * 161)),
    "out_of_range",
    field="msg",
)
sinvalid("status_seq_negative", status(v=u(1), state=t("verified"), seq=u(-1)), "out_of_range", field="seq")
sinvalid("status_version_2", status(v=u(2), state=t("verified"), seq=u(1)), "unsupported_version", field="v")
sinvalid(
    "status_unknown_key",
    bytes([0xA4]) + status(v=u(1), state=t("verified"), seq=u(1))[1:] + u(20) + u(5),
    "unknown_key",
    field="20",
)
sinvalid("status_array", arr(status(v=u(1), state=t("verified"), seq=u(1))), "not_an_event")
sinvalid("status_empty", b"", "empty_payload")


# ------------------------------------------------------------------------------------------------ checks
def _caps(d: dict[str, Any]) -> DeviceCapabilities:
    ops = d.get("ops")
    return DeviceCapabilities(
        flash=d.get("flash"),
        ram=d.get("ram"),
        arena=d.get("arena"),
        ops=frozenset(ops) if ops is not None else None,
        device_class=d.get("class"),
        device_id=d.get("id"),
    )


def verdict_of(c: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """What the Python verifier says of a manifest case: ("ok", payload) or (reason, None)."""
    keys = TrustedKeys(bytes.fromhex(k) for k in c["trusted_keys"])
    try:
        m = verify_manifest(
            bytes.fromhex(c["hex"]), keys=keys, last_seq=c["last_seq"], now=c["now"], device=_caps(c["device"])
        )
    except ManifestError as exc:
        return exc.reason.value, None
    return "ok", m.as_dict()


def artifact_verdict(a: dict[str, Any], size: int, sha256: bytes) -> str:
    v = ArtifactVerifier(size, sha256)
    try:
        data = bytes.fromhex(a["hex"])
        for i in range(0, len(data), 100):
            v.update(data[i : i + 100])
        v.finish()
    except ManifestError as exc:
        return exc.reason.value
    return "ok"


def _norm(v: Any) -> Any:
    return {k: e for k, e in json.loads(json.dumps(msgspec.to_builtins(v))).items() if e is not None}


def _check() -> None:
    names = [c["name"] for c in CASES] + [a["name"] for a in ARTIFACTS]
    check(len(names) == len(set(names)), "duplicate case names")
    for c in CASES:
        got, payload_dict = verdict_of(c)
        check(got == c["verdict"], (c["name"], got))
        if got == "ok":
            check(payload_dict == c["payload"], (c["name"], payload_dict, c["payload"]))
    check(len(typical) <= 256, f"the typical manifest is {len(typical)} bytes")
    for a in ARTIFACTS:
        check(artifact_verdict(a, len(ARTIFACT), ARTIFACT_SHA) == a["verdict"], a["name"])
    for s in STATUS_VALID:
        p = bytes.fromhex(s["hex"])
        got = decode_ota_status(p, strict=s["strict"])
        check(_norm(got) == s["decoded"], (s["name"], got))
        enc = encode_ota_status(msgspec.convert(s["decoded"], OtaStatus), fmt=s["format"])
        check((enc == p) == s["canonical"], (s["name"], enc.hex()))
    for s in STATUS_INVALID:
        try:
            decode_ota_status(bytes.fromhex(s["hex"]), strict=s["strict"])
        except WireError as exc:
            check(exc.code.value == s["error"], (s["name"], exc))
            check(s.get("field") is None or exc.field == s["field"], (s["name"], exc.field))
        else:
            raise AssertionError(f"{s['name']}: decoded without error")


def documents() -> dict[str, dict[str, Any]]:
    return {
        "manifests.json": {
            "version": VERSION,
            "description": (
                "tinyfleet OTA manifests v1 (docs/ota.md): COSE_Sign1 with Ed25519. Each case gives the manifest "
                "bytes, the raw public keys the device trusts, its last applied sequence number, its clock "
                "(Unix seconds; null = no clock, expiry not checked) and its capabilities (a missing one is not "
                "checked; ops by TFLite name). `verdict` is `ok` (then `payload` is the decoded payload with "
                "sha256 in hex) or the reason code the device must report. Artifacts: each `hex` is checked "
                "against `artifact.size` and `artifact.sha256` (the size and hash in the manifests' payload)."
            ),
            "keys": {
                name: {"seed": seed(name).hex(), "public": pub(name).hex(), "kid": kid(name).hex()} for name in KEYS
            },
            "artifact": {"size": len(ARTIFACT), "sha256": ARTIFACT_SHA.hex()},
            "cases": CASES,
            "artifacts": ARTIFACTS,
        },
        "ota_status.json": {
            "version": VERSION,
            "description": (
                "tinyfleet wire contract v1: OTA status reports (topic tf/v1/{device}/ota/status); "
                "same layout as telemetry.json."
            ),
            "valid": STATUS_VALID,
            "invalid": STATUS_INVALID,
        },
    }


def main(argv: list[str]) -> int:
    _check()
    stale = []
    for name, doc in documents().items():
        text = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
        path = HERE / name
        if "--check" in argv:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.write_text(text)
    if stale:
        print(f"stale: {', '.join(stale)} (run {Path(__file__).name})", file=sys.stderr)
        return 1
    n_status = len(STATUS_VALID) + len(STATUS_INVALID)
    print(f"{len(CASES)} manifest, {len(ARTIFACTS)} artifact and {n_status} ota/status vectors ok")
    print(f"typical manifest (64-character URI, 6 ops): {len(typical)} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
