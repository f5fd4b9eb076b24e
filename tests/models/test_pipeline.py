"""``python -m models build --quick`` (what CI can afford) against the committed full models' cards.

Tolerances, and why: the quick run uses the same architectures, features, quantization and seeds with ~1/20 of
the data (15 machines × 10 windows per class) and a fifth of the epochs, and tests on 3 machines (120
windows: one window is 0.8 points). So

* what does not depend on the data must be **equal**: labels, kind, feature pipeline and parameters, input /
  output shapes and dtypes, the ops;
* sizes within **3 %** (the same layers; only tensor names and quantization constants differ) and the int8/float
  ratio ≤ 30 % in both; arena within **15 %** (scratch buffers follow the same shapes);
* quality **not far below** the full model's: accuracy and macro-F1 ≥ full − 0.20, anomaly AUC ≥ full − 0.15
  (less data, fewer epochs, 120 test windows), and int8 within 3 points of float (2–3 windows).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "models" / "artifacts"


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("quick")
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "models", "build", "--quick", "--out", str(out), "--data-dir", str(out / "data")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    return out, summary


def cards(directory: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / f"{name}.card.json").read_text())
    return data


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("name", ["vib-cls", "vib-ad"])
def test_quick_outputs_match_the_committed_cards(quick: tuple[Path, dict[str, Any]], name: str) -> None:
    out, summary = quick
    q, full = cards(out, name), cards(ARTIFACTS, name)
    assert q["mode"] == "quick"
    assert full["mode"] == "full"
    for key in ("name", "kind", "labels", "features", "ops", "version"):
        assert q[key] == full[key], key
    for key in ("shape", "dtype"):
        assert q["input"][key] == full["input"][key]
        assert q["output"][key] == full["output"][key]
    for key in ("float_bytes", "int8_bytes"):
        assert abs(q["size"][key] - full["size"][key]) <= 0.03 * full["size"][key], key
    assert q["size"]["int8_ratio"] <= 0.30
    assert abs(q["arena_bytes"] - full["arena_bytes"]) <= 0.15 * full["arena_bytes"]
    assert (out / q["file"]).stat().st_size == q["size"]["int8_bytes"]
    if name == "vib-cls":
        for key in ("accuracy", "macro_f1"):
            assert q["metrics"]["int8_tflm"][key] >= full["metrics"]["int8_tflm"][key] - 0.20, key
        assert abs(q["metrics"]["accuracy_drop_points"]) <= 3.0
        assert summary["cls_int8_acc"] == q["metrics"]["int8_tflm"]["accuracy"]
        assert q["pruning"]["kernel_sparsity"] >= 0.6
    else:
        assert q["metrics"]["int8_tflm"]["auc"] >= full["metrics"]["int8_tflm"]["auc"] - 0.15
        assert q["threshold"] > 0
        assert summary["ad_int8_auc"] == q["metrics"]["int8_tflm"]["auc"]
    assert (out / f"{name}.card.json").exists()
    assert (out / ("vib-cls.confusion.png" if name == "vib-cls" else "vib-ad.roc.png")).read_bytes()[:4] == b"\x89PNG"
