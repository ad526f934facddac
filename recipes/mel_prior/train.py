"""The mel prior that ships with voicetwin: the mel decoder of a voice built from flite's rms voice.

    python recipes/mel_prior/train.py                      # ~25 min on 2 CPU cores; writes voicetwin/voice/priors/rms
    python recipes/mel_prior/train.py --out out/mel_prior --resume      # after an interruption

Every voice's build starts its mel decoder (``voicetwin.voice.mel``) from this prior (``voice build --mel-prior``,
default ``auto``) instead of random weights: the decoder has learnt how content and pitch become a plausible mel on
one speaker, and the target's recordings then only move it to their timbre. rms is a US-English male voice that
flite (Debian package flite) speaks with a statistical model of a real man's recordings. None of the benchmarks'
targets (the festvox-ru speaker, flite's awb) is rms, so no benchmark voice starts from its own speaker.

1. record:  everyday and licence-prose sentences (``corpus_texts`` of ``recipes/awb_tts/train_from_labels.py``,
            seed 11) spoken by ``flite -voice rms`` into OUT/recordings/ until ``--minutes`` of audio;
2. ingest:  the recordings become a dataset (no text is needed);
3. build:   a voice with the defaults, its decoder from random weights (``mel_prior="none"``), seed 0;
4. export:  its decoder as ``config.json`` + ``model.safetensors`` (1.3 MB) into ``--export``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "recipes" / "awb_tts"))

from train_from_labels import corpus_texts  # noqa: E402
from voicetwin.consent import ConsentRecord  # noqa: E402
from voicetwin.errors import MissingDependencyError  # noqa: E402
from voicetwin.examples import flite_corpus  # noqa: E402
from voicetwin.ingest import IngestOptions, ingest  # noqa: E402
from voicetwin.voice.model import BuildOptions, Voice  # noqa: E402

SPEAKER = "rms (flite's cmu_us_rms voice)"
CONSENT = ConsentRecord(subject=SPEAKER, granted_by=SPEAKER, relation="self", scope=("speech",),
                        document="voice released for speech synthesis in the Debian package flite "
                                 "(/usr/share/doc/libflite1/copyright)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/mel_prior", help="recordings, dataset and the rms voice")
    ap.add_argument("--export", default=str(ROOT / "voicetwin" / "voice" / "priors" / "rms"),
                    help="where the prior is written (default: where voicetwin finds mel-prior-rms)")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--steps", type=int, default=BuildOptions.steps)
    ap.add_argument("--resume", action="store_true", help="continue an interrupted build")
    args = ap.parse_args()
    if subprocess.run(["which", "flite"], capture_output=True).returncode != 0:
        raise MissingDependencyError("flite", None, "recording the rms corpus (apt-get install flite)")
    out = Path(args.out)

    wavs = flite_corpus(corpus_texts(args.minutes, 0.5, 11), out / "recordings", args.minutes, "rms")
    report = ingest(wavs, out / "dataset", options=IngestOptions(language="en", sample_rate=16_000), progress=True)
    print(f"dataset: {report['minutes_kept']:.1f} min in {report['clips_kept']} clips")
    voice = Voice.build(out / "dataset", out / "voice", BuildOptions(steps=args.steps, mel_prior="none"),
                        progress=True, log=print, consent=CONSENT, resume=args.resume)
    trained_on = f"{SPEAKER}, {report['minutes_kept']:.1f} min, {args.steps} steps"
    print(f"prior: {voice.export_mel_prior(args.export, trained_on)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
