"""Inspection with the TFLite flatbuffer schema: the MLCommons models as their README describes them, small
built models for float / custom ops / metadata, and every kind of broken file refused with a clear error."""

from __future__ import annotations

import io
import itertools
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType

from tests.registry.conftest import KWS_LABELS, sine_float_model
from tests.registry.tflite_builder import build_empty_model, build_model
from tinyfleet.registry.errors import ModelInspectionError
from tinyfleet.registry.inspect import inspect_model, sha256_hex


def test_ad01_autoencoder(ad01_bytes: bytes) -> None:
    info = inspect_model(ad01_bytes)
    assert info.size == 276_976
    assert info.sha256 == sha256_hex(ad01_bytes)
    assert len(info.sha256) == 64
    assert info.schema_version == 3
    assert info.precision == "int8"
    assert [(op.name, op.count, op.custom) for op in info.ops] == [("FULLY_CONNECTED", 10, False)]
    assert info.operators == 10
    assert info.subgraphs == 1
    (inp,) = info.inputs
    (out,) = info.outputs
    assert (inp.dtype, inp.shape, inp.shape_signature) == ("int8", [1, 640], [-1, 640])
    assert (out.dtype, out.shape) == ("int8", [1, 640])
    assert inp.quantization is not None
    assert out.quantization is not None
    assert inp.quantization.scale == [pytest.approx(0.391, abs=5e-4)]
    assert inp.quantization.zero_point == [89]
    assert out.quantization.scale == [pytest.approx(0.3645, abs=5e-4)]
    assert out.quantization.zero_point == [96]
    # 10 dense layers of a 640-128-128-128-128-8-128-128-128-128-640 autoencoder: weights + biases
    dims = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    assert info.parameters == sum(a * b + b for a, b in itertools.pairwise(dims))
    assert info.min_runtime_version == "1.5.0"
    assert info.embedded_labels is None


def test_kws_ds_cnn(kws_bytes: bytes) -> None:
    info = inspect_model(kws_bytes)
    assert info.size == 53_936
    assert info.precision == "int8"
    assert {op.name: op.count for op in info.ops} == {
        "CONV_2D": 5,
        "DEPTHWISE_CONV_2D": 4,
        "AVERAGE_POOL_2D": 1,
        "FULLY_CONNECTED": 1,
        "RESHAPE": 1,
        "SOFTMAX": 1,
    }
    (inp,) = info.inputs
    (out,) = info.outputs
    assert (inp.dtype, inp.shape) == ("int8", [1, 49, 10, 1])
    assert inp.quantization is not None
    assert inp.quantization.scale == [pytest.approx(0.5847, abs=1e-4)]
    assert inp.quantization.zero_point == [83]
    assert (out.dtype, out.shape) == ("int8", [1, 12])
    assert out.quantization is not None
    assert out.quantization.scale == [1 / 256]
    assert out.quantization.zero_point == [-128]
    assert info.class_count() == len(KWS_LABELS)
    assert 20_000 < info.parameters < 30_000
    assert info.weight_bytes > info.parameters  # int32 biases take 4 bytes each


def test_float_model_is_float() -> None:
    info = inspect_model(sine_float_model())
    assert info.precision == "float"
    assert info.inputs[0].dtype == "float32"
    assert info.inputs[0].quantization is None
    assert {op.name for op in info.ops} == {"FULLY_CONNECTED"}
    assert info.parameters > 0


def test_mixed_precision_and_custom_op_and_metadata() -> None:
    # A QUANTIZE op from float to int8: float and quantized tensors in one model.
    quantize = build_model(
        op=BuiltinOperator.QUANTIZE, dtype=TensorType.FLOAT32, output_dtype=TensorType.INT8, quantization=(0.1, 0)
    )
    mixed = inspect_model(quantize)
    assert mixed.precision == "mixed"
    assert [t.dtype for t in (*mixed.inputs, *mixed.outputs)] == ["float32", "int8"]
    custom = build_model(op="TinyfleetNoSuchOp", metadata={"min_runtime_version": b"2.3.0\0\0\0", "blob": b"\x00\xff"})
    info = inspect_model(custom)
    assert [(op.name, op.custom) for op in info.ops] == [("TinyfleetNoSuchOp", True)]
    assert info.min_runtime_version == "2.3.0"
    assert [(m.name, m.size, m.value) for m in info.metadata] == [
        ("min_runtime_version", 8, "2.3.0"),
        ("blob", 2, None),  # binary: size only
    ]
    quantized = build_model(dtype=TensorType.INT8, shape=(1, 3), quantization=(0.5, 3))
    q = inspect_model(quantized)
    assert q.precision == "int8"
    assert q.outputs[0].quantization is not None
    assert q.outputs[0].quantization.zero_point == [3]


def test_labels_packed_with_the_model(kws_bytes: bytes) -> None:
    """TFLite Support's MetadataPopulator appends a zip of associated files; a label file there is read."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("labels.txt", "\n".join(KWS_LABELS) + "\n")
    info = inspect_model(kws_bytes + archive.getvalue())
    assert info.embedded_labels == KWS_LABELS
    assert info.inputs[0].shape == [1, 49, 10, 1]  # the flatbuffer is read as before


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"", "empty file"),
        (b"TFL3", "only 4 bytes"),
        (b"<!DOCTYPE html><html><body>Not Found</body></html>", "HTML"),
        (b'{"error": "not found"}', "JSON"),
        (b"PK\x03\x04" + bytes(100), "zip"),
        (b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5"),
        (bytes(range(256)) * 4, "identifier"),
        (build_empty_model(), "no subgraph"),
        (b"\xff\xff\xff\x7fTFL3" + bytes(64), "outside"),
    ],
)
def test_not_a_model_is_refused_clearly(data: bytes, words: str) -> None:
    with pytest.raises(ModelInspectionError) as caught:
        inspect_model(data)
    assert words in caught.value.message
    assert "Traceback" not in caught.value.message


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.25, 0.5, 0.9])
def test_truncated_model_is_refused(kws_bytes: bytes, fraction: float) -> None:
    with pytest.raises(ModelInspectionError, match=r"truncated|damaged"):
        inspect_model(kws_bytes[: int(len(kws_bytes) * fraction)])


def test_wrong_identifier_is_refused(kws_bytes: bytes) -> None:
    with pytest.raises(ModelInspectionError, match="identifier at bytes 4-8 is b'TFL2'"):
        inspect_model(kws_bytes[:4] + b"TFL2" + kws_bytes[8:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_damaged_models_never_escape_as_other_exceptions(kws_bytes: bytes, data: st.DataObject) -> None:
    """Flipped bytes anywhere (header and tables included): a description or ModelInspectionError, nothing else."""
    damaged = bytearray(kws_bytes)
    positions = data.draw(st.lists(st.integers(0, len(kws_bytes) - 1), min_size=1, max_size=40))
    for position in positions:
        damaged[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(8, len(kws_bytes)))
    message: str | None
    try:
        info = inspect_model(bytes(damaged[:cut]))
    except ModelInspectionError as exc:
        message = exc.message
    else:
        message = None
        assert info.size == cut
    assert message is None or (message and "Traceback" not in message)
