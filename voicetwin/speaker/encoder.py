"""Speaker encoder: the GE2E d-vector network (3-layer LSTM over 40 log-mel bands, 256-d output).

The default weights are the pretrained GE2E checkpoint shipped inside the ``resemblyzer`` wheel; a
fine-tuned encoder is a directory with ``config.json`` and ``model.safetensors``.

    encoder = SpeakerEncoder.load()            # or .load("path/to/encoder_dir")
    e = encoder.embed(audio, 16000)            # (256,) unit vector
    profile = encoder.enroll([clip1, clip2])   # (256,) unit vector, mean of clip embeddings
    encoder.similarity(e, profile)             # cosine in [-1, 1]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..audio.io import AudioLike, normalize_input
from ..errors import ConfigError, EmptyAudioError
from ..hub import resolve

SAMPLE_RATE = 16_000
FORMAT_VERSION = 1
MODEL_TYPE = "ge2e-speaker-encoder"


@dataclass(frozen=True)
class EncoderConfig:
    """Architecture and front end of the GE2E encoder (defaults match the pretrained checkpoint)."""

    n_mels: int = 40
    hidden_size: int = 256
    embedding_size: int = 256
    num_layers: int = 3
    sample_rate: int = SAMPLE_RATE
    window_ms: int = 25
    hop_ms: int = 10
    partial_frames: int = 160  # 1.6 s windows
    partial_hop_frames: int = 80  # 50 % overlap between windows
    norm_dbfs: float = -30.0  # input level normalisation


class GE2E(nn.Module):
    """The network: ``(batch, frames, n_mels)`` log-mel -> ``(batch, embedding_size)`` unit vectors."""

    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(config.n_mels, config.hidden_size, config.num_layers, batch_first=True)
        self.linear = nn.Linear(config.hidden_size, config.embedding_size)
        # scale and bias of the GE2E similarity matrix; used only by the training loss
        self.similarity_weight = nn.Parameter(torch.tensor([10.0]))
        self.similarity_bias = nn.Parameter(torch.tensor([-5.0]))

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / (raw.norm(dim=1, keepdim=True) + 1e-8)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (linear below 1 kHz, logarithmic above), as librosa's default."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(hz, 1000.0) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3))


@lru_cache(maxsize=4)
def _mel_basis(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters from 0 Hz to Nyquist, Slaney-normalised (area 1 per band):
    the same matrix as ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels)``, without importing
    librosa (about 3 s of a one-clip similarity run)."""
    bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights.astype(np.float32)


def _power_stft(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(samples,)`` -> ``(frames, n_fft // 2 + 1)`` power spectra: periodic Hann window, frames centred on
    ``k * hop`` with zero padding at the ends (librosa's ``stft(center=True)``)."""
    x = np.pad(np.asarray(audio, dtype=np.float32), (n_fft // 2, n_fft // 2))
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spec = np.fft.rfft(frames * window, axis=1)
    return (spec.real**2 + spec.imag**2).astype(np.float32)


def mel_frames(audio: np.ndarray, config: EncoderConfig) -> np.ndarray:
    """``(samples,)`` at ``config.sample_rate`` -> ``(frames, n_mels)`` mel power (the GE2E front end)."""
    n_fft = int(config.sample_rate * config.window_ms / 1000)
    hop = int(config.sample_rate * config.hop_ms / 1000)
    if audio.shape[0] < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.shape[0]))
    spec = _power_stft(audio, n_fft, hop)
    return (spec @ _mel_basis(config.sample_rate, n_fft, config.n_mels).T).astype(np.float32)


def trim_silence(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, aggressiveness: int = 3) -> np.ndarray:
    """Drop non-speech stretches longer than ~0.2 s (webrtcvad), as the GE2E front end expects."""
    import webrtcvad

    win = int(sample_rate * 0.03)
    n = len(audio) // win
    if n < 4:
        return audio
    pcm = (np.clip(audio[: n * win], -1, 1) * 32767).astype(np.int16)
    vad = webrtcvad.Vad(aggressiveness)
    flags = np.array([vad.is_speech(pcm[i * win : (i + 1) * win].tobytes(), sample_rate) for i in range(n)], dtype=float)
    smooth = np.convolve(flags, np.ones(8) / 8, mode="same") > 0
    smooth = np.convolve(smooth.astype(float), np.ones(7), mode="same") > 0  # dilate: keep short pauses
    if smooth.sum() < 10:  # VAD found (almost) nothing: keep the audio rather than embed nothing
        return audio
    return audio[: n * win].reshape(n, win)[smooth].reshape(-1)


class SpeakerEncoder:
    """Embeds speech into 256-d unit vectors; cosine similarity compares voices."""

    def __init__(self, model: GE2E, source: str = "ge2e"):
        self.model = model.eval()
        self.config = model.config
        self.source = source

    # -- loading and saving -----------------------------------------------------------------
    @classmethod
    def load(cls, name_or_path: str | Path = "ge2e", device: str | None = None) -> "SpeakerEncoder":
        """Load the pretrained GE2E weights (``"ge2e"``), an encoder directory, or a ``.pt``/``.safetensors`` file."""
        from ..checkpoint import load_checkpoint, load_weights

        path = resolve(name_or_path, kind="speaker-encoder")
        if path.is_dir():
            ckpt = load_checkpoint(path, EncoderConfig, MODEL_TYPE, FORMAT_VERSION, kind="speaker-encoder")
            config, state = ckpt.config, ckpt.tensors
        else:
            config = EncoderConfig()
            state = _load_state_file(path)
        model = load_weights(GE2E(config), state, path, optional=("similarity_",))
        if device:
            model.to(device)
        return cls(model, source=str(name_or_path))

    def save(self, directory: str | Path, extra: dict | None = None) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (+ ``training.json`` with ``extra``) into ``directory``."""
        from ..checkpoint import save_checkpoint
        from ..files import write_json

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if extra:
            write_json(directory / "training.json", extra)
        return save_checkpoint(directory, self.config, self.model.state_dict(), MODEL_TYPE, FORMAT_VERSION)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- embedding --------------------------------------------------------------------------
    def preprocess(self, audio: AudioLike, sample_rate: int | None = None, trim: bool = True) -> np.ndarray:
        """Any audio -> mono float32 at 16 kHz, silence trimmed, level normalised to -30 dBFS."""
        wav, _ = normalize_input(audio, sample_rate, self.config.sample_rate)
        if trim:
            wav = trim_silence(wav, self.config.sample_rate)
        rms = float(np.sqrt(np.mean(wav.astype(np.float64) ** 2)))
        if rms < 1e-5:
            raise EmptyAudioError("audio is silent; no voice to embed",
                                  path=audio if isinstance(audio, (str, Path)) else None)
        gain = 10 ** (self.config.norm_dbfs / 20) / rms
        return (wav * min(gain, 100.0)).astype(np.float32)  # GE2E front end raises quiet input only (cap +40 dB)

    def partial_mels(self, wav: np.ndarray) -> torch.Tensor:
        """Preprocessed audio -> ``(partials, partial_frames, n_mels)`` overlapping log-mel windows."""
        mels = mel_frames(wav, self.config)
        n, hop = self.config.partial_frames, self.config.partial_hop_frames
        if len(mels) < n:
            mels = np.pad(mels, ((0, n - len(mels)), (0, 0)))
        starts = list(range(0, len(mels) - n + 1, hop))
        if len(mels) - (starts[-1] + n) > hop // 2:  # cover the tail with one more window
            starts.append(len(mels) - n)
        return torch.from_numpy(np.stack([mels[s : s + n] for s in starts]))

    @torch.inference_mode()
    def embed(self, audio: AudioLike, sample_rate: int | None = None, trim: bool = True) -> np.ndarray:
        """One utterance -> ``(embedding_size,)`` unit vector (mean of its partial windows, renormalised)."""
        wav = self.preprocess(audio, sample_rate, trim)
        parts = self.model(self.partial_mels(wav).to(self.device)).cpu().numpy()
        e = parts.mean(axis=0)
        return (e / (np.linalg.norm(e) + 1e-8)).astype(np.float32)

    @torch.inference_mode()
    def embed_frames(self, audio: AudioLike, sample_rate: int | None = None, hop_seconds: float = 0.5,
                     window_seconds: float = 1.6) -> tuple[np.ndarray, np.ndarray]:
        """Sliding-window embeddings over a long recording without silence trimming.

        Returns ``(centers_seconds (n,), embeddings (n, embedding_size))``. Used to follow who speaks when.
        """
        wav, sr = normalize_input(audio, sample_rate, self.config.sample_rate)
        mels = mel_frames(wav, self.config)
        frames_per_s = 1000 / self.config.hop_ms
        n = int(window_seconds * frames_per_s)
        hop = max(1, int(hop_seconds * frames_per_s))
        if len(mels) < n:
            mels = np.pad(mels, ((0, n - len(mels)), (0, 0)))
        starts = np.arange(0, len(mels) - n + 1, hop)
        batch = torch.from_numpy(np.stack([mels[s : s + n] for s in starts]))
        out = torch.cat([self.model(b.to(self.device)) for b in batch.split(256)]).cpu().numpy()
        return (starts + n / 2) / frames_per_s, out

    def enroll(self, clips: list[AudioLike], sample_rate: int | None = None) -> np.ndarray:
        """Many clips of one voice -> one ``(embedding_size,)`` profile (normalised mean of clip embeddings)."""
        if not clips:
            raise EmptyAudioError("no clips to enrol a speaker from")
        embs = np.stack([self.embed(c, sample_rate) for c in clips])
        e = embs.mean(axis=0)
        return (e / np.linalg.norm(e)).astype(np.float32)

    @staticmethod
    def similarity(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
        """Cosine similarity of two embeddings, or of each row of ``a`` with ``b``."""
        a = np.asarray(a, dtype=np.float32)
        b = np.asarray(b, dtype=np.float32)
        num = a @ b
        den = np.linalg.norm(a, axis=-1) * np.linalg.norm(b) + 1e-8
        out = num / den
        return float(out) if np.ndim(out) == 0 else out


def _load_state_file(path: Path) -> dict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        checkpoint = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"cannot read encoder weights ({exc})", path=path) from exc
    return checkpoint.get("model_state", checkpoint)


def load_encoder_info(directory: str | Path) -> dict:
    """The training metadata saved next to a fine-tuned encoder, if any."""
    path = Path(directory) / "training.json"
    return json.loads(path.read_text()) if path.exists() else {}
