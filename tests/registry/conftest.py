"""Fixtures of the registry tests: the third-party models (../shared/models beside the repo), a real local
S3-compatible server (moto's ThreadedMotoServer, its own HTTP server on a free port)."""

from __future__ import annotations

import importlib.resources
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT.parent / "shared" / "models"
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


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    access_key_id: str = "tinyfleet-test"
    secret_access_key: str = "tinyfleet-test-secret"  # the local test server takes any
    region: str = "us-east-1"

    def client(self) -> object:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def new_bucket(self) -> str:
        name = f"tinyfleet-{secrets.token_hex(6)}"
        self.client().create_bucket(Bucket=name)  # type: ignore[attr-defined]
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield S3Server(f"http://{host}:{port}")
    server.stop()
