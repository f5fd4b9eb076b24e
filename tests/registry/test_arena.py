"""The arena measurement against real TFLM allocations: the reported number allocates, one byte less does not."""

from __future__ import annotations

import pytest
from tflite.TensorType import TensorType
from tflite_micro import runtime

from tests.registry.conftest import sine_float_model
from tests.registry.tflite_builder import build_model
from tinyfleet.registry.analysis import analyze
from tinyfleet.registry.arena import measure_arena


def _allocates(data: bytes, arena: int) -> bool:
    try:
        runtime.Interpreter.from_bytes(data, arena_size=arena)
    except RuntimeError:
        return False
    return True


@pytest.mark.parametrize(
    ("fixture", "readme_arena"),
    [("ad01_bytes", 4_640), ("kws_bytes", 24 * 1024)],
)
def test_arena_is_the_smallest_that_allocates(request: pytest.FixtureRequest, fixture: str, readme_arena: int) -> None:
    data: bytes = request.getfixturevalue(fixture)
    report = measure_arena(data)
    assert report.loadable, report.reason
    assert report.arena_bytes is not None
    assert report.invoke_ok is True
    assert report.tflm_version
    # The binary-search minimum: this allocation works, one byte (and a kilobyte) less does not.
    assert _allocates(data, report.arena_bytes)
    assert not _allocates(data, report.arena_bytes - 1)
    assert not _allocates(data, report.arena_bytes - 1024)
    # ../shared/models/README.md measured it the same way: within 1 KB.
    assert abs(report.arena_bytes - readme_arena) <= 1024


def test_float_model_arena() -> None:
    data = sine_float_model()
    report = measure_arena(data)
    assert report.loadable
    assert report.arena_bytes is not None
    assert _allocates(data, report.arena_bytes)
    assert not _allocates(data, report.arena_bytes - 1)


def test_unsupported_op_is_not_loadable_with_a_reason() -> None:
    report = analyze(build_model(op="TinyfleetNoSuchOp")).arena
    assert report.loadable is False
    assert report.arena_bytes is None
    assert report.reason is not None
    assert "registration" in report.reason  # TFLM's own words, from its fd 2
    assert "TinyfleetNoSuchOp" in report.reason


def test_a_model_too_big_for_the_ceiling_is_not_loadable(kws_bytes: bytes) -> None:
    report = measure_arena(kws_bytes, max_arena=4096)
    assert report.loadable is False
    assert report.reason is not None
    assert "4096-byte arena" in report.reason


def test_a_hung_measurement_is_killed(kws_bytes: bytes) -> None:
    report = measure_arena(kws_bytes, timeout_s=0.01)  # the child cannot even import TFLM in 10 ms
    assert report.loadable is False
    assert report.reason is not None
    assert "within 0.01 s" in report.reason


def test_int8_model_built_here(kws_bytes: bytes) -> None:
    data = build_model(dtype=TensorType.INT8, shape=(1, 3), quantization=(1 / 256, -128))
    report = measure_arena(data)
    assert report.loadable
    assert report.arena_bytes is not None
    assert report.arena_bytes < measure_arena(kws_bytes).arena_bytes  # type: ignore[operator]
