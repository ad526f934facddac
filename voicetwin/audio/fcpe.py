"""FCPE: a fast neural pitch tracker for sung input.

Our own implementation of FCPE (Fast Context-based Pitch Estimation, the convolution-only "CFNaiveMelPE" network)
loading the pretrained weights that the MIT-licensed ``torchfcpe`` pip package ships (``assets/fcpe_c_v001.pt``,
10.8 M parameters, trained with key-shift, noise and music augmentation). The package itself is never imported:
it needs torchaudio. Install it with ``pip install --no-deps torchfcpe==0.0.4``.

The network reads a 128-band log mel spectrogram of 16 kHz audio (1024-sample Hann window, 10 ms hop) and gives,
per frame, 360 sigmoid activations over pitch bins spaced evenly in cents from 32.7 Hz to 1975.5 Hz (20 cents
apart). The pitch is the activation-weighted mean of the 9 bins around the strongest one (a "local argmax");
a frame whose strongest activation is at or below ``threshold`` is unvoiced.

    f0, confidence = fcpe_f0(audio, 16000, frame_period=10.0)   # Hz (0 = unvoiced), 0..1, per 10 ms
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import CheckpointError, ConfigError, InputError

if TYPE_CHECKING:  # pragma: no cover
    import torch

MODEL_TYPE = "voicetwin-fcpe"
FORMAT_VERSION = 1
PACKAGE_INSTALL = "pip install --no-deps torchfcpe==0.0.4"
THRESHOLD = 0.1  # strongest activation at or below this: unvoiced (see fcpe_f0)
LOCAL_BINS = 9  # bins around the peak averaged by the decoder


@dataclass(frozen=True)
class FCPEConfig:
    """The mel front end (``sample_rate`` Hz audio, ``n_fft``/``win_size``/``hop_size`` samples, ``n_mels`` bands
    from ``fmin`` to ``fmax`` Hz) and the network (``hidden_dims`` channels, ``n_layers`` convolution blocks with
    depthwise kernels of ``kernel_size`` frames, ``out_dims`` pitch bins evenly spaced in cents from ``f0_min`` to
    ``f0_max`` Hz). The defaults are those of the weights shipped in ``torchfcpe``."""

    sample_rate: int = 16_000
    n_mels: int = 128
    n_fft: int = 1024
    win_size: int = 1024
    hop_size: int = 160
    fmin: float = 0.0
    fmax: float = 8000.0
    out_dims: int = 360
    hidden_dims: int = 512
    n_layers: int = 6
    kernel_size: int = 31
    expansion: int = 2
    f0_min: float = 32.7
    f0_max: float = 1975.5

    def __post_init__(self):
        if self.sample_rate <= 0 or not 0 < self.hop_size <= self.win_size <= self.n_fft:
            raise ConfigError("FCPE needs 0 < hop_size <= win_size <= n_fft and a positive sample_rate")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise ConfigError("FCPE needs 0 <= fmin < fmax <= sample_rate / 2")
        if self.n_mels < 1 or self.out_dims < LOCAL_BINS or self.n_layers < 0 or self.expansion < 1:
            raise ConfigError(f"FCPE needs n_mels >= 1, out_dims >= {LOCAL_BINS}, n_layers >= 0, expansion >= 1")
        if self.hidden_dims < 4 or self.hidden_dims % 4 or self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigError("FCPE needs hidden_dims a multiple of 4 (group norm) and an odd kernel_size")
        if not 0 < self.f0_min < self.f0_max:
            raise ConfigError("FCPE needs 0 < f0_min < f0_max")

    @classmethod
    def from_package(cls, config: dict, path: Path | None = None) -> "FCPEConfig":
        """The config stored in a ``torchfcpe`` checkpoint (``ckpt["config_dict"]``). Only the convolution-only
        variant without harmonic embeddings (the one the package ships) is supported."""
        try:
            mel, model = config["mel"], config["model"]
            if model.get("type") != "CFNaiveMelPE" or not model.get("conv_only") or model.get("use_harmonic_emb"):
                raise CheckpointError("only the convolution-only CFNaiveMelPE variant of FCPE is supported", path=path)
            if str(mel.get("type", "default")).lower() not in ("default", "none"):
                raise CheckpointError(f"mel type '{mel.get('type')}' is not supported", path=path)
            return cls(sample_rate=int(mel["sr"]), n_mels=int(mel["num_mels"]), n_fft=int(mel["n_fft"]),
                       win_size=int(mel["win_size"]), hop_size=int(mel["hop_size"]), fmin=float(mel["fmin"] or 0.0),
                       fmax=float(mel["fmax"] or mel["sr"] / 2), out_dims=int(model["out_dims"]),
                       hidden_dims=int(model["hidden_dims"]), n_layers=int(model["n_layers"]),
                       f0_min=float(model["f0_min"]), f0_max=float(model["f0_max"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"not an FCPE checkpoint config ({type(exc).__name__}: {exc})", path=path) from exc

    @property
    def cents(self) -> np.ndarray:
        """``(out_dims,)`` the bins' pitch in cents above 10 Hz."""
        return np.linspace(1200 * np.log2(self.f0_min / 10), 1200 * np.log2(self.f0_max / 10), self.out_dims)


def _network(config: FCPEConfig):
    """Build the network (torch is imported here, not when the module is)."""
    import torch
    from torch import nn

    class Transpose(nn.Module):
        def forward(self, x):
            return x.transpose(1, 2)

    class Depthwise(nn.Module):
        def __init__(self, channels: int, kernel: int):
            super().__init__()
            self.conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2, groups=channels)

        def forward(self, x):
            return self.conv(x)

    class ConvModule(nn.Module):
        """Conformer convolution module: norm, pointwise conv + GLU, depthwise conv, SiLU, pointwise conv."""

        def __init__(self, dim: int):
            super().__init__()
            inner = dim * config.expansion
            self.net = nn.Sequential(nn.LayerNorm(dim), Transpose(), nn.Conv1d(dim, 2 * inner, 1), nn.GLU(dim=1),
                                     Depthwise(inner, config.kernel_size), nn.SiLU(), nn.Conv1d(inner, dim, 1),
                                     Transpose())

        def forward(self, x):
            return self.net(x)

    class Block(nn.Module):
        """``x + conv_module(x)``. ``norm`` fed the self-attention of the attention variant; the convolution-only
        checkpoint still holds it, and it is kept so that every tensor of the file is accounted for."""

        def __init__(self, dim: int):
            super().__init__()
            self.conformer = ConvModule(dim)
            self.norm = nn.LayerNorm(dim)

        def forward(self, x):
            return x + self.conformer(x)

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.encoder_layers = nn.ModuleList(Block(config.hidden_dims) for _ in range(config.n_layers))

        def forward(self, x):
            for layer in self.encoder_layers:
                x = layer(x)
            return x

    class FCPENet(nn.Module):
        """``(batch, frames, n_mels)`` log mel -> ``(batch, frames, out_dims)`` pitch-bin activations in 0..1."""

        def __init__(self):
            super().__init__()
            self.config = config
            h = config.hidden_dims
            self.input_stack = nn.Sequential(nn.Conv1d(config.n_mels, h, 3, 1, 1), nn.GroupNorm(4, h),
                                             nn.LeakyReLU(), nn.Conv1d(h, h, 3, 1, 1))
            self.net = Encoder()
            self.norm = nn.LayerNorm(h)
            self.output_proj = nn.Linear(h, config.out_dims)
            self.register_buffer("cent_table", torch.tensor(config.cents, dtype=torch.float32))

        def forward(self, mel):
            x = self.input_stack(mel.transpose(1, 2)).transpose(1, 2)
            return torch.sigmoid(self.output_proj(self.norm(self.net(x))))

    return FCPENet()


def build_fcpe(config: FCPEConfig | None = None):
    """A new (random) FCPE network for ``config`` (default: the shipped weights' architecture)."""
    return _network(config or FCPEConfig())


@lru_cache(maxsize=4)
def _mel_basis(config: FCPEConfig) -> np.ndarray:
    import librosa

    return librosa.filters.mel(sr=config.sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.fmin,
                               fmax=config.fmax).astype(np.float32)


def log_mel(audio: "torch.Tensor", config: FCPEConfig) -> "torch.Tensor":
    """``(batch, samples)`` at ``config.sample_rate`` -> ``(batch, samples // hop_size + 1, n_mels)`` natural-log
    mel magnitudes (floor 1e-5), as FCPE was trained: the signal is padded by ``(win - hop) / 2`` samples each side
    (reflected), so frame ``i``'s window is centred at sample ``i * hop + hop / 2``; the last frame repeats the
    one before."""
    import torch

    x = audio.float()
    left = (config.win_size - config.hop_size) // 2
    right = max((config.win_size - config.hop_size + 1) // 2, config.win_size - x.shape[-1] - left)
    mode = "reflect" if max(left, right) < x.shape[-1] else "constant"
    x = torch.nn.functional.pad(x[:, None], (left, right), mode=mode)[:, 0]
    window = torch.hann_window(config.win_size, device=x.device)
    spec = torch.stft(x, config.n_fft, config.hop_size, config.win_size, window, center=False, return_complex=True)
    magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)
    mel = torch.log(torch.clamp(torch.from_numpy(_mel_basis(config)).to(x.device) @ magnitude, min=1e-5))
    mel = mel.transpose(1, 2)
    frames = audio.shape[-1] // config.hop_size + 1
    if mel.shape[1] < frames:
        mel = torch.cat([mel, mel[:, -1:].expand(-1, frames - mel.shape[1], -1)], 1)
    return mel[:, :frames]


def decode(activations: np.ndarray, cents: np.ndarray, threshold: float = THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, out_dims)`` activations -> (F0 in Hz, 0 where the strongest activation is at or below
    ``threshold``; ``(frames,)`` confidence, the strongest activation): the activation-weighted mean, in cents, of
    the 9 bins around the strongest one (indices clipped at the ends, as the weights were trained with)."""
    y = np.asarray(activations, dtype=np.float64)
    if y.size == 0:
        return np.zeros(0), np.zeros(0)
    top = y.argmax(axis=1)
    idx = np.clip(top[:, None] + np.arange(LOCAL_BINS)[None] - LOCAL_BINS // 2, 0, y.shape[1] - 1)
    w = np.take_along_axis(y, idx, axis=1)
    c = (w * np.asarray(cents, dtype=np.float64)[idx]).sum(1) / np.maximum(w.sum(1), 1e-12)
    confidence = y.max(axis=1)
    return np.where(confidence > threshold, 10.0 * 2.0 ** (c / 1200.0), 0.0), confidence


# --- weights ---------------------------------------------------------------------------------


def _from_package(path: Path):
    """Our network with the weights of a ``torchfcpe`` checkpoint (``{"model", "config_dict", ...}``)."""
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        state, raw_config = dict(ckpt["model"]), ckpt["config_dict"]
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same refusal
        raise CheckpointError(f"not a readable FCPE checkpoint ({type(exc).__name__})", path=path,
                              fix=f"reinstall it: {PACKAGE_INSTALL}") from exc
    config = FCPEConfig.from_package(raw_config, path)
    # weight normalisation folded into a plain weight: w = g * v / |v| (per output bin)
    g, v = state.pop("output_proj.weight_g", None), state.pop("output_proj.weight_v", None)
    if g is not None and v is not None:
        state["output_proj.weight"] = g * v / v.norm(dim=1, keepdim=True)
    state.pop("gaussian_blurred_cent_mask", None)  # a training-only constant
    from ..checkpoint import load_weights

    return load_weights(_network(config), state, path)


def save_fcpe(net, out: str | Path) -> Path:
    """Write ``net`` as a voicetwin model directory (``config.json`` + ``model.safetensors``)."""
    from ..checkpoint import save_checkpoint

    return save_checkpoint(out, net.config, net.state_dict(), MODEL_TYPE, FORMAT_VERSION)


@lru_cache(maxsize=2)
def load_fcpe(name_or_path: str = "fcpe"):
    """The FCPE network in eval mode: ``"fcpe"`` (the weights in the installed ``torchfcpe`` package), a
    ``torchfcpe`` ``.pt`` checkpoint, or a voicetwin model directory written by ``save_fcpe`` (or its hub id).

    Raises ``MissingDependencyError`` (with the install command) when the package is not installed."""
    from ..checkpoint import load_checkpoint, load_weights
    from ..hub import resolve

    path = resolve(name_or_path, kind="pitch")
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt"):
        return _from_package(path)
    ckpt = load_checkpoint(path, FCPEConfig, MODEL_TYPE, FORMAT_VERSION, kind="pitch")
    return load_weights(_network(ckpt.config), ckpt.tensors, ckpt.weights)


# --- tracking --------------------------------------------------------------------------------


def fcpe_activations(audio: np.ndarray, sample_rate: int, model: str = "fcpe") -> tuple[np.ndarray, np.ndarray, object]:
    """``(samples,)`` -> (``(frames, out_dims)`` activations, ``(frames,)`` frame times in seconds, the network);
    audio at another rate is resampled to the network's. Frame ``i`` gives the pitch at ``i * hop_size``: its
    window is centred half a hop later, but the weights learnt labels at ``i * hop_size`` (on a glide of two
    octaves per second the error is under 1 cent at ``i * hop_size`` and 12 cents half a hop later)."""
    import torch

    from .io import resample

    net = load_fcpe(model)
    config: FCPEConfig = net.config
    x = np.asarray(audio, dtype=np.float32)
    if x.ndim != 1:
        raise InputError(f"FCPE takes mono audio of shape (samples,), not {x.shape}")
    if not np.isfinite(x).all():
        raise InputError("the audio holds NaN or infinite samples")
    if sample_rate != config.sample_rate:
        x = resample(x, sample_rate, config.sample_rate)
    with torch.inference_mode():
        y = net(log_mel(torch.from_numpy(np.ascontiguousarray(x))[None], config))[0].numpy()
    times = np.arange(len(y)) * config.hop_size / config.sample_rate
    return y, times, net


def fcpe_f0(audio: np.ndarray, sample_rate: int, frame_period: float = 10.0,
            f0_range: tuple[float, float] = (50.0, 1100.0), threshold: float = THRESHOLD,
            model: str = "fcpe") -> tuple[np.ndarray, np.ndarray]:
    """``(samples,)`` -> ``(frames,)`` F0 in Hz (0 = unvoiced or outside ``f0_range``) and ``(frames,)``
    confidence, one frame every ``frame_period`` ms centred at ``i * frame_period`` (the WORLD frame grid,
    ``samples / (sample_rate * frame_period / 1000) + 1`` frames): log-F0 interpolated between the network's
    voiced frames, voicing and confidence from the nearest network frame (at 10 ms, the network's own frames).

    ``threshold``: 0.1, not the 0.006 ``torchfcpe`` defaults to: white noise reaches 0.015 (0.06 when loud, or at
    its onset) and the median sung vowel 0.9; on sung lines 0.1 hears 1 % fewer voiced frames than 0.05."""
    if frame_period <= 0:
        raise ConfigError("frame_period must be positive (milliseconds)")
    y, times, net = fcpe_activations(audio, sample_rate, model)
    f0, confidence = decode(y, net.cent_table.numpy(), threshold)
    f0 = np.where((f0 >= f0_range[0]) & (f0 <= f0_range[1]), f0, 0.0)
    frames = int(len(audio) / (sample_rate * frame_period / 1000.0)) + 1
    t = np.arange(frames) * frame_period / 1000.0
    nearest = np.clip(np.round(t * net.config.sample_rate / net.config.hop_size), 0, len(f0) - 1).astype(int)
    voiced = f0 > 0
    if voiced.sum() < 1:
        return np.zeros(frames), confidence[nearest]
    out = np.exp(np.interp(t, times[voiced], np.log(f0[voiced])))
    return np.where(voiced[nearest], out, 0.0), confidence[nearest]


__all__ = ["FCPEConfig", "build_fcpe", "decode", "fcpe_activations", "fcpe_f0", "load_fcpe", "log_mel", "save_fcpe"]
