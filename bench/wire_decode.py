"""Micro-benchmark of tinyfleet.wire decoding (the hot path of ingest).

    .venv/bin/python bench/wire_decode.py [--quick]

Prints µs per event for: a single CBOR event (the 42-byte DESIGN.md example), the same event as JSON,
a CBOR batch of 10, and the bare ``cbor2.loads`` of the single event for reference; then one JSON line
``{"bench": "wire_decode", ...}``. Each figure is the best of several repeats (least disturbed by other
processes), with the garbage collector enabled as in the service.
"""

from __future__ import annotations

import gc
import json
import platform
import sys
import time
import timeit
from collections.abc import Callable
from importlib.metadata import version
from typing import Any

import cbor2

from tinyfleet.wire import decode_events, encode_events

EXAMPLE = bytes.fromhex("aa0001011b0000019abae28a000205030304677669622d636c7305040600070308fa3f6e147b0c1909c4")
EXAMPLE_JSON = (
    b'{"v":1,"ts":1764072000000,"seq":5,"boot":3,"model":"vib-cls","mver":4,"kind":0,"label":3,"score":0.93,"lat":2500}'
)
NOW_MS = 1_764_072_000_000


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    number, repeat = (20_000, 5) if quick else (100_000, 15)
    batch10 = encode_events(decode_events(EXAMPLE).events * 10)
    assert decode_events(batch10).events == decode_events(EXAMPLE).events * 10
    assert decode_events(EXAMPLE_JSON).events[0].score == 0.93

    cases: dict[str, tuple[Callable[[], Any], int]] = {
        "cbor2_loads_only": (lambda: cbor2.loads(EXAMPLE), 1),
        "cbor_single": (lambda: decode_events(EXAMPLE, now_ms=NOW_MS), 1),
        "json_single": (lambda: decode_events(EXAMPLE_JSON, now_ms=NOW_MS), 1),
        "cbor_batch10": (lambda: decode_events(batch10, now_ms=NOW_MS), 10),
    }
    gc.enable()
    timeit_gc = "gc.enable()"  # timeit disables the collector by default; the service runs with it
    results: dict[str, float] = {}
    for name, (fn, per_call) in cases.items():
        timer = timeit.Timer(fn, setup=timeit_gc)
        times = timer.repeat(repeat=repeat, number=number // per_call)
        results[name] = round(min(times) / (number // per_call) / per_call * 1e6, 3)
        print(f"{name:18s} {results[name]:7.3f} µs/event")
    # Baseline of the same run: cbor2 parsing alone; the rest of decode_events is validation.
    ratio = round(results["cbor_single"] / results["cbor2_loads_only"], 2)
    print(f"cbor_single / cbor2.loads: {ratio}x")
    print(
        json.dumps(
            {
                "bench": "wire_decode",
                "unit": "us_per_event",
                **results,
                "ratio_to_cbor2_loads": ratio,
                "payload_bytes": {"cbor_single": len(EXAMPLE), "json_single": len(EXAMPLE_JSON)},
                "python": platform.python_version(),
                "cbor2": version("cbor2"),
                "msgspec": version("msgspec"),
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
