"""Benchmark of `voicetwin ingest` on a generated mixed archive with known ground truth.

Generates (once) a ~20-minute archive in an mp3 or mp4 container: festvox-ru recordings of the target, an
espeak-ng interviewer and guest, synthetic music, noise bursts and silence. Ingests it with reference clips of the
target (utterances not in the archive) and, with --mode both, also without references (dominant speaker).
Prints, for the kept clips:

* purity: share of the sound inside kept clips that is the target's speech (pauses/room tone excluded), target >= 95%
* coverage: share of the target's clean speech that lies inside kept clips, target >= 80% (stretches of the
  target under a loud noise bed, SNR 0-5 dB, are meant to be rejected and are reported apart)
* speed: archive duration / ingest wall time, target > 10x real time
* minutes rejected by reason

    python bench/ingest.py --minutes 20 --container mp3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicetwin.examples import load_truth, make_archive, score_clips  # noqa: E402
from voicetwin.ingest.pipeline import IngestOptions, ingest  # noqa: E402
from voicetwin.manifest import read_manifest  # noqa: E402

TARGETS = {"purity": 0.95, "coverage": 0.80, "speed": 10.0}


def get_archive(workdir: Path, minutes: float, container: str, seed: int):
    folder = workdir / f"archive-{minutes:g}min-{container}-seed{seed}"
    truth = folder / "archive.truth.json"
    if truth.exists():
        return load_truth(truth)
    t = time.time()
    archive = make_archive(folder, minutes=minutes, container=container, seed=seed)
    print(f"generated {archive.path} ({archive.duration / 60:.1f} min) in {time.time() - t:.0f} s")
    return archive


def run(archive, out: Path, references: bool) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    t = time.time()
    report = ingest([archive.path], out, references=archive.references if references else [],
                    options=IngestOptions(), progress=False)
    wall = time.time() - t
    clips = read_manifest(out)
    kept = [(c.start, c.end) for c in clips if c.kept]
    score = score_clips(archive, kept)
    return {"report": report, "score": score, "wall": wall, "speed": archive.duration / wall}


def show(name: str, archive, r: dict) -> bool:
    s, rep = r["score"], r["report"]
    ok = {"purity": s["purity"] >= TARGETS["purity"], "coverage": s["coverage"] >= TARGETS["coverage"],
          "speed": r["speed"] > TARGETS["speed"]}
    mark = {True: "ok", False: "MISSED"}
    print(f"\n== {name}: speaker threshold {rep['speaker']['threshold']:.3f}")
    print(f"target speech in archive: {archive.seconds('target') / 60:.2f} min of {archive.duration / 60:.2f} min")
    print(f"kept: {rep['clips_kept']} clips, {rep['minutes_kept']:.2f} min")
    print(f"purity   (target share of sound in kept clips): {100 * s['purity']:6.2f} %  (>= 95 %)  "
          f"{mark[ok['purity']]}")
    print(f"coverage (target speech inside kept clips):     {100 * s['coverage']:6.2f} %  (>= 80 %)  "
          f"{mark[ok['coverage']]}")
    print(f"speed: {archive.duration:.0f} s of audio in {r['wall']:.1f} s = {r['speed']:.1f}x real time (> 10x)  "
          f"{mark[ok['speed']]}")
    print(f"target speech under a noise bed (SNR 0-5 dB, not counted in coverage): {s['degraded_seconds']:.1f} s, "
          f"of which kept {s['degraded_seconds_kept']:.1f} s")
    print("seconds inside kept clips by ground-truth kind: "
          + ", ".join(f"{k} {v:.1f}" for k, v in s["seconds_by_kind"].items() if v))
    print("minutes rejected by reason: "
          + ", ".join(f"{k} {v:.2f}" for k, v in rep["minutes_rejected_by_reason"].items()))
    return all(ok.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--container", choices=["mp3", "mp4"], default="mp3")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=["references", "dominant", "both"], default="both")
    ap.add_argument("--workdir", default="out/bench/ingest")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = ap.parse_args()
    workdir = Path(args.workdir)
    archive = get_archive(workdir, args.minutes, args.container, args.seed)
    print(f"archive: {archive.path} ({archive.duration / 60:.1f} min, {os.cpu_count()} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f})")
    results, passed = {}, True
    modes = ["references", "dominant"] if args.mode == "both" else [args.mode]
    for mode in modes:
        r = run(archive, workdir / f"dataset-{mode}", references=mode == "references")
        passed &= show("with reference clips" if mode == "references" else "without references (dominant speaker)",
                       archive, r)
        results[mode] = {"purity": r["score"]["purity"], "coverage": r["score"]["coverage"], "speed": r["speed"],
                         "minutes_rejected_by_reason": r["report"]["minutes_rejected_by_reason"]}
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    print("\nall targets met" if passed else "\nsome targets missed")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
