"""Audio I/O and basic DSP: load (any container), save (atomic), resample, loudness.

Arrays are float32 numpy arrays of shape ``(samples,)`` for mono, ``(channels, samples)`` otherwise,
with values in [-1, 1]. Sample rates are in Hz, durations in seconds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import AudioDecodeError, EmptyAudioError, InputError, InputNotFoundError, NoAudioStreamError
from ..files import atomic_path

AudioLike = Union[str, Path, np.ndarray, "tuple[np.ndarray, int]", object]

SILENCE_PEAK = 1e-4  # below this peak amplitude a file is treated as silent (-80 dBFS)


def load_audio(
    path: str | Path,
    sample_rate: int | None = None,
    mono: bool = True,
    start: float = 0.0,
    duration: float | None = None,
) -> tuple[np.ndarray, int]:
    """Decode an audio file or the audio track of a video.

    Args:
        path: wav/flac/ogg/mp3/m4a or a video container (mp4, mkv, avi, ...).
        sample_rate: resample to this rate (Hz); ``None`` keeps the file's rate.
        mono: average channels into shape ``(samples,)``.
        start, duration: seconds; read only that part of the file.

    Returns:
        ``(audio, sample_rate)``.

    Raises:
        InputNotFoundError, AudioDecodeError, NoAudioStreamError, EmptyAudioError.
    """
    path = Path(path)
    if not path.exists():
        raise InputNotFoundError("no such file", path=path, fix="check the path")
    if path.is_dir():
        raise InputError("is a folder, not an audio file", path=path)
    if path.stat().st_size == 0:
        raise EmptyAudioError("file is empty (0 bytes)", path=path, fix="re-export the recording")
    audio, sr = _load_soundfile(path, start, duration)
    if audio is None:
        audio, sr = _load_av(path, start, duration)
    if audio.shape[-1] == 0:
        raise EmptyAudioError("contains no audio samples", path=path, fix="re-export the recording")
    if not np.all(np.isfinite(audio)):
        raise AudioDecodeError("decoded audio contains NaN or infinite values", path=path)
    if mono:
        audio = to_mono(audio)
    if sample_rate is not None and sample_rate != sr:
        audio = resample(audio, sr, sample_rate)
        sr = sample_rate
    return audio.astype(np.float32, copy=False), int(sr)


def _load_soundfile(path: Path, start: float, duration: float | None):
    import soundfile as sf

    if path.suffix.lower() in (".mp3",):  # libsndfile's mp3 support varies; PyAV is reliable
        return None, 0
    try:
        info = sf.info(str(path))
    except Exception:
        return None, 0
    sr = info.samplerate
    first = int(round(start * sr))
    frames = -1 if duration is None else int(round(duration * sr))
    try:
        data, sr = sf.read(str(path), start=first, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioDecodeError(f"cannot decode audio ({exc})", path=path, fix="re-export as WAV or FLAC") from exc
    return data.T.copy(), sr


def _load_av(path: Path, start: float, duration: float | None):
    import av

    try:
        container = av.open(str(path))
    except Exception as exc:
        raise AudioDecodeError(
            "not a readable audio or video file", path=path, fix="check that it is a media file and not corrupt"
        ) from exc
    with container:
        if not container.streams.audio:
            raise NoAudioStreamError(
                "video has no audio track", path=path, fix="give a file that contains sound, or extract it first"
            )
        stream = container.streams.audio[0]
        sr = stream.codec_context.sample_rate or stream.rate
        if not sr:
            raise AudioDecodeError("audio track has no sample rate (corrupt or unsupported file)", path=path,
                                   fix="re-export or re-download the file")
        layout = "stereo" if (stream.codec_context.channels or 1) >= 2 else "mono"
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sr)
        chunks: list[np.ndarray] = []
        bad_packets = 0
        wanted = None if duration is None else int((start + duration) * sr) + sr  # stop decoding past the end
        decoded = 0
        try:
            for packet in container.demux(stream):
                if wanted is not None and decoded >= wanted:
                    break
                try:
                    frames = packet.decode()
                except av.error.FFmpegError:
                    bad_packets += 1  # tolerate a few damaged packets, as players do
                    if bad_packets > 20:
                        raise
                    continue
                for frame in frames:
                    for out in resampler.resample(frame):
                        chunks.append(out.to_ndarray())
                        decoded += chunks[-1].shape[1]
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.error.FFmpegError as exc:
            raise AudioDecodeError(
                f"audio stream is corrupt ({exc.__class__.__name__})", path=path, fix="re-export or re-download the file"
            ) from exc
    if not chunks:
        raise AudioDecodeError(
            "no decodable audio found (corrupt or truncated file)", path=path, fix="re-export or re-download the file"
        )
    audio = np.concatenate(chunks, axis=1).astype(np.float32)
    first = int(round(start * sr))
    last = None if duration is None else first + int(round(duration * sr))
    return audio[:, first:last], int(sr)


def media_duration(path: str | Path) -> float:
    """Duration in seconds of an audio file or a video's audio track, without decoding it all."""
    import soundfile as sf

    path = Path(path)
    try:
        return float(sf.info(str(path)).duration)
    except Exception:
        pass
    audio, sr = load_audio(path)
    return audio.shape[-1] / sr


def to_mono(audio: np.ndarray) -> np.ndarray:
    """``(channels, samples)`` or ``(samples,)`` -> ``(samples,)``."""
    return audio if audio.ndim == 1 else audio.mean(axis=0)


def resample(audio: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality resampling along the last axis."""
    if sr_in == sr_out:
        return audio
    try:
        import soxr

        if audio.ndim == 1:
            return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32)
        return soxr.resample(audio.T, sr_in, sr_out, quality="HQ").T.astype(np.float32).copy()
    except ImportError:  # pragma: no cover
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr_in, sr_out)
        return resample_poly(audio, sr_out // g, sr_in // g, axis=-1).astype(np.float32)


def save_audio(path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None,
               bitrate: int = 128_000) -> Path:
    """Write audio atomically. Format from the extension (wav, flac, ogg; mp3/m4a through PyAV).

    ``audio`` is ``(samples,)`` or ``(channels, samples)``; values are clipped to [-1, 1].
    ``subtype`` is the soundfile subtype (PCM_16 by default); ``bitrate`` (bit/s) applies to lossy codecs.
    """
    import soundfile as sf

    path = Path(path)
    audio = np.asarray(audio, dtype=np.float32)
    data = np.clip(audio if audio.ndim == 1 else audio.T, -1.0, 1.0)
    ext = path.suffix.lower()
    with atomic_path(path) as tmp:
        if ext in (".wav", ".flac", ".ogg"):
            fmt = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG"}[ext]
            sf.write(str(tmp), data, sample_rate, format=fmt, subtype=subtype or ("PCM_16" if fmt != "OGG" else None))
        else:
            _save_av(tmp, data, sample_rate, ext, bitrate)
    return path


def _save_av(path: Path, data: np.ndarray, sample_rate: int, ext: str, bitrate: int = 128_000) -> None:
    import av

    codec = {".mp3": "mp3", ".m4a": "aac", ".aac": "aac", ".opus": "libopus"}.get(ext)
    if codec is None:
        raise InputError(f"cannot write audio with extension '{ext}'", path=path, fix="use .wav, .flac, .mp3 or .m4a")
    fmt = {".mp3": "mp3", ".m4a": "mp4", ".aac": "adts", ".opus": "ogg"}[ext]
    chans = 1 if data.ndim == 1 else data.shape[1]
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sample_rate)
        stream.bit_rate = bitrate
        stream.layout = "mono" if chans == 1 else "stereo"
        planar = data.reshape(1, -1) if chans == 1 else data.T
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar.astype(np.float32)), format="fltp",
                                           layout=stream.layout.name)
        frame.sample_rate = sample_rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def normalize_input(audio: AudioLike, sample_rate: int | None = None, target_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Accept a path, a numpy array, a torch tensor or an ``(array, sample_rate)`` pair.

    Returns mono float32 ``(samples,)`` at ``target_rate`` (or the input rate when ``None``).
    Arrays and tensors need ``sample_rate``.
    """
    if isinstance(audio, (str, Path)):
        return load_audio(audio, target_rate)
    if isinstance(audio, tuple) and len(audio) == 2:
        audio, sample_rate = audio
    if hasattr(audio, "detach"):  # torch tensor, without importing torch
        audio = audio.detach().cpu().numpy()
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate is None:
        raise InputError("an array was given without its sample rate", fix="pass sample_rate=... or (array, rate)")
    if audio.ndim == 2:
        audio = audio.mean(axis=0) if audio.shape[0] <= audio.shape[1] else audio.mean(axis=1)
    elif audio.ndim != 1:
        raise InputError(f"expected audio of shape (samples,) or (channels, samples), got {audio.shape}")
    if target_rate is not None and target_rate != sample_rate:
        audio = resample(audio, int(sample_rate), target_rate)
        sample_rate = target_rate
    return audio.astype(np.float32, copy=False), int(sample_rate)


def ensure_audible(audio: np.ndarray, sample_rate: int, path: str | Path | None = None, min_seconds: float = 0.3) -> None:
    """Raise ``EmptyAudioError`` for audio that is too short or silent."""
    if audio.shape[-1] < min_seconds * sample_rate:
        raise EmptyAudioError(
            f"audio is too short ({audio.shape[-1] / sample_rate:.2f} s; at least {min_seconds} s needed)", path=path
        )
    if float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise EmptyAudioError("audio is silent", path=path, fix="check the recording level or the file")


def rms_db(audio: np.ndarray) -> float:
    """RMS level in dBFS."""
    return float(20 * np.log10(np.sqrt(np.mean(np.square(audio, dtype=np.float64))) + 1e-12))


# ITU-R BS.1770-4 K-weighting: a high shelf and a high-pass, designed for any rate from the analogue prototypes
# whose bilinear transforms at 48 kHz are the standard's coefficients (centre Hz, gain dB, Q)
_SHELF = (1681.974450955533, 3.999843853973347, 0.7071752369554196)
_HIGHPASS = (38.13547087602444, 0.5003270373238773)
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)  # L, R, C, Ls, Rs


def k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two biquads ``(b, a)`` of BS.1770's K-weighting at ``sample_rate``."""
    f0, gain, q = _SHELF
    k = np.tan(np.pi * f0 / sample_rate)
    vh = 10 ** (gain / 20)
    vb = vh ** 0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = (np.array([vh + vb * k / q + k * k, 2 * (k * k - vh), vh - vb * k / q + k * k]) / a0,
             np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    f0, q = _HIGHPASS
    k = np.tan(np.pi * f0 / sample_rate)
    a0 = 1 + k / q + k * k
    highpass = (np.array([1.0, -2.0, 1.0]), np.array([1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0]))
    return [shelf, highpass]


@lru_cache(maxsize=8)
def _k_impulse(sample_rate: int) -> np.ndarray:
    """The K-weighting's impulse response, its first 0.25 s (where it has decayed below 1e-9)."""
    return _impulse_response(k_weighting(sample_rate), int(0.25 * sample_rate))


def _impulse_response(filters: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """The first ``n`` samples of the biquads' impulse response (direct form I, one sample at a time)."""
    h = np.zeros(n)
    h[0] = 1.0
    for b, a in filters:
        x, y = np.concatenate([[0.0, 0.0], h]), np.zeros(n + 2)  # two samples of history before the impulse
        for i in range(2, n + 2):
            y[i] = b[0] * x[i] + b[1] * x[i - 1] + b[2] * x[i - 2] - a[1] * y[i - 1] - a[2] * y[i - 2]
        h = y[2:]
    return h


def convolve(x: np.ndarray, h: np.ndarray, block: int = 1 << 16) -> np.ndarray:
    """``(samples, channels)`` convolved with the filter ``h`` (full length: samples + len(h) - 1), by FFT
    overlap-add in blocks, so memory stays flat on long input."""
    size = 1 << int(np.ceil(np.log2(block + len(h) - 1)))
    spectrum = np.fft.rfft(h, size)[:, None]
    out = np.zeros((len(x) + len(h) - 1, x.shape[1]))
    for start in range(0, len(x), block):
        piece = x[start:start + block]
        n = len(piece) + len(h) - 1
        out[start:start + n] += np.fft.irfft(np.fft.rfft(piece, size, axis=0) * spectrum, size, axis=0)[:n]
    return out


def oversample(x: np.ndarray, factor: int) -> np.ndarray:
    """``(channels, n)`` -> ``(channels, n * factor)`` band-limited interpolation: zeros stuffed between samples,
    then a Kaiser-windowed sinc low-pass (``20 * factor + 1`` taps, beta 5) centred on each output sample (the
    filter and alignment of ``scipy.signal.resample_poly(x, factor, 1)``)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    taps = 20 * factor + 1
    h = np.sinc((np.arange(taps) - taps // 2) / factor) * np.kaiser(taps, 5.0)
    h *= factor / h.sum()
    stuffed = np.zeros((x.shape[1] * factor, x.shape[0]))
    stuffed[::factor] = x.T
    return convolve(stuffed, h)[taps // 2: taps // 2 + len(stuffed)].T


def loudness_lufs(audio: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness (ITU-R BS.1770-4 / EBU R128) in LUFS of ``(samples,)`` or ``(samples, channels)``
    audio; ``-inf`` for silence. K-weighted (the filters' impulse response, 0.25 s of it, applied by FFT), 400 ms
    blocks every 100 ms, the absolute gate at -70 LUFS and the relative gate 10 LU below. Audio shorter than one
    block is padded with silence to one block."""
    data = np.asarray(audio, dtype=np.float64)
    data = data[:, None] if data.ndim == 1 else data
    window, hop = int(round(0.4 * sample_rate)), int(round(0.1 * sample_rate))
    if len(data) < window:
        data = np.pad(data, [(0, window - len(data)), (0, 0)])
    weighted = convolve(data, _k_impulse(sample_rate))[:len(data)]
    squares = np.concatenate([np.zeros((1, data.shape[1])), np.cumsum(weighted ** 2, axis=0)])
    starts = np.arange(0, len(data) - window + 1, hop)
    power = (squares[starts + window] - squares[starts]) / window  # (blocks, channels) mean squares
    weights = np.array(_CHANNEL_WEIGHTS[:data.shape[1]] + (1.0,) * max(0, data.shape[1] - 5))
    blocks = power @ weights

    def level(p):
        return -0.691 + 10 * np.log10(p) if p > 0 else -np.inf

    kept = blocks[[level(p) > -70.0 for p in blocks]]
    if not len(kept):
        return float("-inf")
    kept = kept[[level(p) > level(kept.mean()) - 10.0 for p in kept]]
    return float(level(kept.mean()))


LINE_LOUDNESS = -23.0  # LUFS integrated (EBU R128's level): every line speak, sing and convert write
LINE_PEAK = -1.0  # dBTP: the true-peak ceiling of those lines (the render service's limiter keeps it)


def level_line(audio: np.ndarray, sample_rate: int, loudness: float = LINE_LOUDNESS,
               peak_db: float | None = None) -> np.ndarray:
    """Gain ``audio`` (float32 ``(samples,)``) to ``loudness`` LUFS integrated (ITU-R BS.1770); with ``peak_db``,
    less where the sample peak would pass ``peak_db`` dBFS. Silence is returned as it is."""
    current = loudness_lufs(audio, sample_rate)
    if not np.isfinite(current):
        return np.asarray(audio, dtype=np.float32)
    gain_db = loudness - current
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak_db is not None and peak > 0:
        gain_db = min(gain_db, peak_db - 20 * np.log10(peak))
    return (np.asarray(audio, dtype=np.float32) * np.float32(10 ** (gain_db / 20))).astype(np.float32)


def normalize_loudness(audio: np.ndarray, sample_rate: int, target_lufs: float = -23.0) -> np.ndarray:
    """Gain ``audio`` so its integrated loudness is ``target_lufs``."""
    current = loudness_lufs(audio, sample_rate)
    if not np.isfinite(current):
        return audio
    return (audio * 10 ** ((target_lufs - current) / 20)).astype(np.float32)
