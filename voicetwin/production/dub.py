"""Batch dubbing of film scenes: render every line, fit it to its slot, mix over the M&E, deliver.

For each line of a scene (``voicetwin.production.scene``) a renderer of its source kind makes the audio (``RENDERERS``: a
performer ``recording`` converted into the voice, ``text`` spoken, a ``score`` sung). The line is then fitted to its
slot: synthesised lines are re-synthesised at the slot's length; otherwise the speech is time-stretched (Rubber
Band's R3 engine, or the built-in WSOLA) up to ``max_stretch``, borrowing from the gap before the next line when the
slot is too short. Speech is never cut: a line that cannot fit even so is placed at the cap, overruns, and is
reported. Each line's speech onset is placed on its slot's start (``voicetwin.production.fit``). A line with ``lipsync: align``
(acted on camera) is then moved, never the picture, to meet the visible mouth: the mouth is landmarked in the frames
of the line's window (plus ``lipsync_max_shift`` either side), the offset of the placed line against it is measured
with ``voicetwin.video.lipsync.score_tracks`` and the line is moved by it, at most ``lipsync_max_shift`` seconds; the
offsets before and after go into the report.

Lines are cached by a hash of their inputs (source file contents, voice files, text, options, slot, settings), so a
re-run with ``resume=True`` renders only lines that are missing or changed. The mix is a pure function of the cached
lines and the stems (``voicetwin.production.mixdown``): dialogue over the M&E with optional side-chain ducking, one gain to the
loudness target (EBU R128, ITU-R BS.1770 as ``voicetwin.audio.io.loudness_lufs`` measures it) and an oversampled true-peak limiter. Every time-varying step (ducking ramps,
limiter hold and smoothing) has finite support, so a changed line changes the mix only inside its window plus
``edit_margin`` seconds; the mix gain is kept from the previous run (``cache/mix.json``) while the result stays
within ``GAIN_LOCK_LU`` of the target. Lines render in worker processes (``run_local``) or as Ray tasks
(``run_ray``); text and sung lines get a fresh process each, so that a line's audio depends on its inputs alone.

    from voicetwin.production.dub import DubOptions, dub
    report = dub("scene.yaml", "out/scene1", DubOptions(workers=2, resume=True))

Deliverables in the output folder: ``dialogue.wav``, ``music_effects.wav``, ``mix.wav`` (48 kHz, 24-bit; dialogue +
M&E = mix), ``mix.mp4`` (the scene's picture, copied, with the mix in AAC), ``subtitles.srt``, ``subtitles.ass``,
``report.json`` (deterministic: a row per line) and ``run.json`` (this run's timings and cache hits).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .. import __version__
from ..errors import ConfigError, InputError, VoiceTwinError, require
from ..files import atomic_path, sha256_file, write_json, write_text
from .fit import MARGIN, Rendered, fade, fit_to_slot
from .mixdown import edit_margin, mix_scene
from .scene import Cue, Line, OutputSettings, Scene, format_ass, format_srt, load_scene

CACHE_VERSION = 3


class DubError(VoiceTwinError):
    """A dub could not be completed (some lines failed); the message lists them."""


@dataclass(frozen=True)
class DubOptions:
    """How a dub runs. ``executor``: ``local`` (worker processes on this machine) or ``ray`` (a Ray cluster: the
    one at ``ray_address``, or a local instance with ``workers`` CPUs). ``only``: line ids to render afresh (the
    others come from the cache; the mix is rebuilt when every line is available). ``resume``: reuse cached lines."""

    workers: int = 1
    executor: str = "local"
    resume: bool = False
    only: tuple[str, ...] = ()
    ray_address: str | None = None
    mux_video: bool = True
    max_shift: float | None = None  # seconds; overrides the scenes' ``lipsync_max_shift``

    def __post_init__(self):
        if self.max_shift is not None and not 0.0 <= self.max_shift <= 2.0:
            raise ConfigError(f"max_shift must be between 0 and 2 s, got {self.max_shift}")
        if not 1 <= self.workers <= 256:
            raise ConfigError(f"workers must be between 1 and 256, got {self.workers}")
        if self.executor not in ("local", "ray"):
            raise ConfigError(f"unknown executor '{self.executor}'", fix="use 'local' or 'ray'")


# ------------------------------------------------------------------------------------------------ renderers


class LineRenderer(Protocol):
    """Renders one source kind. ``duration``: seconds the speech should last (edge silence excluded), or None;
    ``production``: the scene's production, which the voice's consent record must cover."""

    def __call__(self, line: Line, duration: float | None, production: str | None = None) -> Rendered: ...


@functools.lru_cache(maxsize=4)
def _voice(path: str):
    from ..voice.model import Voice

    return Voice.load(path)


def render_text(line: Line, duration: float | None, production: str | None = None) -> Rendered:
    """Speak ``line.text`` through the render service, re-synthesised to ``duration`` when given."""
    from ..synth.speak import SpeakOptions
    from .render import RenderRequest, generate

    voice = _voice(line.voice) if line.voice else None
    options = SpeakOptions(language=line.language, base=line.base, production=production, vocoder=line.vocoder)
    notes = []
    if duration is not None:
        try:
            gen = generate(RenderRequest("text", line.source.value, voice,
                                         replace(options, duration=duration + 2 * MARGIN), production))
            return Rendered(gen.audio, gen.sample_rate, fitted=True, converted=voice is not None)
        except InputError as exc:
            notes.append(f"synthesis could not reach the slot length ({exc}); rendered at its own pace")
    gen = generate(RenderRequest("text", line.source.value, voice, replace(options, rate=line.rate), production))
    return Rendered(gen.audio, gen.sample_rate, fitted=False, converted=voice is not None, notes=notes)


def render_recording(line: Line, duration: float | None, production: str | None = None) -> Rendered:
    """A performer's recording converted into the voice (speech mode); ``voice: none`` keeps it as recorded."""
    from ..audio.io import load_audio

    audio, sr = load_audio(line.source.value)
    if line.voice is None:
        return Rendered(audio, sr, notes=["recording used as it is (voice: none)"])
    from ..voice.model import ConvertOptions
    from .render import RenderRequest, generate

    transpose = None if line.transpose is None else float(line.transpose)
    gen = generate(RenderRequest("recording", (audio, sr), _voice(line.voice),
                                 ConvertOptions(mode="speech", transpose=transpose, vocoder=line.vocoder),
                                 production))
    return Rendered(gen.audio, gen.sample_rate, converted=True)


def render_score(line: Line, duration: float | None, production: str | None = None) -> Rendered:
    """Sing ``line.source`` (a MIDI or MusicXML score) through the render service; with ``duration``, the score is
    re-timed (its tempo changed) so that its notes span the slot, and sung again: no waveform stretching."""
    from ..synth.sing import SingOptions, read_score, retime
    from .render import RenderRequest, generate

    voice = _voice(line.voice) if line.voice else None
    score = read_score(line.source.value, lyrics=line.lyrics, language=line.language)
    notes = []
    fitted = False
    if duration is not None and score.notes:
        span = max(n.end for n in score.notes) - min(n.start for n in score.notes)
        tempo = score.tempo * span / duration
        if 20.0 <= tempo <= 400.0:
            score, fitted = retime(score, tempo), True
        else:
            notes.append(f"the score would need {tempo:.0f} BPM to fill the slot; sung at its own tempo")
    options = SingOptions(language=line.language, base=line.base, production=production, vocoder=line.vocoder)
    if line.transpose is not None:
        options = replace(options, transpose=float(line.transpose))
    gen = generate(RenderRequest("score", score, voice, options, production))
    return Rendered(gen.audio, gen.sample_rate, fitted=fitted, converted=voice is not None, notes=notes)


RENDERERS: dict[str, LineRenderer] = {"recording": render_recording, "text": render_text, "score": render_score}


# ------------------------------------------------------------------------------------------------ one line


@dataclass(frozen=True)
class LineTask:
    """Everything a worker needs to render one line (picklable). ``room``: seconds from the slot start the line may
    use (its slot plus the borrowable gap). ``video``: the scene's picture (used by ``lipsync: align`` lines)."""

    scene: str
    line: Line
    room: float
    settings: OutputSettings
    key: str
    video: str | None = None
    production: str | None = None  # the scene's, checked against each voice's consent record


@dataclass
class LineResult:
    scene: str
    line_id: str
    key: str
    ok: bool
    audio: np.ndarray | None = None
    info: dict = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    cached: bool = False


@functools.lru_cache(maxsize=8)
def _reference_embedding(folder: str) -> np.ndarray:
    from ..audio.io import load_audio
    from ..files import expand_media
    from ..speaker.encoder import SpeakerEncoder

    clips = [load_audio(p, sample_rate=16_000)[0] for p in expand_media([folder])[:20]]
    return SpeakerEncoder.load("ge2e").enroll(clips, 16_000)


def _similarity(audio: np.ndarray, sample_rate: int, reference: str) -> float:
    from ..speaker.encoder import SpeakerEncoder

    encoder = SpeakerEncoder.load("ge2e")
    return float(encoder.similarity(encoder.embed(audio, sample_rate), _reference_embedding(reference)))


def render_line(task: LineTask, events: Any = None) -> LineResult:
    """Render, fit, level and watermark one line. Never raises for a line's own failure: the result says why."""
    t0 = time.perf_counter()
    line, settings = task.line, task.settings

    def stage(name: str, done: int) -> None:
        if events is not None:
            events.put({"event": "stage", "scene": task.scene, "line": line.id, "stage": name, "done": done})

    try:
        stage("render", 0)
        kind_duration = line.slot if line.source.kind in ("text", "score") and line.rate == 1.0 else None
        rendered = RENDERERS[line.source.kind](line, kind_duration, production=task.production)
        stage("fit", 1)
        audio, fit = fit_to_slot(rendered, line, task.room, settings)
        stage("level", 2)
        from ..audio.io import loudness_lufs

        m = int(MARGIN * settings.sample_rate)
        speech = audio[m: len(audio) - m]
        level = loudness_lufs(speech, settings.sample_rate)
        gain_db = (settings.dialogue_loudness - level if np.isfinite(level) else 0.0) + line.gain
        audio = (audio * 10 ** (gain_db / 20)).astype(np.float32)
        marked = None
        if settings.watermark and (rendered.converted or line.source.kind != "recording"):
            stage("watermark", 3)
            from .watermark import payload_for

            # a rendered line is an intermediate (cached, never delivered alone): the render service marks it in
            # every delivered track, in its own window, when the scene is written (render.mark_windows)
            voice_id = Path(line.voice).name if line.voice else "base"
            marked = {"voice_id": voice_id, "render_id": task.key[:12],
                      **payload_for(voice_id, task.key[:12]).to_dict()}
        peak = float(np.max(np.abs(audio)))
        if peak > 1.0:  # a loud line in a quiet mix: keep it below full scale, the mix gain restores the balance
            audio = audio / peak
            gain_db -= 20 * math.log10(peak)
        audio = fade(audio, int(settings.fade * settings.sample_rate))
        warnings = list(fit.warnings)
        aligned = None
        if line.lipsync == "align":
            stage("lipsync", 4)
            if task.video is None:
                warnings.append("lip-sync 'align' not applied: the scene has no video; placed on its slot")
            else:
                aligned = align_to_mouth(task.video, audio, settings.sample_rate, line.start, fit.lead,
                                         settings.lipsync_max_shift)
                warnings += aligned.pop("warnings")
        similarity = _similarity(audio, settings.sample_rate, line.reference) if line.reference else None
        info = {
            "lead_samples": fit.lead,
            "speech_in": round(fit.speech_in, 4),
            "speech_out": round(fit.speech_out, 4),
            "stretch_ratio": round(fit.ratio, 4),
            "resynthesised": rendered.fitted,
            "converted": rendered.converted,
            "borrowed": round(fit.borrowed, 4),
            "overrun": round(fit.overrun, 4),
            "fits": fit.overrun <= 0,
            "line_gain_db": round(gain_db, 2),
            "similarity": None if similarity is None else round(similarity, 4),
            "watermark": marked,
            "lipsync_shift_samples": aligned["shift_samples"] if aligned else 0,
            "lipsync_align": aligned,
            "warnings": warnings,
        }
        stage("done", len(ProgressBars.STAGES) - 1)
        return LineResult(task.scene, line.id, task.key, True, audio, info, seconds=time.perf_counter() - t0)
    except VoiceTwinError as exc:
        message = str(exc)
    except Exception as exc:  # a library failed on this line: report it for this line, keep the others going
        tb = traceback.extract_tb(exc.__traceback__)[-1]
        message = f"{type(exc).__name__}: {exc} (at {Path(tb.filename).name}:{tb.lineno})"
    return LineResult(task.scene, line.id, task.key, False, error=message, seconds=time.perf_counter() - t0)


# ------------------------------------------------------------------------------------------------ lip-sync align


ALIGN_MIN_CONFIDENCE = 0.03  # below this (lipsync's distance scale, 0-2) the measured offset is not trusted


def _window_clip(video: str, first: int, last: int, folder: Path) -> Path:
    """Frames ``first .. last - 1`` of ``video`` as a small H.264 clip in ``folder`` (the mouth tracker reads files)."""
    from ..video.io import iter_frames, probe, write_video

    def frames():
        for t, frame in enumerate(iter_frames(video)):
            if t >= last:
                break
            if t >= first:
                yield frame

    return write_video(folder / "window.mp4", frames(), probe(video).frame_rate)


def align_to_mouth(video: str, audio: np.ndarray, sample_rate: int, start: float, lead: int,
                   max_shift: float) -> dict:
    """How far to move a placed line so that it meets the mouth on screen (``lipsync: align``).

    ``audio``: the fitted line ``(samples,)`` at ``sample_rate``, placed so that sample ``lead`` (its speech onset)
    falls on ``start`` seconds of the scene. The mouth is landmarked in the frames from ``max_shift`` (plus a
    sync window) before the line to as long after it, and the offset of the placed line against the mouth is
    measured (``voicetwin.video.lipsync.score_tracks``, searched over ``max_shift`` + 0.2 s either way). The line is moved
    by that offset, capped at ``max_shift`` seconds and at the scene's start, when the measure is confident.
    Returns ``{"shift_samples", "shift_ms", "offset_before_ms", "offset_after_ms", "confidence_before",
    "confidence_after", "max_shift_ms", "frames": [first, last], "warnings"}`` (``shift`` > 0: moved earlier;
    ``offset`` > 0: the audio lags the picture). Never raises for footage without a usable face: it warns.
    """
    import tempfile

    from ..audio.io import resample

    from ..video import lipsync
    from ..video.io import probe

    info = probe(video)
    fps = info.fps
    offset = int(round(start * sample_rate)) - lead  # where the line sits before any shift
    search = max_shift + 0.2
    margin = search + 4 / fps
    first = max(0, int(math.floor((offset / sample_rate - margin) * fps)))
    last = min(info.frames, int(math.ceil(((offset + len(audio)) / sample_rate + margin) * fps)))
    result: dict[str, Any] = {"shift_samples": 0, "shift_ms": 0.0, "offset_before_ms": None,
                              "offset_after_ms": None, "confidence_before": None, "confidence_after": None,
                              "max_shift_ms": round(1000 * max_shift, 1), "frames": [first, last], "warnings": []}
    if last - first < 12:
        result["warnings"].append("lip-sync 'align' not applied: the line is outside the picture")
        return result
    rate = lipsync.ANALYSIS_RATE
    x = resample(np.asarray(audio, np.float32), sample_rate, rate)
    clip_start = first / fps
    sync = lipsync.SyncOptions(max_offset_frames=min(100, max(1, int(math.ceil(search * fps)))), face=0,
                               max_faces=1)

    def measure(shift: int):
        at = int(round(((offset - shift) / sample_rate - clip_start) * rate))
        placed = np.zeros(int(math.ceil((last - first) / fps * rate)), np.float32)
        lo, hi = max(at, 0), min(at + len(x), len(placed))
        if hi > lo:
            placed[lo:hi] = x[lo - at:hi - at]
        return lipsync.score_tracks(tracks, placed, rate, sync).overall

    try:
        with tempfile.TemporaryDirectory(prefix="voicetwin-align-") as tmp:
            tracks = lipsync.track_mouth(_window_clip(video, first, last, Path(tmp)), sync.landmarker, max_faces=1)
        before = measure(0)
    except lipsync.NoFaceError:
        result["warnings"].append("lip-sync 'align' not applied: no face in the line's frames; placed on its slot")
        return result
    if before.windows == 0 or not np.isfinite(before.offset_ms):
        result["warnings"].append("lip-sync 'align' not applied: the mouth does not move in the line's frames")
        return result
    result.update(offset_before_ms=round(float(before.offset_ms), 1), confidence_before=round(before.confidence, 4))
    shift_ms = 0.0
    if before.confidence < ALIGN_MIN_CONFIDENCE:
        result["warnings"].append(f"lip-sync 'align' not applied: the offset measure is not confident "
                                  f"({before.confidence:.3f} < {ALIGN_MIN_CONFIDENCE})")
    else:
        shift_ms = float(np.clip(before.offset_ms, -1000 * max_shift, 1000 * max_shift))
        shift_ms = min(shift_ms, 1000 * start)  # never move speech before the scene's start
        if abs(before.offset_ms) > 1000 * max_shift + 1e-6:
            result["warnings"].append(f"the mouth is {before.offset_ms:+.0f} ms away, beyond lipsync_max_shift "
                                      f"({1000 * max_shift:.0f} ms): moved by {shift_ms:+.0f} ms only")
    shift = int(round(shift_ms / 1000 * sample_rate))
    after = measure(shift) if shift else before
    result.update(shift_samples=shift, shift_ms=round(1000 * shift / sample_rate, 1),
                  offset_after_ms=round(float(after.offset_ms), 1), confidence_after=round(after.confidence, 4))
    return result


# ------------------------------------------------------------------------------------------------ cache


@functools.lru_cache(maxsize=4096)
def _file_hash(path: str, size: int, mtime: float) -> str:
    return sha256_file(path)


def _hash_path(path: str | None) -> str | None:
    if path is None:
        return None
    p = Path(path)
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    h = hashlib.sha256()
    for q in files:
        st = q.stat()
        h.update(f"{q.relative_to(p) if p.is_dir() else q.name}:{_file_hash(str(q), st.st_size, st.st_mtime)}".encode())
    return h.hexdigest()


# the modules whose code shapes a line: their source, with every module of the package they import (read from the
# import statements, ``voicetwin.sources``), keys the cache, so editing any module on a render path re-renders
RENDER_ENTRY = (__name__, "voicetwin.production.render", "voicetwin.production.fit")
ALIGN_ENTRY = ("voicetwin.video.lipsync",)  # also shape a ``lipsync: align`` line (its shift)


def code_fingerprint(entry: tuple[str, ...] = RENDER_ENTRY) -> str:
    """Hash of the source of every module a line's rendering can import: a changed renderer invalidates the lines
    it made."""
    from ..sources import fingerprint

    return fingerprint(*entry)


def line_key(line: Line, room: float, settings: OutputSettings, video: str | None = None) -> str:
    """Hash of everything a line's render depends on: its fields, the contents of its source file, voice and
    reference, the room it may use, and the settings that shape a line; for a ``lipsync: align`` line also the
    picture (``video``), the largest shift and the lip-sync code."""
    fields = asdict(line)
    fields.pop("yaml_line")
    fields.pop("text")  # the subtitle text; a text line's words are in its source
    payload = {
        "cache_version": CACHE_VERSION,
        "voicetwin": __version__,
        "code": code_fingerprint(),
        "line": fields,
        "source_hash": _hash_path(line.source.value) if line.source.kind != "text" else None,
        "voice_hash": _hash_path(line.voice),
        "reference_hash": _hash_path(line.reference),
        "room": round(room, 6),
        "settings": {k: v for k, v in asdict(settings).items()
                     if k not in ("loudness", "true_peak", "ducking", "lipsync_max_shift")},
    }
    if line.lipsync == "align":
        payload["align"] = {"video_hash": _hash_path(video), "max_shift": settings.lipsync_max_shift,
                            "code": code_fingerprint(ALIGN_ENTRY)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


class LineCache:
    """Rendered lines in ``folder``: ``<id>.<key16>.npy`` (float32 at the output rate) + ``.json`` info."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def _paths(self, line_id: str, key: str) -> tuple[Path, Path]:
        stem = f"{line_id}.{key[:16]}"
        return self.folder / f"{stem}.npy", self.folder / f"{stem}.json"

    def get(self, line_id: str, key: str) -> tuple[np.ndarray, dict] | None:
        audio_path, info_path = self._paths(line_id, key)
        if not (audio_path.exists() and info_path.exists()):
            return None
        try:
            info = json.loads(info_path.read_text(encoding="utf-8"))
            if info.get("key") != key:
                return None
            return np.load(audio_path, allow_pickle=False), info
        except (OSError, ValueError):
            return None  # a damaged entry is rendered again

    def put(self, line_id: str, key: str, audio: np.ndarray, info: dict) -> None:
        audio_path, info_path = self._paths(line_id, key)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(audio_path) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(audio, dtype=np.float32), allow_pickle=False)
        write_json(info_path, {**info, "key": key})  # written last: marks the entry complete
        for old in self.folder.glob(f"{line_id}.*"):
            if not old.name.startswith(f"{line_id}.{key[:16]}."):
                old.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------------ executors


_EVENTS: Any = None  # the progress queue of a local worker process


def _worker_init(events: Any = None) -> None:
    """Set up a worker: one thread for torch and BLAS (deterministic, and fair on shared machines), offline hubs."""
    global _EVENTS
    _EVENTS = events
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import sys

    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _render_in_worker(task: LineTask) -> LineResult:
    if _EVENTS is None:  # a Ray worker
        _worker_init()
    return render_line(task, _EVENTS)


# synthesisers keep state between calls (espeak-ng's output depends on what it said before), so text and sung lines
# are rendered in a fresh process each: a line's audio then depends on its inputs alone, whichever worker renders
# it. Recordings are converted in long-lived workers that keep the voice loaded (conversion is stateless).
FRESH_PROCESS_KINDS = ("text", "score")


def run_local(tasks: list[LineTask], workers: int, on_event: Callable[[dict], None] | None = None) -> Iterator[LineResult]:
    """Render ``tasks`` in at most ``workers`` local processes at a time; yields results as lines finish."""
    import multiprocessing as mp
    import queue as queue_mod
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    if not tasks:
        return
    ctx = mp.get_context("spawn")
    events = ctx.Queue() if on_event else None
    n = min(workers, len(tasks))
    common = {"mp_context": ctx, "initializer": _worker_init, "initargs": (events,)}
    with ProcessPoolExecutor(max_workers=n, **common) as warm, \
            ProcessPoolExecutor(max_workers=n, max_tasks_per_child=1, **common) as fresh:
        todo = list(tasks)
        pending: dict = {}
        while todo or pending:
            while todo and len(pending) < workers:
                task = todo.pop(0)
                pool = fresh if task.line.source.kind in FRESH_PROCESS_KINDS else warm
                pending[pool.submit(_render_in_worker, task)] = task
            done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
            while events is not None:
                try:
                    on_event(events.get_nowait())  # type: ignore[misc]
                except queue_mod.Empty:
                    break
            for fut in done:
                task = pending.pop(fut)
                try:
                    yield fut.result()
                except Exception as exc:  # the worker process itself died
                    yield LineResult(task.scene, task.line.id, task.key, False,
                                     error=f"worker failed: {type(exc).__name__}: {exc}")


def run_ray(tasks: list[LineTask], workers: int, address: str | None = None,
            on_event: Callable[[dict], None] | None = None) -> Iterator[LineResult]:
    """Render ``tasks`` as Ray tasks (one CPU each) on the cluster at ``address`` (or ``RAY_ADDRESS``), or on a local
    Ray instance with ``workers`` CPUs. Source files and voices must be readable at the same paths on every node."""
    ray = require("ray", "ray", "the Ray executor")
    if not ray.is_initialized():
        address = address or os.environ.get("RAY_ADDRESS")
        env = {"env_vars": {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}}
        if address:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, runtime_env=env)
    warm = ray.remote(num_cpus=1, max_retries=0)(_render_in_worker)
    fresh = ray.remote(num_cpus=1, max_retries=0, max_calls=1)(_render_in_worker)  # see FRESH_PROCESS_KINDS
    pending = {(fresh if t.line.source.kind in FRESH_PROCESS_KINDS else warm).remote(t): t for t in tasks}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            task = pending.pop(ref)
            try:
                yield ray.get(ref)
            except Exception as exc:
                yield LineResult(task.scene, task.line.id, task.key, False, error=f"ray task failed: {exc}")


# ------------------------------------------------------------------------------------------------ deliverables


def mux_video(video: str | Path, audio: np.ndarray, sample_rate: int, out: str | Path) -> Path:
    """``video``'s picture (H.264 copied packet by packet, other codecs re-encoded) with ``audio`` ``(channels, n)``
    as AAC, in ``out`` (MP4), atomically (``voicetwin.video.io.replace_audio``)."""
    from ..video.io import replace_audio

    return replace_audio(video, out, np.atleast_2d(audio), sample_rate)


def lipsync_render(video: str | Path, dialogue: np.ndarray, mix: np.ndarray, sample_rate: int,
                   windows: list[tuple[int, int]], out: str | Path) -> Path:
    """Re-render the mouth in ``video`` to the new ``dialogue`` (``voicetwin.video.lipsync``, Video Rewrite-style) inside
    ``windows`` (samples at ``sample_rate``; the lines that asked for it); other frames are the original picture.
    Writes ``out`` (H.264 + the ``mix`` as AAC)."""
    from ..audio.io import resample
    from ..video.io import iter_frames, probe, write_video

    from ..video import lipsync

    info = probe(video)
    x16 = resample(np.asarray(dialogue, np.float32), sample_rate, 16_000)
    frames, _, _ = lipsync.render_frames(video, x16, 16_000, lipsync.RenderOptions())
    keep = np.zeros(max(info.frames, 1) + 1, bool)
    for a, b in windows:
        keep[int(math.floor(a / sample_rate * info.fps)): int(math.ceil(b / sample_rate * info.fps)) + 1] = True

    def merged():
        for t, (new, old) in enumerate(zip(frames, iter_frames(video))):
            yield new if t < len(keep) and keep[t] else old

    return write_video(out, merged(), info.frame_rate, np.atleast_2d(mix), sample_rate)


def _save_wav(path: Path, audio: np.ndarray, sample_rate: int) -> None:
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(tmp, np.atleast_2d(audio).T, sample_rate, subtype="PCM_24", format="WAV")


def _scene_samples(scene: Scene, sample_rate: int) -> tuple[np.ndarray, float]:
    """The M&E stem ``(channels, n)`` at ``sample_rate`` (silence if none) and the scene length in seconds."""
    from ..audio.io import load_audio

    me = None
    if scene.music_effects:
        me, _ = load_audio(scene.music_effects, sample_rate=sample_rate, mono=False)
        me = np.atleast_2d(me)[:2]
    duration = scene.duration
    if duration is None:
        if me is not None:
            duration = me.shape[-1] / sample_rate
        elif scene.video:
            from ..video.io import probe

            duration = probe(scene.video).duration
        else:
            duration = max(x.end for x in scene.lines) + 1.0
    n = int(round(duration * sample_rate))
    if me is None:
        me = np.zeros((1, n), np.float32)
    elif me.shape[-1] != n:
        me = me[:, :n] if me.shape[-1] > n else np.pad(me, ((0, 0), (0, n - me.shape[-1])))
    return me, duration


def _rooms(scene: Scene, duration: float) -> dict[str, float]:
    """Seconds from each line's start that it may use: up to the next line's start (less ``min_gap``) or the end."""
    rooms = {}
    starts = sorted(x.start for x in scene.lines)
    for line in scene.lines:
        later = [s for s in starts if s > line.start]
        limit = (later[0] - scene.output.min_gap) if later else duration
        rooms[line.id] = max(line.slot, limit - line.start)
    return rooms


def _row(line: Line, info: dict | None, error: str | None, offset: int | None, lead: int, length: int,
         sr: int) -> dict:
    row: dict[str, Any] = {
        "id": line.id,
        "character": line.character,
        "source": line.source.kind,
        "voice": Path(line.voice).name if line.voice else None,
        "slot": [round(line.start, 4), round(line.end, 4)],
        "status": "ok" if info is not None else "failed",
    }
    if info is None:
        row["error"] = error
        return row
    onset = (offset + lead) / sr
    row.update({
        "onset": round(onset, 4),
        "onset_error_ms": round(1000 * (onset - line.start), 2),
        "speech_end": round(onset + info["speech_out"], 4),
        "window": [round(offset / sr, 4), round((offset + length) / sr, 4)],
        "window_samples": [offset, offset + length],
        **{k: info[k] for k in ("speech_in", "speech_out", "stretch_ratio", "resynthesised", "converted", "borrowed",
                                "overrun", "fits", "similarity", "line_gain_db", "watermark")},
        "loudness_lufs": info.get("loudness_lufs"),
        "lipsync": line.lipsync,
        "lipsync_shift_ms": round(1000 * info.get("lipsync_shift_samples", 0) / sr, 1),
        "lipsync_align": info.get("lipsync_align"),
        "warnings": list(info["warnings"]),
    })
    return row


# ------------------------------------------------------------------------------------------------ the job


@dataclass
class _SceneJob:
    scene: Scene
    out: Path
    cache: LineCache
    me: np.ndarray
    duration: float
    rooms: dict[str, float]
    keys: dict[str, str]
    results: dict[str, LineResult] = field(default_factory=dict)


def dub(scenes: str | Path | Scene | list, out: str | Path, options: DubOptions | None = None,
        on_event: Callable[[dict], None] | None = None) -> dict | list[dict]:
    """Dub one scene (file or ``Scene``) into ``out``, or several into ``out/<scene name>/``; returns the report(s).

    ``on_event(dict)`` receives progress events: ``{"event": "scene", "scene", "lines"}``, ``"stage"`` (a line's
    render stage, local executor), ``"line"`` (a line finished: ``ok``, ``cached``, ``error``), ``"mix"``.
    Raises ``DubError`` after finishing every other line when any line failed."""
    options = options or DubOptions()
    many = isinstance(scenes, list)
    items = [s if isinstance(s, Scene) else load_scene(s) for s in (scenes if many else [scenes])]
    if options.max_shift is not None:
        items = [replace(s, output=replace(s.output, lipsync_max_shift=options.max_shift)) for s in items]
    names = [s.name for s in items]
    if len(set(names)) != len(names):
        raise ConfigError("two scenes have the same name", fix="give each scene a 'name:' or distinct file names")
    emit = on_event or (lambda e: None)
    consents = {scene.name: check_consents(scene) for scene in items}
    jobs = []
    for scene in items:
        folder = Path(out) / scene.name if many else Path(out)
        unknown = [i for i in options.only if i not in {x.id for x in scene.lines}] if not many else []
        if unknown:
            raise ConfigError(f"--only names no line of the scene: {', '.join(unknown)}", path=scene.path)
        me, duration = _scene_samples(scene, scene.output.sample_rate)
        rooms = _rooms(scene, duration)
        keys = {x.id: line_key(x, rooms[x.id], scene.output, scene.video) for x in scene.lines}
        jobs.append(_SceneJob(scene, folder, LineCache(folder / "cache" / "lines"), me, duration, rooms, keys))

    t0 = time.perf_counter()
    tasks = []
    for job in jobs:
        emit({"event": "scene", "scene": job.scene.name, "lines": len(job.scene.lines)})
        for line in job.scene.lines:
            key = job.keys[line.id]
            forced = line.id in options.only
            hit = job.cache.get(line.id, key) if (options.resume or (options.only and not forced)) else None
            if hit is not None:
                job.results[line.id] = LineResult(job.scene.name, line.id, key, True, hit[0], hit[1], cached=True)
                emit({"event": "line", "scene": job.scene.name, "line": line.id, "ok": True, "cached": True})
            elif not options.only or forced:
                tasks.append(LineTask(job.scene.name, line, job.rooms[line.id], job.scene.output, key,
                                      job.scene.video, production=job.scene.production))
    by_name = {job.scene.name: job for job in jobs}
    runner = (run_ray(tasks, options.workers, options.ray_address, emit) if options.executor == "ray"
              else run_local(tasks, options.workers, emit))
    for result in runner:
        job = by_name[result.scene]
        if result.ok:
            result.info["loudness_lufs"] = _line_loudness(result.audio, job.scene.output.sample_rate)
            result.info["render_seconds"] = round(result.seconds, 3)
            job.cache.put(result.line_id, result.key, result.audio, result.info)
        job.results[result.line_id] = result
        emit({"event": "line", "scene": result.scene, "line": result.line_id, "ok": result.ok, "cached": False,
              "error": result.error})

    reports, failures = [], []
    for job in jobs:
        report = _finish(job, options, emit, time.perf_counter() - t0, consents[job.scene.name])
        reports.append(report)
        failures += [f"{job.scene.name}/{r['id']}: {r['error']}" for r in report["lines"] if r["status"] == "failed"]
    if failures:
        raise DubError(f"{len(failures)} line(s) failed (the others are cached; fix these and re-run with --resume): "
                       + "; ".join(failures))
    return reports if many else reports[0]


def _line_loudness(audio: np.ndarray, sample_rate: int) -> float | None:
    from ..audio.io import loudness_lufs

    value = loudness_lufs(audio, sample_rate)
    return round(value, 2) if np.isfinite(value) else None


def check_consents(scene: Scene) -> dict[str, dict]:
    """Check every voice of ``scene`` against its consent record (``voicetwin.consent``) for what its lines do
    (speech, singing) and the scene's ``production``; returns ``{voice dir: consent reference}``.
    Raises ``ConsentError`` before anything is rendered."""
    uses: dict[str, set[str]] = {}
    for line in scene.lines:
        if line.voice:
            uses.setdefault(line.voice, set()).add("singing" if line.source.kind == "score" else "dub")
    if not uses:
        return {}
    from .. import consent

    refs = {}
    for voice, needs in sorted(uses.items()):
        for use in sorted(needs):
            record = consent.check_consent(voice, use=use, production=scene.production)
        refs[voice] = consent.consent_reference(record)
    return refs


def _provenance(job: _SceneJob, files: dict[str, str], consents: dict[str, dict], rows: list[dict]) -> None:
    """A provenance sidecar (``voicetwin.production.provenance``) next to each audio and video deliverable."""
    from . import provenance

    scene = job.scene
    inputs = [p for p in (scene.path, scene.music_effects, scene.video) if p]
    inputs += sorted({x.source.value for x in scene.lines if x.source.kind != "text"})
    voices = sorted({Path(x.voice).name for x in scene.lines if x.voice})
    render_id = hashlib.sha256("".join(job.keys[x.id] for x in scene.lines).encode()).hexdigest()[:12]
    extra = {"scene": scene.name, "production": scene.production,
             "lines": {r["id"]: {"voice": r.get("voice"), "watermark": r.get("watermark")} for r in rows}}
    for kind in ("dialogue", "mix", "video"):
        if kind in files:
            provenance.write_provenance(job.out / files[kind], inputs=inputs, voice_id=", ".join(voices) or None,
                                        consent_ref={"voices": consents} if consents else None,
                                        render_id=render_id, model_ids=voices, extra=extra)


def _finish(job: _SceneJob, options: DubOptions, emit: Callable[[dict], None], seconds: float,
            consents: dict[str, dict]) -> dict:
    """Mix and write the deliverables of one scene (when every line is available), then report.json / run.json."""
    scene, settings, sr = job.scene, job.scene.output, job.scene.output.sample_rate
    rows, placed, windows, cues, marks = [], [], [], [], []
    missing = []
    n = job.me.shape[-1]
    for line in scene.lines:
        result = job.results.get(line.id)
        if result is None or not result.ok:
            missing.append(line.id)
            rows.append(_row(line, None, result.error if result else "not rendered (--only)", None, 0, 0, sr))
            continue
        lead = int(result.info["lead_samples"])
        offset = int(round(line.start * sr)) - lead - int(result.info.get("lipsync_shift_samples", 0))
        audio = result.audio
        if offset < 0:  # a line at the very start: drop part of its lead-in only
            audio, offset, lead = audio[-offset:], 0, lead + offset
        row = _row(line, result.info, None, offset, lead, len(audio), sr)
        if offset + len(audio) > n:
            row["warnings"].append(f"runs {(offset + len(audio) - n) / sr:.2f} s past the end of the scene; "
                                   "the mix is extended")
            n = offset + len(audio)
        rows.append(row)
        placed.append((offset, audio))
        windows.append((offset, offset + len(audio)))
        if result.info.get("watermark"):
            marks.append((offset, offset + len(audio), result.info["watermark"]))
        if line.text:
            cues.append(Cue(len(cues) + 1, row["onset"], max(row["speech_end"], row["onset"] + 0.5), line.text,
                            line.character))
    job.out.mkdir(parents=True, exist_ok=True)
    run = {"seconds": round(seconds, 2), "executor": options.executor, "workers": options.workers,
           "rendered": sorted(i for i, r in job.results.items() if not r.cached and r.ok),
           "cached": sorted(i for i, r in job.results.items() if r.cached),
           "failed": sorted(i for i, r in job.results.items() if not r.ok),
           "render_seconds": {i: r.info.get("render_seconds") for i, r in job.results.items() if r.ok}}
    report: dict[str, Any] = {"scene": scene.path, "name": scene.name, "voicetwin": __version__,
                              "duration": round(job.duration, 4), "lines": rows}
    if missing:
        report["complete"] = False
        report["missing"] = missing
        write_json(job.out / "report.json", report)
        write_json(job.out / "run.json", run)
        return report

    emit({"event": "mix", "scene": scene.name, "stage": "mix"})
    me = job.me if n == job.me.shape[-1] else np.pad(job.me, ((0, 0), (0, n - job.me.shape[-1])))
    lock_path = job.out / "cache" / "mix.json"
    me_hash = hashlib.sha256(np.ascontiguousarray(me).tobytes()).hexdigest()
    locked = None
    if options.resume and lock_path.exists():
        lock = json.loads(lock_path.read_text(encoding="utf-8"))
        if lock.get("me_hash") == me_hash and lock.get("settings") == json.loads(json.dumps(asdict(settings))):
            locked = lock["gain_db"]
    mix = mix_scene(me, placed, settings, windows, locked)
    write_json(lock_path, {"me_hash": me_hash, "settings": asdict(settings), "gain_db": mix.gain_db})
    from .render import mark_windows

    # every delivered track that carries a generated line carries its mark, embedded in that line's window only (an
    # edit elsewhere leaves the window's samples, and so its marks, unchanged): the dialogue stem is marked, then the
    # mix (the music under a line would drown the stem's mark); the difference goes to the M&E stem inside the line
    # windows, so the stems still add up to the mix
    dialogue = mark_windows(mix.dialogue, sr, marks)
    full = mark_windows(dialogue + mix.music_effects, sr, marks)
    mix = replace(mix, dialogue=dialogue, mix=full, music_effects=(full - dialogue).astype(np.float32))

    files = {"dialogue": "dialogue.wav", "music_effects": "music_effects.wav", "mix": "mix.wav",
             "subtitles_srt": "subtitles.srt", "subtitles_ass": "subtitles.ass"}
    _save_wav(job.out / files["dialogue"], mix.dialogue[:1] if mix.dialogue.shape[0] > 1 else mix.dialogue, sr)
    _save_wav(job.out / files["music_effects"], mix.music_effects, sr)
    _save_wav(job.out / files["mix"], mix.mix, sr)
    write_text(job.out / files["subtitles_srt"], format_srt(cues))
    write_text(job.out / files["subtitles_ass"], format_ass(cues, scene.name))
    notes = []
    by_id = {r["id"]: r for r in rows}
    render_rows = [by_id[x.id] for x in scene.lines if x.lipsync == "render"]
    if scene.video and options.mux_video:
        emit({"event": "mix", "scene": scene.name, "stage": "mux"})
        done = False
        if render_rows:
            try:
                lipsync_render(scene.video, mix.dialogue[0], mix.mix, sr,
                               [tuple(r["window_samples"]) for r in render_rows], job.out / "mix.mp4")
                notes.append(f"mouth re-rendered (voicetwin.video.lipsync) in the windows of {len(render_rows)} line(s); "
                             "the picture was re-encoded")
                done = True
            except VoiceTwinError as exc:
                notes.append(f"lip-sync rendering failed ({exc}); the MP4 carries the original picture")
                for row in render_rows:
                    row["warnings"].append("lip-sync not applied: picture left unchanged")
        if not done:
            mux_video(scene.video, mix.mix, sr, job.out / "mix.mp4")
        files["video"] = "mix.mp4"
    else:
        if not scene.video:
            notes.append("the scene has no video: no MP4 written")
        for row in render_rows:
            row["warnings"].append("lip-sync not applied: no MP4 written")
    ok_rows = [r for r in rows if r["status"] == "ok"]
    report["summary"] = {
        "lines": len(rows),
        "cannot_fit": [r["id"] for r in ok_rows if not r["fits"]],
        # lines moved to meet the mouth (lipsync: align) leave their slot on purpose: they are listed apart
        "max_abs_onset_error_ms": max([abs(r["onset_error_ms"]) for r in ok_rows if not r["lipsync_shift_ms"]]
                                      + [0.0]),
        "lipsync_aligned": {r["id"]: r["lipsync_shift_ms"] for r in ok_rows if r["lipsync"] == "align"},
        "within_max_stretch": sum(1 for r in ok_rows
                                  if max(r["stretch_ratio"], 1 / r["stretch_ratio"]) <= settings.max_stretch + 1e-6),
        "loudness_target": settings.loudness,
        "integrated_loudness": round(mix.loudness, 3),
        "true_peak_dbtp": round(mix.true_peak, 3),
        "true_peak_ceiling": settings.true_peak,
        "mix_gain_db": round(mix.gain_db, 9),
        "limited_seconds": round(mix.limited_seconds, 3),
        "ducking": asdict(settings.ducking) if settings.ducking else None,
        "edit_margin_s": round(edit_margin(settings), 4),
        "channels": int(mix.mix.shape[0]),
        "sample_rate": sr,
    }
    run["mix_gain_kept_from_previous_run"] = mix.gain_locked
    _provenance(job, files, consents, rows)
    report["deliverables"] = files
    report["notes"] = notes
    report["complete"] = True
    write_json(job.out / "run.json", run)
    write_json(job.out / "report.json", report)  # written last: the scene is complete
    emit({"event": "mix", "scene": scene.name, "stage": "done"})
    return report


class ProgressBars:
    """tqdm bars for ``dub``'s events: one per scene (lines finished) and one per line being rendered (its stages).
    Pass an instance as ``on_event``; call ``close()`` at the end."""

    STAGES = ("render", "fit", "level", "watermark", "lipsync", "done")

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.scenes: dict[str, Any] = {}
        self.lines: dict[tuple[str, str], Any] = {}

    def __call__(self, event: dict) -> None:
        if not self.enabled:
            return
        from ..console import on_terminal, progress_bar

        kind, scene = event["event"], event.get("scene", "")
        if kind == "scene":
            self.scenes[scene] = progress_bar(total=event["lines"], desc=f"scene {scene}", unit="line",
                                              position=len(self.scenes), leave=True)
        elif kind == "stage":
            key = (scene, event["line"])
            bar = self.lines.get(key)
            if bar is None:  # a bar per line on a terminal; in a log the scene's lines say enough
                bar = self.lines[key] = progress_bar(total=len(self.STAGES) - 1, desc=f"  line {event['line']}",
                                                     leave=False, bar_format="{desc}: {bar:20} {postfix}",
                                                     enabled=on_terminal())
            bar.n = int(event["done"])
            bar.set_postfix_str(event["stage"])
        elif kind == "line":
            bar = self.lines.pop((scene, event["line"]), None)
            if bar is not None:
                bar.close()
            if scene in self.scenes:
                self.scenes[scene].update(1)
                if not event["ok"]:
                    self.scenes[scene].write(f"line {event['line']} failed: {event.get('error')}")
        elif kind == "mix" and scene in self.scenes:
            self.scenes[scene].set_postfix_str(event["stage"])

    def close(self) -> None:
        for bar in list(self.lines.values()) + list(self.scenes.values()):
            bar.close()


def replace_line(scene: Scene, line_id: str, **changes) -> Scene:
    """A copy of ``scene`` with one line's fields changed (for previews and tests)."""
    lines = tuple(replace(x, **changes) if x.id == line_id else x for x in scene.lines)
    return replace(scene, lines=lines)
