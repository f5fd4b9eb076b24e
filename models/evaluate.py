"""Evaluation of the exported models: the float Keras model (the reference) and the int8 ``.tflite`` **in the
real TFLite Micro interpreter** through the device's own :class:`tinyfleet_device.runner.ModelRunner` (the same
quantization of features, the same dequantization and anomaly score as on a device)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from models.metrics import auc, classification_report, roc_curve
from tinyfleet_device.runner import ModelRunner

__all__ = ["AnomalyEval", "Tflm", "anomaly_eval", "classifier_eval", "run_tflm"]


@dataclass(slots=True)
class Tflm:
    """Outputs of a model run row by row in TFLM."""

    values: NDArray[np.float32]  # dequantized outputs (n, k)
    anomaly: NDArray[np.float64] | None  # the runner's anomaly scores (autoencoder)
    latency_us: NDArray[np.int64]
    arena_bytes: int
    backend: str


def run_tflm(model: bytes, x: NDArray[np.float32], *, labels: Sequence[str] | None = None,
             kind: str | None = None) -> Tflm:
    runner = ModelRunner.from_bytes(model, labels=labels, kind=kind)  # type: ignore[arg-type]
    if runner.backend != "tflm":
        raise RuntimeError(f"the evaluation needs TFLM, the runner loaded {runner.backend}")
    values, scores, lat = [], [], []
    for row in x:
        r = runner.infer(row)
        values.append(np.asarray(r.values, dtype=np.float32).reshape(-1))
        if r.anomaly is not None:
            scores.append(r.anomaly)
        lat.append(r.latency_us)
    return Tflm(np.stack(values), np.asarray(scores) if scores else None, np.asarray(lat, dtype=np.int64),
                runner.arena_size, runner.backend)


def latency_summary(lat: NDArray[np.int64]) -> dict[str, float]:
    return {"median": float(np.median(lat)), "p95": float(np.percentile(lat, 95)), "n": len(lat)}


def classifier_eval(y: NDArray[np.int64], probs: NDArray[np.floating], labels: Sequence[str]) -> dict[str, object]:
    return classification_report(y, np.argmax(probs, axis=1), labels)


@dataclass(slots=True)
class AnomalyEval:
    report: dict[str, object]
    fpr: NDArray[np.float64]
    tpr: NDArray[np.float64]


def anomaly_eval(y: NDArray[np.int64], score: NDArray[np.float64], threshold: float,
                 labels: Sequence[str]) -> AnomalyEval:
    """Normal (label 0) against every fault; detection rate per fault at ``threshold``."""
    positive = (y != 0).astype(np.int64)
    fpr, tpr, _ = roc_curve(positive, score)
    flagged = score >= threshold
    per_fault = {labels[k]: round(float(flagged[y == k].mean()), 4) for k in range(1, len(labels)) if np.any(y == k)}
    report: dict[str, object] = {
        "auc": round(auc(fpr, tpr), 4),
        "false_positive_rate": round(float(flagged[y == 0].mean()), 4),
        "true_positive_rate": round(float(flagged[y != 0].mean()), 4),
        "accuracy": round(float(np.mean(flagged == (y != 0))), 4),
        "detection_rate": per_fault,
        "normal_score_median": float(np.median(score[y == 0])),
        "fault_score_median": float(np.median(score[y != 0])),
    }
    return AnomalyEval(report, fpr, tpr)
