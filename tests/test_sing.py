"""Scores, lyrics on notes and singing synthesis: the sung pitch and onsets are checked against the score."""

from __future__ import annotations

import numpy as np
import pytest

from voicetwin.errors import InputError
from voicetwin.errors import ConfigError
from voicetwin.synth.sing import (Note, Score, SingOptions, f0_plan, key_shift, read_score, render, set_lyrics,
                            write_midi)

MELODY = [(60, 1), (60, 1), (67, 1), (67, 1), (69, 1), (69, 1), (67, 2)]


def _score(beat: float = 0.5) -> Score:
    notes, t = [], 0.0
    for pitch, beats in MELODY:
        notes.append(Note(t, beats * beat * 0.95, float(pitch)))
        t += beats * beat
    return Score(notes, 60 / beat)


def test_lyrics_on_notes_with_melisma():
    score = set_lyrics(_score(), "Twin-kle twin-kle lit-tle _", "en")
    assert [n.lyric for n in score.notes] == ["Twin", "kle", "twin", "kle", "lit", "tle", None]
    assert [n.word_end for n in score.notes[:2]] == [False, True]
    score = set_lyrics(_score(), "мо-ло-ко в ле-су", "ru")
    assert [n.lyric for n in score.notes][:5] == ["мо", "ло", "ко", "в ле", "су"]
    with pytest.raises(InputError, match="syllables"):
        set_lyrics(_score(), "one two three four five six seven eight", "en")


def test_midi_round_trip_with_lyric_events(tmp_path):
    score = set_lyrics(_score(), "Twin-kle twin-kle lit-tle star", "en")
    path = write_midi(score, tmp_path / "song.mid")
    back = read_score(path)
    assert [n.lyric for n in back.notes] == [n.lyric for n in score.notes]
    assert [n.pitch for n in back.notes] == [n.pitch for n in score.notes]
    assert np.allclose([n.start for n in back.notes], [n.start for n in score.notes], atol=2e-3)
    slower = read_score(path, tempo=60, transpose=2)
    assert abs(slower.notes[1].start - 2 * score.notes[1].start) < 1e-3 and slower.notes[0].pitch == 62
    with pytest.raises(InputError, match="lyrics"):
        read_score(write_midi(_score(), tmp_path / "nolyrics.mid"))
    russian = set_lyrics(_score(), "мо-ло-ко в ле-су", "ru")
    assert [n.lyric for n in read_score(write_midi(russian, tmp_path / "ru.mid")).notes] == [n.lyric for n in russian.notes]


def test_musicxml_with_music21(tmp_path):
    music21 = pytest.importorskip("music21")
    s = music21.stream.Stream()
    s.append(music21.tempo.MetronomeMark(number=120))
    for pitch, text, syllabic in [("C4", "Twin", "begin"), ("C4", "kle", "end"), ("G4", "star", "single")]:
        n = music21.note.Note(pitch, quarterLength=1)
        n.lyrics.append(music21.note.Lyric(text=text, syllabic=syllabic))
        s.append(n)
    tied = music21.note.Note("G4", quarterLength=1)
    tied.tie = music21.tie.Tie("stop")
    s[-1].tie = music21.tie.Tie("start")
    s.append(tied)
    path = tmp_path / "song.musicxml"
    s.write("musicxml", fp=str(path))
    score = read_score(path)
    assert [n.lyric for n in score.notes] == ["Twin", "kle", "star"]
    assert [n.word_end for n in score.notes] == [False, True, True]
    assert abs(score.notes[2].duration - 1.0) < 1e-6  # tied into one note of two beats at 120 BPM


def test_f0_plan_follows_the_score_with_vibrato_on_long_notes():
    score = _score()
    opts = SingOptions(frame_period=5.0)
    f0 = f0_plan(score.notes, int(score.seconds / 0.005) + 10, opts)
    mid_first = f0[int(0.2 / 0.005)]
    assert abs(1200 * np.log2(mid_first / 261.63)) < 1
    long_note = score.notes[-1]
    seg = f0[int((long_note.start + 0.45) / 0.005): int((long_note.end - 0.06) / 0.005)]
    cents = 1200 * np.log2(seg / 392.0)
    assert 20 < np.abs(cents).max() <= 31  # vibrato of +-30 cents
    assert f0[int((score.notes[0].end + 0.01) / 0.005)] == 0  # rest between detached notes


@pytest.mark.parametrize("language,lyrics", [("ru", "мо-ло-ко в ле-су _"), ("en", "Twin-kle twin-kle lit-tle star")])
def test_sung_pitch_and_onsets_match_the_score(language, lyrics):
    import pyworld

    score = set_lyrics(_score(), lyrics, language)
    audio, sr = render(score, SingOptions(language=language, sample_rate=16000))
    assert sr == 16000 and abs(len(audio) / sr - (score.seconds + 0.3)) < 0.05
    f0, _ = pyworld.harvest(audio.astype(np.float64), sr, f0_floor=80, f0_ceil=800, frame_period=5.0)
    plan = f0_plan(score.notes, len(f0), SingOptions(vibrato_cents=0.0, portamento=0.0))
    both = (f0 > 0) & (plan > 0)
    assert both.sum() > 0.6 * (plan > 0).sum()  # the notes are sung (voiced)
    cents = np.abs(1200 * np.log2(f0[both] / plan[both]))
    assert np.median(cents) < 20
    # vowels land on the beat: the sung pitch arrives at G4 (and stays within 50 cents for 30 ms) within 30 ms of
    # the leap's onset; a quiet voiced transition in the consonant before the beat is not the note
    onset = score.notes[2].start
    near = (f0 > 0) & (np.abs(1200 * np.log2(np.maximum(f0, 1e-9) / 392.0)) < 50)
    frames = np.arange(int((onset - 0.15) / 0.005), int((onset + 0.2) / 0.005))
    hit = [i for i in frames if near[i:i + 6].all()]
    assert hit and abs(hit[0] * 0.005 - onset) < 0.03


def test_key_shift_moves_the_median_note_to_the_voice():
    score = _score()  # C4 C4 G4 G4 A4 A4 G4(long): median note G4, 392 Hz
    assert key_shift(score, 392.0) == 0
    assert key_shift(score, 196.0) == -12
    assert key_shift(score, 131.0) == -19  # C3 (130.8 Hz) is 19 semitones under G4
    with pytest.raises(ConfigError, match="auto"):
        SingOptions(transpose="up")


def test_auto_transpose_sings_where_the_base_speaks():
    import pyworld

    score = set_lyrics(_score(), "мо-ло-ко в ле-су _", "ru")
    audio, sr = render(score, SingOptions(language="ru", base="espeak", sample_rate=16000, transpose="auto"))
    from voicetwin.synth.speak import base_synthesizer

    spoken = base_synthesizer("espeak", "ru").synthesize("молоко в лесу", 1.0)
    f0s, _ = pyworld.harvest(spoken.audio.astype(np.float64), spoken.sample_rate, f0_floor=60, f0_ceil=600)
    f0, _ = pyworld.harvest(audio.astype(np.float64), sr, f0_floor=60, f0_ceil=800, frame_period=5.0)
    sung_median = np.median(f0[f0 > 0])
    # the sung median lies within a few semitones of the speaking median (not at G4, where the score was written)
    assert abs(12 * np.log2(sung_median / np.median(f0s[f0s > 0]))) < 3
    assert abs(12 * np.log2(sung_median / 392.0)) > 4


def test_breath_in_a_rest():
    notes = [Note(0.2, 0.5, 60.0, "la"), Note(1.5, 0.5, 62.0, "la")]
    audio, sr = render(Score(notes), SingOptions(language="en", base="espeak", sample_rate=16000))
    rest = audio[int(1.1 * sr): int(1.3 * sr)]
    silence = audio[int(0.85 * sr): int(0.95 * sr)]
    assert np.sqrt(np.mean(rest**2)) > 3 * np.sqrt(np.mean(silence**2)) + 1e-5
    without, _ = render(Score(notes), SingOptions(language="en", base="espeak", sample_rate=16000, breaths=False))
    assert np.sqrt(np.mean(without[int(1.0 * sr): int(1.3 * sr)] ** 2)) < 1e-3


def test_vowel_spans_follow_the_sound_not_the_reported_phone_times():
    from voicetwin.synth.sing import refine_vowels, Syllable

    fp = 0.005
    # a source: consonant 0-50 ms (quiet, voiced), vowel 50-150 ms (loud), stop closure 150-200 ms (silence)
    level = np.concatenate([np.full(10, -12.0), np.full(20, 0.0), np.full(10, -120.0), np.full(4, -20.0)])
    voiced = np.concatenate([np.ones(30, bool), np.zeros(14, bool)])
    voiced[20:30] = True
    level[6:10] = -2.0  # the vowel starts 20 ms before the reported vowel (inside the reported consonant)
    syl = Syllable([Note(0.0, 1.0, 60.0, "ta")], onset=(0.0, 0.05), vowel=(0.05, 0.2), coda=(0.2, 0.22))
    refine_vowels([syl], level, voiced, fp)
    assert syl.onset == (0.0, pytest.approx(0.03)) and syl.vowel == (pytest.approx(0.03), pytest.approx(0.15))
    assert syl.coda == (pytest.approx(0.15), 0.22)  # the closure goes to the coda, not into the stretched vowel
    held = Syllable([Note(1.0, 1.0, 62.0)], onset=(0.15, 0.15), vowel=(0.05, 0.15), coda=(0.15, 0.15))
    refine_vowels([held], level, voiced, fp)  # a held syllable reuses the previous vowel: left alone
    assert held.vowel == (0.05, 0.15)


@pytest.mark.parametrize("lyrics,note", [("Ве-чер _", 0), ("вы-со-ко", 1)])
def test_a_sustained_note_has_no_silent_gap(lyrics, note):
    # espeak-ng reports the closure of "ч" inside the vowel of "Ве" (stretched over a note it was a 0.3 s silence)
    # and leaves nothing voiced of the vowel of "со" in "высоко" (the note was a hiss, then silence)
    notes = [Note(0.83 * i, 0.8, p) for i, p in enumerate([62.0, 69.0, 67.0])]
    score = set_lyrics(Score(notes, 72.0), lyrics, "ru")
    audio, sr = render(score, SingOptions(language="ru", sample_rate=16000))
    hop, start = int(0.02 * sr), notes[note].start
    level = [20 * np.log10(np.sqrt(np.mean(audio[i:i + hop] ** 2)) + 1e-9)
             for i in range(int((start + 0.1) * sr), int((start + 0.7) * sr), hop)]
    assert min(level) > max(level) - 20
