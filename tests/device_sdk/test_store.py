"""The device's on-disk store: boot counter, bounded queue (oldest dropped, counted), order, durability."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tinyfleet_device.errors import StoreError
from tinyfleet_device.store import DeviceStore


def test_boot_counter_persists_and_increments(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    with DeviceStore(path) as store:
        assert store.next_boot() == 1
        assert store.next_boot() == 2
    with DeviceStore(path) as store:
        assert store.boot == 2
        assert store.next_boot() == 3


def test_queue_is_ordered_bounded_and_counts_drops(tmp_path: Path) -> None:
    with DeviceStore(tmp_path / "device.db", max_events=5) as store:
        for seq in range(8):
            store.put(1, seq, "cbor", bytes([seq]))
        rows = store.pending(100)
        assert [r.seq for r in rows] == [3, 4, 5, 6, 7]  # the oldest three made room
        assert store.dropped_since_boot == 3
        assert store.dropped_total == 3
        assert [r.seq for r in store.pending(2, after_id=rows[1].id)] == [5, 6]
        store.ack([rows[0].id, rows[2].id])
        assert [r.seq for r in store.pending(100)] == [4, 6, 7]
        assert store.backlog() == 3
        store.next_boot()
        assert store.dropped_since_boot == 0
        assert store.dropped_total == 3


def test_committed_events_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "device.db"
    code = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from tinyfleet_device.store import DeviceStore\n"
        f"s = DeviceStore(Path({str(path)!r})); s.open()\n"
        "b = s.next_boot()\n"
        "for i in range(50): s.put(b, i, 'json', b'{}')\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=False)
    assert done.returncode == -9
    with DeviceStore(path) as store:
        assert store.boot == 1
        assert [r.seq for r in store.pending(100)] == list(range(50))


def test_settings_round_trip_and_bad_bounds(tmp_path: Path) -> None:
    with DeviceStore(tmp_path / "d.db") as store:
        assert store.get("settings", {}) == {}
        store.set("settings", {"threshold": 0.5, "faults": {"imbalance": 1.0}})
        assert store.get("settings") == {"threshold": 0.5, "faults": {"imbalance": 1.0}}
    with pytest.raises(StoreError):
        DeviceStore(tmp_path / "x.db", max_events=0)
    closed = DeviceStore(tmp_path / "y.db")
    with pytest.raises(StoreError, match="not open"):
        closed.backlog()
