"""Lip-sync in three steps on Debian's Megamind.avi (opencv-doc), or on a generated talking face without it.

    python recipes/lipsync/quickstart.py --out out/quickstart/lipsync

1. ``score``: the offset of the scene's own track (near 0 ms) and of a copy delayed by 300 ms.
2. ``align``: the delayed track shifted back, phrase by phrase; prints the residual offset.
3. ``render``: the mouth re-rendered to a new espeak-ng line.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np

from voicetwin.audio.io import load_audio, save_audio
from voicetwin.video.lipsync import align, render, score, synthesize_talking_face
from voicetwin.video.io import write_video

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
NEW_LINE = "Tonight I will tell you a secret. It is not what you think, so listen carefully."


def espeak(text: str, path: Path, voice: str = "en") -> Path:
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed (apt-get install espeak-ng)")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/quickstart/lipsync")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    video = MEGAMIND
    if not video.exists():  # a talking face from scikit-image's astronaut photo
        from skimage import data

        x, sr = load_audio(espeak("Hello there. This face was made from one photo, and it talks.", out / "own.wav"))
        video = write_video(out / "talking.mp4", synthesize_talking_face(data.astronaut(), x, sr), 25, x, sr)

    report = score(video)
    print(f"1. score {video.name}: offset {report.overall.offset_ms:+.0f} ms, confidence "
          f"{report.overall.confidence:.3f}, {len(report.shots)} shots scored")

    x, sr = load_audio(video)
    delay = int(0.3 * sr)
    late = save_audio(out / "late.wav", np.concatenate([np.zeros(delay, np.float32), x])[: len(x)], sr)
    print(f"   the same track delayed by 300 ms scores {score(video, late).overall.offset_ms:+.0f} ms")

    result = align(video, late, out / "aligned.mp4")
    print(f"2. align: {result.offset_before_ms:+.0f} ms -> residual {result.offset_after_ms:+.0f} ms "
          f"over {len(result.phrases)} phrases; wrote {result.output}")

    line = espeak(NEW_LINE, out / "new_line.wav", "en+m3")
    rendered = render(video, line, out / "rendered.mp4")
    print(f"3. render: mouth re-rendered in {rendered.rendered} of {rendered.frames} frames from "
          f"{rendered.library} of the scene's own mouths ({rendered.identities} people); wrote {rendered.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
