"""Text normalisation, stress marks and syllables (Russian and English)."""

from __future__ import annotations

import pytest

from voicetwin.errors import InputError
from voicetwin.text.normalization import detect_language, mark_stress, normalize, split_sentences, stressed_vowel, strip_stress, \
    syllabify, words


def test_russian_numbers_dates_and_abbreviations():
    out = normalize("В 1961 г. было 12 апреля, т.е. весна.", "ru")
    assert out == "В тысяча девятьсот шестьдесят первом году было двенадцатое апреля, то есть весна."
    out = normalize("Родился 25.12.1945, цена 21 руб., рост 5%, 3,5 км, 2-й раз, в 10:30.", "ru")
    assert "двадцать пятое декабря тысяча девятьсот сорок пятого года" in out
    assert "двадцать один рубль" in out and "пять процентов" in out
    assert "три целых пять десятых километра" in out and "второй раз" in out and "десять тридцать" in out
    assert not any(ch.isdigit() for ch in out)


def test_russian_plural_agreement():
    assert normalize("2 руб.", "ru") == "два рубля"
    assert normalize("11 руб.", "ru") == "одиннадцать рублей"
    assert normalize("в 1812 году", "ru") == "в тысяча восемьсот двенадцатом году"


def test_english_numbers_dates_money_and_abbreviations():
    out = normalize("Dr. Smith paid $5.50 on 2020-12-25 at 10:05 pm, i.e. 15% more than in 1999.", "en")
    assert out == ("Doctor Smith paid five dollars and fifty cents on December twenty-fifth, twenty twenty at ten oh "
                   "five P M, that is fifteen percent more than in nineteen ninety-nine.")
    assert normalize("On March 3rd St. John met Mr. Brown with 1,250 people.", "en") == (
        "On March third Saint John met Mister Brown with one thousand, two hundred and fifty people.")
    assert normalize("3.14", "en") == "three point one four"


def test_stress_marks_are_kept_and_read():
    assert "вол+ос" in normalize("прядь волнистых вол+ос", "ru")
    assert mark_stress("за́мок") == "з+амок"
    assert strip_stress("з+амок") == "замок"
    assert stressed_vowel("вол+ос") == 1
    assert stressed_vowel("з+амок") == 0
    assert stressed_vowel("ёлка") == 0
    assert stressed_vowel("замок") is None


def test_festvox_transcripts_normalise_to_themselves():
    from pathlib import Path

    data = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits/etc/txt.done.data")
    lines = data.read_text(encoding="utf-8").splitlines()[:40]
    texts = [line.split('"')[1] for line in lines]
    import re

    for text in texts:  # no digits there: normalisation keeps every word and stress mark
        assert re.findall(r"[\w+]+", normalize(text, "ru")) == re.findall(r"[\w+]+", text)


def test_syllables_russian_and_english():
    assert syllabify("молоко", "ru") == ["мо", "ло", "ко"]
    assert syllabify("вол+ос", "ru") == ["во", "л+ос"]
    assert syllabify("майка", "ru") == ["май", "ка"]
    assert syllabify("twinkle", "en") == ["twin", "kle"]
    assert syllabify("little", "en") == ["lit", "tle"]
    assert syllabify("birthday", "en") == ["birth", "day"]
    assert syllabify("make", "en") == ["make"]
    assert syllabify("won-der", "en") == ["won", "der"]


def test_language_sentences_and_words():
    assert detect_language("Привет, мир") == "ru"
    assert detect_language("Hello world") == "en"
    assert split_sentences("One. Two! Three?") == ["One.", "Two!", "Three?"]
    assert words("Twin-kle, twin-kle _ star! вол+ос") == ["Twin-kle", "twin-kle", "_", "star", "вол+ос"]


def test_bad_input():
    with pytest.raises(InputError):
        normalize(None, "en")  # type: ignore[arg-type]
