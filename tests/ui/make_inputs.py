"""Tiny inputs for the browser test of the demo, all generated here (nothing third-party is committed).

Writes into OUT (default out/ui-test/inputs):
- archive/archive.wav + references/*.wav: a short example archive (festvox-ru speaker between espeak-ng voices,
  music and noise; ``voicetwin.examples.make_archive``);
- take.wav: a performer's line (espeak-ng, Russian);
- song.wav: a sung phrase (a sine melody with vibrato, for singing mode);
- face.mp4: a talking face (scikit-image's astronaut photo, mouth driven by the take's loudness);
- scene/scene.yaml + scene/line1.wav: a one-line scene for the project's voice (``voice: voice``);
- voice/: a tiny voice built on disk with its consent record, as ``make quickstart`` leaves one (a few real
  festvox-ru utterances, a few training steps: it checks the flow, not the quality), for "Open a voice".

    python tests/ui/make_inputs.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

SR = 16_000


def sung_phrase(seconds: float = 2.4) -> np.ndarray:
    """A melody of four notes around A3 with vibrato and a little breath noise, (samples,) at 16 kHz."""
    rng = np.random.default_rng(0)
    notes = [57, 59, 60, 62]
    t = np.arange(int(seconds * SR)) / SR
    midi = np.array(notes)[np.minimum((t / (seconds / len(notes))).astype(int), len(notes) - 1)]
    f0 = 440.0 * 2 ** ((midi - 69) / 12) * (1 + 0.01 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k ** 1.2 for k in range(1, 12))
    envelope = np.minimum(1, np.minimum(t, seconds - t) / 0.05)
    return (0.2 * voice * envelope + 0.003 * rng.standard_normal(len(t))).astype(np.float32)


def make_voice(folder: Path, steps: int = 4, clips: int = 8) -> Path:
    """A voice folder built from ``clips`` festvox-ru utterances with ``steps`` training steps, with its consent
    record (speech only, for one production: singing and other productions are refused)."""
    if (folder / "config.json").exists():
        return folder
    import shutil

    import soundfile as sf

    from voicetwin.consent import ConsentRecord
    from voicetwin.manifest import Clip, write_manifest
    from voicetwin.voice import BuildOptions, Voice

    wavs = sorted(Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits/wav").glob("*.wav"))[:clips]
    if not wavs:
        raise SystemExit("festvox-ru is not installed (make install)")
    dataset = folder.parent / f"{folder.name}-dataset"
    (dataset / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for wav in wavs:
        shutil.copyfile(wav, dataset / "clips" / wav.name)
        seconds = sf.info(str(wav)).duration
        rows.append(Clip(wav.stem, f"clips/{wav.name}", str(wav), 0.0, seconds, seconds, SR, language="ru"))
    write_manifest(dataset / "manifest.jsonl", rows)
    record = ConsentRecord(subject="Nikolai Orlov", granted_by="Estate of Nikolai Orlov", relation="estate",
                           scope=("speech",), productions=("The Last Letter",), expires=None,
                           document="test consent 7")
    Voice.build(dataset, folder, BuildOptions(steps=steps, augment=0), consent=record)
    return folder


def main(out: str = "out/ui-test/inputs") -> Path:
    from voicetwin.audio.io import save_audio
    from voicetwin.examples import espeak, make_archive

    out = Path(out)
    make_voice(out / "voice")
    if (out / "done").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    make_archive(out / "archive", minutes=0.4, container="wav", seed=3, n_references=2)
    take = espeak("Добрый вечер. Я очень рад вас видеть.", voice="ru+m3", speed=150)
    save_audio(out / "take.wav", take, SR)
    save_audio(out / "song.wav", sung_phrase(), SR)

    from skimage import data

    from voicetwin.video.lipsync import synthesize_talking_face
    from voicetwin.video.io import write_video

    frames = synthesize_talking_face(data.astronaut(), take, SR, fps=25.0, size=192)
    write_video(out / "face.mp4", frames, 25.0, take[: int(len(frames) / 25.0 * SR)], SR)

    scene = out / "scene"
    scene.mkdir(exist_ok=True)
    line = espeak("Здравствуйте.", voice="ru+m3", speed=150)
    save_audio(scene / "line1.wav", line, SR)
    seconds = len(line) / SR
    (scene / "scene.yaml").write_text(
        "production: The Last Letter\n"
        "duration: 4.0\n"
        "characters:\n"
        "  IVAN: {voice: voice}\n"
        "lines:\n"
        f"  - {{id: l1, character: IVAN, start: 1.0, end: {1.0 + seconds + 0.2:.2f}, recording: line1.wav}}\n",
        encoding="utf-8",
    )
    (out / "done").write_text("ok\n")
    return out


if __name__ == "__main__":
    print(main(*sys.argv[1:2]))
