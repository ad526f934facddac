"""Base synthesisers, phone timings and duration fitting (offline: espeak-ng, festival, the piper joe voice)."""

from __future__ import annotations

import numpy as np
import pytest

from voicetwin.errors import ConfigError, InputError
from voicetwin.synth.speak import SpeakOptions, base_synthesizer, fit_duration, speak, synthesize, trim_edges

RU = "Она завела прядь волнистых вол+ос за ухо. В 1961 г. было 12 апреля."
EN = "Doctor Smith paid five dollars. Twinkle, twinkle, little star!"


def test_espeak_russian_phones_cover_the_audio():
    syn = synthesize(RU, SpeakOptions(language="ru"))
    assert syn.sample_rate == 22050 and 3.0 < syn.seconds < 12.0
    vowels = [p for p in syn.phones if p.kind == "vowel"]
    assert len(vowels) > 30  # the numbers were spelled out and spoken
    assert all(0 <= p.start < p.end <= syn.seconds + 1e-6 for p in syn.phones)
    assert max(p.word for p in syn.phones) >= 15


def test_espeak_gives_the_same_samples_whatever_was_spoken_before():
    base = base_synthesizer("espeak", "en")
    first = base.synthesize("Twinkle, twinkle, little star.").audio
    base.synthesize("Something else entirely, and rather longer than the first line.")
    again = base.synthesize("Twinkle, twinkle, little star.").audio
    assert first.shape == again.shape and np.array_equal(first, again)


def test_espeak_respects_stress_marks():
    base = base_synthesizer("espeak", "ru")
    assert base._stressed("з+амок") == "[[z'amVk]]"
    assert base._stressed("зам+ок") == "[[zam'ok]]"
    a = base.synthesize("з+амок").audio
    b = base.synthesize("зам+ок").audio
    assert len(a) != len(b) or not np.allclose(a, b)


@pytest.mark.parametrize("language,text", [("ru", RU), ("en", "Twinkle, twinkle, little star.")])
def test_duration_fits_within_three_percent(language, text):
    natural = synthesize(text, SpeakOptions(language=language)).seconds
    for factor in (0.8, 1.25):
        target = natural * factor
        got = synthesize(text, SpeakOptions(language=language, duration=target, tolerance=0.02)).seconds
        assert abs(got / target - 1) <= 0.03, (factor, got, target)


def test_rate_changes_pace_in_synthesis():
    slow = synthesize(RU, SpeakOptions(language="ru", rate=0.8)).seconds
    fast = synthesize(RU, SpeakOptions(language="ru", rate=1.25)).seconds
    assert slow > 1.3 * fast


def test_piper_joe_has_phone_alignments():
    syn = synthesize(EN, SpeakOptions(language="en"))
    assert syn.sample_rate == 22050
    words = {p.word for p in syn.phones if p.kind != "pause"}
    assert words == set(range(len(EN.split())))
    assert all(p.end <= syn.seconds + 1e-6 for p in syn.phones)


def test_festival_russian_voice_and_its_limits():
    syn = synthesize("Она завела прядь волнистых вол+ос за ухо.", SpeakOptions(base="festival", language="ru"))
    assert 1.5 < syn.seconds < 6 and any(p.kind == "vowel" for p in syn.phones)
    with pytest.raises(ConfigError, match="unit-selection"):
        synthesize("Она завела прядь.", SpeakOptions(base="festival", language="ru", rate=1.2))


def test_impossible_duration_and_bad_options():
    base = base_synthesizer("espeak", "ru")
    with pytest.raises(InputError, match="cannot say"):
        fit_duration(base, "Она завела прядь волнистых волос за ухо.", 0.2)
    with pytest.raises(ConfigError):
        SpeakOptions(duration=-1)
    with pytest.raises(ConfigError):
        SpeakOptions(duration=2.0, rate=1.5)
    with pytest.raises(ConfigError, match="unknown base"):
        base_synthesizer("sapi", "en")
    with pytest.raises(InputError):
        synthesize("   ", SpeakOptions(language="en"))


def test_speak_without_voice_is_the_base_voice(tmp_path):
    audio, sr = speak(None, "Привет, мир.", language="ru", duration=1.5)
    assert abs(len(audio) / sr - 1.5) <= 0.045


def test_trim_edges_keeps_margin():
    sr = 16000
    x = np.zeros(sr * 2, np.float32)
    x[sr // 2: sr] = 0.5 * np.sin(np.arange(sr // 2) * 0.1)
    y = trim_edges(x, sr)
    assert abs(len(y) / sr - 0.6) < 0.03


def test_cli_speak(tmp_path):
    from voicetwin.audio.io import load_audio
    from voicetwin.cli import main

    out = tmp_path / "line.wav"
    assert main(["speak", "--text", "Привет, мир! Это тест.", "--language", "ru", "--duration", "2.0",
                 "-o", str(out)]) == 0
    audio, sr = load_audio(out)
    assert abs(len(audio) / sr - 2.0) <= 0.06
    # every generated file is watermarked and has a provenance sidecar
    import json

    from voicetwin.production.watermark import detect

    found = detect(audio, sr)
    assert found.detected and found.crc_ok
    sidecar = json.loads((tmp_path / "line.wav.provenance.json").read_text())
    assert sidecar["extra"]["text"].startswith("Привет") and sidecar["extra"]["watermark"]["verified"]
    assert main(["speak", "--text-file", str(tmp_path / "missing.txt"), "-o", str(out)]) == 2
