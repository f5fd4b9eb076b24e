"""The tensor arena a model really needs in TFLM, measured by allocating it.

    report = measure_arena(data)        # ArenaReport(loadable=True, arena_bytes=24272, …)

``tflite_micro.runtime.Interpreter.from_bytes(data, arena_size=N)`` allocates every tensor at construction
and raises RuntimeError when N is too small, so the smallest working N is found by binary search. The printed
"Arena allocation total" is not that number (it leaves out alignment and temporary planning memory), hence the
search. It runs in a child process (:mod:`tinyfleet.registry._arena_worker`) with a timeout: a damaged model
can crash the native code, and TFLM writes its complaints to file descriptor 2. Those complaints become the
reason when the model cannot be loaded at all (an op TFLM has no kernel for, a bad schema version).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

from pydantic import BaseModel, Field

#: Larger than any microcontroller's RAM: a model that does not load with this much is not loadable.
DEFAULT_MAX_ARENA = 16 * 1024 * 1024
DEFAULT_TIMEOUT_S = 60.0
_REASON_LIMIT = 2000


class ArenaReport(BaseModel):
    """Whether TFLM could load the model, and the smallest arena it loads with."""

    loadable: bool = Field(examples=[True], description="TFLM built the interpreter (all ops have kernels)")
    arena_bytes: int | None = Field(
        None, examples=[24272], description="Smallest arena_size (bytes) with which TFLM allocates the model"
    )
    invoke_ok: bool | None = Field(
        None, description="One inference on zero inputs ran with that arena (None: not tried)"
    )
    reason: str | None = Field(
        None, examples=["Didn't find op for builtin opcode 'GELU'"], description="Why TFLM could not load or run it"
    )
    probes: int = Field(0, description="Allocations tried by the binary search")
    duration_ms: float = Field(0.0, description="Wall time of the measurement")
    tflm_version: str | None = Field(None, description="The tflite-micro build that measured it")


def measure_arena(
    data: bytes,
    *,
    inputs: int = 1,
    custom_ops: list[str] | None = None,
    max_arena: int = DEFAULT_MAX_ARENA,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> ArenaReport:
    """Measure in a child process; a crash, a hang or garbage output becomes a report with a reason."""
    started = time.monotonic()
    command = [
        sys.executable,
        "-m",
        "tinyfleet.registry._arena_worker",
        "--max-arena",
        str(max_arena),
        "--inputs",
        str(inputs),
    ]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return ArenaReport(
            loadable=False,
            reason=f"TFLM did not finish loading the model within {timeout_s:g} s (killed)",
            duration_ms=_ms(started),
        )
    stderr = done.stderr.decode("utf-8", errors="replace").strip()
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return ArenaReport(
            loadable=False,
            reason=f"TFLM crashed on this model ({name}){_tail(stderr)}",
            duration_ms=_ms(started),
        )
    lines = done.stdout.decode("utf-8", errors="replace").strip().splitlines()
    try:
        result = json.loads(lines[-1])
    except (IndexError, ValueError):
        return ArenaReport(
            loadable=False,
            reason=f"the arena probe exited with status {done.returncode} and no result{_tail(stderr)}",
            duration_ms=_ms(started),
        )
    if not result.get("loadable") and result.get("reason") and stderr:
        # TFLM's own words (on fd 2) say which op or which limit; the Python exception rarely does.
        result["reason"] = f"{result['reason']}: {_condense(stderr)}"
    if not result.get("loadable") and custom_ops:
        result["reason"] = f"{result.get('reason')} (custom ops in the model: {', '.join(custom_ops)})"
    result["duration_ms"] = _ms(started)
    return ArenaReport.model_validate(result)


def _ms(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)


def _condense(stderr: str) -> str:
    """TFLM's messages, repeated lines once, cut to a readable length."""
    seen: list[str] = []
    for line in stderr.splitlines():
        line = line.strip()
        if line and line not in seen:
            seen.append(line)
    text = "; ".join(seen)
    return text if len(text) <= _REASON_LIMIT else text[: _REASON_LIMIT - 1] + "…"


def _tail(stderr: str) -> str:
    return f": {_condense(stderr)}" if stderr else ""
