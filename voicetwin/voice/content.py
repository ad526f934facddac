"""Content features: what is said, frame by frame, with as little of who says it as the model allows.

Pluggable by one string:

* ``"whisper-tiny.en"`` (default, offline): Whisper tiny.en encoder outputs (384-d, 20 ms), CTranslate2 weights
  shipped in a pip package, run by CTranslate2 (the encoder only; ``whisper_log_mel`` is Whisper's front end).
  Trained on English, it still separates Russian sounds well.
* ``"whisper-base"`` (offline): the multilingual Whisper base encoder's outputs (512-d, 20 ms), CTranslate2 weights
  split over two pip packages (``voicetwin[content]``) and joined once into the cache, run the same way.
* ``"wakehubert"`` (offline): WakeHuBERT tiny, a 0.64 M-parameter causal student of HuBERT base (128-d, 20 ms),
  ONNX from the ``ovos-ww-plugin-wakeforge`` wheel, run through onnxruntime.
* ``"mfcc"``: 20 MFCCs with deltas (40-d, 10 ms); no model at all.
* a hub name (``"microsoft/wavlm-base-plus"``) or a local directory of a ``transformers`` WavLM / HuBERT /
  wav2vec 2.0 model, optionally ``NAME#LAYER`` (hidden layer, default 6): 20 ms frames.

    model = load_content("whisper-tiny.en")
    frames = model.frames(audio_16k)          # (frames, model.dim), one every model.hop_seconds
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import ConfigError, ModelNotFoundError, require
from ..hub import resolve

SAMPLE_RATE = 16_000
BUILTIN = {
    "whisper-tiny.en": "Whisper tiny.en encoder outputs (384-d, 20 ms), offline",
    "whisper-base": "multilingual Whisper base encoder outputs (512-d, 20 ms), offline",
    "wakehubert": "WakeHuBERT tiny, a distilled HuBERT (128-d, 20 ms), offline",
    "mfcc": "20 MFCCs + deltas (40-d, 10 ms), no model",
}
WHISPER_NAMES = ("whisper-tiny.en", "whisper-base")


class ContentModel(Protocol):
    name: str
    dim: int
    hop_seconds: float

    def frames(self, audio: np.ndarray) -> np.ndarray:
        """``(samples,)`` float32 at 16 kHz -> ``(frames, dim)`` float32, one frame every ``hop_seconds``."""


class WhisperContent:
    """Whisper encoder outputs (CTranslate2 weights, run by CTranslate2 without the decoder's search or the
    tokenizer). Inputs longer than 30 s go in 30 s pieces."""

    max_seconds = 30.0

    def __init__(self, name: str = "whisper-tiny.en", threads: int = 1):
        ct2 = require("ctranslate2", "content" if name == "whisper-base" else "eval", "Whisper content features")
        path = resolve(name, kind="asr") if name in WHISPER_NAMES else resolve(name)
        try:
            self._model = ct2.models.Whisper(str(path), device="cpu", compute_type="int8", intra_threads=threads)
        except Exception as exc:  # CTranslate2 raises RuntimeError/ValueError on a bad directory
            raise ModelNotFoundError(f"not a CTranslate2 Whisper model ({exc})", path=path,
                                     fix=f"give one of {WHISPER_NAMES} or a faster-whisper model directory") from exc
        self._storage = ct2.StorageView.from_array
        self.name = name
        self.dim = int(self._encode(np.zeros(3200, np.float32)).shape[1])
        self.hop_seconds = 0.02

    def _encode(self, audio: np.ndarray) -> np.ndarray:
        mel = whisper_log_mel(audio)  # (80, frames at 10 ms)
        mel = mel[:, : 2 * (mel.shape[1] // 2)] if mel.shape[1] > 2 else np.pad(mel, ((0, 0), (0, 2)))
        out = self._model.encode(self._storage(np.ascontiguousarray(mel[None, :, :3000], dtype=np.float32)))
        return np.asarray(out, dtype=np.float32)[0]

    def frames(self, audio: np.ndarray) -> np.ndarray:
        n = int(np.ceil(len(audio) / SAMPLE_RATE / self.hop_seconds))
        piece = int(self.max_seconds * SAMPLE_RATE)
        parts = [self._encode(audio[i:i + piece]) for i in range(0, max(len(audio), 1), piece)]
        return _fit(np.concatenate(parts), n)


class WakeHubertContent:
    """WakeHuBERT tiny through onnxruntime: 16 kHz waveform in, 128-d frames every 20 ms out.

    The network is causal and trained to emit its teacher's frame late (its config says 100 ms), so its frame i
    describes the audio around frame ``i - delay_frames``: the input is padded by that much at its end and the
    first frames dropped, which puts each frame over its own 20 ms like the other content models. The shift is
    measured: on 30 festvox-ru recordings the frame-to-frame change of the raw output follows the 20 ms log-mel
    spectral change best 4 frames late (correlation 0.57; 0.53 at 5, 0.29 at 0).
    """

    delay_frames = 4

    def __init__(self, name: str = "wakehubert", threads: int = 1):
        ort = require("onnxruntime", None, "WakeHuBERT content features")
        path = resolve(name, kind="content")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelNotFoundError(f"not an ONNX model ({exc})", path=path,
                                     fix="reinstall: pip install --no-deps ovos-ww-plugin-wakeforge==0.3.0") from exc
        self._input = self._session.get_inputs()[0].name
        self.name = name
        self.hop_seconds = 0.02
        self.dim = int(self._session.get_outputs()[0].shape[-1])

    def frames(self, audio: np.ndarray) -> np.ndarray:
        hop = int(self.hop_seconds * SAMPLE_RATE)
        n = int(np.ceil(len(audio) / hop))
        x = np.pad(np.asarray(audio, np.float32), (0, self.delay_frames * hop + hop))
        out = self._session.run(None, {self._input: x[None]})[0][0]
        return _fit(np.asarray(out[self.delay_frames:], dtype=np.float32), n)


class MfccContent:
    """20 MFCCs and their deltas, mean-normalised per input: a model-free fallback."""

    def __init__(self):
        self.name = "mfcc"
        self.dim = 40
        self.hop_seconds = 0.01

    def frames(self, audio: np.ndarray) -> np.ndarray:
        import librosa

        n = int(np.ceil(len(audio) / SAMPLE_RATE / self.hop_seconds))
        m = librosa.feature.mfcc(y=audio.astype(np.float32), sr=SAMPLE_RATE, n_mfcc=21, n_fft=512, hop_length=160)[1:]
        m = m - m.mean(axis=1, keepdims=True)
        d = librosa.feature.delta(m, width=5) if m.shape[1] >= 5 else np.zeros_like(m)
        return _fit(np.concatenate([m, d]).T.astype(np.float32), n)


class TransformersContent:
    """Hidden states of a self-supervised ``transformers`` speech model (WavLM, HuBERT, wav2vec 2.0)."""

    def __init__(self, name: str, layer: int = 6, device: str | None = None):
        require("transformers", "hub", "self-supervised content features")
        import torch
        from transformers import AutoConfig, AutoModel

        path = resolve(name)
        local_only = os.environ.get("HF_HUB_OFFLINE") == "1" or Path(path).exists()
        try:
            config = AutoConfig.from_pretrained(str(path), local_files_only=local_only)
            self._model = AutoModel.from_pretrained(str(path), local_files_only=local_only).eval()
        except (OSError, ValueError) as exc:
            raise ModelNotFoundError(f"could not load a transformers speech model ({exc})", path=path,
                                     fix="give a WavLM/HuBERT hub name or a directory with config.json") from exc
        layers = int(getattr(config, "num_hidden_layers", 0))
        if layers == 0 or not hasattr(config, "conv_stride"):
            raise ConfigError(f"'{name}' is not a wav2vec2-style speech model", path=path,
                              fix="use WavLM, HuBERT or wav2vec 2.0")
        self.layer = min(layer, layers)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self._model.to(self.device)
        self.name = name
        self.dim = int(config.hidden_size)
        self.hop_seconds = float(np.prod(config.conv_stride)) / SAMPLE_RATE
        self._receptive = int(sum((k - 1) * int(np.prod(config.conv_stride[:i])) for i, k in enumerate(config.conv_kernel)) + 1)

    def frames(self, audio: np.ndarray) -> np.ndarray:
        import torch

        n = int(np.ceil(len(audio) / SAMPLE_RATE / self.hop_seconds))
        x = audio.astype(np.float32)
        x = (x - x.mean()) / (x.std() + 1e-7)
        x = np.pad(x, (0, max(0, self._receptive - len(x))))
        with torch.inference_mode():
            out = self._model(torch.from_numpy(x)[None].to(self.device), output_hidden_states=True)
        return _fit(out.hidden_states[self.layer][0].float().cpu().numpy(), n)


WHISPER_FFT, WHISPER_HOP, WHISPER_MELS = 400, 160, 80


@lru_cache(maxsize=1)
def _slaney_mel_filters(sample_rate: int = SAMPLE_RATE, n_fft: int = WHISPER_FFT,
                        bands: int = WHISPER_MELS) -> np.ndarray:
    """``(bands, n_fft // 2 + 1)`` triangular filters on the Slaney mel scale (linear below 1 kHz, logarithmic
    above), each normalised to unit area: Whisper's mel filterbank."""
    def to_hz(mel: np.ndarray) -> np.ndarray:
        linear = mel * 200.0 / 3.0
        return np.where(mel >= 15.0, 1000.0 * np.exp(np.log(6.4) / 27.0 * (mel - 15.0)), linear)

    top = 15.0 + 27.0 * np.log(sample_rate / 2 / 1000.0) / np.log(6.4)  # the Nyquist frequency in mels
    edges = to_hz(np.linspace(0.0, top, bands + 2))
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    rising = (bins[None, :] - edges[:-2, None]) / np.diff(edges)[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / np.diff(edges)[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    return (filters * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


def whisper_log_mel(audio: np.ndarray) -> np.ndarray:
    """``(samples,)`` at 16 kHz -> ``(80, frames)`` Whisper log mel, one frame every 10 ms: 160 zero samples
    appended, a centred 400-sample periodic Hann STFT (reflected ends), the power of every frame but the last
    through the mel filters, log10 floored at 1e-10 and at 8 below the maximum, then scaled as ``(x + 4) / 4``."""
    x = np.pad(np.asarray(audio, dtype=np.float32), (0, WHISPER_HOP))
    half = WHISPER_FFT // 2
    x = np.pad(x, (half, half), mode="reflect" if len(x) > half else "constant")
    count = 1 + (len(x) - WHISPER_FFT) // WHISPER_HOP
    frames = np.lib.stride_tricks.as_strided(x, (count, WHISPER_FFT), (x.strides[0] * WHISPER_HOP, x.strides[0]))
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WHISPER_FFT) / WHISPER_FFT)).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=1).astype(np.complex64)[:-1]) ** 2
    log_mel = np.log10(np.maximum(_slaney_mel_filters() @ power.T, 1e-10))
    return ((np.maximum(log_mel, log_mel.max() - 8.0) + 4.0) / 4.0).astype(np.float32)


def _fit(frames: np.ndarray, n: int) -> np.ndarray:
    """Cut or edge-pad ``(frames, dim)`` to exactly ``n`` frames."""
    if frames.shape[0] >= n:
        return frames[:n]
    return np.pad(frames, ((0, n - frames.shape[0]), (0, 0)), mode="edge")


@lru_cache(maxsize=4)
def load_content(name: str = "whisper-tiny.en", threads: int = 1) -> ContentModel:
    """A content model by name (see the module docstring). ``NAME#LAYER`` picks a transformers hidden layer."""
    if name == "mfcc":
        return MfccContent()
    if name in WHISPER_NAMES:
        return WhisperContent(name, threads)
    if name == "wakehubert":
        return WakeHubertContent(name, threads)
    base, _, layer = name.partition("#")
    path = Path(base).expanduser()
    if path.is_dir() and (path / "model.bin").exists():
        return WhisperContent(str(path), threads)
    return TransformersContent(base, int(layer) if layer else 6)


def resample_frames(frames: np.ndarray, hop_seconds: float, n: int, frame_period: float) -> np.ndarray:
    """Linearly interpolate ``(frames, dim)`` at ``hop_seconds`` onto ``n`` frames every ``frame_period`` ms.

    Content frame i covers ``[i * hop, (i + 1) * hop)``; its centre is taken as its time.
    """
    if frames.shape[0] == 0:
        raise ConfigError("no content frames")
    t_out = np.arange(n) * frame_period / 1000.0
    t_in = (np.arange(frames.shape[0]) + 0.5) * hop_seconds
    pos = np.clip(np.interp(t_out, t_in, np.arange(frames.shape[0])), 0, frames.shape[0] - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, frames.shape[0] - 1)
    w = (pos - lo)[:, None].astype(np.float32)
    return frames[lo] * (1 - w) + frames[hi] * w
