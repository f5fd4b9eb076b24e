"""The registry's schema families: the model card a user gives (`ModelCard`), what the API returns (`*Public`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tinyfleet.registry.arena import ArenaReport
from tinyfleet.registry.inspect import ModelInspection, OpUsage, TensorSpec

#: Model names go into URLs, object keys and MQTT payloads: keep them plain.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
MAX_VERSION = 0xFFFF_FFFF  # devices report the version as a uint32 (`mver`)

_KWS_CARD: dict[str, Any] = {
    "task": "classification",
    "dataset": "Speech Commands v2",
    "accuracy": 0.93,
    "description": "DS-CNN keyword spotting, MLCommons Tiny reference",
    "labels": ["down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "silence", "unknown"],
    "min_firmware": None,
}


class ModelCardBase(BaseModel):
    """What the person registering a version says about it."""

    task: str | None = Field(None, max_length=64, examples=["classification"], description="e.g. classification")
    dataset: str | None = Field(None, max_length=256, examples=["Speech Commands v2"])
    accuracy: float | None = Field(None, ge=0, le=1, examples=[0.93], description="On the dataset's test split")
    description: str | None = Field(None, max_length=4096)
    labels: list[str] | None = Field(
        None, max_length=65536, description="Class names, in output order (classifiers: one per output class)"
    )
    min_firmware: str | None = Field(
        None, max_length=64, examples=["1.4.0"], description="Oldest device firmware that runs it (dotted numbers)"
    )


class ModelCard(ModelCardBase):
    model_config = ConfigDict(json_schema_extra={"examples": [_KWS_CARD]})


class ModelReport(BaseModel):
    """`tinyfleet models inspect --json`: what the flatbuffer says and what TFLM measured."""

    inspection: ModelInspection
    arena: ArenaReport


class ModelVersionBase(BaseModel):
    model: str = Field(examples=["kws"])
    version: int = Field(examples=[3])
    sha256: str = Field(examples=["aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae"])
    size: int = Field(examples=[53936])
    precision: str = Field(examples=["int8"])
    parameters: int = Field(examples=[22606])
    arena_bytes: int | None = Field(examples=[24272], description="Smallest TFLM arena; null: TFLM cannot load it")
    ops: list[OpUsage]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    labels: list[str] | None = Field(None, examples=[_KWS_CARD["labels"]])
    card: ModelCard
    created_at: datetime
    download_url: str = Field(examples=["/api/v1/models/kws/versions/3/artifact"])


class ModelVersionPublic(ModelVersionBase):
    """A version as listed."""


class ModelVersionDetailPublic(ModelVersionBase):
    """A version with everything inspection and TFLM found."""

    inspection: ModelInspection
    arena: ArenaReport


class ModelVersionsPublic(BaseModel):
    items: list[ModelVersionPublic]


class ModelPublic(BaseModel):
    name: str = Field(examples=["kws"])
    description: str | None = Field(None, examples=["Keyword spotting"])
    created_at: datetime
    versions: int = Field(examples=[3], description="How many versions are registered")
    latest_version: int | None = Field(examples=[3])


class ModelsPublic(BaseModel):
    items: list[ModelPublic]


class IncompatibilityPublic(BaseModel):
    limit: str = Field(examples=["arena"], description="arena, ram, flash, ops, firmware or tflm")
    needed: Any = Field(examples=[24272])
    available: Any = Field(examples=[16384])
    message: str = Field(examples=["needs a 24272-byte tensor arena, the device offers at most 16384 bytes"])


class CompatibilityPublic(BaseModel):
    model: str = Field(examples=["kws"])
    version: int = Field(examples=[3])
    device: str = Field(examples=["press-07"])
    compatible: bool = Field(examples=[False], description="No incompatibility found among the checked limits")
    incompatibilities: list[IncompatibilityPublic]
    unchecked: list[str] = Field(
        examples=[["flash"]], description="Limits the device has not reported, so could not be checked"
    )
