"""The activation ranges that let the universal HiFi-GAN run its first three stages in int8 (voicetwin.audio.int8).

    python recipes/vocoder_int8/calibrate.py          # ~2 min; writes voicetwin/audio/hifigan_int8.json

Static int8 quantisation needs each activation's range, measured on what the vocoder will render. The calibration
audio is many speakers at three levels (0, -10 and -20 dB): flite's awb, rms, slt and kal voices and espeak-ng in
English and Russian reading the same sentences, and ten festvox-ru recordings (positions 100:110 of the 620 sorted
utterances, none of them in a benchmark's test set). Their log mels (the vocoder's own analysis, cut into the
chunks it renders) go through the exported float32 generator; ONNX Runtime records a moving-average min/max of
every activation. The table is tagged with the generator's fingerprint, so other weights never use it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from voicetwin.audio.hifigan import CHUNK_FRAMES, CONTEXT_FRAMES, HifiGan  # noqa: E402
from voicetwin.audio.int8 import TABLE, calibrate  # noqa: E402
from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.hub import cache_dir  # noqa: E402

FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav")
EN = ["The old piano stood in the corner of the room, covered with letters and photographs.",
      "Would you sing that song again, the one your father wrote before the war?",
      "Quiet streets, a distant train, and somebody laughing in the next house."]
RU = ["Старое пианино стояло в углу комнаты.", "Спой эту песню ещё раз, пожалуйста.", "Тихие улицы и далёкий поезд."]
LEVELS = (1.0, 0.316, 0.1)


def speak(command: list[str], folder: Path, name: str) -> np.ndarray:
    wav = folder / f"{name}.wav"
    subprocess.run([*command, str(wav)], check=True, capture_output=True)
    return load_audio(wav, 22050)[0]


def calibration_audio(folder: Path) -> list[np.ndarray]:
    clips = []
    for i, text in enumerate(EN):
        for voice in ("awb", "rms", "slt", "kal"):
            clips.append(speak(["flite", "-voice", voice, "-t", text, "-o"], folder, f"{voice}{i}"))
        clips.append(speak(["espeak-ng", "-v", "en", text, "-w"], folder, f"espeak_en{i}"))
    for i, text in enumerate(RU):
        clips.append(speak(["espeak-ng", "-v", "ru", text, "-w"], folder, f"espeak_ru{i}"))
    clips += [load_audio(p, 22050)[0] for p in sorted(FESTVOX_RU.glob("*.wav"))[100:110]]
    return [x / (np.abs(x).max() + 1e-9) * 0.9 for x in clips]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(TABLE), help="the table (default: where voicetwin reads it)")
    args = ap.parse_args()
    vocoder = HifiGan.from_pretrained(backend="onnx", precision="float32")
    fp32 = cache_dir() / "onnx" / f"hifigan-{vocoder.fingerprint()}.onnx"
    with tempfile.TemporaryDirectory() as tmp:
        clips = calibration_audio(Path(tmp))
    span = CHUNK_FRAMES + 2 * CONTEXT_FRAMES
    mels = [mel[:, i:i + span] for x in clips for level in LEVELS
            for mel in [vocoder.mel(x * level, 22050)] for i in range(0, mel.shape[1], span)]
    mels = [m for m in mels if m.shape[1] >= 2 * CONTEXT_FRAMES]
    print(f"{len(clips)} clips at {len(LEVELS)} levels: {len(mels)} chunks, {sum(m.shape[1] for m in mels)} frames")
    print(f"ranges: {calibrate(fp32, mels, vocoder.fingerprint(), args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
