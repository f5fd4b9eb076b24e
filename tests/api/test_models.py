"""The model registry over HTTP: push (idempotent, immutable), refusals, listing, compatibility with a device's
reported capabilities, and downloads with Range / If-Range / ETag / 304 — on the local store and on S3."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg.types.json import Jsonb

from tests.api.conftest import Seeder, api_settings, bearer
from tests.registry.conftest import AD01, KWS, KWS_LABELS
from tests.registry.tflite_builder import build_model
from tests.support.s3 import S3Server, local_s3_server
from tinyfleet.api import create_app

KWS_OPS = ["AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX"]


ADMIN_KEY = "models-tests-admin-key-0123456789abcd"


@pytest.fixture(scope="module")
def kws() -> bytes:
    return KWS.read_bytes()


@pytest.fixture(scope="module")
def ad01() -> bytes:
    return AD01.read_bytes()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with local_s3_server() as server:
        yield server


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    return tmp_path / "artifacts"


@pytest.fixture
def app(migrated_db: str, artifacts: Path) -> FastAPI:
    return create_app(
        api_settings(migrated_db, artifacts_dir=artifacts, models_max_upload_bytes=1 << 20, admin_api_key=ADMIN_KEY)
    )


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=bearer(ADMIN_KEY)
        ) as c,
    ):
        yield c


def _error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code, body
    message: str = body["error"]["message"]
    assert message
    return message


async def _push(client: httpx.AsyncClient, name: str, version: int, data: bytes, **params: Any) -> httpx.Response:
    return await client.put(
        f"/api/v1/models/{name}/versions/{version}",
        content=data,
        params=params,
        headers={"Content-Type": "application/octet-stream"},
    )


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_push_then_read_back(client: httpx.AsyncClient, kws: bytes, migrated_db: str, artifacts: Path) -> None:
    resp = await _push(
        client, "kws", 1, kws, labels=KWS_LABELS, task="classification", dataset="Speech Commands v2",
        accuracy=0.93, description="DS-CNN", min_firmware="1.2.0", model_description="Keyword spotting",
    )  # fmt: skip
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["model"] == "kws"
    assert body["version"] == 1
    assert body["sha256"] == hashlib.sha256(kws).hexdigest()
    assert body["size"] == len(kws)
    assert body["precision"] == "int8"
    assert body["labels"] == KWS_LABELS
    assert body["card"] == {
        "task": "classification", "dataset": "Speech Commands v2", "accuracy": 0.93, "description": "DS-CNN",
        "labels": KWS_LABELS, "min_firmware": "1.2.0",
    }  # fmt: skip
    assert sorted(op["name"] for op in body["ops"]) == KWS_OPS
    assert body["inputs"][0]["shape"] == [1, 49, 10, 1]
    assert body["outputs"][0]["quantization"] == {"scale": [1 / 256], "zero_point": [-128], "quantized_dimension": 0}
    assert abs(body["arena_bytes"] - 24 * 1024) <= 1024
    assert body["arena"]["loadable"] is True
    assert body["inspection"]["schema_version"] == 3
    assert body["download_url"] == "/api/v1/models/kws/versions/1/artifact"
    # stored once, by content
    assert [p.name for p in _files(artifacts)] == [body["sha256"]]

    detail = (await client.get("/api/v1/models/kws/versions/1")).json()
    assert detail == body
    models = (await client.get("/api/v1/models")).json()["items"]
    assert [(m["name"], m["description"], m["versions"], m["latest_version"]) for m in models] == [
        ("kws", "Keyword spotting", 1, 1)
    ]
    assert _rows(migrated_db, "SELECT model_name, version, arena_bytes FROM model_versions") == [
        ("kws", 1, body["arena_bytes"])
    ]


async def test_versions_are_immutable(client: httpx.AsyncClient, kws: bytes, ad01: bytes, migrated_db: str) -> None:
    first = await _push(client, "kws", 3, kws, labels=KWS_LABELS)
    assert first.status_code == 201
    again = await _push(client, "kws", 3, kws, labels=KWS_LABELS)
    assert again.status_code == 200  # idempotent: the registered version
    assert again.json() == first.json()
    message = _error(await _push(client, "kws", 3, ad01), 409, "version_exists")
    assert "immutable" in message
    assert first.json()["sha256"][:12] in message
    assert _rows(migrated_db, "SELECT version, sha256 FROM model_versions") == [(3, first.json()["sha256"])]
    # the same bytes may be another version
    assert (await _push(client, "kws", 4, kws)).status_code == 201
    versions = (await client.get("/api/v1/models/kws/versions")).json()["items"]
    assert [v["version"] for v in versions] == [3, 4]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty file"),
        (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "HTML"),
        (b"garbage!" * 100, "identifier"),
    ],
)
async def test_not_a_model_is_422_and_nothing_kept(
    client: httpx.AsyncClient, data: bytes, words: str, migrated_db: str, artifacts: Path
) -> None:
    message = _error(await _push(client, "kws", 1, data), 422, "invalid_model")
    assert words in message
    assert _rows(migrated_db, "SELECT count(*) FROM model_versions") == [(0,)]
    assert _rows(migrated_db, "SELECT count(*) FROM models") == [(0,)]
    assert _files(artifacts) == []


async def test_truncated_model_is_422(client: httpx.AsyncClient, kws: bytes, artifacts: Path) -> None:
    message = _error(await _push(client, "kws", 1, kws[: len(kws) // 2]), 422, "invalid_model")
    assert "truncated" in message
    assert _files(artifacts) == []


async def test_labels_must_match_the_class_dimension(client: httpx.AsyncClient, kws: bytes, ad01: bytes) -> None:
    message = _error(await _push(client, "kws", 1, kws, labels=["yes", "no"]), 422, "invalid_model_card")
    assert "2 labels given, but the output tensor [1, 12] has 12 classes" in message
    message = _error(await _push(client, "ad01", 1, ad01, labels=["a", "b"]), 422, "invalid_model_card")
    assert "[1, 640] has 640 classes" in message
    dup = [*KWS_LABELS[:-1], "yes"]
    assert "distinct" in _error(await _push(client, "kws", 1, kws, labels=dup), 422, "invalid_model_card")
    assert (await client.get("/api/v1/models")).json()["items"] == []


async def test_bad_parameters_are_422(client: httpx.AsyncClient, kws: bytes) -> None:
    _error(await _push(client, "bad name", 1, kws), 422, "validation_error")
    _error(await _push(client, "kws", 2**32, kws), 422, "validation_error")
    _error(await _push(client, "kws", -1, kws), 422, "validation_error")
    _error(await _push(client, "kws", 1, kws, accuracy=1.5), 422, "validation_error")


async def test_too_large_upload_is_413(migrated_db: str, artifacts: Path, kws: bytes) -> None:
    app = create_app(
        api_settings(migrated_db, artifacts_dir=artifacts, models_max_upload_bytes=4096, admin_api_key=ADMIN_KEY)
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=bearer(ADMIN_KEY)
        ) as c,
    ):
        message = _error(await _push(c, "kws", 1, kws), 413, "payload_too_large")
        assert "4096" in message


async def test_a_model_tflm_cannot_load_is_registered_and_flagged(
    client: httpx.AsyncClient, seed: Seeder, migrated_db: str
) -> None:
    resp = await _push(client, "custom", 1, build_model(op="TinyfleetNoSuchOp"))
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["arena_bytes"] is None
    assert body["arena"]["loadable"] is False
    assert "TinyfleetNoSuchOp" in body["arena"]["reason"]
    _device(seed, migrated_db, "dev-1", {"arena": 1 << 20})
    check = (await client.get("/api/v1/models/custom/versions/1/compatibility", params={"device": "dev-1"})).json()
    assert check["compatible"] is False
    assert [i["limit"] for i in check["incompatibilities"]] == ["tflm"]


async def test_not_found(client: httpx.AsyncClient, kws: bytes) -> None:
    _error(await client.get("/api/v1/models/nope/versions"), 404, "not_found")
    _error(await client.get("/api/v1/models/nope/versions/1"), 404, "not_found")
    await _push(client, "kws", 1, kws)
    assert "no version 2" in _error(await client.get("/api/v1/models/kws/versions/2"), 404, "not_found")
    _error(await client.get("/api/v1/models/kws/versions/2/artifact"), 404, "not_found")
    missing = await client.get("/api/v1/models/kws/versions/1/compatibility", params={"device": "ghost"})
    assert "device 'ghost'" in _error(missing, 404, "not_found")


def _device(seed: Seeder, url: str, device_id: str, caps: dict[str, Any] | None, firmware: str = "1.4.2") -> None:
    seed.device(device_id, firmware=firmware)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE devices SET capabilities = %s WHERE id = %s", (Jsonb(caps) if caps is not None else None, device_id)
        )


async def test_compatibility_with_devices(
    client: httpx.AsyncClient, kws: bytes, seed: Seeder, migrated_db: str
) -> None:
    await _push(client, "kws", 1, kws, min_firmware="1.3.0")
    _device(seed, migrated_db, "big", {"flash": 1 << 20, "ram": 1 << 18, "arena": 1 << 16, "ops": KWS_OPS})
    _device(seed, migrated_db, "small", {"flash": 32_768, "ram": 1 << 18, "arena": 16_384, "ops": ["CONV_2D"]}, "1.2")
    _device(seed, migrated_db, "silent", None)

    def url(device: str) -> str:
        return f"/api/v1/models/kws/versions/1/compatibility?device={device}"

    big = (await client.get(url("big"))).json()
    assert big == {
        "model": "kws", "version": 1, "device": "big", "compatible": True, "incompatibilities": [], "unchecked": [],
    }  # fmt: skip

    small = (await client.get(url("small"))).json()
    assert small["compatible"] is False
    by_limit = {i["limit"]: i for i in small["incompatibilities"]}
    assert list(by_limit) == ["arena", "flash", "ops", "firmware"]
    arena = (await client.get("/api/v1/models/kws/versions/1")).json()["arena_bytes"]
    assert (by_limit["arena"]["needed"], by_limit["arena"]["available"]) == (arena, 16_384)
    assert (by_limit["flash"]["needed"], by_limit["flash"]["available"]) == (len(kws), 32_768)
    assert "DEPTHWISE_CONV_2D" in by_limit["ops"]["needed"]
    assert by_limit["firmware"]["message"] == "needs firmware 1.3.0 or later, the device runs 1.2"

    silent = (await client.get(url("silent"))).json()
    assert silent["compatible"] is True
    assert silent["unchecked"] == ["arena", "ram", "flash", "ops"]
    _error(await client.get("/api/v1/models/kws/versions/1/compatibility"), 422, "validation_error")


# ------------------------------------------------------------------------------------------------- downloads
async def _download_cases(client: httpx.AsyncClient, data: bytes, path: str) -> None:
    etag = f'"{hashlib.sha256(data).hexdigest()}"'
    size = len(data)

    whole = await client.get(path)
    assert whole.status_code == 200
    assert whole.content == data
    assert whole.headers["etag"] == etag
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(size)
    assert whole.headers["content-type"] == "application/octet-stream"
    assert "content-range" not in whole.headers

    part = await client.get(path, headers={"Range": "bytes=100-1123"})
    assert part.status_code == 206
    assert part.content == data[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{size}"
    assert part.headers["content-length"] == "1024"
    assert part.headers["etag"] == etag

    tail = await client.get(path, headers={"Range": "bytes=-10"})
    assert (tail.status_code, tail.content) == (206, data[-10:])
    assert tail.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"

    beyond = await client.get(path, headers={"Range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"

    several = await client.get(path, headers={"Range": "bytes=0-1,5-9"})
    assert (several.status_code, several.content) == (200, data)

    cached = await client.get(path, headers={"If-None-Match": etag})
    assert cached.status_code == 304
    assert cached.content == b""
    assert cached.headers["etag"] == etag
    stale = await client.get(path, headers={"If-None-Match": '"0000"'})
    assert (stale.status_code, stale.content) == (200, data)

    head = await client.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(size)
    assert head.headers["etag"] == etag

    # Resume: a download cut after `cut` bytes continues from there, guarded by If-Range.
    cut = size // 3 + 7
    received = bytearray()
    async with client.stream("GET", path) as stream:
        async for chunk in stream.aiter_bytes(4096):
            received += chunk
            if len(received) >= cut:
                break
    received = received[:cut]
    rest = await client.get(path, headers={"Range": f"bytes={len(received)}-", "If-Range": etag})
    assert rest.status_code == 206
    assert hashlib.sha256(bytes(received) + rest.content).hexdigest() == etag.strip('"')
    # If the file had changed (another ETag), the server sends it whole rather than a mixed file.
    changed = await client.get(path, headers={"Range": f"bytes={cut}-", "If-Range": '"another"'})
    assert (changed.status_code, changed.content) == (200, data)


async def test_download_local_store(client: httpx.AsyncClient, ad01: bytes) -> None:
    await _push(client, "ad01", 7, ad01, task="anomaly-detection")
    await _download_cases(client, ad01, "/api/v1/models/ad01/versions/7/artifact")


async def test_download_s3_store(migrated_db: str, s3_server: S3Server, kws: bytes) -> None:
    bucket = s3_server.new_bucket()
    settings = api_settings(
        migrated_db,
        artifacts_url=f"s3://{bucket}/registry",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_region=s3_server.region,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        admin_api_key=ADMIN_KEY,
    )
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver", headers=bearer(ADMIN_KEY)
        ) as c,
    ):
        resp = await _push(c, "kws", 1, kws, labels=KWS_LABELS)
        assert resp.status_code == 201, resp.text
        objects = s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]
        assert [o["Key"] for o in objects] == [f"registry/sha256/{resp.json()['sha256'][:2]}/{resp.json()['sha256']}"]
        await _download_cases(c, kws, "/api/v1/models/kws/versions/1/artifact")


async def test_lost_artifact_is_a_clear_503(client: httpx.AsyncClient, kws: bytes, artifacts: Path) -> None:
    await _push(client, "kws", 1, kws)
    for path in _files(artifacts):
        path.unlink()
    message = _error(await client.get("/api/v1/models/kws/versions/1/artifact"), 503, "artifact_missing")
    assert "missing" in message


async def test_openapi_documents_the_registry(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    push = spec["paths"]["/api/v1/models/{name}/versions/{version}"]["put"]
    assert push["summary"]
    assert "application/octet-stream" in push["requestBody"]["content"]
    assert {"200", "201", "409", "413", "422"} <= set(push["responses"])
    download = spec["paths"]["/api/v1/models/{name}/versions/{version}/artifact"]["get"]
    assert {"200", "206", "304", "416", "404"} <= set(download["responses"])
    for path, ops in spec["paths"].items():
        if path.startswith("/api/v1/models"):
            for op in ops.values():
                assert op.get("summary"), path


async def test_concurrent_pushes_of_one_version(
    client: httpx.AsyncClient, kws: bytes, ad01: bytes, migrated_db: str
) -> None:
    import asyncio

    same = await asyncio.gather(*(_push(client, "kws", 9, kws) for _ in range(3)))
    assert sorted(r.status_code for r in same) == [200, 200, 201]
    assert len({r.json()["sha256"] for r in same}) == 1
    rivals = await asyncio.gather(_push(client, "ad01", 1, ad01), _push(client, "ad01", 1, kws))
    assert sorted(r.status_code for r in rivals) == [201, 409]
    assert _rows(migrated_db, "SELECT model_name, version FROM model_versions ORDER BY 1") == [("ad01", 1), ("kws", 9)]


def _with_label_file(model: bytes, labels: list[str]) -> bytes:
    """A model packed like TFLite Support's MetadataPopulator does: a zip of associated files appended."""
    import io
    import zipfile

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("labels.txt", "\n".join(labels))
    return model + archive.getvalue()


async def test_labels_embedded_in_the_file_are_used(client: httpx.AsyncClient, kws: bytes) -> None:
    resp = await _push(client, "kws", 1, _with_label_file(kws, KWS_LABELS))
    assert resp.status_code == 201, resp.text
    assert resp.json()["labels"] == KWS_LABELS
    assert resp.json()["inspection"]["embedded_labels"] == KWS_LABELS
    message = _error(await _push(client, "kws", 2, _with_label_file(kws, ["a", "b"])), 422, "invalid_model_card")
    assert message == "2 labels embedded in the file, but the output tensor [1, 12] has 12 classes"
