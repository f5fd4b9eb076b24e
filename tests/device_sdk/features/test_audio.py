"""The audio feature pipelines against their definitions: the KWS MFCC against TensorFlow's tf.signal (what the
MLCommons KWS training ran), the AD log-mel against librosa's documented formulas and analytic values (librosa
itself is not a dependency; the end-to-end check of the AD features is the anomaly-model test)."""

from __future__ import annotations

import numpy as np
import pytest

from tinyfleet_device.features import FEATURES
from tinyfleet_device.features.audio import (
    AudioFeatureError,
    _slaney_hz_to_mel,
    _slaney_mel_to_hz,
    ad_log_mel_spectrogram,
    ad_logmel_features,
    htk_mel_weight_matrix,
    kws_mfcc_features,
    slaney_mel_filterbank,
)
from tinyfleet_device.sensors.keyword import synthesize, to_clip
from tinyfleet_device.sensors.sound import MachineSoundSimulator

FS = 16000


@pytest.fixture(scope="module")
def tf():  # type: ignore[no-untyped-def]
    import tensorflow  # the train extra; test only: the device code never imports it

    return tensorflow


def tf_mfcc(tf, clip: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The MLCommons KWS get_dataset.py steps, in TensorFlow (test only)."""
    wav = tf.constant(clip.astype(np.float32))
    wav = wav / tf.reduce_max(wav)
    wav = tf.pad(wav, [[0, 16000 - tf.shape(wav)[-1]]])
    wav = tf.slice(tf.pad(wav, [[2, 2]]), [2], [16000])
    stfts = tf.signal.stft(wav, frame_length=480, frame_step=320, fft_length=None, window_fn=tf.signal.hann_window)
    spectrograms = tf.abs(stfts)
    weights = tf.signal.linear_to_mel_weight_matrix(40, stfts.shape[-1], 16000, 20.0, 4000.0)
    log_mel = tf.math.log(tf.tensordot(spectrograms, weights, 1) + 1e-6)
    return tf.signal.mfccs_from_log_mel_spectrograms(log_mel)[..., :10].numpy()


def test_htk_mel_matrix_is_tf_signals(tf) -> None:  # type: ignore[no-untyped-def]
    ours = htk_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0)
    theirs = tf.signal.linear_to_mel_weight_matrix(40, 257, 16000, 20.0, 4000.0).numpy()
    assert ours.shape == theirs.shape == (257, 40)
    np.testing.assert_allclose(ours, theirs, atol=2e-5)


def test_kws_mfcc_matches_tf_signal(tf) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(3)
    t = np.arange(FS) / FS
    clips = {
        "speech": to_clip(synthesize("stop", voice="en-us", speed=150), noise_snr_db=30, rng=rng),
        "noise": (0.05 * rng.standard_normal(FS)).astype(np.float32),
        "tone+noise": (0.3 * np.sin(2 * np.pi * 700 * t) + 0.01 * rng.standard_normal(FS)).astype(np.float32),
        "short": (0.2 * rng.standard_normal(9000)).astype(np.float32),  # zero-padded to 1 s by both
    }
    for name, clip in clips.items():
        ours = kws_mfcc_features(clip)
        theirs = tf_mfcc(tf, clip)
        assert ours.shape == theirs.shape == (49, 10), name
        assert ours.dtype == np.float32
        # float32 TF vs float64 numpy; the model's input step is 0.58, so 1e-3 is far below what matters
        np.testing.assert_allclose(ours, theirs, atol=1e-3, rtol=0, err_msg=name)


def test_kws_mfcc_is_scale_invariant_and_int16_equals_float() -> None:
    rng = np.random.default_rng(4)
    clip = (0.3 * rng.standard_normal(FS)).clip(-1, 1).astype(np.float32)
    base = kws_mfcc_features(clip)
    np.testing.assert_allclose(kws_mfcc_features(clip * 0.1), base, atol=1e-4)  # peak normalization
    as_int16 = np.round(clip * 32767).astype(np.int16)
    np.testing.assert_allclose(kws_mfcc_features(as_int16), base, atol=1e-2)


def test_kws_mfcc_refuses_bad_input() -> None:
    with pytest.raises(AudioFeatureError, match="16000 Hz"):
        kws_mfcc_features(np.zeros(8000), 8000)
    with pytest.raises(AudioFeatureError, match="at most 16000"):
        kws_mfcc_features(np.zeros(16001))
    with pytest.raises(AudioFeatureError, match="NaN"):
        kws_mfcc_features(np.full(100, np.nan))
    with pytest.raises(AudioFeatureError, match="mono"):
        kws_mfcc_features(np.zeros((100, 2)))
    silent = kws_mfcc_features(np.zeros(FS))  # all zeros: no division by zero, log of the offset
    assert np.all(np.isfinite(silent))
    # c0 = 2 * sum(log 1e-6) / sqrt(2 * 40): -123.6, the lower end of the model input range (-128 - 83) * 0.5847
    assert silent[0, 0] == pytest.approx(2 * 40 * np.log(1e-6) / np.sqrt(80), rel=1e-5)


def test_slaney_mel_scale_and_filterbank() -> None:
    # Slaney's scale: 200/3 Hz per mel up to 1 kHz (15 mels), then a factor 6.4 per 27 mels
    assert _slaney_hz_to_mel(np.array([1000.0]))[0] == pytest.approx(15.0)
    assert _slaney_hz_to_mel(np.array([6400.0]))[0] == pytest.approx(42.0)
    hz = np.array([0.0, 100.0, 999.0, 1000.0, 3000.0, 8000.0])
    np.testing.assert_allclose(_slaney_mel_to_hz(_slaney_hz_to_mel(hz.copy())), hz, atol=1e-9)
    fb = slaney_mel_filterbank(16000, 1024, 128)
    assert fb.shape == (128, 513)
    assert np.all(fb >= 0)
    edges = _slaney_mel_to_hz(np.linspace(0, _slaney_hz_to_mel(np.array([8000.0]))[0], 130))
    freqs = np.linspace(0, 8000, 513)
    for m in (5, 40, 90, 127):
        # the peak sits at the FFT bin nearest the band's center; the weights vanish outside its edges
        assert abs(freqs[np.argmax(fb[m])] - edges[m + 1]) <= 8000 / 512
        assert np.all(fb[m][(freqs <= edges[m]) | (freqs >= edges[m + 2])] == 0)
        # norm="slaney": each triangle has unit area in Hz (2 / width x width / 2), up to the sampling by bins
        # (exact enough once a triangle spans many bins)
        if m >= 40:
            assert np.sum(fb[m]) * (8000 / 512) == pytest.approx(1.0, rel=0.05)


def test_ad_log_mel_of_a_tone_is_analytic() -> None:
    """A sine of amplitude A at FFT bin k under a periodic Hann window: |X_k| = A*N/4 and |X_k+-1| = A*N/8 (all
    other bins 0), so the mel energy is sum_j w_mj |X_j|^2 and the feature 10*log10 of it."""
    k, amplitude, n_fft = 100, 0.25, 1024
    t = np.arange(FS * 2)
    tone = amplitude * np.sin(2 * np.pi * k * t / n_fft)
    log_mel = ad_log_mel_spectrogram(tone)
    fb = slaney_mel_filterbank(16000, 1024, 128)
    power = np.zeros(513)
    power[k] = (amplitude * n_fft / 4) ** 2
    power[k - 1] = power[k + 1] = (amplitude * n_fft / 8) ** 2
    expected = 10 * np.log10(fb @ power + np.finfo(float).eps)
    inner = log_mel[4:-4]  # away from the reflect-padded ends
    band = int(np.argmax(expected))
    np.testing.assert_allclose(inner[:, band], expected[band], atol=0.01)
    loud = expected > expected.max() - 60
    np.testing.assert_allclose(inner[:, loud].mean(axis=0), expected[loud], atol=0.05)


def test_ad_logmel_vectors_are_five_frames_frame_major() -> None:
    x = MachineSoundSimulator(seed=2).read(FS)
    log_mel = ad_log_mel_spectrogram(x)
    assert log_mel.shape == (1 + FS // 512, 128)  # librosa center=True: 32 frames
    vectors = ad_logmel_features(x)
    assert vectors.shape == (28, 640)
    assert vectors.dtype == np.float32
    for i in (0, 13, 27):
        for t in range(5):
            np.testing.assert_array_equal(vectors[i, 128 * t : 128 * (t + 1)], log_mel[i + t])
    assert ad_logmel_features(np.zeros(10 * FS)).shape == (309, 640)  # a 10 s ToyADMOS clip
    assert ad_logmel_features(np.zeros(2048)).shape == (1, 640)
    # int16 input is divided by 32768 (librosa.load)
    as_int16 = np.round(x * 32768).clip(-32768, 32767).astype(np.int16)
    np.testing.assert_allclose(ad_logmel_features(as_int16), vectors, atol=0.5)  # int16 rounding in quiet bins


def test_ad_logmel_refuses_bad_input() -> None:
    with pytest.raises(AudioFeatureError, match="16000 Hz"):
        ad_logmel_features(np.zeros(48000), 48000)
    with pytest.raises(AudioFeatureError, match="at least 5 frames"):
        ad_logmel_features(np.zeros(2047))
    with pytest.raises(AudioFeatureError, match="more than 512"):
        ad_logmel_features(np.zeros(300))
    with pytest.raises(AudioFeatureError, match="unsupported"):
        ad_logmel_features(np.array(["a", "b"]))


def test_registry_entries() -> None:
    ad, kws = FEATURES["ad-logmel"], FEATURES["kws-mfcc"]
    assert (ad.sample_rate_hz, ad.window_samples, ad.output_size) == (16000, 16000, 640)
    assert (kws.sample_rate_hz, kws.window_samples, kws.output_size) == (16000, 16000, 490)
    x = MachineSoundSimulator(seed=5).read(16000)
    assert ad(x).shape == (28, 640)
    assert kws(x).shape == (49, 10)
    assert ad.card()["name"] == "ad-logmel"
    assert kws.card()["n_mfcc"] == 10
