"""Child process of :func:`tinyfleet.registry.arena.measure_arena`: model bytes on stdin, one JSON line out.

The search is the reference device's own (:func:`tinyfleet_device.arena.search_arena`: the same binary search
the device runs when it loads a model), so the registry and the devices agree on a model's arena. It captures
TFLM's fd-2 messages itself and puts the largest probe's complaint into the reason; a crash of the native code
is what the parent sees on fd 2 then.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tinyfleet_device.errors import ArenaError


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

        from tinyfleet_device.arena import search_arena, tflm_loader

        load = tflm_loader()
    except ImportError as exc:
        return {"loadable": False, "reason": f"tflite-micro is not installed here ({exc}; Linux x86_64 wheels only)"}
    version = str(tflite_micro.__version__)
    try:
        found = search_arena(data, max_arena=max_arena, load=load, capture_first=False)
    except ArenaError as exc:
        return {"loadable": False, "reason": str(exc), "probes": 1, "tflm_version": version}
    invoke_error = _invoke(found.interpreter, inputs)
    return {
        "loadable": True,
        "arena_bytes": found.arena_bytes,
        "invoke_ok": invoke_error is None,
        "reason": invoke_error,
        "probes": found.probes,
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
