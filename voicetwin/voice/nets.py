"""The voice's networks in torch, for building a voice (and for tests): ``EnvelopeNet`` and ``MelNet``.

Converting does not need torch: ``voicetwin.voice.mel.decode`` runs a built mel decoder on its weights with
numpy, so ``voicetwin convert`` starts without importing it. The envelope network (the WORLD path) is built
from the weights when first used.
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """Pre-norm residual dilated convolution (the voice's networks' building block)."""

    def __init__(self, hidden: int, kernel: int, dilation: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(hidden, hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mix(torch.nn.functional.gelu(self.conv(self.norm(x))))


class MelNet(nn.Module):
    """``(batch, content_dim, n)`` normalised content and ``(batch, 2, n * rate)`` pitch (``mel.pitch_input``) ->
    ``(batch, mel_bands, n * rate)`` normalised log mel: the content projected, linearly upsampled ``rate`` times,
    the pitch added, ``layers`` residual blocks (dilations 1, 2, 4, 8)."""

    def __init__(self, content_dim: int, mel_bands: int, hidden: int, layers: int, kernel: int, rate: int):
        super().__init__()
        self.rate = rate
        self.inp = nn.Conv1d(content_dim, hidden, 1)
        self.pitch = nn.Conv1d(2, hidden, 1)
        self.blocks = nn.ModuleList(ResBlock(hidden, kernel, 2 ** (i % 4)) for i in range(layers))
        self.out = nn.Conv1d(hidden, mel_bands, 1)

    def forward(self, content: torch.Tensor, pitch: torch.Tensor) -> torch.Tensor:
        h = self.inp(content)
        if self.rate > 1:
            h = nn.functional.interpolate(h, scale_factor=self.rate, mode="linear", align_corners=False)
        h = h + self.pitch(pitch[..., : h.shape[-1]])
        for block in self.blocks:
            h = block(h)
        return self.out(h)


class EnvelopeNet(nn.Module):
    """``(batch, content_dim, frames)`` normalised content -> ``(batch, envelope_rate * envelope_dims, frames)``
    normalised codes, ``envelope_rate`` consecutive envelopes per content frame (20 ms for Whisper): residual
    dilated convolutions (dilations 1, 2, 4). ``config``: a ``VoiceConfig``."""

    def __init__(self, config):
        super().__init__()
        self.inp = nn.Conv1d(config.content_dim, config.hidden, 1)
        self.blocks = nn.ModuleList(ResBlock(config.hidden, config.kernel, 2 ** (i % 3)) for i in range(config.layers))
        self.out = nn.Conv1d(config.hidden, config.envelope_dims * config.envelope_rate, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x)
        for block in self.blocks:
            h = block(h)
        return self.out(h)


def new_mel_net(config) -> MelNet:
    """The mel decoder for ``config`` (a ``VoiceConfig`` with ``mel_bands``)."""
    return MelNet(config.content_dim, config.mel_bands, config.mel_hidden, config.mel_layers, config.kernel,
                  config.envelope_rate)


__all__ = ["EnvelopeNet", "MelNet", "ResBlock", "new_mel_net"]
