"""The two vibration models, trained with tf_keras, and their export form.

Both train on **standardized** features (per-feature mean and standard deviation of the training rows). The
exported models take the raw ``vib-fft`` features: the standardization is the model's first op (a Keras
``Normalization`` layer: SUB and MUL in int8), so the device needs no model-specific pre-processing. Folding
it into the first dense layer's weights instead (``W / σ``) cost ~5 points of int8 accuracy: per-output-channel
weight scales must then span weights divided by σs that differ 17-fold. The autoencoder's de-standardization
*is* folded into its last layer (``W σ``, ``b σ + μ``: a scale per output channel, which per-channel
quantization represents exactly), so it reconstructs the features themselves and the runner's score, the mean
squared error between input and output, is in feature units.

* ``vib-cls``: 105 → 128 → 64 → 4 (softmax), ReLU, dropout 0.1 in training; sparse categorical cross-entropy.
* ``vib-ad``: 105 → 96 → 16 → 96 → 105, ReLU, trained on normal windows only with the mean squared error *in
  feature units* (the standardized error weighted by σ²), i.e. exactly the score the runner computes.
* pruning (tensorflow-model-optimization): the trained classifier is wrapped with ``prune_low_magnitude`` (a
  polynomial schedule from 0 to ``target_sparsity`` over the fine-tuning), fine-tuned, stripped, folded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.tf_setup import keras, seed_everything, tf

__all__ = ["Standardizer", "TrainSpec", "export_autoencoder", "export_classifier", "kernel_sparsity",
           "prune_classifier", "train_autoencoder", "train_classifier"]

CLS_UNITS = (128, 64)
AD_UNITS = (96, 16, 96)


@dataclass(frozen=True, slots=True)
class TrainSpec:
    seed: int = 7
    cls_epochs: int = 40
    ad_epochs: int = 80
    prune_epochs: int = 15
    target_sparsity: float = 0.75
    batch_size: int = 64
    learning_rate: float = 2e-3

    def as_dict(self) -> dict[str, object]:
        return {"seed": self.seed, "cls_epochs": self.cls_epochs, "ad_epochs": self.ad_epochs,
                "prune_epochs": self.prune_epochs, "target_sparsity": self.target_sparsity,
                "batch_size": self.batch_size, "learning_rate": self.learning_rate,
                "cls_units": list(CLS_UNITS), "ad_units": list(AD_UNITS)}


@dataclass(frozen=True, slots=True)
class Standardizer:
    mean: NDArray[np.float32]
    std: NDArray[np.float32]

    @classmethod
    def fit(cls, x: NDArray[np.float32]) -> Standardizer:
        return cls(x.mean(0).astype(np.float32), (x.std(0) + 1e-3).astype(np.float32))

    def __call__(self, x: NDArray[np.float32]) -> NDArray[np.float32]:
        return ((x - self.mean) / self.std).astype(np.float32)


def _dense_stack(n_in: int, units: tuple[int, ...], n_out: int, out_activation: str | None,
                 dropout: float = 0.0) -> keras.Model:
    layers: list[keras.layers.Layer] = [keras.layers.Input((n_in,))]
    for u in units:
        layers.append(keras.layers.Dense(u, activation="relu"))
        if dropout:
            layers.append(keras.layers.Dropout(dropout))
    layers.append(keras.layers.Dense(n_out, activation=out_activation))
    return keras.Sequential(layers)


def _dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def train_classifier(x: NDArray[np.float32], y: NDArray[np.int64], x_val: NDArray[np.float32],
                     y_val: NDArray[np.int64], norm: Standardizer, n_classes: int,
                     spec: TrainSpec) -> tuple[keras.Model, dict[str, float]]:
    seed_everything(spec.seed)
    model = _dense_stack(x.shape[1], CLS_UNITS, n_classes, "softmax", dropout=0.1)
    model.compile(keras.optimizers.Adam(spec.learning_rate), "sparse_categorical_crossentropy", ["accuracy"])
    hist = model.fit(norm(x), y, epochs=spec.cls_epochs, batch_size=spec.batch_size, shuffle=True, verbose=0)
    final = {k: round(float(v[-1]), 5) for k, v in hist.history.items()}
    val_loss, val_acc = model.evaluate(norm(x_val), y_val, verbose=0, batch_size=512)
    return model, {**final, "val_loss": round(float(val_loss), 5), "val_accuracy": round(float(val_acc), 5)}


def train_autoencoder(x: NDArray[np.float32], x_val: NDArray[np.float32], norm: Standardizer,
                      spec: TrainSpec) -> tuple[keras.Model, dict[str, float]]:
    seed_everything(spec.seed + 1)
    model = _dense_stack(x.shape[1], AD_UNITS[:-1] + AD_UNITS[-1:], x.shape[1], None)
    var = tf.constant(norm.std.astype(np.float32) ** 2)

    def feature_mse(y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        return tf.reduce_mean(tf.square(y_true - y_pred) * var, axis=-1)

    model.compile(keras.optimizers.Adam(spec.learning_rate), feature_mse)
    xn, vn = norm(x), norm(x_val)
    hist = model.fit(xn, xn, epochs=spec.ad_epochs, batch_size=spec.batch_size, shuffle=True, verbose=0)
    val_loss = model.evaluate(vn, vn, verbose=0, batch_size=512)
    return model, {"loss": round(float(hist.history["loss"][-1]), 6), "val_loss": round(float(val_loss), 6)}


def prune_classifier(trained: keras.Model, x: NDArray[np.float32], y: NDArray[np.int64], norm: Standardizer,
                     spec: TrainSpec) -> keras.Model:
    """Magnitude pruning of a copy of the trained classifier, fine-tuned, then stripped of the wrappers."""
    import tensorflow_model_optimization as tfmot

    seed_everything(spec.seed + 2)
    model = keras.models.clone_model(trained)
    model.set_weights(trained.get_weights())
    steps = int(np.ceil(len(x) / spec.batch_size)) * spec.prune_epochs
    schedule = tfmot.sparsity.keras.PolynomialDecay(initial_sparsity=0.0, final_sparsity=spec.target_sparsity,
                                                    begin_step=0, end_step=max(1, int(steps * 0.7)), frequency=10)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    pruned.compile(keras.optimizers.Adam(spec.learning_rate / 4), "sparse_categorical_crossentropy", ["accuracy"])
    pruned.fit(norm(x), y, epochs=spec.prune_epochs, batch_size=spec.batch_size, shuffle=True, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)


def kernel_sparsity(model: keras.Model) -> float:
    """Fraction of zero weights over the dense kernels (biases excluded)."""
    kernels = [layer.get_weights()[0] for layer in _dense_layers(model)]
    total = sum(k.size for k in kernels)
    return float(sum(int(np.sum(k == 0)) for k in kernels) / total)


def _export(weights: list[list[NDArray[np.float32]]], norm: Standardizer, out_activation: str | None) -> keras.Model:
    inputs = keras.layers.Input((norm.mean.shape[0],))
    h = keras.layers.Normalization(mean=norm.mean, variance=norm.std.astype(np.float64) ** 2)(inputs)
    for i, w in enumerate(weights):
        last = i == len(weights) - 1
        layer = keras.layers.Dense(w[0].shape[1], activation=out_activation if last else "relu")
        h = layer(h)
        layer.set_weights(w)
    return keras.Model(inputs, h)


def export_classifier(model: keras.Model, norm: Standardizer) -> keras.Model:
    """The classifier taking raw features: Normalization, then the dense layers (no dropout)."""
    return _export([layer.get_weights() for layer in _dense_layers(model)], norm, "softmax")


def export_autoencoder(model: keras.Model, norm: Standardizer) -> keras.Model:
    """The autoencoder from raw features to raw features (de-standardization folded into the last layer)."""
    weights = [layer.get_weights() for layer in _dense_layers(model)]
    w, b = weights[-1]
    weights[-1] = [(w * norm.std[None, :]).astype(np.float32), (b * norm.std + norm.mean).astype(np.float32)]
    return _export(weights, norm, None)
