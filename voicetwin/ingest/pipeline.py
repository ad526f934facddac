"""Archive ingest: turn long, messy recordings into a clean dataset of one person's voice.

For each source (any audio file or a video's audio track):

1. decode; analyse at 16 kHz on a 32 ms frame grid (silero VAD probability, level);
2. find speech phrases (separated by pauses) and non-speech sound (music, noise);
3. embed phrases with the speaker encoder; inside long phrases, follow the speaker with sliding windows and
   split where it changes;
4. decide who is the target: the profile enrolled from reference clips, or without references the dominant
   speaker (the largest cluster of phrase embeddings);
5. merge consecutive phrases of the same decision into 1-15 s clips cut at pauses;
6. measure each clip (estimated SNR, clipping, bandwidth, loudness) and keep it or reject it with a reason.

Kept clips are written at the source's sample rate (or ``IngestOptions.sample_rate``) to ``DATASET/clips``;
every candidate clip, kept or not, is a line of ``manifest.jsonl``; ``report.json`` sums it up. Each source is
finished with a completion marker in ``DATASET/.ingest``, so a re-run skips finished sources.

    report = ingest(["interview.mp4"], "data/grandpa", references=["ref1.wav", "ref2.wav"])
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..audio.io import ensure_audible, load_audio, loudness_lufs, resample
from ..errors import ConfigError, EmptyAudioError, InputError, InputNotFoundError, require
from ..files import expand_media, write_json
from ..manifest import Clip, write_manifest
from ..text.normalization import check_language

SR = 16_000  # analysis rate
HOP = 512  # 32 ms frames: the silero VAD grid
FPS = SR / HOP
STATE_DIR = ".ingest"
STATE_VERSION = 2  # bump when what the cache holds changes

KEPT = "kept"
TOO_SHORT = "too_short"
MUSIC = "music"
NOISE = "noise"
OTHER_SPEAKER = "other_speaker"
CLIPPED = "clipped"
LOW_SNR = "low_snr"
NARROWBAND = "narrowband"
REASONS = (KEPT, TOO_SHORT, MUSIC, NOISE, OTHER_SPEAKER, CLIPPED, LOW_SNR, NARROWBAND)


@dataclass(frozen=True)
class IngestOptions:
    """Settings of ``ingest``. Times in seconds, levels in dB, similarity as cosine."""

    language: str | None = None  # language code written to the manifest and given to the recogniser
    denoise: bool = False  # DeepFilterNet3 on kept clips
    threshold: float | None = None  # speaker similarity to keep a clip; None: derived from the references
    encoder: str = "ge2e"  # speaker encoder name or directory
    asr_model: str | None = None  # faster-whisper model name or path for transcripts of kept clips
    sample_rate: int | None = None  # rate of written clips; None keeps each source's rate
    min_seconds: float = 1.0
    max_seconds: float = 15.0
    min_snr_db: float = 12.0
    max_clipping: float = 0.002  # fraction of samples at full scale
    min_bandwidth_hz: float = 0.0  # 0 disables the narrowband check
    vad_threshold: float = 0.5
    min_pause: float = 0.15  # a silence this long separates phrases
    max_join_gap: float = 1.0  # phrases of one speaker closer than this are joined into a clip
    keep_rejected_audio: bool = False  # also write rejected clips to clips/ (for listening)

    def __post_init__(self):
        if not 0.3 <= self.min_seconds < self.max_seconds <= 60:
            raise ConfigError("need 0.3 <= min_seconds < max_seconds <= 60, "
                              f"got {self.min_seconds}, {self.max_seconds}")
        if self.threshold is not None and not -1 <= self.threshold <= 1:
            raise ConfigError(f"threshold is a cosine similarity in [-1, 1], got {self.threshold}")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192_000:
            raise ConfigError(f"sample_rate must be between 8000 and 192000 Hz, got {self.sample_rate}")
        if not 0 < self.vad_threshold < 1:
            raise ConfigError(f"vad_threshold must be in (0, 1), got {self.vad_threshold}")
        if not 0 <= self.max_clipping <= 1:
            raise ConfigError(f"max_clipping is a fraction in [0, 1], got {self.max_clipping}")
        if self.language is not None:
            check_language(self.language)

    def fingerprint(self, references: Sequence[Path]) -> str:
        """Hash of everything that changes a source's result (a changed setting redoes finished sources)."""
        keys = {k: v for k, v in asdict(self).items() if k not in ("asr_model", "language")}
        keys["references"] = [_file_key(p) for p in references]
        return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# frame-level analysis


@dataclass
class Analysis:
    """Per-frame features of one source at 16 kHz (frames of ``HOP`` samples)."""

    prob: np.ndarray  # (frames,) speech probability
    level_db: np.ndarray  # (frames,) RMS level, dBFS
    floor_db: float  # noise floor of the recording, dBFS

    @property
    def frames(self) -> int:
        return len(self.prob)


_VAD = None


def _vad_model():
    global _VAD
    if _VAD is None:
        import torch

        require("onnxruntime", purpose="voice activity detection (silero VAD)")
        threads = torch.get_num_threads()
        from silero_vad import load_silero_vad  # its import sets torch to one thread; undo that

        torch.set_num_threads(threads)
        import warnings

        with warnings.catch_warnings():  # silero uses a deprecated importlib.resources call
            warnings.simplefilter("ignore", DeprecationWarning)
            _VAD = load_silero_vad(onnx=True)
    return _VAD


def speech_probability(audio: np.ndarray, row_seconds: float = 30.0, warmup_frames: int = 16) -> np.ndarray:
    """``(samples,)`` at 16 kHz -> ``(frames,)`` silero speech probability per 32 ms frame.

    The recording is cut into rows of ``row_seconds`` that run through the model as one batch (the model is
    stateful; each row starts ``warmup_frames`` early so its state has settled by the row's first frame).
    """
    import torch

    n = len(audio) // HOP
    if n == 0:
        return np.zeros(0, np.float32)
    row = max(1, int(row_seconds * FPS))
    rows = -(-n // row)
    x = np.zeros((rows, (row + warmup_frames) * HOP), np.float32)
    for r in range(rows):
        s = r * row - warmup_frames
        chunk = audio[max(0, s) * HOP:(r + 1) * row * HOP]
        off = (warmup_frames - r * row) * HOP if s < 0 else 0
        x[r, off:off + len(chunk)] = chunk
    model = _vad_model()
    prob = model.audio_forward(torch.from_numpy(x), SR).numpy()[:, warmup_frames:]
    return prob.reshape(-1)[:n].astype(np.float32)


def analyse(audio: np.ndarray) -> Analysis:
    """Frame features of ``(samples,)`` mono audio at 16 kHz."""
    n = len(audio) // HOP
    frames = audio[: n * HOP].reshape(n, HOP).astype(np.float64)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
    prob = speech_probability(audio)
    quiet = level[prob < 0.2]
    floor = float(np.percentile(quiet if len(quiet) > 10 else level, 10)) if n else -120.0
    return Analysis(prob, level.astype(np.float32), floor)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True as ``[(start, end)]`` frame ranges (end exclusive)."""
    if not len(mask):
        return []
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def _close(mask: np.ndarray, max_gap: int, min_run: int) -> np.ndarray:
    """Fill gaps of at most ``max_gap`` frames, then drop runs shorter than ``min_run``."""
    mask = mask.copy()
    runs = _runs(mask)
    for (_, e), (s, _) in zip(runs, runs[1:]):
        if s - e <= max_gap:
            mask[e:s] = True
    for s, e in _runs(mask):
        if e - s < min_run:
            mask[s:e] = False
    return mask


def speech_mask(a: Analysis, threshold: float = 0.5, min_pause: float = 0.15) -> np.ndarray:
    """Hysteresis on the VAD probability: onset at ``threshold``, offset at ``threshold - 0.15``."""
    on, off = a.prob >= threshold, a.prob >= threshold - 0.15
    mask = np.zeros(a.frames, bool)
    for s, e in _runs(off):
        if on[s:e].any():
            mask[s:e] = True
    return _close(mask, int(min_pause * FPS) - 1, int(0.25 * FPS))


def sound_mask(a: Analysis, speech: np.ndarray) -> np.ndarray:
    """Non-speech sound clearly above the noise floor (music, noise), at least 1 s long."""
    loud = (a.level_db > a.floor_db + 12) & (a.level_db > -65)
    near_speech = np.convolve(speech.astype(float), np.ones(9), mode="same") > 0
    return _close(loud & ~near_speech, int(0.4 * FPS), int(1.0 * FPS))


def split_long(s: int, e: int, a: Analysis, max_frames: int, min_frames: int) -> list[tuple[int, int]]:
    """Split a frame range longer than ``max_frames`` at its quietest, least speech-like points."""
    if e - s <= max_frames:
        return [(s, e)]
    lo, hi = s + min_frames, e - min_frames
    score = a.level_db[lo:hi] + 20 * a.prob[lo:hi]
    score = np.convolve(score, np.ones(5) / 5, mode="same")
    if e - s > 2 * max_frames:  # prefer cuts that leave the first part close to the limit
        hi_pref = min(hi, s + max_frames)
        lo_pref = max(lo, s + max_frames // 2)
        cut = lo_pref + int(np.argmin(score[lo_pref - lo:hi_pref - lo]))
    else:
        cut = lo + int(np.argmin(score))
    return split_long(s, cut, a, max_frames, min_frames) + split_long(cut, e, a, max_frames, min_frames)


# ---------------------------------------------------------------------------------------------------------------
# speaker embeddings from one mel spectrogram of the whole source


class _Embedder:
    """GE2E embeddings of frame ranges of one source, computing its mel spectrogram once."""

    WINDOW = 160  # 1.6 s partials, as the encoder was trained
    HOP = 50  # 0.5 s between sliding windows

    def __init__(self, encoder, audio: np.ndarray):
        import torch

        from ..speaker.encoder import mel_frames

        self.encoder = encoder
        cfg = encoder.config
        hop = int(cfg.sample_rate * cfg.hop_ms / 1000)
        self.mel = torch.from_numpy(mel_frames(audio, cfg)).contiguous()  # the encoder's own front end
        self.ratio = hop / HOP  # mel frames per analysis frame is HOP / hop
        self.audio = audio
        self.norm = 10 ** (cfg.norm_dbfs / 20)

    def _gain2(self, s: int, e: int, a: Analysis) -> float:
        seg = self.audio[s * HOP:e * HOP]
        voiced = a.prob[s:e] >= 0.5
        if voiced.sum() >= 5:
            seg = seg[: len(voiced) * HOP].reshape(-1, HOP)[voiced].reshape(-1)
        rms = float(np.sqrt(np.mean(seg.astype(np.float64) ** 2))) + 1e-9
        return min(self.norm / rms, 100.0) ** 2

    def plan(self, s: int, e: int, a: Analysis, hop: int | None = None) -> tuple[np.ndarray, list[tuple[int, float]]]:
        """Windows over analysis frames ``[s, e)``: ``(centres in analysis frames (n,), [(mel start, gain)])``."""
        hop = hop or self.WINDOW // 2
        n = self.WINDOW
        ms, me = int(s / self.ratio), min(len(self.mel), int(e / self.ratio))
        starts = list(range(ms, max(ms, me - n) + 1, hop))
        if me - (starts[-1] + n) > hop // 2:
            starts.append(me - n)
        gain2 = self._gain2(s, e, a)
        centres = (np.array(starts) + min(n, me - ms) / 2) * self.ratio
        return centres, [(t, gain2, me) for t in starts]

    def run(self, windows: list[tuple[int, float, int]], batch: int = 128,
            on_progress: Callable[[float], None] | None = None) -> np.ndarray:
        """Embed planned windows -> ``(n, embedding_size)`` unit vectors, in batches."""
        import torch

        n = self.WINDOW
        out = []
        for b in range(0, len(windows), batch):
            mels = []
            for t, gain2, end in windows[b:b + batch]:
                m = self.mel[t:min(t + n, end)] * gain2
                if len(m) < n:  # a phrase shorter than one window is zero-padded, as the encoder does
                    m = torch.nn.functional.pad(m, (0, 0, 0, n - len(m)))
                mels.append(m)
            with torch.inference_mode():
                out.append(self.encoder.model(torch.stack(mels)).numpy())
            if on_progress:
                on_progress(min(1.0, (b + batch) / len(windows)))
        return np.concatenate(out) if out else np.zeros((0, self.encoder.config.embedding_size), np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / (np.linalg.norm(v, axis=-1, keepdims=True) + 1e-9)


# ---------------------------------------------------------------------------------------------------------------
# per-clip measurements


def estimate_snr(a: Analysis, s: int, e: int, block: float = 3.0) -> float:
    """Estimated SNR (dB) of frames ``[s, e)``, the worst of its ~3 s blocks (a clip is as clean as its noisiest
    part). In each block: speech-frame power over the noise floor, the 5th percentile of frame levels in the block
    and the half second around it (its pauses)."""
    n = max(1, int(round((e - s) / (block * FPS))))
    edges = np.linspace(s, e, n + 1).astype(int)
    worst = np.inf
    for b0, b1 in zip(edges, edges[1:]):
        ctx = slice(max(0, b0 - int(0.5 * FPS)), min(a.frames, b1 + int(0.5 * FPS)))
        floor = float(np.percentile(a.level_db[ctx], 5))
        level, prob = a.level_db[b0:b1], a.prob[b0:b1]
        voiced = level[prob >= 0.5] if (prob >= 0.5).sum() >= 0.25 * FPS else level
        if len(voiced) == 0:
            continue
        signal = float(np.mean(10 ** (voiced / 10)))
        noise_p = 10 ** (floor / 10)
        worst = min(worst, 10 * np.log10(max(signal - noise_p, 1e-12) / noise_p))
    return float(worst) if np.isfinite(worst) else 0.0


def clipping_fraction(audio: np.ndarray) -> float:
    """Fraction of samples at (or over) full scale."""
    return float(np.mean(np.abs(audio) >= 0.985)) if len(audio) else 0.0


def bandwidth_hz(audio: np.ndarray, sample_rate: int, n_fft: int = 1024, range_db: float = 50.0) -> float:
    """Upper edge of the long-term spectrum (Hz): the highest frequency within ``range_db`` of its peak.

    About 7 kHz for wideband speech from a 16 kHz recording, 3.5-4.5 kHz for telephone speech.
    """
    n = len(audio) // n_fft
    if n == 0:
        return 0.0
    frames = audio[: n * n_fft].reshape(n, n_fft) * np.hanning(n_fft).astype(np.float32)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    level = 10 * np.log10(np.convolve(power, np.ones(5) / 5, mode="same") + 1e-20)
    above = np.flatnonzero(level > level.max() - range_db)
    return float(above[-1] * sample_rate / n_fft)


def music_score(audio: np.ndarray) -> tuple[float, float]:
    """``(tonal persistence, spectral flatness)`` of 16 kHz audio.

    Persistence is the mean correlation of spectral peaks (log spectrum minus its envelope) 0.2 s apart:
    sustained notes score high, speech lower, noise about zero;
    flatness is the geometric over arithmetic mean of the power spectrum (noise scores high).
    """
    import torch

    x = torch.from_numpy(np.ascontiguousarray(audio))
    if len(x) < 4096:
        return 0.0, 0.0
    spec = torch.stft(x, 1024, 256, window=torch.hann_window(1024), return_complex=True).abs().pow(2).numpy()
    from scipy.ndimage import uniform_filter1d

    band = spec[6:256]  # ~100-4000 Hz
    logs = np.log(band + 1e-10)
    logs = logs - uniform_filter1d(logs, 15, axis=0)  # spectral peaks only: the slope of coloured noise goes
    lag = 12
    a, b = logs[:, :-lag], logs[:, lag:]
    corr = (a * b).sum(0) / (np.sqrt((a * a).sum(0) * (b * b).sum(0)) + 1e-9)
    energy = band.sum(0)
    loud = energy[:-lag] > 0.05 * np.median(energy)
    persistence = float(np.mean(corr[loud])) if loud.any() else 0.0
    full = spec[2:] + 1e-12
    flat = np.exp(np.mean(np.log(full), axis=0)) / np.mean(full, axis=0)
    return persistence, float(np.median(flat))


# ---------------------------------------------------------------------------------------------------------------
# phase 1: analyse a source (cached per source; the costly part)


@dataclass
class SourceAnalysis:
    """Everything the decisions need about one source; cached as ``DATASET/.ingest/<key>.npz``."""

    frames: Analysis
    duration: float  # seconds
    pieces: np.ndarray  # (n, 3) int: start frame, end frame, 1 for speech / 0 for other sound
    embeddings: np.ndarray  # (n, 256) unit vectors; zeros for non-speech pieces
    features: np.ndarray  # (n, 2) tonal persistence, spectral flatness
    win_piece: np.ndarray  # (m,) index of the piece each sliding window belongs to
    win_centre: np.ndarray  # (m,) window centres in analysis frames
    win_emb: np.ndarray  # (m, 256) window embeddings

    def save(self, path: Path) -> None:
        from ..files import atomic_path

        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, prob=self.frames.prob, level_db=self.frames.level_db, floor_db=self.frames.floor_db,
                     duration=self.duration, pieces=self.pieces, embeddings=self.embeddings, features=self.features,
                     win_piece=self.win_piece, win_centre=self.win_centre, win_emb=self.win_emb,
                     version=STATE_VERSION)

    @classmethod
    def load(cls, path: Path) -> "SourceAnalysis | None":
        try:
            d = np.load(path)
            if int(d["version"]) != STATE_VERSION:
                return None
            return cls(Analysis(d["prob"], d["level_db"], float(d["floor_db"])), float(d["duration"]), d["pieces"],
                       d["embeddings"], d["features"], d["win_piece"], d["win_centre"], d["win_emb"])
        except Exception:  # a damaged cache is recomputed
            return None


def analyse_source(audio: np.ndarray, encoder, options: IngestOptions,
                   on_progress: Callable[[float], None] | None = None) -> SourceAnalysis:
    """Phase 1 on ``(samples,)`` mono audio at 16 kHz: VAD, pieces, speaker embeddings, music features.

    ``on_progress(fraction)`` is called as the work advances (0 to 1), for progress bars.
    """
    report = on_progress or (lambda fraction: None)
    a = analyse(audio)
    report(0.4)
    speech = speech_mask(a, options.vad_threshold, options.min_pause)
    max_f, min_f = int(options.max_seconds * FPS), int(0.5 * FPS)
    rows = [(s2, e2, 1) for s, e in _runs(speech) for s2, e2 in split_long(s, e, a, max_f, min_f)]
    rows += [(s2, e2, 0) for s, e in _runs(sound_mask(a, speech)) for s2, e2 in split_long(s, e, a, max_f, min_f)]
    rows.sort()
    embedder = _Embedder(encoder, audio)
    dim = encoder.config.embedding_size
    embeddings = np.zeros((len(rows), dim), np.float32)
    features = np.zeros((len(rows), 2), np.float32)
    win_piece, win_centre, plan = [], [], []
    for i, (s, e, is_speech) in enumerate(rows):
        features[i] = music_score(audio[s * HOP:e * HOP])
        if is_speech:
            centres, windows = embedder.plan(s, e, a, hop=_Embedder.HOP if e - s >= 3 * FPS else None)
            win_piece += [i] * len(centres)
            win_centre.append(centres)
            plan += windows
    report(0.5)
    win_emb = embedder.run(plan, on_progress=lambda f: report(0.5 + 0.5 * f))
    win_piece = np.array(win_piece, np.int64)
    for i in set(win_piece.tolist()):
        embeddings[i] = _unit(win_emb[win_piece == i].mean(axis=0))
    return SourceAnalysis(a, len(audio) / SR, np.array(rows, np.int64).reshape(-1, 3), embeddings, features,
                          win_piece, np.concatenate(win_centre) if win_centre else np.zeros(0), win_emb)


# ---------------------------------------------------------------------------------------------------------------
# phase 2: who is the target


def reference_profile(encoder, references: Sequence[Path]) -> tuple[np.ndarray, float, float]:
    """Enrol the reference clips -> ``(profile (256,), threshold, reference self-similarity)``.

    The threshold lies halfway between how alike the references are to each other (leave-one-out similarity
    to the profile of the others) and the typical similarity of two different speakers for this encoder.
    """
    embs = []
    for path in references:
        audio, sr = load_audio(path, SR)
        ensure_audible(audio, sr, path=path, min_seconds=0.5)
        embs.append(encoder.embed(audio, sr))
    embs = np.stack(embs)
    profile = _unit(embs.mean(axis=0))
    if len(embs) >= 2:
        loo = [float(embs[i] @ _unit(np.delete(embs, i, axis=0).mean(axis=0))) for i in range(len(embs))]
        level = float(np.median(loo))
    else:
        level = 0.85  # typical for one clean clip of the same voice
    return profile, _threshold(level), level


DIFFERENT_SPEAKER_LEVEL = 0.45  # typical GE2E cosine of two different voices (0.40-0.58)


def _threshold(level: float) -> float:
    return float(np.clip((level + DIFFERENT_SPEAKER_LEVEL) / 2, 0.55, 0.8))


def dominant_profile(analyses: Sequence[SourceAnalysis]) -> tuple[np.ndarray, float, float]:
    """Without references: the profile of the speaker with the most speech over all sources.

    Clusters phrase embeddings (average linkage, cosine distance 0.35) and takes the cluster with the most
    speech by duration. Returns ``(profile, threshold, in-cluster similarity)``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    emb, dur = [], []
    for an in analyses:
        for (s, e, is_speech), v in zip(an.pieces, an.embeddings):
            if is_speech and e - s >= 1.5 * FPS:
                emb.append(v)
                dur.append(e - s)
    if not emb:
        raise EmptyAudioError("found no speech of 1.5 s or more in the sources",
                              fix="check that the recordings contain speech")
    emb, dur = np.stack(emb), np.array(dur, float)
    labels = np.ones(len(emb), int) if len(emb) == 1 else fcluster(
        linkage(emb, method="average", metric="cosine"), t=0.35, criterion="distance")
    best = max(set(labels.tolist()), key=lambda k: dur[labels == k].sum())
    sel = labels == best
    profile = _unit((emb[sel] * dur[sel, None]).sum(axis=0))
    level = float(np.median(emb[sel] @ profile)) if sel.sum() >= 2 else 0.85
    return profile, _threshold(level), level


# ---------------------------------------------------------------------------------------------------------------
# phase 3: candidate clips and decisions


@dataclass
class Candidate:
    """A stretch of a source that becomes one manifest line (frames of the analysis grid)."""

    start: int
    end: int
    speech: bool
    embedding: np.ndarray | None
    persistence: float
    flatness: float
    similarity: float | None = None
    target: bool = False  # the speaker decision


def _sub_embedding(an: SourceAnalysis, idx: np.ndarray, s: int, e: int) -> np.ndarray:
    inside = idx[(an.win_centre[idx] >= s) & (an.win_centre[idx] < e)]
    if not len(inside):
        inside = idx[[int(np.argmin(np.abs(an.win_centre[idx] - (s + e) / 2)))]]
    return _unit(an.win_emb[inside].mean(axis=0))


def candidates(an: SourceAnalysis, profile: np.ndarray, threshold: float, options: IngestOptions) -> list[Candidate]:
    """Split phrases where the speaker changes, then join phrases of one decision into clips."""
    out: list[Candidate] = []
    for i, (s, e, is_speech) in enumerate(an.pieces):
        pers, flat = (float(x) for x in an.features[i])
        if not is_speech:
            out.append(Candidate(int(s), int(e), False, None, pers, flat))
            continue
        idx = np.flatnonzero(an.win_piece == i)
        cuts = _speaker_cuts(an, idx, profile, threshold) if len(idx) >= 4 else []
        bounds = [int(s)] + cuts + [int(e)]
        for s2, e2 in zip(bounds, bounds[1:]):
            emb = an.embeddings[i] if len(bounds) == 2 else _sub_embedding(an, idx, s2, e2)
            out.append(Candidate(s2, e2, True, emb, pers, flat))
    for c in out:
        if c.embedding is not None:
            c.similarity = float(c.embedding @ profile)
            c.target = c.similarity >= threshold
    _label_short(out, threshold, int(options.max_join_gap * FPS))
    return _join(out, profile, options)


SHORT = int(1.5 * FPS)  # phrases shorter than this have noisy embeddings
SHORT_MARGIN = 0.1  # so a short phrase needs a little less similarity to the profile on its own,
CONTEXT_MARGIN = 0.2  # or a bit less still when it sounds like (cosine >= SAME_VOICE) a neighbour taken as target
SAME_VOICE = 0.6


def _label_short(cands: list[Candidate], threshold: float, gap_f: int) -> None:
    """Short phrases: on their own they need a little less similarity to the profile; a bit less still when
    they sound like (cosine >= SAME_VOICE) the adjacent phrase most like them, and that one is the target."""
    own = [c.speech and c.similarity >= threshold - (SHORT_MARGIN if c.end - c.start < SHORT else 0.0)
           for c in cands]
    for i, c in enumerate(cands):
        c.target = bool(own[i])
        if not c.speech or c.end - c.start >= SHORT or own[i] or c.similarity < threshold - CONTEXT_MARGIN:
            continue
        best = None
        for j in (i - 1, i + 1):
            if 0 <= j < len(cands) and cands[j].speech:
                gap = c.start - cands[j].end if j < i else cands[j].start - c.end
                cos = float(c.embedding @ cands[j].embedding)
                if gap <= gap_f and (best is None or cos > best[0]):
                    best = (cos, j)
        if best is not None and best[0] >= SAME_VOICE and own[best[1]]:
            c.target = True


def _speaker_cuts(an: SourceAnalysis, idx: np.ndarray, profile: np.ndarray, threshold: float) -> list[int]:
    """Frames where sliding windows cross the speaker threshold and stay across for >= 2 windows each side."""
    centres, sims = an.win_centre[idx], an.win_emb[idx] @ profile
    smooth = sims.copy()
    smooth[1:-1] = np.convolve(sims, np.ones(3) / 3, mode="valid")
    label = smooth >= threshold
    runs = sorted(_runs(label) + _runs(~label))
    s0, e0 = int(an.pieces[an.win_piece[idx[0]], 0]), int(an.pieces[an.win_piece[idx[0]], 1])
    cuts = []
    for (s1, e1), (s2, e2) in zip(runs, runs[1:]):
        if e1 - s1 >= 2 and e2 - s2 >= 2:
            mid = int((centres[e1 - 1] + centres[s2]) / 2)
            lo, hi = max(s0 + 8, mid - 12), min(e0 - 8, mid + 12)
            if hi > lo:  # cut at the quietest frame near the change
                cuts.append(lo + int(np.argmin(an.frames.level_db[lo:hi])))
    return sorted(set(cuts))


def _join(cands: list[Candidate], profile: np.ndarray, options: IngestOptions) -> list[Candidate]:
    out: list[Candidate] = []
    gap_f, max_f = int(options.max_join_gap * FPS), int(options.max_seconds * FPS)
    for c in cands:
        p = out[-1] if out else None
        if (p is not None and c.speech and p.speech and c.start - p.end <= gap_f and c.end - p.start <= max_f
                and p.target == c.target):
            w1, w2 = p.end - p.start, c.end - c.start
            emb = _unit(p.embedding * w1 + c.embedding * w2)
            out[-1] = Candidate(p.start, c.end, True, emb, (p.persistence * w1 + c.persistence * w2) / (w1 + w2),
                                (p.flatness * w1 + c.flatness * w2) / (w1 + w2), float(emb @ profile), p.target)
        else:
            out.append(c)
    return out


# ---------------------------------------------------------------------------------------------------------------
# phase 4: measure, decide, write the clips of one source


MUSIC_PERSISTENCE = 0.3  # tonal persistence of music is ~0.5-0.7, of speech below 0.1, of noise about 0


def _decide(c: Candidate, clip: Clip, options: IngestOptions) -> str:
    """The first reason that applies: not speech (music, noise), too short, music under speech, clipped, noisy
    (a voice under noise does not sound like itself, so quality comes before the speaker), another speaker."""
    if not c.speech:
        return MUSIC if c.persistence >= MUSIC_PERSISTENCE else NOISE
    if (c.end - c.start) / FPS < options.min_seconds:
        return TOO_SHORT
    if not c.target and c.persistence >= MUSIC_PERSISTENCE:
        return MUSIC
    if clip.clipping > options.max_clipping:
        return CLIPPED
    if clip.snr_db < options.min_snr_db:
        return LOW_SNR
    if not c.target:
        return OTHER_SPEAKER
    if options.min_bandwidth_hz and clip.bandwidth_hz < options.min_bandwidth_hz:
        return NARROWBAND
    return KEPT


def finalise_source(path: Path, key: str, an: SourceAnalysis, cands: list[Candidate], out: Path,
                    options: IngestOptions, decoded: tuple[np.ndarray, int] | None = None) -> list[Clip]:
    """Measure each candidate on the source's own audio, give it a reason, write kept clips atomically.

    ``decoded``: the source's ``(audio, sample_rate)`` if already in memory.
    """
    from ..audio.io import save_audio

    audio, sr = decoded if decoded is not None else load_audio(path)
    rate = options.sample_rate or sr
    stem = _slug(path.stem)
    clips: list[Clip] = []
    written: list[Path] = []
    try:
        for n, c in enumerate(cands):
            pad_l = min(0.05, (c.start - cands[n - 1].end) / FPS / 2) if n else 0.05
            pad_r = min(0.05, (cands[n + 1].start - c.end) / FPS / 2) if n + 1 < len(cands) else 0.05
            start = max(0.0, c.start / FPS - max(pad_l, 0.0))
            end = min(an.duration, c.end / FPS + max(pad_r, 0.0))
            seg = audio[int(start * sr):int(end * sr)]
            clip = Clip(
                id=f"{stem}-{key[:6]}-{n:04d}", path=None, source=str(path), start=round(start, 3),
                end=round(end, 3), duration=round(end - start, 3), sample_rate=rate, language=options.language,
                speaker="target" if c.speech and c.target else None,
                speaker_similarity=None if c.similarity is None else round(c.similarity, 4),
                snr_db=round(estimate_snr(an.frames, c.start, c.end), 2),
                loudness_lufs=_round(loudness_lufs(seg, sr)), clipping=round(clipping_fraction(seg), 5),
                bandwidth_hz=round(bandwidth_hz(seg, sr), 1), kept=False, reason=OTHER_SPEAKER,
                custom={"speech_probability": round(float(an.frames.prob[c.start:c.end].mean()), 3),
                        "tonal_persistence": round(c.persistence, 3), "spectral_flatness": round(c.flatness, 4)},
            )
            clip.reason = _decide(c, clip, options)
            clip.kept = clip.reason == KEPT
            if clip.kept or options.keep_rejected_audio:
                seg = resample(seg, sr, rate)
                if clip.kept and options.denoise:
                    from ..audio.denoise import denoise

                    seg = denoise(seg, rate)
                    clip.custom["denoised"] = True
                clip.path = f"clips/{clip.id}.wav"
                written.append(save_audio(out / clip.path, seg, rate))
            clips.append(clip)
    except BaseException:
        for p in written:  # no half-written source: its clips go with it
            p.unlink(missing_ok=True)
        raise
    return clips


def _round(x: float, nd: int = 2) -> float | None:
    return round(x, nd) if np.isfinite(x) else None


def _slug(text: str) -> str:
    keep = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)
    return keep.strip("_")[:40] or "source"


def _file_key(path: Path) -> str:
    st = Path(path).stat()
    ident = f"{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------------
# transcripts


@dataclass
class Transcripts:
    """Texts from a file: by clip id (or source name), and by time span of a source."""

    by_id: dict[str, str] = field(default_factory=dict)
    spans: list[tuple[str, float, float, str]] = field(default_factory=list)

    def assign(self, clips: list[Clip]) -> None:
        """Set ``text`` of the clips of one source: by clip id; by source name when the source gave one speech
        clip; else each timed text goes to the clip that holds at least 80% of its span (a text whose span is
        split over several clips is not given to any, rather than to a part that does not say it all)."""
        speech = [c for c in clips if c.reason not in (MUSIC, NOISE)]
        timed: dict[str, list[str]] = {}
        if speech:
            src = Path(speech[0].source)
            names = (str(src), src.name, src.stem)
            for s, a, b, text in self.spans:
                if s not in names or b <= a:
                    continue
                best = max(speech, key=lambda c: min(c.end, b) - max(c.start, a))
                if min(best.end, b) - max(best.start, a) >= 0.8 * (b - a):
                    timed.setdefault(best.id, []).append(text)
            whole = next((self.by_id[k] for k in names if k in self.by_id), None)
            if whole is not None and len(speech) == 1:
                timed.setdefault(speech[0].id, []).append(whole)
        for c in clips:
            text = self.by_id.get(c.id) or (" ".join(timed[c.id]) if c.id in timed else None)
            if text is not None:
                c.text = text
                c.custom["text_from"] = "file"


def parse_festival_transcripts(text: str) -> dict[str, str]:
    """Parse festival ``txt.done.data`` lines ``( id "text" )`` into ``{id: text}`` (stress marks removed)."""
    out = {}
    for m in re.finditer(r'^\(\s*(\S+)\s+"(.*)"\s*\)\s*$', text, flags=re.M):
        out[m.group(1)] = m.group(2).replace("+", "")
    return out


def read_transcripts(path: str | Path) -> Transcripts:
    """Read festival ``txt.done.data``, JSONL (``id``/``text`` or ``source``/``start``/``end``/``text``) or TSV
    (``source<TAB>start<TAB>end<TAB>text`` or ``id<TAB>text``)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("no such transcripts file", path=path, fix="check the path")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError("transcripts are not UTF-8 text", path=path) from exc
    out = Transcripts()
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("("):
            found = parse_festival_transcripts(line)
            if not found:
                raise InputError(f"line {n} is not a festival ( id \"text\" ) line", path=path)
            out.by_id.update(found)
        elif line.startswith("{"):
            try:
                rec = json.loads(line)
                if "id" in rec:
                    out.by_id[str(rec["id"])] = str(rec["text"])
                else:
                    out.spans.append((str(rec["source"]), float(rec["start"]), float(rec["end"]), str(rec["text"])))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise InputError(f"line {n}: expected JSON with id and text, or source, start, end and text ({exc})",
                                 path=path) from exc
        else:
            cols = line.split("\t")
            try:
                if len(cols) == 4:
                    out.spans.append((cols[0], float(cols[1]), float(cols[2]), cols[3]))
                elif len(cols) == 2:
                    out.by_id[cols[0]] = cols[1]
                else:
                    raise ValueError(f"{len(cols)} tab-separated columns")
            except ValueError as exc:
                raise InputError(f"line {n}: expected 'source<TAB>start<TAB>end<TAB>text' or 'id<TAB>text' ({exc})",
                                 path=path) from exc
    if not out.by_id and not out.spans:
        raise InputError("no transcripts found in the file", path=path)
    return out


def load_recogniser(name_or_path: str, language: str | None):
    """A faster-whisper model from a registered name (``whisper-tiny.en``), a local dir or any model name."""
    fw = require("faster_whisper", "eval", purpose="transcribing clips")
    from ..hub import MODELS, resolve

    target = str(resolve(name_or_path, kind="asr")) if name_or_path in MODELS or Path(name_or_path).exists() \
        else name_or_path
    try:
        model = fw.WhisperModel(target, device="cpu", compute_type="int8", cpu_threads=1)
    except Exception as exc:
        from ..errors import ModelNotFoundError

        raise ModelNotFoundError(f"cannot load the recogniser '{name_or_path}' ({type(exc).__name__}: {exc})",
                                 fix="give whisper-tiny.en, a faster-whisper model name or a CTranslate2 model dir",
                                 ) from exc
    if language not in (None, "en") and not model.model.is_multilingual:
        raise ConfigError(f"the recogniser '{name_or_path}' knows English only, the speech is '{language}'",
                          fix="give a multilingual faster-whisper model with --asr, or --transcripts")
    return model


def transcribe(model, audio: np.ndarray, language: str | None) -> str:
    """Text of ``(samples,)`` audio at 16 kHz."""
    return transcribe_scored(model, audio, language)[0]


def transcribe_scored(model, audio: np.ndarray, language: str | None) -> tuple[str, float]:
    """Text of ``(samples,)`` audio at 16 kHz and the recogniser's confidence in it, 0-1: the geometric mean of
    its token probabilities (``exp`` of the token-weighted mean ``avg_logprob`` of the segments; 0 for no text).
    Clean read speech scores about 0.7-0.9; mumbled, noisy or foreign speech much less."""
    segments = list(model.transcribe(audio, language=language, beam_size=1, condition_on_previous_text=False)[0])
    text = " ".join(s.text.strip() for s in segments).strip()
    tokens = [max(len(s.tokens), 1) for s in segments]
    if not text or not tokens:
        return text, 0.0
    mean = sum(s.avg_logprob * n for s, n in zip(segments, tokens)) / sum(tokens)
    return text, float(np.exp(min(mean, 0.0)))


# ---------------------------------------------------------------------------------------------------------------
# the job


class _threads:
    """Run torch on ``n`` threads inside the block (the encoder's small LSTM batches gain nothing from more)."""

    def __init__(self, n: int):
        self.n = n

    def __enter__(self):
        import torch

        self.saved = torch.get_num_threads()
        torch.set_num_threads(min(self.n, self.saved))

    def __exit__(self, *exc):
        import torch

        torch.set_num_threads(self.saved)


def probe(path: Path) -> None:
    """Cheap check that ``path`` is a non-empty media file with an audio track (raises a typed error)."""
    if not path.exists():
        raise InputNotFoundError("no such file", path=path, fix="check the path")
    if path.stat().st_size == 0:
        raise EmptyAudioError("file is empty (0 bytes)", path=path, fix="re-export the recording")
    load_audio(path, duration=1.0)


def ingest(sources: Sequence[str | Path], out: str | Path, references: Sequence[str | Path] = (),
           transcripts: str | Path | None = None, options: IngestOptions | None = None,
           progress: bool = False, encoder=None) -> dict:
    """Turn ``sources`` (files or folders of audio/video) into the dataset ``out``; returns the report.

    ``references``: clips (or folders) of the target person; without them the dominant speaker is kept.
    ``transcripts``: a file of texts by clip id or by source and time (see ``read_transcripts``).
    ``progress``: tqdm bars on stderr. ``encoder``: an already loaded ``SpeakerEncoder`` (else ``options.encoder``).
    Re-running with the same arguments resumes: finished sources are skipped. On an error nothing this run
    started is left behind; after an interruption the finished sources stay and a re-run completes the rest.
    """
    options = options or IngestOptions()
    t0 = time.time()
    paths = expand_media(sources)
    refs = expand_media(references) if references else []
    out = Path(out)
    _check_out(out, [Path(s) for s in sources])
    for p in paths + refs:
        probe(p)
    texts = read_transcripts(transcripts) if transcripts else None
    recogniser = load_recogniser(options.asr_model, options.language) if options.asr_model else None
    if encoder is None:
        from ..speaker.encoder import SpeakerEncoder

        encoder = SpeakerEncoder.load(options.encoder)
    created = not out.exists()
    state = out / STATE_DIR
    fresh = not state.exists()
    try:
        with _threads(1):
            report = _run(paths, refs, out, state, texts, recogniser, encoder, options, progress)
    except Exception:  # nothing half-written stays behind after an error (an interrupted run stays resumable)
        if created:
            shutil.rmtree(out, ignore_errors=True)
        elif fresh:
            shutil.rmtree(state, ignore_errors=True)
            shutil.rmtree(out / "clips", ignore_errors=True)
        raise
    report["elapsed_seconds"] = round(time.time() - t0, 2)
    report["speed_x_realtime"] = round(report["minutes_total"] * 60 / max(report["elapsed_seconds"], 1e-6), 1)
    write_json(out / "report.json", report)
    return report


def _check_out(out: Path, sources: list[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("the dataset path is a file", path=out, fix="give a folder for --out")
    if out.is_dir() and any(out.iterdir()) and not (out / STATE_DIR).is_dir():
        raise InputError("folder exists and is not a voicetwin ingest dataset", path=out,
                         fix="give a new or empty folder for --out")
    o = out.resolve()
    for s in sources:
        s = s.resolve()
        if s.is_dir() and (o == s or s in o.parents):
            raise InputError("the dataset folder is inside a source folder", path=out,
                             fix="write the dataset somewhere else, so sources stay untouched")


def _run(paths, refs, out, state, texts, recogniser, encoder, options, progress) -> dict:
    from ..console import progress_bar

    state.mkdir(parents=True, exist_ok=True)
    fingerprint = options.fingerprint(refs)
    keys = [_file_key(p) for p in paths]
    analysis_key = hashlib.sha256(json.dumps([STATE_VERSION, str(options.encoder), options.vad_threshold,
                                              options.min_pause, options.max_seconds]).encode()).hexdigest()[:8]
    analyses: list[SourceAnalysis] = []
    last_decoded = None
    for n, (path, key) in enumerate(zip(paths, keys), 1):
        cache = state / f"{key}-{analysis_key}.npz"
        an = SourceAnalysis.load(cache) if cache.exists() else None
        if an is None:
            native, sr = load_audio(path)
            ensure_audible(native, sr, path=path, min_seconds=options.min_seconds)
            with progress_bar(total=100, desc=f"analysing {n}/{len(paths)} {path.name}", unit="%", enabled=progress,
                              bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]") as bar:
                def tick(fraction: float, bar=bar) -> None:
                    bar.update(round(100 * fraction) - bar.n)

                an = analyse_source(resample(native, sr, SR), encoder, options, on_progress=tick)
                tick(1.0)
            an.save(cache)
            last_decoded = (path, native, sr)  # the last source is written first from memory
        analyses.append(an)
    if refs:
        profile, threshold, level = reference_profile(encoder, refs)
        mode = "references"
    else:
        profile, threshold, level = dominant_profile(analyses)
        mode = "dominant speaker"
    if options.threshold is not None:
        threshold = options.threshold
    decision = hashlib.sha256(profile.round(3).tobytes() + f"{threshold:.4f}|{fingerprint}".encode()).hexdigest()[:16]
    all_clips: list[list[Clip]] = []
    bar = progress_bar(paths, desc="writing clips", unit="source", enabled=progress)
    for path, key, an in zip(bar, keys, analyses):
        marker = state / f"{key}.done.json"
        done = json.loads(marker.read_text()) if marker.exists() else None
        if done and done.get("decision") == decision:
            clips = [Clip.from_dict(d) for d in done["clips"]]
        else:
            if done:  # settings changed: the old clips of this source go
                for d in done["clips"]:
                    if d.get("path"):
                        (out / d["path"]).unlink(missing_ok=True)
            decoded = last_decoded[1:] if last_decoded and last_decoded[0] == path else None
            clips = finalise_source(path, key, an, candidates(an, profile, threshold, options), out, options,
                                    decoded)
            write_json(marker, {"source": str(path), "decision": decision, "clips": [asdict(c) for c in clips]},
                       indent=None)
        for c in clips:  # the language may be given (or corrected) on a re-run
            c.language = options.language
        all_clips.append(clips)
    _add_texts(all_clips, keys, out, state, texts, recogniser, options, progress)
    clips = [c for group in all_clips for c in group]
    write_manifest(out / "manifest.jsonl", clips)
    return _report(out, paths, analyses, clips, mode, threshold, level, len(refs), options)


def _add_texts(all_clips, keys, out, state, texts, recogniser, options, progress) -> None:
    from ..console import progress_bar

    if texts is not None:
        for group in all_clips:
            texts.assign(group)
    if recogniser is None:
        return
    todo = [(g, c) for g, group in enumerate(all_clips) for c in group if c.kept and not c.text]
    changed = set()
    for g, c in progress_bar(todo, desc="transcribing", unit="clip", enabled=progress):
        audio, _ = load_audio(out / c.path, SR)
        c.text, confidence = transcribe_scored(recogniser, audio, options.language)
        c.custom["text_from"] = str(options.asr_model)
        c.custom["text_confidence"] = round(confidence, 3)  # voice build leaves doubtful text out of speech training
        changed.add(g)
    for g in changed:  # keep transcriptions across re-runs
        marker = state / f"{keys[g]}.done.json"
        done = json.loads(marker.read_text())
        done["clips"] = [asdict(c) for c in all_clips[g]]
        write_json(marker, done, indent=None)


def _report(out, paths, analyses, clips, mode, threshold, level, n_refs, options) -> dict:
    by_reason: dict[str, float] = {}
    count: dict[str, int] = {}
    for c in clips:
        if not c.kept:
            by_reason[c.reason] = by_reason.get(c.reason, 0.0) + c.duration / 60
            count[c.reason] = count.get(c.reason, 0) + 1
    kept = [c for c in clips if c.kept]
    speech = [c for c in clips if c.reason not in (MUSIC, NOISE)]
    return {
        "dataset": str(out),
        "sources": len(paths),
        "minutes_total": round(sum(a.duration for a in analyses) / 60, 3),
        "minutes_found": round(sum(c.duration for c in speech) / 60, 3),
        "minutes_kept": round(sum(c.duration for c in kept) / 60, 3),
        "clips_kept": len(kept),
        "clips_rejected": len(clips) - len(kept),
        "minutes_rejected_by_reason": {k: round(v, 3) for k, v in sorted(by_reason.items())},
        "clips_rejected_by_reason": dict(sorted(count.items())),
        "speaker": {"mode": mode, "threshold": round(threshold, 4), "profile_self_similarity": round(level, 4),
                    "references": n_refs, "encoder": options.encoder},
        "denoised": options.denoise,
        "clips_with_text": sum(1 for c in kept if c.text),
        "sources_list": [str(p) for p in paths],
    }
