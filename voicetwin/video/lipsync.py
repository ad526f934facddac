"""Lip-sync: measure audio-video offset, fit new audio to the picture, or re-render the mouth to new audio.

- ``score``: SyncNet's protocol with features that run offline. Each 5-frame window of mouth opening (face
  landmarks) is compared with the matching window of the speech envelope (log energy 300-3000 Hz) at shifts of
  +-15 frames (searched in quarter frames); the offset is the shift of minimum mean distance and the confidence is
  the median distance minus the minimum. The distance between two windows is the Euclidean distance of their
  mean-removed, unit-norm versions (``sqrt(2 - 2 r)``, from 0 to 2), so confidences are on a 0-2 scale, not
  SyncNet's embedding scale. Positive ``offset_ms``: the audio lags the picture.
- ``align``: shifts the new audio phrase by phrase (cut and re-placed in pauses with short fades; the picture is
  never changed) so it matches the visible mouth movement.
- ``render``: Video Rewrite-style re-rendering. The video is its own library of that face's mouth images: each
  output frame takes the library mouth whose shape best fits the new audio (shapes predicted by a regression from
  audio to mouth shape fitted on the video's own sound and picture, chosen with a smoothness term that holds a
  closed mouth through silences), warps it onto the frame with a similarity transform from stable points (eyes,
  nose) and blends it in a feathered ellipse around the mouth. Pixels outside that ellipse are copied unchanged.

Times are in seconds, offsets in milliseconds, frames are RGB ``(height, width, 3)`` uint8.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..audio.io import load_audio, resample
from ..errors import ConfigError, InputError
from .face import LAYOUTS, FaceIdentifier, Layout, load_landmarker, mouth_features
from .io import VideoInfo, iter_frames, iter_keyframes, probe, replace_audio, write_video

ANALYSIS_RATE = 16_000  # Hz, audio analysis rate
SUBSTEPS = 4  # offsets are searched in quarter frames
MAX_AUDIO_OVERHANG = 2.0  # seconds of audio beyond the video's end that are tolerated (then trimmed)


class NoFaceError(InputError):
    """No face was found in any frame of a video."""


# --------------------------------------------------------------------------------------------------- options


@dataclass(frozen=True)
class SyncOptions:
    """How ``score`` searches. ``max_offset_frames`` is SyncNet's +-15; ``window`` its 5 frames."""

    window: int = 5
    max_offset_frames: int = 15
    landmarker: str = "mediapipe"
    face: int | None = None  # face index, left to right; None: the one that speaks
    max_faces: int = 3
    min_shot_frames: int = 12
    cut_threshold: float = 30.0  # mean absolute change of a 32x18 grey thumbnail (0-255) that marks a cut

    def __post_init__(self):
        if self.window < 3 or self.window % 2 == 0:
            raise ConfigError(f"window must be an odd number of frames >= 3, got {self.window}")
        if not 1 <= self.max_offset_frames <= 100:
            raise ConfigError(f"max_offset_frames must be 1..100, got {self.max_offset_frames}")
        if self.landmarker not in LAYOUTS:
            raise ConfigError(f"unknown landmarker {self.landmarker!r}", fix=f"use one of {sorted(LAYOUTS)}")
        if self.face is not None and self.face < 0:
            raise ConfigError(f"face index must be >= 0, got {self.face}")
        if self.max_faces < 1:
            raise ConfigError("max_faces must be >= 1")


@dataclass(frozen=True)
class AlignOptions:
    """``max_shift_ms`` bounds the shift of any phrase; ``phrase_ms`` bounds its deviation from the global shift.

    The default covers a track misplaced by up to 600 ms plus a few frames of the picture's own offset (Megamind.avi
    scores -23 ms on its own track, so a -600 ms misplacement needs -623 ms). Wider searches find false matches
    one or two syllables away in evenly paced speech: Megamind, searched to 800 ms, aligned a -600 ms track to +834.
    """

    max_shift_ms: float = 700.0
    phrase_ms: float = 160.0
    min_pause: float = 0.2  # seconds of low energy that separate two phrases
    fade: float = 0.015  # seconds of fade where audio is cut
    min_confidence: float = 0.03  # phrase estimates below this confidence take the global shift

    def __post_init__(self):
        if not 0 < self.max_shift_ms <= 5000:
            raise ConfigError(f"max_shift_ms must be in (0, 5000], got {self.max_shift_ms}")
        if self.phrase_ms < 0 or self.min_pause <= 0 or self.fade < 0:
            raise ConfigError("phrase_ms, min_pause and fade must be positive")


@dataclass(frozen=True)
class RenderOptions:
    """Mouth re-rendering. ``library_size`` caps the stored mouth images (memory ~ 60 KB each)."""

    library_size: int = 1500
    candidates: int = 24
    switch_cost: float = 0.6  # cost of jumping to a non-consecutive library frame (in feature std units)
    feather: float = 0.18  # feather width as a fraction of the ellipse's half-width
    smooth_frames: int = 2  # +- frames of smoothing of the head transform
    pose_weight: float = 0.7  # weight of head-pose similarity against mouth-shape fit when choosing mouths
    same_person: float = 0.45  # face-descriptor distance below which two shots show the same person
    landmarker: str = "mediapipe"
    face: int | None = None
    crf: int = 17

    def __post_init__(self):
        if self.library_size < 10 or self.candidates < 1 or self.switch_cost < 0:
            raise ConfigError("library_size >= 10, candidates >= 1 and switch_cost >= 0 are required")
        if not 0 < self.feather < 1:
            raise ConfigError(f"feather must be in (0, 1), got {self.feather}")
        if self.landmarker not in LAYOUTS:
            raise ConfigError(f"unknown landmarker {self.landmarker!r}", fix=f"use one of {sorted(LAYOUTS)}")


# --------------------------------------------------------------------------------------------------- audio


def speech_envelope(audio: np.ndarray, sample_rate: int, rate: float, frames: int | None = None) -> np.ndarray:
    """Log energy of 300-3000 Hz (dB, floored 50 dB under the peak), sampled at ``rate`` Hz.

    Returns ``(frames,)`` float32; value ``n`` describes the 40 ms around ``n / rate`` seconds.
    """
    x = resample(np.asarray(audio, dtype=np.float32), sample_rate, ANALYSIS_RATE) if sample_rate != ANALYSIS_RATE \
        else np.asarray(audio, dtype=np.float32)
    hop, n_fft = 80, 512  # 5 ms hop, 32 ms window
    if frames is None:
        frames = int(math.ceil(len(x) / ANALYSIS_RATE * rate))
    padded = np.pad(x, (n_fft // 2, n_fft // 2 + hop))
    count = 1 + (len(padded) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(count)[:, None]
    spec = np.abs(np.fft.rfft(padded[idx] * np.hanning(n_fft), axis=1)) ** 2
    freqs = np.fft.rfftfreq(n_fft, 1 / ANALYSIS_RATE)
    band = spec[:, (freqs >= 300) & (freqs <= 3000)].sum(axis=1)
    kernel = np.ones(8) / 8  # 40 ms
    band = np.convolve(band, kernel, mode="same")
    db = 10 * np.log10(band + 1e-10)
    db = np.maximum(db, db.max() - 50.0)
    times = np.arange(frames) / rate
    return np.interp(times, np.arange(count) * hop / ANALYSIS_RATE, db, right=db.min()).astype(np.float32)


def audio_features(audio: np.ndarray, sample_rate: int, rate: float, frames: int) -> np.ndarray:
    """``(frames, 9)`` log energies of 8 mel-spaced bands (100-7000 Hz) plus the speech envelope, at ``rate`` Hz."""
    import librosa

    x = resample(np.asarray(audio, dtype=np.float32), sample_rate, ANALYSIS_RATE) if sample_rate != ANALYSIS_RATE \
        else np.asarray(audio, dtype=np.float32)
    mel = librosa.feature.melspectrogram(y=x, sr=ANALYSIS_RATE, n_fft=512, hop_length=80, n_mels=8, fmin=100,
                                         fmax=7000, power=2.0)
    logmel = 10 * np.log10(mel + 1e-10)
    logmel = np.maximum(logmel, logmel.max() - 60.0)
    times = np.arange(frames) / rate
    grid = np.arange(logmel.shape[1]) * 80 / ANALYSIS_RATE
    bands = np.stack([np.interp(times, grid, row, right=row.min()) for row in logmel], axis=1)
    env = speech_envelope(x, ANALYSIS_RATE, rate, frames)[:, None]
    return np.concatenate([bands, env], axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------------- video analysis


@dataclass
class MouthTrack:
    """Per-frame landmarks of one face over a video, from one landmark model.

    ``points``: ``(frames, K, 2)`` float32 pixels (NaN where no face) for the indices ``keep`` of the model;
    ``layout``: a ``Layout`` that indexes into ``keep``; ``shots``: first frame of each shot; ``faces``: how many
    faces were seen per frame.
    """

    info: VideoInfo
    model: str
    keep: np.ndarray
    layout: Layout
    points: np.ndarray
    shots: list[int]
    faces: np.ndarray
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return int(self.points.shape[0])

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.points[:, 0, 0])

    def features(self) -> np.ndarray:
        """``(frames, 3)`` mouth features (see ``face.mouth_features``), NaN where no face."""
        out = np.full((self.frames, 3), np.nan, dtype=np.float32)
        for t in np.flatnonzero(self.valid):
            out[t] = mouth_features(self.points[t], self.layout)
        return out

    def opening(self) -> np.ndarray:
        return self.features()[:, 0]

    def shot_of(self) -> np.ndarray:
        """``(frames,)`` shot index of every frame."""
        ids = np.zeros(self.frames, dtype=np.int32)
        for i, start in enumerate(self.shots[1:], 1):
            ids[start:] = i
        return ids


def _compact_layout(layout: Layout) -> tuple[np.ndarray, Layout]:
    used = {layout.mouth_left, layout.mouth_right, layout.eye_left, layout.eye_right, layout.nose, layout.chin,
            *layout.outer_lips, *layout.stable, *(i for pair in layout.inner_pairs for i in pair)}
    keep = np.array(sorted(used))
    pos = {int(k): i for i, k in enumerate(keep)}
    compact = Layout(
        points=len(keep), mouth_left=pos[layout.mouth_left], mouth_right=pos[layout.mouth_right],
        inner_pairs=tuple((pos[a], pos[b]) for a, b in layout.inner_pairs),
        outer_lips=tuple(pos[i] for i in layout.outer_lips), stable=tuple(pos[i] for i in layout.stable),
        eye_left=pos[layout.eye_left], eye_right=pos[layout.eye_right], nose=pos[layout.nose], chin=pos[layout.chin],
    )
    return keep, compact


def _thumb(frame: np.ndarray) -> np.ndarray:
    import cv2

    step = max(1, min(frame.shape[0] // 36, frame.shape[1] // 64))  # subsample first: a full-size resize is slow
    small = cv2.resize(frame[::step, ::step], (32, 18), interpolation=cv2.INTER_AREA)
    return small.mean(axis=2).astype(np.float32)


def track_mouth(
    video: str | Path,
    landmarker: str = "mediapipe",
    max_faces: int = 1,
    face: int | None = None,
    cut_threshold: float = 30.0,
    on_frame: Callable[[int, np.ndarray, list[np.ndarray], bool], None] | None = None,
    progress: bool = False,
) -> list[MouthTrack]:
    """Landmark every frame of ``video``, streaming. Returns one ``MouthTrack`` per face slot.

    Faces are ordered left to right in each frame (slot ``i`` = the ``i``-th face from the left); with
    ``max_faces == 1`` only the largest face is tracked. Frames without a face hold NaN. ``on_frame(index,
    frame, faces, new_shot)`` sees every decoded frame (used by ``render`` to build its library in the same pass).
    Raises ``NoFaceError`` when no frame has a face.
    """
    info = probe(video)
    model = load_landmarker(landmarker, max_faces=max_faces, video=True)
    keep, layout = _compact_layout(LAYOUTS[landmarker])
    slots: list[list[np.ndarray | None]] = [[] for _ in range(max_faces)]
    counts, shots, prev = [], [0], None
    start = time.perf_counter()
    bar = _progress(info.frames, "landmarks", progress)
    try:
        for t, frame in enumerate(iter_frames(video)):
            thumb = _thumb(frame)
            cut = prev is not None and float(np.abs(thumb - prev).mean()) > cut_threshold
            if cut:
                shots.append(t)
            prev = thumb
            faces = model(frame)
            faces = sorted(faces, key=lambda p: float(p[:, 0].mean())) if max_faces > 1 else faces[:1]
            counts.append(len(faces))
            for i in range(max_faces):
                slots[i].append(faces[i][keep] if i < len(faces) else None)
            if on_frame is not None:
                on_frame(t, frame, faces, cut or t == 0)
            if bar is not None:
                bar.update(1)
    finally:
        model.close()
        if bar is not None:
            bar.close()
    seconds = time.perf_counter() - start
    if not counts:
        raise InputError("video has no frames", path=video, fix="re-export the video")
    if not any(counts):
        raise NoFaceError("no face found in any frame", path=video,
                          fix="lip-sync needs a visible, roughly frontal face; check the video or crop it")
    tracks = []
    for i in range(max_faces):
        pts = np.full((len(counts), len(keep), 2), np.nan, dtype=np.float32)
        for t, p in enumerate(slots[i]):
            if p is not None:
                pts[t] = p
        tracks.append(MouthTrack(info, landmarker, keep, layout, pts, shots, np.array(counts), seconds))
    if face is not None:
        if face >= max_faces or not tracks[face].valid.any():
            raise InputError(f"face {face} was never seen", path=video,
                             fix=f"faces are numbered from the left, 0..{max(counts) - 1}")
    return tracks



def count_faces(video: str | Path, landmarker: str = "mediapipe", max_faces: int = 3, limit: int = 40) -> int:
    """Most faces seen at once in up to ``limit`` key frames (a cheap look before tracking several faces)."""
    if max_faces <= 1:
        return 1
    model = load_landmarker(landmarker, max_faces=max_faces, video=False)
    try:
        return max([len(model(frame)) for frame in iter_keyframes(video, limit)] + [1])
    finally:
        model.close()


def _progress(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    from ..console import progress_bar

    return progress_bar(total=total or None, desc=desc, unit="frame", leave=False)


# --------------------------------------------------------------------------------------------------- scoring


@dataclass
class SyncScore:
    """Offset (ms, positive = audio lags picture), confidence (median - min distance) and the distance curve."""

    offset_ms: float
    confidence: float
    min_distance: float
    offset_frames: float
    windows: int
    curve: np.ndarray = field(repr=False)  # (2 * max_offset_frames * SUBSTEPS + 1,) mean distance per shift
    start: int = 0  # first frame
    end: int = 0  # one past the last frame

    def to_dict(self) -> dict:
        return {"offset_ms": round(float(self.offset_ms), 1), "confidence": round(self.confidence, 4),
                "min_distance": round(self.min_distance, 4), "offset_frames": round(self.offset_frames, 2),
                "windows": self.windows, "start_frame": self.start, "end_frame": self.end}


def _windows(x: np.ndarray, width: int) -> np.ndarray:
    """``(n - width + 1, width)`` mean-removed, unit-norm sliding windows (zero where flat)."""
    w = np.lib.stride_tricks.sliding_window_view(x, width).astype(np.float64)
    w = w - w.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(w, axis=1, keepdims=True)
    return np.where(norm > 1e-9, w / np.maximum(norm, 1e-9), 0.0)


def sync_distances(
    opening: np.ndarray,
    envelope: np.ndarray,
    max_offset_frames: int = 15,
    window: int = 5,
    frames_mask: np.ndarray | None = None,
    min_motion: float = 1e-3,
    center_frames: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of window distances per shift, and the number of windows.

    Args:
        opening: ``(T,)`` mouth opening per video frame (NaN where no face).
        envelope: ``(T * SUBSTEPS,)`` audio feature at ``SUBSTEPS`` times the frame rate.
        frames_mask: ``(T,)`` bool, which window centres may be used (one shot, one phrase).
        center_frames: the search is ``center +- max_offset_frames``.

    Returns:
        ``(sums, count)``: ``sums`` has ``2 * max_offset_frames * SUBSTEPS + 1`` entries for shifts
        ``center*SUBSTEPS - max*SUBSTEPS ... + max*SUBSTEPS`` quarter frames.
    """
    T = len(opening)
    half = window // 2
    shifts = int(round(center_frames * SUBSTEPS)) + np.arange(-max_offset_frames * SUBSTEPS,
                                                               max_offset_frames * SUBSTEPS + 1)
    vw = np.lib.stride_tricks.sliding_window_view(opening, window)  # (T - window + 1, window)
    centers = np.arange(half, T - half)
    ok = ~np.isnan(vw).any(axis=1) & (np.ptp(np.nan_to_num(vw), axis=1) > min_motion)
    if frames_mask is not None:
        ok &= frames_mask[centers]
    if not ok.any():
        return np.zeros(len(shifts)), 0
    v = _windows(np.nan_to_num(opening), window)[ok]
    centers = centers[ok]
    floor = float(np.min(envelope)) if len(envelope) else 0.0
    pad = (max_offset_frames + abs(int(round(center_frames))) + window + 2) * SUBSTEPS
    env = np.concatenate([np.full(pad, floor), envelope, np.full(pad + T * SUBSTEPS, floor)])
    offsets = (centers[:, None] + np.arange(-half, half + 1)[None, :]) * SUBSTEPS + pad  # (n, window)
    sums = np.empty(len(shifts))
    for i, s in enumerate(shifts):
        a = env[offsets + s]
        a = a - a.mean(axis=1, keepdims=True)
        norm = np.linalg.norm(a, axis=1, keepdims=True)
        a = np.where(norm > 1e-6, a / np.maximum(norm, 1e-9), 0.0)
        sums[i] = np.linalg.norm(v - a, axis=1).sum()
    return sums, int(ok.sum())


def _score_from(sums: np.ndarray, count: int, fps: float, max_offset_frames: int, center_frames: float = 0.0,
                start: int = 0, end: int = 0) -> SyncScore:
    if count == 0:
        return SyncScore(float("nan"), 0.0, float("nan"), float("nan"), 0, sums, start, end)
    curve = sums / count
    k = int(np.argmin(curve))
    frac = 0.0
    if 0 < k < len(curve) - 1:  # parabolic refinement between quarter frames
        a, b, c = curve[k - 1], curve[k], curve[k + 1]
        denom = a - 2 * b + c
        frac = 0.5 * (a - c) / denom if denom > 1e-12 else 0.0
    shift = (k - max_offset_frames * SUBSTEPS + frac) / SUBSTEPS + round(center_frames * SUBSTEPS) / SUBSTEPS
    whole = curve[::SUBSTEPS]  # integer-frame shifts, as SyncNet
    confidence = float(np.median(whole) - curve[k])
    return SyncScore(1000.0 * shift / fps, confidence, float(curve[k]), float(shift), count, curve, start, end)


@dataclass
class SyncReport:
    """Whole-video score plus one score per shot (shots with too few usable frames are skipped)."""

    overall: SyncScore
    shots: list[SyncScore]
    face: int
    fps: float
    frames: int
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = self.overall.to_dict()
        d.update(face=self.face, fps=round(self.fps, 3), frames=self.frames,
                 shots=[s.to_dict() for s in self.shots])
        return d


def score_tracks(tracks: list[MouthTrack], audio: np.ndarray, sample_rate: int,
                 options: SyncOptions = SyncOptions()) -> SyncReport:
    """Score audio against already landmarked faces; picks ``options.face`` or the most confident one."""
    fps = tracks[0].info.fps
    T = tracks[0].frames
    env = speech_envelope(audio, sample_rate, fps * SUBSTEPS)
    candidates = [options.face] if options.face is not None else [i for i, t in enumerate(tracks) if t.valid.any()]
    best = None
    for i in candidates:
        track = tracks[i]
        opening = track.opening()
        sums, count = sync_distances(opening, env, options.max_offset_frames, options.window)
        overall = _score_from(sums, count, fps, options.max_offset_frames, start=0, end=T)
        if best is None or overall.confidence > best[1].confidence:
            best = (i, overall, opening, track)
    index, overall, opening, track = best
    shot_ids = track.shot_of()
    shots = []
    bounds = track.shots + [T]
    for s in range(len(track.shots)):
        mask = shot_ids == s
        if mask.sum() < options.min_shot_frames:
            continue
        sums, count = sync_distances(opening, env, options.max_offset_frames, options.window, frames_mask=mask)
        if count >= options.min_shot_frames // 2:
            shots.append(_score_from(sums, count, fps, options.max_offset_frames, start=bounds[s], end=bounds[s + 1]))
    return SyncReport(overall, shots, index, fps, T)


def _load_track_audio(video: str | Path, audio: str | Path | None, info: VideoInfo) -> tuple[np.ndarray, int]:
    source = video if audio is None else audio
    x, sr = load_audio(source, sample_rate=ANALYSIS_RATE)
    over = len(x) / sr - info.duration
    if audio is not None and over > max(MAX_AUDIO_OVERHANG, 0.1 * info.duration):
        raise InputError(f"audio is {len(x) / sr:.1f} s long but the video only {info.duration:.1f} s", path=audio,
                         fix="trim the audio to the scene or give the matching video")
    return x, sr



def _faces_to_track(video: str | Path, options: SyncOptions) -> int:
    if options.face is not None:  # all faces are tracked so that they can be numbered from the left
        return max(options.face + 1, count_faces(video, options.landmarker, max(options.max_faces, options.face + 1)))
    return count_faces(video, options.landmarker, options.max_faces)


def score(video: str | Path, audio: str | Path | None = None, options: SyncOptions = SyncOptions(),
          progress: bool = False) -> SyncReport:
    """Audio-video offset of ``video`` (with its own audio track, or with ``audio``) and a confidence."""
    start = time.perf_counter()
    info = probe(video)
    x, sr = _load_track_audio(video, audio, info)
    tracks = track_mouth(video, options.landmarker, max_faces=_faces_to_track(video, options), face=options.face,
                         cut_threshold=options.cut_threshold, progress=progress)
    report = score_tracks(tracks, x, sr, options)
    report.seconds = time.perf_counter() - start
    return report


# --------------------------------------------------------------------------------------------------- align


@dataclass
class AlignResult:
    """What ``align`` did: global and per-phrase shifts (ms, positive = audio moved earlier) and residuals."""

    offset_before_ms: float
    offset_after_ms: float
    confidence_before: float
    confidence_after: float
    shift_ms: float
    phrases: list[dict]
    output: str | None = None
    seconds: float = 0.0
    frames: int = 0

    def to_dict(self) -> dict:
        return {"offset_before_ms": round(self.offset_before_ms, 1), "offset_after_ms": round(self.offset_after_ms, 1),
                "confidence_before": round(self.confidence_before, 4),
                "confidence_after": round(self.confidence_after, 4), "shift_ms": round(self.shift_ms, 1),
                "phrases": self.phrases, "output": self.output, "seconds": round(self.seconds, 2),
                "frames": self.frames}


def find_phrases(audio: np.ndarray, sample_rate: int, min_pause: float = 0.2, floor_db: float = 35.0
                 ) -> list[tuple[float, float]]:
    """``[(start, end), ...]`` seconds of sounding stretches separated by at least ``min_pause`` of quiet."""
    rate = 200.0
    env = speech_envelope(audio, sample_rate, rate)
    loud = env > env.max() - floor_db
    phrases, start, quiet = [], None, 0
    need = int(min_pause * rate)
    for i, on in enumerate(loud):
        if on:
            if start is None:
                start = i
            quiet = 0
        elif start is not None:
            quiet += 1
            if quiet >= need:
                phrases.append((start / rate, (i - quiet + 1) / rate))
                start, quiet = None, 0
    if start is not None:
        phrases.append((start / rate, (len(loud) - quiet) / rate))
    return [(a, b) for a, b in phrases if b - a >= 0.08]


def align_audio(track: MouthTrack, audio: np.ndarray, sample_rate: int, options: AlignOptions = AlignOptions(),
                sync: SyncOptions = SyncOptions()) -> tuple[np.ndarray, AlignResult]:
    """Shift ``audio`` (whole, then phrase by phrase) to match the mouth in ``track``. Never touches the picture.

    Returns the aligned audio ``(samples,)`` at ``sample_rate``, as long as the video, and an ``AlignResult``.
    """
    fps = track.info.fps
    T = track.frames
    opening = track.opening()
    x16 = resample(audio, sample_rate, ANALYSIS_RATE) if sample_rate != ANALYSIS_RATE else audio
    env = speech_envelope(x16, ANALYSIS_RATE, fps * SUBSTEPS)
    max_frames = max(1, int(math.ceil(options.max_shift_ms / 1000 * fps)))
    sums, count = sync_distances(opening, env, max_frames, sync.window)
    before = _score_from(sums, count, fps, max_frames)
    if before.windows == 0:
        raise NoFaceError("no frame shows a moving mouth, so there is nothing to align to", path=track.info.path,
                          fix="check that the video shows the speaking face")
    global_ms = float(np.clip(before.offset_ms, -options.max_shift_ms, options.max_shift_ms))
    phrase_frames = max(1, int(math.ceil(options.phrase_ms / 1000 * fps)))
    phrases = []
    for a, b in find_phrases(x16, ANALYSIS_RATE, options.min_pause):
        # video frames whose audio (at the global shift) falls into this phrase
        t0 = int(math.floor((a - global_ms / 1000) * fps))
        t1 = int(math.ceil((b - global_ms / 1000) * fps))
        mask = np.zeros(T, dtype=bool)
        mask[max(0, t0):max(0, min(T, t1))] = True
        shift, conf, used = global_ms, 0.0, False
        if mask.sum() >= 2 * sync.window:
            s, n = sync_distances(opening, env, phrase_frames, sync.window, frames_mask=mask,
                                  center_frames=global_ms / 1000 * fps)
            local = _score_from(s, n, fps, phrase_frames, center_frames=global_ms / 1000 * fps)
            conf = local.confidence if n else 0.0
            if n >= sync.window and conf >= options.min_confidence:
                shift, used = float(np.clip(local.offset_ms, -options.max_shift_ms, options.max_shift_ms)), True
        phrases.append({"start": round(a, 3), "end": round(b, 3), "shift_ms": round(shift, 1),
                        "confidence": round(conf, 4), "own_estimate": used})
    out = _place_phrases(audio, sample_rate, phrases, global_ms, options, total=int(round(track.info.duration
                                                                                            * sample_rate)))
    out16 = resample(out, sample_rate, ANALYSIS_RATE) if sample_rate != ANALYSIS_RATE else out
    env2 = speech_envelope(out16, ANALYSIS_RATE, fps * SUBSTEPS)
    sums2, count2 = sync_distances(opening, env2, max_frames, sync.window)
    after = _score_from(sums2, count2, fps, max_frames)
    result = AlignResult(before.offset_ms, after.offset_ms, before.confidence, after.confidence, global_ms, phrases,
                         frames=T)
    return out, result


def _place_phrases(audio: np.ndarray, sr: int, phrases: list[dict], global_ms: float, options: AlignOptions,
                   total: int) -> np.ndarray:
    """Cut ``audio`` at the middle of each pause and move every piece earlier by its phrase's shift.

    Pieces are faded in and out over ``options.fade`` seconds at the cuts (which fall in pauses), and a piece
    never starts before the previous one ends, so nothing overlaps or repeats.
    """
    n = len(audio)
    out = np.zeros(max(total, 1), dtype=np.float32)
    if not phrases:
        phrases = [{"start": 0.0, "end": n / sr, "shift_ms": global_ms}]
    cuts = [0] + [int(round((p["end"] + q["start"]) / 2 * sr)) for p, q in zip(phrases, phrases[1:])] + [n]
    fade = max(1, int(options.fade * sr))
    placed_end = -(10**12)
    for i, p in enumerate(phrases):
        a, b = cuts[i], cuts[i + 1]
        piece = audio[a:b].astype(np.float32).copy()
        if len(piece) == 0:
            continue
        dest = a - int(round(p["shift_ms"] / 1000 * sr))
        if dest < placed_end:  # keep order: trim the head of this piece (it lies in a pause)
            skip = placed_end - dest
            piece, dest = piece[skip:], placed_end
        f = min(fade, len(piece) // 2)
        if f > 0:
            if i > 0:
                piece[:f] *= np.linspace(0, 1, f, dtype=np.float32)
            if i < len(phrases) - 1:
                piece[-f:] *= np.linspace(1, 0, f, dtype=np.float32)
        lo, hi = max(dest, 0), min(dest + len(piece), len(out))
        if hi > lo:
            out[lo:hi] += piece[lo - dest:hi - dest]
        placed_end = dest + len(piece)
    return out


def align(video: str | Path, audio: str | Path, output: str | Path, options: AlignOptions = AlignOptions(),
          sync: SyncOptions = SyncOptions(), progress: bool = False) -> AlignResult:
    """Write ``output`` (mp4: H.264 + AAC): the video's picture with ``audio`` shifted to match its mouth."""
    start = time.perf_counter()
    info = probe(video)
    _load_track_audio(video, audio, info)  # checks the length
    x, sr = load_audio(audio)
    tracks = track_mouth(video, sync.landmarker, max_faces=_faces_to_track(video, sync), face=sync.face,
                         cut_threshold=sync.cut_threshold, progress=progress)
    x16 = resample(x, sr, ANALYSIS_RATE)
    track = tracks[score_tracks(tracks, x16, ANALYSIS_RATE, sync).face]
    aligned, result = align_audio(track, x, sr, options, sync)
    replace_audio(video, output, aligned, sr)
    result.output = str(output)
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------------------------------- render


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` to ``dst``: ``(2, 3)``."""
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s, d = src - mu_s, dst - mu_d
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum()
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()
    var = (s ** 2).sum() + 1e-12
    ca, sb = a / var, b / var
    m = np.array([[ca, -sb], [sb, ca]])
    return np.hstack([m, (mu_d - m @ mu_s)[:, None]]).astype(np.float64)


def _invert(m: np.ndarray) -> np.ndarray:
    a = np.vstack([m, [0, 0, 1]])
    return np.linalg.inv(a)[:2]


@dataclass
class _Canon:
    """Canonical face frame: eye distance 100 px; the mouth patch and its feathered elliptical mask."""

    reference: np.ndarray  # (S, 2) stable points in canonical coordinates
    box: tuple[int, int, int, int]  # x0, y0, width, height of the mouth patch in canonical coordinates
    alpha: np.ndarray  # (height, width) float32 feathered ellipse, exactly 0 near the patch border


def _canon(points: np.ndarray, layout: Layout, feather: float) -> _Canon:
    import cv2

    eyes = np.array([[0.0, 0.0], [100.0, 0.0]])
    m = similarity_transform(points[[layout.eye_left, layout.eye_right]], eyes)
    mapped = points @ m[:, :2].T + m[:, 2]
    stable = mapped[list(layout.stable)]
    lips = mapped[list(layout.outer_lips)]
    center = lips.mean(axis=0)
    half_w = max(30.0, float(np.ptp(lips[:, 0])) * 0.78)
    nose_y, chin_y = mapped[layout.nose, 1], mapped[layout.chin, 1]
    top = min(center[1] - 12.0, nose_y + 0.25 * (center[1] - nose_y))
    bottom = center[1] + 0.62 * (chin_y - center[1])
    half_h = max(18.0, (bottom - top) / 2)
    cy = (top + bottom) / 2
    margin = 6
    x0, y0 = int(math.floor(center[0] - half_w - margin)), int(math.floor(cy - half_h - margin))
    w, h = int(2 * half_w + 2 * margin) + 1, int(2 * half_h + 2 * margin) + 1
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx + x0 - center[0]) / half_w) ** 2 + ((yy + y0 - cy) / half_h) ** 2)
    alpha = np.clip((1.0 - r) / feather, 0.0, 1.0)
    alpha = alpha * alpha * (3 - 2 * alpha)  # smoothstep
    alpha = cv2.GaussianBlur(alpha.astype(np.float32), (0, 0), 1.0)
    alpha[r >= 1.0] = 0.0
    return _Canon(stable, (x0, y0, w, h), alpha.astype(np.float32))


@dataclass
class RenderResult:
    """What ``render`` did, with the frames it changed."""

    frames: int
    rendered: int
    library: int
    seconds: float
    output: str | None = None
    selection: np.ndarray | None = field(default=None, repr=False)  # (frames,) library index per frame (-1: none)
    identities: int = 0  # people (clusters of faces) found in the video
    shots: list[int] = field(default_factory=list)  # first frame of each shot

    def to_dict(self) -> dict:
        return {"frames": self.frames, "rendered": self.rendered, "library": self.library,
                "seconds": round(self.seconds, 2), "fps": round(self.frames / max(self.seconds, 1e-9), 1),
                "identities": self.identities, "output": self.output}


def _smooth_transforms(ms: np.ndarray, valid: np.ndarray, shots: np.ndarray, radius: int) -> np.ndarray:
    """Average each frame's 2x3 transform with its neighbours in the same shot (removes landmark jitter)."""
    if radius <= 0:
        return ms
    out = ms.copy()
    T = len(ms)
    for t in np.flatnonzero(valid):
        lo, hi = max(0, t - radius), min(T, t + radius + 1)
        idx = [u for u in range(lo, hi) if valid[u] and shots[u] == shots[t]]
        out[t] = ms[idx].mean(axis=0)
    return out


def _predict_shapes(lib_feats: np.ndarray, lib_audio: np.ndarray, new_audio: np.ndarray) -> np.ndarray:
    """Ridge regression from audio context (+-2 frames) to mouth features, fitted on the library's own pairs."""
    def context(a: np.ndarray) -> np.ndarray:
        pad = np.pad(a, ((2, 2), (0, 0)), mode="edge")
        return np.concatenate([pad[i:i + len(a)] for i in range(5)], axis=1)

    xa, xn = context(lib_audio), context(new_audio)
    mu, sd = xa.mean(axis=0), xa.std(axis=0) + 1e-6
    xa, xn = (xa - mu) / sd, (xn - mu) / sd
    fm, fs = lib_feats.mean(axis=0), lib_feats.std(axis=0) + 1e-6
    y = (lib_feats - fm) / fs
    xa1 = np.hstack([xa, np.ones((len(xa), 1))])
    lam = 10.0 * len(xa) / 100
    w = np.linalg.solve(xa1.T @ xa1 + lam * np.eye(xa1.shape[1]), xa1.T @ y)
    pred = np.hstack([xn, np.ones((len(xn), 1))]) @ w
    # the regression shrinks toward the mean: restore the library's spread so closed and open mouths are reached
    pred_fit = xa1 @ w
    gain = y.std(axis=0) / (pred_fit.std(axis=0) + 1e-6)
    return (pred * np.minimum(gain, 3.0)) * fs + fm


def _select(lib_feats: np.ndarray, lib_frames: np.ndarray, target: np.ndarray, silent: np.ndarray,
            k: int, switch_cost: float) -> np.ndarray:
    """Viterbi over the ``k`` nearest library mouths per frame: fit + cost of jumping (holding is free in
    silence, stepping to the next library frame is free always). Features are pre-scaled, ``(library, d)`` and
    ``(frames, d)``. Returns ``(frames,)`` library indices."""
    lib, tgt = lib_feats, target
    T = len(tgt)
    k = min(k, len(lib))
    cand = np.argsort(((tgt[:, None, :] - lib[None, :, :]) ** 2).sum(-1), axis=1)[:, :k]  # (T, k)
    fit = ((tgt[:, None, :] - lib[cand]) ** 2).sum(-1)
    cost = fit[0].copy()
    back = np.zeros((T, k), dtype=np.int64)
    for t in range(1, T):
        prev, cur = cand[t - 1], cand[t]
        consecutive = lib_frames[cur][None, :] == lib_frames[prev][:, None] + 1
        same = cur[None, :] == prev[:, None]
        jump = switch_cost * (1.0 + np.sqrt(((lib[prev][:, None, :] - lib[cur][None, :, :]) ** 2).sum(-1)))
        trans = np.where(consecutive, 0.0, jump)
        trans = np.where(same, 0.0 if silent[t] else 0.5 * switch_cost, trans)
        total = cost[:, None] + trans
        back[t] = np.argmin(total, axis=0)
        cost = total[back[t], np.arange(k)] + fit[t] * (0.3 if silent[t] else 1.0)
    path = np.zeros(T, dtype=np.int64)
    j = int(np.argmin(cost))
    for t in range(T - 1, -1, -1):
        path[t] = cand[t, j]
        j = back[t, j]
    return path


def _identities(descriptors: dict, shot: np.ndarray, valid: np.ndarray, threshold: float = 0.6) -> np.ndarray:
    """``(frames,)`` person cluster per frame (-1 without face). Shots whose mean face descriptors
    (``FaceIdentifier``) lie closer than ``threshold`` to a cluster's first shot join it."""
    out = np.full(len(shot), -1, dtype=np.int64)
    centroids: list[np.ndarray] = []
    for s in np.unique(shot):
        frames_s = np.flatnonzero((shot == s) & valid)
        have = [t for t in frames_s if t in descriptors]
        if not have:
            continue
        d = np.mean([descriptors[t] for t in have], axis=0)
        dist = [float(np.linalg.norm(d - c)) for c in centroids]
        if dist and min(dist) < threshold:
            best = int(np.argmin(dist))
        else:
            centroids.append(d)
            best = len(centroids) - 1
        out[frames_s] = best
    return out


def _pose(track: MouthTrack) -> np.ndarray:
    """``(frames, 2)`` head pose proxies: the nose's offset along and across the eye line, over the eye distance."""
    lay = track.layout
    p = track.points
    eye_l, eye_r, nose = p[:, lay.eye_left], p[:, lay.eye_right], p[:, lay.nose]
    axis = eye_r - eye_l
    d2 = (axis ** 2).sum(axis=1) + 1e-6
    rel = nose - (eye_l + eye_r) / 2
    along = (rel * axis).sum(axis=1) / d2
    across = (rel[:, 0] * -axis[:, 1] + rel[:, 1] * axis[:, 0]) / d2
    return np.nan_to_num(np.stack([along, across], axis=1)).astype(np.float64)


@dataclass
class MouthLibrary:
    """A face's own mouth images, in canonical coordinates (eye distance 100 px), from one pass over a video.

    ``patches``: ``(N, height, width, 3)`` uint8 mouth patches of frames ``frames`` ``(N,)``; ``identity``:
    ``(T,)`` person cluster of every frame (-1 without face); ``own_audio``: ``(T, 9)`` ``audio_features`` of the
    video's own sound at its frame rate, or ``None``.
    """

    info: VideoInfo
    track: MouthTrack
    canon: _Canon
    patches: np.ndarray
    frames: np.ndarray
    identity: np.ndarray
    own_audio: np.ndarray | None

    @property
    def alpha(self) -> np.ndarray:
        """``(height, width)`` float32 feathered blending mask of a patch."""
        return self.canon.alpha


def build_library(video: str | Path, options: RenderOptions = RenderOptions(), progress: bool = False
                  ) -> MouthLibrary:
    """Landmark every frame of ``video`` and keep up to ``options.library_size`` canonical mouth patches of the
    face ``options.face`` (default: the largest), evenly spread over the video. Streams; memory is bounded by the
    library size plus ~0.5 KB of landmarks per frame."""
    import cv2

    info = probe(video)
    stride = max(1, int(math.ceil(max(info.frames, 1) / options.library_size)))
    state: dict = {"canon": None, "patches": [], "lib_t": [], "identity": {}, "last_id": -(10**9)}
    identifier = FaceIdentifier()
    keep, layout = _compact_layout(LAYOUTS[options.landmarker])

    def on_frame(t: int, frame: np.ndarray, faces: list[np.ndarray], new_shot: bool) -> None:
        if new_shot:
            state["last_id"] = -(10**9)
        idx = 0 if options.face is None else options.face
        if idx >= len(faces):
            return
        pts = faces[idx][keep]
        if state["canon"] is None:
            state["canon"] = _canon(pts, layout, options.feather)
        canon = state["canon"]
        if t - state["last_id"] >= 125:  # a face descriptor in every shot, then every 125 frames
            state["identity"][t] = identifier(frame, faces[idx])
            state["last_id"] = t
        if t % stride or len(state["patches"]) >= options.library_size:
            return
        m = similarity_transform(pts[list(layout.stable)], canon.reference)
        x0, y0, w, h = canon.box
        m[:, 2] -= (x0, y0)
        patch = cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        state["patches"].append(patch)
        state["lib_t"].append(t)

    max_faces = 1 if options.face is None else max(options.face + 1, count_faces(video, options.landmarker))
    tracks = track_mouth(video, options.landmarker, max_faces=max_faces, face=options.face, on_frame=on_frame,
                         progress=progress)
    track = tracks[0 if options.face is None else options.face]
    if len(state["lib_t"]) < 3:
        raise NoFaceError("too few frames with a face to build a mouth library", path=video,
                          fix="render needs footage of the face speaking (a few seconds at least)")
    own = None
    if info.has_audio:
        try:
            x, sr = load_audio(video, sample_rate=ANALYSIS_RATE)
            own = audio_features(x, sr, info.fps, track.frames)
        except InputError:
            own = None
    identity = _identities(state["identity"], track.shot_of(), track.valid, options.same_person)
    return MouthLibrary(info, track, state["canon"], np.stack(state["patches"]), np.array(state["lib_t"]),
                        identity, own)


def render_frames(
    video: str | Path,
    audio: np.ndarray,
    sample_rate: int,
    options: RenderOptions = RenderOptions(),
    progress: bool = False,
    alphas: list | None = None,
    library: MouthLibrary | None = None,
    patch_for: Callable[[int], np.ndarray] | None = None,
) -> tuple[Iterator[np.ndarray], RenderResult, VideoInfo]:
    """Re-render the mouth of ``video`` to ``audio``; returns a lazy iterator over output frames.

    Two streaming passes over the video: the first (``build_library``, skipped when ``library`` is given) landmarks
    every frame and stores the library of canonical mouth patches; the second warps each frame's patch onto it.
    Patches are chosen from the library (Video Rewrite), or made by ``patch_for(frame_index)`` (a trained
    per-identity model, see ``recipes/lipsync``), which must return a patch shaped like the library's.
    If ``alphas`` is a list, the blending mask ``(height, width)`` float32 of every frame is appended to it
    (``None`` for frames passed through), for checks.
    """
    start = time.perf_counter()
    lib = library if library is not None else build_library(video, options, progress)
    info, track, canon = lib.info, lib.track, lib.canon
    layout = track.layout
    lib_t = lib.frames
    T, fps = track.frames, info.fps
    feats = track.features()
    valid = track.valid
    shot = track.shot_of()

    if patch_for is None:
        # audio -> mouth shape, learned from the video's own sound and picture (or a plain envelope mapping)
        new_feats = audio_features(audio, sample_rate, fps, T)
        lib_feats = feats[lib_t]
        if lib.own_audio is not None and np.ptp(lib.own_audio[:, -1]) > 10:
            target = _predict_shapes(lib_feats, lib.own_audio[lib_t], new_feats)
        else:  # no usable sound in the video: map envelope quantiles onto opening quantiles
            env = new_feats[:, -1]
            q = np.argsort(np.argsort(env)) / max(len(env) - 1, 1)
            target = np.quantile(lib_feats, q, axis=0)
        env = new_feats[:, -1]
        silent = env < env.max() - 30.0
        # in silence the mouth rests: the library's most closed shape (opening, height), its usual width
        rest = np.array([np.quantile(lib_feats[:, 0], 0.05), np.quantile(lib_feats[:, 1], 0.05),
                         np.median(lib_feats[:, 2])])
        target[silent] = rest

        # choose, shot by shot, among the mouths of the same person (identity clusters) in a similar head pose
        pose = _pose(track)
        scale = np.concatenate([lib_feats.std(axis=0), pose[lib_t].std(axis=0) / options.pose_weight]) + 1e-6
        selection = np.full(T, -1, dtype=np.int64)
        for s in np.unique(shot):
            frames_s = np.flatnonzero((shot == s) & valid)
            if len(frames_s) == 0:
                continue
            subset = np.flatnonzero(lib.identity[lib_t] == lib.identity[frames_s[0]])
            if len(subset) < 3:
                continue  # too few mouths of this person: frames pass through unchanged
            libf = np.hstack([lib_feats[subset], pose[lib_t[subset]]]) / scale
            tgt = np.hstack([target[frames_s], pose[frames_s]]) / scale
            chosen = _select(libf, lib_t[subset], tgt, silent[frames_s], options.candidates, options.switch_cost)
            selection[frames_s] = subset[chosen]
        valid = valid & (selection >= 0)

        def patch_for(t: int) -> np.ndarray:
            return lib.patches[selection[t]]
    else:
        selection = np.full(T, -1, dtype=np.int64)

    # head transforms (frame -> canonical), smoothed within shots
    ms = np.zeros((T, 2, 3))
    for t in np.flatnonzero(valid):
        ms[t] = similarity_transform(track.points[t][list(layout.stable)], canon.reference)
    ms = _smooth_transforms(ms, valid, shot, options.smooth_frames)
    result = RenderResult(T, int(valid.sum()), len(lib_t), 0.0, selection=selection,
                          identities=int(lib.identity.max()) + 1, shots=list(track.shots))

    def frames() -> Iterator[np.ndarray]:
        bar = _progress(T, "render", progress)
        colour = {"shift": None, "shot": -1}  # the colour match, smoothed over time within a shot
        for t, frame in enumerate(iter_frames(video)):
            if t < T and valid[t]:
                if shot[t] != colour["shot"]:
                    colour.update(shift=None, shot=shot[t])
                frame = _blend(frame, patch_for(t), canon, ms[t], alphas, colour)
            elif alphas is not None:
                alphas.append(None)
            if bar is not None:
                bar.update(1)
            yield frame
        if bar is not None:
            bar.close()
        result.seconds = time.perf_counter() - start

    return frames(), result, info


def _blend(frame: np.ndarray, patch: np.ndarray, canon: _Canon, m: np.ndarray, alphas: list | None,
           colour: dict | None = None) -> np.ndarray:
    """Warp ``patch`` (canonical) onto ``frame`` through the inverse of ``m`` and blend it with the feathered mask."""
    import cv2

    x0, y0, w, h = canon.box
    to_frame = _invert(np.vstack([m[0], m[1]]) - np.array([[0, 0, x0], [0, 0, y0]]))
    corners = np.array([[0, 0], [w, 0], [0, h], [w, h]], dtype=np.float64) @ to_frame[:, :2].T + to_frame[:, 2]
    H, W = frame.shape[:2]
    bx0, by0 = max(0, int(np.floor(corners[:, 0].min())) - 1), max(0, int(np.floor(corners[:, 1].min())) - 1)
    bx1, by1 = min(W, int(np.ceil(corners[:, 0].max())) + 2), min(H, int(np.ceil(corners[:, 1].max())) + 2)
    if bx1 <= bx0 or by1 <= by0:
        if alphas is not None:
            alphas.append(None)
        return frame
    local = to_frame.copy()
    local[:, 2] -= (bx0, by0)
    size = (bx1 - bx0, by1 - by0)
    warped = cv2.warpAffine(patch, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(canon.alpha, local, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=0.0)
    alpha[alpha < 1e-3] = 0.0
    roi = frame[by0:by1, bx0:bx1].astype(np.float32)
    ring = (alpha > 0) & (alpha < 0.5)
    if ring.sum() > 10:  # match the patch's colour to the frame around the mask edge
        shift = roi[ring].mean(axis=0) - warped[ring].astype(np.float32).mean(axis=0)
        if colour is not None:
            if colour["shift"] is not None:
                shift = 0.8 * colour["shift"] + 0.2 * shift
            colour["shift"] = shift
        warped = np.clip(warped.astype(np.float32) + shift, 0, 255)
    a = alpha[..., None]
    blended = np.rint(roi * (1 - a) + warped * a).astype(np.uint8)
    out = frame.copy()
    inside = alpha > 0
    out[by0:by1, bx0:bx1][inside] = blended[inside]
    if alphas is not None:
        full = np.zeros((H, W), dtype=np.float32)
        full[by0:by1, bx0:bx1] = alpha
        alphas.append(full)
    return out


def render(video: str | Path, audio: str | Path, output: str | Path, options: RenderOptions = RenderOptions(),
           progress: bool = False) -> RenderResult:
    """Write ``output`` (mp4: H.264 + AAC): ``video`` with its mouth re-rendered to ``audio``, and ``audio``.

    With several faces and no ``options.face``, the face that speaks in the video's own sound is re-rendered.
    """
    info = probe(video)
    if options.face is None and info.has_audio and count_faces(video, options.landmarker) > 1:
        options = replace(options, face=score(video, options=SyncOptions(landmarker=options.landmarker)).face)
    x16, _ = _load_track_audio(video, audio, info)
    x, sr = load_audio(audio)
    total = int(round(info.duration * sr))
    x = np.pad(x, (0, max(0, total - len(x))))[:total]
    frames, result, info = render_frames(video, x16, ANALYSIS_RATE, options, progress=progress)
    write_video(output, frames, info.frame_rate, x, sr, crf=options.crf)
    result.output = str(output)
    return result


# --------------------------------------------------------------------------------------------------- checks


def _gradient(frame: np.ndarray) -> np.ndarray:
    import cv2

    grey = frame.astype(np.float32).mean(axis=2)
    return np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))


def seam_sums(frame: np.ndarray, alpha: np.ndarray) -> tuple[float, int, float, int]:
    """Gradient magnitude summed on the mask border (the band 2 px either side of the mask's edge, ``alpha > 0``)
    and inside (``alpha >= 0.98``): ``(border_sum, border_pixels, inside_sum, inside_pixels)``.
    Their mean ratio (border over inside) near or below 1 means no visible seam."""
    import cv2

    mask = (alpha > 0).astype(np.uint8)
    kernel = np.ones((5, 5), np.uint8)
    border = (cv2.dilate(mask, kernel) - cv2.erode(mask, kernel)) > 0
    inside = alpha >= 0.98
    g = _gradient(frame)
    return float(g[border].sum()), int(border.sum()), float(g[inside].sum()), int(inside.sum())


def mouth_jitter(frames: list[np.ndarray], alphas: list[np.ndarray | None], still: np.ndarray) -> float:
    """Mean absolute change (0-255) between consecutive frames inside the mouth mask, over frame pairs
    that are both ``still`` (e.g. silent in the new audio) and both masked."""
    diffs = []
    for t in range(1, len(frames)):
        if still[t] and still[t - 1] and alphas[t] is not None and alphas[t - 1] is not None:
            m = (alphas[t] > 0) & (alphas[t - 1] > 0)
            if m.any():
                d = np.abs(frames[t].astype(np.int16) - frames[t - 1].astype(np.int16))[m]
                diffs.append(float(d.mean()))
    return float(np.mean(diffs)) if diffs else float("nan")


# --------------------------------------------------------------------------------------------------- test material


def synthesize_talking_face(
    image: np.ndarray,
    audio: np.ndarray,
    sample_rate: int,
    fps: float = 25.0,
    size: int = 256,
    max_open: float = 0.22,
    motion: float = 2.0,
) -> list[np.ndarray]:
    """Frames of a talking face made from one photo: the jaw drops and the lips part with the speech loudness.

    ``image``: RGB photo of a roughly frontal face (e.g. ``skimage.data.astronaut()``); it is cropped around the
    face found by the dlib detector and resized to ``size`` x ``size``. The mouth opening follows the RMS of
    ``audio`` (60 ms windows; a different measure from ``speech_envelope``), ``max_open`` times the mouth width at
    full voice. ``motion`` adds a slow head drift of that many pixels. Returns ``(size, size, 3)`` uint8 frames
    covering the audio.
    """
    import cv2

    from .face import DlibLandmarker

    det = DlibLandmarker(upsample=1)
    faces = det(image)
    if not faces:
        raise NoFaceError("no face in the image", fix="use a frontal face photo")
    p = faces[0]
    cx, cy = p[:, 0].mean(), p[:, 1].mean()
    side = 1.9 * max(np.ptp(p[:, 0]), np.ptp(p[:, 1]))
    x0, y0 = int(cx - side / 2), int(cy - side / 2)
    crop = image[max(0, y0):y0 + int(side), max(0, x0):x0 + int(side)]
    s = size / crop.shape[0]
    base = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    q = (p - (max(0, x0), max(0, y0))) * s
    lip_y = (q[62, 1] + q[66, 1]) / 2
    mx = (q[48, 0] + q[54, 0]) / 2
    half = (q[54, 0] - q[48, 0]) / 2
    chin = q[8, 1]
    n = int(len(audio) / sample_rate * fps)
    hop = sample_rate / fps
    win = int(0.06 * sample_rate)
    rms = np.array([np.sqrt(np.mean(audio[max(0, int(i * hop) - win // 2):int(i * hop) + win // 2] ** 2) + 1e-12)
                    for i in range(n)])
    level = np.clip((20 * np.log10(rms / rms.max() + 1e-9) + 40) / 40, 0, 1)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    wx = np.clip(1 - ((xx - mx) / (1.25 * half)) ** 2, 0, 1) ** 1.5
    below = np.clip((yy - lip_y) / 4.0, 0, 1) * np.clip(1 - (yy - chin) / (0.6 * (chin - lip_y)), 0, 1)
    frames = []
    for i in range(n):
        h = max_open * 2 * half * level[i]
        dy = h * wx * below
        src_y = (yy - dy).astype(np.float32)
        img = cv2.remap(base, xx, src_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        gap = np.clip((lip_y + h * wx - yy) / 1.5, 0, 1) * (yy > lip_y) * (wx > 0.05)
        inside = np.array([70, 25, 30], dtype=np.float32)
        img = (img * (1 - gap[..., None]) + inside * gap[..., None]).astype(np.uint8)
        if motion:
            shift = np.float32([[1, 0, motion * math.sin(i / fps * 1.3)], [0, 1, motion * math.cos(i / fps * 0.9)]])
            img = cv2.warpAffine(img, shift, (size, size), borderMode=cv2.BORDER_REFLECT)
        frames.append(img)
    return frames

