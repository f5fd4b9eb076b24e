"""The model registry: push a version (raw .tflite body), list, inspect, check against a device, download.

Uploads are ``PUT /api/v1/models/{name}/versions/{version}`` with the file as the raw request body
(``application/octet-stream``) and the model card in query parameters: a device-side or CI script needs no
multipart encoder, and PUT says what it does — the same request twice is the same version (docs/models.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, StreamingResponse

from tinyfleet.api.auth import DeviceOrReadScope, ReadScope, WriteScope
from tinyfleet.api.deps import ArtifactStoreDep, SessionDep, SettingsDep, WriteSessionDep
from tinyfleet.api.errors import ApiError
from tinyfleet.api.routes import API_PREFIX
from tinyfleet.api.schemas import ErrorResponse
from tinyfleet.registry import service
from tinyfleet.registry.download import plan_download, quoted_etag
from tinyfleet.registry.schemas import (
    MAX_VERSION,
    MODEL_NAME_PATTERN,
    CompatibilityPublic,
    IncompatibilityPublic,
    ModelCard,
    ModelPublic,
    ModelsPublic,
    ModelVersionDetailPublic,
    ModelVersionPublic,
    ModelVersionsPublic,
)
from tinyfleet.store.models import ModelVersion
from tinyfleet.wire import DEVICE_ID_PATTERN

router = APIRouter(prefix=f"{API_PREFIX}/models", tags=["models"])

ModelName = Annotated[
    str, Path(pattern=MODEL_NAME_PATTERN, description="Model name: 1-64 of A-Z a-z 0-9 . _ -", examples=["kws"])
]
VersionNumber = Annotated[
    int, Path(ge=0, le=MAX_VERSION, description="Version: an integer, as devices report it (mver)", examples=[3])
]
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "No such model or version"}}
_CHUNK = 64 * 1024


class PayloadTooLargeError(ApiError):
    status_code = 413
    code = "payload_too_large"


def _download_url(row: ModelVersion) -> str:
    return f"{API_PREFIX}/models/{row.model_name}/versions/{row.version}/artifact"


def _public(row: ModelVersion) -> dict[str, Any]:
    return {
        "model": row.model_name,
        "version": row.version,
        "sha256": row.sha256,
        "size": row.size,
        "precision": row.precision,
        "parameters": row.parameters,
        "arena_bytes": row.arena_bytes,
        "ops": row.ops,
        "inputs": row.inputs,
        "outputs": row.outputs,
        "labels": row.labels,
        "card": row.card,
        "created_at": row.created_at,
        "download_url": _download_url(row),
    }


def _detail(row: ModelVersion) -> ModelVersionDetailPublic:
    return ModelVersionDetailPublic.model_validate({**_public(row), "inspection": row.inspection, "arena": row.arena})


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLargeError(
            f"the model is {declared} bytes, the limit is {limit} (TINYFLEET_MODELS_MAX_UPLOAD_BYTES)"
        )
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise PayloadTooLargeError(f"the model is over {limit} bytes (TINYFLEET_MODELS_MAX_UPLOAD_BYTES)")
        parts.append(chunk)
    return b"".join(parts)


_UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The .tflite file, as is (`curl --data-binary @model.tflite`)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.put(
    "/{name}/versions/{version}",
    summary="Push a model version (raw .tflite body, model card in the query)",
    description=(
        "Inspects the file, measures its TFLM arena, stores it and registers the version. Versions are "
        "immutable: the same bytes again answer 200 with the registered version, other bytes 409. "
        "`labels` (repeat the parameter, in output order) must match the output's class dimension."
    ),
    status_code=201,
    response_model=ModelVersionDetailPublic,
    openapi_extra=_UPLOAD_BODY,
    responses={
        200: {"model": ModelVersionDetailPublic, "description": "Already registered with these bytes"},
        409: {"model": ErrorResponse, "description": "This version exists with other bytes"},
        413: {"model": ErrorResponse, "description": "The file is larger than the upload limit"},
        422: {"model": ErrorResponse, "description": "Not a TFLite model, or the card does not fit the model"},
    },
)
async def push_version(
    request: Request,
    session: WriteSessionDep,
    _principal: WriteScope,
    settings: SettingsDep,
    store: ArtifactStoreDep,
    name: ModelName,
    version: VersionNumber,
    task: Annotated[str | None, Query(max_length=64, examples=["classification"])] = None,
    dataset: Annotated[str | None, Query(max_length=256, examples=["Speech Commands v2"])] = None,
    accuracy: Annotated[float | None, Query(ge=0, le=1, examples=[0.93])] = None,
    description: Annotated[str | None, Query(max_length=4096, examples=["DS-CNN keyword spotting"])] = None,
    labels: Annotated[
        list[str] | None, Query(max_length=65536, description="Class names in output order", examples=[["yes", "no"]])
    ] = None,
    min_firmware: Annotated[str | None, Query(max_length=64, examples=["1.4.0"])] = None,
    model_description: Annotated[
        str | None, Query(max_length=4096, description="Describes the model (set when its first version is pushed)")
    ] = None,
) -> Any:
    data = await _read_body(request, settings.models_max_upload_bytes)
    card = ModelCard(
        task=task, dataset=dataset, accuracy=accuracy, description=description, labels=labels,
        min_firmware=min_firmware,
    )  # fmt: skip
    registered = await service.register_version(
        session, store, name=name, version=version, data=data, card=card, model_description=model_description,
        max_arena=settings.models_max_arena_bytes, arena_timeout_s=settings.models_arena_timeout_s,
    )  # fmt: skip
    body = _detail(registered.version)
    return JSONResponse(status_code=201 if registered.created else 200, content=jsonable_encoder(body))


@router.get("", summary="List the registered models")
async def list_models(session: SessionDep, _principal: ReadScope) -> ModelsPublic:
    models = await service.list_models(session)
    return ModelsPublic(
        items=[
            ModelPublic(
                name=m.record.name,
                description=m.record.description,
                created_at=m.record.created_at,
                versions=m.versions,
                latest_version=m.latest_version,
            )
            for m in models
        ]
    )


@router.get("/{name}/versions", summary="A model's versions, oldest first", responses=_NOT_FOUND)
async def list_versions(session: SessionDep, _principal: ReadScope, name: ModelName) -> ModelVersionsPublic:
    rows = await service.list_versions(session, name)
    return ModelVersionsPublic(items=[ModelVersionPublic.model_validate(_public(r)) for r in rows])


@router.get("/{name}/versions/{version}", summary="One version, with its inspection and arena", responses=_NOT_FOUND)
async def get_version(
    session: SessionDep, _principal: ReadScope, name: ModelName, version: VersionNumber
) -> ModelVersionDetailPublic:
    return _detail(await service.get_version(session, name, version))


@router.get(
    "/{name}/versions/{version}/compatibility",
    summary="Can this device run this version?",
    description=(
        "Compares the version's arena, size, ops and minimum firmware with the capabilities the device "
        "reported in its `state` (`devices.capabilities`, firmware). Each incompatibility names the limit, "
        "what is needed and what the device has; limits the device has not reported are listed as unchecked."
    ),
    responses={404: {"model": ErrorResponse, "description": "No such model, version or device"}},
)
async def check_compatibility(
    session: SessionDep,
    _principal: ReadScope,
    name: ModelName,
    version: VersionNumber,
    device: Annotated[str, Query(description="Device id", examples=["press-07"], pattern=f"^{DEVICE_ID_PATTERN}$")],
) -> CompatibilityPublic:
    row = await service.get_version(session, name, version)
    result = await service.compatibility(session, row, device)
    return CompatibilityPublic(
        model=name,
        version=version,
        device=device,
        compatible=not result.incompatibilities,
        incompatibilities=[IncompatibilityPublic(**vars(i)) for i in result.incompatibilities],
        unchecked=result.unchecked,
    )


_DOWNLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The whole file (ETag = its SHA-256)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    206: {
        "description": "The requested byte range (Content-Range says which)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
    304: {"description": "If-None-Match matched: the client has this file"},
    416: {"description": "The range starts past the end of the file (Content-Range: bytes */size)"},
    **_NOT_FOUND,
}


_KWS_ETAG = '"aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae"'
_DOWNLOAD_DESCRIPTION = (
    "`ETag` is the quoted SHA-256. One `Range: bytes=a-b` (or `a-`, `-n`) answers 206; a resuming client sends "
    "`If-Range: <etag>` so that a changed file comes whole (200) instead of a mixed one. Several ranges in one "
    "request are answered with the whole file. HEAD answers the same headers without the body."
)


@router.get(
    "/{name}/versions/{version}/artifact",
    summary="Download the .tflite (Range, If-Range, If-None-Match; resumable)",
    description=_DOWNLOAD_DESCRIPTION,
    response_class=Response,
    responses=_DOWNLOAD_RESPONSES,
)
@router.head(
    "/{name}/versions/{version}/artifact",
    summary="Size and ETag of the .tflite, without the body",
    description=_DOWNLOAD_DESCRIPTION,
    response_class=Response,
    responses=_DOWNLOAD_RESPONSES,
)
async def download_artifact(
    request: Request,
    session: SessionDep,
    _principal: DeviceOrReadScope,
    store: ArtifactStoreDep,
    name: ModelName,
    version: VersionNumber,
    range_header: Annotated[str | None, Header(alias="Range", examples=["bytes=1024-"])] = None,
    if_none_match: Annotated[str | None, Header(examples=[_KWS_ETAG])] = None,
    if_range: Annotated[str | None, Header(examples=[_KWS_ETAG])] = None,
) -> Response:
    row = await service.get_version(session, name, version)
    size = await asyncio.to_thread(store.size, row.storage_key)  # a lost artifact answers 503 before any byte
    etag = quoted_etag(row.sha256)
    plan = plan_download(size, etag, range_header, if_none_match, if_range)
    headers = {
        "ETag": etag,
        "Accept-Ranges": "bytes",
        "Cache-Control": "public, max-age=31536000, immutable",  # versions never change
        "Content-Disposition": f'attachment; filename="{row.model_name}-v{row.version}.tflite"',
    }
    if plan.status == 304:
        return Response(status_code=304, headers=headers)
    if plan.status == 416:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    headers["Content-Length"] = str(plan.length)
    if plan.status == 206:
        headers["Content-Range"] = f"bytes {plan.start}-{plan.end}/{size}"
    if request.method == "HEAD" or plan.length == 0:
        return Response(status_code=plan.status, headers=headers, media_type="application/octet-stream")

    key, start, end = row.storage_key, plan.start, plan.end  # the session is closed while the body streams

    def chunks() -> Iterator[bytes]:
        yield from store.read_range(key, start, end)

    return StreamingResponse(chunks(), status_code=plan.status, headers=headers, media_type="application/octet-stream")
