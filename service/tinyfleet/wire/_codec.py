"""Bytes <-> Python values: format detection, CBOR/JSON decoding with the contract's rules, canonical CBOR.

Decoding rules (docs/protocol.md, "Encodings"):

* the first non-blank byte (blank = space, tab, CR, LF) ``{`` or ``[`` means JSON, anything else CBOR;
* exactly one CBOR data item: bytes after it are ``trailing_bytes``;
* indefinite-length strings, arrays and maps are accepted (streaming encoders produce them);
* tag 55799 (self-described CBOR) is transparent; any other tag, including bignums, turns the tagged value
  into a marker (:class:`Tagged` for cbor2's built-in tags, ``cbor2.CBORTag`` for the others) that the
  field checks reject as ``wrong_type``;
* duplicate map keys are not detected (checking costs 5 % of a decode): the last value wins, as in JSON;
* map keys are compared by value, as Python does: a key ``false``/``true`` or an integral float is the
  integer key of the same value (not portable: encoders must write integer keys);
* invalid UTF-8, premature end, reserved bytes, a stray break, or nesting deeper than cbor2's limit (400)
  are ``malformed_cbor`` / ``malformed_json``.
"""

from __future__ import annotations

import os
import struct
from typing import Any

import cbor2
import msgspec

from .errors import ErrorCode, WireError

_BLANKS = frozenset(b" \t\r\n")
_JSON_START = frozenset(b"{[")


class Tagged:
    """Stands in for a CBOR tagged value (tags are not part of the contract)."""

    __slots__ = ("tag",)

    def __init__(self, tag: int) -> None:
        self.tag = tag

    def __repr__(self) -> str:
        return f"Tagged({self.tag})"


def _semantic(tag: int) -> Any:
    def decode(_value: Any, _immutable: bool) -> Tagged:
        return Tagged(tag)

    return decode


def _transparent(value: Any, _immutable: bool) -> Any:
    return value


# cbor2's built-in semantic tags (found by probing cbor2 6.3; tests/wire re-probes them), all overridden.
_BUILTIN_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 43000)
_SEMANTIC: dict[int, Any] = {t: _semantic(t) for t in _BUILTIN_TAGS}
_SEMANTIC[55799] = _transparent

# Trailing-bytes detection without a stream: decode ``[payload, sentinel]`` where the sentinel is a byte
# string holding a per-process random nonce. The result is ``[item, nonce]`` exactly when the payload is
# one complete item (CBOR items are self-delimiting and the sender cannot know the nonce); anything else
# falls back to the exact (slower) stream decoder, which tells malformed from trailing bytes.
_NONCE = os.urandom(16)
_SENTINEL = b"\x50" + _NONCE
_loads = cbor2.loads


def loads_cbor(payload: bytes) -> Any:
    """Decode exactly one CBOR item or raise ``malformed_cbor`` / ``trailing_bytes``."""
    try:
        pair = _loads(b"\x82" + payload + _SENTINEL, semantic_decoders=_SEMANTIC)
        if pair[1] == _NONCE:
            return pair[0]
    except Exception:  # noqa: S110 - any failure is re-examined exactly below
        pass
    return _loads_cbor_exact(payload)


def _loads_cbor_exact(payload: bytes) -> Any:
    import io

    fp = io.BytesIO(payload)
    try:
        value = cbor2.CBORDecoder(fp, semantic_decoders=_SEMANTIC).decode()
    except Exception as exc:
        raise WireError(ErrorCode.MALFORMED_CBOR, f"not well-formed CBOR: {exc}") from None
    used = fp.tell()
    if used != len(payload):
        raise WireError(
            ErrorCode.TRAILING_BYTES,
            f"{len(payload) - used} byte(s) after the CBOR item (which ends at byte {used})",
        )
    return value  # pragma: no cover - the fast path returns every well-formed single item


_json_decode = msgspec.json.decode


def loads_json(payload: bytes) -> Any:
    try:
        return _json_decode(payload)
    except Exception as exc:  # msgspec.DecodeError, ValidationError, UnicodeDecodeError, RecursionError...
        raise WireError(ErrorCode.MALFORMED_JSON, f"not valid JSON: {exc}") from None


def is_json(payload: bytes) -> bool:
    """True when the first non-blank byte is ``{`` or ``[`` (payload must be non-empty)."""
    b0 = payload[0]
    if b0 in _JSON_START:
        return True
    if b0 in _BLANKS:
        rest = payload.lstrip(b" \t\r\n")
        return bool(rest) and rest[0] in _JSON_START
    return False


def is_blank(payload: bytes) -> bool:
    return not payload.lstrip(b" \t\r\n")


def load_payload(payload: bytes, max_bytes: int) -> Any:
    """Size checks, format detection and decoding shared by all payload kinds."""
    n = len(payload)
    if n == 0 or (payload[0] in _BLANKS and is_blank(payload)):
        raise WireError(ErrorCode.EMPTY_PAYLOAD, "payload is empty")
    if n > max_bytes:
        raise WireError(ErrorCode.MESSAGE_TOO_LARGE, f"payload is {n} bytes, the limit is {max_bytes}")
    if is_json(payload):
        return loads_json(payload)
    return loads_cbor(payload)


# ---------------------------------------------------------------------------------------------- encoder
# Encoding is cbor2's, in canonical mode (RFC 7049 §3.9 / RFC 8949 §4.2: definite lengths, shortest integer
# heads, map keys sorted by their encoding). Only the width of floats is ours: cbor2 picks the shortest exact
# form, float16 included, whereas the contract fixes scores at float32 (rounded) and never writes float16, so
# floats travel as the markers below and cbor2 calls `_default` to write them.
_pack_f32 = struct.Struct(">Bf").pack
_pack_f64 = struct.Struct(">Bd").pack
_unpack_f32 = struct.Struct(">f").unpack
_pack_plain_f32 = struct.Struct(">f").pack


class F32:
    """A float to encode as float32, rounded to nearest (scores)."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


class Float:
    """A float to encode as float32 when that holds it exactly, else float64."""

    __slots__ = ("value",)

    def __init__(self, value: float) -> None:
        self.value = value


def _default(encoder: Any, value: Any) -> None:
    if type(value) is F32:
        encoder.write(_pack_f32(0xFA, value.value))
    elif type(value) is Float:
        encoder.write(_float_bytes(value.value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


def _float_bytes(x: float) -> bytes:
    try:
        if _unpack_f32(_pack_plain_f32(x))[0] == x:
            return _pack_f32(0xFA, x)
    except OverflowError:
        pass
    return _pack_f64(0xFB, x)


def wrap_floats(v: Any) -> Any:
    """Replace the floats of an extras value (and of its lists/maps) by `Float` markers."""
    if type(v) is float:
        return Float(v)
    if isinstance(v, list | tuple):
        return [wrap_floats(e) for e in v]
    if isinstance(v, dict):
        return {k: wrap_floats(e) for k, e in v.items()}
    return v


def dumps(obj: Any) -> bytes:
    """Canonical CBOR of a value built from ints, text, bools, None, lists, maps and F32/Float markers."""
    return cbor2.dumps(obj, canonical=True, default=_default)


def x_key_order(k: str) -> tuple[int, bytes]:
    """The canonical order of text map keys (what cbor2's canonical mode writes): shorter first, then
    bytewise. Used to give JSON the same key order."""
    b = k.encode("utf-8")
    return (len(b), b)
