"""TFLite conversion: float (reference), and full-integer int8 with a representative dataset (int8 input and
output tensors, int8 weights, int32 biases; only TFLITE_BUILTINS_INT8 ops, so the model runs on integer-only
microcontrollers and in TFLM).

Weights are quantized **per tensor** (``_experimental_disable_per_channel``): for these small dense models the
per-channel scales and zero points (12 bytes per output channel, for weights and biases) are ~15 % of the
int8 file, and per-tensor quantization loses no test accuracy here (the cards record it).
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import numpy as np
from numpy.typing import NDArray

from models.tf_setup import keras, tf

__all__ = ["gzip_size", "to_float", "to_int8"]


def to_float(model: keras.Model) -> bytes:
    return bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())


def to_int8(model: keras.Model, representative: NDArray[np.float32]) -> bytes:
    """``representative``: rows that span the inputs the model will see (calibration of activation ranges)."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def rows() -> Iterator[list[NDArray[np.float32]]]:
        for r in representative:
            yield [r[None, :].astype(np.float32)]

    converter.representative_dataset = rows
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel = True
    return bytes(converter.convert())


def gzip_size(data: bytes) -> int:
    """Size after gzip -9 with a fixed mtime: how much a sparse model saves in storage and over the air."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))
