"""What the runner needs to know about a ``.tflite`` file, read from the flatbuffer itself (``tflite`` package).

    info = read_model(data)      # ModelFile(inputs=[TensorInfo(...)], outputs=[...], ops=("CONV_2D", ...))

The tensors' shapes, element types and affine quantization (real = scale × (q − zero_point)) come from the
model, never from a per-model table, so any TFLite Micro-compatible model runs with just its file.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tflite.Model import Model
from tflite.TensorType import TensorType
from tflite.utils import BUILTIN_OPCODE2NAME

from .errors import ModelError

__all__ = ["ModelFile", "TensorInfo", "read_model"]

_CUSTOM = 32
_DTYPES: dict[int, type[np.generic]] = {
    TensorType.FLOAT32: np.float32,
    TensorType.INT8: np.int8,
    TensorType.UINT8: np.uint8,
    TensorType.INT16: np.int16,
    TensorType.INT32: np.int32,
    TensorType.INT64: np.int64,
    TensorType.FLOAT16: np.float16,
}


@dataclass(frozen=True)
class TensorInfo:
    """An input or output tensor of the main subgraph. ``scale`` is None for an unquantized (float) tensor."""

    name: str
    shape: tuple[int, ...]
    dtype: type[np.generic]
    scale: float | None
    zero_point: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Float values to this tensor's element type: round(x / scale) + zero_point, saturated."""
        if self.scale is None:
            return np.asarray(values, dtype=self.dtype).reshape(self.shape)
        info = np.iinfo(np.dtype(self.dtype))
        q = np.rint(np.asarray(values, dtype=np.float64) / self.scale) + self.zero_point
        out: np.ndarray = np.clip(q, info.min, info.max).astype(self.dtype).reshape(self.shape)
        return out

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """This tensor's elements as float32: scale × (q − zero_point)."""
        if self.scale is None:
            return np.asarray(values, dtype=np.float32)
        return ((np.asarray(values, dtype=np.float64) - self.zero_point) * self.scale).astype(np.float32)


@dataclass(frozen=True)
class ModelFile:
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    #: builtin op names (custom ops by their custom code), sorted, each once
    ops: tuple[str, ...]
    size: int


def read_model(data: bytes) -> ModelFile:
    """Read the main subgraph's input/output tensors and the op list. Raises :class:`ModelError`."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelError("not a TFLite model (no TFL3 file identifier)")
    try:
        model = Model.GetRootAs(data, 0)
        if model.SubgraphsLength() < 1:
            raise ModelError("the model has no subgraph")
        graph = model.Subgraphs(0)
        inputs = tuple(_tensor(graph.Tensors(int(i))) for i in graph.InputsAsNumpy())
        outputs = tuple(_tensor(graph.Tensors(int(i))) for i in graph.OutputsAsNumpy())
        ops: set[str] = set()
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
            if builtin == _CUSTOM:
                custom = code.CustomCode()
                ops.add(custom.decode("utf-8", "replace") if custom else "CUSTOM")
            else:
                ops.add(BUILTIN_OPCODE2NAME.get(builtin, f"BUILTIN_{builtin}"))
    except ModelError:
        raise
    except Exception as exc:  # the generated flatbuffer readers raise anything on damaged input
        raise ModelError(f"cannot read the model's flatbuffer ({type(exc).__name__}: {exc})") from exc
    if not inputs or not outputs:
        raise ModelError("the main subgraph has no input or no output tensor")
    return ModelFile(inputs=inputs, outputs=outputs, ops=tuple(sorted(ops)), size=len(data))


def _tensor(t: object) -> TensorInfo:
    tensor = t  # tflite.Tensor.Tensor
    type_code = int(tensor.Type())  # type: ignore[attr-defined]
    dtype = _DTYPES.get(type_code)
    if dtype is None:
        raise ModelError(f"tensor element type {type_code} is not supported by the runner")
    shape = tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()  # type: ignore[attr-defined]
    scale: float | None = None
    zero_point = 0
    quant = tensor.Quantization()  # type: ignore[attr-defined]
    if quant is not None and quant.ScaleLength() > 0 and np.issubdtype(dtype, np.integer):
        scales = quant.ScaleAsNumpy()
        if len(scales) != 1:
            raise ModelError("per-channel quantization of a model input/output tensor is not supported")
        scale = float(scales[0])
        zero_point = int(quant.ZeroPointAsNumpy()[0]) if quant.ZeroPointLength() else 0
        if not scale > 0:
            scale = None
    raw_name = tensor.Name()  # type: ignore[attr-defined]
    name = raw_name.decode("utf-8", "replace") if raw_name else ""
    return TensorInfo(name=name, shape=shape, dtype=dtype, scale=scale, zero_point=zero_point)
