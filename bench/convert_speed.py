"""How fast `voicetwin convert` is from the command line, start-up included: one 5-second take, and a batch.

    python bench/convert_speed.py --voice out/bench_vc/ru/voice
    python bench/convert_speed.py --voice VOICE --takes 20 --runs 3

Takes are espeak-ng renditions of held-out festvox-ru texts (positions 590:620); the single take is the first one
cut or padded to exactly 5 s. Each row runs the real command in a fresh process (``voicetwin convert --voice VOICE
IN -o OUT``: imports, model loading, pitch tracking, content, decoding, vocoder, watermark, provenance, atomic
writes), timed by wall clock, the median of ``--runs``; a batch is one process over a folder of takes. x real time
= seconds of input audio per second of wall time. Rows: the default render (mel decoder, HiFi-GAN with its first
three stages in int8), the same in float32 (``VOICETWIN_VOCODER_PRECISION=float32``), and WORLD
(``--vocoder world``), run one after another on the same machine; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import vc  # noqa: E402

from voicetwin.audio.io import load_audio  # noqa: E402

SR = 16_000
RENDERS = {  # row -> (extra arguments, environment)
    "default (mel decoder, HiFi-GAN int8)": ([], {}),
    "mel decoder, HiFi-GAN float32": ([], {"VOICETWIN_VOCODER_PRECISION": "float32"}),
    "WORLD vocoder": (["--vocoder", "world"], {}),
}


def takes(folder: Path, n: int) -> list[Path]:
    """``n`` espeak-ng Russian lines in ``folder`` (16 kHz wav)."""
    texts = vc.read_texts()
    folder.mkdir(parents=True, exist_ok=True)
    return [vc.espeak(texts[uid], folder / f"{uid}.wav") for uid in vc.ids_in("590:620")[:n]]


def run(voice: str, inputs: list[Path], out: Path, extra: list[str], env: dict) -> float:
    """Wall seconds of one ``voicetwin convert`` process."""
    if out.exists():
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    command = [sys.executable, "-m", "voicetwin", "convert", "--voice", voice, *map(str, inputs), "-o", str(out),
               *extra]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, **env})
    return time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voice", required=True, help="a voice built with the defaults (with its mel decoder)")
    ap.add_argument("--takes", type=int, default=20, help="takes in the batch")
    ap.add_argument("--runs", type=int, default=3, help="runs of each single-take row (the median is printed)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        batch = takes(tmp / "takes", args.takes)
        audio = load_audio(batch[0], SR)[0]
        single = tmp / "take5.wav"
        sf.write(single, np.pad(audio, (0, max(0, 5 * SR - len(audio))))[: 5 * SR], SR)
        batch_seconds = sum(sf.info(str(p)).duration for p in batch)
        run(args.voice, [single], tmp / "warm.wav", [], {})  # the first run exports and caches the vocoder
        print(f"voice {args.voice}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"{'render':40s} {'one 5 s take: s':>16s} {'x RT':>6s} {f'batch of {len(batch)} ({batch_seconds:.0f} s): s':>24s} "
              f"{'x RT':>6s}")
        for name, (extra, env) in RENDERS.items():
            one = statistics.median(run(args.voice, [single], tmp / "one.wav", extra, env) for _ in range(args.runs))
            many = run(args.voice, [tmp / "takes"], tmp / "batch", extra, env)
            print(f"{name:40s} {one:16.2f} {5.0 / one:6.2f} {many:24.1f} {batch_seconds / many:6.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
