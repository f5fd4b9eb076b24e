"""The committed models (models/artifacts) in the real TFLM interpreter, through the device's own runner, on
fresh simulator windows (machines and seeds the pipeline never saw)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from models.dataset import LABELS, Dataset, GenerationSpec, generate
from models.metrics import auc, classification_report, roc_curve
from tinyfleet_device.features import get_pipeline
from tinyfleet_device.runner import ModelRunner

ARTIFACTS = Path(__file__).resolve().parents[2] / "models" / "artifacts"
# 12 new machines, severities 0.5–1.5 ("clearly faulty"; the training data goes down to 0.25)
FRESH = GenerationSpec(n_machines=12, windows_per_class=10, severity_range=(0.5, 1.5), seed=424242)


def card(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((ARTIFACTS / f"{name}.card.json").read_text())
    return data


@pytest.fixture(scope="module")
def fresh() -> Dataset:
    return generate(FRESH)


def run(path: Path, x: np.ndarray, **kw: Any) -> tuple[ModelRunner, list[Any]]:
    runner = ModelRunner.from_file(path, **kw)
    assert runner.backend == "tflm"
    return runner, [runner.infer(row) for row in x]


@pytest.mark.parametrize("name", ["vib-cls", "vib-ad"])
def test_cards_describe_their_files(name: str) -> None:
    c = card(name)
    data = (ARTIFACTS / c["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == c["sha256"]
    assert c["size"]["int8_bytes"] == len(data)
    assert c["size"]["float_bytes"] == (ARTIFACTS / c["float_file"]).stat().st_size
    assert c["size"]["int8_ratio"] <= 0.30  # the target: int8 at most 30 % of float
    assert c["input"]["dtype"] == "int8"
    assert c["output"]["dtype"] == "int8"
    assert c["precision"] == "int8"
    assert c["features"]["name"] == "vib-fft"
    assert get_pipeline(c["features"]["name"]).output_size == c["input"]["shape"][-1]
    assert c["mode"] == "full"
    assert c["packages"]["tensorflow"]
    assert c["seeds"]
    assert c["arena_bytes"] == ModelRunner.from_bytes(data).arena_size


def test_classifier_int8_matches_float_and_beats_chance_on_every_class(fresh: Dataset) -> None:
    c = card("vib-cls")
    assert c["labels"] == list(LABELS)
    assert abs(c["metrics"]["accuracy_drop_points"]) <= 1.0  # on the pipeline's held-out test machines
    runner, q = run(ARTIFACTS / c["file"], fresh.x, labels=c["labels"])
    _, f = run(ARTIFACTS / c["float_file"], fresh.x, labels=c["labels"])
    assert runner.kind == "classification"
    pred_q = np.array([r.label for r in q])
    pred_f = np.array([r.label for r in f])
    rep_q = classification_report(fresh.y, pred_q, LABELS)
    rep_f = classification_report(fresh.y, pred_f, LABELS)
    acc_q, acc_f = float(rep_q["accuracy"]), float(rep_f["accuracy"])  # type: ignore[arg-type]
    assert abs(acc_f - acc_q) <= 0.01, (acc_f, acc_q)  # int8 in TFLM within 1 point of float, fresh machines
    per = rep_q["per_class"]
    assert isinstance(per, dict)
    for label in LABELS:
        assert per[label]["recall"] >= 0.7, (label, per[label])  # chance is 0.25
    assert acc_q >= 0.85


def test_anomaly_model_flags_faults_at_its_threshold(fresh: Dataset) -> None:
    c = card("vib-ad")
    runner, q = run(ARTIFACTS / c["file"], fresh.x)
    assert runner.kind == "anomaly"
    score = np.array([r.anomaly for r in q])
    fpr, tpr, _ = roc_curve((fresh.y != 0).astype(int), score)
    assert auc(fpr, tpr) >= 0.9
    threshold = c["threshold"]
    normal, faulty = score[fresh.y == 0], score[fresh.y != 0]
    assert np.mean(normal >= threshold) <= 0.1  # false alarms on machines it never saw
    for k in range(1, len(LABELS)):
        assert np.mean(score[fresh.y == k] >= threshold) >= 0.6, LABELS[k]
    assert np.median(faulty) > threshold > np.median(normal)
    _, f = run(ARTIFACTS / c["float_file"], fresh.x)
    fscore = np.array([r.anomaly for r in f])
    ffpr, ftpr, _ = roc_curve((fresh.y != 0).astype(int), fscore)
    assert abs(auc(ffpr, ftpr) - auc(fpr, tpr)) <= 0.01


def test_pruned_classifier_is_sparse_and_still_classifies(fresh: Dataset) -> None:
    p = card("vib-cls")["pruning"]
    assert p["kernel_sparsity"] >= 0.6
    assert p["int8_gzip_bytes"] < 0.75 * p["dense_int8_gzip_bytes"]
    _, q = run(ARTIFACTS / p["file"], fresh.x, labels=list(LABELS))
    acc = float(np.mean(np.array([r.label for r in q]) == fresh.y))
    assert acc >= 0.8
