"""device_sdk/test-vectors/manifests.json: up to date with generate_ota.py, and the Python verifier's verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tinyfleet_device.manifest import (
    ArtifactVerifier,
    DeviceCapabilities,
    ManifestError,
    Reason,
    TrustedKeys,
    key_id,
    verify_manifest,
)

VECTORS = Path(__file__).resolve().parents[2] / "device_sdk" / "test-vectors"
DOC: dict[str, Any] = json.loads((VECTORS / "manifests.json").read_text())


def _caps(d: dict[str, Any]) -> DeviceCapabilities:
    return DeviceCapabilities(
        flash=d.get("flash"),
        ram=d.get("ram"),
        arena=d.get("arena"),
        ops=frozenset(d["ops"]) if "ops" in d else None,
        device_class=d.get("class"),
        device_id=d.get("id"),
    )


def test_vector_files_are_up_to_date() -> None:
    """The committed manifests.json and ota_status.json are exactly what generate_ota.py writes."""
    proc = subprocess.run(
        [sys.executable, str(VECTORS / "generate_ota.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_the_vectors_cover_every_manifest_reason() -> None:
    verdicts = {c["verdict"] for c in DOC["cases"]} | {a["verdict"] for a in DOC["artifacts"]}
    manifest_reasons = {
        Reason.MALFORMED, Reason.UNSUPPORTED_VERSION, Reason.UNSUPPORTED_ALGORITHM, Reason.UNKNOWN_KEY,
        Reason.BAD_SIGNATURE, Reason.WRONG_DEVICE, Reason.REPLAYED_SEQUENCE, Reason.EXPIRED, Reason.INCOMPATIBLE,
        Reason.SIZE_MISMATCH, Reason.HASH_MISMATCH,
    }  # fmt: skip
    assert verdicts == {"ok"} | {r.value for r in manifest_reasons}
    assert len({c["name"] for c in DOC["cases"]}) == len(DOC["cases"]) >= 50


def test_the_vector_keys_are_consistent() -> None:
    for k in DOC["keys"].values():
        assert key_id(bytes.fromhex(k["public"])).hex() == k["kid"]


@pytest.mark.parametrize("case", DOC["cases"], ids=lambda c: c["name"])
def test_manifest_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["hex"])
    assert len(data) == case["size"]
    keys = TrustedKeys(bytes.fromhex(k) for k in case["trusted_keys"])
    kwargs: dict[str, Any] = {"keys": keys, "last_seq": case["last_seq"], "now": case["now"]}
    if case["verdict"] == "ok":
        got = verify_manifest(data, device=_caps(case["device"]), **kwargs)
        assert got.as_dict() == case["payload"]
    else:
        with pytest.raises(ManifestError) as info:
            verify_manifest(data, device=_caps(case["device"]), **kwargs)
        assert info.value.reason.value == case["verdict"]


def test_typical_vector_is_at_most_256_bytes() -> None:
    typical = next(c for c in DOC["cases"] if c["name"] == "valid_typical")
    assert len(typical["payload"]["uri"]) == 64
    assert typical["size"] <= 256


@pytest.mark.parametrize("case", DOC["artifacts"], ids=lambda c: c["name"])
def test_artifact_vector(case: dict[str, Any]) -> None:
    v = ArtifactVerifier(DOC["artifact"]["size"], bytes.fromhex(DOC["artifact"]["sha256"]))
    verdict = "ok"
    try:
        v.update(bytes.fromhex(case["hex"]))
        v.finish()
    except ManifestError as exc:
        verdict = exc.reason.value
    assert verdict == case["verdict"]


def test_docs_show_the_typical_vector_and_every_reason() -> None:
    doc = (VECTORS.parents[1] / "docs" / "ota.md").read_text()
    block = doc.split("(payload 163):\n\n```\n")[1].split("```")[0]
    typical = next(c for c in DOC["cases"] if c["name"] == "valid_typical")
    assert "".join(block.split()) == typical["hex"]
    for reason in Reason:
        assert f"| `{reason.value}` |" in doc, reason
