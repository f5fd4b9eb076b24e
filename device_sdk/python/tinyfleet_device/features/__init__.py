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

from tinyfleet_device.features.audio import AD_LOGMEL, KWS_MFCC, ad_logmel_pipeline, kws_mfcc_pipeline
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
    # MLCommons Tiny AD (ad01): one vector per frame position, (n, 640); the runner scores each and averages
    "ad-logmel": FeaturePipeline(
        "ad-logmel", ad_logmel_pipeline, AD_LOGMEL.description,
        sample_rate_hz=AD_LOGMEL.sample_rate_hz, window_samples=AD_LOGMEL.window_samples, channels=1,
        output_size=AD_LOGMEL.vector_shape[0],
        params={"n_fft": 1024, "hop_length": 512, "n_mels": 128, "frames": 5, "power": 2.0, "mel": "slaney",
                "log": "10*log10(x+eps)", "center": "reflect"}),
    # MLCommons Tiny KWS (kws_ref_model): one 1 s clip -> (49, 10)
    "kws-mfcc": FeaturePipeline(
        "kws-mfcc", kws_mfcc_pipeline, KWS_MFCC.description,
        sample_rate_hz=KWS_MFCC.sample_rate_hz, window_samples=KWS_MFCC.window_samples, channels=1,
        output_size=KWS_MFCC.vector_shape[0] * KWS_MFCC.vector_shape[1],
        params={"frame_length": 480, "frame_step": 320, "fft_length": 512, "n_mels": 40, "mel": "htk",
                "lower_hz": 20.0, "upper_hz": 4000.0, "log_offset": 1e-6, "n_mfcc": 10, "normalize": "peak"}),
}


def get_pipeline(name: str) -> FeaturePipeline:
    try:
        return FEATURES[name]
    except KeyError:
        known = ", ".join(sorted(FEATURES))
        raise UnknownFeaturesError(f"unknown feature pipeline {name!r} (known: {known})") from None
