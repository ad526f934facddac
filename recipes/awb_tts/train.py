"""A speaking English voice from recordings of flite's awb voice, transcribed by a recogniser: ingest, voice build.

    python recipes/awb_tts/train.py --out out/awb_tts                   # 32 min of recordings, transcribed by Whisper
    python recipes/awb_tts/train.py --out out/awb_tts --transcripts     # with the texts that were read instead
    python recipes/awb_tts/train.py --out out/awb_tts --resume          # after an interruption

awb is a Scottish-English male voice that flite (Debian package flite) speaks with a statistical model trained on a
real man's recordings; the benchmarks treat it as an archive speaker. Here it stands in for an archive without texts:

1. record:      everyday and licence-prose sentences (``corpus_texts`` of ``train_from_labels.py``, seeded) spoken
                by ``flite -voice awb`` into OUT/recordings/, until ``corpus.minutes`` of ``config.json``;
2. ingest:      the recordings become a dataset; each clip's text comes from Whisper tiny.en (``--asr``), with the
                recogniser's confidence, or with ``--transcripts`` from the sentences themselves;
3. voice build: the conversion model and the voice's own speech model (front end: flite's US English; phone
                timings by forced alignment); clips whose recognised text is doubtful (confidence below 0.5) are
                left out of the speech model and listed in OUT/voice/report.json;
4. speak:       ``voicetwin speak --voice OUT/voice --text "..." -o line.wav`` uses OUT/voice/tts.

``recipes/awb_tts/model/`` was trained differently: with flite's own phone timings (``flite -psdur``), by
``train_from_labels.py`` (which still reproduces it). Both are judged by bench/tts.py:

    python bench/tts.py --voice-en OUT/voice --refs-en OUT/recordings --model-en OUT/voice/tts --parts en
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_from_labels import CONSENT, corpus_texts  # noqa: E402
from voicetwin.errors import MissingDependencyError  # noqa: E402
from voicetwin.examples import flite_corpus  # noqa: E402
from voicetwin.files import write_text  # noqa: E402
from voicetwin.ingest import IngestOptions, ingest  # noqa: E402
from voicetwin.production.build import build_voice  # noqa: E402
from voicetwin.voice.model import BuildOptions  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/awb_tts")
    ap.add_argument("--config", default=str(Path(__file__).with_name("config.json")))
    ap.add_argument("--transcripts", action="store_true", help="give ingest the texts read instead of recognising")
    ap.add_argument("--minutes", type=float, default=None, help="record this much instead of the config's minutes")
    ap.add_argument("--speech-steps", type=int, default=BuildOptions.speech_steps)
    ap.add_argument("--steps", type=int, default=BuildOptions.steps, help="conversion model steps")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted build")
    args = ap.parse_args()
    if subprocess.run(["which", "flite"], capture_output=True).returncode != 0:
        raise MissingDependencyError("flite", None, "recording the awb corpus (apt-get install flite)")
    corpus = json.loads(Path(args.config).read_text(encoding="utf-8"))["corpus"]
    corpus["minutes"] = args.minutes or corpus["minutes"]
    out = Path(args.out)

    # 1. record
    texts = corpus_texts(corpus["minutes"], corpus["prose_share"], corpus["seed"])
    wavs = flite_corpus(texts, out / "recordings", corpus["minutes"], "awb")

    # 2. ingest, with the recogniser (or the texts that were read: "id<TAB>text", the id being the file's name)
    transcripts = None
    if args.transcripts:
        transcripts = out / "transcripts.tsv"
        write_text(transcripts, "".join(f"{wav.stem}\t{text}\n" for wav, text in zip(wavs, texts)))
    options = IngestOptions(language="en", sample_rate=16_000, asr_model=None if args.transcripts else "whisper-tiny.en")
    report = ingest(wavs, out / "dataset", transcripts=transcripts, options=options, progress=True)
    print(f"dataset: {report['minutes_kept']:.1f} min in {report['clips_kept']} clips, "
          f"{report['clips_with_text']} with text")

    # 3. voice build
    options = BuildOptions(steps=args.steps, speech_steps=args.speech_steps)
    voice = build_voice(out / "dataset", out / "voice", options, progress=True, log=print, consent=CONSENT,
                        resume=args.resume)
    print(f"voice: {voice.path}; its speech model: {voice.path / 'tts'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
