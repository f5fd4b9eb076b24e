"""Small PNGs for the model cards: confusion matrices (float vs int8 in TFLM) and ROC curves (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from numpy.typing import NDArray

__all__ = ["confusion_png", "roc_png"]

_META = {"Software": None}  # no version string in the file: the same figure gives the same bytes


def confusion_png(path: Path, matrices: dict[str, NDArray[np.int64]], labels: Sequence[str]) -> None:
    fig, axes = plt.subplots(1, len(matrices), figsize=(4.2 * len(matrices), 3.9), dpi=80)
    for ax, (title, m) in zip(np.atleast_1d(axes), matrices.items(), strict=True):
        m = np.asarray(m)
        rows = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
        for i in range(m.shape[0]):
            for j in range(m.shape[1]):
                ax.text(j, i, str(m[i, j]), ha="center", va="center", fontsize=9,
                        color="white" if rows[i, j] > 0.5 else "black")
        short = [label.replace("_", "\n") for label in labels]
        ax.set_xticks(range(len(labels)), short, fontsize=8, rotation=35)
        ax.set_yticks(range(len(labels)), short, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, metadata=_META)
    plt.close(fig)


def roc_png(path: Path, curves: dict[str, tuple[NDArray[np.float64], NDArray[np.float64], float]],
            points: dict[str, tuple[float, float]]) -> None:
    fig, ax = plt.subplots(figsize=(4.2, 3.9), dpi=80)
    for name, (fpr, tpr, area) in curves.items():
        ax.plot(fpr, tpr, label=f"{name} (AUC {area:.3f})")
    for name, (x, y) in points.items():
        ax.plot([x], [y], "o", label=name)
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false positive rate (normal flagged)")
    ax.set_ylabel("true positive rate (faults flagged)")
    ax.set_title("vib-ad: normal vs faults, test machines", fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, metadata=_META)
    plt.close(fig)
