"""How long `voicetwin similarity CLIP DATASET` takes: the first call (enrols the dataset and keeps its profile next to
the manifest), the next calls (read the profile back, embed the clip only), and `--profile FILE`.

The dataset is --clips real festvox-ru utterances (Debian festvox-ru) in a dataset folder under --work; the clip is
another utterance of the same speaker. Each figure is the wall time of a fresh `python -m voicetwin` process, so it
includes starting Python and importing torch, as a user at a shell sees it.

    .venv/bin/python bench/similarity.py [--clips 35] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav")


def make_dataset(folder: Path, n: int) -> tuple[Path, Path]:
    """``folder``: a dataset of the first ``n`` festvox-ru utterances; returns ``(dataset, another utterance)``."""
    import soundfile as sf

    sys.path.insert(0, str(ROOT))
    from voicetwin.manifest import Clip, write_manifest

    wavs = sorted(FESTVOX.glob("*.wav"))
    if len(wavs) <= n:
        raise SystemExit("festvox-ru is not installed (make install)")
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "clips").mkdir(parents=True)
    clips = []
    for wav in wavs[:n]:
        shutil.copyfile(wav, folder / "clips" / wav.name)
        seconds = sf.info(str(wav)).duration
        clips.append(Clip(wav.stem, f"clips/{wav.name}", str(wav), 0.0, seconds, seconds, 16000))
    write_manifest(folder / "manifest.jsonl", clips)
    print(f"dataset: {n} clips, {sum(c.duration for c in clips) / 60:.1f} min -> {folder}")
    return folder, wavs[-1]


def timed(args: list[str]) -> tuple[float, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "voicetwin", "similarity", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default="out/bench/similarity")
    ap.add_argument("--clips", type=int, default=35)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    dataset, clip = make_dataset(Path(a.work).resolve() / "dataset", a.clips)
    first, value = timed([str(clip), str(dataset)])
    print(f"first call (enrols {a.clips} clips, writes the profile): {first:.1f} s  similarity {value}")
    cached = [timed([str(clip), str(dataset)]) for _ in range(a.repeats)]
    print(f"next calls (profile read back): median {statistics.median(t for t, _ in cached):.1f} s over "
          f"{a.repeats} (min {min(t for t, _ in cached):.1f} s)  similarity {cached[0][1]}")
    import json

    import numpy as np

    profile = Path(a.work).resolve() / "profile.npy"
    data = json.loads(next(dataset.glob("speaker_profile.*.json")).read_text())
    np.save(profile, np.asarray(data["profile"], np.float32))
    reused = [timed([str(clip), "--profile", str(profile)]) for _ in range(a.repeats)]
    print(f"--profile profile.npy: median {statistics.median(t for t, _ in reused):.1f} s  similarity {reused[0][1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
