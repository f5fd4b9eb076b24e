"""Feature pipelines, picked by NAME (from a model card or ``--features``), never by model-specific code.

``FEATURES[name](window, sample_rate_hz)`` turns one sensor window into the model's float32 input (batch dim
omitted; the runner reshapes to the input tensor). Each :class:`FeaturePipeline` also says the window it
expects natively (``sample_rate_hz``, ``window_samples``, ``channels``), so a device can read its source
accordingly; ``None`` means "whatever the model needs" (``raw``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from tinyfleet_device.features.vibration import (
    F_MIN_HZ,
    N_BANDS,
    N_FEATURES,
    SAMPLE_RATE_HZ,
    WINDOW_SAMPLES,
    vibration_features,
)

__all__ = ["FEATURES", "FeaturePipeline", "UnknownFeaturesError", "get_pipeline", "raw_features"]

FeatureFn = Callable[[np.ndarray, float], NDArray[np.float32]]


class UnknownFeaturesError(KeyError):
    """No feature pipeline of that name."""


@dataclass(frozen=True, slots=True)
class FeaturePipeline:
    name: str
    compute: FeatureFn
    description: str
    sample_rate_hz: float | None = None
    window_samples: int | None = None
    channels: int | None = None
    output_size: int | None = None
    params: Mapping[str, object] = field(default_factory=dict)

    def __call__(self, window: np.ndarray, sample_rate_hz: float | None = None) -> NDArray[np.float32]:
        rate = sample_rate_hz if sample_rate_hz is not None else self.sample_rate_hz
        return self.compute(window, float(rate) if rate is not None else 0.0)

    def card(self) -> dict[str, object]:
        """The ``features`` entry of a model card."""
        return {"name": self.name, "sample_rate_hz": self.sample_rate_hz, "window_samples": self.window_samples,
                "channels": self.channels, "output_size": self.output_size, **self.params}


def raw_features(window: np.ndarray, sample_rate_hz: float = 0.0) -> NDArray[np.float32]:
    """The window itself, flattened to float32 (the model takes samples)."""
    return np.asarray(window, dtype=np.float32).reshape(-1)


FEATURES: dict[str, FeaturePipeline] = {
    "raw": FeaturePipeline("raw", raw_features, "the sensor window itself, flattened, float32"),
    "vib-fft": FeaturePipeline(
        "vib-fft", vibration_features,
        "3-axis vibration: log10 FFT band energies per axis + log10 RMS/kurtosis/crest factor",
        sample_rate_hz=SAMPLE_RATE_HZ, window_samples=WINDOW_SAMPLES, channels=3, output_size=N_FEATURES,
        params={"n_bands": N_BANDS, "f_min_hz": F_MIN_HZ, "window": "hann", "scale": "log10"}),
}


def get_pipeline(name: str) -> FeaturePipeline:
    try:
        return FEATURES[name]
    except KeyError:
        known = ", ".join(sorted(FEATURES))
        raise UnknownFeaturesError(f"unknown feature pipeline {name!r} (known: {known})") from None
