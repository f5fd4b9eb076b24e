"""Read a ``.tflite`` file with the TFLite flatbuffer schema (the ``tflite`` package) and describe it.

    info = inspect_model(data)          # raises ModelInspectionError for anything that is not a readable model

What it reports: the ops used (builtin names or custom codes, with counts), the input and output tensors of
the main subgraph (name, shape, dtype, quantization), the parameter count (elements of constant tensors), the
file size and SHA-256, the TFLite schema version, the precision (int8 / float / mixed) and the metadata
entries (``min_runtime_version`` and the like; label files packed the TFLite Support way, as a zip appended
to the flatbuffer). The arena is measured separately by :mod:`tinyfleet.registry.arena`.
"""

from __future__ import annotations

import hashlib
import io
import math
import struct
import zipfile
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field
from tflite.Model import Model
from tflite.Tensor import Tensor
from tflite.TensorType import TensorType
from tflite.utils import BUILTIN_OPCODE2NAME

from tinyfleet.registry.errors import ModelInspectionError

FILE_IDENTIFIER = b"TFL3"
#: The TFLite schema version every current converter writes (and TFLM requires).
CURRENT_SCHEMA_VERSION = 3

DTYPE_NAMES: dict[int, str] = {
    value: name.lower() for name, value in vars(TensorType).items() if not name.startswith("_")
}
_FLOAT_TYPES = frozenset({TensorType.FLOAT16, TensorType.FLOAT32, TensorType.FLOAT64})
_QUANTIZED_TYPES = frozenset({TensorType.INT8, TensorType.UINT8, TensorType.INT16, TensorType.INT4})
#: Builtin code 32 means "custom"; its name comes from the operator code's custom_code.
CUSTOM_CODE = 32
#: Metadata entries whose value is text (NUL-padded) and worth showing as such.
_TEXT_METADATA_LIMIT = 256

Precision = Literal["int8", "float", "mixed"]


class Quantization(BaseModel):
    """Affine quantization of a tensor: real = scale × (q − zero_point); one entry, or one per channel."""

    scale: list[float] = Field(examples=[[0.00390625]])
    zero_point: list[int] = Field(examples=[[-128]])
    quantized_dimension: int = 0


class TensorSpec(BaseModel):
    """An input or output tensor of the main subgraph."""

    name: str = Field(examples=["serving_default_input_1:0"])
    shape: list[int] = Field(examples=[[1, 49, 10, 1]])
    shape_signature: list[int] | None = Field(
        None, examples=[[-1, 49, 10, 1]], description="-1 for dynamic dims (usually the batch), when it differs"
    )
    dtype: str = Field(examples=["int8"])
    quantization: Quantization | None = None


class OpUsage(BaseModel):
    """One operator kind and how many times the model uses it."""

    name: str = Field(examples=["DEPTHWISE_CONV_2D"], description="Builtin op name, or the custom op's code")
    count: int = Field(examples=[4])
    custom: bool = False
    version: int = Field(1, description="Highest op version used (kernels must support it)")


class MetadataEntry(BaseModel):
    """One entry of the model's metadata table."""

    name: str = Field(examples=["min_runtime_version"])
    size: int = Field(examples=[16], description="Bytes in the buffer")
    value: str | None = Field(None, examples=["1.14.0"], description="The buffer as text, when it is short text")


class ModelInspection(BaseModel):
    """Everything read from the flatbuffer (the arena is measured separately)."""

    sha256: str = Field(
        examples=["aeea436800704fce17b17292e4412630ad856e9d777c044c64ef748a880bd0ae"], description="Hex SHA-256"
    )
    size: int = Field(examples=[53936], description="File size in bytes")
    schema_version: int = Field(examples=[3], description="TFLite schema version of the flatbuffer")
    description: str | None = Field(None, examples=["TOCO Converted."])
    precision: Precision = Field(
        examples=["int8"],
        description="int8: integer-only (no float tensors); float: no quantized tensors; mixed: both",
    )
    parameters: int = Field(examples=[24908], description="Elements of the constant tensors (weights, biases)")
    weight_bytes: int = Field(examples=[38000], description="Bytes of the constant tensors' buffers")
    subgraphs: int = Field(examples=[1])
    operators: int = Field(examples=[13], description="Operators in all subgraphs")
    ops: list[OpUsage]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metadata: list[MetadataEntry] = []
    min_runtime_version: str | None = Field(None, examples=["1.14.0"])
    embedded_labels: list[str] | None = Field(
        None, description="Labels from a label file packed with the model (TFLite Support metadata), if any"
    )
    signatures: list[str] = Field([], examples=[["serving_default"]])

    @property
    def op_names(self) -> list[str]:
        return [op.name for op in self.ops]

    def class_count(self) -> int | None:
        """The class dimension of a classifier's output: the last dim of the single output, when it has one."""
        if len(self.outputs) != 1 or not self.outputs[0].shape:
            return None
        last = self.outputs[0].shape[-1]
        return last if last > 0 else None


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def inspect_model(data: bytes) -> ModelInspection:
    """Describe a TFLite model; :class:`ModelInspectionError` with a plain reason for anything else."""
    _check_envelope(data)
    try:
        return _read(data)
    except ModelInspectionError:
        raise
    except (struct.error, IndexError) as exc:
        raise ModelInspectionError(
            f"not a valid TFLite model: truncated or damaged (an offset in the flatbuffer points past the end of "
            f"the {len(data)}-byte file)"
        ) from exc
    except Exception as exc:  # the generated reader fails in other ways too on garbage (UnicodeError, …)
        raise ModelInspectionError(
            f"not a valid TFLite model: the flatbuffer is damaged ({type(exc).__name__}: {exc})"
        ) from exc


def _check_envelope(data: bytes) -> None:
    if len(data) == 0:
        raise ModelInspectionError("empty file: a TFLite model starts with a flatbuffer with identifier 'TFL3'")
    if len(data) < 8:
        raise ModelInspectionError(f"not a TFLite model: only {len(data)} bytes (a flatbuffer header alone is 8)")
    if data[4:8] != FILE_IDENTIFIER:
        found = data[4:8]
        hint = ""
        head = data[:64].lstrip().lower()
        if head.startswith((b"<!doctype", b"<html", b"<?xml", b"{", b"[")):
            hint = " (it looks like HTML/XML/JSON text: a wrong URL or an error page?)"
        elif data[:2] == b"PK":
            hint = " (it is a zip archive)"
        elif data[:4] == b"\x89HDF":
            hint = " (it is an HDF5/Keras file: convert it with the TFLite converter first)"
        raise ModelInspectionError(
            f"not a TFLite model: the flatbuffer identifier at bytes 4-8 is {found!r}, expected {FILE_IDENTIFIER!r}"
            + hint
        )
    root = int.from_bytes(data[0:4], "little")
    if root < 8 or root + 4 > len(data):
        raise ModelInspectionError(
            f"not a valid TFLite model: the root table offset {root} lies outside the {len(data)}-byte file "
            "(truncated?)"
        )


def _bounded(count: int, data: bytes, what: str, element_size: int = 4) -> int:
    """A vector length read from the file, refused when it could not fit in it (a damaged offset)."""
    if count < 0 or count * element_size > len(data):
        raise ModelInspectionError(f"not a valid TFLite model: {what} claims {count} entries (damaged or truncated)")
    return count


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _read(data: bytes) -> ModelInspection:
    model = Model.GetRootAs(data, 0)
    schema_version = model.Version()
    n_subgraphs = _bounded(model.SubgraphsLength(), data, "the subgraph table")
    if n_subgraphs == 0:
        raise ModelInspectionError("not a usable TFLite model: it has no subgraph")
    n_buffers = _bounded(model.BuffersLength(), data, "the buffer table")
    n_opcodes = _bounded(model.OperatorCodesLength(), data, "the operator-code table")

    opcodes: list[tuple[str, bool, int]] = []
    for i in range(n_opcodes):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == CUSTOM_CODE:
            opcodes.append((_text(code.CustomCode()) or "<unnamed custom op>", True, code.Version()))
        elif builtin in BUILTIN_OPCODE2NAME:
            opcodes.append((BUILTIN_OPCODE2NAME[builtin], False, code.Version()))
        else:
            raise ModelInspectionError(f"unknown builtin operator code {builtin} (newer than TFLite schema 2.18?)")

    buffer_sizes: list[int] = []
    for i in range(n_buffers):
        buf = model.Buffers(i)
        if buf.Offset() > 1:  # converters put large buffers after the flatbuffer (offset/size from its start)
            if buf.Offset() + buf.Size() > len(data):
                raise ModelInspectionError(
                    f"not a valid TFLite model: buffer {i} lies past the end of the {len(data)}-byte file (truncated?)"
                )
            buffer_sizes.append(buf.Size())
        else:
            buffer_sizes.append(_bounded(buf.DataLength(), data, f"buffer {i}", 1))

    counts: Counter[int] = Counter()
    n_operators = 0
    parameters = 0
    weight_bytes = 0
    dtypes: set[int] = set()
    for s in range(n_subgraphs):
        graph = model.Subgraphs(s)
        n_tensors = _bounded(graph.TensorsLength(), data, f"subgraph {s}'s tensor table")
        for t in range(n_tensors):
            tensor = graph.Tensors(t)
            dtypes.add(tensor.Type())
            shape = _shape(tensor, data)
            b = tensor.Buffer()
            if not 0 <= b < max(n_buffers, 1):
                raise ModelInspectionError(f"tensor {t} refers to buffer {b}, the model has {n_buffers}")
            if b > 0 and buffer_sizes[b] > 0 and not tensor.IsVariable():
                parameters += math.prod(d for d in shape if d > 0)
                weight_bytes += buffer_sizes[b]
        n_ops = _bounded(graph.OperatorsLength(), data, f"subgraph {s}'s operator list")
        n_operators += n_ops
        for o in range(n_ops):
            index = graph.Operators(o).OpcodeIndex()
            if not 0 <= index < n_opcodes:
                raise ModelInspectionError(f"operator {o} uses opcode {index}, the model defines {n_opcodes}")
            counts[index] += 1

    by_name: dict[str, OpUsage] = {}
    for index, count in counts.items():
        name, custom, version = opcodes[index]
        if name in by_name:  # one op listed twice (two versions): add up
            seen = by_name[name]
            by_name[name] = seen.model_copy(update={"count": seen.count + count, "version": max(seen.version, version)})
        else:
            by_name[name] = OpUsage(name=name, count=count, custom=custom, version=version)

    main = model.Subgraphs(0)
    inputs = [_spec(main, int(i), data) for i in _indices(main.InputsAsNumpy(), main.InputsLength(), data)]
    outputs = [_spec(main, int(i), data) for i in _indices(main.OutputsAsNumpy(), main.OutputsLength(), data)]

    metadata, min_runtime = _metadata(model, data, buffer_sizes)
    signatures = [
        _text(model.SignatureDefs(i).SignatureKey()) or ""
        for i in range(_bounded(model.SignatureDefsLength(), data, "the signature table"))
    ]
    return ModelInspection(
        sha256=sha256_hex(data),
        size=len(data),
        schema_version=schema_version,
        description=_text(model.Description()),
        precision=_precision(dtypes),
        parameters=parameters,
        weight_bytes=weight_bytes,
        subgraphs=n_subgraphs,
        operators=n_operators,
        ops=sorted(by_name.values(), key=lambda op: (-op.count, op.name)),
        inputs=inputs,
        outputs=outputs,
        metadata=metadata,
        min_runtime_version=min_runtime,
        embedded_labels=_embedded_labels(data),
        signatures=signatures,
    )


def _indices(array: Any, length: int, data: bytes) -> list[int]:
    _bounded(length, data, "a tensor index list")
    return [] if length == 0 else [int(i) for i in array]


def _shape(tensor: Tensor, data: bytes) -> list[int]:
    n = _bounded(tensor.ShapeLength(), data, "a tensor shape")
    return [int(d) for d in tensor.ShapeAsNumpy()] if n else []


def _shape_signature(tensor: Tensor, data: bytes, shape: list[int]) -> list[int] | None:
    """The signature (-1 for dynamic dims, usually the batch) when it differs from the concrete shape."""
    n = _bounded(tensor.ShapeSignatureLength(), data, "a tensor shape signature")
    if n == 0:
        return None
    signature = [int(d) for d in tensor.ShapeSignatureAsNumpy()]
    return None if signature == shape else signature


def _spec(graph: Any, index: int, data: bytes) -> TensorSpec:
    if not 0 <= index < graph.TensorsLength():
        raise ModelInspectionError(f"the main subgraph names tensor {index} as input/output; it has no such tensor")
    tensor = graph.Tensors(index)
    quantization = None
    q = tensor.Quantization()
    if q is not None and q.ScaleLength() > 0:
        _bounded(q.ScaleLength(), data, "a quantization scale list")
        _bounded(q.ZeroPointLength(), data, "a quantization zero-point list", 8)
        quantization = Quantization(
            scale=[float(s) for s in q.ScaleAsNumpy()],
            zero_point=[int(z) for z in q.ZeroPointAsNumpy()] if q.ZeroPointLength() else [],
            quantized_dimension=q.QuantizedDimension(),
        )
    shape = _shape(tensor, data)
    return TensorSpec(
        name=_text(tensor.Name()) or f"tensor_{index}",
        shape=shape,
        shape_signature=_shape_signature(tensor, data, shape),
        dtype=DTYPE_NAMES.get(tensor.Type(), f"type_{tensor.Type()}"),
        quantization=quantization,
    )


def _precision(dtypes: set[int]) -> Precision:
    has_float = bool(dtypes & _FLOAT_TYPES)
    has_quantized = bool(dtypes & _QUANTIZED_TYPES)
    if has_float and has_quantized:
        return "mixed"
    return "float" if has_float else "int8"


def _metadata(model: Any, data: bytes, buffer_sizes: list[int]) -> tuple[list[MetadataEntry], str | None]:
    entries: list[MetadataEntry] = []
    min_runtime: str | None = None
    for i in range(_bounded(model.MetadataLength(), data, "the metadata table")):
        meta = model.Metadata(i)
        name = _text(meta.Name()) or f"metadata_{i}"
        b = meta.Buffer()
        if not 0 <= b < len(buffer_sizes):
            raise ModelInspectionError(f"metadata {name!r} refers to buffer {b}, the model has {len(buffer_sizes)}")
        size = buffer_sizes[b]
        value = None
        if 0 < size <= _TEXT_METADATA_LIMIT:
            raw = bytes(model.Buffers(b).DataAsNumpy()).rstrip(b"\0")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            if text is not None and text.isprintable():
                value = text
        if name == "min_runtime_version":
            min_runtime = value
        entries.append(MetadataEntry(name=name, size=size, value=value))
    return entries, min_runtime


def _embedded_labels(data: bytes) -> list[str] | None:
    """Labels of a model packed by TFLite Support's MetadataPopulator: a zip of associated files appended."""
    stream = io.BytesIO(data)
    if not zipfile.is_zipfile(stream):
        return None
    try:
        with zipfile.ZipFile(stream) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith(".txt") and "label" in n.lower()]
            if not names:
                return None
            text = archive.read(sorted(names)[0]).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    return labels or None
