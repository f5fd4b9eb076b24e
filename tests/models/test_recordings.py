"""Import of recorded windows (the capture CSV layout, 3-channel WAV) and the dataset's splits."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from models.dataset import LABELS, GenerationSpec, generate, merge, split_of
from models.recordings import RecordingError, load_recording, load_recordings, write_capture_csv
from tinyfleet_device.features.vibration import vibration_features
from tinyfleet_device.sensors.vibration import Fault, VibrationSimulator


def samples(fault: Fault | None, n: int = 2600) -> np.ndarray:
    sim = VibrationSimulator(seed=4)
    if fault:
        sim.inject(fault)
    return sim.read(n)


def test_capture_csv_round_trip_gives_the_same_features(tmp_path: Path) -> None:
    x = samples(Fault.BEARING)
    path = tmp_path / "press-07.csv"
    write_capture_csv(path, x, 3200.0, label="bearing_fault", device="press-07")
    rec = load_recording(path)
    assert rec.label == "bearing_fault"
    assert rec.sample_rate_hz == 3200.0
    assert rec.metadata["device"] == "press-07"
    np.testing.assert_allclose(rec.samples, x, atol=1e-6)
    data = load_recordings([tmp_path])
    assert len(data) == 2  # 2600 samples: two 1024-sample windows, the tail dropped
    np.testing.assert_allclose(data.x[0], vibration_features(x[:1024]), atol=1e-3)
    assert set(data.split) == {split_of("press-07.csv")}
    assert data.y.tolist() == [LABELS.index("bearing_fault")] * 2


def test_a_device_capture_body_is_imported_with_its_metadata(tmp_path: Path) -> None:
    from tinyfleet_device.capture import CaptureMeta, write_capture

    x = samples(Fault.MISALIGNMENT, 2048)
    body = write_capture(x * 9.80665, channel_names=("z_ms2", "y_ms2", "x_ms2"),
                         meta=CaptureMeta(sample_rate_hz=3200, device="press-007", boot=3, seq=9))
    d = tmp_path / "misalignment"
    d.mkdir()
    (d / "cap-1.csv").write_bytes(body)
    rec = load_recording(d / "cap-1.csv")
    assert rec.label == "misalignment"  # no label in the capture: the directory's
    assert rec.metadata["device"] == "press-007"
    np.testing.assert_allclose(rec.samples[:, 0], x[:, 2], atol=1e-4)  # channels by name, m/s² converted
    bad = d / "cap-2.csv"
    bad.write_bytes(body.replace(b"z_ms2,y_ms2,x_ms2", b"a,b,c"))
    with pytest.raises(RecordingError, match="no 'x' axis"):
        load_recording(bad)


def test_label_from_the_directory_rate_from_t_and_units(tmp_path: Path) -> None:
    d = tmp_path / "imbalance"
    d.mkdir()
    x = samples(Fault.IMBALANCE, 1100)
    rows = "\n".join(f"{i / 1600:.7f},{a * 9.80665},{b * 9.80665},{c * 9.80665}" for i, (a, b, c) in enumerate(x))
    (d / "m.csv").write_text(f"# units: m/s2\nt,z,y,x\n{rows}\n")
    rec = load_recording(d / "m.csv")
    assert rec.label == "imbalance"
    assert rec.sample_rate_hz == pytest.approx(1600.0, rel=1e-4)
    np.testing.assert_allclose(rec.samples[:, 2], x[:, 0], atol=1e-5)  # columns by name, not position


def test_three_channel_wav(tmp_path: Path) -> None:
    d = tmp_path / "normal"
    d.mkdir()
    x = samples(None, 2048)
    pcm = np.clip(np.rint(x / 2.0 * 32767), -32768, 32767).astype("<i2")
    with wave.open(str(d / "n.wav"), "wb") as w:
        w.setnchannels(3)
        w.setsampwidth(2)
        w.setframerate(3200)
        w.writeframes(pcm.tobytes())
    rec = load_recording(d / "n.wav")
    assert rec.label == "normal"
    np.testing.assert_allclose(rec.samples, x, atol=2.0 / 32768 * 1.01)
    assert len(load_recordings([d])) == 2


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("normal/a.csv", "# sample_rate_hz: 3200\nx,y\n1,2\n", "lacks column"),
        ("normal/b.csv", "x,y,z\n1,2,3\n", "no sample rate"),
        ("normal/c.csv", "# sample_rate_hz: 3200\nx,y,z\n1,2,oops\n", "not a number"),
        ("other/d.csv", "# sample_rate_hz: 3200\nx,y,z\n1,2,3\n", "no usable label"),
        ("normal/e.csv", "# sample_rate_hz: 3200\n# units: furlongs\nx,y,z\n1,2,3\n", "unknown units"),
        ("normal/f.csv", "# sample_rate_hz: 3200\nx,y,z\n1,2,3\n", "shorter than one"),
        ("normal/g.txt", "", "unknown recording type"),
    ],
)
def test_bad_recordings_are_refused_with_the_reason(tmp_path: Path, name: str, content: str, words: str) -> None:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    with pytest.raises(RecordingError, match=words) as info:
        load_recordings([path])
    assert str(path) in str(info.value)


def test_generation_is_deterministic_and_splits_by_machine() -> None:
    spec = GenerationSpec(n_machines=5, windows_per_class=3)
    a, b = generate(spec), generate(spec)
    np.testing.assert_array_equal(a.x, b.x)
    counts = a.counts()
    assert counts["train"] == dict.fromkeys(LABELS, 9)
    assert counts["val"] == dict.fromkeys(LABELS, 3)
    machines = {s: set(a.source[a.split == s]) for s in ("train", "val", "test")}
    assert not (machines["train"] & machines["val"])
    assert not (machines["train"] & machines["test"])
    assert np.all(a.severity[a.y == 0] == 0)
    assert np.all((a.severity[a.y != 0] >= 0.25) & (a.severity[a.y != 0] <= 1.5))
    assert len(merge([a, b])) == 2 * len(a)
