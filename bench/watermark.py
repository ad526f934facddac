"""Benchmark of voicetwin's audio watermark: inaudibility, robustness, false positives, speed.

Marked set: real speech (festvox-ru, at 16, 44.1 and 48 kHz), espeak-ng and flite speech, synthetic music and noise,
each with a random payload. Attacks: MP3 at 64 kbit/s (PyAV), resampling to 16 kHz and back, white noise at
20 dB SNR, gain -10 dB, gain +6 dB with hard clipping at full scale, a random 3-second excerpt (and, harder than
asked, a 3-second excerpt of the MP3). Unmarked set: 1000 clips (all 620 festvox-ru utterances, espeak-ng and
flite sentences, synthetic music, coloured noise) plus marked clips read with a different key.

    python bench/watermark.py              # full run (a few minutes on 2 cores)
    python bench/watermark.py --quick      # smaller sets
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicetwin.audio.io import load_audio, resample, save_audio  # noqa: E402
from voicetwin.production.watermark import DEFAULT_KEY, Payload, WatermarkConfig, detect, embed, snr_db  # noqa: E402

FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
EN_WORDS = (
    "the film opens on a quiet harbour where an old captain mends his nets and tells the children about storms "
    "that came from the north long before the town had a name we will need another take of this line please "
    "speak slowly and keep the last word soft because the music rises under it tomorrow the crew moves to the "
    "station and the scene with the letter must be finished before the light goes"
).split()


# ------------------------------------------------------------------------------------------------------- material


def festvox(n: int | None = None) -> list[tuple[str, np.ndarray, int]]:
    wavs = sorted((FESTVOX / "wav").glob("*.wav"))
    if not wavs:
        sys.exit("festvox-ru is not installed (apt-get install festvox-ru)")
    out = []
    for p in wavs[:n]:
        a, sr = load_audio(p)
        out.append((f"festvox:{p.stem}", a, sr))
    return out


def russian_lines() -> list[str]:
    lines = []
    for line in (FESTVOX / "etc" / "txt.done.data").read_text(encoding="utf-8").splitlines():
        if '"' in line:
            lines.append(line.split('"')[1].replace("+", ""))
    return lines


def synth_speech(n: int, rng: np.random.Generator, tmp: Path, engine: str) -> list[tuple[str, np.ndarray, int]]:
    if shutil.which(engine.split()[0]) is None:
        sys.exit(f"{engine} is not installed")
    ru = russian_lines()
    out = []
    for i in range(n):
        path = tmp / f"{engine}-{i}.wav"
        if engine == "espeak-ng":
            if i % 2:
                voice, text = rng.choice(["ru", "ru+m3", "ru+f2"]), ru[int(rng.integers(len(ru)))]
            else:
                voice = rng.choice(["en", "en+m3", "en+f3", "en-us"])
                text = " ".join(rng.choice(EN_WORDS, size=int(rng.integers(10, 25))))
            cmd = ["espeak-ng", "-v", str(voice), "-s", str(int(rng.integers(130, 190))), "-w", str(path), text]
        else:
            text = " ".join(rng.choice(EN_WORDS, size=int(rng.integers(10, 25))))
            cmd = ["flite", "-voice", str(rng.choice(["slt", "awb", "rms", "kal16"])), "-t", text, "-o", str(path)]
        subprocess.run(cmd, check=True, capture_output=True)
        a, sr = load_audio(path)
        out.append((f"{engine}:{i}", a, sr))
    return out


def synth_music(n: int, rng: np.random.Generator, sr: int = 44100) -> list[tuple[str, np.ndarray, int]]:
    """Chords of harmonic notes with envelopes, a bass line and noise-burst percussion."""
    out = []
    for i in range(n):
        seconds = float(rng.uniform(4, 9))
        t = np.arange(int(seconds * sr)) / sr
        y = np.zeros_like(t)
        beat = 60 / rng.uniform(70, 150)
        root = 110 * 2 ** (rng.integers(0, 12) / 12)
        for k, start in enumerate(np.arange(0, seconds, beat)):
            chord = root * 2 ** (np.array(rng.choice([[0, 4, 7], [0, 3, 7], [0, 5, 9], [2, 5, 9]])) / 12)
            env = np.clip((t - start) / 0.01, 0, 1) * np.exp(-np.clip(t - start, 0, None) * rng.uniform(1.5, 5))
            env[t < start] = 0
            for f in chord * rng.choice([1, 2]):
                for h in range(1, 8):
                    y += env * 0.1 / h**1.3 * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.3))
            y += env * 0.3 * np.sin(2 * np.pi * root / 2 * t)
            if k % 2 == 0:  # percussion
                burst = np.exp(-np.clip(t - start, 0, None) * 40) * (t >= start)
                y += burst * 0.2 * rng.standard_normal(len(t))
        out.append((f"music:{i}", (0.8 * y / np.max(np.abs(y))).astype(np.float32), sr))
    return out


def synth_noise(n: int, rng: np.random.Generator, sr: int = 48000) -> list[tuple[str, np.ndarray, int]]:
    out = []
    for i in range(n):
        white = rng.standard_normal(int(rng.uniform(4, 8) * sr))
        spec = np.fft.rfft(white)
        f = np.maximum(np.fft.rfftfreq(len(white), 1 / sr), 20.0)
        colour = ["white", "pink", "brown"][i % 3]
        spec = spec / f ** {"white": 0.0, "pink": 0.5, "brown": 1.0}[colour]
        y = np.fft.irfft(spec, n=len(white))
        y *= rng.uniform(0.05, 0.5) / np.max(np.abs(y))
        out.append((f"noise-{colour}:{i}", y.astype(np.float32), sr))
    return out


def peak_normalise(a: np.ndarray, peak_db: float = -1.0) -> np.ndarray:
    return (a / max(np.max(np.abs(a)), 1e-9) * 10 ** (peak_db / 20)).astype(np.float32)


# --------------------------------------------------------------------------------------------------------- attacks


def mp3(a: np.ndarray, sr: int, bitrate: int = 64000) -> np.ndarray:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.mp3"
        save_audio(path, a, sr, bitrate=bitrate)
        b, _ = load_audio(path, sample_rate=sr)
    return b


def excerpt(a: np.ndarray, sr: int, rng: np.random.Generator, seconds: float = 3.0) -> np.ndarray:
    n = int(seconds * sr)
    start = int(rng.integers(0, max(1, len(a) - n)))
    return a[start : start + n]


def attacks(a: np.ndarray, sr: int, rng: np.random.Generator):
    yield "none", a
    yield "mp3-64k", mp3(a, sr)
    yield "resample-16k", resample(resample(a, sr, 16000), 16000, sr) if sr != 16000 else resample(
        resample(a, sr, 44100), 44100, 16000)
    noise = rng.standard_normal(len(a))
    noise *= np.sqrt(np.mean(a.astype(np.float64) ** 2) / np.mean(noise**2) / 10 ** (20 / 10))
    yield "noise-20dB", (a + noise).astype(np.float32)
    yield "gain-10dB", (a * 10 ** (-10 / 20)).astype(np.float32)
    yield "gain+6dB-clip", np.clip(a * 10 ** (6 / 20), -1, 1).astype(np.float32)
    yield "excerpt-3s", excerpt(a, sr, rng)
    yield "excerpt-3s+mp3", mp3(excerpt(a, sr, rng), sr)


# ------------------------------------------------------------------------------------------------------------ main


def _kind(name: str) -> str:
    """speech, music or noise, from a clip name such as ``festvox:ru_0001@16000`` or ``noise-pink:4``."""
    source = name.split(":")[0].split("-")[0]
    return "speech" if source in ("festvox", "espeak", "flite") else source


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sets (for a smoke run)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    config = WatermarkConfig()
    q = args.quick
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        t0 = time.time()
        speech = festvox()
        n_esp, n_flite, n_music, n_noise = (10, 5, 5, 5) if q else (200, 100, 50, 30)
        espeak = synth_speech(n_esp, rng, tmp, "espeak-ng")
        flite = synth_speech(n_flite, rng, tmp, "flite")
        music = synth_music(n_music, rng)
        noise = synth_noise(n_noise, rng)
        print(f"material ready in {time.time() - t0:.0f} s", file=sys.stderr)

    # ---- marked set: every 6th festvox utterance at 16 / 44.1 / 48 kHz, espeak, flite, music, noise
    marked_src = []
    rates = [16000, 44100, 48000]
    for i, (name, a, sr) in enumerate(speech[:: 6][: 12 if q else 90]):
        r = rates[i % 3]
        marked_src.append((name + f"@{r}", resample(a, sr, r), r))
    n_syn = 4 if q else 20
    marked_src += espeak[:n_syn] + flite[:n_syn] + music[: n_syn // 2] + noise[: n_syn // 2]
    # clips shorter than 4 s are joined with the next utterance of the same kind (a 3-s excerpt must fit)
    marked = []
    for name, a, sr in marked_src:
        a = peak_normalise(a)
        if len(a) < 4 * sr:
            a = np.concatenate([a, np.zeros(sr // 4, np.float32), a])
        marked.append((name, a, sr))

    results: dict[str, list] = {}
    snrs, t_embed, t_detect, seconds = [], 0.0, 0.0, 0.0
    for name, a, sr in marked:
        payload = Payload(int(rng.integers(0, 2**16)), int(rng.integers(0, 2**24)))
        t = time.perf_counter()
        y = embed(a, sr, payload, config=config)
        t_embed += time.perf_counter() - t
        seconds += len(a) / sr
        snrs.append(snr_db(a, y))
        y = np.clip(y, -1, 1)
        truth = payload.bits()
        for attack, b in attacks(y, sr, rng):
            t = time.perf_counter()
            d = detect(b, sr, config=config)
            if attack == "none":
                t_detect += time.perf_counter() - t
            results.setdefault(attack, []).append(
                (d.detected, float(np.mean(d.bits == truth)), d.detected and d.payload == payload, d.score,
                 _kind(name), name))

    # ---- unmarked set: 1000 clips
    null = speech + espeak + flite + music + noise
    null = null[: (100 if q else 1000)]
    null_scores, null_hits, null_crc = [], 0, 0
    for name, a, sr in null:
        if len(a) < 1.2 * sr:
            a = np.concatenate([a, a])
        d = detect(peak_normalise(a), sr, config=config)
        null_scores.append(d.score)
        null_hits += d.detected
        null_crc += d.crc_ok
    other_key = 0
    for name, a, sr in marked[:50]:
        y = embed(a, sr, Payload(1, 2), config=config)
        other_key += detect(y, sr, key="a-different-key", config=config).detected

    # ---- report
    print(f"watermark bench (voicetwin {DEFAULT_KEY}; config {config})")
    print(f"marked clips: {len(marked)} ({seconds / 60:.1f} min: festvox-ru at 16/44.1/48 kHz, espeak-ng, flite, "
          f"music, noise), peak -1 dBFS")
    print(f"SNR (signal to watermark): min {min(snrs):.2f} dB, mean {np.mean(snrs):.2f} dB   [target >= 35]")
    print(f"{'attack':16s} {'detected':>9s} {'bit acc':>8s} {'exact':>7s} {'min z':>6s}   [targets: >= 99 %, >= 98 %]"
          "   detected, bit acc on:  speech | music | noise")
    for attack, rows in results.items():
        det = np.mean([r[0] for r in rows])
        acc = np.mean([r[1] for r in rows])
        exact = np.mean([r[2] for r in rows])
        parts = []
        for kind in ("speech", "music", "noise"):
            sub = [r for r in rows if r[4] == kind]
            parts.append(f"{100 * np.mean([r[0] for r in sub]):5.1f}% {100 * np.mean([r[1] for r in sub]):6.2f}%")
        print(f"{attack:16s} {100 * det:8.1f}% {100 * acc:7.2f}% {100 * exact:6.1f}% {min(r[3] for r in rows):6.1f}   "
              + " | ".join(parts))
    for attack, rows in results.items():
        missed = [f"{r[5]} (z {r[3]:.1f}, bits {100 * r[1]:.0f}%)" for r in rows if not r[2]]
        if missed:
            print(f"  not decoded exactly after {attack}: " + ", ".join(missed))
    print(f"unmarked clips: {len(null)} (festvox-ru {len(speech)}, espeak-ng {len(espeak)}, flite {len(flite)}, "
          f"music {len(music)}, noise {len(noise)})")
    print(f"false positives: {null_hits}/{len(null)} = {100 * null_hits / len(null):.2f}%   [target <= 0.1 %]; "
          f"z max {max(null_scores):.2f}, mean {np.mean(null_scores):.2f}, sd {np.std(null_scores):.2f}; "
          f"CRC passes by chance {null_crc}; threshold z >= {config.threshold} (or >= {config.crc_threshold} "
          "with a valid CRC)")
    print(f"marked with another key: {other_key}/50 detected")
    print(f"speed (2 shared cores): embed {seconds / t_embed:.0f}x real time, detect {seconds / t_detect:.0f}x real "
          "time   [target > 50x]")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
