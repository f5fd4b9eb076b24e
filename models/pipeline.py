"""``python -m models build [--quick]``: data → features → train → int8 / prune → evaluate in TFLM → cards.

Outputs in ``out`` (default ``models/artifacts``; ``--quick`` defaults to ``models/build/quick``):
``vib-cls.tflite`` + ``vib-cls.card.json`` + ``vib-cls.confusion.png``, ``vib-cls-pruned.tflite``,
``vib-ad.tflite`` + ``vib-ad.card.json`` + ``vib-ad.roc.png``. Generated datasets are cached in ``models/data``
(never committed). The last line printed is one JSON object with the headline figures (``"bench": "models"``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.dataset import LABELS, Dataset, GenerationSpec, generate, merge
from models.recordings import load_recordings
from tinyfleet_device.features import FEATURES

__all__ = ["FULL", "QUICK", "Mode", "build"]

ROOT = Path(__file__).resolve().parent
CARD_VERSION = 1
REPRESENTATIVE_ROWS = 400
THRESHOLD_QUANTILE = 0.99


@dataclass(frozen=True, slots=True)
class Mode:
    name: str
    data: GenerationSpec
    train: Any  # models.train.TrainSpec (imported lazily: TensorFlow)
    out: Path


def _modes() -> tuple[Mode, Mode]:
    from models.train import TrainSpec

    full = Mode("full", GenerationSpec(), TrainSpec(), ROOT / "artifacts")
    quick = Mode("quick", GenerationSpec(n_machines=15, windows_per_class=10), TrainSpec(cls_epochs=12, ad_epochs=25,
                                                                                         prune_epochs=4),
                 ROOT / "build" / "quick")
    return full, quick


FULL, QUICK = "full", "quick"


@dataclass(slots=True)
class Log:
    echo: Callable[[str], None] = print
    started: float = field(default_factory=time.perf_counter)

    def __call__(self, message: str) -> None:
        self.echo(f"[{time.perf_counter() - self.started:6.1f}s] {message}")
        sys.stdout.flush()


def _dataset(spec: GenerationSpec, data_dir: Path, log: Log) -> Dataset:
    key = hashlib.sha256(json.dumps(spec.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
    path = data_dir / f"sim-{key}.npz"
    if path.exists():
        log(f"dataset: cached {path.name}")
        d = Dataset.load(path)
    else:
        log(f"dataset: generating {spec.n_machines} machines × {len(LABELS)} classes × "
            f"{spec.windows_per_class} windows")
        d = generate(spec)
        d.save(path)
    d.info = {"generated": spec.as_dict()}
    return d


def _tensor(spec: Any) -> dict[str, Any]:
    q = spec.quantization
    return {"name": spec.name, "shape": spec.shape, "dtype": spec.dtype,
            "scale": q.scale[0] if q and len(q.scale) == 1 else None,
            "zero_point": q.zero_point[0] if q and len(q.zero_point) == 1 else None}


def _inspect(data: bytes) -> dict[str, Any]:
    """What the registry's inspection says of the file (the arena comes from the TFLM runs)."""
    from tinyfleet.registry.inspect import inspect_model

    i = inspect_model(data)
    return {"sha256": i.sha256, "size": i.size, "precision": i.precision, "parameters": i.parameters,
            "ops": {op.name: op.count for op in i.ops}, "input": _tensor(i.inputs[0]), "output": _tensor(i.outputs[0])}


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=1, sort_keys=False) + "\n", encoding="utf-8")


def build(mode_name: str = FULL, *, out: Path | None = None, data_dir: Path | None = None,
          recordings: Sequence[Path] = (), echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole pipeline; returns the summary (also printed as the last line, JSON)."""
    from models import convert, evaluate, plots, train
    from models.tf_setup import versions

    full, quick = _modes()
    mode = full if mode_name == FULL else quick
    out = out or mode.out
    out.mkdir(parents=True, exist_ok=True)
    data_dir = data_dir or ROOT / "data"
    log = Log(echo)

    # ------------------------------------------------------------------------------------------------ data
    parts = [_dataset(mode.data, data_dir, log)]
    if recordings:
        rec = load_recordings(recordings, split_fractions=mode.data.split_fractions)
        log(f"dataset: {len(rec)} recorded windows from {rec.info.get('recordings', 0)} file(s)")
        parts.append(rec)
    data = merge(parts)
    tr, va, te = data.part("train"), data.part("val"), data.part("test")
    log(f"dataset: train {len(tr)}, val {len(va)}, test {len(te)} windows (split by machine / recording)")
    labels = list(LABELS)
    tspec = mode.train
    norm = train.Standardizer.fit(tr.x)
    rng = np.random.default_rng(tspec.seed)
    representative = tr.x[rng.permutation(len(tr))[:REPRESENTATIVE_ROWS]]
    features = FEATURES["vib-fft"].card()
    pkgs = versions()
    dataset_card = {"source": "tinyfleet_device.sensors.vibration (random machines)" +
                    (" + recordings" if recordings else ""), "generation": mode.data.as_dict(),
                    "counts": data.counts(), "recorded_windows": int(sum(len(p) for p in parts[1:])),
                    "split": "by machine (train/val/test machines disjoint); recordings by file"}

    # ---------------------------------------------------------------------------------------- classifier
    log("vib-cls: training")
    cls_model, cls_hist = train.train_classifier(tr.x, tr.y, va.x, va.y, norm, len(labels), tspec)
    cls_export = train.export_classifier(cls_model, norm)
    float_probs = cls_export.predict(te.x, verbose=0, batch_size=512)
    cls_float_bytes = convert.to_float(cls_export)
    cls_int8 = convert.to_int8(cls_export, representative)
    log("vib-cls: pruning")
    pruned_model = train.prune_classifier(cls_model, tr.x, tr.y, norm, tspec)
    sparsity = train.kernel_sparsity(pruned_model)
    pruned_export = train.export_classifier(pruned_model, norm)
    pruned_float_probs = pruned_export.predict(te.x, verbose=0, batch_size=512)
    pruned_int8 = convert.to_int8(pruned_export, representative)

    (out / "vib-cls.tflite").write_bytes(cls_int8)
    (out / "vib-cls.float.tflite").write_bytes(cls_float_bytes)
    (out / "vib-cls-pruned.tflite").write_bytes(pruned_int8)
    log("vib-cls: evaluating float vs int8 in TFLM")
    cls_q = evaluate.run_tflm(cls_int8, te.x, labels=labels)
    pruned_q = evaluate.run_tflm(pruned_int8, te.x, labels=labels)
    rep_float = evaluate.classifier_eval(te.y, float_probs, labels)
    rep_int8 = evaluate.classifier_eval(te.y, cls_q.values, labels)
    rep_pruned_float = evaluate.classifier_eval(te.y, pruned_float_probs, labels)
    rep_pruned = evaluate.classifier_eval(te.y, pruned_q.values, labels)
    cls_info = _inspect(cls_int8)
    plots.confusion_png(out / "vib-cls.confusion.png",
                        {f"float (acc {rep_float['accuracy']:.3f})": np.asarray(rep_float["confusion"]),
                         f"int8 in TFLM (acc {rep_int8['accuracy']:.3f})": np.asarray(rep_int8["confusion"])},
                        labels)
    drop = round(100 * (float(rep_float["accuracy"]) - float(rep_int8["accuracy"])), 2)  # type: ignore[arg-type]
    cls_card: dict[str, Any] = {
        "name": "vib-cls", "version": CARD_VERSION, "kind": "classification", "task": "classification",
        "description": "Fault class of a rotating machine from one 0.32 s 3-axis vibration window",
        "labels": labels, "features": features, "file": "vib-cls.tflite", "float_file": "vib-cls.float.tflite",
        "sha256": cls_info["sha256"], "precision": cls_info["precision"], "parameters": cls_info["parameters"],
        "ops": cls_info["ops"], "input": cls_info["input"], "output": cls_info["output"],
        "size": {"float_bytes": len(cls_float_bytes), "int8_bytes": len(cls_int8),
                 "int8_ratio": round(len(cls_int8) / len(cls_float_bytes), 4)},
        "arena_bytes": cls_q.arena_bytes,
        "accuracy": rep_int8["accuracy"],
        "metrics": {"split": "test", "float": rep_float, "int8_tflm": rep_int8, "accuracy_drop_points": drop},
        "latency_us": {**evaluate.latency_summary(cls_q.latency_us),
                       "where": "TFLM reference kernels, Python host (x86_64), invoke only"},
        "pruning": {
            "file": "vib-cls-pruned.tflite", "method": "tfmot prune_low_magnitude, polynomial decay, strip, int8",
            "target_sparsity": tspec.target_sparsity, "kernel_sparsity": round(sparsity, 4),
            "int8_bytes": len(pruned_int8), "int8_gzip_bytes": convert.gzip_size(pruned_int8),
            "dense_int8_gzip_bytes": convert.gzip_size(cls_int8),
            "float_accuracy": rep_pruned_float["accuracy"], "int8_accuracy": rep_pruned["accuracy"],
            "int8_macro_f1": rep_pruned["macro_f1"], "sha256": _inspect(pruned_int8)["sha256"],
            "arena_bytes": pruned_q.arena_bytes,
        },
        "dataset": dataset_card, "training": {**tspec.as_dict(), "final": cls_hist},
        "seeds": {"data": mode.data.seed, "train": tspec.seed}, "packages": pkgs, "mode": mode.name,
    }  # fmt: skip
    _write_json(out / "vib-cls.card.json", cls_card)

    # --------------------------------------------------------------------------------------- autoencoder
    log("vib-ad: training on normal windows")
    normal_tr, normal_va = tr.x[tr.y == 0], va.x[va.y == 0]
    ad_model, ad_hist = train.train_autoencoder(normal_tr, normal_va, norm, tspec)
    ad_export = train.export_autoencoder(ad_model, norm)
    ad_float_bytes = convert.to_float(ad_export)
    # calibrate on every class: faulty inputs must not saturate the int8 input (their error would be clipped)
    ad_int8 = convert.to_int8(ad_export, representative)

    def float_scores(x: np.ndarray) -> np.ndarray:
        recon = ad_export.predict(x, verbose=0, batch_size=512)
        out: np.ndarray = np.mean((x.astype(np.float64) - recon) ** 2, axis=1)
        return out

    log("vib-ad: threshold on validation normals, evaluating float vs int8 in TFLM")
    thr_float = float(np.quantile(float_scores(normal_va), THRESHOLD_QUANTILE))
    both = evaluate.run_tflm(ad_int8, np.concatenate([normal_va, te.x]))  # one interpreter for both
    assert both.anomaly is not None
    threshold = float(np.quantile(both.anomaly[: len(normal_va)], THRESHOLD_QUANTILE))
    te_q = evaluate.Tflm(both.values[len(normal_va) :], both.anomaly[len(normal_va) :],
                         both.latency_us[len(normal_va) :], both.arena_bytes, both.backend)
    assert te_q.anomaly is not None
    ad_float = evaluate.anomaly_eval(te.y, float_scores(te.x), thr_float, labels)
    ad_q = evaluate.anomaly_eval(te.y, te_q.anomaly, threshold, labels)
    ad_info = _inspect(ad_int8)
    (out / "vib-ad.tflite").write_bytes(ad_int8)
    (out / "vib-ad.float.tflite").write_bytes(ad_float_bytes)
    plots.roc_png(out / "vib-ad.roc.png",
                  {"float": (ad_float.fpr, ad_float.tpr, float(ad_float.report["auc"])),  # type: ignore[arg-type]
                   "int8 in TFLM": (ad_q.fpr, ad_q.tpr, float(ad_q.report["auc"]))},  # type: ignore[arg-type]
                  {"int8 at threshold": (float(ad_q.report["false_positive_rate"]),  # type: ignore[arg-type]
                                         float(ad_q.report["true_positive_rate"]))})  # type: ignore[arg-type]
    ad_card: dict[str, Any] = {
        "name": "vib-ad", "version": CARD_VERSION, "kind": "anomaly", "task": "anomaly-detection",
        "description": "Autoencoder of normal vib-fft windows; anomaly = mean squared reconstruction error",
        "labels": ["normal", "anomalous"], "features": features,
        "file": "vib-ad.tflite", "float_file": "vib-ad.float.tflite",
        "threshold": round(threshold, 6),
        "threshold_rule": f"{THRESHOLD_QUANTILE:.0%} quantile of the int8-in-TFLM scores of the validation "
                          "machines' normal windows (≈1 % false alarms); anomaly ≥ threshold is anomalous",
        "score": "mean((dequantized input − dequantized output)²) over the 105 features (ModelRunner.anomaly)",
        "float_threshold": round(thr_float, 6),
        "sha256": ad_info["sha256"], "precision": ad_info["precision"], "parameters": ad_info["parameters"],
        "ops": ad_info["ops"], "input": ad_info["input"], "output": ad_info["output"],
        "size": {"float_bytes": len(ad_float_bytes), "int8_bytes": len(ad_int8),
                 "int8_ratio": round(len(ad_int8) / len(ad_float_bytes), 4)},
        "arena_bytes": te_q.arena_bytes,
        "accuracy": ad_q.report["accuracy"],
        "metrics": {"split": "test", "float": ad_float.report, "int8_tflm": ad_q.report,
                    "auc_drop": round(float(ad_float.report["auc"]) - float(ad_q.report["auc"]), 4)},  # type: ignore[arg-type]
        "latency_us": {**evaluate.latency_summary(te_q.latency_us),
                       "where": "TFLM reference kernels, Python host (x86_64), invoke only"},
        "sparsity": 0.0,
        "dataset": {**dataset_card, "trained_on": "normal windows of the training machines only",
                    "calibrated_on": "windows of every class (int8 input/activation ranges)"},
        "training": {**tspec.as_dict(), "final": ad_hist},
        "seeds": {"data": mode.data.seed, "train": tspec.seed + 1}, "packages": pkgs, "mode": mode.name,
    }  # fmt: skip
    _write_json(out / "vib-ad.card.json", ad_card)
    cls_card["sparsity"] = 0.0
    _write_json(out / "vib-cls.card.json", cls_card)

    summary = {
        "bench": "models", "mode": mode.name,
        "cls_float_bytes": len(cls_float_bytes), "cls_int8_bytes": len(cls_int8),
        "cls_int8_ratio": cls_card["size"]["int8_ratio"],
        "cls_float_acc": rep_float["accuracy"], "cls_int8_acc": rep_int8["accuracy"], "cls_acc_drop_pts": drop,
        "cls_int8_macro_f1": rep_int8["macro_f1"], "cls_arena_bytes": cls_q.arena_bytes,
        "cls_latency_us": cls_card["latency_us"]["median"],
        "pruned_sparsity": round(sparsity, 4), "pruned_int8_acc": rep_pruned["accuracy"],
        "pruned_int8_gzip_bytes": cls_card["pruning"]["int8_gzip_bytes"],
        "dense_int8_gzip_bytes": cls_card["pruning"]["dense_int8_gzip_bytes"],
        "ad_float_bytes": len(ad_float_bytes), "ad_int8_bytes": len(ad_int8),
        "ad_int8_ratio": ad_card["size"]["int8_ratio"], "ad_float_auc": ad_float.report["auc"],
        "ad_int8_auc": ad_q.report["auc"], "ad_int8_tpr": ad_q.report["true_positive_rate"],
        "ad_int8_fpr": ad_q.report["false_positive_rate"], "ad_arena_bytes": te_q.arena_bytes,
        "ad_latency_us": ad_card["latency_us"]["median"],
        "seconds": round(time.perf_counter() - log.started, 1),
    }  # fmt: skip
    log(f"vib-cls: float {len(cls_float_bytes)} B → int8 {len(cls_int8)} B ({cls_card['size']['int8_ratio']:.0%}); "
        f"accuracy float {rep_float['accuracy']:.4f}, int8 in TFLM {rep_int8['accuracy']:.4f} "
        f"(drop {drop:+.2f} points)")
    log(f"vib-cls pruned: sparsity {sparsity:.0%}, int8 {len(pruned_int8)} B, gzip {summary['pruned_int8_gzip_bytes']}"
        f" B (dense gzip {summary['dense_int8_gzip_bytes']} B), int8 accuracy {rep_pruned['accuracy']:.4f}")
    log(f"vib-ad: float {len(ad_float_bytes)} B → int8 {len(ad_int8)} B ({ad_card['size']['int8_ratio']:.0%}); "
        f"AUC float {ad_float.report['auc']:.4f}, int8 {ad_q.report['auc']:.4f}; at threshold {threshold:.4g}: "
        f"TPR {ad_q.report['true_positive_rate']:.3f}, FPR {ad_q.report['false_positive_rate']:.3f}")
    echo(json.dumps(summary))
    sys.stdout.flush()
    return summary
