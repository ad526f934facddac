"""The voice's networks run on their weights with numpy: what converting needs, without importing torch.

A built voice's mel decoder and envelope network (``voicetwin.voice.nets``, trained in torch) are small
convolutional stacks; importing torch takes longer than running them (about 1.3 s against 15 ms for a 5 s take on
two cores), so ``Voice.load`` reads the weights as arrays and converts with these functions. Each matches its
torch module to float32 precision (``tests/test_vc.py``).

    mel = mel_decoder(state, content, pitch, rate)  # (content_dim, n), (2, n * rate) -> (bands, n * rate)
    codes = envelope_net(state, content)            # (content_dim, n) -> (envelope_rate * dims, n)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import CheckpointError


def _erf(x: np.ndarray) -> np.ndarray:
    """The error function to float32 precision (Abramowitz and Stegun 7.1.26, absolute error below 1.5e-7)."""
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return np.sign(x) * (1.0 - poly * np.exp(-a * a))


def _conv(state: dict[str, np.ndarray], name: str, x: np.ndarray, dilation: int = 1) -> np.ndarray:
    """``torch.nn.Conv1d`` (zero 'same' padding) of ``(channels, frames)`` with the weights ``name.weight/bias``."""
    w, b = state[f"{name}.weight"], state[f"{name}.bias"]
    kernel = w.shape[2]
    if kernel == 1:
        return w[:, :, 0] @ x + b[:, None]
    pad = dilation * (kernel - 1) // 2
    xp = np.pad(x, ((0, 0), (pad, pad)))
    n = x.shape[1]
    return sum(w[:, :, j] @ xp[:, j * dilation:j * dilation + n] for j in range(kernel)) + b[:, None]


def _upsample(h: np.ndarray, rate: int) -> np.ndarray:
    """``torch.nn.functional.interpolate(mode="linear", align_corners=False, scale_factor=rate)`` of
    ``(channels, n)`` -> ``(channels, n * rate)``."""
    n = h.shape[1]
    src = np.maximum((np.arange(n * rate) + 0.5) / rate - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    w = (src - lo).astype(np.float32)
    return h[:, lo] * (1 - w) + h[:, hi] * w


def _blocks(state: dict[str, np.ndarray], h: np.ndarray, cycle: int) -> np.ndarray:
    """``nets.ResBlock``s ``blocks.0``, ``blocks.1``... (dilation ``2 ** (i % cycle)``) on ``(hidden, frames)``."""
    for i in range(len({k.split(".")[1] for k in state if k.startswith("blocks.")})):
        name = f"blocks.{i}"
        z = (h - h.mean()) / np.sqrt(h.var() + 1e-5)  # GroupNorm, one group: over channels and frames, eps 1e-5
        z = z * state[f"{name}.norm.weight"][:, None] + state[f"{name}.norm.bias"][:, None]
        z = _conv(state, f"{name}.conv", z, 2 ** (i % cycle))
        z = 0.5 * z * (1.0 + _erf(z / np.sqrt(2.0)))  # exact GELU
        h = h + _conv(state, f"{name}.mix", z)
    return h


def mel_decoder(state: dict[str, np.ndarray], content: np.ndarray, pitch: np.ndarray, rate: int) -> np.ndarray:
    """``nets.MelNet`` (its state as float32 arrays) on ``(content_dim, n)`` normalised content and
    ``(2, n * rate)`` pitch -> ``(mel_bands, n * rate)`` normalised log mel."""
    h = _conv(state, "inp", np.asarray(content, np.float32))
    if rate > 1:
        h = _upsample(h, rate)
    h = h + _conv(state, "pitch", np.asarray(pitch, np.float32)[:, :h.shape[1]])
    return _conv(state, "out", _blocks(state, h, 4)).astype(np.float32)


def envelope_net(state: dict[str, np.ndarray], content: np.ndarray) -> np.ndarray:
    """``nets.EnvelopeNet`` (its state as float32 arrays) on ``(content_dim, n)`` normalised content ->
    ``(envelope_rate * envelope_dims, n)`` normalised codes."""
    h = _conv(state, "inp", np.asarray(content, np.float32))
    return _conv(state, "out", _blocks(state, h, 3)).astype(np.float32)


def state_shapes(content_dim: int, outputs: int, hidden: int, layers: int, kernel: int,
                 pitch: bool = True) -> dict[str, tuple]:
    """The names and shapes of the weights of a mel decoder (``nets.MelNet``, ``outputs`` mel bands) or, with
    ``pitch`` False, an envelope network (``nets.EnvelopeNet``, ``outputs`` = envelope_rate * envelope_dims)."""
    shapes = {"inp.weight": (hidden, content_dim, 1), "inp.bias": (hidden,), "out.weight": (outputs, hidden, 1),
              "out.bias": (outputs,)}
    if pitch:
        shapes.update({"pitch.weight": (hidden, 2, 1), "pitch.bias": (hidden,)})
    for i in range(layers):
        shapes.update({f"blocks.{i}.norm.weight": (hidden,), f"blocks.{i}.norm.bias": (hidden,),
                       f"blocks.{i}.conv.weight": (hidden, hidden, kernel), f"blocks.{i}.conv.bias": (hidden,),
                       f"blocks.{i}.mix.weight": (hidden, hidden, 1), f"blocks.{i}.mix.bias": (hidden,)})
    return shapes


def check_state(state: dict[str, np.ndarray], shapes: dict[str, tuple], path: str | Path, what: str) -> None:
    """Refuse weights whose names or shapes are not ``shapes`` (``CheckpointError`` naming ``what`` and the
    first weight that differs)."""
    wrong = sorted(set(shapes) ^ set(state)) or [k for k in shapes if tuple(state[k].shape) != shapes[k]]
    if wrong:
        raise CheckpointError(f"the {what}'s weights do not match config.json (first: {wrong[0]})", path=path,
                              fix="load the weights with the config they were saved with")


__all__ = ["check_state", "envelope_net", "mel_decoder", "state_shapes"]
