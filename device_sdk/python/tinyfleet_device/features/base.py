"""What a feature pipeline is: a named function from a raw sensor window to the model's float input."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Extractor", "FeaturePipeline"]

#: ``extract(window, sample_rate_hz) -> float32 features`` (shaped as the model input; batch dim may be omitted)
Extractor = Callable[[np.ndarray, float], np.ndarray]


@dataclass(frozen=True)
class FeaturePipeline:
    """A feature pipeline the device can pick by name (CLI ``--features``, or a model card's ``features``).

    ``window_samples`` / ``sample_rate_hz`` are what the pipeline expects from its source (None: the raw
    pipeline takes as many values as the model input holds, at any rate); ``channels`` is 1 for audio, 3 for a
    3-axis accelerometer; ``source`` names the simulator that produces matching windows (``sim`` picks it)."""

    name: str
    extract: Extractor
    description: str
    window_samples: int | None = None
    sample_rate_hz: float | None = None
    channels: int = 1
    source: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
