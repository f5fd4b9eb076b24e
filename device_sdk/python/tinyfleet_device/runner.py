"""The generic model runner: any TFLite Micro-compatible model, given only its file (and label names).

    runner = ModelRunner.from_file("vib-cls.tflite", labels=["normal", "imbalance", ...])
    result = runner.infer(features)          # float features in, InferenceResult out
    event = runner.event(result, seq=5, boot=3, model="vib-cls", mver=4)   # a tinyfleet.wire.Event

Everything model-specific is read from the model itself: the input tensor's shape, element type and
quantization (features are quantized with its scale and zero point), the output's (dequantized likewise), the
ops (reported as capabilities). The kind of result follows from the shapes alone:

* **anomaly** when the output has the input's shape (an autoencoder) and more than one value, unless as many
  label names as output values are given: the score is the mean squared error
  between the dequantized input the model saw and its dequantized output;
* **classification** when the output holds more than one value, or label names are given: label = argmax,
  score = its probability (a softmax is applied when the outputs are not already probabilities), top-k;
* **regression** otherwise (one output value without labels): the values.

A model card's ``kind`` (argument ``kind``) overrides the rule. An anomaly model may be given two label names
(normal, anomalous) for the verdict the device derives with its threshold.

Features may hold several model inputs at once (``(n, *input_shape[1:])`` for a model whose batch dimension is
1, e.g. the frames of a spectrogram): the runner invokes the model once per input and averages the outputs and
anomaly scores, the way the MLCommons anomaly benchmark scores a clip.

The interpreter is TFLM (``tflite_micro.runtime.Interpreter``) with an arena that is given or found by
:func:`tinyfleet_device.arena.search_arena`. Where tflite-micro cannot be imported (its wheels are Linux x86_64
only) the runner falls back to LiteRT (``ai-edge-litert``, extra ``litert``), says so in the log and marks
every event with ``x.runtime = "litert"``. ``TINYFLEET_DEVICE_BACKEND=tflm|litert|auto`` (or the ``backend``
argument) forces one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from tinyfleet.wire import Event, EventKind

from .arena import DEFAULT_MAX_ARENA, search_arena, tflm_loader
from .errors import ArenaError, ModelError
from .model_file import ModelFile, TensorInfo, read_model

__all__ = [
    "BACKEND_ENV",
    "DEFAULT_TOP_K",
    "Backend",
    "InferenceResult",
    "ModelRunner",
    "available_backends",
]

log = logging.getLogger(__name__)

BACKEND_ENV = "TINYFLEET_DEVICE_BACKEND"
DEFAULT_TOP_K = 3
#: the wire limits of ``top`` and ``val`` (docs/protocol.md)
_MAX_TOP = 16
_MAX_VAL = 64

BackendName = Literal["tflm", "litert"]
KindName = Literal["classification", "anomaly", "regression"]


class Backend(Protocol):
    """One interpreter instance: set the (already quantized) input, invoke, read the raw output."""

    name: BackendName

    def run(self, x: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class InferenceResult:
    kind: int  #: tinyfleet.wire.EventKind value
    label: int | None
    score: float | None
    top: list[tuple[int, float]]
    anomaly: float | None
    values: np.ndarray  #: dequantized output (mean over the inputs when several were run)
    latency_us: int  #: invoke time only (summed over the inputs)
    label_name: str | None = None
    invocations: int = 1
    extras: dict[str, Any] = field(default_factory=dict)


class _Tflm:
    name: BackendName = "tflm"

    def __init__(self, interpreter: Any) -> None:
        self._interp = interpreter

    def run(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_input(x, 0)
        self._interp.invoke()
        return np.asarray(self._interp.get_output(0))


class _LiteRt:
    name: BackendName = "litert"

    def __init__(self, data: bytes) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType  # type: ignore[import-untyped]

        # no XNNPACK delegate: the builtin kernels stay closest to TFLM's reference kernels
        self._interp = Interpreter(
            model_content=data, experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        self._interp.allocate_tensors()
        self._in = int(self._interp.get_input_details()[0]["index"])
        self._out = int(self._interp.get_output_details()[0]["index"])

    def run(self, x: np.ndarray) -> np.ndarray:
        self._interp.set_tensor(self._in, x)
        self._interp.invoke()
        return np.asarray(self._interp.get_tensor(self._out))


def available_backends() -> list[BackendName]:
    """The interpreters importable here, TFLM first."""
    found: list[BackendName] = []
    try:
        from tflite_micro import runtime  # noqa: F401
    except ImportError:
        pass
    else:
        found.append("tflm")
    try:
        from ai_edge_litert import interpreter  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        pass
    else:
        found.append("litert")
    return found


def _choose_backend(requested: str | None) -> BackendName:
    choice = (requested or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if choice not in ("auto", "tflm", "litert"):
        raise ModelError(f"unknown interpreter backend {choice!r} (expected tflm, litert or auto)")
    have = available_backends()
    if choice == "auto":
        if "tflm" in have:
            return "tflm"
        if "litert" in have:
            log.warning(
                "tflite-micro cannot be imported here (its wheels are Linux x86_64 only): running models with "
                "LiteRT (ai-edge-litert) instead; events are marked x.runtime=litert"
            )
            return "litert"
        raise ModelError("no interpreter: install tflite-micro (Linux x86_64) or the 'litert' extra")
    if choice not in have:
        hint = "tflite-micro (Linux x86_64 only)" if choice == "tflm" else "the 'litert' extra (ai-edge-litert)"
        raise ModelError(f"interpreter {choice!r} requested but not importable: install {hint}")
    if choice == "litert":
        log.warning("running models with LiteRT (ai-edge-litert), not TFLM; events are marked x.runtime=litert")
    return choice


class ModelRunner:
    """One loaded model and its interpreter. Not thread-safe: one ``infer`` at a time."""

    def __init__(
        self,
        data: bytes,
        *,
        labels: Sequence[str] | None = None,
        arena_size: int | None = None,
        backend: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        max_arena: int = DEFAULT_MAX_ARENA,
        kind: KindName | None = None,
    ) -> None:
        self.data = bytes(data)
        self.info: ModelFile = read_model(self.data)
        if len(self.info.inputs) != 1 or len(self.info.outputs) < 1:
            raise ModelError(
                f"the runner handles models with one input tensor (this one has {len(self.info.inputs)})"
            )
        self.input: TensorInfo = self.info.inputs[0]
        self.output: TensorInfo = self.info.outputs[0]
        self.input_shape: tuple[int, ...] = self.input.shape
        self.input_dtype: type[np.generic] = self.input.dtype
        self.output_shape: tuple[int, ...] = self.output.shape
        self.ops: tuple[str, ...] = self.info.ops
        self.labels: list[str] | None = list(labels) if labels else None
        self.top_k = max(1, min(top_k, _MAX_TOP))
        n_out = self.output.size
        named_classes = self.labels is not None and len(self.labels) == n_out
        if kind is not None:
            if kind not in ("classification", "anomaly", "regression"):
                raise ModelError(f"unknown model kind {kind!r}")
            self.kind: KindName = kind
        elif self.output_shape == self.input_shape and n_out > 1 and not named_classes:
            self.kind = "anomaly"
        elif n_out > 1 or self.labels:
            self.kind = "classification"
        else:
            self.kind = "regression"
        if self.kind == "anomaly" and self.output_shape != self.input_shape:
            raise ModelError(f"an anomaly model reconstructs its input: output {self.output_shape} != input")
        if self.kind == "anomaly" and self.labels is not None and len(self.labels) != 2:
            raise ModelError(
                f"{len(self.labels)} label names given: an anomaly model takes two (normal, anomalous), or "
                f"one per output value ({n_out}) to be read as a classifier"
            )
        if self.kind == "classification" and self.labels is not None and not named_classes:
            raise ModelError(f"{len(self.labels)} label names given, the model's output has {n_out} classes")
        self.backend: BackendName = _choose_backend(backend)
        self._impl: Backend
        if self.backend == "tflm":
            self._impl, self.arena_size, self.arena_probes = self._load_tflm(arena_size, max_arena)
        else:
            try:
                self._impl = _LiteRt(self.data)
            except Exception as exc:  # LiteRT raises RuntimeError/ValueError for models it cannot prepare
                raise ModelError(f"LiteRT cannot load the model: {exc}") from exc
            self.arena_size = arena_size or 0
            self.arena_probes = 0

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        *,
        labels: Sequence[str] | None = None,
        arena_size: int | None = None,
        backend: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        kind: KindName | None = None,
    ) -> ModelRunner:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read the model file {path}: {exc.strerror or exc}") from exc
        return cls(data, labels=labels, arena_size=arena_size, backend=backend, top_k=top_k, kind=kind)

    @classmethod
    def from_bytes(
        cls,
        data: bytes,
        *,
        labels: Sequence[str] | None = None,
        arena_size: int | None = None,
        backend: str | None = None,
        top_k: int = DEFAULT_TOP_K,
        kind: KindName | None = None,
    ) -> ModelRunner:
        return cls(data, labels=labels, arena_size=arena_size, backend=backend, top_k=top_k, kind=kind)

    def _load_tflm(self, arena_size: int | None, max_arena: int) -> tuple[Backend, int, int]:
        load = tflm_loader()
        if arena_size is None:
            found = search_arena(self.data, max_arena=max_arena, load=load)
            return _Tflm(found.interpreter), found.arena_bytes, found.probes
        try:
            return _Tflm(load(self.data, arena_size)), arena_size, 1
        except RuntimeError as exc:
            raise ArenaError(f"TFLM cannot allocate the model in a {arena_size}-byte arena: {exc}") from exc

    # ------------------------------------------------------------------------------------------ inference
    @property
    def input_size(self) -> int:
        return self.input.size

    def _inputs(self, features: np.ndarray) -> np.ndarray:
        """Features as (n, *input_shape): exactly one input's worth, or n of them along a batch of 1."""
        f = np.asarray(features, dtype=np.float32)
        per = self.input.size
        if f.size == per:
            return f.reshape((1, *self.input_shape))
        if per > 0 and f.size % per == 0 and self.input_shape and self.input_shape[0] == 1:
            return f.reshape((f.size // per, *self.input_shape))
        raise ModelError(
            f"features of shape {tuple(f.shape)} ({f.size} values) do not fit the model input "
            f"{self.input_shape} ({per} values, or a multiple of it)"
        )

    def infer(self, features: np.ndarray) -> InferenceResult:
        """Quantize, invoke (once per input held by ``features``), dequantize, and interpret the output."""
        batch = self._inputs(features)
        outputs: list[np.ndarray] = []
        errors: list[float] = []
        elapsed_ns = 0
        for x in batch:
            q = self.input.quantize(x)
            started = time.perf_counter_ns()
            try:
                raw = self._impl.run(q)
            except (RuntimeError, ValueError) as exc:
                raise ModelError(f"{self.backend} invoke failed: {exc}") from exc
            elapsed_ns += time.perf_counter_ns() - started
            y = self.output.dequantize(raw).reshape(self.output_shape)
            outputs.append(y)
            if self.kind == "anomaly":
                seen = self.input.dequantize(q)  # what the model saw, after quantization
                errors.append(float(np.mean((seen.astype(np.float64) - y.astype(np.float64)) ** 2)))
        values = np.mean(np.stack(outputs), axis=0).astype(np.float32) if len(outputs) > 1 else outputs[0]
        latency_us = max(1, elapsed_ns // 1000)
        extras: dict[str, Any] = {"runtime": "litert"} if self.backend == "litert" else {}
        if self.kind == "anomaly":
            return InferenceResult(
                kind=int(EventKind.ANOMALY), label=None, score=None, top=[], anomaly=float(np.mean(errors)),
                values=values, latency_us=int(latency_us), invocations=len(batch), extras=extras,
            )  # fmt: skip
        flat = values.ravel().astype(np.float64)
        if self.kind == "regression":
            return InferenceResult(
                kind=int(EventKind.REGRESSION), label=None, score=None, top=[], anomaly=None, values=values,
                latency_us=int(latency_us), invocations=len(batch), extras=extras,
            )  # fmt: skip
        probs = flat if _are_probabilities(flat) else _softmax(flat)
        order = np.argsort(-probs, kind="stable")
        label = int(order[0])
        top = [(int(i), _unit(probs[i])) for i in order[: self.top_k]]
        return InferenceResult(
            kind=int(EventKind.CLASSIFICATION), label=label, score=_unit(probs[label]), top=top, anomaly=None,
            values=values, latency_us=int(latency_us), invocations=len(batch), extras=extras,
            label_name=self.labels[label] if self.labels else None,
        )  # fmt: skip

    def event(
        self,
        result: InferenceResult,
        *,
        seq: int,
        boot: int,
        model: str | int,
        mver: int | None = None,
        ts: int | None = None,
        label: int | None = None,
        x: dict[str, Any] | None = None,
    ) -> Event:
        """The v1 event of a result. ``label`` overrides (an anomaly model's normal/anomalous verdict)."""
        extras = {**result.extras, **(x or {})} or None
        val: list[float] | None = None
        if result.kind == int(EventKind.REGRESSION):
            val = [float(v) for v in result.values.ravel()[:_MAX_VAL]]
        return Event(
            ts=ts, seq=seq, boot=boot, model=model, mver=mver, kind=result.kind,
            label=label if label is not None else result.label, score=result.score, anom=result.anomaly,
            val=val, top=result.top or None, lat=min(result.latency_us, 0xFFFF_FFFF), x=extras,
        )  # fmt: skip

    def self_test(self) -> InferenceResult:
        """One inference on zero features (what the OTA client runs before it swaps a model in)."""
        return self.infer(np.zeros(self.input_shape, dtype=np.float32))


def _are_probabilities(p: np.ndarray) -> bool:
    return bool(p.size and np.all(p >= -1e-6) and np.all(p <= 1 + 1e-6) and abs(float(p.sum()) - 1.0) < 0.05)


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - np.max(v))
    out: np.ndarray = e / e.sum()
    return out


def _unit(v: float) -> float:
    return float(min(1.0, max(0.0, float(v))))
