"""Built-in example material, generated from installed packages (never downloaded).

``make_archive`` builds a mixed "archive recording" like the ones voicetwin ingests: the target person (real
recordings of the festvox-ru speaker), an interviewer (espeak-ng, Russian), an occasional guest (flite awb, a male
voice made from real recordings, speaking English), synthetic music (chords, bass and drums), noise bursts and
silence over a low noise floor, saved in an mp3 or mp4 container. It returns the ground truth (who or what sounds
when), and writes reference clips of the target made of utterances that do *not* occur in the archive.

    archive = make_archive("out/example", minutes=1.0)
    archive.path, archive.references, archive.segments
"""

from __future__ import annotations

import io
import json
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .errors import ConfigError, MissingDependencyError, VoiceTwinError
from .ingest.pipeline import parse_festival_transcripts

SAMPLE_RATE = 16_000
FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
REFERENCE_POOL = 40  # the last utterances of festvox-ru; never used in archives
INTERVIEWER_VOICE = "ru+m3"  # espeak-ng
GUEST_VOICE = "awb"  # flite: a male voice built from real recordings, speaking English
GUEST_LINES = (
    "Let me add something here, if I may.",
    "I remember that evening very well, it was raining.",
    "That is not quite how it happened, you know.",
    "We should ask him about the war years.",
    "Could you tell us more about your family?",
    "I was there too, and I saw the whole thing.",
    "The photographs from that summer are still in the attic.",
    "He always said the same thing about the river.",
    "Sorry to interrupt, but the tape is running out.",
    "My father knew him from the factory.",
)
# everyday sentences for English voices (flite awb speaking them stands in for an archive speaker)
SUBJECTS = ["the old man", "my sister", "a young doctor", "the farmer", "our neighbour", "the little girl", "his brother",
            "the teacher", "a tired soldier", "the captain", "her father", "the baker", "a quiet student", "the driver",
            "my grandmother", "the fisherman", "a tall woman", "the children", "the new manager", "an old friend"]
VERBS = ["carried", "painted", "found", "opened", "cleaned", "bought", "sold", "watched", "fixed", "lost", "followed",
         "built", "cooked", "washed", "moved", "pushed", "pulled", "held", "dropped", "wrapped", "kept", "left"]
OBJECTS = ["a heavy basket", "the wooden door", "a red bicycle", "the small boat", "an old letter", "the green bottle",
           "a warm blanket", "the broken window", "a silver key", "the brown horse", "a long rope", "the kitchen table",
           "a paper bag", "the morning paper", "a bright lamp", "the yellow coat", "a glass of milk", "the garden gate",
           "a box of apples", "the black piano"]
PLACES = ["across the bridge", "near the river", "before dinner", "in the morning", "after the storm",
          "behind the house", "on a cold night", "at the station", "under the table", "during the long summer",
          "by the old church", "in the dark hall", "on the first day of spring", "at the end of the road",
          "outside the market", "next to the fire"]
LINKS = ["and then", "because", "while", "but", "so"]


def english_sentences(n: int, seed: int) -> list[str]:
    """Generated everyday sentences (8 to 20 words)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)} {rng.choice(PLACES)}"
        if rng.random() < 0.5:
            s += f", {rng.choice(LINKS)} {rng.choice(SUBJECTS)} {rng.choice(VERBS)} {rng.choice(OBJECTS)}"
        out.append(s[0].upper() + s[1:] + ".")
    return out


KINDS = ("target", "interviewer", "guest", "music", "noise", "silence")


@dataclass(frozen=True)
class Segment:
    """One event of an example archive; times in seconds of the archive."""

    start: float
    end: float
    kind: str  # one of KINDS
    utterance: str | None = None  # festvox id for the target
    text: str | None = None
    condition: str | None = None  # a deliberately degraded stretch: "noisy" (under a noise bed, SNR 0-5 dB)


@dataclass
class ExampleArchive:
    """A generated archive, its ground truth and reference clips of its target speaker."""

    path: Path
    duration: float
    segments: list[Segment]
    references: list[Path] = field(default_factory=list)
    truth_path: Path | None = None

    def seconds(self, kind: str) -> float:
        return float(sum(s.end - s.start for s in self.segments if s.kind == kind))

    def spans(self, kind: str) -> list[tuple[float, float]]:
        return [(s.start, s.end) for s in self.segments if s.kind == kind]


# -- installed material ---------------------------------------------------------------------------


def festvox_utterances(root: Path = FESTVOX_RU) -> dict[str, str]:
    """``{utterance id: text}`` of the festvox-ru speaker, in id order."""
    data = root / "etc" / "txt.done.data"
    if not data.exists():
        raise VoiceTwinError("the festvox-ru recordings are not installed", path=root,
                             fix="apt-get install festvox-ru (or run 'make install')")
    return parse_festival_transcripts(data.read_text(encoding="utf-8"))


def festvox_audio(utterance: str, root: Path = FESTVOX_RU, trim: bool = False) -> np.ndarray:
    """One festvox-ru utterance as ``(samples,)`` float32 at 16 kHz (``trim``: without edge silence)."""
    from .audio.io import load_audio

    audio = load_audio(root / "wav" / f"{utterance}.wav", SAMPLE_RATE)[0]
    return audio if not trim else _trim(audio)


def _trim(audio: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """Drop leading and trailing silence (so ground-truth times are times of speech)."""
    n = len(audio) // 128
    if n < 4:
        return audio
    level = 10 * np.log10(np.mean(audio[: n * 128].reshape(n, 128).astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(level > level.max() - top_db)
    return audio[max(0, loud[0] * 128 - 800):(loud[-1] + 1) * 128 + 800]


def flite(text: str, voice: str = GUEST_VOICE) -> np.ndarray:
    """Synthesise English ``text`` with a flite voice; ``(samples,)`` float32 at 16 kHz."""
    import tempfile

    from .audio.io import load_audio

    if shutil.which("flite") is None:
        raise MissingDependencyError("flite", purpose="example voices (Debian package: apt-get install flite)")
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        proc = subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], capture_output=True, check=False)
        if proc.returncode != 0 or not wav.exists():
            raise VoiceTwinError(f"flite failed for voice '{voice}' ({proc.stderr.decode(errors='replace').strip()})")
        return load_audio(wav, SAMPLE_RATE)[0]


def flite_corpus(texts: list[str], folder: str | Path, minutes: float, voice: str) -> list[Path]:
    """A flite ``voice`` reads ``texts`` into ``folder/VOICE_NNNN.wav`` (at its own rate) until ``minutes`` of
    audio; files already there are kept, so an interrupted recording resumes."""
    import soundfile as sf

    from .files import atomic_path

    if shutil.which("flite") is None:
        raise MissingDependencyError("flite", purpose="recording a corpus (Debian package: apt-get install flite)")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    wavs, total = [], 0.0
    for i, text in enumerate(texts):
        if total >= minutes * 60:
            break
        wav = folder / f"{voice}_{i:04d}.wav"
        if not wav.exists():
            with atomic_path(wav) as tmp:
                subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(tmp)], check=True, capture_output=True)
        wavs.append(wav)
        total += sf.info(str(wav)).duration
    return wavs


def espeak(text: str, voice: str = INTERVIEWER_VOICE, speed: int = 160) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng; ``(samples,)`` float32 at 16 kHz."""
    import soundfile as sf

    from .audio.io import resample

    if shutil.which("espeak-ng") is None:
        raise MissingDependencyError("espeak-ng", purpose="example voices (Debian package: apt-get install espeak-ng)")
    proc = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
                          capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        raise VoiceTwinError(f"espeak-ng failed for voice '{voice}' ({proc.stderr.decode(errors='replace').strip()})")
    audio, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    return resample(audio, sr, SAMPLE_RATE)


# -- synthetic signals ------------------------------------------------------------------------------


def music(seconds: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Synthetic band music: a chord progression (harmonic tones), a bass line and a drum kit. ``(samples,)``."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros(n, np.float32)
    bpm = rng.uniform(90, 130)
    beat = 60.0 / bpm
    root = rng.choice([45, 47, 48, 50, 52])  # MIDI note of the key
    progression = [[0, 4, 7], [5, 9, 12], [7, 11, 14], [-3, 0, 4]]
    bar = 4 * beat
    for b in range(int(np.ceil(seconds / bar))):
        chord = progression[b % len(progression)]
        s, e = int(b * bar * sr), min(n, int((b + 1) * bar * sr))
        if s >= n:
            break
        tt = t[s:e] - t[s]
        env = np.minimum(1, tt / 0.02) * np.exp(-tt / (2.5 * bar))
        for note in chord:
            f0 = 440 * 2 ** ((root + 12 + note - 69) / 12)
            for k in range(1, 7):
                out[s:e] += (0.08 / k) * env * np.sin(2 * np.pi * f0 * k * tt + rng.uniform(0, 6.28))
        for q in range(4):  # bass on every beat
            bs = s + int(q * beat * sr)
            be = min(e, bs + int(0.9 * beat * sr))
            bt = np.arange(be - bs) / sr
            f0 = 440 * 2 ** ((root + chord[0] - 69) / 12)
            out[bs:be] += 0.15 * np.exp(-bt / 0.4) * np.sign(np.sin(2 * np.pi * f0 * bt)) * 0.5
    for q in range(int(seconds / (beat / 2))):  # drums on eighth notes
        s = int(q * beat / 2 * sr)
        if q % 4 == 0:  # kick
            m = min(n - s, int(0.25 * sr))
            kt = np.arange(m) / sr
            sweep = 50 * kt + 3 * (1 - np.exp(-kt / 0.05))  # pitch falling from 110 to 50 Hz
            out[s:s + m] += 0.5 * np.exp(-kt / 0.08) * np.sin(2 * np.pi * sweep)
        if q % 4 == 2:  # snare
            m = min(n - s, int(0.2 * sr))
            kt = np.arange(m) / sr
            out[s:s + m] += 0.25 * np.exp(-kt / 0.05) * (rng.standard_normal(m) + np.sin(2 * np.pi * 190 * kt))
        m = min(n - s, int(0.04 * sr))  # hi-hat
        hat = np.diff(rng.standard_normal(m + 1))
        out[s:s + m] += 0.06 * np.exp(-np.arange(m) / sr / 0.01) * hat
    fade = min(n // 2, int(0.05 * sr))
    out[:fade] *= np.linspace(0, 1, fade)
    out[n - fade:] *= np.linspace(1, 0, fade)
    return out.astype(np.float32)


def noise(seconds: float, rng: np.random.Generator, kind: str = "pink", sr: int = SAMPLE_RATE) -> np.ndarray:
    """Coloured noise ``(samples,)`` with unit RMS: ``pink``, ``brown`` (rumble) or ``hiss``."""
    n = int(seconds * sr)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
    shape = {"pink": f ** -0.5, "brown": f ** -1.0, "hiss": np.ones_like(f)}[kind]
    out = np.fft.irfft(spec * shape, n)
    if kind == "brown":  # traffic-like swells
        out *= 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.1, 0.3) * np.arange(n) / sr)
    return (out / (np.sqrt(np.mean(out ** 2)) + 1e-12)).astype(np.float32)


def _at_level(audio: np.ndarray, rms_dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
    return (audio * (10 ** (rms_dbfs / 20) / rms)).astype(np.float32)


# -- the archive ----------------------------------------------------------------------------------


def split_utterances(ids: list[str]) -> tuple[list[str], list[str]]:
    """Festvox ids -> (archive pool, reference pool). The reference pool is never put into an archive."""
    return ids[:-REFERENCE_POOL], ids[-REFERENCE_POOL:]


def make_archive(out_dir: str | Path, minutes: float = 1.0, container: str = "mp3", seed: int = 0,
                 n_references: int = 8) -> ExampleArchive:
    """Generate an example archive of about ``minutes`` minutes in ``out_dir``.

    Writes ``archive.<container>`` (mp3, or mp4 with a small video track), ``archive.truth.json`` (the ground
    truth) and ``references/*.wav`` (``n_references`` utterances of the target that are not in the archive).
    Deterministic for a given ``seed``.
    """
    if container not in ("mp3", "mp4", "wav"):
        raise ConfigError(f"unknown container '{container}'", fix="use mp3, mp4 or wav")
    if not 0.1 <= minutes <= 120:
        raise ConfigError(f"minutes must be between 0.1 and 120, got {minutes}")
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    texts = festvox_utterances()
    pool, ref_pool = split_utterances(sorted(texts))
    order = [pool[i] for i in rng.permutation(len(pool))]
    question_texts = [texts[i] for i in rng.permutation(pool)]
    length = minutes * 60.0
    pieces: list[tuple[float, np.ndarray]] = []
    overlays: list[tuple[float, np.ndarray]] = []  # sound under a segment (a noise bed)
    segments: list[Segment] = []
    t = 1.0  # leading room tone

    def put(audio: np.ndarray, kind: str, **meta) -> None:
        nonlocal t
        pieces.append((t, audio))
        segments.append(Segment(round(t, 3), round(t + len(audio) / SAMPLE_RATE, 3), kind, **meta))
        t += len(audio) / SAMPLE_RATE

    def question() -> None:
        words = question_texts.pop().rstrip(".!?").split()
        text = " ".join(words[: int(rng.integers(5, 12))]) + "?"
        audio = _trim(espeak(text, INTERVIEWER_VOICE, int(rng.integers(150, 185))))
        put(_at_level(audio, rng.uniform(-27, -22)), "interviewer", text=text)

    def guest() -> None:
        text = GUEST_LINES[int(rng.integers(len(GUEST_LINES)))]
        put(_at_level(_trim(flite(text)), rng.uniform(-27, -22)), "guest", text=text)

    def answer() -> None:
        nonlocal t
        for k in range(int(rng.integers(1, 3))):
            if k:
                t += rng.uniform(0.4, 0.9)
            if not order:
                return
            uid = order.pop()
            audio = _at_level(festvox_audio(uid, trim=True), rng.uniform(-26, -21))
            put(audio, "target", utterance=uid, text=texts[uid])

    def noisy() -> None:  # the target under a noise bed at about the level of the voice
        if not order:
            return
        nonlocal t
        uid = order.pop()
        audio = _at_level(festvox_audio(uid, trim=True), rng.uniform(-24, -21))
        bed = noise(len(audio) / SAMPLE_RATE + 2.0, rng, "pink")
        voice_db = 20 * np.log10(np.sqrt(np.mean(audio ** 2)))
        t += 1.0  # the bed starts a second before the voice and ends a second after it
        overlays.append((t - 1.0, _at_level(bed, voice_db - rng.uniform(0, 5))))
        put(audio, "target", utterance=uid, text=texts[uid], condition="noisy")
        t += 1.0

    def other(kind: str) -> None:
        if kind == "music":
            put(_at_level(music(rng.uniform(4, 12), rng), rng.uniform(-26, -20)), "music")
        elif kind == "noise":
            kind_ = str(rng.choice(["pink", "brown", "hiss"]))
            put(_at_level(noise(rng.uniform(2, 5), rng, kind_), rng.uniform(-34, -26)), "noise", text=kind_)
        else:
            put(np.zeros(int(rng.uniform(2, 4) * SAMPLE_RATE), np.float32), "silence")

    script = ["q", "a", "music", "g", "noisy", "noise", "q", "a", "silence", "q", "a"]  # every kind early on
    step = 0
    while t < length and order:
        what = script[step] if step < len(script) else str(rng.choice(
            ["qa", "music", "noise", "silence", "ga", "noisy"], p=[0.73, 0.07, 0.06, 0.04, 0.06, 0.04]))
        step += 1
        if what in ("q", "qa"):
            question()
        if what in ("g", "ga"):
            guest()
        if what in ("qa", "ga"):
            t += rng.uniform(0.12, 1.0)  # some turns follow each other with hardly a pause
        if what in ("a", "qa", "ga"):
            answer()
        if what in ("music", "noise", "silence"):
            other(what)
        if what == "noisy":
            noisy()
        t += rng.uniform(0.12, 1.0)
    total = int((t + 1.0) * SAMPLE_RATE)
    mix = 10 ** (-60 / 20) * noise(total / SAMPLE_RATE, rng, "pink")[:total]  # room tone under everything
    mix = np.pad(mix, (0, max(0, total - len(mix))))
    for start, audio in pieces + overlays:
        s = int(round(start * SAMPLE_RATE))
        mix[s:s + len(audio)] += audio[: total - s]
    archive = ExampleArchive(out_dir / f"archive.{container}", total / SAMPLE_RATE, segments)
    _write_container(archive.path, mix, container)
    archive.references = _write_references(out_dir / "references", ref_pool, n_references, rng)
    archive.truth_path = out_dir / "archive.truth.json"
    from .files import write_json

    write_json(archive.truth_path, {
        "archive": archive.path.name, "duration": archive.duration, "sample_rate": SAMPLE_RATE, "seed": seed,
        "segments": [asdict(s) for s in segments], "references": [p.name for p in archive.references],
    })
    return archive


def load_truth(path: str | Path) -> ExampleArchive:
    """Read the ground truth written by ``make_archive``."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    refs = [path.parent / "references" / name for name in data["references"]]
    return ExampleArchive(path.parent / data["archive"], data["duration"], [Segment(**s) for s in data["segments"]],
                          refs, path)


def _write_references(folder: Path, ref_pool: list[str], n: int, rng: np.random.Generator) -> list[Path]:
    from .audio.io import save_audio

    if not 1 <= n <= len(ref_pool):
        raise ConfigError(f"n_references must be between 1 and {len(ref_pool)}, got {n}")
    chosen = sorted(ref_pool[i] for i in rng.choice(len(ref_pool), n, replace=False))
    return [save_audio(folder / f"{uid}.wav", festvox_audio(uid), SAMPLE_RATE) for uid in chosen]


def _write_container(path: Path, audio: np.ndarray, container: str) -> None:
    from .audio.io import save_audio

    audio = np.clip(audio, -1, 1)
    if container != "mp4":
        save_audio(path, audio, SAMPLE_RATE)
        return
    write_video(path, audio, SAMPLE_RATE)


def write_video(path: str | Path, audio: np.ndarray | None, sample_rate: int = SAMPLE_RATE, fps: int = 5,
                size: int = 64, seconds: float | None = None) -> Path:
    """Write an mp4 with a small moving-gradient h264 video track and (unless ``audio`` is None) an AAC track.

    Used for example material and to test video inputs, including videos without sound.
    """
    import av

    from .files import atomic_path

    path = Path(path)
    seconds = seconds if seconds is not None else len(audio) / sample_rate
    with atomic_path(path) as tmp, av.open(str(tmp), "w", format="mp4") as out:
        vstream = out.add_stream("libx264", rate=fps)
        vstream.width = vstream.height = size
        vstream.pix_fmt = "yuv420p"
        astream = None
        if audio is not None:
            astream = out.add_stream("aac", rate=sample_rate)
            astream.layout = "mono"
        for i in range(max(1, int(seconds * fps))):
            img = np.full((size, size, 3), (i * 4) % 256, np.uint8)
            img[:, : size // 2, 1] = 128
            for packet in vstream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vstream.encode(None):
            out.mux(packet)
        if astream is not None:
            block = 1024 * 64
            data = np.asarray(audio, np.float32)
            pts = 0
            for s in range(0, len(data), block):
                frame = av.AudioFrame.from_ndarray(data[None, s:s + block].copy(), format="fltp", layout="mono")
                frame.sample_rate = sample_rate
                frame.pts = pts
                pts += frame.samples
                for packet in astream.encode(frame):
                    out.mux(packet)
            for packet in astream.encode(None):
                out.mux(packet)
    return path


def score_clips(archive: ExampleArchive, spans: list[tuple[float, float]], kind: str = "target",
                resolution: float = 0.01) -> dict:
    """How well ``spans`` (e.g. the kept clips, in seconds) pick out ``kind`` in the ground truth.

    Returns ``purity`` (share of the sound inside the spans that is ``kind``), ``coverage`` (share of the clean
    ``kind`` inside the spans; deliberately degraded stretches are counted apart, as ``degraded_seconds_kept``)
    and the seconds of each kind inside the spans.
    """
    n = int(np.ceil(archive.duration / resolution)) + 1
    label = np.full(n, -1, np.int8)  # -1: nothing but room tone
    for seg in archive.segments:
        label[int(seg.start / resolution):int(seg.end / resolution)] = KINDS.index(seg.kind)
    chosen = np.zeros(n, bool)
    for s, e in spans:
        chosen[max(0, int(s / resolution)):int(e / resolution)] = True
    target = label == KINDS.index(kind)
    degraded = np.zeros(n, bool)
    for seg in archive.segments:
        if seg.kind == kind and seg.condition:
            degraded[int(seg.start / resolution):int(seg.end / resolution)] = True
    clean = target & ~degraded
    picked = chosen.sum()
    inside = {k: round(float((chosen & (label == i)).sum() * resolution), 2) for i, k in enumerate(KINDS)}
    inside["room tone"] = round(float((chosen & (label == -1)).sum() * resolution), 2)
    sound = chosen & (label >= 0) & (label != KINDS.index("silence"))
    return {  # purity counts sound only: pauses and room tone inside clips are nobody's
        "purity": float((sound & target).sum() / sound.sum()) if sound.any() else 0.0,
        "seconds_chosen": round(float(picked * resolution), 2),
        "coverage": float((chosen & clean).sum() / max(1, clean.sum())),
        "degraded_seconds_kept": round(float((chosen & degraded).sum() * resolution), 2),
        "degraded_seconds": round(float(degraded.sum() * resolution), 2),
        "seconds_by_kind": inside,
    }
