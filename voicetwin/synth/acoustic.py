"""A text-to-speech acoustic model trained on one speaker's transcribed recordings, spoken through WORLD or HiFi-GAN.

How it works. Text goes through a phone front end (festival's Russian front end for the festvox-ru phone set) to a
phone sequence. A small convolutional network encodes the phones, predicts each phone's duration in frames, repeats
each phone's encoding over its frames (with the frame's position inside the phone), and decodes frame-level WORLD
features: a coded spectral envelope (``envelope_dims`` mel-cepstrum-like coefficients), log F0, a voicing
probability and band aperiodicities. WORLD turns them into a waveform. A model with ``mel_bands`` also decodes the
universal HiFi-GAN's 80-band log mel, from the frames and the pitch contour it predicted, for the neural vocoder
(``vocoder="hifigan"``). Durations are the only timing: ``scale``
multiplies every phone and pause duration before decoding, so a line is fitted to a length by speaking it slower or
faster, never by stretching the waveform.

    model = AcousticModel.load("out/festvox_ru_tts/model")     # config.json + model.safetensors
    audio, sr = model.speak("Она завел+а прядь волос за ухо.")
    base = AcousticBase("out/festvox_ru_tts/model")            # a base synthesiser for voicetwin.synth.speak (``model:DIR``)

``voicetwin voice build`` trains one on a dataset's transcribed clips into ``VOICE/tts``
(``voicetwin.synth.speech_model``; training in ``acoustic_train.py``). A model directory holds ``config.json`` (architecture,
phone set, ``format_version``) and ``model.safetensors`` (weights and feature normalisation).
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError, InputError, MissingDependencyError, ModelNotFoundError
from ..hub import read_config, resolve

MODEL_TYPE = "voicetwin-acoustic"
FORMAT_VERSION = 1

# the festvox-ru (msu_ru_nsh) phone set: stressed vowels doubled, palatalised consonants doubled, "pau" a pause
FESTVOX_RU_PHONES = (
    "pau", "ii", "yy", "uu", "ee", "oo", "aa", "a", "e", "i", "y", "u", "ae", "ay", "ur",
    "p", "pp", "b", "bb", "t", "tt", "d", "dd", "k", "kk", "g", "gg", "c", "ch", "f", "ff", "v", "vv",
    "s", "ss", "z", "zz", "sh", "sch", "zh", "h", "hh", "m", "mm", "n", "nn", "l", "ll", "r", "rr", "j",
)
PAUSE = "pau"

# the CMU phone set of flite's US English front end (``t2p``); a "1" marks a vowel with lexical stress
CMU_VOWELS = ("aa", "ae", "ah", "ao", "aw", "ax", "ay", "eh", "er", "ey", "ih", "iy", "ow", "oy", "uh", "uw")
CMU_PHONES = (
    "pau", *CMU_VOWELS, *(v + "1" for v in CMU_VOWELS),
    "b", "ch", "d", "dh", "f", "g", "hh", "jh", "k", "l", "m", "n", "ng", "p", "r", "s", "sh", "t", "th", "v", "w",
    "y", "z", "zh",
)


def is_vowel(phone: str, language: str) -> bool:
    """Whether ``phone`` of the model's phone set is a vowel (a syllable nucleus)."""
    if language == "en":
        return phone.rstrip("1") in CMU_VOWELS
    return phone[:1] in "aeiouy"


@dataclass(frozen=True)
class AcousticConfig:
    """Architecture and features of an acoustic model, stored in ``config.json``.

    Frames are ``frame_period`` ms apart. Each frame's features are ``envelope_dims`` coded envelope coefficients,
    log F0 (interpolated through unvoiced frames), a voicing logit and ``aperiodicity_bands`` band aperiodicities
    in dB (what WORLD renders), then, when ``mel_bands`` is not 0, the neural vocoder's log mel
    (``voicetwin.audio.hifigan.mel_frames``: its bands and window, on this frame grid), which it renders directly.
    The mel comes from ``mel_layers`` more blocks that also see each frame's log F0 and voicing (the real ones in
    training, the predicted ones when speaking), so its harmonics follow one pitch contour.
    ``front_end`` names the phone front end whose phone set is ``phones``: ``festival:VOICE`` (festival's
    text analysis with that voice, e.g. the festvox-ru phones) or ``flite`` (flite's US English, ``CMU_PHONES``).
    """

    phones: tuple[str, ...] = FESTVOX_RU_PHONES
    language: str = "ru"
    front_end: str = "festival:msu_ru_nsh_clunits"
    sample_rate: int = 16_000
    frame_period: float = 10.0
    envelope_dims: int = 40
    aperiodicity_bands: int = 5
    hidden: int = 128
    encoder_layers: int = 4
    decoder_layers: int = 6
    kernel: int = 5
    dropout: float = 0.1
    mel_bands: int = 0  # 0: WORLD features only; 80: also the universal HiFi-GAN's log mel
    mel_layers: int = 3  # the mel decoder's blocks (on the frame encodings and the frame's pitch)

    def __post_init__(self):
        if self.mel_bands < 0:
            raise ConfigError(f"mel_bands must be 0 or more, got {self.mel_bands}")
        if len(self.phones) < 2 or len(set(self.phones)) != len(self.phones) or PAUSE not in self.phones:
            raise ConfigError("phones must be distinct symbols including 'pau'")
        if self.kernel % 2 != 1 or self.kernel < 1:
            raise ConfigError(f"kernel must be an odd number, got {self.kernel}")
        if min(self.hidden, self.encoder_layers, self.decoder_layers, self.envelope_dims, self.aperiodicity_bands,
               self.mel_layers) < 1:
            raise ConfigError("hidden, layer counts, envelope_dims and aperiodicity_bands must be >= 1")
        if not 1.0 <= self.frame_period <= 25.0:
            raise ConfigError(f"frame_period must be 1-25 ms, got {self.frame_period}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")

    @property
    def feature_dims(self) -> int:
        """Width of a frame's feature vector: envelope, log F0, voicing, band aperiodicities."""
        return self.envelope_dims + 2 + self.aperiodicity_bands

    @property
    def voicing_index(self) -> int:
        return self.envelope_dims + 1

    @property
    def output_dims(self) -> int:
        """Width of what the network predicts per frame: the WORLD features, then ``mel_bands`` log mel bands."""
        return self.feature_dims + self.mel_bands

    @property
    def spread_dims(self) -> np.ndarray:
        """Indices of the spectral coefficients whose average within-line spread the model keeps (``AcousticNet.spread``)
        for the variance postfilter: the envelope's and the mel bands."""
        return np.concatenate([np.arange(self.envelope_dims), np.arange(self.feature_dims, self.output_dims)])


# --- WORLD features ------------------------------------------------------------------------------


def _band_edges(sample_rate: int, bands: int) -> np.ndarray:
    """``bands + 1`` edges in Hz, evenly spaced on the mel scale from 0 to Nyquist."""
    mel = np.linspace(0.0, 2595 * np.log10(1 + sample_rate / 2 / 700), bands + 1)
    return 700 * (10 ** (mel / 2595) - 1)


def world_features(audio: np.ndarray, sample_rate: int, config: AcousticConfig) -> np.ndarray:
    """``(samples,)`` float at ``config.sample_rate`` -> ``(frames, config.feature_dims)`` float32 features,
    one frame every ``frame_period`` ms from t = 0 (WORLD's frame count)."""
    from ..audio.world import analyze, code_envelope

    if sample_rate != config.sample_rate:
        raise InputError(f"audio at {sample_rate} Hz, the model works at {config.sample_rate} Hz",
                         fix="resample the audio first (voicetwin.audio.io.resample)")
    w = analyze(np.asarray(audio, dtype=np.float64), sample_rate, config.frame_period)
    code = code_envelope(w.sp, sample_rate, config.envelope_dims)
    voiced = w.f0 > 0
    lf0 = np.zeros(w.frames)
    if voiced.any():
        idx = np.flatnonzero(voiced)
        lf0 = np.interp(np.arange(w.frames), idx, np.log(w.f0[idx]))
    else:
        lf0[:] = np.log(100.0)
    freqs = np.linspace(0, sample_rate / 2, w.ap.shape[1])
    edges = _band_edges(sample_rate, config.aperiodicity_bands)
    ap_db = 10 * np.log10(np.clip(w.ap, 1e-5, 1.0))
    bands = [ap_db[:, (freqs >= lo) & (freqs <= hi)].mean(axis=1) for lo, hi in zip(edges[:-1], edges[1:])]
    feats = np.concatenate([code, lf0[:, None], voiced[:, None].astype(np.float64), np.stack(bands, axis=1)], axis=1)
    return feats.astype(np.float32)


def frame_features(audio: np.ndarray, sample_rate: int, config: AcousticConfig) -> np.ndarray:
    """What the model learns to predict from a recording: ``world_features``, then (``config.mel_bands``) the
    neural vocoder's log mel on the same frames -> ``(frames, config.output_dims)`` float32."""
    feats = world_features(audio, sample_rate, config)
    if not config.mel_bands:
        return feats
    from ..audio.hifigan import HifiGanConfig, mel_frames

    vocoder = HifiGanConfig()
    if config.mel_bands != vocoder.num_mels:
        raise ConfigError(f"mel_bands is {config.mel_bands}; the universal vocoder takes {vocoder.num_mels}")
    mel = mel_frames(audio, sample_rate, config.frame_period, len(feats), vocoder)
    return np.concatenate([feats, mel], axis=1).astype(np.float32)


def decode_features(features: np.ndarray, config: AcousticConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, feature_dims)`` (voicing as a probability or 0/1) -> WORLD ``(f0, sp, ap)`` at
    ``config.sample_rate``: F0 in Hz (0 where unvoiced), power envelope and aperiodicity ``(frames, bins)``."""
    from ..audio.world import decode_envelope, fft_size

    sr, e = config.sample_rate, config.envelope_dims
    feats = np.asarray(features, dtype=np.float64)
    sp = decode_envelope(feats[:, :e], sr)
    f0 = np.where(feats[:, e + 1] > 0.5, np.exp(feats[:, e]), 0.0)
    bins = fft_size(sr) // 2 + 1
    edges = _band_edges(sr, config.aperiodicity_bands)
    centres = (edges[:-1] + edges[1:]) / 2
    freqs = np.linspace(0, sr / 2, bins)
    ap_db = np.stack([np.interp(freqs, centres, row) for row in feats[:, e + 2:]])
    ap = np.clip(10 ** (np.minimum(ap_db, 0.0) / 10), 1e-5, 1.0)
    return f0, sp, ap


def render_features(features: np.ndarray, config: AcousticConfig) -> np.ndarray:
    """``(frames, feature_dims)`` (voicing as a probability or 0/1) -> ``(samples,)`` float32 by WORLD synthesis;
    ``frames * frame_period`` ms of audio exactly."""
    from ..audio.world import synthesize

    f0, sp, ap = decode_features(features, config)
    samples = int(round(len(f0) * config.frame_period * config.sample_rate / 1000))
    return synthesize(f0, sp, ap, config.sample_rate, config.frame_period, samples=samples)


# --- the network ---------------------------------------------------------------------------------


class _Block(nn.Module):
    """Residual dilated convolution over ``(batch, hidden, time)``, layer-normalised per step, masked."""

    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.mix = nn.Conv1d(hidden, hidden, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        h = self.norm(x.transpose(1, 2)).transpose(1, 2) * mask
        return x + self.drop(self.mix(nn.functional.gelu(self.conv(h)))) * mask


class AcousticNet(nn.Module):
    """Phones ``(batch, phones)`` ids -> log durations ``(batch, phones)`` and, given durations in frames,
    normalised frame features ``(batch, frames, feature_dims)`` (voicing as a logit).

    Buffers ``mean``/``std`` ``(output_dims,)`` normalise the features; ``spread`` ``(envelope_dims + mel_bands,)``
    is the average within-utterance standard deviation of each real envelope coefficient and mel band (for
    variance restoration).
    """

    def __init__(self, config: AcousticConfig):
        super().__init__()
        h, k, p = config.hidden, config.kernel, config.dropout
        self.config = config
        self.embed = nn.Embedding(len(config.phones), h)
        self.encoder = nn.ModuleList(_Block(h, k, 1 + (i % 2), p) for i in range(config.encoder_layers))
        self.duration = nn.Sequential(nn.Conv1d(h, h, 3, padding=1), nn.GELU(), nn.Conv1d(h, 1, 1))
        self.position = nn.Linear(3, h)
        self.decoder = nn.ModuleList(_Block(h, k, 2 ** (i % 4), p) for i in range(config.decoder_layers))
        self.out = nn.Conv1d(h, config.feature_dims, 1)
        if config.mel_bands:
            self.pitch = nn.Conv1d(2, h, 1)
            self.mel_decoder = nn.ModuleList(_Block(h, k, 2 ** (i % 4), p) for i in range(config.mel_layers))
            self.mel_out = nn.Conv1d(h, config.mel_bands, 1)
        dims = config.output_dims
        self.register_buffer("mean", torch.zeros(dims))
        self.register_buffer("std", torch.ones(dims))
        self.register_buffer("spread", torch.ones(config.envelope_dims + config.mel_bands))

    def encode(self, phones: torch.Tensor, phone_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """-> encodings ``(batch, hidden, phones)`` and predicted ``log(1 + frames)`` ``(batch, phones)``."""
        m = phone_mask[:, None, :].float()
        x = self.embed(phones).transpose(1, 2) * m
        for block in self.encoder:
            x = block(x, m)
        return x, self.duration(x).squeeze(1) * phone_mask

    def decode(self, encodings: torch.Tensor, durations: torch.Tensor,
               pitch: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Encodings ``(batch, hidden, phones)``, integer frames per phone ``(batch, phones)`` -> normalised
        features ``(batch, frames, output_dims)`` and the frame mask ``(batch, frames)``. ``pitch``: ``(batch,
        frames or more, 2)`` normalised log F0 and voicing (0/1) the mel decoder is given (None: its own
        predictions)."""
        rows, positions = [], []
        for enc, dur in zip(encodings, durations):
            dur = dur.clamp(min=0).long()
            rows.append(torch.repeat_interleave(enc, dur, dim=1))
            positions.append(_positions(dur))
        frames = max(1, max(r.shape[1] for r in rows))
        x = torch.zeros(len(rows), encodings.shape[1], frames)
        pos = torch.zeros(len(rows), frames, 3)
        mask = torch.zeros(len(rows), frames)
        for i, (r, q) in enumerate(zip(rows, positions)):
            x[i, :, : r.shape[1]] = r
            pos[i, : q.shape[0]] = q
            mask[i, : r.shape[1]] = 1.0
        m = mask[:, None, :]
        x = (x + self.position(pos).transpose(1, 2)) * m
        for block in self.decoder:
            x = block(x, m)
        out = self.out(x)
        if self.config.mel_bands:
            e, v = self.config.envelope_dims, self.config.voicing_index
            if pitch is None:
                pitch = torch.stack([out[:, e], (out[:, v] > 0).float()], dim=1)
            else:
                pitch = pitch[:, :frames].transpose(1, 2)
            y = (x + self.pitch(pitch)) * m
            for block in self.mel_decoder:
                y = block(y, m)
            out = torch.cat([out, self.mel_out(y)], dim=1)
        return out.transpose(1, 2), mask

    def forward(self, phones: torch.Tensor, phone_mask: torch.Tensor, durations: torch.Tensor,
                pitch: torch.Tensor | None = None):
        """Training pass with known durations (and pitch, see ``decode``) -> (log durations, features, frame mask)."""
        enc, log_dur = self.encode(phones, phone_mask)
        feats, mask = self.decode(enc, durations, pitch)
        return log_dur, feats, mask


def training_loss(net: AcousticNet, phones: torch.Tensor, phone_mask: torch.Tensor, durations: torch.Tensor,
                  features: torch.Tensor) -> dict[str, torch.Tensor]:
    """Losses of a batch with known durations: L1 on the normalised envelope, log F0 and aperiodicities, L1 on the
    normalised mel bands (a model with ``mel_bands``), binary cross-entropy on voicing, squared error on
    ``log(1 + frames)`` of each phone.

    ``phones``, ``phone_mask``, ``durations``: ``(batch, phones)``; ``features``: ``(batch, frames, output_dims)``
    real features (voicing 0/1), zero-padded. Returns ``features``, ``mel`` (0 without mel bands), ``voicing``,
    ``duration`` and ``total``, and ``voicing_error`` (the share of frames whose voicing decision is wrong; no
    gradient).
    """
    config = net.config
    v, w, e = config.voicing_index, config.feature_dims, config.envelope_dims
    pitch = None  # the mel decoder is given the recording's pitch
    if config.mel_bands:
        pitch = torch.stack([(features[..., e] - net.mean[e]) / net.std[e], features[..., v]], dim=-1)
    log_dur, pred, mask = net(phones, phone_mask, durations, pitch)
    real = features[:, : pred.shape[1]]
    target = (real - net.mean) / net.std
    keep = torch.ones(w, dtype=torch.bool)
    keep[v] = False
    m = mask[..., None]
    error = (pred - target).abs() * m
    l1 = error[..., :w][..., keep].sum() / (m.sum() * keep.sum())
    mel = error[..., w:].sum() / (m.sum() * config.mel_bands) if config.mel_bands else torch.zeros(())
    voicing = nn.functional.binary_cross_entropy_with_logits(pred[..., v], real[..., v], reduction="none")
    voicing = (voicing * mask).sum() / mask.sum()
    dur = ((log_dur - torch.log1p(durations.float())) ** 2 * phone_mask).sum() / phone_mask.sum()
    with torch.no_grad():  # a measure, not a loss: the share of frames whose voiced/unvoiced decision is wrong
        wrong = ((pred[..., v] > 0).float() != real[..., v]).float()
        voicing_error = (wrong * mask).sum() / mask.sum()
    return {"features": l1, "mel": mel, "voicing": voicing, "duration": dur,
            "total": l1 + mel + 0.2 * voicing + 0.5 * dur, "voicing_error": voicing_error}


def _positions(durations: torch.Tensor) -> torch.Tensor:
    """Integer frames per phone ``(phones,)`` -> ``(frames, 3)``: relative position inside the phone (0-1),
    its mirror, and the phone's log length."""
    total = int(durations.sum())
    if total == 0:
        return torch.zeros(0, 3)
    owner = torch.repeat_interleave(torch.arange(len(durations)), durations)
    starts = torch.cumsum(durations, 0) - durations
    n = durations[owner].float()
    rel = (torch.arange(total) - starts[owner]).float().add(0.5) / n
    return torch.stack([rel, 1 - rel, torch.log1p(n) / 4], dim=1)


def frames_from_scaled(log_durations: np.ndarray, scale: float, pause_mask: np.ndarray) -> np.ndarray:
    """Predicted ``log(1 + frames)`` per phone -> integer frames after multiplying every duration by ``scale``.

    Rounds the running sum, so the total is the rounded scaled total (length is linear in ``scale``); a
    non-pause phone keeps at least one frame.
    """
    frames = np.maximum(np.expm1(np.asarray(log_durations, dtype=np.float64)), 0.0) * scale
    frames = np.where(pause_mask, frames, np.maximum(frames, 1.0))
    ends = np.round(np.cumsum(frames)).astype(np.int64)
    return np.diff(np.concatenate([[0], ends]))


# --- the model ------------------------------------------------------------------------------------


class AcousticModel:
    """A trained acoustic model: ``load(dir)``, ``save(dir)``, ``synthesize_phones(phones, scale)``, ``speak(text)``."""

    def __init__(self, config: AcousticConfig, net: AcousticNet | None = None, path: Path | None = None):
        self.config = config
        self.net = (net or AcousticNet(config)).eval()
        self.path = path
        self.index = {p: i for i, p in enumerate(config.phones)}

    @classmethod
    def load(cls, name_or_path: str | Path) -> "AcousticModel":
        try:
            path = resolve(name_or_path, kind="acoustic")
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"no acoustic model at '{name_or_path}'",
                                     fix="build a voice from transcribed recordings ('voicetwin voice build'): "
                                         "its speech model is VOICE/tts") from exc
        from ..checkpoint import load_checkpoint, load_weights

        ckpt = load_checkpoint(path, AcousticConfig, MODEL_TYPE, FORMAT_VERSION, kind="acoustic")
        return cls(ckpt.config, load_weights(AcousticNet(ckpt.config), ckpt.tensors, ckpt.weights), ckpt.path)

    def save(self, out: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``out`` (atomically, file by file)."""
        from ..checkpoint import save_checkpoint

        self.path = save_checkpoint(out, self.config, self.net.state_dict(), MODEL_TYPE, FORMAT_VERSION)
        return self.path

    def phone_ids(self, phones: list[str]) -> np.ndarray:
        unknown = sorted({p for p in phones if p not in self.index})
        if unknown:
            raise InputError(f"phones {unknown} are not in the model's phone set",
                             fix=f"use the front end the model was trained with ({self.config.front_end})")
        return np.array([self.index[p] for p in phones], dtype=np.int64)

    @torch.no_grad()
    def durations(self, phones: list[str]) -> np.ndarray:
        """Predicted ``log(1 + frames)`` of each phone, ``(phones,)``."""
        ids = torch.from_numpy(self.phone_ids(phones))[None]
        _, log_dur = self.net.encode(ids, torch.ones_like(ids, dtype=torch.bool))
        return log_dur[0].numpy()

    @torch.no_grad()
    def predict(self, phones: list[str], frames: np.ndarray, variance: float = 1.0) -> np.ndarray:
        """Phones and integer frames per phone -> ``(sum(frames), output_dims)``: WORLD features (voicing as a
        probability), then the log mel bands of a model that has them. ``variance`` (0-1) restores the within-line
        spread of the envelope coefficients and mel bands that averaging in training takes away (0: none, 1: the
        real recordings' average spread)."""
        ids = torch.from_numpy(self.phone_ids(phones))[None]
        enc, _ = self.net.encode(ids, torch.ones_like(ids, dtype=torch.bool))
        out, _ = self.net.decode(enc, torch.as_tensor(np.asarray(frames, dtype=np.int64))[None])
        feats = (out[0] * self.net.std + self.net.mean).numpy().astype(np.float64)
        v = self.config.voicing_index
        feats[:, v] = 1 / (1 + np.exp(-out[0, :, v].numpy()))
        if variance > 0 and len(feats) > 1:
            from ..voice.mel import restore_spread

            cols, spread = self.config.spread_dims[1:], self.net.spread.numpy()[1:]  # not the envelope's level
            feats[:, cols] = restore_spread(feats[:, cols], spread, variance)
        return feats.astype(np.float32)

    def features(self, phones: list[str], frames: np.ndarray, variance: float = 1.0) -> np.ndarray:
        """``predict``'s WORLD features alone, ``(sum(frames), feature_dims)``."""
        return self.predict(phones, frames, variance)[:, : self.config.feature_dims]

    def vocoder_mel(self, predicted: np.ndarray) -> np.ndarray | None:
        """``predict``'s log mel bands ``(frames, mel_bands)`` (on the model's frame grid), or None for a model
        without them."""
        return predicted[:, self.config.feature_dims:] if self.config.mel_bands else None

    def synthesize_phones(self, phones: list[str], scale: float = 1.0, variance: float = 1.0,
                          vocoder: str = "auto") -> tuple[np.ndarray, int, np.ndarray]:
        """Phones -> ``(samples,)`` float32, its sample rate and the frames given to each phone; ``scale``
        multiplies every phone and pause duration (> 1 slower). ``vocoder``: ``"world"`` renders the WORLD
        features at ``config.sample_rate``; ``"hifigan"`` the predicted mel through the universal HiFi-GAN at 22050 Hz
        (a model without mel bands: its WORLD render re-rendered, ``voicetwin.audio.hifigan.revocode``); ``"auto"``
        the mel where the model has mel bands, else WORLD."""
        frames = self.frames(phones, scale)
        audio, sr = self.render(self.predict(phones, frames, variance), vocoder)
        return audio, sr, frames

    def frames(self, phones: list[str], scale: float = 1.0) -> np.ndarray:
        """Integer frames of each phone at the predicted durations times ``scale`` (> 1 slower)."""
        if not phones:
            raise InputError("no phones to speak")
        if not scale > 0:
            raise InputError(f"scale must be positive, got {scale}")
        return frames_from_scaled(self.durations(phones), scale, np.array([p == PAUSE for p in phones]))

    def render(self, predicted: np.ndarray, vocoder: str = "auto") -> tuple[np.ndarray, int]:
        """``predict``'s output -> ``(audio, sample_rate)`` through ``vocoder`` (as in ``synthesize_phones``),
        ``frames * frame_period`` ms long."""
        from ..audio.hifigan import check_vocoder, render_mel, revocode

        check_vocoder(vocoder)
        mel = self.vocoder_mel(predicted) if vocoder != "world" else None
        if mel is None:
            return revocode(render_features(predicted[:, : self.config.feature_dims], self.config),
                            self.config.sample_rate, vocoder)
        return render_mel(mel, self.config.frame_period)

    def speak(self, text: str, scale: float = 1.0, vocoder: str = "auto") -> tuple[np.ndarray, int]:
        """Normalised text (``+`` stress marks allowed) -> ``(audio, sample_rate)`` through the front end."""
        phones = [p for p, _ in front_end_phones(text, self.config.front_end)]
        audio, sr, _ = self.synthesize_phones(phones, scale, vocoder=vocoder)
        return audio, sr


# --- the phone front end ---------------------------------------------------------------------------


class _FestivalFrontEnd:
    """A festival process kept open (``festival --pipe``), asked for the phones of each line: text analysis only,
    no waveform synthesis, about 10 ms a line once started."""

    _STEPS = "(Initialize u)(Text u)(Token_POS u)(Token u)(POS u)(Phrasify u)(Word u)(Pauses u)(PostLex u)"
    _END = "@@voicetwin-end@@"

    def __init__(self, voice: str):
        if shutil.which("festival") is None:
            raise MissingDependencyError("festival", None, "the phone front end (apt-get install festival festvox-ru)")
        if not re.fullmatch(r"[A-Za-z0-9_]+", voice):
            raise ConfigError(f"'{voice}' is not a festival voice name")
        command = ["festival", "--pipe"]
        if shutil.which("stdbuf"):
            command = ["stdbuf", "-oL", *command]
        self.voice = voice
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, encoding="utf-8", errors="replace")
        weakref.finalize(self, _close, self.proc)
        self._send(f"(voice_{voice})")

    def _send(self, commands: str) -> list[str]:
        if self.proc.poll() is not None:
            raise ModelNotFoundError(f"the festival front end stopped (voice {self.voice})",
                                     fix="check that festival and the voice are installed (apt-get install festvox-ru)")
        self.proc.stdin.write(f'{commands}\n(format t "{self._END}\\n")\n')
        self.proc.stdin.flush()
        lines = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise ModelNotFoundError(f"the festival front end stopped (voice {self.voice})",
                                         fix="check that the festival voice is installed")
            if line.strip() == self._END:
                return lines
            lines.append(line.strip())

    def phones(self, text: str) -> list[tuple[str, int]]:
        quoted = text.replace("\\", " ").replace('"', " ")
        with self.lock:
            lines = self._send(
                f'(set! u (Utterance Text "{quoted}"))\n{self._STEPS}\n'
                "(mapcar (lambda (s) (format t \"@@ %s %s\\n\" (item.name s) "
                "(item.feat s \"R:SylStructure.parent.parent.id\"))) (utt.relation.items u 'Segment))")
        out, words, last = [], -1, None
        for line in lines:
            parts = line.split()
            if len(parts) != 3 or parts[0] != "@@":
                continue
            name, word = parts[1], parts[2]
            if name == PAUSE or word == "0":
                out.append((PAUSE, -1))
                continue
            if word != last:
                words, last = words + 1, word
            out.append((name, words))
        return out


def _close(proc: subprocess.Popen) -> None:
    try:
        proc.stdin.close()
        proc.wait(timeout=5)
    except Exception:  # noqa: BLE001 - best effort at exit
        proc.kill()


class _FliteFrontEnd:
    """flite's US English text analysis (``t2p``: CMU lexicon, letter-to-sound rules, phrasing, lexical stress),
    a few milliseconds a line, no waveform. Words are found by asking for every word alone as well (each then
    ends in a pause) and matching those phones to the line's."""

    def __init__(self):
        if shutil.which("t2p") is None:
            raise MissingDependencyError("flite", None, "the English phone front end (apt-get install flite)")

    @staticmethod
    def _t2p(text: str) -> list[str]:
        run = subprocess.run(["t2p", text], capture_output=True, text=True, encoding="utf-8", errors="replace",
                             timeout=60)
        if run.returncode != 0:
            raise ModelNotFoundError("flite's t2p failed", fix="check that flite is installed (apt-get install flite)")
        return [p[:-1] + ("1" if p[-1] != "0" else "") if p[-1].isdigit() else p for p in run.stdout.split()]

    def phones(self, text: str) -> list[tuple[str, int]]:
        import difflib

        line = self._t2p(" ".join(text.split()))
        words = [w for w in (t.strip(".,;:!?\"()[]") for t in text.split()) if w]
        alone, chunk, after_pause = [], -1, True
        for p in self._t2p(". ".join(words) + ".") if words else []:
            if p == PAUSE:
                after_pause = True
                continue
            chunk, after_pause = chunk + after_pause, False
            alone.append((p, chunk))
        said = [(i, p.rstrip("1")) for i, p in enumerate(line) if p != PAUSE]
        ref = [(w, p.rstrip("1")) for p, w in alone]
        owner: dict[int, int] = {}
        matcher = difflib.SequenceMatcher(None, [p for _, p in said], [p for _, p in ref], autojunk=False)
        for a, b, n in matcher.get_matching_blocks():
            for k in range(n):
                owner[said[a + k][0]] = ref[b + k][0]
        out, last = [], 0
        for i, p in enumerate(line):
            if p == PAUSE:
                out.append((PAUSE, -1))
                continue
            last = owner.get(i, last)
            out.append((p, last))
        return out


@functools.lru_cache(maxsize=4)
def _front_end(spec: str) -> _FestivalFrontEnd | _FliteFrontEnd:
    kind, _, arg = spec.partition(":")
    if kind == "flite":
        return _FliteFrontEnd()
    if kind != "festival":
        raise ConfigError(f"unknown phone front end '{spec}'", fix="use festival:VOICE or flite")
    return _FestivalFrontEnd(arg or "msu_ru_nsh_clunits")


@functools.lru_cache(maxsize=256)
def front_end_phones(text: str, spec: str = "festival:msu_ru_nsh_clunits") -> tuple[tuple[str, int], ...]:
    """Normalised text -> ``((phone, word index or -1 for pauses), ...)``, starting and ending with a pause."""
    phones = _front_end(spec).phones(text)
    if not any(p != PAUSE for p, _ in phones):
        raise InputError(f"nothing to say in {text!r}", fix="give text with words in it")
    if phones[0][0] != PAUSE:
        phones.insert(0, (PAUSE, -1))
    if phones[-1][0] != PAUSE:
        phones.append((PAUSE, -1))
    return tuple(phones)


# --- a base synthesiser for voicetwin.synth.speak -------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _cached_model(path: str) -> AcousticModel:
    return AcousticModel.load(path)


def is_acoustic_model(path: str | Path) -> bool:
    """Whether ``path`` is a directory holding an acoustic model (config.json of this model type)."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return False
    try:
        return read_config(Path(path)).get("model_type") == MODEL_TYPE
    except ConfigError:
        return False


class AcousticBase:
    """A trained acoustic model as a base synthesiser (``model:DIR``): it already speaks in the target's voice."""

    min_scale, max_scale = 0.4, 2.5
    in_voice = True  # speaks in the voice it was trained on: no conversion needed

    def __init__(self, model: str | Path, variance: float = 1.0):
        self.model = _cached_model(str(model))
        self.name = f"model:{model}"
        self.language = self.model.config.language
        self.sample_rate = self.model.config.sample_rate
        self.variance = variance

    def features(self, phones: list[str], frames: np.ndarray) -> np.ndarray:
        """The model's WORLD features for ``phones`` held for ``frames`` frames each (any lengths: a sung vowel
        is generated at its note's length, not stretched from a spoken one)."""
        return self.model.features(phones, frames, self.variance)

    def synthesize(self, text: str, scale: float = 1.0):
        """The WORLD render, with the predicted mel for the neural vocoder (``Synthesis.mel``) when the model has
        mel bands."""
        from .base import Phone, Synthesis

        marked = front_end_phones(text, self.model.config.front_end)
        phones = [p for p, _ in marked]
        frames = self.model.frames(phones, scale)
        predicted = self.model.predict(phones, frames, self.variance)
        audio, _ = self.model.render(predicted, "world")
        hop = self.model.config.frame_period / 1000.0
        ends = np.cumsum(frames) * hop
        timed = []
        for (sym, word), n, end in zip(marked, frames, ends):
            if n == 0:
                continue
            kind = "pause" if sym == PAUSE else ("vowel" if is_vowel(sym, self.language) else "consonant")
            timed.append(Phone(sym, float(end - n * hop), float(end), kind, word))
        return Synthesis(audio, self.sample_rate, timed, scale, self.model.vocoder_mel(predicted),
                         self.model.config.frame_period)
