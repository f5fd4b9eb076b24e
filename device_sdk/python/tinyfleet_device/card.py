"""A model card next to the model file (``NAME.card.json`` beside ``NAME.tflite``), when there is one.

The device takes defaults from it — model id, version, labels, feature pipeline, anomaly threshold, kind — so
``--model vib-cls.tflite`` alone is enough for the project's models; without a card, the CLI flags give them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ModelError

__all__ = ["ModelCard", "card_path", "read_card"]


@dataclass(frozen=True)
class ModelCard:
    name: str | None = None
    version: int | None = None
    kind: str | None = None
    labels: tuple[str, ...] | None = None
    features: str | None = None
    threshold: float | None = None
    arena: int | None = None


def card_path(model: Path) -> Path:
    return model.with_name(model.name.removesuffix(".tflite") + ".card.json")


def read_card(model: Path) -> ModelCard | None:
    """The card beside ``model`` (None when there is none); ModelError when it is unreadable."""
    path = card_path(model)
    if not path.is_file():
        return None
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the model card {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ModelError(f"the model card {path} is not a JSON object")
    features = doc.get("features")
    feature_name = features.get("name") if isinstance(features, dict) else features
    labels = doc.get("labels")
    version = doc.get("version")
    threshold = doc.get("threshold")
    arena = doc.get("arena")
    if isinstance(arena, dict):
        arena = arena.get("bytes") or arena.get("arena_bytes")
    return ModelCard(
        name=str(doc["name"]) if doc.get("name") else None,
        version=int(version) if isinstance(version, int | float) and not isinstance(version, bool) else None,
        kind=str(doc["kind"]) if doc.get("kind") in ("classification", "anomaly", "regression") else None,
        labels=tuple(str(label) for label in labels) if isinstance(labels, list) and labels else None,
        features=str(feature_name) if isinstance(feature_name, str) else None,
        threshold=float(threshold) if isinstance(threshold, int | float) and not isinstance(threshold, bool) else None,
        arena=int(arena) if isinstance(arena, int) and not isinstance(arena, bool) else None,
    )
