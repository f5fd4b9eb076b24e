"""Artifact storage behind one interface: a local directory or an S3-compatible bucket.

Artifacts are content-addressed: the key is the SHA-256 of the bytes (``sha256/ab/abcdef…``), so storing the
same model twice stores it once, and a key never names two contents. Both stores are synchronous (files,
boto3); the API calls them in a worker thread.

    store = artifact_store_from_settings(settings)   # TINYFLEET_ARTIFACTS_URL (s3://…) or TINYFLEET_ARTIFACTS_DIR
    key = store.put(data)
    for chunk in store.read_range(key, 0, 1023): ...
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import boto3
import botocore.config
import botocore.exceptions

from tinyfleet.config import Settings
from tinyfleet.registry.errors import ArtifactNotFoundError, ArtifactStoreError

CHUNK = 64 * 1024


def artifact_key(sha256_hex: str) -> str:
    return f"sha256/{sha256_hex[:2]}/{sha256_hex}"


class ArtifactStore(Protocol):
    """Where model files live. Keys come from :meth:`put`; ranges are inclusive byte offsets, like HTTP's."""

    @property
    def location(self) -> str:
        """Where it stores (for logs and `tinyfleet` output), without credentials."""
        ...

    def put(self, data: bytes) -> str:
        """Store `data` under its SHA-256 (a no-op when present); returns the key."""
        ...

    def size(self, key: str) -> int:
        """Bytes stored under `key`; ArtifactNotFoundError when there is none."""
        ...

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        """Chunks of bytes start..end (inclusive) of the object."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object."""
        ...


class LocalArtifactStore:
    """Files under a directory; written to a temporary file, fsynced, then renamed (atomic on POSIX)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not key.startswith("sha256/") or self.root.resolve() not in path.parents:
            raise ArtifactStoreError(f"not an artifact key: {key!r}")
        return path

    def put(self, data: bytes) -> str:
        key = artifact_key(hashlib.sha256(data).hexdigest())
        path = self._path(key)
        if path.exists() and path.stat().st_size == len(data):
            return key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename itself survives a power loss
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise ArtifactStoreError(f"cannot write artifact under {self.root}: {exc}") from exc
        return key

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(f"artifact {key} is missing from {self.root}") from exc

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            f = self._path(key).open("rb")
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(f"artifact {key} is missing from {self.root}") from exc
        with f:
            f.seek(start)
            left = end - start + 1
            while left > 0:
                chunk = f.read(min(CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def read(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ArtifactNotFoundError(f"artifact {key} is missing from {self.root}") from exc


class S3ArtifactStore:
    """Objects in an S3-compatible bucket (AWS S3, MinIO, Ceph, …), through boto3.

    An S3 PUT is atomic by itself: an object is visible whole or not at all.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=botocore.config.Config(
                retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
            ),
        )

    @property
    def location(self) -> str:
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{where}"

    def _object(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _fail(self, key: str, exc: Exception) -> ArtifactStoreError:
        if isinstance(exc, botocore.exceptions.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                return ArtifactNotFoundError(f"artifact {key} is missing from {self.location}")
            return ArtifactStoreError(f"S3 refused the request for {key} ({code}): {exc}")
        return ArtifactStoreError(f"S3 at {self.location} is unreachable: {exc}")

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        key = artifact_key(digest)
        try:
            try:
                if self.size(key) == len(data):
                    return key
            except ArtifactNotFoundError:
                pass
            self.client.put_object(
                Bucket=self.bucket,
                Key=self._object(key),
                Body=data,
                ContentType="application/octet-stream",
                Metadata={"sha256": digest},
            )
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(key, exc) from exc
        return key

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._object(key))
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(key, exc) from exc
        return int(head["ContentLength"])

    def read_range(self, key: str, start: int, end: int) -> Iterator[bytes]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(key), Range=f"bytes={start}-{end}")
            body = response["Body"]
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(key, exc) from exc

    def read(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(key))
            return bytes(response["Body"].read())
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise self._fail(key, exc) from exc


def artifact_store_from_settings(settings: Settings) -> ArtifactStore:
    """S3 when ``artifacts_url`` is an ``s3://bucket/prefix`` URL, else the local ``artifacts_dir``."""
    if settings.artifacts_url:
        parts = urlsplit(settings.artifacts_url)
        secret = settings.s3_secret_access_key
        return S3ArtifactStore(
            parts.netloc,
            parts.path,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )
    return LocalArtifactStore(settings.artifacts_dir or settings.data_dir / "artifacts")
