"""Pitch trackers on sung input: the singing tracker choices against a known melody and against two judges.

Sets (all generated; nothing downloaded):

* tones: harmonic tones (6 partials, -40 dB noise) with 5.5 Hz vibrato of +-50 cents at 80-1000 Hz, 2 s each;
* breathy: held notes at 150-1000 Hz with vibrato, rendered by WORLD with half or 80 % of the energy aperiodic;
* espeak: espeak-ng Russian renditions of held-out festvox-ru texts, resynthesised by WORLD onto the melodies
  bench/vc.py sings them on (major-scale notes 200-800 Hz, octave leaps, vibrato, glides);
* espeak low: the same lines on the same melodies an octave down (100-400 Hz);
* festvox: the festvox-ru speaker's own held-out recordings on such melodies (a real voice's envelope and breath).

For each tracker, on frames where the melody is voiced (two frames either side of each voicing edge left out):
median and 95th-percentile absolute error in cents and octave errors (>= 600 cents off) against the melody,
voicing recall; false voicing on frames where the melody is unvoiced; median absolute difference and octave
disagreement against each judge of voicetwin.eval.judges (CREPE tiny and pYIN), on frames both hear as voiced;
CPU seconds per second of audio (one thread). The judges' own errors against the melody are rows too.

With ``--voice DIR`` the espeak lines are also converted through that voice (singing mode, auto key) with each
tracker, and the judges' F0 of the converted lines is compared with the transposed melody.

    python bench/pitch.py --out out/bench_pitch
    python bench/pitch.py --out out/bench_pitch --sets convert --voice out/bench_vc/ru/voice
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from vc import melody  # noqa: E402  (the melodies bench/vc.py sings its lines on)
from prepare import FESTVOX_RU, espeak, ids_in, read_texts  # noqa: E402  (recipes/festvox_ru, on the path via vc)
from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.audio.pitch import SINGING_RANGE_HZ, track_f0  # noqa: E402
from voicetwin.audio.world import analyze, synthesize  # noqa: E402
from voicetwin.eval import judges  # noqa: E402
from voicetwin.files import write_json  # noqa: E402

SR = 16_000
JUDGES = ("crepe", "pyin")


def tones() -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(3)
    items = []
    for f in (80.0, 110.0, 220.0, 330.0, 440.0, 660.0, 880.0, 1000.0):
        t = np.arange(2 * SR) / SR
        hz = f * 2 ** (50 / 1200 * np.sin(2 * np.pi * 5.5 * t))
        phase = 2 * np.pi * np.cumsum(hz) / SR
        x = sum(np.sin(k * phase) / k for k in range(1, 7) if k * f < SR / 2)
        x = 0.3 * x / np.abs(x).max() + 0.003 * rng.standard_normal(len(t))
        ref = hz[::160][: len(t) // 160 + 1]
        items.append((x.astype(np.float32), ref))
    return items


def breathy() -> list[tuple[np.ndarray, np.ndarray]]:
    """Held notes with vibrato (+-30 cents) rendered by WORLD with half or 80 % of the energy aperiodic."""
    items, frames, bins = [], 120, 513
    freqs = np.arange(bins) * SR / 1024
    sp = np.tile(np.exp(-((freqs - 600) / 900) ** 2) + 0.05, (frames, 1)) * 1e-3
    for note in (150.0, 300.0, 500.0, 740.0, 1000.0):
        f0 = note * 2 ** (30 * np.sin(2 * np.pi * 5.5 * np.arange(frames) / 100) / 1200)
        for ap in (0.5, 0.8):
            x = synthesize(f0, sp, np.full((frames, bins), ap), SR, 10.0)
            items.append((np.asarray(x, np.float32), np.pad(f0, (0, len(x) // 160 + 1 - frames))))
    return items


def on_melody(speech: np.ndarray, rng: np.random.Generator, factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """WORLD resynthesis of ``speech`` with a melody (times ``factor``) on its voiced frames: (audio, F0 per 10 ms)."""
    frames = analyze(speech, SR, 10.0, f0_method="harvest")
    f0 = np.where(frames.f0 > 0, melody(frames.frames, rng) * factor, 0.0)
    return synthesize(f0, frames.sp, frames.ap, SR, 10.0, len(speech)).astype(np.float32), f0


def sung_sets(out: Path, lines: int) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    texts = read_texts()
    ids = ids_in("590:620")[:lines]
    speech = []
    for uid in ids:
        wav = out / f"espeak_{uid}.wav"
        if not wav.exists():
            espeak(texts[uid], wav)
        speech.append(load_audio(wav, SR)[0])
    rng, low, real = np.random.default_rng(7), np.random.default_rng(9), np.random.default_rng(8)
    return {
        "espeak": [on_melody(x, rng) for x in speech],
        "espeak low": [on_melody(x, low, 0.5) for x in speech],
        "festvox": [on_melody(load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0], real) for u in ids],
    }


def edges_out(f0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(voiced frames of the melody away from voicing edges, unvoiced frames away from them)."""
    voiced = f0 > 0
    edge = np.convolve(np.abs(np.diff(voiced.astype(int), prepend=0, append=0)), np.ones(5), "same")[:-1] > 0
    return voiced & ~edge, ~voiced & ~edge


def cents(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 1200 * np.log2(a / b)


def score(items, tracks, judge_tracks) -> dict:
    err, recall, false, vs = [], [], [], {j: [] for j in JUDGES}
    for (x, ref), f0, *heard in zip(items, tracks, *[judge_tracks[j] for j in JUDGES]):
        n = min(len(ref), len(f0))
        ref, f0 = ref[:n], f0[:n]
        good, silent = edges_out(ref)
        both = good & (f0 > 0)
        err.append(cents(f0[both], ref[both]))
        recall.append((both.sum(), good.sum()))
        false.append(((f0[silent] > 0).sum(), silent.sum()))
        for j, h in zip(JUDGES, heard):
            m = min(n, len(h))
            agree = (f0[:m] > 0) & (h[:m] > 0)
            vs[j].append(cents(f0[:m][agree], h[:m][agree]))
    e = np.abs(np.concatenate(err))
    row = {
        "median_cents": float(np.median(e)) if e.size else float("nan"),
        "p95_cents": float(np.percentile(e, 95)) if e.size else float("nan"),
        "octave_errors_pct": float(100 * np.mean(e >= 600)) if e.size else float("nan"),
        "voicing_recall_pct": float(100 * sum(a for a, _ in recall) / max(1, sum(b for _, b in recall))),
        "false_voicing_pct": float(100 * sum(a for a, _ in false) / max(1, sum(b for _, b in false))),
    }
    for j in JUDGES:
        d = np.abs(np.concatenate(vs[j]))
        row[f"vs_{j}_median_cents"] = float(np.median(d)) if d.size else float("nan")
        row[f"vs_{j}_octave_pct"] = float(100 * np.mean(d >= 600)) if d.size else float("nan")
    return row


def run_tracker(name: str, items) -> tuple[list[np.ndarray], float]:
    tracks, cpu = [], 0.0
    for x, _ in items:
        start = time.process_time()
        if name in JUDGES:
            f0 = judges.extract_f0((x, SR), method=name, frame_period_ms=10.0, f0_floor=40.0, f0_ceil=1100.0)
        else:
            f0 = track_f0(x, SR, 10.0, SINGING_RANGE_HZ, name)
        cpu += time.process_time() - start
        tracks.append(np.asarray(f0, dtype=np.float64))
    return tracks, cpu / sum(len(x) / SR for x, _ in items)


def converted(voice_dir: Path, items, trackers: list[str]) -> list[dict]:
    """The sung lines converted through a voice with each tracker; the output's pitch by each judge."""
    from voicetwin.voice.model import ConvertOptions, Voice

    voice, rows = Voice.load(voice_dir), []
    for tracker in trackers:
        options = ConvertOptions(mode="singing", transpose="auto", f0_method=tracker)
        found: dict[str, tuple[list, int, int]] = {j: ([], 0, 0) for j in JUDGES}
        for x, ref in items:
            shift = voice.pitch_plan([track_f0(x, SR, 10.0, SINGING_RANGE_HZ, tracker)], options)[1]
            y, _ = voice.convert(x, SR, options)
            good, _ = edges_out(ref)
            target = np.where(good, ref * 2 ** (shift / 12), 0.0)
            for j in JUDGES:
                h = judges.extract_f0((y, SR), method=j, frame_period_ms=10.0, f0_floor=40.0)
                n = min(len(h), len(target))
                both = (h[:n] > 0) & (target[:n] > 0)
                errors, heard, voiced = found[j]
                found[j] = (errors + [np.abs(cents(h[:n][both], target[:n][both]))], heard + int(both.sum()),
                            voiced + int((target[:n] > 0).sum()))
        row = {"set": "espeak converted", "tracker": tracker}
        for j, (errors, heard, voiced) in found.items():
            e = np.concatenate(errors)
            row.update({f"{j}_median_cents": float(np.median(e)),
                        f"{j}_octave_errors_pct": float(100 * np.mean(e >= 600)),
                        f"{j}_voiced_heard_pct": 100 * heard / max(1, voiced)})
        rows.append(row)
        print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench_pitch")
    ap.add_argument("--lines", type=int, default=8, help="sung lines per set")
    ap.add_argument("--trackers", default="dio+swift,fcpe,fcpe+swift")
    ap.add_argument("--sets", default="tracks", help="tracks, convert (needs --voice) or tracks,convert")
    ap.add_argument("--voice", type=Path, default=None, help="a singing-mode voice to convert the espeak lines with")
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.sets.split(",")
    sung = sung_sets(out, args.lines)
    sets = {"tones": tones(), "breathy": breathy(), **sung} if "tracks" in wanted else {}
    trackers = args.trackers.split(",")
    track_f0(np.zeros(SR, np.float32), SR, 10.0, SINGING_RANGE_HZ, "fcpe")  # load the weights before timing
    rows, conversions = [], []
    if "convert" in wanted:
        if args.voice is None:
            ap.error("--sets convert needs --voice")
        conversions = converted(args.voice, sung["espeak"], trackers)
    for set_name, items in sets.items():
        seconds = sum(len(x) / SR for x, _ in items)
        judged = {j: run_tracker(j, items) for j in JUDGES}
        heard = {j: t for j, (t, _) in judged.items()}
        for name in [*trackers, *JUDGES]:
            tracks, cpu = judged[name] if name in JUDGES else run_tracker(name, items)
            row = {"set": set_name, "tracker": name + (" (judge)" if name in JUDGES else ""),
                   "seconds": round(seconds, 1), **score(items, tracks, heard), "cpu_s_per_s": cpu}
            rows.append(row)
            print(" | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()), flush=True)
    for table in (rows, conversions):
        if not table:
            continue
        keys = list(table[0])
        print("\n| " + " | ".join(keys) + " |\n|" + "---|" * len(keys))
        for row in table:
            print("| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    write_json(out / ("results.json" if "tracks" in wanted else "converted.json"),
               {"rows": rows, "converted": conversions, "lines": args.lines, "trackers": trackers})


if __name__ == "__main__":
    main()
