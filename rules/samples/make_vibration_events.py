"""Writes vibration-events.jsonl next to this file (deterministic): `python rules/samples/make_vibration_events.py`.

pump-1 runs normally from 10:00, reports bearing_fault at 10:08:00, 10:09:30 and 10:11:00 (within 5 minutes),
sends its last reading at 10:12:00 and then stays silent; pump-2 keeps running normally from 10:05 to 10:32
(20 minutes after pump-1's last event), so the silence is part of the recording. With the shipped rules:
bearing-fault opens for pump-1 at 10:11:00 and resolves at 10:13:00 (the first fault leaves the 5-minute
window); device-silent opens for pump-1 at 10:27:00 (15 minutes after its last event).
"""

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
FAULTS = {timedelta(minutes=8), timedelta(minutes=9, seconds=30), timedelta(minutes=11)}


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def main() -> None:
    rnd = random.Random(42)
    lines: list[tuple[datetime, str, dict[str, object]]] = []
    seq = {"pump-1": 0, "pump-2": 0}

    def add(device: str, t: datetime, label: str, score: float) -> None:
        seq[device] += 1
        ev = {"device": device, "time": iso(t), "model": "vib-cls", "mver": 3, "kind": "classification",
              "label": label, "score": round(score, 3), "lat": rnd.randint(7000, 12000),
              "x": {"temp_c": round(rnd.uniform(41.0, 46.0), 1)}, "seq": seq[device], "boot": 1}  # fmt: skip
        lines.append((t, device, ev))

    for i in range(0, 12 * 60 + 1, 5):  # pump-1 every 5 s, 10:00:00 .. 10:12:00
        d = timedelta(seconds=i)
        if d in FAULTS:
            add("pump-1", START + d, "bearing_fault", rnd.uniform(0.86, 0.95))
        else:
            add("pump-1", START + d, "normal", rnd.uniform(0.9, 0.99))
    for i in range(5 * 60, 32 * 60 + 1, 10):  # pump-2 every 10 s, 10:05:00 .. 10:32:00
        add("pump-2", START + timedelta(seconds=i), "normal", rnd.uniform(0.9, 0.99))
    lines.sort(key=lambda x: (x[0], x[1]))
    out = Path(__file__).with_name("vibration-events.jsonl")
    out.write_text("".join(json.dumps(ev) + "\n" for _, _, ev in lines))
    print(f"{out}: {len(lines)} events")


if __name__ == "__main__":
    main()
