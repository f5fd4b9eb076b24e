"""The generic runner on real TFLM (and LiteRT, forced): the two MLCommons models and models built here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType

from tests.device_sdk.device_support import KWS_LABELS, sine_float_model
from tests.device_sdk.device_support import ad01_path as _ad01
from tests.device_sdk.device_support import kws_path as _kws
from tests.registry.tflite_builder import build_model
from tinyfleet.wire import EventKind, decode_events, encode_event
from tinyfleet_device.arena import search_arena
from tinyfleet_device.errors import ArenaError, ModelError
from tinyfleet_device.model_file import read_model
from tinyfleet_device.runner import ModelRunner

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kws_path() -> Path:
    return _kws()


@pytest.fixture(scope="module")
def ad01_path() -> Path:
    return _ad01()


def _relu_int8() -> bytes:
    return build_model(op=BuiltinOperator.RELU, dtype=TensorType.INT8, shape=(1, 8), quantization=(0.05, 3))


def _tanh_int8() -> bytes:
    return build_model(op=BuiltinOperator.TANH, dtype=TensorType.INT8, shape=(1, 4), quantization=(1 / 128, 0))


def test_kws_classifies_with_its_own_quantization(kws_path: Path) -> None:
    runner = ModelRunner.from_file(kws_path, labels=KWS_LABELS)
    assert runner.backend == "tflm"
    assert runner.kind == "classification"
    assert runner.input_shape == (1, 49, 10, 1)
    assert runner.input_dtype is np.int8
    assert runner.output_shape == (1, 12)
    assert "DEPTHWISE_CONV_2D" in runner.ops
    # the arena search finds the smallest allocation (the registry's measurement of the same model)
    assert runner.arena_size == search_arena(kws_path.read_bytes()).arena_bytes
    with pytest.raises(ArenaError):
        ModelRunner.from_file(kws_path, arena_size=runner.arena_size - 1)
    features = np.random.default_rng(1).normal(0, 20, size=(49, 10)).astype(np.float32)  # batch dim omitted
    result = runner.infer(features)
    assert result.kind == EventKind.CLASSIFICATION
    assert result.label is not None
    assert result.label_name == KWS_LABELS[result.label]
    assert result.score == pytest.approx(float(result.values.ravel()[result.label]))
    assert result.top[0][0] == result.label
    assert [t[1] for t in result.top] == sorted((t[1] for t in result.top), reverse=True)
    assert len(result.top) == 3
    assert result.values.shape == (1, 12)
    assert float(result.values.sum()) == pytest.approx(1.0, abs=0.05)  # softmax output, dequantized
    assert result.latency_us > 0
    assert result.extras == {}
    # the runner's quantization is the input tensor's: a feature of (q - zp) * scale quantizes back to q
    scale, zp = runner.input.scale, runner.input.zero_point
    assert scale is not None
    q = (np.arange(490) % 256 - 128).astype(np.int64)
    assert np.array_equal(runner.input.quantize((q - zp) * scale).ravel(), q)
    assert np.allclose(runner.input.dequantize(q.astype(np.int8)), (q - zp) * scale, rtol=1e-6)
    saturated = runner.input.quantize(np.full(490, 1e6, dtype=np.float32))
    assert np.all(saturated == 127)


def test_ad01_anomaly_score_is_reconstruction_error(ad01_path: Path) -> None:
    runner = ModelRunner.from_file(ad01_path)
    assert runner.kind == "anomaly"
    assert runner.input_shape == runner.output_shape == (1, 640)
    rng = np.random.default_rng(2)
    frames = rng.normal(-20, 5, size=(4, 640)).astype(np.float32)  # four frames: four invokes, mean error
    result = runner.infer(frames)
    assert result.kind == EventKind.ANOMALY
    assert result.invocations == 4
    singles = [runner.infer(f) for f in frames]
    assert result.anomaly == pytest.approx(np.mean([s.anomaly for s in singles]), rel=1e-9)
    # recompute one frame's error by hand from the tensors' quantization
    one = singles[0]
    seen = runner.input.dequantize(runner.input.quantize(frames[0]))
    assert one.anomaly == pytest.approx(float(np.mean((seen.astype(np.float64) - one.values.astype(np.float64)) ** 2)))
    assert one.label is None
    assert one.score is None
    # a frame far off the training distribution reconstructs worse
    far = runner.infer(rng.normal(-20, 40, size=640).astype(np.float32))
    assert far.anomaly is not None
    assert one.anomaly is not None
    assert far.anomaly > one.anomaly


def test_built_int8_models_need_no_model_specific_code() -> None:
    relu = ModelRunner.from_bytes(_relu_int8())
    assert relu.kind == "anomaly"  # output shape == input shape
    positive = relu.infer(np.linspace(0.1, 5.0, 8, dtype=np.float32))
    negative = relu.infer(-np.linspace(0.1, 5.0, 8, dtype=np.float32))
    assert positive.anomaly is not None
    assert negative.anomaly is not None
    assert positive.anomaly < 0.05**2  # ReLU reproduces positives up to the quantization step
    assert negative.anomaly == pytest.approx(float(np.mean(np.linspace(0.1, 5.0, 8) ** 2)), rel=0.05)

    # the same file with as many label names as outputs is a classifier (scores: softmax of the outputs)
    classes = ModelRunner.from_bytes(_relu_int8(), labels=list("abcdefgh"), top_k=2)
    assert classes.kind == "classification"
    result = classes.infer(np.array([0.1, -0.3, 2.45, 0.0, 1.0, 0.2, 0.3, 0.4], dtype=np.float32))
    assert result.label == 2
    assert result.label_name == "c"
    assert [t[0] for t in result.top] == [2, 4]
    assert result.score is not None
    assert 0.0 < result.score < 1.0

    with pytest.raises(ModelError, match="3 label names"):
        ModelRunner.from_bytes(_relu_int8(), labels=["a", "b", "c"])


def test_float_model_is_regression() -> None:
    runner = ModelRunner.from_bytes(sine_float_model())
    assert runner.kind == "regression"
    assert runner.input.quantized is False
    result = runner.infer(np.array([1.0], dtype=np.float32))
    assert result.kind == EventKind.REGRESSION
    assert float(result.values.ravel()[0]) == pytest.approx(np.sin(1.0), abs=0.1)
    event = runner.event(result, seq=0, boot=1, model="sine")
    assert event.val is not None
    assert event.val[0] == pytest.approx(float(result.values.ravel()[0]))


def test_events_are_valid_v1_events(kws_path: Path, ad01_path: Path) -> None:
    for runner in (ModelRunner.from_file(kws_path), ModelRunner.from_file(ad01_path)):
        result = runner.self_test()
        event = runner.event(result, seq=7, boot=2, model="m", mver=3, ts=1_790_000_000_000)
        for fmt in ("cbor", "json"):
            decoded = decode_events(encode_event(event, fmt=fmt)).events[0]  # type: ignore[arg-type]
            assert decoded.seq == 7
            assert decoded.boot == 2
            assert decoded.kind == result.kind
            assert decoded.lat == result.latency_us
            assert decoded.x is None
        if result.kind == EventKind.ANOMALY:
            assert event.anom == result.anomaly
        else:
            assert event.label == result.label
            assert event.top == result.top


def test_bad_inputs_are_clear_errors(kws_path: Path, tmp_path: Path) -> None:
    runner = ModelRunner.from_file(kws_path)
    with pytest.raises(ModelError, match="do not fit the model input"):
        runner.infer(np.zeros(17, dtype=np.float32))
    with pytest.raises(ModelError, match="not a TFLite model"):
        ModelRunner.from_bytes(b"not a model at all")
    with pytest.raises(ModelError, match="cannot read the model file"):
        ModelRunner.from_file(tmp_path / "missing.tflite")
    with pytest.raises(ArenaError, match="GELU"):
        ModelRunner.from_bytes(build_model(op=BuiltinOperator.GELU, dtype=TensorType.INT8, quantization=(0.1, 0)))
    with pytest.raises(ModelError, match="unknown interpreter backend"):
        ModelRunner.from_file(kws_path, backend="gpu")


@pytest.mark.parametrize("model", ["kws", "ad01", "relu", "tanh"])
def test_tflm_and_litert_agree(model: str, kws_path: Path, ad01_path: Path) -> None:
    data = {
        "kws": kws_path.read_bytes(),
        "ad01": ad01_path.read_bytes(),
        "relu": _relu_int8(),
        "tanh": _tanh_int8(),
    }[model]
    tflm = ModelRunner.from_bytes(data, backend="tflm")
    litert = ModelRunner.from_bytes(data, backend="litert")
    assert litert.backend == "litert"
    assert litert.kind == tflm.kind
    step = tflm.output.scale or 0.0
    rng = np.random.default_rng(3)
    spread = {"kws": 20.0, "ad01": 10.0, "relu": 2.0, "tanh": 0.5}[model]
    for _ in range(5):
        features = rng.normal(0, spread, size=tflm.input_shape).astype(np.float32)
        a, b = tflm.infer(features), litert.infer(features)
        assert np.max(np.abs(a.values - b.values)) <= 1.01 * step  # at most one quantization step apart
        assert a.label == b.label
        if a.anomaly is not None:
            assert b.anomaly == pytest.approx(a.anomaly, rel=0.02)
        assert b.extras == {"runtime": "litert"}
        assert litert.event(b, seq=0, boot=0, model="m").x == {"runtime": "litert"}


def test_falls_back_to_litert_where_tflite_micro_is_missing(kws_path: Path) -> None:
    """A process where `import tflite_micro` fails (as on a machine without its wheel)."""
    code = (
        "import sys; sys.modules['tflite_micro'] = None\n"
        "import logging; logging.basicConfig(level=logging.WARNING)\n"
        "import numpy as np\n"
        "from tinyfleet_device.runner import ModelRunner, available_backends\n"
        "assert available_backends() == ['litert'], available_backends()\n"
        f"r = ModelRunner.from_file({str(kws_path)!r})\n"
        "res = r.infer(np.zeros(r.input_shape, dtype=np.float32))\n"
        "print(r.backend, r.event(res, seq=0, boot=0, model='kws').x)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "litert {'runtime': 'litert'}"
    assert "tflite-micro cannot be imported here" in done.stderr


def test_model_file_reads_tensors(kws_path: Path) -> None:
    info = read_model(kws_path.read_bytes())
    assert len(info.inputs) == 1
    assert info.inputs[0].scale == pytest.approx(0.5847029)
    assert info.inputs[0].zero_point == 83
    assert info.outputs[0].scale == pytest.approx(1 / 256)
    assert info.outputs[0].zero_point == -128
