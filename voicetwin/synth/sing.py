"""Singing: a score with lyrics sung in a voice.

How it works. The lyrics are split into syllables and placed on the notes (a note with no new syllable carries the
previous one: melisma). Each word is spoken by a base synthesiser (``voicetwin.synth.speak``), which says where each of its
phones starts and ends, and analysed with WORLD. The sung line is then assembled frame by frame (5 ms): a
syllable's onset consonants are placed just before its note so that the vowel lands on the beat, the vowel is
stretched to fill the note (and its melisma notes) while consonants keep their spoken length, the coda closes the
note. The F0 follows the score, with smooth transitions between notes and delayed vibrato on long notes; a breath
is drawn in rests before a phrase. WORLD resynthesises the line, and the voice's own conversion (singing mode)
turns it into the voice.

Scores: standard MIDI files (lyric meta events, or ``lyrics=``) read with ``mido``, MusicXML read with ``music21``.

    score = read_score("song.mid", lyrics="Twin-kle twin-kle lit-tle star")
    audio, sr = sing(voice, score)
"""

from __future__ import annotations

import copy

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, InputError, InputNotFoundError, require
from ..text.normalization import RU_VOWELS, check_language, detect_language, syllabify, words
from .speak import Phone, admit, base_synthesizer, cast, convert_speech

MELISMA = "_"
MIDI_EXTENSIONS = (".mid", ".midi", ".kar")
MUSICXML_EXTENSIONS = (".musicxml", ".xml", ".mxl")


@dataclass(frozen=True)
class Note:
    """One sung note: ``start`` and ``duration`` in seconds, ``pitch`` in MIDI semitones (69 = A4 = 440 Hz).

    ``lyric``: the syllable that starts on this note; None (or ``"_"``) continues the previous syllable (melisma).
    ``word_end``: the syllable ends its word.
    """

    start: float
    duration: float
    pitch: float
    lyric: str | None = None
    word_end: bool = True

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass
class Score:
    """A melody with lyrics: notes in time order, no overlaps."""

    notes: list[Note]
    tempo: float = 120.0  # beats per minute the times were computed with
    source: str | None = None

    @property
    def seconds(self) -> float:
        return max((n.end for n in self.notes), default=0.0)

    def has_lyrics(self) -> bool:
        return any(n.lyric for n in self.notes)


@dataclass(frozen=True)
class SingOptions:
    """How to sing. Pitches in semitones and cents, times in seconds."""

    language: str | None = None
    base: str | None = None
    tempo: float | None = None  # beats per minute replacing the score's
    transpose: float | str = 0.0  # semitones, or "auto": the key that suits the voice (see ``key_shift``)
    vibrato_cents: float = 30.0  # peak deviation
    vibrato_rate: float = 5.5  # Hz
    vibrato_delay: float = 0.25  # s into a note before vibrato starts
    portamento: float = 0.06  # s of glide into a new note
    breaths: bool = True
    breath_db: float = -28.0  # breath level relative to the sung vowels
    sample_rate: int | None = None  # None: the voice's rate (or the base synthesiser's)
    frame_period: float = 5.0  # ms
    production: str | None = None  # checked against the voice's consent record
    vocoder: str = "auto"  # "hifigan": rendered again through the neural vocoder, at 22050 Hz; "auto": WORLD here

    def __post_init__(self):
        from ..audio.hifigan import check_vocoder

        check_vocoder(self.vocoder)
        if self.tempo is not None and not 20 <= self.tempo <= 400:
            raise ConfigError(f"tempo must be between 20 and 400 BPM, got {self.tempo}")
        if isinstance(self.transpose, str):
            if self.transpose != "auto":
                raise ConfigError(f"transpose must be a number of semitones or 'auto', not '{self.transpose}'")
        elif not -36 <= self.transpose <= 36:
            raise ConfigError(f"transpose must be within +-36 semitones, got {self.transpose}")
        if not 0 <= self.vibrato_cents <= 200 or not 0 < self.vibrato_rate <= 12:
            raise ConfigError("vibrato_cents must be 0-200 and vibrato_rate 0-12 Hz")
        if not 0 <= self.portamento <= 0.5 or not 1.0 <= self.frame_period <= 20.0:
            raise ConfigError("portamento must be 0-0.5 s and frame_period 1-20 ms")
        if self.language is not None:
            check_language(self.language)


# --- reading scores ---------------------------------------------------------------------------------

def read_score(path: str | Path, lyrics: str | None = None, tempo: float | None = None, transpose: float = 0.0,
               language: str | None = None) -> Score:
    """Read a MIDI or MusicXML file; ``lyrics`` replaces the file's lyrics; ``tempo`` (BPM) rescales time;
    ``transpose`` (semitones) moves every note."""
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("score not found", path=path)
    ext = path.suffix.lower()
    if ext in MIDI_EXTENSIONS:
        score = read_midi(path)
    elif ext in MUSICXML_EXTENSIONS:
        score = read_musicxml(path)
    else:
        raise InputError(f"unknown score format '{ext}'", path=path,
                         fix="give a standard MIDI file (.mid) or MusicXML (.musicxml, .xml, .mxl)")
    if not score.notes:
        raise InputError("the score has no notes", path=path)
    if lyrics is not None:
        score = set_lyrics(score, lyrics, language)
    elif not score.has_lyrics():
        raise InputError("the score has no lyrics", path=path, fix="pass --lyrics \"...\"")
    if tempo is not None:
        score = retime(score, tempo)
    if transpose:
        score = Score([replace(n, pitch=n.pitch + transpose) for n in score.notes], score.tempo, score.source)
    return score


def retime(score: Score, tempo: float) -> Score:
    """The same score played at ``tempo`` BPM (all times scaled by old tempo / new tempo)."""
    if not 20 <= tempo <= 400:
        raise ConfigError(f"tempo must be between 20 and 400 BPM, got {tempo}")
    k = score.tempo / tempo
    return Score([replace(n, start=n.start * k, duration=n.duration * k) for n in score.notes], tempo, score.source)


def _monophonic(notes: list[Note]) -> list[Note]:
    """Keep the top voice: where notes overlap, the higher one wins and the earlier one is cut."""
    notes = sorted(notes, key=lambda n: (n.start, -n.pitch))
    out: list[Note] = []
    for n in notes:
        if out and n.start < out[-1].end - 1e-6:
            prev = out[-1]
            if abs(n.start - prev.start) < 1e-6:
                continue  # chord: keep the top note
            out[-1] = replace(prev, duration=n.start - prev.start)
        out.append(n)
    return [n for n in out if n.duration > 1e-3]


def read_midi(path: str | Path) -> Score:
    """Melody and lyrics of a standard MIDI file: the track with lyric events (else the one with most notes)."""
    mido = require("mido", "sing", "reading MIDI scores")
    try:  # lyrics in UTF-8 (any language), else the standard's latin-1
        try:
            mid = mido.MidiFile(str(path), charset="utf-8")
        except UnicodeDecodeError:
            mid = mido.MidiFile(str(path), charset="latin-1")
    except Exception as exc:
        raise InputError(f"not a readable MIDI file ({exc})", path=path) from exc
    tempo_map: list[tuple[int, int]] = []  # (tick, microseconds per beat)
    tracks = []
    for track in mid.tracks:
        tick, notes, lyrics, texts, open_notes = 0, [], [], [], {}
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempo_map.append((tick, msg.tempo))
            elif msg.type == "lyrics":
                lyrics.append((tick, msg.text))
            elif msg.type == "text" and not msg.text.startswith("@"):
                texts.append((tick, msg.text.lstrip("/\\")))
            elif msg.type == "note_on" and msg.velocity > 0 and msg.channel != 9:
                open_notes[(msg.channel, msg.note)] = tick
            elif msg.type in ("note_off", "note_on") and (msg.channel, msg.note) in open_notes:
                start = open_notes.pop((msg.channel, msg.note))
                if tick > start:
                    notes.append((start, tick, msg.note))
        tracks.append((notes, lyrics or texts, bool(lyrics)))
    tempo_map = sorted(tempo_map) or [(0, 500_000)]
    if tempo_map[0][0] != 0:
        tempo_map.insert(0, (0, 500_000))

    def seconds(tick: int) -> float:
        t, last_tick, last_tempo = 0.0, 0, tempo_map[0][1]
        for at, tempo in tempo_map:
            if at >= tick:
                break
            t += (at - last_tick) * last_tempo / (mid.ticks_per_beat * 1e6)
            last_tick, last_tempo = at, tempo
        return t + (tick - last_tick) * last_tempo / (mid.ticks_per_beat * 1e6)

    candidates = [t for t in tracks if t[0]]
    if not candidates:
        raise InputError("the MIDI file has no notes", path=path)
    notes_t, lyric_events, _ = max(candidates, key=lambda t: (t[2], len(t[1]) > 0, len(t[0])))
    if not any(t[1] for t in [(notes_t, lyric_events)]):
        lyric_events = max((t[1] for t in tracks), key=len)
    notes = _monophonic([Note(seconds(a), seconds(b) - seconds(a), float(p)) for a, b, p in notes_t])
    starts = {round(n.start, 4): i for i, n in enumerate(notes)}
    lyr: dict[int, str] = {}
    for tick, text in lyric_events:
        t = seconds(tick)
        i = starts.get(round(t, 4))
        if i is None:  # the first note starting at or after the lyric (within a beat)
            later = [j for j, n in enumerate(notes) if n.start >= t - 1e-3 and n.start - t < 60 / _bpm(tempo_map)]
            if not later:
                continue
            i = later[0]
        text = text.strip()
        if text and i not in lyr:
            lyr[i] = text
    notes = _apply_syllables(notes, lyr)
    return Score(notes, _bpm(tempo_map), str(path))


def _bpm(tempo_map: list[tuple[int, int]]) -> float:
    return 60e6 / tempo_map[0][1]


def _apply_syllables(notes: list[Note], lyr: dict[int, str]) -> list[Note]:
    """Attach syllables written MIDI/LilyPond style: ``"Twin-"`` continues the word, ``"_"``/``"-"`` is melisma."""
    out = []
    for i, n in enumerate(notes):
        text = lyr.get(i)
        if text is None or text in (MELISMA, "-", "~", "+"):
            out.append(replace(n, lyric=None))
            continue
        word_end = not text.endswith("-")
        out.append(replace(n, lyric=text.rstrip("-").strip(), word_end=word_end))
    return out


def read_musicxml(path: str | Path) -> Score:
    """Melody and lyrics of the first part of a MusicXML file (ties merged, chords reduced to their top note)."""
    music21 = require("music21", "sing", "reading MusicXML scores")
    try:
        stream = music21.converter.parse(str(path))
    except Exception as exc:
        raise InputError(f"not a readable MusicXML file ({type(exc).__name__}: {exc})", path=path) from exc
    parts = list(getattr(stream, "parts", [])) or [stream]
    flat = parts[0].flatten()
    marks = list(flat.getElementsByClass("MetronomeMark"))
    bpm = float(marks[0].getQuarterBPM()) if marks and marks[0].getQuarterBPM() else 120.0
    notes: list[Note] = []
    for entry in flat.secondsMap:
        el = entry["element"]
        if not (getattr(el, "isNote", False) or getattr(el, "isChord", False)):
            continue
        pitch = max(p.midi for p in el.pitches) if el.isChord else el.pitch.midi
        start, dur = float(entry["offsetSeconds"]), float(entry["durationSeconds"])
        if dur <= 0:
            continue  # grace notes
        tie = getattr(el, "tie", None)
        if tie is not None and tie.type in ("stop", "continue") and notes and abs(notes[-1].pitch - pitch) < 1e-6:
            notes[-1] = replace(notes[-1], duration=start + dur - notes[-1].start)
            continue
        lyric, word_end = None, True
        if el.lyrics:
            ly = el.lyrics[0]
            lyric = (ly.text or "").strip() or None
            word_end = ly.syllabic in (None, "single", "end")
        notes.append(Note(start, dur, float(pitch), lyric, word_end))
    return Score(_monophonic(notes), bpm, str(path))


def write_midi(score: Score, path: str | Path, ticks_per_beat: int = 480) -> Path:
    """Write ``score`` as a one-track standard MIDI file with lyric meta events in UTF-8 (``"Twin-"`` for word-inner)."""
    mido = require("mido", "sing", "writing MIDI scores")
    from ..files import atomic_path

    mid = mido.MidiFile(ticks_per_beat=ticks_per_beat, charset="utf-8")
    track = mido.MidiTrack()
    mid.tracks.append(track)
    tempo = mido.bpm2tempo(score.tempo)
    track.append(mido.MetaMessage("set_tempo", tempo=tempo, time=0))

    def tick(sec: float) -> int:
        return int(round(sec * 1e6 / tempo * ticks_per_beat))

    events = []
    for n in score.notes:
        if n.lyric:
            events.append((tick(n.start), 0, mido.MetaMessage("lyrics", text=n.lyric + ("" if n.word_end else "-"))))
        events.append((tick(n.start), 1, mido.Message("note_on", note=int(round(n.pitch)), velocity=90)))
        events.append((tick(n.end), -1, mido.Message("note_off", note=int(round(n.pitch)), velocity=0)))
    now = 0
    for at, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=at - now))
        now = at
    with atomic_path(path) as tmp:
        mid.save(str(tmp))
    return Path(path)


# --- lyrics on notes -----------------------------------------------------------------------------------

def set_lyrics(score: Score, lyrics: str, language: str | None = None) -> Score:
    """Place ``lyrics`` on the notes: one syllable per note in order (words split automatically unless written
    with hyphens, ``_`` holds the previous syllable over a note); notes left over extend the last syllable."""
    language = check_language(language or detect_language(lyrics))
    syllables: list[tuple[str | None, bool]] = []
    vowels = RU_VOWELS + "aeiouyAEIOUY"
    prefix = ""
    for token in words(lyrics):
        if token != MELISMA and not any(c in vowels for c in token):
            prefix += token + " "  # a word without a vowel ("в", "с") is sung with the next word
            continue
        if prefix and token != MELISMA:
            token, prefix = prefix + token, ""
        if token == MELISMA:
            syllables.append((None, False))
            continue
        parts = syllabify(token, language)
        for k, part in enumerate(parts):
            syllables.append((part, k == len(parts) - 1))
    sung = sum(1 for s, _ in syllables if s)
    if not sung:
        raise InputError("the lyrics have no words", fix="pass --lyrics with the words to sing")
    if len(syllables) > len(score.notes):
        raise InputError(f"the lyrics have {len(syllables)} syllables but the melody only {len(score.notes)} notes",
                         fix="shorten the lyrics or join syllables with '_' holds")
    notes = []
    for i, n in enumerate(score.notes):
        lyric, end = syllables[i] if i < len(syllables) else (None, True)
        notes.append(replace(n, lyric=lyric, word_end=end))
    return Score(notes, score.tempo, score.source)


@dataclass
class Syllable:
    notes: list[Note]
    onset: tuple[float, float] = (0.0, 0.0)  # source seconds within the word's audio
    vowel: tuple[float, float] = (0.0, 0.0)
    coda: tuple[float, float] = (0.0, 0.0)
    unit: int = 0
    source: int | None = None  # the analysed audio of this syllable spoken on its own (else its word's)

    @property
    def start(self) -> float:
        return self.notes[0].start

    @property
    def end(self) -> float:
        return self.notes[-1].end


@dataclass
class _Unit:
    """A word (or a vowelless word joined to the next) spoken by the base synthesiser."""

    text: str
    syllables: list[Syllable] = field(default_factory=list)


def _units(score: Score, language: str) -> list[_Unit]:
    units: list[_Unit] = []
    current: list[Syllable] = []
    texts: list[str] = []
    pending_prefix = ""
    for n in score.notes:
        if n.lyric:
            current.append(Syllable([n]))
            texts.append(n.lyric)
            if n.word_end:
                word = "".join(texts)
                has_vowel = any(c in (RU_VOWELS if language == "ru" else "aeiouyAEIOUY") for c in word)
                units.append(_Unit(pending_prefix + word, current))
                pending_prefix = ""
                current, texts = [], []
                if not has_vowel:  # "в", "с": sung with the next word
                    pending_prefix = units.pop().text + " "
                    # its note becomes a hold of the previous syllable
                    if units and units[-1].syllables:
                        units[-1].syllables[-1].notes.append(n)
        elif current:
            current[-1].notes.append(n)
        elif units and units[-1].syllables:
            units[-1].syllables[-1].notes.append(n)
        else:  # a melody that starts without words: hum it on "a"
            current.append(Syllable([n]))
            texts.append("a")
    if current:
        units.append(_Unit(pending_prefix + "".join(texts), current))
    return units


def _phone_syllables(phones: list[Phone]) -> list[tuple[float, float, float, float]]:
    """Syllables of a spoken word from its phones: ``(onset_start, vowel_start, vowel_end, coda_end)`` seconds."""
    speech = [p for p in phones if p.kind != "pause"]
    if not speech:
        return []
    nuclei: list[list[int]] = []
    for i, p in enumerate(speech):
        if p.kind == "vowel":
            if nuclei and nuclei[-1][-1] == i - 1:
                nuclei[-1].append(i)
            else:
                nuclei.append([i])
    if not nuclei:
        return [(speech[0].start, speech[0].start, speech[-1].end, speech[-1].end)]
    bounds = []  # index where each syllable starts
    for k, nuc in enumerate(nuclei):
        if k == 0:
            bounds.append(0)
            continue
        prev_end = nuclei[k - 1][-1] + 1
        between = nuc[0] - prev_end
        bounds.append(nuc[0] - (1 if between <= 1 else between - 1) if between else nuc[0])
    out = []
    for k, nuc in enumerate(nuclei):
        first = bounds[k]
        last = (bounds[k + 1] - 1) if k + 1 < len(nuclei) else len(speech) - 1
        out.append((speech[first].start, speech[nuc[0]].start, speech[nuc[-1]].end, speech[last].end))
    return out


def _fit_syllables(spoken: list[tuple[float, float, float, float]], sung: list[Syllable]) -> None:
    """Give each sung syllable its spoken span; extra spoken syllables merge into the last, missing ones hold."""
    if not spoken:
        return
    k = len(sung)
    if len(spoken) > k:
        head, tail = spoken[: k - 1], spoken[k - 1:]
        spoken = head + [(tail[0][0], tail[0][1], tail[-1][2], tail[-1][3])]
    for i, syl in enumerate(sung):
        if i < len(spoken):
            o, v0, v1, c = spoken[i]
            syl.onset, syl.vowel, syl.coda = (o, v0), (v0, v1), (v1, c)
        else:  # more notes-with-syllables than spoken syllables: hold the last vowel
            prev = sung[i - 1]
            syl.onset, syl.vowel, syl.coda = (prev.vowel[1], prev.vowel[1]), prev.vowel, (prev.vowel[1], prev.vowel[1])
            prev.coda = (prev.vowel[1], prev.vowel[1])


def _has_voiced_vowel(syl: Syllable, voiced: np.ndarray, fp: float) -> bool:
    a, b = int(round(syl.vowel[0] / fp)), int(round(syl.vowel[1] / fp))
    return bool(voiced[a:b].any())


def _level_db(log_sp: np.ndarray) -> np.ndarray:
    """Frame level in dB from a WORLD log power envelope ``(frames, bins)``."""
    top = log_sp.max(axis=1, keepdims=True)
    return 10 / np.log(10) * (top[:, 0] + np.log(np.exp(log_sp - top).sum(axis=1)))


def refine_vowels(sung: list[Syllable], level_db: np.ndarray, voiced: np.ndarray, fp: float,
                   near_db: float = 6.0, floor_db: float = 25.0) -> None:
    """Move each syllable's vowel span onto the vowel as it sounds in the spoken source.

    Phone times reported by a synthesiser are approximate: espeak-ng puts the closure of a following stop (silence)
    inside the vowel and lets the vowel start inside the consonant before it (on the festvox-ru texts, voicing starts
    a median 17 ms and up to 80 ms before the reported vowel after an unvoiced consonant). Stretched over a note, the
    first becomes a silent gap in a sustained note and the second puts the vowel before the beat. Here the vowel is
    the voiced run around the reported span: it starts at the earliest voiced frame within ``near_db`` of the vowel's
    peak level (voiced consonants are quieter), taken back into the onset, and ends at the last voiced frame within
    ``floor_db`` of the peak (a closure or an unvoiced consonant is left to the coda). ``level_db`` and ``voiced`` are
    per source frame of ``fp`` seconds; spans stay inside the syllable's own onset-to-coda span.
    """
    n = len(level_db)
    for syl in sung:
        o, c = syl.onset[0], syl.coda[1]
        a, b = int(round(syl.vowel[0] / fp)), min(n, int(round(syl.vowel[1] / fp)))
        lo, hi = max(0, int(round(o / fp))), min(n, int(round(c / fp)))
        if b - a < 2 or o > syl.vowel[0] or c < syl.vowel[1] or not voiced[a:b].any():
            continue  # a held syllable (it reuses the previous vowel) or nothing voiced to go by
        peak = float(level_db[a:b][voiced[a:b]].max())
        loud = voiced & (level_db >= peak - floor_db)
        core = np.flatnonzero(loud[a:b])
        start, end = a + int(core[0]), a + int(core[-1]) + 1  # drop unvoiced or silent frames at either end
        while start - 1 >= lo and voiced[start - 1] and level_db[start - 1] >= peak - near_db:
            start -= 1  # the vowel's beginning, reported as part of the consonant before it
        if end - start < 2:
            continue
        v0, v1 = max(o, start * fp), min(c, end * fp)
        syl.onset, syl.vowel, syl.coda = (o, v0), (v0, v1), (v1, c)


# --- the sung line ----------------------------------------------------------------------------------------

def key_shift(score: Score, median_hz: float) -> int:
    """Whole semitones that move the score's median note (weighted by duration) nearest ``median_hz``.

    ``transpose="auto"`` uses it with the voice's median speaking pitch: the song is sung where that voice
    speaks, as a producer would pick the key for a singer, instead of wherever the score was written.
    """
    if not score.notes or not median_hz > 0:
        return 0
    pitch = np.array([n.pitch for n in score.notes])
    weight = np.array([n.duration for n in score.notes])
    order = np.argsort(pitch)
    cum = np.cumsum(weight[order])
    median_note = float(pitch[order][np.searchsorted(cum, cum[-1] / 2)])
    return int(np.round(69 + 12 * np.log2(median_hz / 440.0) - median_note))


def _transposed(score: Score, semitones: float) -> Score:
    return Score([replace(n, pitch=n.pitch + semitones) for n in score.notes], score.tempo, score.source)


def f0_plan(notes: list[Note], n_frames: int, options: SingOptions, rng: np.random.Generator | None = None) -> np.ndarray:
    """Target F0 in Hz for every frame (``frame_period`` ms) where a note sounds, 0 elsewhere: note pitches with
    raised-cosine glides between adjacent notes and delayed, faded-in vibrato on long notes."""
    fp = options.frame_period / 1000.0
    t = np.arange(n_frames) * fp
    midi = np.full(n_frames, np.nan)
    vib = np.zeros(n_frames)
    for i, n in enumerate(notes):
        a, b = int(round(n.start / fp)), min(n_frames, int(round(n.end / fp)))
        midi[a:b] = n.pitch
        if n.duration >= options.vibrato_delay + 0.15 and options.vibrato_cents > 0:
            tt = t[a:b] - n.start - options.vibrato_delay
            fade = np.clip(tt / 0.2, 0, 1) * np.clip((n.end - t[a:b]) / 0.05, 0, 1)
            vib[a:b] = options.vibrato_cents / 100 * fade * np.sin(2 * np.pi * options.vibrato_rate * np.maximum(tt, 0))
    # glides: between notes that touch, move from the old pitch to the new over `portamento` around the onset
    for prev, n in zip(notes, notes[1:]):
        if n.start - prev.end > 0.02 or options.portamento <= 0:
            continue
        g = min(options.portamento, 0.4 * prev.duration, 0.4 * n.duration)
        a, b = int(round((n.start - 0.7 * g) / fp)), int(round((n.start + 0.3 * g) / fp))
        if b - a < 2:
            continue
        w = 0.5 - 0.5 * np.cos(np.pi * np.linspace(0, 1, b - a))
        midi[a:b] = prev.pitch + (n.pitch - prev.pitch) * w
    hz = np.where(np.isnan(midi), 0.0, 440.0 * 2 ** ((np.nan_to_num(midi) + vib - 69) / 12))
    return hz


def _warp(out_len: int, src: tuple[float, float], fp: float, edge: float = 0.03) -> np.ndarray:
    """Source frame positions for ``out_len`` output frames covering the source span ``src`` (seconds): stretched
    in the middle, with ``edge`` seconds at each end kept at natural speed (the transitions into the vowel)."""
    s0, s1 = src[0] / fp, src[1] / fp
    n_src = s1 - s0
    if out_len <= 0:
        return np.zeros(0)
    e = min(edge / fp, 0.25 * n_src)
    if out_len <= n_src or n_src <= 2 * e + 1:
        return s0 + (np.arange(out_len) + 0.5) * n_src / out_len
    x = np.arange(out_len) + 0.5
    return np.interp(x, [0, e, out_len - e, out_len], [s0, s0 + e, s1 - e, s1])


def render(score: Score, options: SingOptions = SingOptions(), info: dict | None = None) -> tuple[np.ndarray, int]:
    """Sing ``score`` in the base synthesiser's voice (no conversion): ``(audio (samples,) float32, sample_rate)``.
    ``info``, when given, receives ``transpose_semitones``: the shift sung (the one chosen for ``"auto"``)."""
    from ..console import PKG_RESOURCES_WARNING, quiet_warnings

    with quiet_warnings(PKG_RESOURCES_WARNING):  # pyworld imports pkg_resources
        pyworld = require("pyworld", "eval", "singing synthesis (WORLD)")
    from ..audio.io import resample

    if options.tempo is not None:
        score = retime(score, options.tempo)
    if options.transpose and options.transpose != "auto":
        score = _transposed(score, float(options.transpose))
    if info is not None and options.transpose != "auto":
        info["transpose_semitones"] = float(options.transpose)
    if not score.notes:
        raise InputError("the score has no notes")
    lyrics_text = " ".join(n.lyric for n in score.notes if n.lyric)
    language = check_language(options.language or detect_language(lyrics_text or "a"))
    base = base_synthesizer(options.base, language)
    if getattr(base, "noise_scale", 0.0) is None:
        # WORLD re-synthesises the syllables anyway: sample VITS without noise so a song renders the same every time
        base = copy.copy(base)
        base.noise_scale = 0.0
    fp_ms = options.frame_period
    fp = fp_ms / 1000.0
    units = _units(score, language)

    # speak the words (one pass for the whole lyric when the synthesiser keeps the words apart) and analyse them
    sr = options.sample_rate
    fft_size = None
    analysed = []  # per source: (log envelope, aperiodicity, voiced flags, typical voiced aperiodicity)
    source_of: list[int] = []
    spoken_f0: list[np.ndarray] = []

    def analyse(audio: np.ndarray, audio_sr: int) -> int:
        nonlocal sr, fft_size
        sr = sr or audio_sr
        x = (resample(audio, audio_sr, sr) if audio_sr != sr else audio).astype(np.float64)
        if fft_size is None:
            fft_size = pyworld.get_cheaptrick_fft_size(sr, 60.0)
        f0, tpos = pyworld.dio(x, sr, f0_floor=60.0, f0_ceil=600.0, frame_period=fp_ms)
        f0 = pyworld.stonemask(x, f0, tpos, sr)
        sp = pyworld.cheaptrick(x, f0, tpos, sr, fft_size=fft_size)
        ap_ = pyworld.d4c(x, f0, tpos, sr, fft_size=fft_size)
        voiced_ap = np.median(ap_[f0 > 0], axis=0) if (f0 > 0).sum() >= 3 else np.full(ap_.shape[1], 0.05)
        spoken_f0.append(f0[f0 > 0])
        analysed.append((np.log(np.maximum(sp, 1e-16)), ap_, f0 > 0, voiced_ap))
        return len(analysed) - 1

    unit_words = [len(u.text.split()) for u in units]
    whole = base.synthesize(" ".join(u.text for u in units), 1.0)
    spoken_words = {p.word for p in whole.phones if p.kind != "pause"}
    whole_src = None
    if spoken_words == set(range(sum(unit_words))):
        src = whole_src = analyse(whole.audio, whole.sample_rate)
        first = np.cumsum([0] + unit_words)
        for u_i, unit in enumerate(units):
            phones = [p for p in whole.phones if first[u_i] <= p.word < first[u_i + 1]]
            _fit_syllables(_phone_syllables(phones), unit.syllables)
            refine_vowels(unit.syllables, _level_db(analysed[src][0]), analysed[src][2], fp)
            source_of.append(src)
    else:  # word by word, each distinct word once
        cache: dict[str, tuple[int, list[Phone]]] = {}
        for unit in units:
            if unit.text not in cache:
                syn = base.synthesize(unit.text, 1.0)
                cache[unit.text] = (analyse(syn.audio, syn.sample_rate), syn.phones)
            src, phones = cache[unit.text]
            _fit_syllables(_phone_syllables(phones), unit.syllables)
            refine_vowels(unit.syllables, _level_db(analysed[src][0]), analysed[src][2], fp)
            source_of.append(src)

    # a vowel left with nothing voiced in the running words (espeak-ng reduces "со" in "высоко" to the hiss of its
    # consonant) would be sung as noise and silence: that syllable is spoken on its own, where its vowel is full
    alone: dict[str, tuple[int, list[tuple[float, float, float, float]]]] = {}
    for u_i, unit in enumerate(units):
        for syl in unit.syllables:
            lyric = syl.notes[0].lyric
            if not lyric or _has_voiced_vowel(syl, analysed[source_of[u_i]][2], fp):
                continue
            if lyric not in alone:
                syn = base.synthesize(lyric, 1.0)
                alone[lyric] = (analyse(syn.audio, syn.sample_rate), _phone_syllables(syn.phones))
            src, spoken = alone[lyric]
            single = [Syllable(syl.notes)]
            _fit_syllables(spoken, single)
            refine_vowels(single, _level_db(analysed[src][0]), analysed[src][2], fp)
            if _has_voiced_vowel(single[0], analysed[src][2], fp):
                syl.onset, syl.vowel, syl.coda, syl.source = single[0].onset, single[0].vowel, single[0].coda, src

    if options.transpose == "auto":  # the key that suits the base synthesiser's own speaking pitch
        voiced_f0 = np.concatenate(spoken_f0)
        shift = key_shift(score, float(np.median(voiced_f0)) if len(voiced_f0) else 0.0)
        score = _transposed(score, shift)
        if info is not None:
            info["transpose_semitones"] = float(shift)

    syllables = [(u_i, s) for u_i, unit in enumerate(units) for s in unit.syllables]
    n_frames = int(math.ceil((score.seconds + 0.3) / fp)) + 1
    bins = fft_size // 2 + 1
    log_sp = np.full((n_frames, bins), np.log(1e-12))
    ap = np.ones((n_frames, bins))
    voiced = np.zeros(n_frames, bool)
    filled = np.zeros(n_frames, bool)
    forced = np.zeros(n_frames, bool)
    src_of = np.full(n_frames, -1)  # which spoken source each sung frame was taken from, and where (in frames)
    src_at = np.zeros(n_frames)

    def place(s_i: int, out_a: float, out_b: float, src: tuple[float, float], stretch_edges: float = 0.0,
              force_voiced: bool = False) -> None:
        a, b = max(0, int(round(out_a / fp))), min(n_frames, int(round(out_b / fp)))
        if b <= a or src[1] <= src[0]:
            return
        lsp, uap, uv, voiced_ap = analysed[s_i]
        pos = _warp(b - a, src, fp, stretch_edges) if stretch_edges else \
            src[0] / fp + (np.arange(b - a) + 0.5) * (src[1] - src[0]) / fp / (b - a)
        pos = np.clip(pos, 0, len(lsp) - 1)
        src_of[a:b], src_at[a:b] = s_i, pos
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, len(lsp) - 1)
        w = (pos - lo)[:, None]
        log_sp[a:b] = (1 - w) * lsp[lo] + w * lsp[hi]
        ap[a:b] = (1 - w) * uap[lo] + w * uap[hi]
        forced[a:b] = force_voiced
        if force_voiced:  # a vowel is sung voiced even where the spoken one was whispered or creaky
            ap[a:b] = np.minimum(ap[a:b], voiced_ap[None, :])
            voiced[a:b] = True
        else:
            voiced[a:b] = uv[np.rint(pos).astype(int)]
        filled[a:b] = True

    vowel_frames = []
    for k, (u_i, syl) in enumerate(syllables):
        prev_end = syllables[k - 1][1].end if k else -1.0
        next_syl = syllables[k + 1][1] if k + 1 < len(syllables) else None
        onset = syl.onset[1] - syl.onset[0]
        coda = syl.coda[1] - syl.coda[0]
        # consonants before the beat: they may take at most half of a previous note or the rest before
        room_before = syl.start - prev_end if prev_end >= 0 else syl.start
        if room_before <= 0.02:
            prev_note = syllables[k - 1][1].notes[-1] if k else None
            room_before = 0.5 * prev_note.duration if prev_note else 0.0
        onset_out = min(onset, max(room_before, 0.0), 0.25)
        end = syl.end
        if next_syl is not None:
            next_onset = next_syl.onset[1] - next_syl.onset[0]
            gap = next_syl.start - syl.end
            if gap <= 0.02:  # the next syllable's consonants eat into this note
                end = syl.end - min(next_onset, 0.5 * syl.notes[-1].duration, 0.25)
        coda_out = min(coda, 0.4 * (end - syl.start), 0.25)
        vowel_end = end - coda_out
        s_i = syl.source if syl.source is not None else source_of[u_i]
        place(s_i, syl.start - onset_out, syl.start, syl.onset)
        place(s_i, syl.start, vowel_end, syl.vowel, stretch_edges=0.03, force_voiced=True)
        place(s_i, vowel_end, end, syl.coda)
        vowel_frames.append((int(round(syl.start / fp)), int(round(vowel_end / fp))))

    if whole_src is not None and hasattr(base, "features") and getattr(base, "in_voice", False):
        _features_from_model(base, whole, src_of == whole_src, src_at, fp, sr, log_sp, ap, voiced, forced)

    f0 = f0_plan(score.notes, n_frames, options)
    f0 = np.where(voiced & (f0 > 0), f0, 0.0)
    # sung frames with no planned pitch (a consonant before the beat) take the next note's pitch
    need = voiced & (f0 <= 0)
    if need.any():
        plan = f0_plan(score.notes, n_frames, replace(options, vibrato_cents=0.0))
        nz = np.flatnonzero(plan > 0)
        if len(nz):
            idx = np.clip(np.searchsorted(nz, np.flatnonzero(need)), 0, len(nz) - 1)
            f0[need] = plan[nz[idx]]

    if options.breaths:
        _add_breaths(score, syllables, log_sp, ap, filled, vowel_frames, fp, options.breath_db)

    sp = np.exp(log_sp)
    y = pyworld.synthesize(f0, sp, ap, sr, fp_ms)
    peak = float(np.max(np.abs(y))) or 1.0
    y = (0.7 * y / peak).astype(np.float32)
    return y[: int(round(score.seconds * sr)) + int(0.3 * sr)], int(sr)


def _features_from_model(base, whole, rows: np.ndarray, at: np.ndarray, fp: float, sr: int, log_sp: np.ndarray,
                         ap: np.ndarray, voiced: np.ndarray, forced: np.ndarray) -> None:
    """Regenerate the sung frames taken from the spoken line with the acoustic model itself, each phone held for
    as long as the song holds it, instead of stretching the spoken frames (a model that speaks in the voice
    draws a long vowel as it learned vowels evolve; a stretched spoken vowel repeats one moment of it)."""
    from .acoustic import decode_features

    config = base.model.config
    rows = np.flatnonzero(rows)
    if len(rows) == 0 or config.sample_rate != sr:
        return
    symbols = [p.symbol for p in whole.phones]
    ends = np.array([p.end for p in whole.phones])
    phone = np.clip(np.searchsorted(ends, at[rows] * fp, side="right"), 0, len(symbols) - 1)
    counts = np.bincount(phone, minlength=len(symbols))
    hop = config.frame_period / 1000.0
    frames = np.where(counts > 0, np.maximum(1, np.round(counts * fp / hop)), 0).astype(np.int64)
    _, sp, model_ap = decode_features(base.features(symbols, frames), config)
    if sp.shape[1] != log_sp.shape[1]:
        return
    starts = np.concatenate([[0], np.cumsum(frames)[:-1]])
    for j in np.flatnonzero(counts):
        out = rows[phone == j]  # the sung frames of phone j, in order
        pos = starts[j] + (np.arange(len(out)) + 0.5) * frames[j] / len(out) - 0.5
        pos = np.clip(pos, starts[j], starts[j] + frames[j] - 1)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, starts[j] + frames[j] - 1)
        w = (pos - lo)[:, None]
        log_sp[out] = (1 - w) * np.log(np.maximum(sp[lo], 1e-16)) + w * np.log(np.maximum(sp[hi], 1e-16))
        new_ap = (1 - w) * model_ap[lo] + w * model_ap[hi]
        ap[out] = np.where(forced[out, None], np.minimum(new_ap, ap[out]), new_ap)


def _add_breaths(score: Score, syllables, log_sp, ap, filled, vowel_frames, fp: float, level_db: float) -> None:
    """Noise breaths in rests of at least 0.3 s before a phrase, shaped like the song's mean vowel envelope."""
    if not vowel_frames:
        return
    rows = np.concatenate([np.arange(a, b) for a, b in vowel_frames if b > a])
    if len(rows) == 0:
        return
    mean = log_sp[rows].mean(axis=0) + level_db / 10 * np.log(10)  # log power
    prev_end = 0.0
    for k, (_, syl) in enumerate(syllables):
        rest = syl.start - prev_end
        prev_end = syl.end
        if rest < 0.3:
            continue
        length = min(0.35, 0.6 * rest)
        a = int(round((syl.start - 0.05 - length) / fp))
        b = int(round((syl.start - 0.05) / fp))
        a = max(a, 0)
        for i in range(a, b):
            if filled[i]:
                break
            x = (i - a) / max(1, b - a)
            shape = np.sin(np.pi * x) ** 0.8  # swell and fade, in amplitude
            log_sp[i] = mean + 2 * np.log(max(shape, 1e-3))
            ap[i] = 1.0


# --- singing in a voice -------------------------------------------------------------------------------------

def sing(voice: Any, score: Score | str | Path, options: SingOptions = SingOptions(), lyrics: str | None = None,
         info: dict | None = None, **kwargs) -> tuple[np.ndarray, int]:
    """Sing ``score`` (a ``Score`` or a MIDI/MusicXML path) in ``voice`` (a loaded ``Voice``, a voice directory,
    or None for the base synthesiser alone). The audio returned is UNMARKED: anything meant for a listener goes
    through the render service (``voicetwin.render`` / ``voicetwin.render_file``). Keyword arguments override ``options`` fields (``tempo=``,
    ``transpose=``, ``language=``...). Returns ``(audio (samples,) float32, sample_rate)``. With a voice, its
    consent record must cover singing (and ``options.production`` when it names productions), else
    ``ConsentError`` before anything is sung. ``info``, when given, receives ``transpose_semitones``: the shift
    sung, the one ``transpose="auto"`` chose (from the voice's median speaking pitch, or the base synthesiser's)."""
    if kwargs:
        options = replace(options, **kwargs)
    voice = admit(voice, "singing", options.production)  # refused before the score is even read
    if not isinstance(score, Score):
        score = read_score(score, lyrics=lyrics, language=options.language)
    elif lyrics is not None:
        score = set_lyrics(score, lyrics, options.language)
    who = cast(voice, "singing", " ".join(n.lyric for n in score.notes if n.lyric), options.language, options.base,
               options.production)
    voice, in_voice = who.voice, who.in_voice
    options = replace(options, language=who.language, base=who.base)
    if voice is not None:
        if options.sample_rate is None and getattr(voice, "config", None) is not None:
            options = replace(options, sample_rate=int(voice.config.sample_rate))
        if options.transpose == "auto" and getattr(voice, "pitch", None) is not None:
            options = replace(options, transpose=float(key_shift(score, voice.pitch.median_hz)))
    audio, sr = render(score, options, info=info)
    if voice is None or in_voice:
        from ..audio.hifigan import revocode

        return revocode(audio, sr, options.vocoder)
    return convert_speech(voice, audio, sr, mode="singing", production=options.production, vocoder=options.vocoder)


__all__ = ["Note", "Score", "SingOptions", "read_score", "read_midi", "read_musicxml", "write_midi", "set_lyrics",
           "retime", "key_shift", "f0_plan", "render", "sing"]
