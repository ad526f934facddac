"""Train a per-identity mouth model on that face's own footage (for GPU users; CPU works for tiny configs).

The CPU renderer (``voicetwin lipsync render``) picks real mouth images from the footage. This recipe instead
trains a small network that *draws* the mouth for any audio: given 5 frames of audio features and a reference
mouth image of the same person (appearance), it predicts the mouth patch in canonical face coordinates. The
renderer then warps and blends it exactly like a library patch (``recipes/lipsync/render.py``).

    python recipes/lipsync/train.py --video face_swapped.mp4 --out models/mouth-anna [--config config.yaml]

Writes ``config.json`` (architecture, audio normalisation, format_version), ``model.safetensors``,
``reference.npy`` (the rest mouth) and ``log.json`` (training and held-out L1 per logged step).
Quality is judged on held-out frames (last ``holdout`` of the footage), never on the training loss alone.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from voicetwin.errors import ConfigError
from voicetwin.files import write_json
from voicetwin.checkpoint import load_checkpoint, load_weights, save_checkpoint

MODEL_TYPE = "lipsync-mouthnet"
FORMAT_VERSION = 1
HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class MouthNetConfig:
    """Architecture. Patches are ``(3, patch_height, patch_width)`` in [0, 1]; audio is ``(context, 9)``."""

    channels: int = 48
    audio_hidden: int = 256
    context: int = 5
    patch_height: int = 64
    patch_width: int = 96
    features: int = 9  # audio_features() columns

    def __post_init__(self):
        if self.patch_height % 8 or self.patch_width % 8:
            raise ConfigError("patch_height and patch_width must be multiples of 8")
        if self.context < 1 or self.context % 2 == 0:
            raise ConfigError("context must be an odd number of frames")


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 6000
    batch_size: int = 64
    lr: float = 3e-4
    library_size: int = 4000
    holdout: float = 0.1
    seed: int = 0
    log_every: int = 200


def read_yaml(path: str | Path) -> tuple[MouthNetConfig, TrainConfig]:
    """The recipe's YAML: sections ``model`` and ``train``, keys 1:1 onto the dataclasses (unknown keys raise)."""
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    out = []
    for section, cls in (("model", MouthNetConfig), ("train", TrainConfig)):
        values = data.pop(section, {}) or {}
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown keys in '{section}': {sorted(unknown)}", path=path)
        out.append(cls(**values))
    if data:
        raise ConfigError(f"unknown sections {sorted(data)}", path=path)
    return out[0], out[1]


# ----------------------------------------------------------------------------------------------- the network


def build_model(config: MouthNetConfig):
    """A small encoder-decoder: the reference mouth is encoded to 1/8 size, the audio MLP output is added to the
    bottleneck, and the decoder draws the mouth. ~0.5 M parameters at the default size."""
    import torch
    from torch import nn

    c = config.channels

    def block(i: int, o: int, stride: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(i, o, 3, stride, 1), nn.GroupNorm(4, o), nn.SiLU())

    class MouthNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder = nn.ModuleList([block(3, c, 1), block(c, c, 2), block(c, 2 * c, 2), block(2 * c, 4 * c, 2)])
            self.audio = nn.Sequential(nn.Linear(config.context * config.features, config.audio_hidden), nn.SiLU(),
                                       nn.Linear(config.audio_hidden, config.audio_hidden), nn.SiLU(),
                                       nn.Linear(config.audio_hidden, 4 * c))
            self.decoder = nn.ModuleList([block(8 * c, 2 * c, 1), block(4 * c, c, 1), block(2 * c, c, 1)])
            self.out = nn.Conv2d(2 * c, 3, 3, 1, 1)

        def forward(self, reference: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
            """``reference``: (batch, 3, H, W) in [0, 1]; ``audio``: (batch, context * 9) normalised. Returns
            (batch, 3, H, W) in [0, 1]."""
            skips, x = [], reference
            for layer in self.encoder:
                x = layer(x)
                skips.append(x)
            a = self.audio(audio)[:, :, None, None].expand_as(x)
            x = torch.cat([x, a], dim=1)
            for layer, skip in zip(self.decoder, reversed(skips[:-1])):
                x = layer(x)
                x = nn.functional.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
                x = torch.cat([x, skip], dim=1)
            return torch.sigmoid(self.out(x))

    return MouthNet()


def contexts(features: np.ndarray, context: int) -> np.ndarray:
    """``(T, context * 9)``: each frame's audio features with its neighbours (edges repeated)."""
    half = context // 2
    padded = np.pad(features, ((half, half), (0, 0)), mode="edge")
    return np.concatenate([padded[i:i + len(features)] for i in range(context)], axis=1)


def to_net(patches: np.ndarray, config: MouthNetConfig) -> np.ndarray:
    """uint8 ``(N, h, w, 3)`` -> float32 ``(N, 3, patch_height, patch_width)`` in [0, 1]."""
    import cv2

    size = (config.patch_width, config.patch_height)
    out = np.stack([cv2.resize(p, size, interpolation=cv2.INTER_AREA) for p in patches])
    return out.transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def from_net(batch: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """float ``(N, 3, h, w)`` -> uint8 ``(N, height, width, 3)`` at the library's patch ``size`` (width, height)."""
    import cv2

    images = (np.clip(batch.transpose(0, 2, 3, 1), 0, 1) * 255).round().astype(np.uint8)
    return np.stack([cv2.resize(p, size, interpolation=cv2.INTER_LINEAR) for p in images])


# ----------------------------------------------------------------------------------------------- save / load


def save(out: Path, model, config: MouthNetConfig, mean: np.ndarray, std: np.ndarray, reference: np.ndarray) -> None:
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "reference.npy", reference)
    save_checkpoint(out, config, model.state_dict(), MODEL_TYPE, FORMAT_VERSION,
                    extra={"audio_mean": mean.tolist(), "audio_std": std.tolist()})


def load(directory: str | Path, device: str | None = None):
    """``(model, config, mean, std, reference)`` from a model directory written by ``save``."""
    import torch

    ckpt = load_checkpoint(directory, MouthNetConfig, MODEL_TYPE, FORMAT_VERSION, extra_keys=("audio_mean", "audio_std"))
    mean = np.array(ckpt.extra["audio_mean"], np.float32)
    std = np.array(ckpt.extra["audio_std"], np.float32)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = load_weights(build_model(ckpt.config), ckpt.tensors, ckpt.weights)
    return model.to(device), ckpt.config, mean, std, np.load(ckpt.path / "reference.npy")


# ----------------------------------------------------------------------------------------------- training


def train(video: str | Path, out: str | Path, config: MouthNetConfig = MouthNetConfig(),
          train_config: TrainConfig = TrainConfig(), device: str | None = None) -> dict:
    import torch

    from voicetwin.video.lipsync import RenderOptions, build_library

    out = Path(out)
    torch.manual_seed(train_config.seed)
    rng = np.random.default_rng(train_config.seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")

    # 1. The face's own footage: canonical mouth patches and the audio at those frames.
    lib = build_library(video, RenderOptions(library_size=train_config.library_size), progress=True)
    if lib.own_audio is None:
        raise ConfigError("the video has no sound to learn from", path=video, fix="give footage with its audio")
    ctx = contexts(lib.own_audio, config.context)[lib.frames]
    mean, std = ctx.mean(axis=0), ctx.std(axis=0) + 1e-6
    audio = ((ctx - mean) / std).astype(np.float32)
    patches = to_net(lib.patches, config)
    mask = to_net((lib.alpha[..., None].repeat(3, axis=2) * 255).astype(np.uint8)[None], config)[0:1]

    # The reference: the most closed mouth (appearance only; the audio decides the shape).
    opening = lib.track.features()[lib.frames, 0]
    reference = lib.patches[int(np.nanargmin(opening))]
    ref = torch.from_numpy(to_net(reference[None], config)).to(device)

    # 2. Hold out the end of the footage.
    n = len(patches)
    cut = max(1, int(n * (1 - train_config.holdout)))
    train_idx, val_idx = np.arange(cut), np.arange(cut, n) if cut < n else np.arange(n)
    x_audio = torch.from_numpy(audio).to(device)
    x_patch = torch.from_numpy(patches).to(device)
    weight = torch.from_numpy(mask).to(device) + 0.1  # mostly the mouth, a little of the surroundings

    # 3. Train with L1 on the masked patch.
    model = build_model(config).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=train_config.lr)
    log, start = [], time.time()
    for step in range(1, train_config.steps + 1):
        batch = torch.from_numpy(rng.choice(train_idx, size=train_config.batch_size)).to(device)
        pred = model(ref.expand(len(batch), -1, -1, -1), x_audio[batch])
        loss = (weight * (pred - x_patch[batch]).abs()).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % train_config.log_every == 0 or step == train_config.steps:
            with torch.no_grad():
                model.eval()
                vb = torch.from_numpy(val_idx).to(device)
                val = (weight * (model(ref.expand(len(vb), -1, -1, -1), x_audio[vb]) - x_patch[vb]).abs()).mean()
                model.train()
            log.append({"step": step, "train_l1": loss.item(), "heldout_l1": val.item(),
                        "seconds": time.time() - start})
            print(f"step {step}: train L1 {loss.item():.4f}, held-out L1 {val.item():.4f}", flush=True)

    # 4. Save the model directory.
    save(out, model, config, mean, std, reference)
    write_json(out / "log.json", {"video": str(video), "train": asdict(train_config), "log": log,
                                  "library": int(n), "heldout_frames": int(len(val_idx)), "device": device})
    return {"model": str(out), "steps": train_config.steps, "heldout_l1": log[-1]["heldout_l1"] if log else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", required=True, help="footage of the identity speaking, with its sound")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--config", default=str(HERE / "config.yaml"), help="YAML with 'model' and 'train'")
    parser.add_argument("--device", default=None, help="cuda, cpu, ... (default: what is there)")
    args = parser.parse_args(argv)
    model_config, train_config = read_yaml(args.config)
    print(json.dumps(train(args.video, args.out, model_config, train_config, args.device)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
