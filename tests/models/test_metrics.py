from __future__ import annotations

import numpy as np
import pytest

from models.metrics import auc, classification_report, roc_curve


def test_report_on_a_known_confusion() -> None:
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 1, 0])
    r = classification_report(y, p, ["a", "b", "c"])
    assert r["confusion"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert r["accuracy"] == pytest.approx(4 / 6, abs=1e-4)
    per = r["per_class"]
    assert isinstance(per, dict)
    assert per["a"]["precision"] == pytest.approx(2 / 3, abs=1e-4)
    assert per["b"]["f1"] == pytest.approx(0.8, abs=1e-4)
    assert per["c"]["f1"] == 0.0


def test_roc_and_auc() -> None:
    y = np.array([0, 0, 1, 1])
    s = np.array([0.1, 0.4, 0.35, 0.8])
    fpr, tpr, thr = roc_curve(y, s)
    assert auc(fpr, tpr) == pytest.approx(0.75)  # the Mann–Whitney statistic: 3 of 4 pairs ordered
    assert fpr[0] == 0
    assert tpr[-1] == 1
    assert thr[0] == np.inf
    assert auc(*roc_curve(y, np.array([0.0, 0.0, 0.0, 0.0]))[:2]) == pytest.approx(0.5)  # ties: one step
    with pytest.raises(ValueError, match="positives and negatives"):
        roc_curve(np.array([1, 1]), np.array([0.2, 0.3]))
