"""A file's full report: what the flatbuffer says and what TFLM measured (no database, no store)."""

from __future__ import annotations

from tinyfleet.registry.arena import DEFAULT_MAX_ARENA, DEFAULT_TIMEOUT_S, measure_arena
from tinyfleet.registry.inspect import inspect_model
from tinyfleet.registry.schemas import ModelReport


def analyze(data: bytes, *, max_arena: int = DEFAULT_MAX_ARENA, timeout_s: float = DEFAULT_TIMEOUT_S) -> ModelReport:
    """Inspection + arena of a file (no database, no store): `tinyfleet models inspect`."""
    inspection = inspect_model(data)
    arena = measure_arena(
        data,
        inputs=len(inspection.inputs),
        custom_ops=[op.name for op in inspection.ops if op.custom],
        max_arena=max_arena,
        timeout_s=timeout_s,
    )
    return ModelReport(inspection=inspection, arena=arena)
