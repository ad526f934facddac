"""Scene files: YAML -> validated dataclasses, errors that name the file, line and field; SRT/ASS import."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicetwin.errors import ConfigError, InputNotFoundError
from voicetwin.production.scene import (
    Cue,
    SceneError,
    format_ass,
    format_srt,
    load_scene,
    parse_ass,
    parse_srt,
    parse_time,
    read_subtitles,
)

SRT = """1
00:00:01,000 --> 00:00:02,500
<i>Hello</i> there.

2
00:00:04,250 --> 00:00:06,000
Two lines
of text.
"""

ASS = r"""[Script Info]
Title: test

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.50,Default,ANNA,0,0,0,,{\i1}Hello{\i0}, there.
Dialogue: 0,0:01:04.25,0:01:06.00,Default,BORIS,0,0,0,,Two lines\Nof text, with commas.
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    sf.write(tmp_path / "take.wav", np.zeros(1600, np.float32), 16_000)
    sf.write(tmp_path / "me.wav", np.zeros((4800, 2), np.float32), 48_000)
    (tmp_path / "voice").mkdir()
    (tmp_path / "lines.srt").write_text(SRT, encoding="utf-8")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "scene.yaml"
    path.write_text(text, encoding="utf-8")
    return path


GOOD = """
production: Test
music_effects: me.wav
subtitles: lines.srt
output: {loudness: -16, ducking: off, max_stretch: 1.2, lipsync_max_shift: 0.25}
characters:
  ANNA: {voice: voice, reference: take.wav}
  BORIS: {voice: none, base: "espeak:ru"}
lines:
  - {id: b1, character: BORIS, cue: 2, gain: -3}
  - {id: a1, character: ANNA, start: "00:00:00.500", end: 2.0, recording: take.wav, transpose: -2, subtitle: Hi}
  - id: a2
    character: ANNA
    start: 7
    end: 9.5
    text: "Добрый вечер."
    rate: 1.0
    lipsync: render
"""


def test_good_scene_maps_onto_dataclasses(folder: Path):
    scene = load_scene(write(folder, GOOD))
    assert scene.name == "scene" and scene.production == "Test"
    assert [x.id for x in scene.lines] == ["a1", "b1", "a2"]  # sorted by start
    a1, b1, a2 = scene.lines
    assert a1.source.kind == "recording" and Path(a1.source.value) == (folder / "take.wav").resolve()
    assert a1.voice == str((folder / "voice").resolve()) and a1.transpose == -2.0 and a1.text == "Hi"
    assert a1.reference == str((folder / "take.wav").resolve())
    assert (a1.start, a1.end) == (0.5, 2.0)
    # a cue gives the slot and, without another source, the text
    assert b1.source.kind == "text" and b1.source.value == "Two lines of text." and b1.voice is None
    assert (b1.start, b1.end) == (4.25, 6.0) and b1.gain == -3.0 and b1.base == "espeak:ru"
    assert a2.lipsync == "render" and a2.source.value == "Добрый вечер."
    assert scene.output.loudness == -16 and scene.output.ducking is None and scene.output.max_stretch == 1.2
    assert scene.output.sample_rate == 48_000 and scene.output.true_peak == -1.0
    assert scene.output.lipsync_max_shift == 0.25
    with pytest.raises(SceneError, match="no line with id 'zz'"):
        scene.line("zz")


def test_default_output_has_ducking(folder: Path):
    scene = load_scene(write(folder, "lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi}\n"))
    assert scene.output.ducking is not None and scene.output.ducking.depth == 6.0
    assert scene.output.loudness == -23.0
    assert scene.output.lipsync_max_shift == 0.4


@pytest.mark.parametrize("body, message", [
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi, colour: red}\n",
     r"line 2: line 'x' field 'colour': unknown field"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1}\n", r"line 'x': has no source"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi, recording: take.wav}\n",
     r"a line has exactly one source; this one has recording and text"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 2, end: 1, text: hi}\n",
     r"field 'end': 1.000 s is not after start 2.000 s"),
    ("lines:\n  - {id: x, character: A, voice: nowhere, start: 0, end: 1, text: hi}\n",
     r"field 'voice': no voice directory 'nowhere'"),
    ("lines:\n  - {id: x, character: A, start: 0, end: 1, text: hi}\n", r"field 'voice': is required"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, recording: missing.wav}\n",
     r"field 'recording': no such file 'missing.wav'"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi}\n"
     "  - {id: x, character: A, voice: none, start: 3, end: 4, text: hi}\n", r"line 3: line 'x' field 'id': the id "
     r"is already used on line 2"),
    ("lines:\n  - {id: x, character: A, voice: none, cue: 9, text: hi}\n", r"field 'cue': no cue 9"),
    ("lines:\n  - {id: x, character: A, voice: none, start: '1:xx', end: 3, text: hi}\n",
     r"field 'start': '1:xx' is not a time"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi, lipsync: yes}\n",
     r"field 'lipsync'"),
    ("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, recording: take.wav, rate: 1.5}\n",
     r"field 'rate': only text lines"),
    ("output: {loudness: -50}\nlines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi}\n",
     r"output field 'loudness': -50 is out of range"),
    ("output: {lipsync_max_shift: 3}\nlines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi}\n",
     r"output field 'lipsync_max_shift': 3 is out of range"),
    ("output: {stretcher: sox}\nlines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi}\n",
     r"unknown stretcher 'sox'"),
    ("characters: {A: {voice: none}}\nlines:\n  - {id: x, character: B, start: 0, end: 1, text: hi}\n",
     r"field 'character': 'B' is not in the scene's characters"),
    ("lines: []\n", r"field 'lines': must be a non-empty list"),
    ("lines:\n  - {id: x, character: A\n", r"not valid YAML"),
    ("duration: 5\nlines:\n  - {id: x, character: A, voice: none, start: 6, end: 7, text: hi}\n",
     r"after the end of the scene"),
    ("lines:\n  - {id: 'a b', character: A, voice: none, start: 0, end: 1, text: hi}\n", r"field 'id'"),
])
def test_errors_name_file_line_and_field(folder: Path, body: str, message: str):
    path = write(folder, body)
    with pytest.raises(SceneError, match=message) as info:
        load_scene(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_missing_scene_file(tmp_path: Path):
    with pytest.raises(InputNotFoundError):
        load_scene(tmp_path / "nope.yaml")


def test_parse_time():
    assert parse_time(12) == 12.0
    assert parse_time("01:02:03.5") == 3723.5
    assert parse_time("00:00:01,250") == 1.25
    assert parse_time("2:05.5") == 125.5
    assert parse_time("7.25") == 7.25
    for bad in ("-1", "abc", True):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_srt_and_ass_import(tmp_path: Path):
    srt = parse_srt(SRT)
    assert [(c.index, c.start, c.end, c.text) for c in srt] == [
        (1, 1.0, 2.5, "Hello there."), (2, 4.25, 6.0, "Two lines of text.")]
    ass = parse_ass(ASS)
    assert [(c.start, c.end, c.name) for c in ass] == [(1.0, 2.5, "ANNA"), (64.25, 66.0, "BORIS")]
    assert ass[0].text == "Hello, there." and ass[1].text == "Two lines of text, with commas."
    (tmp_path / "x.ass").write_text(ASS, encoding="utf-8")
    assert read_subtitles(tmp_path / "x.ass") == ass


def test_subtitle_writers_round_trip():
    cues = [Cue(1, 0.5, 2.25, "Привет.", "ANNA"), Cue(2, 3661.004, 3662.5, "Second line", "BORIS")]
    back = parse_srt(format_srt(cues))
    assert [(c.start, c.end, c.text) for c in back] == [(c.start, c.end, c.text) for c in cues]
    back = parse_ass(format_ass(cues))
    assert [(c.start, round(c.end, 2), c.text, c.name) for c in back] == [
        (0.5, 2.25, "Привет.", "ANNA"), (3661.0, 3662.5, "Second line", "BORIS")]
