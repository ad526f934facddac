"""Text for speech and song: normalisation (numbers, dates, abbreviations), stress marks, syllables.

Russian and English are supported. Russian stress is marked as in the festvox-ru transcripts: a ``+`` right before
the stressed vowel (``вол+ос``); a combining acute accent after the vowel (``воло́с``) is turned into that form.

    >>> normalize("В 1961 г. было 12 апреля", "ru")
    'В тысяча девятьсот шестьдесят первом году было двенадцатое апреля'
"""

from __future__ import annotations

import re
import unicodedata

from ..errors import InputError, require

LANGUAGES = ("ru", "en")  # full support: numbers, dates and abbreviations spelt out, syllable rules, default bases
# Every language a base synthesiser speaks: ru and en, then espeak-ng's voices by their ISO 639 code (espeak-ng 1.51);
# a test checks that espeak-ng has a voice for each
SPEECH_LANGUAGES = LANGUAGES + tuple("""
    af am an ar as az ba be bg bn bpy bs ca chr cmn cs cv cy da de el eo es et eu fa fi fr ga gd gn grc gu hak haw he
    hi hr ht hu hy hyw ia id io is it ja jbo ka kk kl kn ko kok ku ky la lb lfn lt ltg lv mi mk ml mr ms mt my nb nci
    ne nl nog om or pa pap piqd pl pt py qdb qu quc qya ro sd shn si sjn sk sl smj sq sr sv sw ta te th tk tn tr tt ug
    uk ur uz vi yue""".split())
STRESS = "+"
RU_VOWELS = "аеёиоуыэюяАЕЁИОУЫЭЮЯ"
EN_VOWELS = "aeiouyAEIOUY"

_RU_MONTHS = ["января", "февраля", "марта", "апреля", "мая", "июня", "июля", "августа", "сентября", "октября",
              "ноября", "декабря"]
_EN_MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December"]

_RU_ABBREVIATIONS = [
    (r"\bи\s*т\.\s*д\.", "и так далее"),
    (r"\bи\s*т\.\s*п\.", "и тому подобное"),
    (r"\bт\.\s*е\.", "то есть"),
    (r"\bт\.\s*к\.", "так как"),
    (r"\bт\.\s*н\.", "так называемый"),
    (r"\bнапр\.", "например"),
    (r"\bсм\.", "смотри"),
    (r"\bул\.", "улица"),
    (r"\bпр\.", "проспект"),
    (r"\bгг\.", "годы"),
    (r"\bдр\.", "другие"),
    (r"\bим\.", "имени"),
    (r"\bтов\.", "товарищ"),
    (r"\bпроф\.", "профессор"),
    (r"\bакад\.", "академик"),
]
_RU_UNITS = {  # unit -> (one, few, many)
    "%": ("процент", "процента", "процентов"),
    "руб.": ("рубль", "рубля", "рублей"),
    "руб": ("рубль", "рубля", "рублей"),
    "₽": ("рубль", "рубля", "рублей"),
    "коп.": ("копейка", "копейки", "копеек"),
    "$": ("доллар", "доллара", "долларов"),
    "тыс.": ("тысяча", "тысячи", "тысяч"),
    "млн": ("миллион", "миллиона", "миллионов"),
    "млрд": ("миллиард", "миллиарда", "миллиардов"),
    "км": ("километр", "километра", "километров"),
    "кг": ("килограмм", "килограмма", "килограммов"),
    "мин.": ("минута", "минуты", "минут"),
    "сек.": ("секунда", "секунды", "секунд"),
}
_RU_FEMININE_UNITS = {"коп.", "тыс.", "мин.", "сек."}
_RU_ORDINAL_SUFFIX = {  # "5-го" -> case and gender of the ordinal
    "й": ("nominative", "m"), "ый": ("nominative", "m"), "ий": ("nominative", "m"), "ой": ("genitive", "f"),
    "го": ("genitive", "m"), "ого": ("genitive", "m"), "му": ("dative", "m"), "ому": ("dative", "m"),
    "м": ("prepositional", "m"), "ом": ("prepositional", "m"), "е": ("nominative", "n"), "ое": ("nominative", "n"),
    "я": ("nominative", "f"), "ая": ("nominative", "f"), "ю": ("accusative", "f"), "ую": ("accusative", "f"),
}

_EN_ABBREVIATIONS = [
    (r"\bMr\.", "Mister"), (r"\bMrs\.", "Missus"), (r"\bMs\.", "Miz"), (r"\bDr\.", "Doctor"),
    (r"\bProf\.", "Professor"), (r"\bJr\.", "Junior"), (r"\bSr\.", "Senior"), (r"\bCapt\.", "Captain"),
    (r"\bLt\.", "Lieutenant"), (r"\bCol\.", "Colonel"), (r"\bGen\.", "General"), (r"\bSgt\.", "Sergeant"),
    (r"\bSt\.(?=\s+[A-Z])", "Saint"), (r"\bSt\.", "Street"), (r"\bAve\.", "Avenue"), (r"\bMt\.", "Mount"),
    (r"\be\.g\.", "for example"), (r"\bi\.e\.", "that is"), (r"\betc\.", "et cetera"), (r"\bvs\.?(?=\s)", "versus"),
    (r"\bNo\.(?=\s*\d)", "number"), (r"\bapprox\.", "approximately"), (r"\bInc\.", "Incorporated"),
    (r"\bLtd\.", "Limited"), (r"\bCo\.", "Company"), (r"\bDept\.", "Department"), (r"\bmin\.", "minutes"),
]
_EN_UNITS = {"%": "percent", "km": "kilometers", "kg": "kilograms", "cm": "centimeters", "mph": "miles per hour"}


# --- stress marks ---------------------------------------------------------------------------

def mark_stress(text: str) -> str:
    """Turn combining acute accents after vowels (``за́мок``) into ``+`` before them (``з+амок``)."""
    text = unicodedata.normalize("NFD", text)
    text = re.sub(rf"([{RU_VOWELS}{EN_VOWELS}])\u0301", rf"{STRESS}\1", text)
    text = text.replace("\u0301", "")
    return unicodedata.normalize("NFC", text)


def strip_stress(text: str) -> str:
    """Remove ``+`` stress marks (and acute accents)."""
    return mark_stress(text).replace(STRESS, "")


def stressed_vowel(word: str, language: str = "ru") -> int | None:
    """Index, among the word's vowels, of the vowel marked with ``+`` (or ``ё``); None when unmarked."""
    vowels = RU_VOWELS if language == "ru" else EN_VOWELS
    count = 0
    marked = False
    for ch in mark_stress(word):
        if ch == STRESS:
            marked = True
        elif ch in vowels:
            if marked:
                return count
            count += 1
    if language == "ru":
        plain = strip_stress(word).lower()
        vowel_letters = [c for c in plain if c in RU_VOWELS]
        if "ё" in vowel_letters:
            return vowel_letters.index("ё")
    return None


# --- language and sentences -----------------------------------------------------------------

def detect_language(text: str) -> str:
    """``'ru'`` when most letters are Cyrillic, else ``'en'``."""
    cyrillic = sum(1 for c in text if "\u0400" <= c <= "\u04ff")
    latin = sum(1 for c in text if c.isascii() and c.isalpha())
    return "ru" if cyrillic > latin else "en"


def check_language(language: str, option: str = "--language") -> str:
    """The bare language code of ``language`` (``en-US`` -> ``en``), checked against ``SPEECH_LANGUAGES``.

    Raises ``InputError`` naming ``option`` (the CLI flag the code came from) and the accepted codes."""
    code = str(language).strip().lower().replace("_", "-").split("-")[0]
    if code not in SPEECH_LANGUAGES:
        others = ", ".join(c for c in SPEECH_LANGUAGES if c not in LANGUAGES)
        raise InputError(f"{option} {language!r} is not a language code voicetwin knows",
                         fix=f"use {' or '.join(LANGUAGES)}, where numbers and dates are spelt out, or another "
                             f"language espeak-ng speaks: {others}")
    return code


def split_sentences(text: str) -> list[str]:
    """Split at sentence-final punctuation followed by a space; keeps the punctuation."""
    parts = re.split(r"(?<=[.!?…])\s+", text.strip())
    return [p.strip() for p in parts if p.strip()]


# --- numbers --------------------------------------------------------------------------------

def _n2w():
    return require("num2words", "tts", "reading numbers aloud").num2words


def _ru_plural(n: int, forms: tuple[str, str, str]) -> str:
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return forms[0]
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return forms[1]
    return forms[2]


def _ru_number(value: str, **kwargs) -> str:
    n2w = _n2w()
    value = value.replace(" ", "").replace("\u00a0", "")
    if "," in value or "." in value:
        return n2w(float(value.replace(",", ".")), lang="ru")
    return n2w(int(value), lang="ru", **kwargs)


def _ru_ordinal(n: int, case: str = "nominative", gender: str = "m") -> str:
    return _n2w()(n, lang="ru", to="ordinal", case=case, gender=gender)


def _normalize_ru(text: str) -> str:
    n2w = _n2w()
    for pattern, repl in _RU_ABBREVIATIONS:
        text = re.sub(pattern, repl, text, flags=re.IGNORECASE)

    def date(m: re.Match) -> str:
        day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if not (1 <= day <= 31 and 1 <= month <= 12):
            return m.group(0)
        return (f"{_ru_ordinal(day, 'nominative', 'n')} {_RU_MONTHS[month - 1]} "
                f"{_ru_ordinal(year, 'genitive')} года")

    text = re.sub(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b", date, text)
    text = re.sub(
        rf"\b(\d{{1,2}})\s+({'|'.join(_RU_MONTHS)})",
        lambda m: f"{_ru_ordinal(int(m.group(1)), 'nominative', 'n')} {m.group(2)}",
        text,
        flags=re.IGNORECASE,
    )

    def year(m: re.Match) -> str:
        prep, number, word = m.group(1) or "", int(m.group(2)), m.group(3).lower()
        if word.startswith("г."):
            case = "prepositional" if prep.strip().lower() in ("в", "во") else "genitive"
            noun = "году" if case == "prepositional" else "года"
        else:
            case = {"году": "prepositional", "года": "genitive", "годом": "instrumental", "годах": "prepositional",
                    "годы": "nominative", "годов": "genitive"}.get(word, "nominative")
            noun = word
        plural = noun in ("годах", "годы", "годов")
        return f"{prep}{_n2w()(number, lang='ru', to='ordinal', case=case, plural=plural)} {noun}"

    text = re.sub(r"(\b[вВ]о?\s+)?\b(\d{3,4})\s*(г\.|год[а-я]*)", year, text)

    def ordinal(m: re.Match) -> str:
        case, gender = _RU_ORDINAL_SUFFIX.get(m.group(2), ("nominative", "m"))
        return _ru_ordinal(int(m.group(1)), case, gender)

    text = re.sub(r"\b(\d+)-(ого|ому|ый|ий|ой|ом|ое|ая|ую|го|му|й|м|е|я|ю)\b", ordinal, text)
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b",
                  lambda m: f"{n2w(int(m.group(1)), lang='ru')} {n2w(int(m.group(2)), lang='ru') if int(m.group(2)) else 'ноль ноль'}",
                  text)

    def unit(m: re.Match) -> str:
        number, sym = m.group(1), m.group(2)
        gender = "f" if sym in _RU_FEMININE_UNITS else "m"
        spoken = _ru_number(number, gender=gender)
        if "," in number or "." in number:
            return f"{spoken} {_RU_UNITS[sym][1]}"
        return f"{spoken} {_ru_plural(int(number.replace(' ', '')), _RU_UNITS[sym])}"

    text = re.sub(r"\$\s*(\d+(?:[.,]\d+)?)", r"\1 $", text)
    units = "|".join(re.escape(u) for u in sorted(_RU_UNITS, key=len, reverse=True))
    text = re.sub(rf"(\d+(?:[.,]\d+)?)\s*({units})(?![а-яА-Я])", unit, text)
    text = re.sub(r"\d+(?:,\d+)?", lambda m: _ru_number(m.group(0)), text)
    text = re.sub(r"\s+-\s+", ", ", text)
    return text


def _normalize_en(text: str) -> str:
    n2w = _n2w()
    for pattern, repl in _EN_ABBREVIATIONS:
        text = re.sub(pattern, repl, text)
    month_names = "|".join(_EN_MONTHS)

    def iso_date(m: re.Match) -> str:
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return m.group(0)
        return f"{_EN_MONTHS[month - 1]} {n2w(day, lang='en', to='ordinal')}, {n2w(year, lang='en', to='year')}"

    def us_date(m: re.Match) -> str:
        month, day, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
        if not (1 <= month <= 12 and 1 <= day <= 31):
            return m.group(0)
        return f"{_EN_MONTHS[month - 1]} {n2w(day, lang='en', to='ordinal')}, {n2w(year, lang='en', to='year')}"

    text = re.sub(r"\b(\d{4})-(\d{2})-(\d{2})\b", iso_date, text)
    text = re.sub(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b", us_date, text)
    text = re.sub(rf"\b({month_names})\s+(\d{{1,2}})(?:st|nd|rd|th)?\b",
                  lambda m: f"{m.group(1)} {n2w(int(m.group(2)), lang='en', to='ordinal')}", text)
    text = re.sub(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({month_names})\b",
                  lambda m: f"the {n2w(int(m.group(1)), lang='en', to='ordinal')} of {m.group(2)}", text)
    text = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: n2w(int(m.group(1)), lang="en", to="ordinal"), text)

    def money(m: re.Match) -> str:
        dollars = int(m.group(1).replace(",", ""))
        cents = int((m.group(2) or "0").ljust(2, "0")[:2])
        spoken = f"{n2w(dollars, lang='en')} dollar{'s' if dollars != 1 else ''}"
        if cents:
            spoken += f" and {n2w(cents, lang='en')} cent{'s' if cents != 1 else ''}"
        return spoken

    text = re.sub(r"\$(\d[\d,]*)(?:\.(\d{1,2}))?", money, text)

    def clock(m: re.Match) -> str:
        hours, minutes = int(m.group(1)), int(m.group(2))
        if minutes == 0:
            spoken = f"{n2w(hours, lang='en')} o'clock"
        elif minutes < 10:
            spoken = f"{n2w(hours, lang='en')} oh {n2w(minutes, lang='en')}"
        else:
            spoken = f"{n2w(hours, lang='en')} {n2w(minutes, lang='en')}"
        suffix = m.group(3)
        if suffix:
            spoken += " " + " ".join(suffix.replace(".", "").upper())
        return spoken

    text = re.sub(r"\b(\d{1,2}):(\d{2})\s*([ap]\.?m\.?)?(?![\w])", clock, text, flags=re.IGNORECASE)
    for sym, word in _EN_UNITS.items():
        text = re.sub(rf"(\d)\s*{re.escape(sym)}(?![A-Za-z])", rf"\1 {word}", text)
    text = re.sub(r"(?<![\d,.])(1[1-9]\d\d|20\d\d)(?!\d|[,.]\d|\s*(?:percent|dollars))",
                  lambda m: n2w(int(m.group(1)), lang="en", to="year"), text)

    def number(m: re.Match) -> str:
        raw = m.group(0).replace(",", "")
        if "." in raw:
            whole, frac = raw.split(".", 1)
            return f"{n2w(int(whole), lang='en')} point " + " ".join(n2w(int(d), lang="en") for d in frac)
        return n2w(int(raw), lang="en")

    text = re.sub(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?", number, text)
    text = re.sub(r"\s+-\s+", ", ", text)
    return text


def normalize(text: str, language: str) -> str:
    """Spell out numbers, dates, times, money and common abbreviations; keep ``+`` stress marks.

    ``language`` is ``'ru'`` or ``'en'``; other languages only get whitespace and stress-mark clean-up (the base
    synthesiser reads their numbers itself).
    """
    if not isinstance(text, str):
        raise InputError(f"text must be a string, got {type(text).__name__}")
    text = mark_stress(text)
    text = re.sub(r"\s+", " ", text).strip()
    lang = check_language(language)
    if lang == "ru":
        text = _normalize_ru(text)
    elif lang == "en":
        text = _normalize_en(text)
    return re.sub(r"\s+", " ", text).strip()


# --- syllables ------------------------------------------------------------------------------

_EN_ONSETS = frozenset(
    "b c d f g h j k l m n p q r s t v w x y z th sh ch ph wh gh qu bl br cl cr dr fl fr gl gr pl pr sc sk sl sm sn "
    "sp st sw tr tw dw kl tl dl zl thr shr str spr spl scr squ sch".split()
)
_EN_CODA_DIGRAPHS = ("ck", "ng")


def syllabify(word: str, language: str) -> list[str]:
    """Split one word into written syllables (one vowel nucleus each); ``+`` marks travel with their vowel.

    A word written with hyphens (``twin-kle``) is split at the hyphens as given.
    """
    if "-" in word.strip("-"):
        return [part for part in word.split("-") if part]
    lang = check_language(language)
    letters = word
    if lang == "ru":
        return _syllabify_ru(letters)
    return _syllabify_en(letters)


def _split_at(word: str, nuclei: list[tuple[int, int]], onset_len) -> list[str]:
    if len(nuclei) <= 1:
        return [word] if word else []
    cuts = []
    for (s0, e0), (s1, _) in zip(nuclei, nuclei[1:]):
        cluster = word[e0:s1]
        cuts.append(s1 - onset_len(cluster))
    parts, start = [], 0
    for cut in cuts:
        parts.append(word[start:cut])
        start = cut
    parts.append(word[start:])
    return [p for p in parts if p]


def _syllabify_ru(word: str) -> list[str]:
    nuclei = []
    i = 0
    while i < len(word):
        ch = word[i]
        if ch in RU_VOWELS:
            start = i - 1 if i > 0 and word[i - 1] == STRESS else i
            nuclei.append((start, i + 1))
        i += 1

    def onset_len(cluster: str) -> int:
        stress = 1 if cluster.endswith(STRESS) else 0
        core = cluster[:-1] if stress else cluster
        if not core:
            return stress
        if len(core) == 1:
            return stress if core in "йЙ" else 1 + stress
        # й, ь and ъ stay with the previous syllable; of a longer cluster one consonant closes the previous syllable
        keep = 1
        while keep < len(core) and core[keep] in "ьъЬЪ":
            keep += 1
        return len(core) - keep + stress

    return _split_at(word, nuclei, onset_len)


def _syllabify_en(word: str) -> list[str]:
    lower = word.lower()
    nuclei = []
    i = 0
    while i < len(lower):
        ch = lower[i]
        is_vowel = ch in "aeiou" or (ch == "y" and i > 0 and lower[i - 1] not in "aeiou")
        if is_vowel:
            j = i + 1
            while j < len(lower) and lower[j] in "aeiouy" and not (lower[j] == "y" and j + 1 < len(lower)
                                                                    and lower[j + 1] in "aeiou"):
                j += 1
            nuclei.append((i, j))
            i = j
        else:
            i += 1
    # silent final e ("make"), but a syllabic "-le" after a consonant ("little") is its own syllable
    if len(nuclei) > 1 and lower.endswith("e") and nuclei[-1] == (len(lower) - 1, len(lower)):
        if not (lower.endswith("le") and len(lower) > 2 and lower[-3] not in "aeiouy"):
            nuclei.pop()
    if len(nuclei) > 1 and lower.endswith(("es", "ed")) and nuclei[-1][0] == len(lower) - 2 \
            and lower[-3:-2] not in ("t", "d", "s", "z", "c", "g", "x"):
        nuclei.pop()

    def onset_len(cluster: str) -> int:
        # the longest legal onset (at most 3 letters) goes to the next syllable, "ck" and "ng" close the previous
        c = cluster.lower()
        if len(c) <= 1:
            return len(c)
        start = 2 if c[:2] in _EN_CODA_DIGRAPHS else 1
        for n in range(min(3, len(c) - start), 0, -1):
            if c[-n:] in _EN_ONSETS:
                return n
        return 0

    return _split_at(word, nuclei, onset_len)


def words(text: str) -> list[str]:
    """Words of a lyric or line: letters, digits, ``+``, ``'`` and hyphens inside words; other punctuation dropped."""
    return re.findall(r"[\w+'’]+(?:-[\w+'’]+)*-?|_", text)

normalize_text = normalize
