"""Re-render a mouth to new audio with a per-identity model trained by ``train.py``.

    python recipes/lipsync/render.py --model models/mouth-anna --video scene.mp4 --audio new_line.wav -o out.mp4

Same streaming passes, warping and blending as ``voicetwin lipsync render``; only the source of each mouth patch
differs (drawn by the model instead of picked from the footage).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import contexts, from_net, load, to_net  # noqa: E402


def render_with_model(model_dir: str | Path, video: str | Path, audio: str | Path, output: str | Path,
                      device: str | None = None, batch: int = 64) -> dict:
    import torch

    from voicetwin.audio.io import load_audio
    from voicetwin.video.lipsync import ANALYSIS_RATE, RenderOptions, audio_features, build_library, render_frames
    from voicetwin.video.io import probe, write_video

    model, config, mean, std, reference = load(model_dir, device)
    dev = next(model.parameters()).device
    info = probe(video)
    x16, _ = load_audio(audio, sample_rate=ANALYSIS_RATE)
    x, sr = load_audio(audio)
    total = int(round(info.duration * sr))
    x = np.pad(x, (0, max(0, total - len(x))))[:total]

    lib = build_library(video, RenderOptions(), progress=True)
    size = (lib.patches.shape[2], lib.patches.shape[1])  # (width, height) of this video's canonical patch
    feats = audio_features(x16, ANALYSIS_RATE, info.fps, lib.track.frames)
    ctx = torch.from_numpy(((contexts(feats, config.context) - mean) / std).astype(np.float32)).to(dev)
    ref = torch.from_numpy(to_net(reference[None], config)).to(dev)
    cache: dict[int, np.ndarray] = {}

    def patch_for(t: int) -> np.ndarray:
        first = t - t % batch
        if first not in cache:  # draw a batch of frames at a time; keep only the current batch
            cache.clear()
            with torch.no_grad():
                rows = ctx[first:first + batch]
                cache[first] = from_net(model(ref.expand(len(rows), -1, -1, -1), rows).cpu().numpy(), size)
        return cache[first][t - first]

    frames, result, info = render_frames(video, x16, ANALYSIS_RATE, library=lib, patch_for=patch_for)
    write_video(output, frames, info.frame_rate, x, sr)
    result.output = str(output)
    return result.to_dict()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--video", required=True)
    parser.add_argument("--audio", required=True)
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--device", default=None)
    args = parser.parse_args(argv)
    print(json.dumps(render_with_model(args.model, args.video, args.audio, args.output, args.device)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
