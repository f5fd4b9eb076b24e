"""Child process of :func:`tinyfleet.registry.arena.measure_arena`: model bytes on stdin, one JSON line out.

Only the probe at the largest arena may fail for a reason other than size; its fd-2 output is what the parent
reports. The binary search that follows writes TFLM's "too small" messages to fd 2 too, so fd 2 is pointed at
/dev/null for it (the parent reads fd 2 only when the model did not load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


def _probe(runtime: Any, data: bytes, size: int) -> Any:
    try:
        return runtime.Interpreter.from_bytes(data, arena_size=size)
    except RuntimeError:
        return None


def _invoke(interpreter: Any, inputs: int) -> str | None:
    import numpy as np

    try:
        for i in range(inputs):
            details = interpreter.get_input_details(i)
            interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), i)
        interpreter.invoke()
    except (RuntimeError, ValueError, TypeError, KeyError) as exc:
        return f"invoke failed: {exc}"
    return None


def _measure(data: bytes, max_arena: int, inputs: int) -> dict[str, Any]:
    try:
        import tflite_micro
        from tflite_micro import runtime
    except ImportError as exc:
        return {"loadable": False, "reason": f"tflite-micro is not installed here ({exc}; Linux x86_64 wheels only)"}
    version = str(tflite_micro.__version__)
    try:
        biggest = runtime.Interpreter.from_bytes(data, arena_size=max_arena)
    except Exception as exc:  # RuntimeError from TFLM; the wrapper's own flatbuffer reader fails otherwise
        return {
            "loadable": False,
            "reason": f"TFLM cannot load the model even with a {max_arena}-byte arena ({type(exc).__name__}: {exc})",
            "probes": 1,
            "tflm_version": version,
        }
    del biggest
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    low, high, probes = 0, max_arena, 1  # invariant: `low` fails, `high` works
    while high - low > 1:
        middle = (low + high) // 2
        probes += 1
        interpreter = _probe(runtime, data, middle)
        if interpreter is None:
            low = middle
        else:
            high = middle
            del interpreter
    interpreter = _probe(runtime, data, high)
    invoke_error = _invoke(interpreter, inputs) if interpreter is not None else "the minimal arena did not load twice"
    return {
        "loadable": True,
        "arena_bytes": high,
        "invoke_ok": invoke_error is None,
        "reason": invoke_error,
        "probes": probes,
        "tflm_version": version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-arena", type=int, required=True)
    parser.add_argument("--inputs", type=int, default=1)
    args = parser.parse_args()
    data = sys.stdin.buffer.read()
    result = _measure(data, args.max_arena, args.inputs)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
