"""Keyword audio: WAV files and utterances synthesized with Debian's ``espeak-ng``, as 1 s, 16 kHz clips.

The MLCommons Tiny KWS model (``kws_ref_model``) classifies one 1 s clip at 16 kHz (Speech Commands v2). This
module provides such clips from two places:

* :func:`read_wav` / :class:`WavSource` — any PCM or float WAV (``scipy.io.wavfile``), mixed down to mono and
  resampled to 16 kHz with ``scipy.signal.resample_poly`` (polyphase, anti-aliased);
* :func:`synthesize` — a word spoken by ``espeak-ng`` (formant synthesis, installed from Debian's package
  ``espeak-ng``: ``scripts/ensure-system-packages.sh espeak-ng``), with voice (language/accent and variant such as
  ``en-us+f3``), speed (words per minute) and pitch (0..99) varied to stand in for different speakers;
* :func:`to_clip` — trims the synthesizer's leading/trailing silence and places the utterance in a 1 s clip
  (centered as Speech Commands' words roughly are, or at a given offset), optionally over background noise at a
  given signal-to-noise ratio.

Samples are float32 in [-1, 1] throughout (int16 WAVs are divided by 32768).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.io.wavfile
import scipy.signal

__all__ = [
    "CLIP_SAMPLES",
    "DEFAULT_VOICES",
    "SAMPLE_RATE_HZ",
    "EspeakNotInstalledError",
    "KeywordAudioError",
    "UtteranceSource",
    "WavSource",
    "read_wav",
    "resample",
    "synthesize",
    "to_clip",
]

SAMPLE_RATE_HZ = 16000
CLIP_SAMPLES = 16000
#: espeak-ng voices (language + variant) that come with Debian's espeak-ng-data (no mbrola needed)
DEFAULT_VOICES: tuple[str, ...] = (
    "en-us", "en-gb", "en-us+f3", "en-gb-x-rp+m3", "en-029", "en-gb-scotland+f2", "en-us-nyc", "en+m7",
)

FloatArray = npt.NDArray[np.float32]


class KeywordAudioError(ValueError):
    """A WAV file cannot be read or used, or synthesis parameters are out of range."""


class EspeakNotInstalledError(KeywordAudioError):
    """``espeak-ng`` is not on PATH."""


def _to_float(data: npt.NDArray[np.generic]) -> npt.NDArray[np.float64]:
    if data.dtype == np.int16:
        return data.astype(np.float64) / 32768.0
    if data.dtype == np.int32:
        return data.astype(np.float64) / 2147483648.0
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0
    if np.issubdtype(data.dtype, np.floating):
        return data.astype(np.float64)
    raise KeywordAudioError(f"unsupported WAV sample type {data.dtype}")


def resample(samples: npt.ArrayLike, from_hz: int, to_hz: int = SAMPLE_RATE_HZ) -> FloatArray:
    """Polyphase resampling (``scipy.signal.resample_poly``, Kaiser-windowed anti-aliasing FIR)."""
    x = np.asarray(samples, dtype=np.float64)
    if from_hz <= 0 or to_hz <= 0:
        raise KeywordAudioError(f"sample rates must be positive, got {from_hz} -> {to_hz}")
    if from_hz == to_hz:
        return x.astype(np.float32)
    ratio = Fraction(int(to_hz), int(from_hz))
    y = scipy.signal.resample_poly(x, ratio.numerator, ratio.denominator)
    return np.asarray(y, dtype=np.float32)


def read_wav(path: str | Path, *, sample_rate_hz: int | None = SAMPLE_RATE_HZ) -> tuple[FloatArray, int]:
    """A WAV file as mono float32 in [-1, 1] and its rate; resampled to ``sample_rate_hz`` unless ``None``.

    Multi-channel files are averaged to mono. Raises :class:`KeywordAudioError` (from the cause) for a missing,
    truncated or non-WAV file."""
    try:
        rate, data = scipy.io.wavfile.read(str(path))
    except (OSError, ValueError, EOFError) as exc:
        raise KeywordAudioError(f"cannot read WAV file {path}: {exc}") from exc
    samples = _to_float(np.asarray(data))
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    if samples.ndim != 1 or samples.size == 0:
        raise KeywordAudioError(f"WAV file {path} holds no samples")
    if not np.all(np.isfinite(samples)):
        raise KeywordAudioError(f"WAV file {path} holds NaN or infinite samples")
    if sample_rate_hz is None or rate == sample_rate_hz:
        return samples.astype(np.float32), int(rate)
    return resample(samples, int(rate), sample_rate_hz), int(sample_rate_hz)


def synthesize(
    word: str,
    *,
    voice: str = "en",
    speed: int = 150,
    pitch: int = 50,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    timeout_s: float = 20.0,
) -> FloatArray:
    """``word`` spoken by espeak-ng (its native 22,050 Hz output resampled to ``sample_rate_hz``), float32.

    ``speed`` in words per minute (80..450), ``pitch`` 0..99, ``voice`` any espeak-ng voice name with an
    optional ``+variant`` (``espeak-ng --voices=en``; ``ls .../espeak-ng-data/voices/!v`` for variants)."""
    if not word or not word.strip() or len(word) > 200 or any(ord(c) < 32 for c in word):
        raise KeywordAudioError(f"word must be 1..200 printable characters, got {word!r}")
    if not 80 <= speed <= 450:
        raise KeywordAudioError(f"speed must be 80..450 words per minute, got {speed}")
    if not 0 <= pitch <= 99:
        raise KeywordAudioError(f"pitch must be 0..99, got {pitch}")
    if not voice or voice.startswith("-") or any(c.isspace() for c in voice):
        raise KeywordAudioError(f"bad espeak-ng voice name {voice!r}")
    exe = _espeak()
    # espeak-ng silently falls back to its default voice for an unknown name: check it ourselves
    base, _, variant = voice.partition("+")
    voices, variants = _voices(exe)
    if base not in voices or (variant and variant not in variants):
        raise KeywordAudioError(f"espeak-ng has no voice {voice!r} (see espeak-ng --voices, --voices=variant)")
    with tempfile.TemporaryDirectory(prefix="tinyfleet-espeak-") as tmp:
        out = Path(tmp) / "utterance.wav"
        try:
            proc = subprocess.run(
                [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(out), "--", word],
                capture_output=True, timeout=timeout_s, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise KeywordAudioError(f"espeak-ng did not finish within {timeout_s} s") from exc
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        if proc.returncode != 0 or not out.exists() or stderr:
            raise KeywordAudioError(f"espeak-ng failed for voice {voice!r}: {stderr or f'exit {proc.returncode}'}")
        samples, _ = read_wav(out, sample_rate_hz=sample_rate_hz)
    return samples


def _espeak() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakNotInstalledError(
            "espeak-ng is not installed: install the Debian package (scripts/ensure-system-packages.sh espeak-ng)"
        )
    return exe


@lru_cache(maxsize=2)
def _voices(exe: str) -> tuple[frozenset[str], frozenset[str]]:
    """Names espeak-ng accepts for ``-v``: languages, voice names and voice files; and the ``+variant`` names."""

    def table(arg: str) -> list[list[str]]:
        try:
            out = subprocess.run(
                [exe, arg], capture_output=True, timeout=20, check=True
            ).stdout.decode("utf-8", "replace")
        except (OSError, subprocess.SubprocessError) as exc:
            raise KeywordAudioError(f"cannot list espeak-ng voices: {exc}") from exc
        return [line.split() for line in out.splitlines()[1:] if len(line.split()) >= 5]

    voices: set[str] = set()
    for row in table("--voices"):
        voices.update((row[1], row[3], row[4], row[4].rsplit("/", 1)[-1]))
    variants = {row[4].rsplit("/", 1)[-1] for row in table("--voices=variant")}
    variants.update(row[3] for row in table("--voices=variant"))
    return frozenset(voices), frozenset(variants)


def _trim(samples: npt.NDArray[np.float64], rate: int, threshold_db: float = -40.0) -> npt.NDArray[np.float64]:
    """Cut leading/trailing silence: frames of 10 ms whose RMS is ``threshold_db`` below the loudest frame."""
    frame = max(1, rate // 100)
    n = samples.size // frame
    if n == 0:
        return samples
    rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
    peak = float(rms.max())
    if peak <= 0.0:
        return samples[:0]
    loud = np.flatnonzero(rms >= peak * 10 ** (threshold_db / 20))
    return samples[loud[0] * frame : (loud[-1] + 1) * frame]


def to_clip(
    samples: npt.ArrayLike,
    *,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
    length: int = CLIP_SAMPLES,
    offset: int | None = None,
    noise_snr_db: float | None = None,
    noise: npt.ArrayLike | None = None,
    rng: np.random.Generator | None = None,
) -> FloatArray:
    """The utterance in ``samples`` trimmed of silence and placed in a clip of ``length`` samples.

    ``offset`` = first sample of the utterance in the clip (default: centered); an utterance longer than the
    clip is cut around its middle. With ``noise_snr_db`` background noise is added at that signal-to-noise ratio
    (RMS of the utterance vs the noise): ``noise`` samples if given (looped/cut to the clip), else white noise
    from ``rng``."""
    x = np.asarray(samples, dtype=np.float64).reshape(-1)
    if length <= 0:
        raise KeywordAudioError(f"clip length must be positive, got {length}")
    word = _trim(x, sample_rate_hz)
    if word.size > length:
        start = (word.size - length) // 2
        word = word[start : start + length]
    clip = np.zeros(length, dtype=np.float64)
    if word.size:
        at = (length - word.size) // 2 if offset is None else int(offset)
        if not 0 <= at <= length - word.size:
            raise KeywordAudioError(f"offset {offset} puts the {word.size}-sample utterance outside the clip")
        clip[at : at + word.size] = word
    if noise_snr_db is not None:
        if not math.isfinite(noise_snr_db):
            raise KeywordAudioError("noise_snr_db must be finite")
        if noise is not None:
            bg = np.asarray(noise, dtype=np.float64).reshape(-1)
            if bg.size == 0:
                raise KeywordAudioError("background noise has no samples")
            bg = np.resize(bg, length)
        else:
            bg = (rng or np.random.default_rng()).standard_normal(length)
        bg_rms = float(np.sqrt(np.mean(bg**2)))
        sig_rms = float(np.sqrt(np.mean(word**2))) if word.size else 0.0
        if bg_rms > 0 and sig_rms > 0:
            clip += bg * (sig_rms / bg_rms) * 10 ** (-noise_snr_db / 20)
    return np.clip(clip, -1.0, 1.0).astype(np.float32)


class WavSource:
    """A WAV file as a stream: ``read(n)`` gives the next ``n`` samples at ``sample_rate_hz`` (mono float32).

    At the end of the file it starts over when ``loop`` is true, else pads the last read with zeros and then
    raises :class:`EOFError`."""

    def __init__(self, path: str | Path, *, sample_rate_hz: int = SAMPLE_RATE_HZ, loop: bool = True) -> None:
        self.path = Path(path)
        self.samples, self.sample_rate_hz = read_wav(self.path, sample_rate_hz=sample_rate_hz)
        self.loop = loop
        self._pos = 0

    def read(self, n: int) -> FloatArray:
        if not isinstance(n, int) or n <= 0:
            raise KeywordAudioError(f"read size must be a positive int, got {n!r}")
        if self._pos >= self.samples.size and not self.loop:
            raise EOFError(f"end of {self.path}")
        if self.loop:
            idx = (self._pos + np.arange(n)) % self.samples.size
            self._pos = int((self._pos + n) % self.samples.size)
            return self.samples[idx]
        out = np.zeros(n, dtype=np.float32)
        chunk = self.samples[self._pos : self._pos + n]
        out[: chunk.size] = chunk
        self._pos += n
        return out


class UtteranceSource:
    """A stream of synthesized 1 s keyword clips: ``read(16000)`` gives one clip, cycling through ``words`` ×
    ``voices`` with speed and pitch drawn from ``rng`` (seeded: the same sequence every run), over white noise at
    ``noise_snr_db`` (30 dB by default: a microphone's noise floor, as every Speech Commands clip has; ``None``
    for digital silence around the word, which the KWS model recognizes less well — docs/models.md).

    ``read(n)`` with any other ``n`` slices the same continuous stream of back-to-back clips."""

    def __init__(
        self,
        words: Sequence[str] = ("yes", "no", "stop"),
        *,
        voices: Sequence[str] = DEFAULT_VOICES,
        speeds: tuple[int, int] = (120, 200),
        pitches: tuple[int, int] = (30, 70),
        noise_snr_db: float | None = 30.0,
        seed: int = 0,
        sample_rate_hz: int = SAMPLE_RATE_HZ,
    ) -> None:
        if not words or not voices:
            raise KeywordAudioError("UtteranceSource needs at least one word and one voice")
        self.words, self.voices = tuple(words), tuple(voices)
        self.speeds, self.pitches = speeds, pitches
        self.noise_snr_db = noise_snr_db
        self.sample_rate_hz = sample_rate_hz
        self._rng = np.random.default_rng(seed)
        self._clips = self._generate()
        self._buffer = np.zeros(0, dtype=np.float32)
        #: the word of each clip handed out so far, in order (ground truth for a test or a demo)
        self.spoken: list[str] = []

    def _generate(self) -> Iterator[tuple[str, FloatArray]]:
        i = 0
        while True:
            word = self.words[i % len(self.words)]
            voice = self.voices[(i // len(self.words)) % len(self.voices)]
            speed = int(self._rng.integers(self.speeds[0], self.speeds[1] + 1))
            pitch = int(self._rng.integers(self.pitches[0], self.pitches[1] + 1))
            audio = synthesize(word, voice=voice, speed=speed, pitch=pitch, sample_rate_hz=self.sample_rate_hz)
            clip = to_clip(audio, sample_rate_hz=self.sample_rate_hz, length=self.sample_rate_hz,
                           noise_snr_db=self.noise_snr_db, rng=self._rng)
            yield word, clip
            i += 1

    def read(self, n: int) -> FloatArray:
        if not isinstance(n, int) or n <= 0:
            raise KeywordAudioError(f"read size must be a positive int, got {n!r}")
        while self._buffer.size < n:
            word, clip = next(self._clips)
            self.spoken.append(word)
            self._buffer = np.concatenate([self._buffer, clip])
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out
