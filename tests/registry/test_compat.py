"""Compatibility of a version with a device's reported capabilities: each limit, explained."""

from __future__ import annotations

from typing import Any

import pytest

from tinyfleet.registry.compat import check_compatibility, unchecked_limits
from tinyfleet.store.models import ModelVersion

KWS_OPS = ["AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]
ROOMY: dict[str, Any] = {"flash": 1 << 20, "ram": 256 * 1024, "arena": 64 * 1024, "ops": KWS_OPS, "firmware": "1.4.2"}


def kws_version(**overrides: Any) -> ModelVersion:
    fields: dict[str, Any] = {
        "size": 53_936,
        "arena_bytes": 24_272,
        "arena": {"loadable": True, "arena_bytes": 24_272},
        "ops": [{"name": name, "count": 1, "custom": False, "version": 1} for name in KWS_OPS],
        "card": {"min_firmware": "1.2.0"},
    }
    fields.update(overrides)
    return ModelVersion(**fields)


def test_fits() -> None:
    assert check_compatibility(kws_version(), ROOMY) == []
    assert unchecked_limits(kws_version(), ROOMY) == []


@pytest.mark.parametrize(
    ("caps", "limit", "needed", "available", "words"),
    [
        ({"arena": 16_384}, "arena", 24_272, 16_384, "24272-byte tensor arena, the device offers at most 16384"),
        ({"ram": 20_000}, "ram", 24_272, 20_000, "20000 bytes of RAM"),
        ({"flash": 50_000}, "flash", 53_936, 50_000, "53936 bytes, the device has 50000 bytes of flash"),
        ({"firmware": "1.1.9"}, "firmware", "1.2.0", "1.1.9", "needs firmware 1.2.0 or later"),
    ],
)
def test_each_limit_explains_itself(
    caps: dict[str, Any], limit: str, needed: Any, available: Any, words: str
) -> None:
    (problem,) = check_compatibility(kws_version(), {**ROOMY, **caps})
    assert problem.limit == limit
    assert problem.needed == needed
    assert problem.available == available
    assert words in problem.message


def test_missing_ops_are_named() -> None:
    caps = {**ROOMY, "ops": ["CONV_2D", "FULLY_CONNECTED", "RESHAPE"]}
    (problem,) = check_compatibility(kws_version(), caps)
    assert problem.limit == "ops"
    assert problem.needed == ["AVERAGE_POOL_2D", "DEPTHWISE_CONV_2D", "SOFTMAX"]
    assert "no kernel for AVERAGE_POOL_2D, DEPTHWISE_CONV_2D, SOFTMAX" in problem.message


def test_several_problems_at_once() -> None:
    caps = {"arena": 1024, "ram": 2048, "flash": 4096, "ops": [], "firmware": "0.9"}
    assert [p.limit for p in check_compatibility(kws_version(), caps)] == ["arena", "ram", "flash", "ops", "firmware"]


def test_firmware_versions_compare_as_numbers() -> None:
    assert check_compatibility(kws_version(), {**ROOMY, "firmware": "1.10.0"}) == []
    assert check_compatibility(kws_version(), {**ROOMY, "firmware": "v1.2.0-rc1"}) == []


def test_unreported_limits_are_unchecked_not_failed() -> None:
    assert check_compatibility(kws_version(), {}) == []
    assert unchecked_limits(kws_version(), {}) == ["arena", "ram", "flash", "ops", "firmware"]
    assert unchecked_limits(kws_version(card={}), {"arena": 1 << 16}) == ["ram", "flash", "ops"]
    assert unchecked_limits(kws_version(), {**ROOMY, "firmware": "nightly"}) == ["firmware"]


def test_a_version_tflm_cannot_load_is_incompatible_everywhere() -> None:
    version = kws_version(arena_bytes=None, arena={"loadable": False, "reason": "Failed to get registration"})
    (problem,) = check_compatibility(version, ROOMY)
    assert problem.limit == "tflm"
    assert "Failed to get registration" in problem.message
