"""Mixing a scene: dialogue over the music-and-effects stem with side-chain ducking, one gain to an EBU R128
loudness target (ITU-R BS.1770, ``voicetwin.audio.io.loudness_lufs``) and an oversampled true-peak limiter.

Every time-varying step has finite support (ducking ramps, the limiter's hold and smoothing, the interpolation
filter), so a change in one line changes the mix only inside that line's window plus ``edit_margin`` seconds, and
outside all lines (ducking off) the mix equals the M&E stem sample for sample.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .scene import OutputSettings

GAIN_LOCK_LU = 0.3  # a previous mix gain is kept while the mix stays this close to the target
LIMITER_HOLD = 0.02  # s
LIMITER_SMOOTH = 0.005  # s
TRUE_PEAK_MARGIN = 0.3  # dB below the ceiling the limiter aims at (AAC and other meters overshoot a little)
OVERSAMPLE = 4


def duck_envelope(n: int, windows: list[tuple[int, int]], sample_rate: int, depth_db: float, attack: float,
                  release: float) -> np.ndarray:
    """Gain ``(n,)`` for the M&E: ``-depth_db`` inside each ``[start, end)`` window, linear ramps of ``attack`` s
    before and ``release`` s after, exactly 1.0 elsewhere."""
    w = np.zeros(n)
    a, r = max(1, int(attack * sample_rate)), max(1, int(release * sample_rate))
    for start, end in windows:
        lo, hi = max(0, start - a), min(n, end + r)
        idx = np.arange(lo, hi)
        shape = np.minimum(np.clip((idx - (start - a)) / a, 0, 1), np.clip(((end + r) - idx) / r, 0, 1))
        w[lo:hi] = np.maximum(w[lo:hi], shape)
    return 1.0 - (1.0 - 10 ** (-depth_db / 20)) * w


def true_peak_per_sample(x: np.ndarray, oversample: int = OVERSAMPLE) -> np.ndarray:
    """``(n,)`` largest absolute value of ``x`` ``(channels, n)`` and its ``oversample``-times interpolation around
    each sample (ITU-R BS.1770-4 annex 2 style); finite support."""
    from ..audio.io import oversample as interpolate

    x = np.asarray(x, dtype=np.float32)
    up = np.abs(interpolate(x, oversample))
    n = x.shape[-1]
    per = up[:, : n * oversample].reshape(x.shape[0], n, oversample).max(axis=(0, 2))
    return np.maximum(per, np.abs(x).max(axis=0))


def true_peak_db(x: np.ndarray) -> float:
    """True peak of ``(channels, n)`` or ``(n,)`` audio in dBTP (4x oversampled)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    peak = float(true_peak_per_sample(x).max()) if x.size else 0.0
    return 20 * math.log10(peak) if peak > 0 else -math.inf


def moving_minimum(x: np.ndarray, width: int) -> np.ndarray:
    """The minimum of ``x`` over ``width`` (odd) samples centred on each sample, the ends extended with the edge
    values; O(n) whatever the width (block-wise running minima from both sides, van Herk / Gil-Werman)."""
    half = width // 2
    padded = np.pad(np.asarray(x, dtype=np.float64), (half, half + (-(len(x) + 2 * half)) % width), mode="edge")
    blocks = padded.reshape(-1, width)
    from_left = np.minimum.accumulate(blocks, axis=1).ravel()
    from_right = np.minimum.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(from_right[:len(x)], from_left[width - 1:width - 1 + len(x)])


def limiter_gain(x: np.ndarray, sample_rate: int, ceiling_db: float, peaks: np.ndarray | None = None) -> np.ndarray:
    """Gain ``(n,)`` that keeps the true peak of ``x`` ``(channels, n)`` under ``ceiling_db`` (look-ahead: a
    ``LIMITER_HOLD`` s moving minimum of the needed gain, smoothed by a ``LIMITER_SMOOTH`` s moving average, which
    stays below the needed gain). Exactly 1.0 where nothing is near the ceiling; changes stay local. ``peaks``:
    ``true_peak_per_sample(x)`` when already known."""
    peaks = true_peak_per_sample(x) if peaks is None else peaks
    need = np.minimum(1.0, 10 ** (ceiling_db / 20) / np.maximum(peaks, 1e-12))
    gain = np.ones(x.shape[-1])
    if need.min() >= 1.0:
        return gain
    hold, smooth = int(LIMITER_HOLD * sample_rate), int(LIMITER_SMOOTH * sample_rate)
    held = moving_minimum(need, 2 * hold + 1)
    # smooth only the stretches that need it, with a direct (local) moving average
    active = np.flatnonzero(held < 1.0)
    breaks = np.flatnonzero(np.diff(active) > 2 * smooth + 1)
    kernel = np.full(2 * smooth + 1, 1.0 / (2 * smooth + 1))
    padded = np.pad(held, smooth, mode="edge")
    n = len(held)
    for lo, hi in zip(np.r_[active[0], active[breaks + 1]], np.r_[active[breaks], active[-1]]):
        a, b = max(0, lo - smooth), min(n, hi + smooth + 1)
        gain[a:b] = np.convolve(padded[a: b + 2 * smooth], kernel, mode="valid")
    return np.minimum(gain, 1.0)


def _loudness(x: np.ndarray, sample_rate: int) -> float:
    from ..audio.io import loudness_lufs

    return loudness_lufs(np.asarray(x).T, sample_rate)


@dataclass
class Mix:
    """The mixed scene, ``(channels, n)`` float32 at ``sample_rate``: ``dialogue + music_effects == mix``."""

    dialogue: np.ndarray
    music_effects: np.ndarray
    mix: np.ndarray
    sample_rate: int
    gain_db: float
    loudness: float
    true_peak: float
    limited_seconds: float
    gain_locked: bool


def mix_scene(music_effects: np.ndarray, placed: list[tuple[int, np.ndarray]], settings: OutputSettings,
              windows: list[tuple[int, int]], locked_gain_db: float | None = None) -> Mix:
    """Mix placed lines ``(offset sample, audio)`` over ``music_effects`` ``(channels, n)`` at the output rate.

    Ducking follows ``windows`` (the lines' extents); one gain takes the mix to ``settings.loudness`` (the
    ``locked_gain_db`` of a previous run while it stays within ``GAIN_LOCK_LU``), then the true-peak limiter."""
    sr = settings.sample_rate
    me = np.asarray(music_effects, dtype=np.float64)
    n = me.shape[-1]
    dialogue = np.zeros(n)
    for offset, audio in placed:
        dialogue[offset: offset + len(audio)] += audio
    bed = me
    if settings.ducking is not None and windows:
        d = settings.ducking
        bed = me * duck_envelope(n, windows, sr, d.depth, d.attack, d.release)[None, :]
    pre = bed + dialogue[None, :]
    ceiling = settings.true_peak - TRUE_PEAK_MARGIN

    peaks = true_peak_per_sample(pre)

    def render(gain_db: float) -> tuple[np.ndarray, float]:
        g = 10 ** (gain_db / 20)
        env = g * limiter_gain(pre, sr, ceiling, peaks * g)
        return env, _loudness(pre * env[None, :], sr)

    locked = False
    if locked_gain_db is not None:
        env, level = render(locked_gain_db)
        locked = abs(level - settings.loudness) <= GAIN_LOCK_LU
        gain_db = locked_gain_db
    if not locked:
        level = _loudness(pre, sr)
        gain_db = settings.loudness - level if np.isfinite(level) else 0.0
        for _ in range(6):
            env, level = render(gain_db)
            if not np.isfinite(level) or abs(level - settings.loudness) <= 0.02:
                break
            gain_db += settings.loudness - level
    me_out = (bed * env[None, :]).astype(np.float32)
    dia_out = (np.broadcast_to(dialogue, bed.shape) * env[None, :]).astype(np.float32)
    mix = me_out + dia_out  # float32: the stems add up to the mix exactly; outside dialogue, mix == M&E
    limited = float(np.count_nonzero(env < 10 ** (gain_db / 20) * (1 - 1e-12)) / sr)
    return Mix(dia_out, me_out, mix, sr, float(gain_db), _loudness(mix, sr), true_peak_db(mix), limited, locked)


def edit_margin(settings: OutputSettings) -> float:
    """Seconds around a line's window that its edit may change: limiter hold + smoothing + interpolation,
    and the ducking ramps."""
    margin = LIMITER_HOLD + LIMITER_SMOOTH + 0.001
    if settings.ducking is not None:
        margin += max(settings.ducking.attack, settings.ducking.release)
    return margin
