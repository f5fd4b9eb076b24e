"""Fixtures of the registry tests: the third-party models (../shared/models beside the repo), a real local
S3-compatible server (tests/support/s3.py)."""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.s3 import S3Server, local_s3_server

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The MLCommons Tiny models: ../shared/models beside the checkout, or TINYFLEET_SHARED_MODELS elsewhere.
MODELS_DIR = Path(os.environ.get("TINYFLEET_SHARED_MODELS") or REPO_ROOT.parent / "shared" / "models")
AD01 = MODELS_DIR / "ad01_int8.tflite"
KWS = MODELS_DIR / "kws_ref_model.tflite"
KWS_LABELS = ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown"]


def sine_float_model() -> bytes:
    """The float32 'hello world' model tflite-micro ships with its Python package."""
    resource = importlib.resources.files("tflite_micro") / "python" / "tflite_micro" / "sine_float.tflite"
    return resource.read_bytes()


@pytest.fixture(scope="session")
def ad01_bytes() -> bytes:
    assert AD01.is_file(), f"{AD01} missing: the third-party models live in ../shared/models beside the repo"
    return AD01.read_bytes()


@pytest.fixture(scope="session")
def kws_bytes() -> bytes:
    assert KWS.is_file(), f"{KWS} missing: the third-party models live in ../shared/models beside the repo"
    return KWS.read_bytes()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    with local_s3_server() as server:
        yield server
