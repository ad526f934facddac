"""Inaudible, robust audio watermark carrying a voice id and a render id.

How it works (signal processing only, no trained model):

* The audio is analysed at a fixed working rate of 16 kHz (any input rate >= 16 kHz works: the mark lives in
  0.5-7 kHz, which survives resampling to 16 kHz and back).
* The STFT (512-point sqrt-Hann, hop 256 = 16 ms) band 0.5-7 kHz is cut into tiles of ``bins_per_tile`` bins by
  ``frames_per_tile`` frames. A keyed pseudo-random +-1 chip is assigned to every tile of a repeating period
  (``period_tiles`` tile columns, about 1 s). A fifth of the tiles carry a known sync pattern, the others the
  payload bits after a CRC and a rate-1/2 convolutional code, each bit spread over many tiles across the period.
* Embedding scales each tile's STFT magnitude by ``1 + a * chip`` (phase kept). Detection works on log energies,
  where the host interferes about equally in every tile, so a unit of relative change is worth the same anywhere
  but costs energy in proportion to the tile's energy: ``a`` falls as ``1 / (E + N0)`` with the tile energy ``E``
  (``N0``: a noise floor 20 dB below the mean power, so tiles that added noise would bury get no more than the
  floor), capped at ``max_strength``, and the whole mark is scaled to the ``target_snr_db`` (35.3 dB) budget.
* Detection computes log tile energies, removes the host with a high-pass along time (steady tones and the
  spectral envelope vanish; the mark changes from column to column), weights every tile by its estimated share of
  host signal over the band's noise floor (tiles buried in added noise count for nothing; a second weighting keeps
  at least 30 % of every tile's weight, for hosts that are themselves stationary noise, where the share is small
  and random everywhere) and whitens by the local RMS, folds the tiles of all periods onto one period, and finds the period's offset by correlating with the sync
  pattern (circular, through the FFT) for a few sub-frame phases. The normalised correlation ``z`` is about
  N(0, 1) per hypothesis on unmarked audio (``bench/watermark.py`` measures the null); the payload is decoded at
  the best offset of each weighting by soft Viterbi and checked by its CRC (a payload whose CRC checks out is
  preferred). A mark is reported at ``z >= threshold`` (5.5), or at ``z >= crc_threshold`` (3.5) when the CRC also
  checks out.

Payload layout (``PAYLOAD_BITS`` = 48 bits before coding): 16-bit voice id, 24-bit render id, 8-bit CRC.
String ids are hashed to these widths (``payload_for``); provenance sidecars keep the full strings.

Because the period is about 1 s and every period carries the whole payload, any excerpt of about 3 s decodes;
longer audio accumulates evidence over all its periods.

Limit: on broadband stationary noise (white or pink noise as the host) the host's own random tile energies
interfere as much as anywhere while the 35 dB budget leaves a small relative change (about 1.7 % per tile), so
such hosts do not carry the payload reliably: ``bench/watermark.py`` decodes the exact payload of 2 of 7
white/pink noise clips of 4-8 s whole and of none from 3-second excerpts (brown noise, whose upper band is quiet,
decodes: 3 of 3). A linear
correlation detector cannot cancel host interference; only a larger budget or host-informed embedding would.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, EmptyAudioError, InputError

DEFAULT_KEY = "voicetwin-public-watermark-v1"
VOICE_BITS = 16
RENDER_BITS = 24
CRC_BITS = 8
PAYLOAD_BITS = VOICE_BITS + RENDER_BITS + CRC_BITS
_CONV_K = 7
_CONV_POLYS = (0o133, 0o171)


# ----------------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class WatermarkConfig:
    """Hyper-parameters of the watermark. Changing any of them changes the mark: embed and detect must agree."""

    rate: int = 16000  # working sample rate (Hz)
    n_fft: int = 512
    hop: int = 256
    f_low: float = 500.0  # band carrying the mark (Hz)
    f_high: float = 7000.0
    bins_per_tile: int = 2
    frames_per_tile: int = 1
    period_tiles: int = 64  # tile columns per period (64 x 16 ms = 1.024 s)
    sync_fraction: float = 0.2  # share of the tiles carrying the sync pattern
    target_snr_db: float = 35.3  # signal to watermark power ratio of the embedded audio (dB)
    max_strength: float = 0.6  # cap of the per-tile relative magnitude change
    shaping: float = 1.0  # 0: same relative change everywhere; 1: same absolute change everywhere
    noise_floor_db: float = -20.0  # expected noise per tile relative to the mean power (strength stops growing below)
    threshold: float = 5.5  # sync z-score above which a mark is reported
    crc_threshold: float = 3.5  # lower sync z-score accepted when the payload CRC also checks out
    sub_phases: int = 4  # sub-hop phases searched by the detector
    silence_db: float = 60.0  # tiles this far below the loudest part are ignored
    highpass_tiles: int = 1  # detector: log energies minus their mean over 2 * this + 1 columns
    local_tiles: int = 5  # detector: neighbourhood (columns and bands) of the noise floor and whitening estimates
    floor_percentile: float = 10.0  # detector's estimate of a band's noise floor (percentile over time)
    share_floors: tuple[float, ...] = (0.0, 0.3)  # detector: weightings tried, tile weight >= this share (see detect)

    def __post_init__(self) -> None:
        if self.rate < 2 * self.f_high:
            raise ConfigError(f"watermark rate {self.rate} Hz is too low for a band up to {self.f_high} Hz")
        if not 0 < self.f_low < self.f_high:
            raise ConfigError("watermark band needs 0 < f_low < f_high")
        if self.hop <= 0 or self.n_fft != 2 * self.hop:
            raise ConfigError("watermark STFT needs n_fft == 2 * hop (sqrt-Hann overlap-add)")
        if not 0.05 <= self.sync_fraction <= 0.9:
            raise ConfigError("sync_fraction must be between 0.05 and 0.9")
        if self.target_snr_db < 10:
            raise ConfigError("target_snr_db below 10 dB would be clearly audible")
        if self.bins_per_tile < 1 or self.frames_per_tile < 1 or self.period_tiles < 4 or self.sub_phases < 1:
            raise ConfigError("tile sizes, period_tiles and sub_phases must be positive")
        if self.highpass_tiles < 1 or self.local_tiles < 1 or not 0 < self.max_strength < 1:
            raise ConfigError("highpass_tiles and local_tiles must be >= 1 and max_strength within (0, 1)")
        if not self.share_floors or not all(0.0 <= f <= 1.0 for f in self.share_floors):
            raise ConfigError("share_floors needs at least one value, each between 0 and 1")

    @property
    def bins(self) -> tuple[int, int]:
        """First and last+1 STFT bin of the band, rounded to whole tiles."""
        lo = int(math.ceil(self.f_low * self.n_fft / self.rate))
        hi = int(math.floor(self.f_high * self.n_fft / self.rate))
        n = (hi - lo) // self.bins_per_tile * self.bins_per_tile
        return lo, lo + n

    @property
    def n_bands(self) -> int:
        lo, hi = self.bins
        return (hi - lo) // self.bins_per_tile

    @property
    def period_seconds(self) -> float:
        return self.period_tiles * self.frames_per_tile * self.hop / self.rate


# ---------------------------------------------------------------------------------------------------------- payload


@dataclass(frozen=True)
class Payload:
    """What a mark carries: a 16-bit voice id and a 24-bit render id."""

    voice: int
    render: int

    def __post_init__(self) -> None:
        if not 0 <= self.voice < 2**VOICE_BITS:
            raise InputError(f"voice id {self.voice} does not fit in {VOICE_BITS} bits", fix=f"use 0..{2**VOICE_BITS - 1}")
        if not 0 <= self.render < 2**RENDER_BITS:
            raise InputError(
                f"render id {self.render} does not fit in {RENDER_BITS} bits", fix=f"use 0..{2**RENDER_BITS - 1}"
            )

    def bits(self) -> np.ndarray:
        """``(PAYLOAD_BITS,)`` uint8: voice, render, CRC-8 of both."""
        data = _int_bits(self.voice, VOICE_BITS) + _int_bits(self.render, RENDER_BITS)
        return np.array(data + _int_bits(_crc8(data), CRC_BITS), dtype=np.uint8)

    @property
    def hex(self) -> str:
        return f"{self.voice:04x}-{self.render:06x}"

    def to_dict(self) -> dict:
        return {"voice": self.voice, "render": self.render, "hex": self.hex}


def id_code(value: str | int, bits: int) -> int:
    """Map an id to ``bits`` bits: an integer that fits is kept, anything else is hashed (SHA-256)."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        number = int(value)
        if 0 <= number < 2**bits:
            return number
    digest = hashlib.sha256(str(value).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % (2**bits)


def payload_for(voice_id: str | int, render_id: str | int) -> Payload:
    """The payload for a voice id and a render id (strings are hashed, small integers kept)."""
    return Payload(id_code(voice_id, VOICE_BITS), id_code(render_id, RENDER_BITS))


def payload_from_bits(bits: np.ndarray) -> tuple[Payload, bool]:
    """Inverse of ``Payload.bits``: the payload and whether its CRC checks out."""
    bits = [int(b) for b in bits]
    data, crc = bits[: VOICE_BITS + RENDER_BITS], bits[VOICE_BITS + RENDER_BITS :]
    voice = _bits_int(data[:VOICE_BITS])
    render = _bits_int(data[VOICE_BITS:])
    return Payload(voice, render), _int_bits(_crc8(data), CRC_BITS) == crc


def _int_bits(value: int, n: int) -> list[int]:
    return [(value >> (n - 1 - i)) & 1 for i in range(n)]


def _bits_int(bits: list[int]) -> int:
    out = 0
    for b in bits:
        out = (out << 1) | int(b)
    return out


def _crc8(bits: list[int], poly: int = 0x07) -> int:
    """CRC-8 (polynomial x^8 + x^2 + x + 1) over a bit list, with a non-zero initial value."""
    reg = 0xFF
    for b in bits:
        top = ((reg >> 7) & 1) ^ int(b)
        reg = (reg << 1) & 0xFF
        if top:
            reg ^= poly
    return reg


# ---------------------------------------------------------------------------------------------------- channel code


def conv_encode(bits: np.ndarray) -> np.ndarray:
    """Rate-1/2, constraint length 7 convolutional code (133, 171 octal), zero-terminated.

    ``(n,)`` bits -> ``(2 * (n + 6),)`` coded bits.
    """
    k = _CONV_K
    padded = np.concatenate([np.asarray(bits, dtype=np.uint8), np.zeros(k - 1, np.uint8)])
    state = 0
    out = []
    for b in padded:
        state = ((state << 1) | int(b)) & ((1 << k) - 1)
        for poly in _CONV_POLYS:
            out.append(bin(state & poly).count("1") & 1)
    return np.array(out, dtype=np.uint8)


def _trellis() -> tuple[np.ndarray, np.ndarray]:
    """For each (previous state, input bit): next state and the two output signs (+1 for bit 0)."""
    k = _CONV_K
    n_states = 1 << (k - 1)
    nxt = np.zeros((n_states, 2), dtype=np.int64)
    sgn = np.zeros((n_states, 2, 2), dtype=np.float64)
    for s in range(n_states):
        for b in (0, 1):
            reg = (s << 1) | b
            nxt[s, b] = reg & (n_states - 1)
            for j, poly in enumerate(_CONV_POLYS):
                sgn[s, b, j] = 1.0 - 2.0 * (bin(reg & poly).count("1") & 1)
    return nxt, sgn


_NEXT, _SIGNS = _trellis()


def viterbi_decode(soft: np.ndarray, n_bits: int) -> np.ndarray:
    """Soft-decision Viterbi for ``conv_encode``. ``soft``: ``(2 * (n_bits + 6),)``, positive means bit 0."""
    n_states = _NEXT.shape[0]
    steps = n_bits + _CONV_K - 1
    soft = np.asarray(soft, dtype=np.float64).reshape(steps, 2)
    metric = np.full(n_states, -np.inf)
    metric[0] = 0.0
    back_state = np.zeros((steps, n_states), dtype=np.int64)
    back_bit = np.zeros((steps, n_states), dtype=np.uint8)
    src = np.repeat(np.arange(n_states), 2)
    bit = np.tile([0, 1], n_states)
    dst = _NEXT[src, bit]
    for t in range(steps):
        branch = metric[src] + _SIGNS[src, bit] @ soft[t]
        if t >= n_bits:  # tail: only zero inputs
            branch = np.where(bit == 0, branch, -np.inf)
        order = np.lexsort((-branch, dst))  # best branch first within each destination
        first = np.ones(len(order), dtype=bool)
        first[1:] = dst[order][1:] != dst[order][:-1]
        winners = order[first]
        new_metric = np.full(n_states, -np.inf)
        new_metric[dst[winners]] = branch[winners]
        back_state[t, dst[winners]] = src[winners]
        back_bit[t, dst[winners]] = bit[winners]
        metric = new_metric
    state = 0
    out = np.zeros(steps, dtype=np.uint8)
    for t in range(steps - 1, -1, -1):
        out[t] = back_bit[t, state]
        state = back_state[t, state]
    return out[:n_bits]


# ---------------------------------------------------------------------------------------------------------- pattern


@dataclass(frozen=True)
class _Pattern:
    """Keyed layout of one period: ``(period_tiles, n_bands)`` arrays."""

    chips: np.ndarray  # +-1 pseudo-random signs
    slot: np.ndarray  # -1: sync tile, k >= 0: coded bit k


_PATTERNS: dict[tuple, _Pattern] = {}


def _pattern(config: WatermarkConfig, key: str) -> _Pattern:
    cache_key = (config, key)
    if cache_key not in _PATTERNS:
        seed = int.from_bytes(hashlib.sha256(f"voicetwin-wm|{key}".encode()).digest()[:8], "big")
        rng = np.random.default_rng(seed)
        shape = (config.period_tiles, config.n_bands)
        n_tiles = shape[0] * shape[1]
        n_coded = 2 * (PAYLOAD_BITS + _CONV_K - 1)
        n_sync = int(round(config.sync_fraction * n_tiles))
        if n_tiles - n_sync < n_coded:
            raise ConfigError("watermark period too small for the payload", fix="raise period_tiles or lower sync_fraction")
        chips = rng.choice(np.array([-1.0, 1.0]), size=shape)
        slots = np.full(n_tiles, -1, dtype=np.int64)
        data_tiles = n_tiles - n_sync
        slots[:data_tiles] = np.arange(data_tiles) % n_coded
        slot = rng.permutation(slots).reshape(shape)
        _PATTERNS[cache_key] = _Pattern(chips=chips, slot=slot)
    return _PATTERNS[cache_key]


# ------------------------------------------------------------------------------------------------------------- STFT


def _window(n_fft: int) -> np.ndarray:
    return np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft))


def _stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """``(samples,)`` -> ``(frames, n_fft // 2 + 1)``; frame ``t`` is centred on sample ``t * hop``."""
    n_frames = len(x) // hop + 1
    padded = np.zeros((n_frames + 1) * hop + n_fft, dtype=np.float64)
    padded[n_fft // 2 : n_fft // 2 + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[: n_frames * hop : hop]
    return np.fft.rfft(frames * _window(n_fft), axis=-1)


def _istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Overlap-add inverse of ``_stft`` (perfect reconstruction with sqrt-Hann at 50 % overlap)."""
    frames = np.fft.irfft(spec, n=n_fft, axis=-1) * _window(n_fft)
    n_frames = frames.shape[0]
    out = np.zeros((n_frames + 1) * hop + n_fft, dtype=np.float64)
    for j in range(n_fft // hop):
        block = frames[:, j * hop : (j + 1) * hop].reshape(-1)
        out[j * hop : j * hop + block.size] += block
    return out[n_fft // 2 : n_fft // 2 + length]


# ------------------------------------------------------------------------------------------------------------ embed


def _prepare(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2) or audio.shape[-1] == 0:
        raise InputError(f"expected audio of shape (samples,) or (channels, samples), got {audio.shape}")
    if sample_rate < 16000:
        raise InputError(f"watermarking needs a sample rate of at least 16 kHz, got {sample_rate} Hz",
                         fix="resample the audio to 16 kHz or more first")
    if not np.all(np.isfinite(audio)):
        raise InputError("audio contains NaN or infinite values")
    return audio


def _to_rate(mono: np.ndarray, sample_rate: int, rate: int) -> np.ndarray:
    from ..audio.io import resample

    return resample(mono.astype(np.float32), sample_rate, rate).astype(np.float64)


def _coded_bits(payload: Payload) -> np.ndarray:
    return conv_encode(payload.bits())


def embed(
    audio: np.ndarray,
    sample_rate: int,
    payload: Payload,
    key: str = DEFAULT_KEY,
    config: WatermarkConfig | None = None,
) -> np.ndarray:
    """Return ``audio`` with an inaudible mark carrying ``payload``.

    Args:
        audio: float ``(samples,)`` or ``(channels, samples)`` in [-1, 1], any rate >= 16 kHz.
        sample_rate: Hz.
        payload: ``Payload`` (see ``payload_for``).
        key: secret or project key; detection needs the same key.

    Returns:
        float32 array of the same shape; the same mark is added to every channel. Silent input is returned
        unchanged (there is nothing to hide a mark in).
    """
    config = config or WatermarkConfig()
    audio = _prepare(audio, sample_rate)
    if not isinstance(payload, Payload):
        raise InputError("payload must be a voicetwin.production.watermark.Payload", fix="use payload_for(voice_id, render_id)")
    mono = audio if audio.ndim == 1 else audio.mean(axis=0)
    x = _to_rate(mono, sample_rate, config.rate)
    residual = _residual(x, payload, key, config, power=float(np.mean(np.square(mono, dtype=np.float64))))
    if residual is None:
        return audio.copy()
    if sample_rate != config.rate:
        residual = _to_rate(residual, config.rate, sample_rate)
    residual = _fit_length(residual, mono.shape[-1])
    # exact SNR at the output rate (resampling moves a little energy)
    power = float(np.mean(np.square(mono, dtype=np.float64)))
    r_power = float(np.mean(np.square(residual)))
    limit = power / 10 ** (config.target_snr_db / 10)
    if r_power > limit > 0:
        residual *= math.sqrt(limit / r_power)
    out = audio.astype(np.float64) + (residual if audio.ndim == 1 else residual[None, :])
    return out.astype(np.float32)


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    return np.pad(x, (0, n - len(x)))


def _residual(
    x: np.ndarray, payload: Payload, key: str, config: WatermarkConfig, power: float | None = None
) -> np.ndarray | None:
    """The additive mark at the working rate, or ``None`` for silent audio.

    ``power``: mean square of the audio at its own rate (the SNR reference; default: that of ``x``).
    """
    x_power = float(np.mean(x**2))
    if x_power <= 0:
        return None
    budget_power = (power if power is not None else x_power) / 10 ** (config.target_snr_db / 10)
    spec = _stft(x, config.n_fft, config.hop)
    lo, hi = config.bins
    fpt, bpt = config.frames_per_tile, config.bins_per_tile
    n_frames = spec.shape[0]
    n_cols = -(-n_frames // fpt)
    band = spec[:, lo:hi]
    energy = np.abs(band) ** 2
    pad_frames = n_cols * fpt - n_frames
    tiles = np.pad(energy, ((0, pad_frames), (0, 0))).reshape(n_cols, fpt, config.n_bands, bpt).sum(axis=(1, 3))
    if not np.any(tiles > 0):
        return None
    shape = _shape(tiles, spec, config)
    pattern = _pattern(config, key)
    coded = _coded_bits(payload)
    data_sign = np.where(pattern.slot >= 0, 1.0 - 2.0 * coded[np.maximum(pattern.slot, 0)], 1.0)
    period = pattern.chips * data_sign  # (period_tiles, n_bands)
    cols = np.arange(n_cols) % config.period_tiles
    signs = period[cols]  # (n_cols, n_bands)
    # global strength for the target SNR: residual energy = sum(strength^2 * tile energy); the per-tile cap makes
    # this non-linear, so bisect on the gain
    total = float(np.sum(np.abs(spec) ** 2))  # same one-sided STFT scale as the tiles
    budget = total * budget_power / x_power
    if float(np.sum(shape**2 * tiles)) <= 0:
        return None
    cap = config.max_strength
    lo_gain, hi_gain = 0.0, math.sqrt(budget / float(np.sum(shape**2 * tiles)))
    while float(np.sum(np.minimum(hi_gain * shape, cap) ** 2 * tiles)) < budget and hi_gain < 1e6:
        lo_gain, hi_gain = hi_gain, hi_gain * 2
        if np.all(hi_gain * shape[shape > 0] >= cap):
            break
    for _ in range(30):
        mid = 0.5 * (lo_gain + hi_gain)
        if float(np.sum(np.minimum(mid * shape, cap) ** 2 * tiles)) > budget:
            hi_gain = mid
        else:
            lo_gain = mid
    strength = np.minimum(lo_gain * shape, cap)

    mask = np.repeat(np.repeat(strength * signs, fpt, axis=0)[:n_frames], bpt, axis=1)
    delta = np.zeros_like(spec)
    delta[:, lo:hi] = band * mask
    residual = _istft(delta, config.n_fft, config.hop, len(x))
    # overlap-add smooths part of the modulation away: bring the residual to the SNR target (up to 4x)
    r_energy = float(np.sum(residual**2))
    if r_energy > 0:
        residual *= min(4.0, math.sqrt(budget_power * len(x) / r_energy))
    return residual


def _shape(tiles: np.ndarray, spec: np.ndarray, config: WatermarkConfig) -> np.ndarray:
    """Relative strength of the mark per tile ``(n_cols, n_bands)`` before the global gain.

    Detection works on log tile energies, where the host interferes about equally everywhere, so a unit of relative
    change is worth the same in every tile but costs energy in proportion to the tile's energy: the strength falls
    with the tile energy, ``(ref / (E + N0)) ** shaping``, where ``N0`` is the expected noise floor per tile
    (``noise_floor_db`` below the mean power): tiles that noise would bury get no more than tiles at the floor.
    """
    per_tile = config.bins_per_tile * config.frames_per_tile
    ref = float(np.mean(np.abs(spec) ** 2)) * per_tile + 1e-30
    n0 = ref * 10 ** (config.noise_floor_db / 10)
    shape = (ref / (tiles + n0)) ** config.shaping
    loud = 10 * np.log10(tiles.mean(axis=1) + 1e-30)
    shape[loud < loud.max() - config.silence_db] = 0.0
    return shape


# ----------------------------------------------------------------------------------------------------------- detect


@dataclass(frozen=True)
class Detection:
    """Result of ``detect``.

    ``detected``: a mark made with this key is present. ``payload``: decoded payload (``None`` when nothing is
    detected). ``confidence``: 1 minus an upper bound of the chance that unmarked audio scores this high.
    ``score``: the sync z-score (about N(0, 1) on unmarked audio). ``crc_ok``: the payload's CRC checks out.
    ``bits``: the decoded payload bits. ``offset_seconds``: where a period starts in the audio.
    """

    detected: bool
    payload: Payload | None
    confidence: float
    score: float
    crc_ok: bool
    bits: np.ndarray = field(repr=False)
    offset_seconds: float = 0.0

    def to_dict(self) -> dict:
        return {
            "detected": self.detected,
            "payload": self.payload.to_dict() if self.payload else None,
            "confidence": round(self.confidence, 6),
            "score": round(self.score, 3),
            "crc_ok": self.crc_ok,
            "offset_seconds": round(self.offset_seconds, 4),
        }


def box_mean(x: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    """The mean of ``x`` over a box of odd ``sizes`` (one per axis) centred on each element, the edges extended with
    the edge values (``scipy.ndimage.uniform_filter(x, sizes, mode="nearest")``), by running sums."""
    out = np.asarray(x, dtype=np.float64)
    for axis, size in enumerate(sizes):
        if size % 2 == 0:
            raise ConfigError(f"box sizes must be odd, got {size}")
        if size == 1:
            continue
        half = size // 2
        widths = [(0, 0)] * out.ndim
        widths[axis] = (half + 1, half)
        sums = np.cumsum(np.pad(out, widths, mode="edge"), axis=axis)
        n = out.shape[axis]
        out = (np.take(sums, np.arange(size, size + n), axis=axis) - np.take(sums, np.arange(n), axis=axis)) / size
    return out


def _tile_features(x: np.ndarray, config: WatermarkConfig, phase: int) -> list[tuple[int, np.ndarray]]:
    """Weighted, whitened log tile energies ``(n_cols, n_bands)``: ``(frame phase of a tile, features)`` for every
    frame phase and every weighting of ``config.share_floors``.

    * high-pass along time: the log energy minus its mean over ``2 * highpass_tiles + 1`` tile columns of the same
      band, which removes the host's spectral envelope and any steady tone (the mark changes from column to column);
    * noise weighting: each tile is weighted by ``1 - floor / E`` (an estimate of its share of host signal), the
      floor being a low percentile of the band's smoothed energy over time: tiles buried in noise count for nothing.
      That is right for a host under added noise and wrong for a host that is itself stationary noise (every tile
      then sits near the floor and gets a small, random weight), so each weighting of ``share_floors`` keeps at
      least that share: ``s + (1 - s) * share`` (0: the plain share, 0.3: noise-like hosts keep most of their weight);
    * whitening: each tile is divided by the local RMS of the high-passed features, so loud, fast-changing regions
      (onsets, harmonics moving in pitch) do not swamp the correlation.
    """
    spec = _stft(x[phase:], config.n_fft, config.hop)
    lo, hi = config.bins
    full = np.abs(spec) ** 2
    energy = full[:, lo:hi].reshape(full.shape[0], config.n_bands, config.bins_per_tile).sum(axis=2)
    fpt = config.frames_per_tile
    tiny = float(np.mean(full)) * config.bins_per_tile * fpt * 1e-9 + 1e-30
    size = config.local_tiles
    out = []
    for q in range(fpt):
        e = energy[q:]
        n_cols = e.shape[0] // fpt
        if n_cols < 3:
            continue
        tiles = e[: n_cols * fpt].reshape(n_cols, fpt, config.n_bands).sum(axis=1)
        logt = np.log(tiles + tiny)
        feat = logt - box_mean(logt, (2 * config.highpass_tiles + 1, 1))
        smooth = box_mean(tiles, (size, size))
        floor = np.percentile(smooth, config.floor_percentile, axis=0)
        share = np.clip(1.0 - floor / (smooth + tiny), 0.0, 1.0)
        whiten = 1.0 / np.sqrt(box_mean(feat**2, (size, size)) + 1e-3)
        level = 10 * np.log10(tiles.mean(axis=1) + 1e-30)
        gate = (level > level.max() - config.silence_db)[:, None]
        for s in config.share_floors:
            out.append((q, feat * (s + (1.0 - s) * share) * whiten * gate))
    return out


def detect(audio: np.ndarray, sample_rate: int, key: str = DEFAULT_KEY, config: WatermarkConfig | None = None) -> Detection:
    """Look for a mark made with ``key``.

    Args:
        audio: float ``(samples,)`` or ``(channels, samples)``, any rate >= 16 kHz, at least about 1.5 s long
            (3 s or more for reliable payloads).
        sample_rate: Hz.

    Returns:
        ``Detection``.
    """
    config = config or WatermarkConfig()
    audio = _prepare(audio, sample_rate)
    mono = audio if audio.ndim == 1 else audio.mean(axis=0)
    x = _to_rate(mono, sample_rate, config.rate)
    min_len = (config.period_tiles * config.frames_per_tile + 2) * config.hop
    if len(x) < min_len:
        raise EmptyAudioError(
            f"audio is too short to look for a watermark ({len(x) / config.rate:.2f} s; "
            f"at least {min_len / config.rate:.2f} s needed)"
        )
    pattern = _pattern(config, key)
    sync = (pattern.slot < 0).astype(np.float64) * pattern.chips  # (P, B), zero on data tiles
    sync_f = np.conj(np.fft.fft(sync, axis=0))
    sync_mask_f = np.conj(np.fft.fft((pattern.slot < 0).astype(np.float64), axis=0))
    P = config.period_tiles
    best: dict[int, tuple] = {}  # weighting -> (z, aligned folded features, sub-hop phase, shift)
    step = config.hop // config.sub_phases
    n_hyp = 0
    n_weightings = len(config.share_floors)
    for ph in range(config.sub_phases):
        for i, (q, feat) in enumerate(_tile_features(x, config, ph * step)):
            n_cols = feat.shape[0]
            folded = np.zeros((P, config.n_bands))
            np.add.at(folded, np.arange(n_cols) % P, feat)
            # corr[o] = sum_{p,b} folded[(p + o) % P, b] * sync[p, b]
            ff = np.fft.fft(folded, axis=0)
            corr = np.real(np.fft.ifft(ff * sync_f, axis=0)).sum(axis=1)
            norm = np.real(np.fft.ifft(np.fft.fft(folded**2, axis=0) * sync_mask_f, axis=0)).sum(axis=1)
            z = corr / np.sqrt(np.maximum(norm, 1e-30))
            n_hyp += P
            o = int(np.argmax(z))
            w = i % n_weightings
            if w not in best or z[o] > best[w][0]:
                best[w] = (float(z[o]), np.roll(folded, -o, axis=0), ph * step,
                           q * config.hop + o * config.frames_per_tile * config.hop)
    if not best:
        raise EmptyAudioError("audio is too short to look for a watermark")
    # each weighting's best offset is decoded; a payload whose CRC checks out is preferred, then the higher z
    candidates = []
    for score, aligned, phase, shift in best.values():
        bits, crc_ok = _decode(aligned, pattern)
        candidates.append((crc_ok and score >= config.crc_threshold, score, crc_ok, bits, phase, shift))
    _, score, crc_ok, bits, phase, shift = max(candidates, key=lambda c: (c[0], c[1]))
    detected = score >= config.threshold or (score >= config.crc_threshold and crc_ok)
    p_value = n_hyp * 0.5 * math.erfc(score / math.sqrt(2))
    if crc_ok:  # a wrong payload passes the CRC by chance once in 2**CRC_BITS, for each weighting decoded
        p_value *= n_weightings * 2.0**-CRC_BITS
    p_value = min(1.0, p_value)
    payload, _ = payload_from_bits(bits)
    offset = ((phase + shift) / config.rate) % config.period_seconds
    return Detection(
        detected=bool(detected),
        payload=payload if detected else None,
        confidence=float(1.0 - p_value),
        score=float(score),
        crc_ok=bool(crc_ok),
        bits=bits,
        offset_seconds=float(offset),
    )


def _decode(aligned: np.ndarray, pattern: _Pattern) -> tuple[np.ndarray, bool]:
    """Soft-decode the payload from period-aligned folded features ``(P, B)``."""
    n_coded = 2 * (PAYLOAD_BITS + _CONV_K - 1)
    data = pattern.slot >= 0
    contrib = (aligned * pattern.chips)[data]
    soft = np.bincount(pattern.slot[data], weights=contrib, minlength=n_coded)
    energy = np.bincount(pattern.slot[data], weights=aligned[data] ** 2, minlength=n_coded)
    soft = soft / np.sqrt(np.maximum(energy, 1e-30))
    bits = viterbi_decode(soft, PAYLOAD_BITS)
    _, ok = payload_from_bits(bits)
    return bits, ok


# ---------------------------------------------------------------------------------------------------- file wrappers


def embed_file(
    src: str | Path,
    dst: str | Path,
    payload: Payload,
    key: str = DEFAULT_KEY,
    config: WatermarkConfig | None = None,
) -> tuple[Path, float]:
    """Watermark an audio file into ``dst`` (atomic; format from the extension). Keeps rate and channels.

    Returns the written path and the signal-to-watermark ratio in dB (before any lossy encoding of ``dst``).
    Audio below 16 kHz is resampled to 16 kHz; a marked file whose peak would exceed full scale is scaled down.
    """
    from ..audio.io import ensure_audible, load_audio, resample, save_audio

    audio, sr = load_audio(src, mono=False)
    audio = audio[0] if audio.shape[0] == 1 else audio
    ensure_audible(audio, sr, path=src)
    if sr < 16000:
        audio, sr = resample(audio, sr, 16000), 16000
    marked = embed(audio, sr, payload, key=key, config=config)
    peak = float(np.max(np.abs(marked)))
    if peak > 1.0:
        audio, marked = audio / peak, marked / peak
    return save_audio(dst, marked, sr), snr_db(audio, marked)


def detect_file(path: str | Path, key: str = DEFAULT_KEY, config: WatermarkConfig | None = None) -> Detection:
    """Detect a mark in an audio file or a video's audio track."""
    from ..audio.io import load_audio

    audio, sr = load_audio(path, mono=True)
    if sr < 16000:
        from ..audio.io import resample

        audio, sr = resample(audio, sr, 16000), 16000
    try:
        return detect(audio, sr, key=key, config=config)
    except EmptyAudioError as exc:
        raise EmptyAudioError(str(exc), path=path) from exc


def snr_db(original: np.ndarray, marked: np.ndarray) -> float:
    """Signal-to-watermark ratio in dB."""
    original = np.asarray(original, dtype=np.float64)
    noise = np.asarray(marked, dtype=np.float64) - original
    return float(10 * np.log10(np.sum(original**2) / max(np.sum(noise**2), 1e-30)))


# names under which the package root exports the two verbs
embed_watermark = embed
detect_watermark = detect
