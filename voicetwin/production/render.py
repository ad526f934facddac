"""The render service: the one way a generated voice leaves voicetwin.

Every output that carries a generated voice (the CLI's speak, sing and convert, the Python API's top-level verbs,
the demo, every dubbed line) is made here, always in this order:

1. consent: the voice's record (or, for a trained model used without a voice, the model's own record) must be
   valid and cover the use (speech or singing) and the production; checked before anything is rendered;
2. render: the stage verbs ``Voice.convert``, ``synth.speak.speak`` and ``synth.sing.sing``. They return
   *unmarked* audio and say so; nothing else hands their output to a user;
3. mark: the watermark (voice id + render id) is embedded; audio too short to carry it is refused
   (``OutputError``), never passed on unmarked;
4. write (``render_file``): the output's folder is checked before any work, the file is written atomically, the
   mark is read back from the saved file, and the provenance sidecar ``OUT.provenance.json`` records the inputs,
   models, consent and options.

    from voicetwin import RenderRequest, render_file
    result = render_file(RenderRequest("text", "Good evening.", voice="voices/nikolai"), "line.wav")
    result.provenance, result.report["seconds"]
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import LINE_LOUDNESS, loudness_lufs
from ..errors import ConfigError, OutputError

KINDS = ("recording", "text", "score")  # a performer's take, a line to say, a song to sing
MARK_PERIOD_SECONDS = 1.024  # one period of the watermark's tiles (WatermarkConfig: 64 tiles x 16 ms)
MIN_SECONDS = MARK_PERIOD_SECONDS  # shorter audio cannot carry a detectable mark: refused
MIN_SAMPLE_RATE = 16_000  # the mark's band reaches 7 kHz


@dataclass(frozen=True)
class RenderRequest:
    """What to render.

    Args:
        kind: "recording" (convert a performer's take), "text" (say a line) or "score" (sing a MIDI/MusicXML song).
        source: recording: a file path or ``(audio, sample_rate)``; text: the words; score: a ``Score`` or a path.
        voice: a loaded ``Voice`` or a voice directory; None: the base synthesiser alone (text and score only).
        options: ``ConvertOptions`` (recording), ``SpeakOptions`` (text) or ``SingOptions`` (score); None: defaults.
        production: the production the output is for, checked against the consent record.
        lyrics: a score's words, when the score file has none.
        sample_rate: the output's rate in Hz (16000 or more; None: the rate the render comes at, the voice's).
        loudness: the output's integrated loudness in LUFS (``LINE_LOUDNESS``, -23), its true peak kept under
            ``LINE_PEAK`` (-1 dBTP) by the dub mixer's look-ahead limiter; None leaves the render's own level.
    """

    kind: str
    source: Any
    voice: Any = None
    options: Any = None
    production: str | None = None
    lyrics: str | None = None
    voice_id: str | None = None  # the id the mark carries (default: the voice directory's name, or "base")
    sample_rate: int | None = None
    loudness: float | None = LINE_LOUDNESS

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"unknown render kind {self.kind!r}; choose one of {', '.join(KINDS)}")
        if self.kind == "recording" and self.voice is None:
            raise ConfigError("converting a recording needs a voice", fix="pass voice=VOICE_DIR")
        expected = {"recording": "ConvertOptions", "text": "SpeakOptions", "score": "SingOptions"}[self.kind]
        if self.options is not None and type(self.options).__name__ != expected:
            raise ConfigError(f"a {self.kind} render takes {expected}, not {type(self.options).__name__}")
        if self.sample_rate is not None and not MIN_SAMPLE_RATE <= self.sample_rate <= 192_000:
            raise ConfigError(f"the output sample rate (--sample-rate) must be {MIN_SAMPLE_RATE}-192000 Hz, got "
                              f"{self.sample_rate}", fix="the watermark needs 16000 Hz or more")
        if self.loudness is not None and not -70.0 <= self.loudness <= 0.0:
            raise ConfigError(f"loudness must be between -70 and 0 LUFS, got {self.loudness}")

    @property
    def use(self) -> str:
        """The consent scope the render needs: "speech" or "singing"."""
        if self.kind == "score":
            return "singing"
        if self.kind == "recording":
            return getattr(self.options, "mode", "speech") or "speech"
        return "speech"


@dataclass(frozen=True)
class Generated:
    """A render before it is marked (``generate``): for callers that still shape the audio (dubbing fits and
    levels a line) and then call ``mark``. Never written or returned to a user as it is."""

    audio: np.ndarray  # float32 (samples,)
    sample_rate: int
    voice_id: str
    consent: Any  # the ConsentRecord that covered the render, or None (a synthetic base voice)
    models: dict
    inputs: list
    report: dict


@dataclass(frozen=True)
class RenderResult:
    """A marked render. ``audio`` float32 (samples,) at ``sample_rate`` Hz carries the watermark ``payload``."""

    audio: np.ndarray
    sample_rate: int
    voice_id: str
    render_id: str
    payload: dict
    report: dict = field(default_factory=dict)
    path: Path | None = None  # render_file: the written file
    provenance: Path | None = None  # render_file: its sidecar
    verified: bool | None = None  # render_file: the mark was read back from the saved file


# --------------------------------------------------------------------------------------------------- stages


def _voice(voice: Any):
    if isinstance(voice, (str, Path)):
        from ..voice.model import Voice

        return Voice.load(voice)
    return voice


def _voice_id(voice: Any) -> str:
    path = getattr(voice, "path", None)
    return Path(path).name if path is not None else "base"


def _options_dict(options: Any) -> dict:
    if options is None:
        return {}
    return {f.name: getattr(options, f.name) for f in fields(options)}


def check(request: RenderRequest):
    """Consent for ``request``: the voice's record (or a trained base model's) must cover its use and production.
    Returns the record (None for a synthetic base voice, which needs none); raises ``ConsentError``."""
    from ..consent import load_consent, voice_consent
    from ..synth.speak import base_synthesizer, cast

    if request.voice is not None:
        return voice_consent(_voice(request.voice), request.use, request.production)
    words = request.source if request.kind == "text" and isinstance(request.source, str) else ""
    who = cast(None, request.use, words, getattr(request.options, "language", None),
               getattr(request.options, "base", None), request.production)  # a base in a real voice: its consent
    if who.base is None:
        return None
    path = getattr(getattr(base_synthesizer(who.base, who.language), "model", None), "path", None)
    return None if path is None else load_consent(path)


def generate(request: RenderRequest) -> Generated:
    """Check consent, then render ``request`` with the stage verbs. The audio is NOT marked: pass it to ``mark``
    (or use ``render`` / ``render_file``, which do)."""
    started = time.perf_counter()
    voice = _voice(request.voice) if request.voice is not None else None
    request = replace(request, voice=voice)
    record = check(request)
    report: dict = {"kind": request.kind, "use": request.use, "production": request.production}
    inputs: list = []
    models: dict = {}
    if voice is not None:
        models["voice"] = str(voice.path)
    if request.kind == "recording":
        from ..audio.io import load_audio
        from ..voice.model import ConvertOptions

        options = request.options or ConvertOptions()
        if isinstance(request.source, tuple):
            audio, sr = request.source
            inputs.append(("recording", np.asarray(audio, np.float32)))
        else:
            audio, sr = load_audio(request.source)
            inputs.append(str(request.source))
        out, out_sr = voice.convert(audio, sr, options, production=request.production)
        report["options"] = _options_dict(options)
    elif request.kind == "text":
        from ..synth.speak import SpeakOptions, speak, speech_base

        options = replace(request.options or SpeakOptions(), production=request.production)
        out, out_sr = speak(voice, request.source, options)
        inputs.append({"text": request.source})
        report["text"] = request.source
        report["options"] = _options_dict(options)
        models["base"] = speech_base(voice, request.source, options)  # the voice's own speech model, when it has one
    else:
        from ..synth.sing import SingOptions, read_score, sing

        options = replace(request.options or SingOptions(), production=request.production)
        score = request.source
        if isinstance(score, (str, Path)):
            inputs.append(str(score))
            score = read_score(score, lyrics=request.lyrics, language=options.language)
        sung: dict = {}
        out, out_sr = sing(voice, score, options, lyrics=request.lyrics if not inputs else None, info=sung)
        report["options"] = _options_dict(options)
        report.update(sung)  # transpose_semitones: the shift sung, the one "auto" chose
        if options.base:
            models["base"] = options.base
    seconds = getattr(options, "duration", None) if request.kind == "text" else None
    out, out_sr = _deliver(np.asarray(out, np.float32), int(out_sr), request.sample_rate, request.loudness, seconds)
    report["loudness_target_lufs"] = request.loudness
    report["seconds"] = round(len(out) / out_sr, 3)
    report["sample_rate"] = int(out_sr)
    report["render_seconds"] = round(time.perf_counter() - started, 3)
    return Generated(out, int(out_sr), request.voice_id or _voice_id(voice), record, models, inputs, report)


def _deliver(audio: np.ndarray, sample_rate: int, out_rate: int | None, loudness: float | None,
             seconds: float | None) -> tuple[np.ndarray, int]:
    """The render at the output's rate and level; a line asked for ``seconds`` stays exact to the sample."""
    from ..audio.io import LINE_PEAK, level_line, resample
    from .mixdown import TRUE_PEAK_MARGIN, limiter_gain

    if out_rate and out_rate != sample_rate:
        audio, sample_rate = resample(audio, sample_rate, out_rate).astype(np.float32), out_rate
    if loudness is not None:
        for _ in range(8):  # each further pass makes up the loudness the limiter took (one is usually enough)
            audio = level_line(audio, sample_rate, loudness)
            audio = (audio * limiter_gain(audio[None, :], sample_rate, LINE_PEAK - TRUE_PEAK_MARGIN)).astype(np.float32)
            if not loudness_lufs(audio, sample_rate) < loudness - 0.05:
                break
    if seconds is not None:
        from ..synth.speak import fit_length

        audio = fit_length(audio, round(seconds * sample_rate), sample_rate)
    return audio, sample_rate


def mark(audio: np.ndarray, sample_rate: int, voice_id: str, render_id: str | None = None, key: str | None = None,
         what: str = "the output", min_seconds: float = MIN_SECONDS) -> tuple[np.ndarray, int, dict]:
    """Embed the watermark. Returns ``(marked, sample_rate, payload)``; audio below 16 kHz is resampled to 16 kHz
    first (the mark's band reaches 7 kHz). Audio shorter than ``min_seconds`` (``MIN_SECONDS``: shorter audio cannot
    carry a mark that a detector finds again) is refused with ``OutputError`` rather than passed on unmarked."""
    from ..audio.io import resample
    from .provenance import new_render_id
    from .watermark import DEFAULT_KEY, embed, payload_for

    audio = np.asarray(audio, np.float32)
    seconds = audio.shape[-1] / sample_rate
    if seconds < min_seconds:
        raise OutputError(f"{what} lasts {seconds:.2f} s, shorter than the {min_seconds:.2f} s the watermark needs, "
                          "so it is not written", fix="render a longer line (or join short lines into one take)")
    if sample_rate < MIN_SAMPLE_RATE:
        audio, sample_rate = resample(audio, sample_rate, MIN_SAMPLE_RATE), MIN_SAMPLE_RATE
    key = key or DEFAULT_KEY
    render_id = render_id or new_render_id()
    payload = payload_for(voice_id, render_id)
    marked = embed(audio, sample_rate, payload, key=key)
    peak = float(np.max(np.abs(marked))) if marked.size else 0.0
    if peak > 1.0:  # never let the file format clip the mark away
        marked = marked / peak
    info = {**payload.to_dict(), "voice_id": voice_id, "render_id": render_id,
            "key": "default" if key == DEFAULT_KEY else "custom"}
    return marked.astype(np.float32), int(sample_rate), info


def mark_windows(audio: np.ndarray, sample_rate: int, windows: list[tuple[int, int, dict]],
                 key: str | None = None) -> np.ndarray:
    """Mark each window of a delivered track (``(samples,)`` or ``(channels, samples)``) with its own payload:
    ``windows`` holds ``(start, end, {"voice_id", "render_id"})`` in samples, one per generated line. Each mark is
    computed from its window's audio alone, so a track whose other windows changed keeps this window's samples;
    overlapping windows are cut where the previous one ends. A window under ``MIN_SECONDS`` carries a mark that a
    detector cannot find in it alone (the track's other windows still can)."""
    from .watermark import DEFAULT_KEY, embed, payload_for

    out = np.array(audio, dtype=np.float32, copy=True)
    n = out.shape[-1]
    last = 0
    for start, end, info in sorted(windows, key=lambda w: w[0]):
        start, end = max(int(start), last, 0), min(int(end), n)
        if end - start < sample_rate // 10:
            continue
        segment = out[..., start:end]
        payload = payload_for(info["voice_id"], info["render_id"])
        out[..., start:end] = embed(segment, sample_rate, payload, key=key or DEFAULT_KEY)
        last = end
    return out


def render(request: RenderRequest, key: str | None = None, render_id: str | None = None) -> RenderResult:
    """Consent, render, mark: the audio of ``request`` in memory, watermarked. Raises ``ConsentError`` before any
    work when the record does not cover the use, ``OutputError`` when the result is too short to carry the mark."""
    gen = generate(request)
    marked, sr, payload = mark(gen.audio, gen.sample_rate, gen.voice_id, render_id, key)
    return RenderResult(marked, sr, gen.voice_id, payload["render_id"], payload, report=gen.report)


def render_file(request: RenderRequest, out: str | Path, key: str | None = None, extra: Mapping | None = None,
                render_id: str | None = None) -> RenderResult:
    """``render`` and write the file: ``out`` is checked before any work, written atomically (format from the
    extension), the mark is read back from the saved file, and ``OUT.provenance.json`` is written beside it."""
    from ..files import check_output_path

    out = check_output_path(out)
    gen = generate(request)
    written = finalize_output(gen.audio, gen.sample_rate, out, voice_id=gen.voice_id, render_id=render_id,
                           inputs=gen.inputs, model_ids=gen.models, consent=gen.consent,
                           extra={**gen.report, **dict(extra or {})}, key=key)
    return RenderResult(written.audio, written.sample_rate, gen.voice_id, written.render_id, written.payload,
                        report={**gen.report, "output": str(written.path), "provenance": str(written.provenance),
                                "watermark_verified": written.verified},
                        path=written.path, provenance=written.provenance, verified=written.verified)


@dataclass(frozen=True)
class FinalizedOutput:
    """What ``finalize_output`` wrote."""

    path: Path
    provenance: Path
    render_id: str
    payload: dict  # the watermark payload ({"voice", "render", "hex", ...})
    verified: bool | None  # the mark was found again in the saved file (None: too short to check)
    audio: np.ndarray  # the marked audio as written
    sample_rate: int


def finalize_output(audio: np.ndarray, sample_rate: int, path: str | Path, voice_id: str, render_id: str | None = None,
                 inputs: Iterable = (), model_ids: Iterable[str] | Mapping[str, str] = (), consent=None,
                 extra: Mapping | None = None, key: str | None = None, verify: bool = True) -> FinalizedOutput:
    """Mark ``audio`` (float ``(samples,)`` in [-1, 1] at ``sample_rate`` Hz), save it to ``path`` atomically and
    write its provenance sidecar. For audio rendered by ``generate`` and then shaped further (a dubbed line, a
    lip-synced clip's track); ``render_file`` calls it too.

    Args:
        voice_id: the voice's id (hashed into the mark's 16-bit voice field).
        render_id: this render's id (default: a fresh one), hashed into the mark's 24-bit render field.
        inputs, model_ids, consent, extra: recorded in the sidecar (see ``provenance.write_provenance``).
        key: watermark key (default: voicetwin's public key).
        verify: decode the saved file again and record whether the mark was found.
    """
    from ..audio.io import load_audio, save_audio
    from ..files import check_output_path
    from .provenance import write_provenance
    from .watermark import DEFAULT_KEY, detect

    path = check_output_path(path)
    marked, sample_rate, info = mark(audio, sample_rate, voice_id, render_id, key, what=Path(path).name)
    try:
        path = save_audio(path, marked, sample_rate)
    except OSError as exc:
        raise OutputError(f"cannot write the output ({exc.strerror or exc})", path=path,
                          fix="choose a folder you can write to") from exc
    verified = None
    if verify and marked.shape[-1] >= 1.5 * sample_rate:
        saved, sr = load_audio(path)
        found = detect(saved, sr, key=key or DEFAULT_KEY)
        verified = bool(found.detected and found.payload.hex == info["hex"]) if found.payload is not None else False
    record = dict(extra or {})
    record["watermark"] = {**info, "verified": verified}
    provenance = write_provenance(path, inputs=inputs, model_ids=model_ids, voice_id=voice_id, consent_ref=consent,
                                  render_id=info["render_id"], extra=record)
    return FinalizedOutput(Path(path), provenance, info["render_id"], info, verified, marked, sample_rate)


def convert_files(voice: Any, inputs: list[str | Path], out: str | Path, options: Any = None,
                  progress: bool = False, overwrite: bool = False, audio_format: str = "wav",
                  production: str | None = None, single: bool | None = None,
                  sample_rate: int | None = None) -> list[dict]:
    """Convert many recordings into ``voice``, each through ``render_file``. ``out`` is a folder
    (``<stem>.<audio_format>`` per input) or, for one input, a file name with an audio extension (``single``: None
    guesses from the extension). Existing outputs are kept (the batch resumes) unless ``overwrite``. The voice's
    consent is checked once before any work. Outputs are at ``sample_rate`` (None: the voice's) and
    ``LINE_LOUDNESS``."""
    from ..errors import InputNotFoundError
    from ..files import check_output_path, expand_media
    from ..voice.model import ConvertOptions
    from ..consent import voice_consent

    options = options or ConvertOptions()
    voice = _voice(voice)
    voice_consent(voice, options.mode, production)  # refuse before any work
    paths = expand_media(inputs)
    if not paths:
        raise InputNotFoundError("no audio or video files among the inputs", path=", ".join(map(str, inputs)))
    out = Path(out)
    if single is None:
        single = len(paths) == 1 and out.suffix.lower() in (".wav", ".flac", ".ogg", ".mp3", ".m4a")
    check_output_path(out if single else out / f"_.{audio_format}")
    results = []
    for path in _bar(paths, progress, "converting"):
        target = out if single else out / f"{Path(path).stem}.{audio_format}"
        if target.exists() and not overwrite:
            results.append({"input": str(path), "output": str(target), "skipped": True})
            continue
        started = time.time()
        done = render_file(RenderRequest("recording", path, voice, options, production, sample_rate=sample_rate),
                           target, extra={"command": "convert"})
        seconds = len(done.audio) / done.sample_rate
        results.append({"input": str(path), "output": str(target), "seconds": round(seconds, 3),
                        "sample_rate": done.sample_rate,
                        "loudness_lufs": round(loudness_lufs(done.audio, done.sample_rate), 2),
                        "real_time_factor": round(seconds / max(time.time() - started, 1e-6), 2),
                        "provenance": str(done.provenance), "watermark_verified": done.verified})
    return results


def _bar(items, progress: bool, desc: str):
    if not progress:
        return items
    from ..console import progress_bar

    return progress_bar(items, desc=desc, unit="file", leave=False)


__all__ = ["KINDS", "MIN_SECONDS", "Generated", "RenderRequest", "RenderResult", "FinalizedOutput", "check", "convert_files", "generate",
           "mark", "mark_windows", "render", "render_file", "finalize_output"]
