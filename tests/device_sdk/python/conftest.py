"""Fixtures of the reference-device tests: the third-party models, tiny built models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.registry.conftest import AD01, KWS, KWS_LABELS, sine_float_model

__all__ = ["AD01", "KWS", "KWS_LABELS", "sine_float_model"]


@pytest.fixture(scope="session")
def ad01_path() -> Path:
    assert AD01.is_file(), f"{AD01} missing: the third-party models live in ../shared/models beside the repo"
    return AD01


@pytest.fixture(scope="session")
def kws_path() -> Path:
    assert KWS.is_file(), f"{KWS} missing: the third-party models live in ../shared/models beside the repo"
    return KWS
