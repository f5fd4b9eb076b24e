"""The signer: build a manifest payload with the device package's data model and sign it as a COSE_Sign1.

Sequence numbers are the caller's (per device, strictly increasing: the rollout part allocates them); this
module only signs what it is given. :func:`manifest_size` reports the size of a typical manifest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tinyfleet_device.manifest import (
    Compat,
    Component,
    Manifest,
    assemble,
    encode_payload,
    key_id,
    normalize_op,
    protected_header,
    sig_structure,
)

__all__ = [
    "DEFAULT_TTL_S",
    "CompatDescription",
    "ManifestDescription",
    "ManifestDescriptionError",
    "ManifestSize",
    "artifact_digest",
    "build_manifest",
    "compat_for",
    "manifest_size",
    "parse_description",
    "sign_manifest",
    "sign_payload",
]

DEFAULT_TTL_S = 30 * 86_400


class ManifestDescriptionError(ValueError):
    """An operator's manifest description (JSON) that cannot become a manifest."""


def compat_for(
    *,
    flash: int | None = None,
    ram: int | None = None,
    arena: int | None = None,
    ops: Iterable[int | str] = (),
    device_class: str | None = None,
) -> Compat:
    """Requirements with TFLite op names (as the registry lists them) turned into builtin codes; custom ops
    keep their names. Duplicates go, the order is kept."""
    seen: dict[int | str, None] = {}
    for op in ops:
        seen.setdefault(normalize_op(op), None)
    return Compat(flash=flash, ram=ram, arena=arena, ops=tuple(seen), device_class=device_class)


def build_manifest(
    *,
    seq: int,
    artifact_id: str | int,
    version: int | str,
    size: int,
    sha256: bytes,
    uri: str,
    component: Component = Component.MODEL,
    compat: Compat | None = None,
    labels: Iterable[str] | None = None,
    rollout: str | int | None = None,
    device: str | None = None,
    issued_at: int | None = None,
    ttl_s: int = DEFAULT_TTL_S,
) -> Manifest:
    """A manifest payload; ``issued_at`` defaults to now, the expiry is ``ttl_s`` later."""
    iat = int(time.time()) if issued_at is None else issued_at
    return Manifest(
        seq=seq,
        issued_at=iat,
        expires_at=iat + ttl_s,
        component=component,
        artifact_id=artifact_id,
        version=version,
        size=size,
        sha256=sha256,
        uri=uri,
        compat=compat or Compat(),
        labels=tuple(labels) if labels is not None else None,
        rollout=rollout,
        device=device,
    )


def sign_payload(payload: bytes, key: Ed25519PrivateKey) -> bytes:
    """The COSE_Sign1 of already-encoded payload bytes."""
    protected = protected_header(key_id(key.public_key()))
    return assemble(protected, payload, key.sign(sig_structure(protected, payload)))


def sign_manifest(manifest: Manifest, key: Ed25519PrivateKey) -> bytes:
    """Encode (checked as a device checks it: ManifestError ``malformed`` otherwise) and sign."""
    return sign_payload(encode_payload(manifest), key)


def artifact_digest(path: Path, chunk_size: int = 1 << 20) -> tuple[int, bytes]:
    """Size and SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
            size += len(chunk)
    return size, h.digest()


# --------------------------------------------------------------------------------- operator descriptions
class CompatDescription(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flash: Annotated[int | None, Field(ge=0, description="Minimum flash in bytes")] = None
    ram: Annotated[int | None, Field(ge=0, description="Minimum RAM in bytes")] = None
    arena: Annotated[int | None, Field(ge=0, description="Minimum tensor arena in bytes")] = None
    ops: Annotated[list[int | str], Field(description="TFLite ops: names or builtin codes")] = []
    device_class: Annotated[str | None, Field(alias="class", description="Board / device class")] = None


class ManifestDescription(BaseModel):
    """What `tinyfleet manifest sign` reads: the payload fields by their docs/ota.md names. ``size`` and
    ``sha256`` may come from ``--artifact FILE`` instead; ``iat`` defaults to now, ``exp`` to iat + ttl_s."""

    model_config = ConfigDict(extra="forbid")

    seq: Annotated[int | None, Field(ge=0, description="Sequence number (or --seq)")] = None
    component: Literal["model", "firmware"] = "model"
    id: str | int
    ver: int | str
    size: Annotated[int | None, Field(ge=1)] = None
    sha256: Annotated[str | None, Field(pattern=r"^[0-9a-fA-F]{64}$", description="hex")] = None
    uri: str
    compat: CompatDescription | None = None
    labels: list[str] | None = None
    rollout: str | int | None = None
    dev: str | None = None
    iat: Annotated[int | None, Field(ge=0)] = None
    exp: Annotated[int | None, Field(ge=0)] = None
    ttl_s: Annotated[int, Field(ge=1)] = DEFAULT_TTL_S

    def to_manifest(
        self, *, seq: int | None = None, artifact: tuple[int, bytes] | None = None, now: int | None = None
    ) -> Manifest:
        the_seq = seq if seq is not None else self.seq
        if the_seq is None:
            raise ManifestDescriptionError("seq: give a sequence number in the description or with --seq")
        if artifact is not None:
            size, sha = artifact
        elif self.size is not None and self.sha256 is not None:
            size, sha = self.size, bytes.fromhex(self.sha256)
        else:
            raise ManifestDescriptionError("size and sha256: give both in the description, or --artifact FILE")
        iat = self.iat if self.iat is not None else (int(time.time()) if now is None else now)
        c = self.compat
        manifest = build_manifest(
            seq=the_seq,
            artifact_id=self.id,
            version=self.ver,
            size=size,
            sha256=sha,
            uri=self.uri,
            component=Component[self.component.upper()],
            compat=compat_for(flash=c.flash, ram=c.ram, arena=c.arena, ops=c.ops, device_class=c.device_class)
            if c
            else None,
            labels=self.labels,
            rollout=self.rollout,
            device=self.dev,
            issued_at=iat,
            ttl_s=self.ttl_s,
        )
        if self.exp is not None:
            manifest = _replace_exp(manifest, self.exp)
        return manifest


def _replace_exp(m: Manifest, exp: int) -> Manifest:
    from dataclasses import replace

    return replace(m, expires_at=exp)


def parse_description(data: str | bytes) -> ManifestDescription:
    """A manifest description from JSON; ManifestDescriptionError lists every problem."""
    try:
        return ManifestDescription.model_validate_json(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(document)'}: {e['msg']}" for e in exc.errors())
        raise ManifestDescriptionError(problems) from exc


# ------------------------------------------------------------------------------------------------- size
class ManifestSize(NamedTuple):
    total: int
    payload: int
    uri_length: int
    ops: int

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


#: the ops of the reference keyword-spotting model (kws_ref_model.tflite), a typical small CNN
TYPICAL_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX")


def manifest_size(uri_length: int = 64, ops: Iterable[str] = TYPICAL_OPS) -> ManifestSize:
    """Bytes of a signed COSE_Sign1 for a typical model update: a ``uri_length``-character URI, a 6-digit
    sequence number, a 200 KB model, flash/RAM/arena minimums and the typical ops."""
    ops = tuple(ops)
    base = "https://fleet.example.com/a/"
    uri = (base + "x" * uri_length)[:uri_length]
    manifest = build_manifest(
        seq=123_456,
        artifact_id="kws-ref",
        version=12,
        size=200_000,
        sha256=hashlib.sha256(b"typical").digest(),
        uri=uri,
        compat=compat_for(flash=1_048_576, ram=262_144, arena=60_000, ops=ops),
        issued_at=1_790_000_000,
    )
    payload = encode_payload(manifest)
    signed = sign_payload(payload, Ed25519PrivateKey.from_private_bytes(bytes(32)))
    return ManifestSize(total=len(signed), payload=len(payload), uri_length=len(uri), ops=len(ops))
