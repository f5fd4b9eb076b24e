"""Both artifact stores meet one contract; the S3 one against a real S3-compatible server on this machine."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.s3 import S3Server
from tinyfleet.config import Settings
from tinyfleet.registry.errors import ArtifactNotFoundError, ArtifactStoreError
from tinyfleet.registry.storage import (
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    artifact_key,
    artifact_store_from_settings,
)

StoreFactory = Callable[[], ArtifactStore]


@pytest.fixture(params=["local", "s3"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    if request.param == "local":
        return lambda: LocalArtifactStore(tmp_path / "artifacts")
    server: S3Server = request.getfixturevalue("s3_server")
    bucket = server.new_bucket()
    return lambda: S3ArtifactStore(
        bucket,
        "models/",
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )


def test_round_trip_and_ranges(make_store: StoreFactory, kws_bytes: bytes) -> None:
    store = make_store()
    key = store.put(kws_bytes)
    assert key == artifact_key(hashlib.sha256(kws_bytes).hexdigest())
    assert store.size(key) == len(kws_bytes)
    assert store.read(key) == kws_bytes
    assert b"".join(store.read_range(key, 0, len(kws_bytes) - 1)) == kws_bytes
    assert b"".join(store.read_range(key, 1000, 1999)) == kws_bytes[1000:2000]
    assert b"".join(store.read_range(key, len(kws_bytes) - 1, len(kws_bytes) - 1)) == kws_bytes[-1:]
    # spans several 64 KiB chunks
    big = kws_bytes * 5
    big_key = store.put(big)
    assert b"".join(store.read_range(big_key, 60_000, 200_000)) == big[60_000:200_001]


def test_put_is_idempotent_and_content_addressed(make_store: StoreFactory, ad01_bytes: bytes) -> None:
    store = make_store()
    first = store.put(ad01_bytes)
    assert store.put(ad01_bytes) == first
    other = store.put(ad01_bytes[:-1] + bytes([ad01_bytes[-1] ^ 0xFF]))
    assert other != first
    assert store.read(first) == ad01_bytes
    # a second store object on the same place sees what the first stored
    assert make_store().read(first) == ad01_bytes


def test_missing_artifact(make_store: StoreFactory) -> None:
    store = make_store()
    key = artifact_key("0" * 64)
    with pytest.raises(ArtifactNotFoundError, match="missing"):
        store.size(key)
    with pytest.raises(ArtifactNotFoundError):
        store.read(key)
    with pytest.raises(ArtifactNotFoundError):
        b"".join(store.read_range(key, 0, 10))


def test_local_store_leaves_no_partial_file(tmp_path: Path, kws_bytes: bytes) -> None:
    store = LocalArtifactStore(tmp_path / "a")
    key = store.put(kws_bytes)
    files = [p for p in (tmp_path / "a").rglob("*") if p.is_file()]
    assert files == [tmp_path / "a" / key]
    assert not any(p.name.startswith(".upload-") for p in files)


def test_local_store_refuses_keys_outside_it(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "a")
    with pytest.raises(ArtifactStoreError, match="not an artifact key"):
        store.read("sha256/../../etc/passwd")


def test_local_store_unwritable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ArtifactStoreError, match="cannot write artifact"):
        LocalArtifactStore(blocker).put(b"x")


def test_s3_missing_bucket_is_a_store_error(s3_server: S3Server) -> None:
    store = S3ArtifactStore(
        "tinyfleet-no-such-bucket",
        endpoint_url=s3_server.endpoint_url,
        region=s3_server.region,
        access_key_id=s3_server.access_key_id,
        secret_access_key=s3_server.secret_access_key,
    )
    with pytest.raises(ArtifactStoreError, match="NoSuchBucket"):
        store.put(b"model")


def test_s3_unreachable_is_a_store_error() -> None:
    from tests.support.instances import free_port

    store = S3ArtifactStore(
        "bucket-x", endpoint_url=f"http://127.0.0.1:{free_port()}", region="us-east-1",
        access_key_id="a", secret_access_key="b",
    )  # fmt: skip
    with pytest.raises(ArtifactStoreError, match="unreachable"):
        store.size(artifact_key("0" * 64))


def test_settings_choose_the_store(tmp_path: Path, s3_server: S3Server) -> None:
    local = artifact_store_from_settings(Settings(_env_file=None, artifacts_dir=tmp_path / "x"))
    assert isinstance(local, LocalArtifactStore)
    assert local.location == str(tmp_path / "x")
    default = artifact_store_from_settings(Settings(_env_file=None, data_dir=tmp_path))
    assert isinstance(default, LocalArtifactStore)
    assert default.location == str(tmp_path / "artifacts")
    bucket = s3_server.new_bucket()
    s3 = artifact_store_from_settings(
        Settings(
            _env_file=None,
            artifacts_url=f"s3://{bucket}/fleet/models",
            s3_endpoint_url=s3_server.endpoint_url,
            s3_region=s3_server.region,
            s3_access_key_id=s3_server.access_key_id,
            s3_secret_access_key=s3_server.secret_access_key,
        )
    )
    assert isinstance(s3, S3ArtifactStore)
    key = s3.put(b"tinyfleet")
    listed = s3_server.client().list_objects_v2(Bucket=bucket)
    assert [o["Key"] for o in listed["Contents"]] == [f"fleet/models/{key}"]


def test_settings_refuse_a_non_s3_url() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="s3://bucket/prefix"):
        Settings(_env_file=None, artifacts_url="https://example.invalid/bucket")
