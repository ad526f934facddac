"""Pitch: F0 tracking, a voice's pitch statistics, and the two ways a performance's F0 is carried into a voice.

* speech mode: the performer's intonation is moved into the target's range (log-F0 mean and spread);
* singing mode: the melody is kept note for note and transposed by a number of semitones.

F0 arrays are in Hz, one value per analysis frame, 0 on unvoiced frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import InputError, require

SPEECH_RANGE_HZ = (50.0, 600.0)
SINGING_RANGE_HZ = (50.0, 1100.0)
F0_METHODS = ("dio", "harvest", "dio+swift")


def track_f0(audio: np.ndarray, sample_rate: int, frame_period: float = 10.0,
             f0_range: tuple[float, float] = SPEECH_RANGE_HZ, method: str = "dio") -> np.ndarray:
    """``(samples,)`` -> ``(frames,)`` F0 in Hz (0 = unvoiced), one frame per ``frame_period`` ms.

    ``method``: ``"dio"`` (DIO + StoneMask refinement, gaps at voicing edges filled by ``fill_voicing``, ~45x
    real time), ``"harvest"`` (slower, fewer voicing errors) or ``"dio+swift"`` (for singing: DIO + StoneMask
    where DIO finds a pitch, elsewhere SwiftF0, a small pitch network whose weights ship in its pip package).
    DIO misses whole high or breathy notes, and filling them from the neighbouring notes' period lands on the
    wrong note; SwiftF0 hears them. The frame count is ``samples / (sample_rate * frame_period / 1000) + 1``.
    """
    from ..console import PKG_RESOURCES_WARNING, quiet_warnings

    with quiet_warnings(PKG_RESOURCES_WARNING):  # pyworld imports pkg_resources
        pw = require("pyworld", "eval", "WORLD pitch tracking")
    x = np.ascontiguousarray(audio, dtype=np.float64)
    floor, ceil = f0_range
    if method == "dio":
        f0, t = pw.dio(x, sample_rate, f0_floor=floor, f0_ceil=ceil, frame_period=frame_period)
        f0 = fill_voicing(x, sample_rate, pw.stonemask(x, f0, t, sample_rate), frame_period)
    elif method == "dio+swift":
        f0, t = pw.dio(x, sample_rate, f0_floor=floor, f0_ceil=ceil, frame_period=frame_period)
        f0 = pw.stonemask(x, f0, t, sample_rate)
        f0 = np.where(f0 > 0, f0, swift_f0(audio, sample_rate, len(f0), frame_period, f0_range))
    elif method == "harvest":
        f0, t = pw.harvest(x, sample_rate, f0_floor=floor, f0_ceil=ceil, frame_period=frame_period)
    else:
        raise InputError(f"unknown F0 method '{method}'", fix="use " + ", ".join(map(repr, F0_METHODS)))
    return fix_octave_jumps(f0)


_SWIFT = None


def swift_f0(audio: np.ndarray, sample_rate: int, frames: int, frame_period: float = 10.0,
             f0_range: tuple[float, float] = SINGING_RANGE_HZ, threshold: float = 0.5) -> np.ndarray:
    """``(samples,)`` -> ``(frames,)`` F0 in Hz from SwiftF0 (16 ms hops), resampled to one value per
    ``frame_period`` ms: log-F0 interpolated between its voiced frames, voiced where the nearest frame's
    confidence is at least ``threshold`` and the pitch is inside ``f0_range``."""
    global _SWIFT
    if _SWIFT is None:
        module = require("swift_f0", None, "singing pitch tracking: pip install swift-f0")
        _SWIFT = module.SwiftF0(threads=1)
    result = _SWIFT.detect(np.asarray(audio, dtype=np.float32), sample_rate)
    t = np.arange(frames) * frame_period / 1000.0
    ok = (result.confidence >= threshold) & (result.pitch_hz >= f0_range[0]) & (result.pitch_hz <= f0_range[1])
    if ok.sum() < 1:
        return np.zeros(frames)
    log_f0 = np.interp(t, result.timestamps[ok], np.log(result.pitch_hz[ok]))
    nearest = np.clip(np.searchsorted(result.timestamps, t), 0, len(result.timestamps) - 1)
    earlier = np.clip(nearest - 1, 0, len(result.timestamps) - 1)
    pick = np.where(np.abs(result.timestamps[earlier] - t) < np.abs(result.timestamps[nearest] - t), earlier, nearest)
    return np.where(ok[pick], np.exp(log_f0), 0.0)


def fill_voicing(audio: np.ndarray, sample_rate: int, f0: np.ndarray, frame_period: float = 10.0,
                 threshold: float = 0.5, max_gap_ms: float = 250.0) -> np.ndarray:
    """Voice the unvoiced frames near voiced ones whose waveform repeats at the neighbours' pitch period.

    DIO is cautious at voicing edges; for each unvoiced frame within ``max_gap_ms`` of voiced frames the
    normalised correlation of a 2.5-period window with itself one period later (searched +-8 % around the
    period interpolated from the neighbours) decides: above ``threshold`` the frame is voiced at that pitch.
    """
    f0 = np.asarray(f0, dtype=np.float64).copy()
    voiced = np.flatnonzero(f0 > 0)
    if voiced.size < 2:
        return f0
    hop = sample_rate * frame_period / 1000.0
    reach = int(max_gap_ms / frame_period)
    log_ref = np.interp(np.arange(len(f0)), voiced, np.log(f0[voiced]))
    distance = np.full(len(f0), np.inf)
    pos = np.arange(len(f0))
    before = np.searchsorted(voiced, pos)
    left = voiced[np.clip(before - 1, 0, voiced.size - 1)]
    right = voiced[np.clip(before, 0, voiced.size - 1)]
    distance = np.minimum(np.abs(pos - left), np.abs(right - pos))
    for i in np.flatnonzero((f0 == 0) & (distance <= reach)):
        period = sample_rate / np.exp(log_ref[i])
        length = int(2.5 * period)
        start = int(i * hop - length / 2)
        best, best_lag = 0.0, 0
        for lag in np.unique(np.round(period * np.linspace(0.92, 1.08, 9)).astype(int)):
            if start < 0 or start + length + lag > len(audio) or lag < 2:
                continue
            a, b = audio[start:start + length], audio[start + lag:start + lag + length]
            r = float(np.dot(a, b) / (np.sqrt(np.dot(a, a) * np.dot(b, b)) + 1e-12))
            if r > best:
                best, best_lag = r, lag
        if best > threshold:
            f0[i] = sample_rate / best_lag
    return f0


def fix_octave_jumps(f0: np.ndarray, max_run: int = 6) -> np.ndarray:
    """Fold short runs (<= ``max_run`` frames) that sit about an octave off their neighbourhood back into it.

    Tracker octave errors last a few frames; a sung octave leap lasts longer and is left alone.
    """
    f0 = np.asarray(f0, dtype=np.float64).copy()
    voiced = f0 > 0
    if voiced.sum() < 5:
        return f0
    idx = np.flatnonzero(voiced)
    cents = 1200 * np.log2(f0[idx])
    ref = _running_median(cents, 4 * max_run + 1)
    octaves = np.round((cents - ref) / 1200)
    off = octaves != 0
    start = 0
    while start < len(off):
        if not off[start]:
            start += 1
            continue
        stop = start
        while stop < len(off) and off[stop] and octaves[stop] == octaves[start]:
            stop += 1
        if stop - start <= max_run:
            f0[idx[start:stop]] /= 2.0 ** octaves[start:stop]
        start = stop
    return f0


def _running_median(x: np.ndarray, width: int) -> np.ndarray:
    if len(x) <= width:
        return np.full_like(x, np.median(x))
    pad = width // 2
    padded = np.pad(x, pad, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    return np.median(windows, axis=1)[: len(x)]


@dataclass(frozen=True)
class PitchStats:
    """Pitch range of a voice or a performance, over voiced frames. ``log_*`` are natural-log Hz."""

    log_mean: float
    log_std: float
    median_hz: float
    p05_hz: float
    p95_hz: float
    voiced_frames: int

    @classmethod
    def from_f0(cls, f0s: list[np.ndarray] | np.ndarray) -> "PitchStats":
        f0 = np.concatenate([np.ravel(f) for f in f0s]) if isinstance(f0s, list) else np.ravel(f0s)
        voiced = f0[f0 > 0]
        if voiced.size < 10:
            raise InputError("too few voiced frames to measure a pitch range",
                             fix="give more speech (at least a few seconds of voiced audio)")
        lf0 = np.log(voiced)
        return cls(float(lf0.mean()), float(max(lf0.std(), 1e-3)), float(np.median(voiced)),
                   float(np.percentile(voiced, 5)), float(np.percentile(voiced, 95)), int(voiced.size))

    def to_dict(self) -> dict:
        return asdict(self)


def map_speech(f0: np.ndarray, source: PitchStats, target: PitchStats, max_spread: float = 2.0) -> np.ndarray:
    """Move intonation into the target's range: the source's log-F0 mean goes to the target's, and its spread
    is scaled towards the target's by at most ``max_spread`` (or ``1 / max_spread``), so a flat performer is
    not exaggerated into jitter nor a lively one flattened. The contour's shape (its correlation with the
    source) is kept exactly."""
    scale = float(np.clip(target.log_std / source.log_std, 1.0 / max_spread, max_spread))
    out = np.zeros_like(f0, dtype=np.float64)
    v = f0 > 0
    out[v] = np.exp((np.log(f0[v]) - source.log_mean) * scale + target.log_mean)
    return out


def transpose(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Shift every voiced frame by ``semitones`` (the melody is kept note for note)."""
    return np.where(f0 > 0, f0 * 2.0 ** (semitones / 12.0), 0.0)


def auto_transpose(source: PitchStats, target: PitchStats) -> int:
    """Whole semitones that bring the source's median pitch nearest to the target's."""
    return int(np.round(12 * np.log2(target.median_hz / source.median_hz)))
