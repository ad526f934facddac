"""Quick look at voice conversion: a small festvox-ru voice (6 min of archive) speaks an espeak-ng line.

    python recipes/festvox_ru/quickstart.py --out out/quickstart/voice

Writes before.wav (the espeak-ng "performer"), after.wav (the same line in the recreated voice) and
summary.json with the two speaker judges' similarity to real recordings of the target.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prepare import (  # noqa: E402
    FESTVOX_RU,
    ensure_consent,
    example_consent,
    ids_in,
    prepare_archive,
    prepare_performer_lines,
)
from voicetwin.audio.io import load_audio, save_audio  # noqa: E402
from voicetwin.eval.judges import similarity_report  # noqa: E402
from voicetwin.files import write_json  # noqa: E402
from voicetwin.voice.model import BuildOptions, ConvertOptions, Voice  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/quickstart/voice")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    out = Path(args.out)
    archive = prepare_archive(out / "archive", ids_in("0:40"))
    (_, line, text), = prepare_performer_lines(out / "performer", ids_in("600:601"))
    if (out / "voice" / "config.json").exists():
        ensure_consent(out / "voice", example_consent())
        voice = Voice.load(out / "voice")
    else:  # a voice is built only on a consent record, which goes into the voice folder
        voice = Voice.build(archive, out / "voice", BuildOptions(steps=args.steps, augment=1), progress=True,
                            log=print, consent=example_consent())
    before, sr = load_audio(line, 16000)
    after, out_sr = voice.convert(before, sr, ConvertOptions(mode="speech"))
    save_audio(out / "before.wav", before, sr)
    save_audio(out / "after.wav", after, out_sr)
    refs = [FESTVOX_RU / "wav" / f"{u}.wav" for u in ids_in("560:580")]
    sims = {name: similarity_report([(a, sr)], refs)
            for name, a in (("before", before), ("after", after))}
    summary = {"text": text, "before": str(out / "before.wav"), "after": str(out / "after.wav"),
               **{f"{name}_{judge}": s[judge].score for name, s in sims.items() for judge in s}}
    write_json(out / "summary.json", summary)
    print(f"line: {text}")
    print(f"before (espeak-ng): GE2E {summary['before_ge2e']:.2f}, d-vector {summary['before_dvector']:.2f} -> {out / 'before.wav'}")
    print(f"after (voice):      GE2E {summary['after_ge2e']:.2f}, d-vector {summary['after_dvector']:.2f} -> {out / 'after.wav'}")


if __name__ == "__main__":
    main()
