"""Audio I/O: round trips through every written format, video containers, typed errors on bad files."""

from __future__ import annotations

import os

import numpy as np
import pytest

from voicetwin.audio.io import (
    ensure_audible,
    load_audio,
    loudness_lufs,
    normalize_input,
    normalize_loudness,
    resample,
    save_audio,
)
from voicetwin.errors import AudioDecodeError, EmptyAudioError, InputError, InputNotFoundError, NoAudioStreamError
from voicetwin.examples import write_video

os.environ.setdefault("HF_HUB_OFFLINE", "1")
SR = 16_000


def tone(seconds: float = 2.0, sr: int = SR, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


def best_correlation(a: np.ndarray, b: np.ndarray, max_lag: int = 3000) -> float:
    """Peak normalised correlation over small lags (lossy codecs add encoder delay)."""
    n = min(len(a), len(b)) - max_lag
    best = -1.0
    for lag in range(0, max_lag, 8):
        x, y = a[:n], b[lag:lag + n]
        best = max(best, float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y) + 1e-9)))
    return best


@pytest.mark.parametrize("ext", ["wav", "flac"])
def test_lossless_round_trip(tmp_path, ext):
    x = tone()
    path = save_audio(tmp_path / f"a.{ext}", x, SR)
    y, sr = load_audio(path)
    assert sr == SR and y.shape == x.shape and y.dtype == np.float32
    assert np.max(np.abs(y - x)) < 1e-3  # 16-bit quantisation only


@pytest.mark.parametrize("ext", ["mp3", "m4a", "ogg"])
def test_lossy_round_trip(tmp_path, ext):
    x = tone(2.0)
    path = save_audio(tmp_path / f"a.{ext}", x, SR)
    y, sr = load_audio(path, sample_rate=SR)
    assert sr == SR
    assert abs(len(y) - len(x)) < 0.15 * SR  # codec priming and padding (AAC: 1024 + a frame)
    assert best_correlation(x, y) > 0.95


def test_stereo_and_resampling(tmp_path):
    left, right = tone(1.0, 44_100, 300), tone(1.0, 44_100, 500)
    path = save_audio(tmp_path / "s.wav", np.stack([left, right]), 44_100)
    y, sr = load_audio(path, mono=False)
    assert y.shape == (2, 44_100) and sr == 44_100
    mono, sr = load_audio(path, sample_rate=SR)
    assert mono.ndim == 1 and sr == SR and abs(len(mono) - SR) <= 1
    assert abs(len(resample(left, 44_100, 22_050)) - 22_050) <= 1


def test_start_and_duration(tmp_path):
    x = np.arange(3 * SR, dtype=np.float32) / (3 * SR)
    path = save_audio(tmp_path / "ramp.flac", x, SR)
    y, _ = load_audio(path, start=1.0, duration=0.5)
    assert len(y) == SR // 2
    assert abs(y[0] - x[SR]) < 1e-3


def test_video_audio_track(tmp_path):
    x = tone(3.0)
    path = write_video(tmp_path / "clip.mp4", x, SR)
    y, sr = load_audio(path, sample_rate=SR)
    assert sr == SR and abs(len(y) - len(x)) < 0.2 * SR
    assert best_correlation(x, y) > 0.9


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("these are notes, not sound\n" * 20)
    with pytest.raises(AudioDecodeError, match="notes.mp3"):
        load_audio(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="empty"):
        load_audio(path)


def test_corrupt_mp3(tmp_path):
    good = save_audio(tmp_path / "good.mp3", tone(2.0), SR).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "corrupt.mp3"
    path.write_bytes(rng.integers(0, 256, len(good), dtype=np.uint8).tobytes())
    with pytest.raises(AudioDecodeError, match="corrupt.mp3"):
        load_audio(path)
    truncated = tmp_path / "truncated.mp3"
    truncated.write_bytes(good[:200])
    with pytest.raises(AudioDecodeError, match="truncated.mp3"):
        load_audio(truncated)


def test_video_without_audio(tmp_path):
    path = write_video(tmp_path / "silent_film.mp4", None, seconds=1.0)
    with pytest.raises(NoAudioStreamError, match="no audio track"):
        load_audio(path)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match="folder"):
        load_audio(tmp_path)


def test_silent_and_short_audio():
    with pytest.raises(EmptyAudioError, match="silent"):
        ensure_audible(np.zeros(SR, np.float32), SR, path="quiet.wav")
    with pytest.raises(EmptyAudioError, match="too short"):
        ensure_audible(tone(0.1), SR)
    ensure_audible(tone(1.0), SR)


def test_normalize_input_forms(tmp_path):
    import torch

    x = tone(1.0, 22_050)
    path = save_audio(tmp_path / "t.wav", x, 22_050)
    for given, rate in [(path, None), (x, 22_050), ((x, 22_050), None), (torch.from_numpy(x), 22_050),
                        (np.stack([x, x]), 22_050)]:
        y, sr = normalize_input(given, rate, SR)
        assert sr == SR and y.ndim == 1 and abs(len(y) - SR) <= 1
    with pytest.raises(InputError, match="sample rate"):
        normalize_input(x)


def test_loudness_meter_follows_bs1770():
    """EBU Tech 3341 case 1 (a 1 kHz stereo sine at -23 dBFS reads -23.0 LUFS), a full-scale sine on one channel
    -3.01, the standard's 48 kHz K-weighting coefficients, silence -inf, and speech within 0.15 LU of pyloudnorm
    (whose filter approximates the standard's; it reads the sine 0.04 low)."""
    import pyloudnorm

    from voicetwin.audio.io import k_weighting

    (b1, a1), (b2, a2) = k_weighting(48_000)
    np.testing.assert_allclose(b1, [1.53512485958697, -2.69169618940638, 1.19839281085285], atol=1e-9)
    np.testing.assert_allclose(a1, [1.0, -1.69065929318241, 0.73248077421585], atol=1e-9)
    np.testing.assert_allclose(a2, [1.0, -1.99004745483398, 0.99007225036621], atol=1e-9)
    assert list(b2) == [1.0, -2.0, 1.0]
    t = np.arange(48_000 * 5) / 48_000
    sine = np.sin(2 * np.pi * 997 * t)
    assert loudness_lufs(np.stack([sine, sine], 1) * 10 ** (-23 / 20), 48_000) == pytest.approx(-23.0, abs=0.01)
    assert loudness_lufs(sine, 48_000) == pytest.approx(-3.01, abs=0.01)
    assert loudness_lufs(np.zeros(SR), SR) == float("-inf")
    syllables = (tone(3.0) * (np.sin(2 * np.pi * 3 * np.arange(3 * SR) / SR) > 0)).astype(np.float64)
    assert abs(loudness_lufs(syllables, SR) - pyloudnorm.Meter(SR).integrated_loudness(syllables)) < 0.15


def test_loudness():
    x = tone(3.0)
    quiet = normalize_loudness(x, SR, -30.0)
    assert abs(loudness_lufs(quiet, SR) - -30.0) < 0.1
    assert loudness_lufs(0.5 * x, SR) < loudness_lufs(x, SR)


def test_true_peak_interpolation_and_moving_minimum_match_scipy():
    """The render service's limiter measures true peaks and holds its gain without importing scipy (a second
    saved at every command's start); both agree with scipy's versions, which the limiter used before."""
    from scipy.ndimage import minimum_filter1d
    from scipy.signal import resample_poly

    from voicetwin.audio.io import oversample
    from voicetwin.production.mixdown import moving_minimum

    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3001)).astype(np.float32)
    np.testing.assert_allclose(oversample(x, 4), resample_poly(x, 4, 1, axis=-1), atol=1e-5)
    for n, width in [(1000, 241), (5, 241), (999, 1), (1001, 3)]:
        values = rng.random(n)
        np.testing.assert_array_equal(moving_minimum(values, width), minimum_filter1d(values, width, mode="nearest"))
