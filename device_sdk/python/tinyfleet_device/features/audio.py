"""Audio feature extraction, exactly as the shared MLCommons Tiny models were trained (numpy/scipy only).

Two pipelines, each a faithful re-implementation of the training code's preprocessing (a model only works on
features computed the way its training computed them; "close enough" log-mels give garbage scores):

**MLCommons Tiny anomaly detection (``ad01``, ToyADMOS ToyCar, DCASE 2020 task 2 baseline)** —
``common.file_to_vector_array`` with ``baseline.yaml`` (n_mels 128, frames 5, n_fft 1024, hop_length 512,
power 2.0) on librosa 0.6.0:

1. samples as float in [-1, 1] (``librosa.load(sr=None)``: int16 / 32768, no peak normalization), 16 kHz;
2. ``librosa.stft(center=True)``: the signal is reflect-padded by n_fft/2 = 512 samples at both ends, framed
   every 512 samples into 1024-sample frames (``1 + len // 512`` frames), each multiplied by a periodic Hann
   window (``scipy.signal.get_window("hann", 1024)``) and transformed with a real FFT (513 bins);
3. power spectrogram ``|X|**2``;
4. librosa's default mel filterbank (``librosa.filters.mel(sr, 1024, 128)``: Slaney's mel scale, linear below
   1 kHz and logarithmic above, 0 Hz .. 8 kHz, triangles normalized to unit area — ``norm=1`` / "slaney");
5. ``10 * log10(mel + sys.float_info.epsilon)`` (the code writes ``20 / power * log10``);
6. 5 consecutive frames concatenated frame-major into one 640-value vector (values ``0..127`` are frame t,
   ``128..255`` frame t+1, …), one vector per frame position: ``n_frames - 4`` vectors.

The model's anomaly score for a clip is the mean over its vectors of the mean squared reconstruction error.

**MLCommons Tiny keyword spotting (``kws_ref_model``, DS-CNN on Speech Commands v2)** —
``get_dataset.py``'s ``prepare_processing_graph`` with ``kws_util`` defaults (sample_rate 16000,
clip_duration_ms 1000, window_size_ms 30, window_stride_ms 20, dct_coefficient_count 10):

1. the clip divided by its maximum sample value (``wav / tf.reduce_max(wav)``: peak normalization, by the
   largest *signed* value as the training code does), then zero-padded at the end to 16,000 samples (the
   training's 2-sample "time shift" pads 2 zeros at both ends and slices from offset 2: a no-op);
2. ``tf.signal.stft(frame_length=480, frame_step=320, fft_length=None)``: no padding of the signal, 49 frames,
   periodic Hann window of 480 samples, each frame zero-padded to the next power of two (512) → 257 bins;
3. magnitude ``|X|`` (not power);
4. ``tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0)``: HTK mel scale
   (``1127 ln(1 + f/700)``), 40 triangles between 20 Hz and 4 kHz, spaced evenly in mel, unnormalized, the DC
   bin zeroed;
5. natural log with offset: ``ln(mel + 1e-6)``;
6. ``tf.signal.mfccs_from_log_mel_spectrograms``: the unnormalized DCT-II (``2 Σ x_n cos(πk(2n+1)/2N)``)
   scaled by ``1/sqrt(2N)`` — orthonormal for k ≥ 1, √2 × orthonormal for k = 0 — keeping the first 10
   coefficients → (49, 10).

The training adds background noise (Speech Commands' ``_background_noise_``) to training clips only; inference
features are computed without it. Both pipelines return float32; quantizing to the model's int8 input (scale and
zero point of its input tensor) is the model runner's job.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.signal

__all__ = [
    "AD_FRAMES",
    "AD_HOP_LENGTH",
    "AD_LOGMEL",
    "AD_N_FFT",
    "AD_N_MELS",
    "AD_SAMPLE_RATE_HZ",
    "KWS_CLIP_SAMPLES",
    "KWS_FRAME_LENGTH",
    "KWS_FRAME_STEP",
    "KWS_MFCC",
    "KWS_N_FRAMES",
    "KWS_N_MELS",
    "KWS_N_MFCC",
    "KWS_SAMPLE_RATE_HZ",
    "AudioFeatureError",
    "AudioFeatureSpec",
    "ad_log_mel_spectrogram",
    "ad_logmel_features",
    "ad_logmel_pipeline",
    "htk_mel_weight_matrix",
    "kws_mfcc_features",
    "kws_mfcc_pipeline",
    "slaney_mel_filterbank",
    "to_float_audio",
]

FloatArray = npt.NDArray[np.float32]

AD_SAMPLE_RATE_HZ = 16000
AD_N_FFT = 1024
AD_HOP_LENGTH = 512
AD_N_MELS = 128
AD_FRAMES = 5
_AD_POWER = 2.0

KWS_SAMPLE_RATE_HZ = 16000
KWS_CLIP_SAMPLES = 16000
KWS_FRAME_LENGTH = 480  # 30 ms
KWS_FRAME_STEP = 320  # 20 ms
KWS_FFT_LENGTH = 512  # tf.signal.stft(fft_length=None): next power of two >= frame_length
KWS_N_MELS = 40
KWS_N_MFCC = 10
KWS_LOWER_HZ = 20.0
KWS_UPPER_HZ = 4000.0
KWS_LOG_OFFSET = 1e-6
KWS_N_FRAMES = 1 + (KWS_CLIP_SAMPLES - KWS_FRAME_LENGTH) // KWS_FRAME_STEP  # 49


class AudioFeatureError(ValueError):
    """The samples cannot be turned into the requested features (wrong rate, shape, too short, not finite)."""


@dataclass(frozen=True, slots=True)
class AudioFeatureSpec:
    """What a pipeline needs from its source and what it produces (for the device's feature registry)."""

    name: str
    sample_rate_hz: int
    #: samples per window the device reads for one event: one 1 s clip for KWS; 1 s for AD too (32 frames ->
    #: 28 vectors, scored as their mean like MLCommons scores a 10 s clip; any length >= ``min_samples`` works)
    window_samples: int
    min_samples: int
    #: shape of one model input (without batch)
    vector_shape: tuple[int, ...]
    description: str


AD_LOGMEL = AudioFeatureSpec(
    name="ad-logmel",
    sample_rate_hz=AD_SAMPLE_RATE_HZ,
    window_samples=AD_SAMPLE_RATE_HZ,
    min_samples=(AD_FRAMES - 1) * AD_HOP_LENGTH,
    vector_shape=(AD_N_MELS * AD_FRAMES,),
    description="MLCommons Tiny AD log-mel: 16 kHz, n_fft 1024, hop 512, 128 Slaney mel bins, 10*log10 power, "
    "5 frames -> 640 values per vector",
)
KWS_MFCC = AudioFeatureSpec(
    name="kws-mfcc",
    sample_rate_hz=KWS_SAMPLE_RATE_HZ,
    window_samples=KWS_CLIP_SAMPLES,
    min_samples=1,
    vector_shape=(KWS_N_FRAMES, KWS_N_MFCC),
    description="MLCommons Tiny KWS MFCC: 1 s at 16 kHz peak-normalized, 30 ms Hann / 20 ms stride, |STFT| 512, "
    "40 HTK mel 20-4000 Hz, ln(x+1e-6), DCT-II -> 49 x 10",
)


def to_float_audio(samples: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Mono samples as float64 in [-1, 1]: int16 / 32768, int32 / 2**31, uint8 (WAV 8-bit) (x - 128) / 128,
    floats unchanged. Raises :class:`AudioFeatureError` for multi-channel or non-finite input."""
    arr = np.asarray(samples)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise AudioFeatureError(f"expected mono samples (1-D), got shape {arr.shape}")
    if arr.dtype == np.int16:
        out = arr.astype(np.float64) / 32768.0
    elif arr.dtype == np.int32:
        out = arr.astype(np.float64) / 2147483648.0
    elif arr.dtype == np.uint8:
        out = (arr.astype(np.float64) - 128.0) / 128.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float64)
    else:
        raise AudioFeatureError(f"unsupported sample type {arr.dtype}")
    if not np.all(np.isfinite(out)):
        raise AudioFeatureError("samples contain NaN or infinity")
    return out


def _check_rate(sample_rate_hz: int, expected: int, what: str) -> None:
    if int(sample_rate_hz) != expected:
        raise AudioFeatureError(
            f"{what} features need {expected} Hz audio, got {sample_rate_hz} Hz (resample first, e.g. "
            "tinyfleet_device.sensors.keyword.resample)"
        )


# ------------------------------------------------------------------------------------------- anomaly (ad01)


def _slaney_hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    mels = hz / f_sp
    log_region = hz >= min_log_hz
    mels[log_region] = min_log_mel + np.log(hz[log_region] / min_log_hz) / logstep
    return mels


def _slaney_mel_to_hz(mels: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    f_sp = 200.0 / 3.0
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    hz = f_sp * mels
    log_region = mels >= min_log_mel
    hz[log_region] = min_log_hz * np.exp(logstep * (mels[log_region] - min_log_mel))
    return hz


@lru_cache(maxsize=8)
def slaney_mel_filterbank(
    sample_rate_hz: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> npt.NDArray[np.float64]:
    """librosa's default ``filters.mel`` (htk=False, norm=1/"slaney"): (n_mels, 1 + n_fft // 2) weights.

    Band edges are ``n_mels + 2`` points evenly spaced on Slaney's mel scale (linear, 200/3 Hz per mel, below
    1 kHz; logarithmic, a factor 6.4 per 27 mels, above), triangles evaluated at the FFT bin frequencies in Hz,
    each scaled by ``2 / (f_upper - f_lower)`` so that every filter has the same area."""
    if fmax is None:
        fmax = sample_rate_hz / 2.0
    fftfreqs = np.linspace(0.0, sample_rate_hz / 2.0, 1 + n_fft // 2)
    mel_edges = np.linspace(
        _slaney_hz_to_mel(np.array([fmin], dtype=np.float64))[0],
        _slaney_hz_to_mel(np.array([fmax], dtype=np.float64))[0],
        n_mels + 2,
    )
    mel_f = _slaney_mel_to_hz(mel_edges)
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fftfreqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=1)
def _ad_mel_matrix() -> npt.NDArray[np.float64]:
    """The AD filterbank transposed, (513, 128), C-contiguous."""
    m = np.ascontiguousarray(slaney_mel_filterbank(AD_SAMPLE_RATE_HZ, AD_N_FFT, AD_N_MELS).T)
    m.setflags(write=False)
    return m


@lru_cache(maxsize=8)
def _periodic_hann(n: int) -> npt.NDArray[np.float64]:
    w = np.asarray(scipy.signal.get_window("hann", n, fftbins=True), dtype=np.float64)
    w.setflags(write=False)
    return w


def ad_log_mel_spectrogram(samples: npt.ArrayLike, sample_rate_hz: int = AD_SAMPLE_RATE_HZ) -> FloatArray:
    """Log-mel energies in dB, (n_frames, 128) with ``n_frames = 1 + len // 512`` (librosa 0.6, center=True)."""
    _check_rate(sample_rate_hz, AD_SAMPLE_RATE_HZ, "ad-logmel")
    y = to_float_audio(samples)
    pad = AD_N_FFT // 2
    if y.size <= pad:
        raise AudioFeatureError(f"ad-logmel needs more than {pad} samples (reflect padding), got {y.size}")
    padded = np.pad(y, pad, mode="reflect")
    n_frames = 1 + (padded.size - AD_N_FFT) // AD_HOP_LENGTH
    frames = np.lib.stride_tricks.sliding_window_view(padded, AD_N_FFT)[::AD_HOP_LENGTH][:n_frames]
    spectrum = scipy.fft.rfft(frames * _periodic_hann(AD_N_FFT), axis=1)
    power = spectrum.real**2 + spectrum.imag**2
    # einsum, not matmul: at this size OpenBLAS goes multi-threaded, which on a busy machine (a fleet simulator,
    # CI) is 10x slower than numpy's own single-threaded loop
    mel = np.einsum("fk,km->fm", power, _ad_mel_matrix())
    log_mel: FloatArray = (10.0 * np.log10(np.asarray(mel) + sys.float_info.epsilon)).astype(np.float32)
    return log_mel


def ad_logmel_features(samples: npt.ArrayLike, sample_rate_hz: int = AD_SAMPLE_RATE_HZ) -> FloatArray:
    """MLCommons Tiny AD input vectors: (n_frames - 4, 640), 5 consecutive log-mel frames each, frame-major.

    At least 2,048 samples (5 frames) are needed; a 10 s ToyADMOS-length clip gives 309 vectors."""
    log_mel = ad_log_mel_spectrogram(samples, sample_rate_hz)
    n_vectors = log_mel.shape[0] - AD_FRAMES + 1
    if n_vectors < 1:
        raise AudioFeatureError(
            f"ad-logmel needs at least {AD_FRAMES} frames ({(AD_FRAMES - 1) * AD_HOP_LENGTH} samples), got "
            f"{log_mel.shape[0]}"
        )
    windows = np.lib.stride_tricks.sliding_window_view(log_mel, AD_FRAMES, axis=0)  # (n, 128, 5)
    return np.ascontiguousarray(windows.transpose(0, 2, 1).reshape(n_vectors, AD_FRAMES * AD_N_MELS))


# ----------------------------------------------------------------------------------------------- keyword (kws)


@lru_cache(maxsize=8)
def htk_mel_weight_matrix(
    num_mel_bins: int,
    num_spectrogram_bins: int,
    sample_rate_hz: int,
    lower_edge_hz: float,
    upper_edge_hz: float,
) -> npt.NDArray[np.float64]:
    """``tf.signal.linear_to_mel_weight_matrix`` in numpy: (num_spectrogram_bins, num_mel_bins).

    HTK mel (``1127 ln(1 + f/700)``); the spectrogram bins' frequencies ``linspace(0, sr/2, bins)``; the DC bin
    gets no weight; band edges ``num_mel_bins + 2`` points evenly spaced in mel between the edges; triangle
    weights computed in mel (not Hz) and not normalized."""

    def hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return 1127.0 * np.log1p(f / 700.0)

    freqs = np.linspace(0.0, sample_rate_hz / 2.0, num_spectrogram_bins)[1:]
    bins_mel = hz_to_mel(freqs)[:, None]
    edges = np.linspace(
        hz_to_mel(np.array(lower_edge_hz)), hz_to_mel(np.array(upper_edge_hz)), num_mel_bins + 2
    )
    lower, center, upper = edges[:-2][None, :], edges[1:-1][None, :], edges[2:][None, :]
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))
    weights = np.vstack([np.zeros((1, num_mel_bins)), weights])
    weights.setflags(write=False)
    return weights


def kws_mfcc_features(samples: npt.ArrayLike, sample_rate_hz: int = KWS_SAMPLE_RATE_HZ) -> FloatArray:
    """MLCommons Tiny KWS input: (49, 10) MFCCs of one clip of at most 1 s (shorter clips are zero-padded).

    Raises :class:`AudioFeatureError` for a clip longer than 16,000 samples (cut it into 1 s clips first: the
    model classifies one utterance per clip)."""
    _check_rate(sample_rate_hz, KWS_SAMPLE_RATE_HZ, "kws-mfcc")
    y = to_float_audio(samples)
    if y.size == 0:
        raise AudioFeatureError("kws-mfcc needs at least one sample")
    if y.size > KWS_CLIP_SAMPLES:
        raise AudioFeatureError(f"kws-mfcc takes one clip of at most {KWS_CLIP_SAMPLES} samples, got {y.size}")
    peak = float(np.max(y))
    if peak > 0.0:  # the training divides by the largest value; an all-zero (or all-negative) clip stays as is
        y = y / peak
    clip = np.zeros(KWS_CLIP_SAMPLES, dtype=np.float64)
    clip[: y.size] = y
    frames = np.lib.stride_tricks.sliding_window_view(clip, KWS_FRAME_LENGTH)[::KWS_FRAME_STEP][:KWS_N_FRAMES]
    spectrum = np.abs(scipy.fft.rfft(frames * _periodic_hann(KWS_FRAME_LENGTH), n=KWS_FFT_LENGTH, axis=1))
    weights = htk_mel_weight_matrix(
        KWS_N_MELS, KWS_FFT_LENGTH // 2 + 1, KWS_SAMPLE_RATE_HZ, KWS_LOWER_HZ, KWS_UPPER_HZ
    )
    log_mel = np.log(spectrum @ weights + KWS_LOG_OFFSET)
    mfcc = np.asarray(scipy.fft.dct(log_mel, type=2, axis=1)) / np.sqrt(2.0 * KWS_N_MELS)
    out: FloatArray = mfcc[:, :KWS_N_MFCC].astype(np.float32)
    return out


def ad_logmel_pipeline(window: npt.ArrayLike, sample_rate_hz: float) -> FloatArray:
    """The ``ad-logmel`` registry entry's function (``FeaturePipeline.compute`` passes the rate as a float)."""
    return ad_logmel_features(window, int(sample_rate_hz))


def kws_mfcc_pipeline(window: npt.ArrayLike, sample_rate_hz: float) -> FloatArray:
    """The ``kws-mfcc`` registry entry's function."""
    return kws_mfcc_features(window, int(sample_rate_hz))
