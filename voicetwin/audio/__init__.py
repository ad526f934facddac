"""Audio: file I/O and loudness, pitch trackers, the WORLD vocoder, the HiFi-GAN neural vocoder, denoising.

Everything here works on numpy arrays
(mono float32, samples at a stated rate); ``load_audio``/``save_audio`` are the file wrappers.
"""

from __future__ import annotations

from .hifigan import VOCODERS, HifiGan, revocode
from .io import LINE_LOUDNESS, level_line, load_audio, loudness_lufs, media_duration, normalize_loudness, resample, save_audio, to_mono
from .pitch import PitchStats, auto_transpose, track_f0
from .world import WorldFrames, analyze, synthesize

__all__ = ["HifiGan", "LINE_LOUDNESS", "PitchStats", "VOCODERS", "WorldFrames", "analyze", "auto_transpose", "level_line", "load_audio", "loudness_lufs", "media_duration", "normalize_loudness", "resample", "revocode", "save_audio", "synthesize", "to_mono", "track_f0"]
