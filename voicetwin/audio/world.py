"""The WORLD vocoder: analysis into F0 / spectral envelope / aperiodicity, envelope coding, and synthesis.

Voice conversion keeps the performer's F0 contour (moved or transposed) and aperiodicity (breaths,
sibilants, creak) and replaces only the spectral envelope. Envelopes travel as coded envelopes
(``envelope_dims`` mel-cepstral coefficients) and are decoded back to ``(frames, fft_size // 2 + 1)`` power.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import require
from .pitch import SPEECH_RANGE_HZ, track_f0


def _pw():
    from ..console import PKG_RESOURCES_WARNING, quiet_warnings

    with quiet_warnings(PKG_RESOURCES_WARNING):  # pyworld imports pkg_resources
        return require("pyworld", "eval", "the WORLD vocoder")


@dataclass(frozen=True)
class WorldFrames:
    """WORLD analysis of one signal. ``f0``: ``(frames,)`` Hz; ``sp``, ``ap``: ``(frames, fft_size // 2 + 1)``."""

    f0: np.ndarray
    sp: np.ndarray
    ap: np.ndarray
    sample_rate: int
    frame_period: float

    @property
    def frames(self) -> int:
        return int(self.f0.shape[0])


def frame_count(samples: int, sample_rate: int, frame_period: float) -> int:
    """Frames WORLD produces for ``samples`` samples (one every ``frame_period`` ms, first at t = 0)."""
    return int(samples / (sample_rate * frame_period / 1000.0)) + 1


def analyze(audio: np.ndarray, sample_rate: int, frame_period: float = 10.0, f0: np.ndarray | None = None,
            f0_range: tuple[float, float] = SPEECH_RANGE_HZ, f0_method: str = "dio") -> WorldFrames:
    """``(samples,)`` float -> WORLD frames. Pass ``f0`` to reuse an F0 track of the same length."""
    pw = _pw()
    x = np.ascontiguousarray(audio, dtype=np.float64)
    if f0 is None:
        f0 = track_f0(x, sample_rate, frame_period, f0_range, f0_method)
    f0 = np.ascontiguousarray(f0, dtype=np.float64)
    t = np.arange(len(f0)) * frame_period / 1000.0
    sp = pw.cheaptrick(x, f0, t, sample_rate)
    ap = pw.d4c(x, f0, t, sample_rate)
    return WorldFrames(f0, sp, ap, sample_rate, frame_period)


def synthesize(f0: np.ndarray, sp: np.ndarray, ap: np.ndarray, sample_rate: int, frame_period: float = 10.0,
               samples: int | None = None) -> np.ndarray:
    """WORLD frames -> ``(samples,)`` float32, cut or padded to ``samples`` when given (keeps duration exact)."""
    pw = _pw()
    y = pw.synthesize(np.ascontiguousarray(f0, dtype=np.float64), np.ascontiguousarray(sp, dtype=np.float64),
                      np.ascontiguousarray(ap, dtype=np.float64), sample_rate, frame_period)
    if samples is not None:
        y = y[:samples] if len(y) >= samples else np.pad(y, (0, samples - len(y)))
    return y.astype(np.float32)


def fft_size(sample_rate: int) -> int:
    """The FFT size WORLD's CheapTrick uses at this rate (f0 floor 71 Hz)."""
    return int(_pw().get_cheaptrick_fft_size(sample_rate))


def code_envelope(sp: np.ndarray, sample_rate: int, dims: int) -> np.ndarray:
    """``(frames, bins)`` power envelope -> ``(frames, dims)`` coded envelope (mel-cepstrum-like)."""
    return _pw().code_spectral_envelope(np.ascontiguousarray(sp, dtype=np.float64), sample_rate, dims)


def decode_envelope(code: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(frames, dims)`` coded envelope -> ``(frames, fft_size // 2 + 1)`` power envelope."""
    return _pw().decode_spectral_envelope(np.ascontiguousarray(code, dtype=np.float64), sample_rate,
                                          fft_size(sample_rate))


def warp_envelope(sp: np.ndarray, ratio: float) -> np.ndarray:
    """Shift formants: ``(frames, bins)`` -> same shape, with frequency f of the result taken from f / ratio.

    ``ratio > 1`` moves formants up (a shorter vocal tract), ``< 1`` down.
    """
    bins = sp.shape[1]
    src = np.clip(np.arange(bins) / ratio, 0, bins - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, bins - 1)
    w = src - lo
    return sp[:, lo] * (1 - w) + sp[:, hi] * w


def frame_energy(sp: np.ndarray) -> np.ndarray:
    """``(frames, bins)`` power envelope -> ``(frames,)`` log energy."""
    return np.log(np.maximum(sp.sum(axis=1), 1e-20))


def follow_dynamics(sp: np.ndarray, performer_sp: np.ndarray, voiced: np.ndarray, window: int) -> np.ndarray:
    """Give a new envelope the performer's slow dynamics and keep its own level from frame to frame:
    ``(frames, bins)`` new and performer power envelopes, ``(frames,)`` voiced mask, ``window`` frames ->
    the new envelope scaled per frame by the log-energy difference (performer minus new) averaged over the
    voiced frames within ``window`` (unvoiced frames count a thousandth as much; a silent stretch takes the
    level of the voiced frames nearest it). A crescendo or a soft verse survives; within a phrase the level
    follows the target's own way of saying each sound, which speaker encoders hear as much as the formants."""
    sp = np.asarray(sp, dtype=np.float64)
    if len(sp) == 0:
        return sp
    diff = frame_energy(performer_sp) - frame_energy(sp)
    weight = np.asarray(voiced, dtype=np.float64) + 1e-3
    kernel = np.ones(max(1, int(window)))
    gain = np.convolve(weight * diff, kernel, "same") / np.convolve(weight, kernel, "same")
    return sp * np.exp(gain)[:, None]


def crossfade_bands(low: np.ndarray, high: np.ndarray, sample_rate: int, from_hz: float) -> np.ndarray:
    """Two ``(frames, bins)`` power envelopes -> one: ``low`` below ``from_hz / 2``, ``high`` from ``from_hz`` up,
    their logs crossfaded (raised cosine) between."""
    bins = low.shape[1]
    hz = np.arange(bins) * sample_rate / (2 * (bins - 1))
    t = np.clip((hz - from_hz / 2) / max(from_hz / 2, 1e-6), 0.0, 1.0)
    w = 0.5 - 0.5 * np.cos(np.pi * t)
    return np.exp((1 - w) * np.log(np.maximum(low, 1e-30)) + w * np.log(np.maximum(high, 1e-30)))


def keep_fundamental(sp: np.ndarray, f0: np.ndarray, sample_rate: int, min_db: float = -3.0) -> np.ndarray:
    """Raise the envelope around each voiced frame's F0 where the first harmonic would be more than ``-min_db``
    dB weaker than the second (H1-H2 < ``min_db``): ``(frames, bins)`` power envelopes and ``(frames,)`` F0 ->
    a new envelope. The gain is full up to 1.2 F0 and fades out (raised cosine) by 1.8 F0, so the second
    harmonic and above are untouched. A sung note far below the voice's speaking range falls where its
    envelope was never observed, and a weak fundamental there is heard (and tracked) an octave up."""
    sp = np.array(sp, dtype=np.float64)
    voiced = np.flatnonzero(f0 > 0)
    if voiced.size == 0:
        return sp
    bins = sp.shape[1]
    per_bin = sample_rate / (2 * (bins - 1))  # Hz between envelope bins
    rows = sp[voiced]
    f = np.asarray(f0, dtype=np.float64)[voiced]

    def level(hz: np.ndarray) -> np.ndarray:
        pos = np.clip(hz / per_bin, 0, bins - 1.001)
        lo = pos.astype(int)
        frac = pos - lo
        take = np.arange(len(rows))
        return rows[take, lo] * (1 - frac) + rows[take, lo + 1] * frac

    gain = np.maximum(level(2 * f) * 10 ** (min_db / 10) / np.maximum(level(f), 1e-30), 1.0)
    ratio = (np.arange(bins) * per_bin)[None, :] / f[:, None]
    shape = 0.5 - 0.5 * np.cos(np.pi * np.clip((1.8 - ratio) / 0.6, 0.0, 1.0))
    sp[voiced] = rows * gain[:, None] ** shape
    return sp
