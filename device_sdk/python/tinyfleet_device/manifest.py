"""Signed OTA manifests: the format and the verifier a device runs before it downloads and swaps an artifact.

A manifest is a COSE_Sign1 (RFC 9052, CBOR tag 18) signed with Ed25519 (``alg`` -8, EdDSA). The protected
header holds ``alg`` and ``kid`` (the first 8 bytes of SHA-256 of the raw 32-byte public key); the unprotected
header is empty; the payload is a compact CBOR map with small integer keys (:class:`Key`, docs/ota.md).

This module is pure (cbor2 + cryptography, no service imports): the service's signer builds the payload with
:func:`encode_payload` and the COSE structure with :func:`protected_header` / :func:`sig_structure` /
:func:`assemble`, so both sides share one definition. Every rejection raises :class:`ManifestError` with a
stable :class:`Reason` code, which the device reports on ``tf/v1/{device}/ota/status``.

Verification order (:func:`verify_manifest`): size, CBOR well-formedness, COSE_Sign1 structure, algorithm,
key id, signature — only then is the payload parsed — then payload structure, version, device id, sequence
number, expiry, compatibility. The artifact is checked afterwards, while it streams in
(:class:`ArtifactVerifier`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum, StrEnum
from typing import Any, BinaryIO, NoReturn

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .tflite_ops import BUILTIN_OP_CODES, BUILTIN_OP_NAMES

__all__ = [
    "ALG_EDDSA",
    "COSE_SIGN1_TAG",
    "KID_LEN",
    "MANIFEST_VERSION",
    "MAX_MANIFEST_BYTES",
    "ArtifactVerifier",
    "Compat",
    "CompatKey",
    "Component",
    "DeviceCapabilities",
    "Key",
    "Manifest",
    "ManifestError",
    "ParsedManifest",
    "Reason",
    "TrustedKeys",
    "assemble",
    "compatibility_problems",
    "decode_payload",
    "encode_payload",
    "key_id",
    "normalize_op",
    "parse_manifest",
    "protected_header",
    "raw_public_key",
    "sig_structure",
    "verify_artifact",
    "verify_manifest",
]

MANIFEST_VERSION = 1
COSE_SIGN1_TAG = 18
#: COSE algorithm EdDSA (RFC 9053); the only one accepted
ALG_EDDSA = -8
HDR_ALG = 1
HDR_KID = 4
#: bytes of SHA-256(raw public key) that make the key id
KID_LEN = 8
#: a whole COSE_Sign1 larger than this is refused before it is decoded (a typical one is ~250 bytes)
MAX_MANIFEST_BYTES = 1024

U32 = 0xFFFF_FFFF
U63 = 2**63 - 1
MAX_TEXT = 64
MAX_URI = 256
MAX_OPS = 128
MAX_LABELS = 256


class Component(IntEnum):
    """What the artifact replaces."""

    MODEL = 0
    FIRMWARE = 1


class Key(IntEnum):
    """Payload map keys (docs/ota.md, "Payload")."""

    V = 0
    SEQ = 1
    IAT = 2
    EXP = 3
    COMPONENT = 4
    ID = 5
    VERSION = 6
    SIZE = 7
    SHA256 = 8
    URI = 9
    COMPAT = 10
    LABELS = 11
    ROLLOUT = 12
    DEVICE = 13


class CompatKey(IntEnum):
    """Keys of the ``compat`` map (0..3 are the keys of ``caps`` in the state topic)."""

    FLASH = 0
    RAM = 1
    ARENA = 2
    OPS = 3
    DEVICE_CLASS = 4


class Reason(StrEnum):
    """Why a manifest or an update was refused or failed. The values are a published contract (reported on
    ``ota/status``, asserted by the test vectors): never rename or reuse one."""

    # the manifest (verify_manifest)
    MALFORMED = "malformed"
    UNSUPPORTED_VERSION = "unsupported_version"
    UNSUPPORTED_ALGORITHM = "unsupported_algorithm"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    WRONG_DEVICE = "wrong_device"
    REPLAYED_SEQUENCE = "replayed_sequence"
    EXPIRED = "expired"
    INCOMPATIBLE = "incompatible"
    # the artifact (ArtifactVerifier)
    SIZE_MISMATCH = "size_mismatch"
    HASH_MISMATCH = "hash_mismatch"
    # the update itself, reported by the device
    DOWNLOAD_FAILED = "download_failed"
    STORAGE_FAILED = "storage_failed"
    APPLY_FAILED = "apply_failed"
    BOOT_FAILED = "boot_failed"


class ManifestError(ValueError):
    """A manifest or artifact the device must not use: ``reason`` is the stable code, ``message`` a sentence."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(reason, message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason.value}: {self.message}"

    def __repr__(self) -> str:
        return f"ManifestError({self.reason.value!r}, {self.message!r})"


def _fail(reason: Reason, message: str) -> NoReturn:
    raise ManifestError(reason, message)


def _malformed(message: str) -> NoReturn:
    raise ManifestError(Reason.MALFORMED, message)


# ------------------------------------------------------------------------------------------------ data model
@dataclass(frozen=True, slots=True)
class Compat:
    """What a device needs to run the artifact: minimum flash / RAM / tensor arena in bytes, the TFLite ops
    (builtin codes, or names of custom ops) and a device class (board name). None / empty = no requirement."""

    flash: int | None = None
    ram: int | None = None
    arena: int | None = None
    ops: tuple[int | str, ...] = ()
    device_class: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        for name in ("flash", "ram", "arena"):
            if getattr(self, name) is not None:
                d[name] = getattr(self, name)
        if self.ops:
            d["ops"] = list(self.ops)
        if self.device_class is not None:
            d["class"] = self.device_class
        return d


@dataclass(frozen=True, slots=True)
class Manifest:
    """The payload of a manifest. Times are seconds since the Unix epoch (uint32)."""

    seq: int
    issued_at: int
    expires_at: int
    component: Component
    artifact_id: str | int
    version: int | str
    size: int
    sha256: bytes
    uri: str
    compat: Compat = field(default_factory=Compat)
    labels: tuple[str, ...] | None = None
    rollout: str | int | None = None
    device: str | None = None
    v: int = MANIFEST_VERSION

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (the names of docs/ota.md; sha256 as hex)."""
        d: dict[str, Any] = {
            "v": self.v,
            "seq": self.seq,
            "iat": self.issued_at,
            "exp": self.expires_at,
            "component": self.component.name.lower(),
            "id": self.artifact_id,
            "ver": self.version,
            "size": self.size,
            "sha256": self.sha256.hex(),
            "uri": self.uri,
        }
        compat = self.compat.as_dict()
        if compat:
            d["compat"] = compat
        if self.labels is not None:
            d["labels"] = list(self.labels)
        if self.rollout is not None:
            d["rollout"] = self.rollout
        if self.device is not None:
            d["dev"] = self.device
        return d


# --------------------------------------------------------------------------------------------- CBOR helpers
def _marker(tag: int) -> Any:
    def decode(_value: Any, _immutable: bool) -> cbor2.CBORTag:
        return cbor2.CBORTag(tag, None)

    return decode


# cbor2's built-in semantic tags (datetime, bignum, regex, ...) would otherwise build Python objects from
# unauthenticated bytes; here every tag stays an opaque CBORTag, and only tag 18 around the message is valid.
_BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 43000, 55799)
_SEMANTIC: dict[int, Any] = {t: _marker(t) for t in _BUILTIN_TAGS}


def _loads(data: bytes, what: str) -> Any:
    """Exactly one well-formed CBOR item with definite lengths and no duplicate map keys."""
    fp = io.BytesIO(data)
    try:
        value = cbor2.CBORDecoder(
            fp, semantic_decoders=_SEMANTIC, allow_indefinite=False, allow_duplicate_keys=False
        ).decode()
    except Exception as exc:  # cbor2 raises CBORDecodeError, but also ValueError/TypeError/RecursionError
        _malformed(f"{what} is not well-formed CBOR: {exc}")
    if fp.tell() != len(data):
        _malformed(f"{what}: {len(data) - fp.tell()} byte(s) after the CBOR item")
    return value


def _dumps(value: Any) -> bytes:
    return cbor2.dumps(value, canonical=True)


def _require_deterministic(data: bytes, value: Any, what: str) -> None:
    """RFC 8949 §4.2.1 deterministic encoding (shortest heads, sorted keys), so every verifier, the C SDK's
    streaming parser included, reads the same bytes the same way."""
    try:
        again = _dumps(value)
    except Exception as exc:
        _malformed(f"{what}: {exc}")
    if again != data:
        _malformed(f"{what} is not in deterministic CBOR encoding (shortest integers, sorted map keys)")


def _describe(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"bool {v}"
    if isinstance(v, int):
        return f"int {v}"
    if isinstance(v, str):
        return f"text {v[:24]!r}"
    if isinstance(v, bytes):
        return f"byte string ({len(v)} bytes)"
    if isinstance(v, list | tuple):
        return f"array of {len(v)}"
    if isinstance(v, Mapping):
        return f"map of {len(v)}"
    if isinstance(v, cbor2.CBORTag):
        return f"tag {v.tag}"
    return type(v).__name__


# ------------------------------------------------------------------------------------------- field checks
def _uint(name: str, v: Any, maxv: int = U32, minv: int = 0) -> int:
    if type(v) is not int:
        _malformed(f"{name}: expected uint, got {_describe(v)}")
    if not minv <= v <= maxv:
        _malformed(f"{name}: {v} is out of range {minv}..{maxv}")
    return v


def _text(name: str, v: Any, maxlen: int = MAX_TEXT) -> str:
    if type(v) is not str:
        _malformed(f"{name}: expected text, got {_describe(v)}")
    if not 0 < len(v) <= maxlen or any(c < " " or c == "\x7f" for c in v):
        _malformed(f"{name}: text must have 1..{maxlen} characters and no control characters")
    return v


def _text_or_uint(name: str, v: Any) -> str | int:
    if type(v) is int:
        return _uint(name, v)
    if type(v) is str:
        return _text(name, v)
    _malformed(f"{name}: expected text or uint32, got {_describe(v)}")


def _array(name: str, v: Any, maxlen: int) -> tuple[Any, ...]:
    if type(v) not in (list, tuple):
        _malformed(f"{name}: expected an array, got {_describe(v)}")
    if len(v) > maxlen:
        _malformed(f"{name}: {len(v)} entries, the limit is {maxlen}")
    return tuple(v)


def _map(name: str, v: Any) -> dict[Any, Any]:
    if type(v) is not dict:
        _malformed(f"{name}: expected a map, got {_describe(v)}")
    return v


def _known_keys(name: str, m: dict[Any, Any], keys: type[IntEnum]) -> None:
    known = {k.value for k in keys}
    for k in m:
        if type(k) is not int or k not in known:
            _malformed(f"{name}: unknown key {_describe(k)}")


def _decode_compat(v: Any) -> Compat:
    m = _map("compat", v)
    _known_keys("compat", m, CompatKey)
    ops: list[int | str] = []
    if CompatKey.OPS in m:
        for i, op in enumerate(_array("compat.ops", m[CompatKey.OPS], MAX_OPS)):
            ops.append(_uint(f"compat.ops[{i}]", op, 0xFFFF) if type(op) is int else _text(f"compat.ops[{i}]", op))
    return Compat(
        flash=_uint("compat.flash", m[CompatKey.FLASH]) if CompatKey.FLASH in m else None,
        ram=_uint("compat.ram", m[CompatKey.RAM]) if CompatKey.RAM in m else None,
        arena=_uint("compat.arena", m[CompatKey.ARENA]) if CompatKey.ARENA in m else None,
        ops=tuple(ops),
        device_class=_text("compat.class", m[CompatKey.DEVICE_CLASS]) if CompatKey.DEVICE_CLASS in m else None,
    )


_REQUIRED = (
    Key.V,
    Key.SEQ,
    Key.IAT,
    Key.EXP,
    Key.COMPONENT,
    Key.ID,
    Key.VERSION,
    Key.SIZE,
    Key.SHA256,
    Key.URI,
)


def decode_payload(payload: bytes) -> Manifest:
    """Parse and check a manifest payload (the bytes the signature covers). Raises ManifestError
    (``malformed``, or ``unsupported_version`` for a version other than 1)."""
    m = _map("payload", _loads(payload, "payload"))
    # the version decides what the rest means, so it is read before anything else is judged
    if Key.V not in m:
        _malformed("payload: the version (key 0) is missing")
    version = m[Key.V]
    if type(version) is not int:
        _malformed(f"v: expected uint, got {_describe(version)}")
    if version != MANIFEST_VERSION:
        _fail(Reason.UNSUPPORTED_VERSION, f"manifest version {version} is not supported (expected 1)")
    _known_keys("payload", m, Key)
    for k in _REQUIRED:
        if k not in m:
            _malformed(f"{k.name.lower()}: required field (key {k.value}) is missing")
    component = _uint("component", m[Key.COMPONENT], max(Component))
    sha = m[Key.SHA256]
    if type(sha) is not bytes or len(sha) != 32:
        _malformed(f"sha256: expected a 32-byte byte string, got {_describe(sha)}")
    issued_at = _uint("iat", m[Key.IAT])
    expires_at = _uint("exp", m[Key.EXP])
    if expires_at <= issued_at:
        _malformed(f"exp: {expires_at} is not after iat {issued_at}")
    labels: tuple[str, ...] | None = None
    if Key.LABELS in m:
        labels = tuple(_text(f"labels[{i}]", s) for i, s in enumerate(_array("labels", m[Key.LABELS], MAX_LABELS)))
    manifest = Manifest(
        v=version,
        seq=_uint("seq", m[Key.SEQ]),
        issued_at=issued_at,
        expires_at=expires_at,
        component=Component(component),
        artifact_id=_text_or_uint("id", m[Key.ID]),
        version=_text_or_uint("ver", m[Key.VERSION]),
        size=_uint("size", m[Key.SIZE], minv=1),
        sha256=sha,
        uri=_text("uri", m[Key.URI], MAX_URI),
        compat=_decode_compat(m[Key.COMPAT]) if Key.COMPAT in m else Compat(),
        labels=labels,
        rollout=_text_or_uint("rollout", m[Key.ROLLOUT]) if Key.ROLLOUT in m else None,
        device=_text("dev", m[Key.DEVICE]) if Key.DEVICE in m else None,
    )
    # last, so a wrong field is named as such rather than as an encoding problem
    _require_deterministic(payload, m, "payload")
    return manifest


def encode_payload(manifest: Manifest) -> bytes:
    """The deterministic CBOR payload of ``manifest``; refuses (ManifestError) what a device would refuse."""
    m: dict[int, Any] = {
        Key.V: manifest.v,
        Key.SEQ: manifest.seq,
        Key.IAT: manifest.issued_at,
        Key.EXP: manifest.expires_at,
        Key.COMPONENT: int(manifest.component),
        Key.ID: manifest.artifact_id,
        Key.VERSION: manifest.version,
        Key.SIZE: manifest.size,
        Key.SHA256: manifest.sha256,
        Key.URI: manifest.uri,
    }
    c = manifest.compat
    compat: dict[int, Any] = {}
    for key, value in (
        (CompatKey.FLASH, c.flash),
        (CompatKey.RAM, c.ram),
        (CompatKey.ARENA, c.arena),
        (CompatKey.OPS, list(c.ops) or None),
        (CompatKey.DEVICE_CLASS, c.device_class),
    ):
        if value is not None:
            compat[int(key)] = value
    if compat:
        m[Key.COMPAT] = compat
    if manifest.labels is not None:
        m[Key.LABELS] = list(manifest.labels)
    if manifest.rollout is not None:
        m[Key.ROLLOUT] = manifest.rollout
    if manifest.device is not None:
        m[Key.DEVICE] = manifest.device
    try:
        payload = _dumps({int(k): v for k, v in m.items()})
    except Exception as exc:
        _malformed(f"cannot encode the payload: {exc}")
    decode_payload(payload)  # the signer never signs what a device would refuse
    return payload


# ---------------------------------------------------------------------------------------------- COSE_Sign1
def raw_public_key(key: Ed25519PublicKey | bytes) -> bytes:
    """The raw 32-byte form of an Ed25519 public key."""
    if isinstance(key, bytes | bytearray):
        if len(key) != 32:
            raise ValueError(f"an Ed25519 public key has 32 bytes, got {len(key)}")
        return bytes(key)
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | bytes) -> bytes:
    """The ``kid`` of a key: the first KID_LEN bytes of SHA-256 of its raw 32 bytes."""
    return hashlib.sha256(raw_public_key(key)).digest()[:KID_LEN]


def protected_header(kid: bytes) -> bytes:
    """The serialized protected header ``{1: -8, 4: kid}``."""
    return _dumps({HDR_ALG: ALG_EDDSA, HDR_KID: kid})


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The bytes Ed25519 signs: ``["Signature1", protected, external_aad, payload]`` (RFC 9052 §4.4)."""
    return _dumps(["Signature1", protected, external_aad, payload])


def assemble(protected: bytes, payload: bytes, signature: bytes) -> bytes:
    """The tagged COSE_Sign1 ``18([protected, {}, payload, signature])``."""
    return _dumps(cbor2.CBORTag(COSE_SIGN1_TAG, [protected, {}, payload, signature]))


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    """A COSE_Sign1 taken apart but NOT verified (the signature is unchecked): for tools and the verifier."""

    kid: bytes
    alg: int
    protected: bytes
    payload: bytes
    signature: bytes
    size: int

    def to_be_signed(self) -> bytes:
        return sig_structure(self.protected, self.payload)


def parse_manifest(data: bytes) -> ParsedManifest:
    """Check the COSE_Sign1 envelope and return its parts (no signature check, payload not parsed).
    Raises ManifestError (``malformed``, ``unsupported_algorithm``)."""
    if type(data) is not bytes:
        data = bytes(data)
    if not data:
        _malformed("the manifest is empty")
    if len(data) > MAX_MANIFEST_BYTES:
        _malformed(f"the manifest is {len(data)} bytes, the limit is {MAX_MANIFEST_BYTES}")
    obj = _loads(data, "manifest")
    if not isinstance(obj, cbor2.CBORTag):
        _malformed(f"expected a COSE_Sign1 (tag {COSE_SIGN1_TAG}), got {_describe(obj)}")
    if obj.tag != COSE_SIGN1_TAG:
        _malformed(f"expected CBOR tag {COSE_SIGN1_TAG} (COSE_Sign1), got tag {obj.tag}")
    body = obj.value
    if type(body) not in (list, tuple) or len(body) != 4:  # cbor2 gives a tagged array as a tuple
        _malformed(f"COSE_Sign1 must be an array of 4, got {_describe(body)}")
    protected, unprotected, payload, signature = body
    if type(protected) is not bytes:
        _malformed(f"protected header: expected a byte string, got {_describe(protected)}")
    if not isinstance(unprotected, Mapping):  # a frozendict inside the tag
        _malformed(f"unprotected header: expected a map, got {_describe(unprotected)}")
    if unprotected:
        # alg or kid outside the signature could be swapped by anyone; v1 puts nothing there
        _malformed(f"unprotected header must be empty, has labels {sorted(map(str, unprotected))}")
    if type(payload) is not bytes:
        _malformed(f"payload: expected a byte string (detached payloads are not supported), got {_describe(payload)}")
    if type(signature) is not bytes or len(signature) != 64:
        _malformed(f"signature: expected 64 bytes, got {_describe(signature)}")
    _require_deterministic(data, obj, "manifest")
    header = _map("protected header", _loads(protected, "protected header"))
    _require_deterministic(protected, header, "protected header")
    for label in header:
        if label not in (HDR_ALG, HDR_KID) or type(label) is not int:
            _malformed(f"protected header: unexpected label {_describe(label)} (only alg and kid are allowed)")
    if HDR_ALG not in header:
        _malformed("protected header: alg (label 1) is missing")
    alg = header[HDR_ALG]
    if type(alg) is not int and type(alg) is not str:
        _malformed(f"protected header: alg must be an int, got {_describe(alg)}")
    if alg != ALG_EDDSA:
        _fail(Reason.UNSUPPORTED_ALGORITHM, f"algorithm {alg!r} is not supported (only EdDSA, -8)")
    kid = header.get(HDR_KID)
    if type(kid) is not bytes or not 1 <= len(kid) <= 32:
        _malformed(f"protected header: kid (label 4) must be a byte string of 1..32 bytes, got {_describe(kid)}")
    return ParsedManifest(kid, alg, protected, payload, signature, len(data))


class TrustedKeys:
    """The public keys a device trusts, by key id. Holding several lets the service rotate its signing key:
    ship the new public key first, then sign with the new key, then retire the old one."""

    def __init__(self, keys: Iterable[Ed25519PublicKey | bytes]) -> None:
        self._by_kid: dict[bytes, list[Ed25519PublicKey]] = {}
        for key in keys:
            raw = raw_public_key(key)
            self._by_kid.setdefault(key_id(raw), []).append(Ed25519PublicKey.from_public_bytes(raw))
        if not self._by_kid:
            raise ValueError("at least one trusted public key is needed")

    @property
    def kids(self) -> list[bytes]:
        return list(self._by_kid)

    def lookup(self, kid: bytes) -> list[Ed25519PublicKey]:
        return self._by_kid.get(kid, [])


@dataclass(frozen=True, slots=True)
class DeviceCapabilities:
    """What the verifying device is. A field left None is not checked: a real device passes all it knows
    (ops as names, as reported in ``state``, or builtin codes)."""

    flash: int | None = None
    ram: int | None = None
    arena: int | None = None
    ops: frozenset[int | str] | None = None
    device_class: str | None = None
    device_id: str | None = None


def normalize_op(op: int | str) -> int | str:
    """A TFLite builtin op as its code (``"CONV_2D"`` -> 3), anything else (a custom op) unchanged."""
    if isinstance(op, str):
        return BUILTIN_OP_CODES.get(op, op)
    return op


def _op_name(op: int | str) -> str:
    return BUILTIN_OP_NAMES.get(op, f"builtin {op}") if isinstance(op, int) else op


def compatibility_problems(compat: Compat, device: DeviceCapabilities) -> list[str]:
    """Why ``device`` cannot run an artifact with these requirements (empty when it can)."""
    problems = []
    for name in ("flash", "ram", "arena"):
        need, have = getattr(compat, name), getattr(device, name)
        if need is not None and have is not None and have < need:
            problems.append(f"{name}: needs {need} bytes, the device has {have}")
    if compat.ops and device.ops is not None:
        have_ops = {normalize_op(op) for op in device.ops}
        missing = [op for op in compat.ops if normalize_op(op) not in have_ops]
        if missing:
            problems.append("ops not supported by the device: " + ", ".join(_op_name(op) for op in missing))
    need_class, have_class = compat.device_class, device.device_class
    if need_class is not None and have_class is not None and need_class != have_class:
        problems.append(f"device class: built for {need_class!r}, the device is {have_class!r}")
    return problems


def verify_manifest(
    data: bytes,
    *,
    keys: TrustedKeys,
    last_seq: int,
    now: int | None,
    device: DeviceCapabilities,
) -> Manifest:
    """Verify a manifest as a device must before it acts on it, and return its payload.

    ``last_seq`` is the sequence number of the last manifest the device applied (0 when none): only a higher
    one is accepted. ``now`` is the device's clock in seconds since the Unix epoch; a device without a
    trustworthy clock passes None and the expiry is not checked (the sequence number still stops replays).
    Raises ManifestError with the first failing check's reason.
    """
    parsed = parse_manifest(data)
    candidates = keys.lookup(parsed.kid)
    if not candidates:
        _fail(Reason.UNKNOWN_KEY, f"key id {parsed.kid.hex()} is not among the trusted keys")
    tbs = parsed.to_be_signed()
    for public_key in candidates:
        try:
            public_key.verify(parsed.signature, tbs)
            break
        except InvalidSignature:
            continue
    else:
        _fail(Reason.BAD_SIGNATURE, f"the signature does not verify with the trusted key {parsed.kid.hex()}")
    manifest = decode_payload(parsed.payload)
    if manifest.device is not None and device.device_id is not None and manifest.device != device.device_id:
        _fail(Reason.WRONG_DEVICE, f"the manifest is for device {manifest.device!r}, not {device.device_id!r}")
    if manifest.seq <= last_seq:
        _fail(
            Reason.REPLAYED_SEQUENCE,
            f"sequence number {manifest.seq} is not above the last applied one ({last_seq})",
        )
    if now is not None and now > manifest.expires_at:
        _fail(Reason.EXPIRED, f"the manifest expired at {manifest.expires_at}, the device clock says {now}")
    problems = compatibility_problems(manifest.compat, device)
    if problems:
        _fail(Reason.INCOMPATIBLE, "; ".join(problems))
    return manifest


# ------------------------------------------------------------------------------------------------ artifact
class ArtifactVerifier:
    """Checks a downloaded artifact against its manifest while it streams in: ``update`` per chunk (fails as
    soon as more bytes than announced arrive, so a device can stop the download), ``finish`` at the end."""

    def __init__(self, size: int, sha256: bytes) -> None:
        self.size = size
        self.expected = sha256
        self.received = 0
        self._hash = hashlib.sha256()

    @classmethod
    def for_manifest(cls, manifest: Manifest) -> ArtifactVerifier:
        return cls(manifest.size, manifest.sha256)

    def update(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.size:
            _fail(Reason.SIZE_MISMATCH, f"more than the announced {self.size} bytes arrived")
        self._hash.update(chunk)

    def finish(self) -> None:
        if self.received != self.size:
            _fail(Reason.SIZE_MISMATCH, f"{self.received} bytes arrived, the manifest announces {self.size}")
        digest = self._hash.digest()
        if digest != self.expected:
            _fail(Reason.HASH_MISMATCH, f"SHA-256 is {digest.hex()}, the manifest says {self.expected.hex()}")


def verify_artifact(source: Iterable[bytes] | BinaryIO, manifest: Manifest, *, chunk_size: int = 65_536) -> int:
    """Stream ``source`` (chunks or a binary file) through an :class:`ArtifactVerifier`; returns the size.
    Raises ManifestError (``size_mismatch`` / ``hash_mismatch``)."""
    verifier = ArtifactVerifier.for_manifest(manifest)
    if isinstance(source, io.IOBase) or hasattr(source, "read"):
        reader: BinaryIO = source  # type: ignore[assignment]
        while chunk := reader.read(chunk_size):
            verifier.update(chunk)
    else:
        for chunk in source:
            verifier.update(chunk)
    verifier.finish()
    return verifier.received
