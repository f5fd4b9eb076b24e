"""One inference step of the device: read a window from the source, compute the features, run the model.

    pipe = InferencePipeline(runner, FEATURES["vib-fft"], source)
    step = pipe.step()          # Step(window, features, result)

The window length is the feature pipeline's ``window_samples``; for ``raw`` it is what the model's input
holds (per channel). The last windows are kept (bounded) for the ``capture`` command.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from .errors import ModelError
from .features import FeaturePipeline
from .runner import InferenceResult, ModelRunner
from .sources import Source

__all__ = ["InferencePipeline", "Step"]


@dataclass(frozen=True)
class Step:
    window: np.ndarray
    features: np.ndarray
    result: InferenceResult
    #: time the features took, µs
    features_us: int


class InferencePipeline:
    def __init__(
        self, runner: ModelRunner, features: FeaturePipeline, source: Source, *, keep_windows: int = 8
    ) -> None:
        self.runner = runner
        self.features = features
        self.source = source
        channels = source.channels
        if features.window_samples is not None:
            self.window_samples = int(features.window_samples)
        else:
            if runner.input_size % channels:
                raise ModelError(
                    f"the model input holds {runner.input_size} values: not a whole number of "
                    f"{channels}-channel samples"
                )
            self.window_samples = runner.input_size // channels
        self._recent: collections.deque[np.ndarray] = collections.deque(maxlen=max(1, keep_windows))

    def step(self) -> Step:
        import time

        window = self.source.read(self.window_samples)
        self._recent.append(window)
        started = time.perf_counter_ns()
        feats = self.features(window, self.source.sample_rate_hz)
        features_us = (time.perf_counter_ns() - started) // 1000
        return Step(window=window, features=feats, result=self.runner.infer(feats), features_us=int(features_us))

    def recent_samples(self, n: int | None = None) -> np.ndarray:
        """The last windows read, oldest first, concatenated (the last ``n`` samples when given)."""
        if not self._recent:
            return np.zeros((0, self.source.channels), dtype=np.float32)
        data = np.concatenate([w.reshape(len(w), -1) for w in self._recent], axis=0)
        return data if n is None else data[-n:]
