"""The keyword source: real espeak-ng synthesis, WAV reading and resampling, 1 s clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io.wavfile

from tinyfleet_device.sensors.keyword import (
    KeywordAudioError,
    UtteranceSource,
    WavSource,
    read_wav,
    synthesize,
    to_clip,
)

FS = 16000


def voiced_seconds(x: np.ndarray) -> float:
    frames = x[: x.size // 160 * 160].reshape(-1, 160)
    rms = np.sqrt((frames**2).mean(axis=1))
    return float((rms > rms.max() * 0.05).sum() * 0.01)


def test_synthesize_speaks_with_voice_speed_and_pitch() -> None:
    slow = synthesize("stop", voice="en-us", speed=110)
    fast = synthesize("stop", voice="en-us", speed=300)
    assert slow.dtype == np.float32
    assert np.abs(slow).max() > 0.05
    assert np.abs(slow).max() <= 1.0
    assert 0.2 < voiced_seconds(slow) < 1.5
    assert voiced_seconds(fast) < voiced_seconds(slow) * 0.85
    low, high = synthesize("no", pitch=10), synthesize("no", pitch=90)
    assert not np.array_equal(low[: min(low.size, high.size)], high[: min(low.size, high.size)])
    other = synthesize("stop", voice="en-gb-scotland+f2", speed=110)
    assert not np.array_equal(other[:2000], slow[:2000])


def test_synthesize_refuses_bad_parameters() -> None:
    for kwargs in ({"speed": 10}, {"pitch": 100}, {"voice": "-x"}, {"voice": "en us"}):
        with pytest.raises(KeywordAudioError):
            synthesize("yes", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(KeywordAudioError, match="printable"):
        synthesize("\x00")
    with pytest.raises(KeywordAudioError, match="no voice 'no-such-voice'"):
        synthesize("yes", voice="no-such-voice")
    with pytest.raises(KeywordAudioError, match="no voice 'en-us\\+nope'"):
        synthesize("yes", voice="en-us+nope")


def test_read_wav_mixes_to_mono_and_resamples(tmp_path: Path) -> None:
    t = np.arange(44100) / 44100
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([left, left * 0.5], axis=1)
    path = tmp_path / "a.wav"
    scipy.io.wavfile.write(path, 44100, np.round(stereo * 32767).astype(np.int16))
    x, rate = read_wav(path)
    assert rate == FS
    assert x.dtype == np.float32
    assert abs(x.size - FS) <= 1
    f = np.fft.rfftfreq(x.size, 1 / FS)
    assert abs(f[np.argmax(np.abs(np.fft.rfft(x)))] - 440) < 2
    assert np.abs(x[1000:-1000]).max() == pytest.approx(0.375, abs=0.01)  # (0.5 + 0.25) / 2
    native, native_rate = read_wav(path, sample_rate_hz=None)
    assert native_rate == 44100
    assert native.size == 44100
    floats = tmp_path / "f.wav"
    scipy.io.wavfile.write(floats, FS, (0.25 * np.ones(800)).astype(np.float32))
    assert read_wav(floats)[0][0] == pytest.approx(0.25)


@pytest.mark.filterwarnings("ignore::scipy.io.wavfile.WavFileWarning")
def test_read_wav_refuses_broken_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")  # scipy warns about the junk chunk, then fails
    with pytest.raises(KeywordAudioError, match="cannot read WAV"):
        read_wav(bad)
    with pytest.raises(KeywordAudioError, match="cannot read WAV"):
        read_wav(tmp_path / "missing.wav")


def test_to_clip_places_the_word_and_adds_noise_at_the_snr() -> None:
    word = synthesize("yes")
    clip = to_clip(word)
    assert clip.shape == (FS,)
    loud = np.flatnonzero(np.abs(clip) > 0.01)
    assert abs((loud[0] + loud[-1]) / 2 - FS / 2) < 800  # centered
    early = to_clip(word, offset=0)
    assert np.flatnonzero(np.abs(early) > 0.01)[0] < 400
    rng = np.random.default_rng(0)
    noisy = to_clip(word, noise_snr_db=20, rng=rng)
    noise = noisy - clip
    active = clip != 0
    snr = 10 * np.log10(np.mean(clip[active] ** 2) / np.mean(noise**2))
    assert snr == pytest.approx(20, abs=0.5)
    with pytest.raises(KeywordAudioError, match="outside the clip"):
        to_clip(word, offset=15000)


def test_wav_source_streams_and_loops(tmp_path: Path) -> None:
    path = tmp_path / "ramp.wav"
    scipy.io.wavfile.write(path, FS, np.arange(1000, dtype=np.int16))
    src = WavSource(path)
    assert src.sample_rate_hz == FS
    a = src.read(600)
    b = src.read(600)
    assert a[0] == 0
    assert b[0] == pytest.approx(600 / 32768)
    assert b[400] == 0
    once = WavSource(path, loop=False)
    once.read(900)
    tail = once.read(300)
    assert tail[99] == pytest.approx(999 / 32768)
    assert np.all(tail[100:] == 0)
    with pytest.raises(EOFError):
        once.read(10)


def test_utterance_source_gives_labelled_clips() -> None:
    src = UtteranceSource(("yes", "no"), voices=("en-us", "en-gb"), seed=1)
    clips = [src.read(FS) for _ in range(3)]
    assert src.spoken == ["yes", "no", "yes"]
    assert all(c.shape == (FS,) and np.abs(c).max() > 0.05 for c in clips)
    assert src.sample_rate_hz == FS


def test_committed_test_vector_is_a_1s_16khz_clip() -> None:
    path = Path(__file__).parents[3] / "device_sdk" / "test-vectors" / "kws-yes-espeak-en-us.wav"
    rate, data = scipy.io.wavfile.read(path)
    assert rate == FS
    assert data.dtype == np.int16
    assert data.shape == (FS,)
