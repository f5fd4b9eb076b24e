"""The controller's manifest signer: a `ManifestRequest` → COSE_Sign1 bytes (tinyfleet.ota.manifest)."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tinyfleet.ota.manifest import build_manifest, compat_for, sign_manifest
from tinyfleet.rollouts.ports import ManifestRequest
from tinyfleet_device.manifest import Component


class Ed25519ManifestSigner:
    """Signs with the service's OTA key. Labels are left out of the manifest: they are the registry's, and
    the manifest must stay small (≤ 256 bytes with a 64-byte URI)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key

    def sign(self, request: ManifestRequest) -> bytes:
        a = request.artifact
        req = a.requirements
        manifest = build_manifest(
            seq=request.seq,
            artifact_id=a.model,
            version=a.version,
            size=a.size,
            sha256=a.sha256,
            uri=a.uri,
            component=Component.FIRMWARE if request.component == "firmware" else Component.MODEL,
            compat=compat_for(
                flash=req.get("flash"), ram=req.get("ram"), arena=req.get("arena"), ops=req.get("ops", ())
            ),
            rollout=request.rollout_id,
            issued_at=int(request.issued_at.timestamp()),
            ttl_s=max(1, int((request.expires_at - request.issued_at).total_seconds())),
        )
        return sign_manifest(manifest, self._key)
