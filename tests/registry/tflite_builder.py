"""Build tiny one-operator TFLite models with the flatbuffer schema's own builders (tflite + flatbuffers).

For cases the two MLCommons models do not cover: a float model, an op TFLM has no kernel for (a custom op),
a classifier of N classes, metadata entries.
"""

from __future__ import annotations

import importlib

import flatbuffers
import numpy as np
from tflite.BuiltinOperator import BuiltinOperator
from tflite.TensorType import TensorType

# `tflite/__init__` re-exports each table's class under its module's name; the builder functions are module-level.
Buffer, Metadata, Model, Operator, OperatorCode, QuantizationParameters, SubGraph, Tensor = (
    importlib.import_module(f"tflite.{name}")
    for name in (
        "Buffer",
        "Metadata",
        "Model",
        "Operator",
        "OperatorCode",
        "QuantizationParameters",
        "SubGraph",
        "Tensor",
    )
)


def _vector(builder: flatbuffers.Builder, start: object, items: list[int], kind: str = "offset") -> int:
    start(builder, len(items))  # type: ignore[operator]
    for item in reversed(items):
        if kind == "offset":
            builder.PrependUOffsetTRelative(item)
        else:
            builder.PrependInt32(item)
    return int(builder.EndVector())


def build_model(
    *,
    op: str | int = BuiltinOperator.RELU,
    dtype: int = TensorType.FLOAT32,
    output_dtype: int | None = None,
    shape: tuple[int, ...] = (1, 4),
    quantization: tuple[float, int] | None = None,
    metadata: dict[str, bytes] | None = None,
    version: int = 3,
) -> bytes:
    """One subgraph: input -> op -> output, both `shape`. `op` a builtin code or a custom op's name."""
    b = flatbuffers.Builder(1024)
    names = [b.CreateString("input"), b.CreateString("output")]
    quant = None
    if quantization is not None:
        QuantizationParameters.QuantizationParametersStartScaleVector(b, 1)
        b.PrependFloat32(quantization[0])
        scale = b.EndVector()
        QuantizationParameters.QuantizationParametersStartZeroPointVector(b, 1)
        b.PrependInt64(quantization[1])
        zero = b.EndVector()
    tensors = []
    for name, tensor_dtype in zip(names, (dtype, dtype if output_dtype is None else output_dtype), strict=True):
        if quantization is not None:
            QuantizationParameters.QuantizationParametersStart(b)
            QuantizationParameters.QuantizationParametersAddScale(b, scale)
            QuantizationParameters.QuantizationParametersAddZeroPoint(b, zero)
            quant = QuantizationParameters.QuantizationParametersEnd(b)
        shape_vec = _vector(b, Tensor.TensorStartShapeVector, list(shape), "int")
        Tensor.TensorStart(b)
        Tensor.TensorAddShape(b, shape_vec)
        Tensor.TensorAddType(b, tensor_dtype)
        Tensor.TensorAddBuffer(b, 0)
        Tensor.TensorAddName(b, name)
        if quant is not None:
            Tensor.TensorAddQuantization(b, quant)
        tensors.append(Tensor.TensorEnd(b))
    inputs = _vector(b, Operator.OperatorStartInputsVector, [0], "int")
    outputs = _vector(b, Operator.OperatorStartOutputsVector, [1], "int")
    Operator.OperatorStart(b)
    Operator.OperatorAddOpcodeIndex(b, 0)
    Operator.OperatorAddInputs(b, inputs)
    Operator.OperatorAddOutputs(b, outputs)
    operator = Operator.OperatorEnd(b)

    tensor_vec = _vector(b, SubGraph.SubGraphStartTensorsVector, tensors)
    sg_inputs = _vector(b, SubGraph.SubGraphStartInputsVector, [0], "int")
    sg_outputs = _vector(b, SubGraph.SubGraphStartOutputsVector, [1], "int")
    op_vec = _vector(b, SubGraph.SubGraphStartOperatorsVector, [operator])
    sg_name = b.CreateString("main")
    SubGraph.SubGraphStart(b)
    SubGraph.SubGraphAddTensors(b, tensor_vec)
    SubGraph.SubGraphAddInputs(b, sg_inputs)
    SubGraph.SubGraphAddOutputs(b, sg_outputs)
    SubGraph.SubGraphAddOperators(b, op_vec)
    SubGraph.SubGraphAddName(b, sg_name)
    subgraph = SubGraph.SubGraphEnd(b)

    custom = b.CreateString(op) if isinstance(op, str) else None
    OperatorCode.OperatorCodeStart(b)
    code = BuiltinOperator.CUSTOM if isinstance(op, str) else op
    OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
    OperatorCode.OperatorCodeAddBuiltinCode(b, code)
    OperatorCode.OperatorCodeAddVersion(b, 1)
    if custom is not None:
        OperatorCode.OperatorCodeAddCustomCode(b, custom)
    opcode = OperatorCode.OperatorCodeEnd(b)

    meta = metadata or {}
    buffers = []
    Buffer.BufferStart(b)
    buffers.append(Buffer.BufferEnd(b))  # buffer 0: the empty sentinel
    for value in meta.values():
        data = b.CreateNumpyVector(np.frombuffer(value, dtype=np.uint8))
        Buffer.BufferStart(b)
        Buffer.BufferAddData(b, data)
        buffers.append(Buffer.BufferEnd(b))
    metas = []
    for i, key in enumerate(meta):
        key_off = b.CreateString(key)
        Metadata.MetadataStart(b)
        Metadata.MetadataAddName(b, key_off)
        Metadata.MetadataAddBuffer(b, i + 1)
        metas.append(Metadata.MetadataEnd(b))

    opcode_vec = _vector(b, Model.ModelStartOperatorCodesVector, [opcode])
    subgraph_vec = _vector(b, Model.ModelStartSubgraphsVector, [subgraph])
    buffer_vec = _vector(b, Model.ModelStartBuffersVector, buffers)
    meta_vec = _vector(b, Model.ModelStartMetadataVector, metas) if metas else None
    description = b.CreateString("tinyfleet test model")
    Model.ModelStart(b)
    Model.ModelAddVersion(b, version)
    Model.ModelAddOperatorCodes(b, opcode_vec)
    Model.ModelAddSubgraphs(b, subgraph_vec)
    Model.ModelAddBuffers(b, buffer_vec)
    Model.ModelAddDescription(b, description)
    if meta_vec is not None:
        Model.ModelAddMetadata(b, meta_vec)
    model = Model.ModelEnd(b)
    b.Finish(model, file_identifier=b"TFL3")
    return bytes(b.Output())


def build_empty_model() -> bytes:
    """A well-formed flatbuffer with the TFLite identifier and no subgraph."""
    b = flatbuffers.Builder(64)
    Model.ModelStart(b)
    Model.ModelAddVersion(b, 3)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())
