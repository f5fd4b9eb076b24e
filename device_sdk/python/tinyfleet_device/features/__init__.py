"""Feature pipelines by name: ``FEATURES["raw"]``, ``"vib-fft"``, ``"ad-logmel"``, ``"kws-mfcc"``.

The device picks a pipeline by its name (from the CLI's ``--features`` or a model card), never by model. Each
feature module of this package (``vibration``, ``audio``) defines one or more module-level
:class:`~tinyfleet_device.features.base.FeaturePipeline` objects; they are collected here when the module is
present, so adding a pipeline needs no change to this file.

``raw`` passes the sensor window through as float32: the model's input is the window itself.
"""

from __future__ import annotations

import importlib
import importlib.util

import numpy as np

from .base import Extractor, FeaturePipeline

__all__ = ["FEATURES", "Extractor", "FeaturePipeline", "get_pipeline"]


def _raw(window: np.ndarray, sample_rate_hz: float) -> np.ndarray:
    del sample_rate_hz
    return np.asarray(window, dtype=np.float32)


RAW = FeaturePipeline(
    name="raw",
    extract=_raw,
    description="the sensor window itself as float32 (as many values as the model input holds)",
    source="random",
)

FEATURES: dict[str, FeaturePipeline] = {RAW.name: RAW}

#: feature modules owned by the sensor/model code; missing ones are skipped
_MODULES = ("vibration", "audio")


def _collect() -> None:
    for name in _MODULES:
        full = f"{__name__}.{name}"
        if importlib.util.find_spec(full) is None:
            continue
        module = importlib.import_module(full)
        for value in vars(module).values():
            if isinstance(value, FeaturePipeline):
                FEATURES.setdefault(value.name, value)


_collect()


def get_pipeline(name: str) -> FeaturePipeline:
    """The pipeline called ``name``; KeyError naming the known ones."""
    try:
        return FEATURES[name]
    except KeyError:
        raise KeyError(f"unknown feature pipeline {name!r} (known: {', '.join(sorted(FEATURES))})") from None
