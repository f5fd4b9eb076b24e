"""Classification and detection metrics (numpy): confusion matrix, per-class precision/recall/F1, ROC, AUC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

__all__ = ["auc", "classification_report", "confusion", "roc_curve"]


def confusion(y_true: NDArray[np.integer], y_pred: NDArray[np.integer], n_classes: int) -> NDArray[np.int64]:
    """``m[i, j]``: rows of true class ``i`` predicted as ``j``."""
    m = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return m


def classification_report(y_true: NDArray[np.integer], y_pred: NDArray[np.integer],
                          labels: Sequence[str]) -> dict[str, object]:
    m = confusion(y_true, y_pred, len(labels))
    tp = np.diag(m).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(m.sum(0) > 0, tp / m.sum(0), 0.0)
        recall = np.where(m.sum(1) > 0, tp / m.sum(1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "accuracy": round(float(tp.sum() / max(m.sum(), 1)), 4),
        "macro_f1": round(float(f1.mean()), 4),
        "per_class": {label: {"precision": round(float(precision[i]), 4), "recall": round(float(recall[i]), 4),
                              "f1": round(float(f1[i]), 4), "support": int(m[i].sum())}
                      for i, label in enumerate(labels)},
        "confusion": m.tolist(),
    }


def roc_curve(y_true: NDArray[np.integer], score: NDArray[np.floating]) -> tuple[NDArray[np.float64],
                                                                                  NDArray[np.float64],
                                                                                  NDArray[np.float64]]:
    """False-positive rates, true-positive rates and thresholds (``score ≥ threshold`` is positive), from the
    highest threshold down; ties in ``score`` form one step."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype=np.float64)
    if y.all() or not y.any():
        raise ValueError("a ROC curve needs positives and negatives")
    order = np.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each distinct score
    tps = np.cumsum(y)[last]
    fps = (last + 1) - tps
    tpr = np.r_[0.0, tps / y.sum()]
    fpr = np.r_[0.0, fps / (~y).sum()]
    return fpr, tpr, np.r_[np.inf, s[last]]


def auc(fpr: NDArray[np.float64], tpr: NDArray[np.float64]) -> float:
    """Area under a ROC curve (trapezoids)."""
    return float(np.trapezoid(tpr, fpr))
