"""A speaking Russian voice from the festvox-ru recordings and their transcripts: ingest, then voice build.

    python recipes/festvox_ru_tts/train.py --out out/festvox_ru_tts            # the whole speaker, ~96 min of audio
    python recipes/festvox_ru_tts/train.py --out out/festvox_ru_tts --minutes 30
    python recipes/festvox_ru_tts/train.py --out out/festvox_ru_tts --resume   # after an interruption

The same three steps as on the command line (README, "From an archive to a speaking voice"):

1. ingest: the recordings (Debian package festvox-ru, one Russian male speaker) become a dataset, each clip with its
   text from the package's ``etc/txt.done.data``. The last 20 utterances (``ru_0818``-``ru_0844``) are never read:
   bench/tts.py speaks their texts;
2. voice build: the conversion model and the voice's own speech model (front end: festival's Russian; phone
   timings: forced alignment of the front end's phones on the recordings; then the acoustic model, 900 steps,
   seeded: the same weights on every run on this machine);
3. speak: OUT/voice/tts is used by ``voicetwin speak --voice OUT/voice`` without ``--base``.

``recipes/festvox_ru_tts/model/`` was trained differently: from the package's phone labels
(``lab/*.lab``) instead of forced alignment, by ``train_from_labels.py`` (which still reproduces it). Both are
judged by bench/tts.py:

    python bench/tts.py --voice-ru OUT/voice --model-ru OUT/voice/tts --parts ru
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from voicetwin.consent import ConsentRecord  # noqa: E402
from voicetwin.errors import InputNotFoundError  # noqa: E402
from voicetwin.ingest import IngestOptions, ingest  # noqa: E402
from voicetwin.production.build import build_voice  # noqa: E402
from voicetwin.voice.model import BuildOptions  # noqa: E402

FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
HELD_OUT = 20  # bench/tts.py's test lines
# the recordings were released for speech synthesis: the voice carries that as its consent record
SPEAKER = "festvox-ru speaker (msu_ru_nsh)"
CONSENT = ConsentRecord(subject=SPEAKER, granted_by=SPEAKER, relation="self", scope=("speech", "singing"),
                        document="recordings released for speech synthesis in the Debian package festvox-ru "
                                 "(/usr/share/doc/festvox-ru/copyright)")


def recordings(minutes: float | None) -> list[Path]:
    """The package's recordings in transcript order, without the held-out lines, up to about ``minutes``."""
    transcripts = FESTVOX_RU / "etc" / "txt.done.data"
    if not transcripts.exists():
        raise InputNotFoundError("festvox-ru is not installed", path=transcripts, fix="apt-get install festvox-ru")
    ids = [line.split()[1] for line in transcripts.read_text(encoding="utf-8").splitlines() if '"' in line]
    wavs = [FESTVOX_RU / "wav" / f"{uid}.wav" for uid in ids[:-HELD_OUT]]
    if minutes is None:
        return wavs
    import soundfile as sf

    chosen, total = [], 0.0
    for wav in wavs:
        if total >= minutes * 60:
            break
        chosen.append(wav)
        total += sf.info(str(wav)).duration
    return chosen


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/festvox_ru_tts")
    ap.add_argument("--minutes", type=float, default=None, help="use only the first recordings, about this long")
    ap.add_argument("--speech-steps", type=int, default=BuildOptions.speech_steps)
    ap.add_argument("--steps", type=int, default=BuildOptions.steps, help="conversion model steps")
    ap.add_argument("--resume", action="store_true", help="continue an interrupted build")
    args = ap.parse_args()
    out = Path(args.out)

    # 1. ingest: clips of the speaker with their texts
    report = ingest(recordings(args.minutes), out / "dataset", transcripts=FESTVOX_RU / "etc" / "txt.done.data",
                    options=IngestOptions(language="ru", sample_rate=16_000), progress=True)
    print(f"dataset: {report['minutes_kept']:.1f} min in {report['clips_kept']} clips, "
          f"{report['clips_with_text']} with text")

    # 2. voice build: the conversion model and the speech model
    options = BuildOptions(steps=args.steps, speech_steps=args.speech_steps)
    voice = build_voice(out / "dataset", out / "voice", options, progress=True, log=print, consent=CONSENT,
                        resume=args.resume)

    # 3. speak with it: voicetwin speak --voice OUT/voice --text "..." -o line.wav
    print(f"voice: {voice.path}; its speech model: {voice.path / 'tts'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
