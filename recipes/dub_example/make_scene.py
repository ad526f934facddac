"""Generate an example scene to dub: performer takes, a sung line, a music-and-effects stem, a picture.

Everything is generated on the spot from installed packages; nothing is downloaded and no media is committed:

* three characters: FATHER (performer takes, espeak-ng's Russian voice reading held-out festvox-ru texts, converted
  into FATHER's voice when one is given, and one sung line from a generated MIDI melody), GUEST and HOST (text
  spoken by espeak-ng voices; GUEST's lines are imported from a generated SRT file);
* slots: each line's slot is its natural length times a factor between 0.84 and 1.2 (one slot deliberately too
  short, to exercise borrowing from the following gap), separated by random gaps;
* a stereo 48 kHz music-and-effects stem (chords, bass, footsteps, a door, wind) and a small H.264 picture.

    python recipes/dub_example/make_scene.py --out out/dub_example --minutes 2 --lines 12 [--voice VOICE_DIR]
    voicetwin dub out/dub_example/scene.yaml -o out/dub_example/dub
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from voicetwin.errors import InputNotFoundError, MissingDependencyError  # noqa: E402

FESTVOX_TEXTS = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits/etc/txt.done.data")
ME_RATE = 48_000
TAKE_RATE = 16_000
# kinds of the 12-line pattern: R = FATHER take, G = GUEST text (from the SRT), H = HOST text, S = FATHER sung
PATTERN = "RGRHRGRSHRGR"
MELODY = [(50, 0.5), (53, 0.5), (57, 0.5), (55, 0.5), (53, 1.0), (53, 0.5), (55, 0.5), (52, 0.5), (50, 1.0)]  # MIDI, beats
LYRICS = "Ой, то не ве-чер, то не ве-чер"


def russian_texts(n: int, skip: int = 0) -> list[str]:
    """``n`` short Russian sentences: held-out festvox-ru transcripts (the last utterances), 25-70 characters."""
    if not FESTVOX_TEXTS.exists():
        raise InputNotFoundError("festvox-ru is not installed", path=FESTVOX_TEXTS, fix="apt-get install festvox-ru")
    texts = []
    for line in FESTVOX_TEXTS.read_text(encoding="utf-8").splitlines()[::-1]:
        m = re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)\s*$', line)
        if m:
            text = m.group(2).replace("+", "").strip()
            if 25 <= len(text) <= 70:
                texts.append(text)
    return texts[skip: skip + n]


def espeak_take(text: str, voice: str, rng: np.random.Generator, speed: int = 165) -> np.ndarray:
    """A performer take: espeak-ng speech at 16 kHz with 0.3 s of room tone (-62 dBFS) around it."""
    import soundfile as sf
    import io

    from voicetwin.audio.io import resample

    if shutil.which("espeak-ng") is None:
        raise MissingDependencyError("espeak-ng", purpose="performer takes (apt-get install espeak-ng)")
    wav = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True,
                         check=True).stdout
    audio, sr = sf.read(io.BytesIO(wav), dtype="float32")
    audio = resample(audio, sr, TAKE_RATE) * 0.5
    pad = np.zeros(int(0.3 * TAKE_RATE), np.float32)
    audio = np.concatenate([pad, audio, pad])
    return (audio + rng.normal(0, 10 ** (-62 / 20), len(audio))).astype(np.float32)


def speech_seconds(audio: np.ndarray, sr: int) -> float:
    from voicetwin.production.fit import speech_bounds

    a, b = speech_bounds(audio, sr)
    return (b - a) / sr


def music_and_effects(seconds: float, rng: np.random.Generator, sr: int = ME_RATE) -> np.ndarray:
    """``(2, n)`` float32: chords and bass (changing every 4 s), footsteps, a door slam every ~25 s, wind."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    out = np.zeros((2, n))
    roots = [50, 55, 57, 53]  # D G A F
    for k, start in enumerate(np.arange(0, seconds, 4.0)):
        a, b = int(start * sr), min(n, int((start + 4.0) * sr))
        tt = t[a:b] - start
        env = np.minimum(1, tt / 0.4) * np.minimum(1, (4.0 - tt) / 0.4)
        root = roots[k % len(roots)]
        for i, interval in enumerate((0, 4, 7, 12)):
            f = 440 * 2 ** ((root + interval - 69) / 12)
            tone = np.sin(2 * np.pi * f * tt + rng.uniform(0, 6.28)) * env * 0.05
            out[i % 2, a:b] += tone
            out[1 - i % 2, a:b] += 0.6 * tone
        bass = np.sin(2 * np.pi * 440 * 2 ** ((root - 24 - 69) / 12) * tt) * env * 0.08
        out[:, a:b] += bass
    # footsteps: short filtered clicks in some stretches
    from scipy.signal import butter, lfilter

    b_lp, a_lp = butter(2, 2500 / (sr / 2))
    for start in np.arange(3.0, seconds - 6, 17.0):
        for step in np.arange(start, start + 4.0, 0.55):
            i = int(step * sr)
            click = rng.normal(0, 1, int(0.04 * sr)) * np.exp(-np.arange(int(0.04 * sr)) / (0.008 * sr)) * 0.25
            click = lfilter(b_lp, a_lp, click)
            out[0, i: i + len(click)] += click[: n - i]
            out[1, i: i + len(click)] += 0.7 * click[: n - i]
    # a door slam: low thump
    for start in np.arange(11.0, seconds - 2, 25.0):
        i = int(start * sr)
        m = int(0.3 * sr)
        thump = np.sin(2 * np.pi * 70 * np.arange(m) / sr) * np.exp(-np.arange(m) / (0.06 * sr)) * 0.5
        out[:, i: i + m] += thump[: n - i]
    # wind: slowly modulated low-passed noise
    b_w, a_w = butter(2, 600 / (sr / 2))
    wind = lfilter(b_w, a_w, rng.normal(0, 1, n)) * (0.04 + 0.03 * np.sin(2 * np.pi * t / 9.0))
    out[0] += wind
    out[1] += np.roll(wind, 1234)
    return out.astype(np.float32)


def picture(path: Path, seconds: float, audio: np.ndarray, fps: int = 25, size: tuple[int, int] = (160, 96)) -> Path:
    """A small H.264 test picture (moving bar, frame counter as a binary strip) with ``audio`` (48 kHz)."""
    from voicetwin.video.io import write_video

    w, h = size

    def frames():
        base = np.zeros((h, w, 3), np.uint8)
        base[..., 0] = np.linspace(30, 200, w, dtype=np.uint8)[None, :]
        base[..., 2] = np.linspace(200, 30, h, dtype=np.uint8)[:, None]
        for i in range(int(round(seconds * fps))):
            img = base.copy()
            x = (i * 3) % w
            img[:, x: x + 6] = 255
            for bit in range(12):
                if (i >> bit) & 1:
                    img[h - 8: h, bit * 8: bit * 8 + 6] = 255
            yield img

    return write_video(path, frames(), fps, audio=audio, sample_rate=ME_RATE)


def write_score(path: Path, tempo: float = 100.0) -> Path:
    from voicetwin.synth.sing import Note, Score, write_midi

    notes, t = [], 0.0
    for pitch, beats in MELODY:
        d = beats * 60.0 / tempo
        notes.append(Note(start=t, duration=d * 0.95, pitch=float(pitch)))
        t += d
    return write_midi(Score(notes, tempo=tempo), path)


def make_scene(out: str | Path, minutes: float = 2.0, n_lines: int = 12, voice: str | Path | None = None,
               seed: int = 0, production: str = "Example Scene", video: bool = True,
               reference: str | Path | None = None) -> Path:
    """Write ``out/scene.yaml`` and its material; returns the scene path. Same seed, same files. ``reference``:
    clips of FATHER's real voice, for the speaker similarity of each of his lines in the report."""
    import soundfile as sf
    import yaml

    from voicetwin.files import write_text
    from voicetwin.production.scene import Cue, format_srt
    from voicetwin.synth.speak import speak

    out = Path(out)
    (out / "takes").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    kinds = (PATTERN * (n_lines // len(PATTERN) + 1))[:n_lines]
    if n_lines < len(PATTERN):
        kinds = kinds[:-1] + "S" if "S" not in kinds else kinds
    texts = russian_texts(n_lines, skip=0)
    tight = 4 % n_lines  # one FATHER take whose slot is too short (needs borrowing)
    lines, naturals = [], []
    for i, kind in enumerate(kinds):
        line: dict = {"id": f"l{i + 1:02d}"}
        if kind == "R":
            take = espeak_take(texts[i], "ru+m3", rng)
            path = out / "takes" / f"{line['id']}.wav"
            sf.write(path, take, TAKE_RATE, subtype="PCM_16")
            line.update(character="FATHER", recording=f"takes/{path.name}", subtitle=texts[i])
            natural = speech_seconds(take, TAKE_RATE)
            factor = 0.75 if i == tight else float(rng.uniform(0.86, 1.08))
        elif kind == "S":
            score = write_score(out / "song.mid")
            line.update(character="FATHER", score=score.name, lyrics=LYRICS)
            natural = sum(b for _, b in MELODY) * 60.0 / 100.0
            factor = float(rng.uniform(0.9, 1.1))
        else:
            character = "GUEST" if kind == "G" else "HOST"
            base = "espeak:ru+f3" if kind == "G" else "espeak:ru+m1"
            audio, sr = speak(None, texts[i], language="ru", base=base)
            natural = speech_seconds(audio, sr)
            line.update(character=character, text=texts[i])
            factor = float(rng.uniform(0.85, 1.2))
        lines.append(line)
        naturals.append(natural * factor)
    total = minutes * 60.0
    spare = total - 4.0 - sum(naturals)
    if spare < 0.3 * n_lines:
        raise ValueError(f"{n_lines} lines do not fit in {minutes} min; give more minutes or fewer lines")
    gaps = rng.dirichlet(np.full(n_lines, 2.0)) * (spare - 1.0)
    gaps[tight] += 1.0  # room after the tight line to borrow from
    t, cues = 2.0, []
    for i, (line, slot) in enumerate(zip(lines, naturals)):
        start, end = round(float(t), 3), round(float(t + slot), 3)
        if line["character"] == "GUEST":
            cues.append(Cue(len(cues) + 1, start, end, line.pop("text"), "GUEST"))
            line["cue"] = len(cues)
        else:
            line.update(start=start, end=end)
        t = end + gaps[i]
    write_text(out / "guest.srt", format_srt(cues))

    me = music_and_effects(total, rng)
    sf.write(out / "music_effects.wav", me.T, ME_RATE, subtype="FLOAT")
    if video:
        picture(out / "picture.mp4", total, me)
    characters = {
        "FATHER": {"voice": str(Path(voice).resolve()) if voice else "none", "language": "ru",
                   **({"reference": str(Path(reference).resolve())} if reference else {})},
        "GUEST": {"voice": "none", "base": "espeak:ru+f3", "language": "ru"},
        "HOST": {"voice": "none", "base": "espeak:ru+m1", "language": "ru"},
    }
    scene = {
        "name": out.name,
        "production": production,
        **({"video": "picture.mp4"} if video else {}),
        "music_effects": "music_effects.wav",
        "subtitles": "guest.srt",
        "duration": total,
        "output": {"loudness": -23, "true_peak": -1.0, "max_stretch": 1.25, "ducking": {"depth": 6}},
        "characters": characters,
        "lines": lines,
    }
    text = "# generated by recipes/dub_example/make_scene.py\n" + yaml.safe_dump(scene, sort_keys=False,
                                                                                allow_unicode=True, width=120)
    write_text(out / "scene.yaml", text)
    return out / "scene.yaml"


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/dub_example")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--lines", type=int, default=12)
    ap.add_argument("--voice", default=None, help="voice directory for FATHER (default: the takes as they are)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    print(make_scene(args.out, args.minutes, args.lines, args.voice, args.seed))
