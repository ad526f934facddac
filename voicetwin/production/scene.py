"""Scene files for batch dubbing: YAML -> frozen dataclasses, SRT/ASS import and export.

A scene names its picture, its stems and its lines. Every line has a slot (``start``/``end`` in seconds, or a
``cue`` of the scene's subtitle file) and exactly one source: a performer ``recording`` (converted into the voice),
``text`` (spoken) or a ``score`` (sung)::

    production: The Last Letter     # checked against each voice's consent record
    video: picture.mp4              # optional: the new mix is muxed into a copy of it
    music_effects: me.wav           # optional music-and-effects stem (else silence)
    original_dialogue: dialogue.wav # optional, kept for reference
    subtitles: lines.srt            # optional: cues that lines can refer to with `cue:`
    duration: 120.0                 # optional: scene length in s (default: M&E, video, or the last line)
    output:
      loudness: -23                 # integrated LUFS of the mix (EBU R128 -23; -16 or -14 for online)
      true_peak: -1.0               # dBTP ceiling
      max_stretch: 1.25             # most a line is time-stretched
      lipsync_max_shift: 0.4        # most a `lipsync: align` line is moved to meet the mouth (s)
      ducking: {depth: 6, attack: 0.08, release: 0.3}   # or `ducking: off`
    characters:
      ANNA: {voice: voices/anna, reference: anna_clips/}
      BORIS: {voice: none, base: "espeak:ru+m3", language: ru}
    lines:
      - {id: a1, character: ANNA, start: 1.5, end: 4.0, recording: takes/a1.wav, subtitle: "Who's there?"}
      - {id: b1, character: BORIS, cue: 2, text: "Добрый вечер.", rate: 1.0, gain: -2}
      - {id: a2, character: ANNA, start: "00:01:10.200", end: "00:01:18.000", score: song.mid, lyrics: "..."}

Relative paths are relative to the scene file. ``voice: none`` speaks with the base synthesiser, or uses a recording
as it is (the performer's own voice). Unknown keys, missing or clashing fields raise ``SceneError`` naming the file,
the YAML line, the line id and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputError, InputNotFoundError

SOURCE_KINDS = ("recording", "text", "score")
LIPSYNC_MODES = ("off", "align", "render")
STRETCHERS = ("rubberband", "wsola")


class SceneError(ConfigError):
    """A scene file is invalid; the message names the file, its line, the dub line id and the field."""


# ------------------------------------------------------------------------------------------------ dataclasses


@dataclass(frozen=True)
class Ducking:
    """Side-chain ducking of the M&E under dialogue: ``depth`` dB, ramps in seconds (before and after a line)."""

    depth: float = 6.0
    attack: float = 0.08
    release: float = 0.3


@dataclass(frozen=True)
class OutputSettings:
    """How the scene is mixed and delivered.

    ``loudness``: integrated loudness of the mix in LUFS; ``true_peak``: ceiling in dBTP; ``dialogue_loudness``:
    each line's own loudness before the mix gain (LUFS); ``max_stretch``: the largest time-stretch ratio either
    way; ``min_gap``: silence kept before the next line when a line borrows from the following gap; ``fade``:
    the fade at each end of a placed line (s); ``stretcher``: ``rubberband`` (the Rubber Band CLI, R3 engine) or
    ``wsola`` (built in); ``watermark``: mark every generated line (``voicetwin.production.watermark``);
    ``lipsync_max_shift``: the most (s, either way) a ``lipsync: align`` line is moved off its slot to meet the mouth.
    """

    sample_rate: int = 48_000
    loudness: float = -23.0
    true_peak: float = -1.0
    dialogue_loudness: float = -24.0
    max_stretch: float = 1.25
    min_gap: float = 0.1
    fade: float = 0.01
    ducking: Ducking | None = None
    stretcher: str = "rubberband"
    watermark: bool = True
    subtitle_lines: bool = True
    lipsync_max_shift: float = 0.4


@dataclass(frozen=True)
class Source:
    """What a line is made from: ``kind`` in ``recording | text | score``; ``value`` an absolute path or the text."""

    kind: str
    value: str


@dataclass(frozen=True)
class Line:
    """One line of a scene. Times in seconds from the start of the scene; ``gain`` in dB; ``transpose`` in
    semitones; ``rate`` a pace multiplier for text without a slot fit."""

    id: str
    character: str
    voice: str | None
    start: float
    end: float
    source: Source
    text: str = ""  # what is said (subtitles): ``subtitle``, else the text, the lyrics, or the subtitle cue
    language: str | None = None
    base: str | None = None
    lyrics: str | None = None
    transpose: float | None = None
    rate: float = 1.0
    gain: float = 0.0
    lipsync: str = "off"
    reference: str | None = None
    vocoder: str = "auto"  # "hifigan": rendered again through the neural vocoder (22050 Hz); see VOCODERS
    yaml_line: int = 0

    @property
    def slot(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Scene:
    """A validated scene. Paths are absolute; ``lines`` are sorted by start time."""

    path: str
    name: str
    lines: tuple[Line, ...]
    output: OutputSettings = field(default_factory=OutputSettings)
    video: str | None = None
    music_effects: str | None = None
    original_dialogue: str | None = None
    subtitles: str | None = None
    duration: float | None = None
    production: str | None = None

    def line(self, line_id: str) -> Line:
        for line in self.lines:
            if line.id == line_id:
                return line
        raise SceneError(f"no line with id '{line_id}'", path=self.path,
                         fix=f"ids in this scene: {', '.join(x.id for x in self.lines)}")


@dataclass(frozen=True)
class Cue:
    """A subtitle cue: 1-based ``index``, times in seconds, ``text`` (one line, tags removed), ``name`` (ASS actor)."""

    index: int
    start: float
    end: float
    text: str
    name: str = ""


# ------------------------------------------------------------------------------------------------ YAML with lines


class _Map(dict):
    """A YAML mapping that remembers its line and the line of each key (1-based)."""

    line: int = 0
    key_lines: dict


def _yaml_load(path: Path) -> Any:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        out = _Map()
        out.line = node.start_mark.line + 1
        out.key_lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                key = str(key)
            if key in out:
                raise SceneError(f"line {key_node.start_mark.line + 1}: key '{key}' appears twice", path=path)
            out[key] = loader.construct_object(value_node, deep=True)
            out.key_lines[key] = key_node.start_mark.line + 1
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SceneError("is not UTF-8 text", path=path, fix="save the scene file as UTF-8") from exc
    try:
        return yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise SceneError(f"{where}not valid YAML ({getattr(exc, 'problem', None) or exc})", path=path,
                         fix="check indentation and quoting") from exc


class _Fields:
    """Reads the fields of one YAML mapping, naming the file, the line id and the field in every error."""

    def __init__(self, data: Any, path: Path, what: str, allowed: tuple[str, ...]):
        self.path, self.what = path, what
        if not isinstance(data, dict):
            raise SceneError(f"{what}: expected a mapping of fields, got {type(data).__name__}", path=path)
        self.data = data
        self.line = getattr(data, "line", 0)
        unknown = [k for k in data if k not in allowed]
        if unknown:
            raise self.error(unknown[0], "unknown field", fix=f"allowed fields: {', '.join(allowed)}")

    def error(self, key: str | None, message: str, fix: str | None = None) -> SceneError:
        line = getattr(self.data, "key_lines", {}).get(key, self.line) if key else self.line
        where = f"line {line}: " if line else ""
        name = f" field '{key}'" if key else ""
        return SceneError(f"{where}{self.what}{name}: {message}", path=self.path, fix=fix)

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get(self, key: str, default: Any = None) -> Any:
        value = self.data.get(key)
        return default if value is None else value

    def text(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        if not self.has(key):
            if required:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(key, f"expected text, got {type(value).__name__}")
        value = str(value).strip()
        if not value and required:
            raise self.error(key, "is empty")
        return value

    def number(self, key: str, default: float | None = None, lo: float | None = None, hi: float | None = None,
               required: bool = False) -> float | None:
        if not self.has(key):
            if required:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {value!r}")
        value = float(value)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise self.error(key, f"{value:g} is out of range", fix=f"use a value between {lo:g} and {hi:g}")
        return value

    def time(self, key: str) -> float | None:
        if not self.has(key):
            return None
        value = self.data[key]
        try:
            return parse_time(value)
        except ValueError as exc:
            raise self.error(key, str(exc), fix="give seconds (12.5) or a timecode ('00:01:12.500')") from exc

    def path_of(self, key: str, base: Path, must_exist: bool = True) -> str | None:
        value = self.text(key)
        if value is None:
            return None
        p = Path(value).expanduser()
        p = p if p.is_absolute() else (base / p)
        if must_exist and not p.exists():
            raise self.error(key, f"no such file '{value}' (looked for {p})", fix="check the path; relative paths "
                             "are relative to the scene file")
        return str(p.resolve())


_TIME = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:[.,]\d+)?)$")


def parse_time(value: Any) -> float:
    """Seconds from a number or a timecode ``HH:MM:SS.mmm`` / ``MM:SS.mmm`` / ``HH:MM:SS,mmm`` (SRT)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a time, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        m = _TIME.match(text)
        if m:
            hours, minutes, secs = m.groups()
            seconds = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs.replace(",", "."))
        else:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(f"'{text}' is not a time") from None
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"time must be >= 0, got {seconds}")
    return seconds


# ------------------------------------------------------------------------------------------------ loading


_TOP = ("production", "video", "music_effects", "original_dialogue", "subtitles", "duration", "output", "characters", "lines", "name")
_OUTPUT = ("sample_rate", "loudness", "true_peak", "dialogue_loudness", "max_stretch", "min_gap", "fade", "ducking",
           "stretcher", "watermark", "lipsync_max_shift")
_DUCKING = ("depth", "attack", "release")
_CHARACTER = ("voice", "base", "language", "reference", "gain", "vocoder")
_LINE = ("id", "character", "voice", "start", "end", "cue", "language", "base", "lyrics", "transpose", "rate", "gain",
         "lipsync", "reference", "subtitle", "vocoder") + SOURCE_KINDS
VOCODERS = ("auto", "world", "hifigan")  # as voicetwin.audio.hifigan.VOCODERS


def load_scene(path: str | Path) -> Scene:
    """Read and validate a scene file. Raises ``SceneError`` (a ``ConfigError``) with the file, line and field."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no such scene file", path=path, fix="check the path")
    data = _yaml_load(path)
    if data is None:
        raise SceneError("the scene file is empty", path=path, fix="see the README for the scene schema")
    top = _Fields(data, path, "scene", _TOP)
    base = path.resolve().parent
    output = _output(top, path)
    subtitles = top.path_of("subtitles", base)
    cues = {c.index: c for c in read_subtitles(subtitles)} if subtitles else {}
    characters = _characters(top, path, base)
    raw_lines = top.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise top.error("lines", "must be a non-empty list of lines")
    lines: list[Line] = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_lines):
        line = _line(raw, i, path, base, characters, cues)
        if line.id in seen:
            raise SceneError(f"line {line.yaml_line}: line '{line.id}' field 'id': the id is already used on line "
                             f"{seen[line.id]}", path=path, fix="give every line a unique id")
        seen[line.id] = line.yaml_line
        lines.append(line)
    duration = top.number("duration", lo=0.1)
    if duration is not None:
        late = [x for x in lines if x.start >= duration]
        if late:
            raise SceneError(f"line {late[0].yaml_line}: line '{late[0].id}' field 'start': {late[0].start:.3f} s is "
                             f"after the end of the scene ({duration:.3f} s)", path=path)
    lines.sort(key=lambda x: (x.start, x.id))
    return Scene(
        path=str(path.resolve()),
        name=top.text("name") or path.stem,
        lines=tuple(lines),
        output=output,
        video=top.path_of("video", base),
        music_effects=top.path_of("music_effects", base),
        original_dialogue=top.path_of("original_dialogue", base),
        subtitles=subtitles,
        duration=duration,
        production=top.text("production"),
    )


def _output(top: _Fields, path: Path) -> OutputSettings:
    if not top.has("output"):
        return OutputSettings(ducking=Ducking())
    f = _Fields(top.data["output"], path, "output", _OUTPUT)
    ducking: Ducking | None = Ducking()
    if "ducking" in f.data:
        raw = f.data["ducking"]
        if raw is False or raw is None or raw == "off":
            ducking = None
        elif raw is True or raw == "on":
            ducking = Ducking()
        else:
            d = _Fields(raw, path, "output ducking", _DUCKING)
            ducking = Ducking(depth=d.number("depth", 6.0, 0.0, 40.0), attack=d.number("attack", 0.08, 0.0, 2.0),
                              release=d.number("release", 0.3, 0.0, 5.0))
    stretcher = f.text("stretcher", "rubberband")
    if stretcher not in STRETCHERS:
        raise f.error("stretcher", f"unknown stretcher '{stretcher}'", fix=f"use one of {', '.join(STRETCHERS)}")
    rate = f.number("sample_rate", 48_000)
    if rate not in (44_100, 48_000, 96_000):
        raise f.error("sample_rate", f"{rate:g} Hz is not a delivery rate", fix="use 48000 (or 44100, 96000)")
    watermark = f.get("watermark", True)
    if not isinstance(watermark, bool):
        raise f.error("watermark", "expected true or false")
    return OutputSettings(
        sample_rate=int(rate),
        loudness=f.number("loudness", -23.0, -36.0, -10.0),
        true_peak=f.number("true_peak", -1.0, -12.0, 0.0),
        dialogue_loudness=f.number("dialogue_loudness", -24.0, -50.0, -10.0),
        max_stretch=f.number("max_stretch", 1.25, 1.0, 2.0),
        min_gap=f.number("min_gap", 0.1, 0.0, 2.0),
        fade=f.number("fade", 0.01, 0.0, 0.2),
        ducking=ducking,
        stretcher=stretcher,
        watermark=watermark,
        lipsync_max_shift=f.number("lipsync_max_shift", 0.4, 0.0, 2.0),
    )


def _voice_value(f: _Fields, base: Path) -> str | None:
    value = f.text("voice")
    if value is None or value.lower() == "none":
        return None
    p = Path(value).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.exists():
        raise f.error("voice", f"no voice directory '{value}' (looked for {p})",
                      fix="build one with 'voicetwin voice build', or write 'voice: none' for the base voice")
    return str(p.resolve())


def _characters(top: _Fields, path: Path, base: Path) -> dict[str, dict]:
    raw = top.get("characters", {})
    if not isinstance(raw, dict):
        raise top.error("characters", "expected a mapping of character name to settings")
    out = {}
    for name, settings in raw.items():
        f = _Fields(settings if settings is not None else _Map(), path, f"character '{name}'", _CHARACTER)
        out[str(name)] = {
            "voice": _voice_value(f, base) if f.has("voice") else "<unset>",
            "base": f.text("base"),
            "language": f.text("language"),
            "reference": f.path_of("reference", base),
            "gain": f.number("gain", 0.0, -40.0, 20.0),
            "vocoder": _vocoder(f),
        }
    return out


def _vocoder(f: "_Fields") -> str | None:
    vocoder = f.text("vocoder")
    if vocoder is not None and vocoder not in VOCODERS:
        raise f.error("vocoder", f"unknown vocoder '{vocoder}'", fix=f"use one of {', '.join(VOCODERS)}")
    return vocoder


def _line(raw: Any, index: int, path: Path, base: Path, characters: dict[str, dict], cues: dict[int, Cue]) -> Line:
    line_id = str(raw.get("id", "")).strip() if isinstance(raw, dict) else ""
    what = f"line '{line_id}'" if line_id else f"line #{index + 1}"
    f = _Fields(raw, path, what, _LINE)
    line_id = f.text("id", required=True)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", line_id):
        raise f.error("id", f"'{line_id}' has characters other than letters, digits, '_', '-', '.'",
                      fix="ids name cache files; keep them simple")
    character = f.text("character", required=True)
    defaults = characters.get(character, {})
    if characters and character not in characters:
        raise f.error("character", f"'{character}' is not in the scene's characters",
                      fix=f"characters: {', '.join(characters)}")

    kinds = [k for k in SOURCE_KINDS if f.has(k)]
    cue = None
    if f.has("cue"):
        number = f.number("cue")
        if number is None or number != int(number) or int(number) not in cues:
            raise f.error("cue", f"no cue {f.data['cue']!r} in the subtitles",
                          fix="add 'subtitles: FILE.srt' to the scene and use a cue number from it")
        cue = cues[int(number)]
    if len(kinds) > 1:
        raise f.error(kinds[1], f"a line has exactly one source; this one has {' and '.join(kinds)}")
    if not kinds:
        if cue is None:
            raise f.error(None, "has no source", fix="give one of: recording: FILE, text: \"...\", score: FILE")
        kinds = ["text"]
    kind = kinds[0]
    if kind == "text":
        text = f.text("text") if f.has("text") else cue.text  # type: ignore[union-attr]
        if not text:
            raise f.error("text", "is empty")
        source = Source("text", text)
    else:
        source = Source(kind, f.path_of(kind, base) or "")

    start, end = f.time("start"), f.time("end")
    if cue is not None:
        start = cue.start if start is None else start
        end = cue.end if end is None else end
    if start is None:
        raise f.error("start", "is required (or give a subtitle 'cue')")
    if end is None:
        raise f.error("end", "is required (or give a subtitle 'cue')")
    if end <= start:
        raise f.error("end", f"{end:.3f} s is not after start {start:.3f} s")
    if end - start < 0.2:
        raise f.error("end", f"the slot is {1000 * (end - start):.0f} ms long; a line needs at least 200 ms")

    voice = _voice_value(f, base) if f.has("voice") else defaults.get("voice", "<unset>")
    if voice == "<unset>":
        raise f.error("voice", "is required (on the line or on its character)",
                      fix="give a voice directory, or 'voice: none' for the base voice / the recording as it is")

    transpose = f.number("transpose", lo=-24.0, hi=24.0)
    rate = f.number("rate", 1.0, 0.5, 2.0)
    if rate != 1.0 and kind != "text":
        raise f.error("rate", "only text lines have a pace; recordings and scores keep theirs")
    lipsync = f.text("lipsync", "off")
    if lipsync in ("false", "False"):
        lipsync = "off"
    if lipsync not in LIPSYNC_MODES:
        raise f.error("lipsync", f"unknown mode '{lipsync}'", fix=f"use one of {', '.join(LIPSYNC_MODES)}")
    lyrics = f.text("lyrics")
    if lyrics is not None and kind != "score":
        raise f.error("lyrics", "only sung lines (score) take lyrics")
    if f.has("subtitle"):
        said = f.text("subtitle") or ""
    elif kind == "text":
        said = source.value
    elif lyrics:
        said = lyrics
    else:
        said = cue.text if cue is not None else ""
    return Line(
        id=line_id,
        character=character,
        voice=voice,
        start=float(start),
        end=float(end),
        source=source,
        text=said,
        language=f.text("language") or defaults.get("language"),
        base=f.text("base") or defaults.get("base"),
        lyrics=lyrics,
        transpose=transpose,
        rate=rate,
        gain=f.number("gain", 0.0, -40.0, 20.0) + float(defaults.get("gain") or 0.0),
        lipsync=lipsync,
        reference=f.path_of("reference", base) or defaults.get("reference"),
        vocoder=_vocoder(f) or defaults.get("vocoder") or "auto",
        yaml_line=f.line,
    )


# ------------------------------------------------------------------------------------------------ subtitles


def read_subtitles(path: str | Path) -> list[Cue]:
    """Read an SRT or ASS/SSA file into cues (sorted by index). Tags are removed; line breaks become spaces."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no such subtitle file", path=path, fix="check the path")
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    if path.suffix.lower() in (".ass", ".ssa") or "[Events]" in text:
        cues = parse_ass(text, path)
    else:
        cues = parse_srt(text, path)
    if not cues:
        raise InputError("no subtitle cues found", path=path, fix="give an SRT or ASS file with dialogue")
    return cues


_SRT_TIME = re.compile(r"(\d+:\d+:\d+[,.]\d+)\s*-->\s*(\d+:\d+:\d+[,.]\d+)")


def parse_srt(text: str, path: str | Path = "<srt>") -> list[Cue]:
    cues = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip()):
        rows = [r for r in block.split("\n") if r.strip()]
        if not rows:
            continue
        k = 0
        index = len(cues) + 1
        if rows[0].strip().isdigit():
            index, k = int(rows[0].strip()), 1
        m = _SRT_TIME.search(rows[k]) if k < len(rows) else None
        if not m:
            raise InputError(f"cue {index}: no 'HH:MM:SS,mmm --> HH:MM:SS,mmm' line", path=path,
                             fix="check the SRT file")
        body = " ".join(re.sub(r"<[^>]+>", "", r).strip() for r in rows[k + 1:])
        cues.append(Cue(index, parse_time(m.group(1)), parse_time(m.group(2)), body.strip()))
    return cues


def parse_ass(text: str, path: str | Path = "<ass>") -> list[Cue]:
    cues = []
    fields: list[str] | None = None
    in_events = False
    for row in text.replace("\r\n", "\n").split("\n"):
        row = row.strip()
        if row.startswith("["):
            in_events = row.lower() == "[events]"
            continue
        if not in_events:
            continue
        if row.lower().startswith("format:"):
            fields = [x.strip().lower() for x in row.split(":", 1)[1].split(",")]
        elif row.lower().startswith("dialogue:"):
            if fields is None:
                raise InputError("[Events] has a Dialogue line before its Format line", path=path)
            values = row.split(":", 1)[1].split(",", len(fields) - 1)
            item = dict(zip(fields, (v.strip() for v in values)))
            body = re.sub(r"\{[^}]*\}", "", item.get("text", "")).replace("\\N", " ").replace("\\n", " ")
            cues.append(Cue(len(cues) + 1, parse_time(item.get("start", "")), parse_time(item.get("end", "")),
                            re.sub(r"\s+", " ", body).strip(), item.get("name", "")))
    return cues


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def _ass_time(seconds: float) -> str:
    cs = int(round(seconds * 100))
    return f"{cs // 360_000:d}:{cs // 6000 % 60:02d}:{cs // 100 % 60:02d}.{cs % 100:02d}"


def format_srt(cues: list[Cue]) -> str:
    """SRT text of ``cues`` (numbered from 1 in the order given)."""
    blocks = [f"{i}\n{_srt_time(c.start)} --> {_srt_time(c.end)}\n{c.text}\n" for i, c in enumerate(cues, 1)]
    return "\n".join(blocks)


def format_ass(cues: list[Cue], title: str = "voicetwin dub") -> str:
    """ASS (v4+) text of ``cues``, one style, the character in the Name field."""
    head = (
        "[Script Info]\n"
        f"Title: {title}\nScriptType: v4.00+\nWrapStyle: 0\nPlayResX: 1920\nPlayResY: 1080\n\n"
        "[V4+ Styles]\n"
        "Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, "
        "Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, "
        "MarginR, MarginV, Encoding\n"
        "Style: Default,Arial,54,&H00FFFFFF,&H000000FF,&H00000000,&H64000000,0,0,0,0,100,100,0,0,1,2,1,2,60,60,50,1\n\n"
        "[Events]\n"
        "Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n"
    )
    rows = [f"Dialogue: 0,{_ass_time(c.start)},{_ass_time(c.end)},Default,{c.name},0,0,0,,"
            f"{c.text.replace(chr(10), chr(92) + 'N')}" for c in cues]
    return head + "\n".join(rows) + "\n"
