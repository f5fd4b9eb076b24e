"""TensorFlow, set up once for the pipeline: legacy Keras 2 (tf_keras, which tensorflow-model-optimization needs
with TF 2.21), quiet logs, fixed seeds, deterministic ops, one thread per op pool (the same numbers on any
machine with the same packages, and polite on a shared one)."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")  # CPU only: GPU kernels are not bit-reproducible

import tensorflow as tf
import tf_keras as keras

__all__ = ["keras", "seed_everything", "tf"]

_configured = False


def seed_everything(seed: int) -> None:
    global _configured
    if not _configured:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        tf.config.experimental.enable_op_determinism()
        tf.get_logger().setLevel("ERROR")
        _configured = True
    keras.utils.set_random_seed(seed)


def versions() -> dict[str, Any]:
    import importlib.metadata as md
    import platform

    out: dict[str, Any] = {"python": platform.python_version()}
    for pkg in ("tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy", "scipy", "tflite-micro",
                "matplotlib"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out
