"""Fitting a rendered line to its slot: where its sound starts and ends, how much to time-stretch it, and the
stretchers (Rubber Band's R3 engine through its CLI, or a built-in WSOLA).

A line is never cut: a line too long for its slot is compressed up to a cap, then borrows from the gap before the
next line, then overruns at the cap and is reported (``plan_fit``).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import EmptyAudioError, InputError, MissingDependencyError
from .scene import Line, OutputSettings

MARGIN = 0.05  # s of silence kept before the first and after the last sound of each line
ONSET_DB = -30.0  # a line's onset: its first 5 ms frame within 30 dB of its loudest (quieter lead-ins go before)
FIT_TOLERANCE = 0.03  # a rendition within 3% of its slot is not stretched


@dataclass
class Rendered:
    """A line as its capability made it: mono float32 ``(samples,)`` at ``sample_rate``. ``fitted``: the
    capability already made it last the requested duration (no stretching needed)."""

    audio: np.ndarray
    sample_rate: int
    fitted: bool = False
    converted: bool = False
    notes: list[str] = field(default_factory=list)


def speech_bounds(audio: np.ndarray, sample_rate: int, floor_db: float = -40.0, hop: float = 0.005) -> tuple[int, int]:
    """Sample range ``[start, end)`` of the sound in ``audio``: 5 ms frames within ``floor_db`` of the loudest.
    Returns ``(0, 0)`` for silence."""
    n = max(1, int(hop * sample_rate))
    frames = len(audio) // n
    if frames == 0:
        return 0, 0
    power = np.mean(np.square(audio[: frames * n].reshape(frames, n), dtype=np.float64), axis=1)
    if power.max() <= 1e-10:
        return 0, 0
    loud = np.flatnonzero(power > power.max() * 10 ** (floor_db / 10))
    return int(loud[0]) * n, min(len(audio), (int(loud[-1]) + 1) * n)


@functools.lru_cache(maxsize=1)
def _rubberband() -> str | None:
    return shutil.which("rubberband")


def time_stretch(audio: np.ndarray, sample_rate: int, ratio: float, method: str = "rubberband") -> np.ndarray:
    """Change the duration of ``audio`` by ``ratio`` (> 1 longer) without changing its pitch.

    ``rubberband``: the Rubber Band CLI, R3 engine (Debian ``rubberband-cli``); ``wsola``: built-in
    waveform-similarity overlap-add. The output has ``round(len * ratio)`` samples."""
    n_out = int(round(len(audio) * ratio))
    if abs(ratio - 1.0) < 1e-6:
        return audio.astype(np.float32)
    if method == "rubberband":
        exe = _rubberband()
        if exe is None:
            raise MissingDependencyError("rubberband", None, "time-stretching lines (apt-get install rubberband-cli, "
                                         "or set output: {stretcher: wsola})")
        import soundfile as sf

        with tempfile.TemporaryDirectory(prefix="voicetwin-rb-") as tmp:
            src, dst = Path(tmp) / "in.wav", Path(tmp) / "out.wav"
            sf.write(src, audio.astype(np.float32), sample_rate, subtype="FLOAT")
            proc = subprocess.run([exe, "-q", "-3", "-D", f"{n_out / sample_rate:.6f}", str(src), str(dst)],
                                  capture_output=True, text=True)
            if proc.returncode != 0 or not dst.exists():
                raise InputError(f"rubberband failed: {proc.stderr.strip()[-300:]}", fix="try output: {stretcher: wsola}")
            out, _ = sf.read(dst, dtype="float32")
    else:
        out = wsola(audio, sample_rate, ratio)
    out = out[:n_out]
    return np.pad(out, (0, n_out - len(out))).astype(np.float32)


def wsola(audio: np.ndarray, sample_rate: int, ratio: float, frame: float = 0.04, tolerance: float = 0.012) -> np.ndarray:
    """Waveform-similarity overlap-add time-stretch: 40 ms Hann frames at 50% overlap in the output, each taken
    from within ``tolerance`` s of its nominal input position where it best continues the previous frame."""
    n = max(8, int(frame * sample_rate) // 2 * 2)
    hop = n // 2
    dmax = int(tolerance * sample_rate)
    n_out = int(round(len(audio) * ratio))
    pad = n + dmax
    x = np.pad(audio.astype(np.float64), (pad, pad + n))
    window = np.hanning(n + 1)[:n]
    y = np.zeros(n_out + n)
    weight = np.zeros(n_out + n)
    prev = None
    for k in range(n_out // hop + 1):
        nominal = int(round(k * hop / ratio)) + pad
        if prev is None:
            pos = nominal
        else:
            target = x[prev + hop: prev + hop + n]
            lo = max(0, nominal - dmax)
            region = x[lo: nominal + dmax + n]
            corr = np.correlate(region, target, mode="valid")
            pos = lo + int(np.argmax(corr))
        y[k * hop: k * hop + n] += window * x[pos: pos + n]
        weight[k * hop: k * hop + n] += window
        prev = pos
    return (y[:n_out] / np.maximum(weight[:n_out], 1e-3)).astype(np.float32)


@dataclass(frozen=True)
class Fit:
    """How a line was fitted. Seconds; ``ratio`` = output / input speech duration (1 = untouched)."""

    speech_in: float
    speech_out: float
    ratio: float
    borrowed: float
    overrun: float
    warnings: tuple[str, ...]
    lead: int = 0  # samples before the onset in the fitted audio


def plan_fit(speech: float, slot: float, room: float, fitted: bool, cap: float) -> tuple[float, float, float, list[str]]:
    """Choose the speech duration of a line: ``(target seconds, borrowed s, overrun s, warnings)``.

    ``slot``: the line's slot; ``room``: the slot plus the gap that may be borrowed (up to the next line less the
    minimum gap). A line that is too long is compressed to its slot up to ``cap``; beyond that it borrows from the
    gap at the cap; beyond the gap it overruns at the cap (reported, never truncated). A line shorter than its slot
    keeps its length."""
    warnings = []
    room = max(room, slot)
    if speech <= slot * (1 + FIT_TOLERANCE) and speech <= room:
        if not fitted and speech < slot * 0.75:
            warnings.append(f"the speech ({speech:.2f} s) is much shorter than its slot ({slot:.2f} s)")
        return speech, max(0.0, speech - slot), 0.0, warnings
    target = slot
    if speech / target > cap:
        target = min(room, speech / cap)
    overrun = 0.0
    if speech / target > cap + 1e-9:
        target = speech / cap
        overrun = target - room
        warnings.append(f"cannot fit: {speech:.2f} s of speech needs {speech / room:.2f}x to fit the slot and the "
                        f"following gap ({room:.2f} s); placed at {cap:.2f}x, overrunning by {overrun:.2f} s")
    return target, max(0.0, target - slot), overrun, warnings


def fit_to_slot(rendered: Rendered, line: Line, room: float, settings: OutputSettings) -> tuple[np.ndarray, Fit]:
    """Fit a rendered line: ``(audio at settings.sample_rate, Fit)``; ``Fit.lead`` samples (>= MARGIN s) come
    before the onset."""
    from ..audio.io import resample

    audio, sr = rendered.audio, rendered.sample_rate
    start, end = speech_bounds(audio, sr)
    if end <= start:
        raise EmptyAudioError(f"line '{line.id}' rendered to silence", fix="check the line's source")
    speech = (end - start) / sr
    target, borrowed, overrun, warnings = plan_fit(speech, line.slot, room, rendered.fitted, settings.max_stretch)
    m = int(MARGIN * sr)
    piece = audio[max(0, start - m): end + m]
    ratio = target / speech
    if abs(ratio - 1.0) > 1e-4:
        piece = time_stretch(piece, sr, ratio, settings.stretcher)
    piece = resample(piece, sr, settings.sample_rate)
    out_sr = settings.sample_rate
    s, e = speech_bounds(piece, out_sr)
    onset = speech_bounds(piece, out_sr, ONSET_DB)[0]  # the onset placed on the slot start
    m = int(MARGIN * out_sr)
    a = max(0, s - m)
    piece = piece[a: e + m].astype(np.float32)
    lead = onset - a
    if lead < m:  # at least MARGIN s before the onset
        piece, lead = np.concatenate([np.zeros(m - lead, np.float32), piece]), m
    tail = len(piece) - lead - (e - onset)
    if tail < m:  # and after the last sound, so that the end fade only ever touches silence
        piece = np.concatenate([piece, np.zeros(m - tail, np.float32)])
    fit = Fit(speech, (e - onset) / out_sr, ratio, borrowed, overrun, tuple(rendered.notes) + tuple(warnings), lead)
    return piece, fit


def fade(audio: np.ndarray, n: int) -> np.ndarray:
    """Linear fade-in and fade-out of ``n`` samples at the ends of ``audio`` (in place; returned)."""
    n = min(n, len(audio) // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, endpoint=False, dtype=np.float32)
        audio[:n] *= ramp
        audio[len(audio) - n:] *= ramp[::-1]
    return audio
