"""Shared helpers of the reference-device tests: where the third-party models are, as checked paths."""

from __future__ import annotations

from pathlib import Path

from tests.registry.conftest import AD01, KWS, KWS_LABELS, sine_float_model

__all__ = ["KWS_LABELS", "ad01_path", "kws_path", "sine_float_model"]


def ad01_path() -> Path:
    assert AD01.is_file(), f"{AD01} missing: the third-party models live in ../shared/models beside the repo"
    return AD01


def kws_path() -> Path:
    assert KWS.is_file(), f"{KWS} missing: the third-party models live in ../shared/models beside the repo"
    return KWS
