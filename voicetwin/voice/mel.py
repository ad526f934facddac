"""A voice's mel decoder: content and a pitch contour -> the neural vocoder's log mel in the target's timbre.

The envelope network (``voicetwin.voice.nets.EnvelopeNet``) predicts WORLD envelopes, which WORLD renders with the
performer's aperiodicity. A voice built with ``mel_bands`` also has this decoder: the same content frames (20 ms),
upsampled to ``envelope_rate`` frames each (10 ms), plus each frame's normalised log F0 and voicing, through
residual dilated convolutions to the universal HiFi-GAN's 80-band log mel (``voicetwin.audio.hifigan.mel_frames``,
window centred in the middle of each 10 ms frame). It learns from the target's own recordings and their
pitch- and formant-shifted copies (content from the copy, pitch and mel from the original), so the harmonics,
breathiness and formants come from the target while the words and the melody come from the performance.

A build starts the decoder from a prior (``MelPrior``): the decoder of a voice built from another speaker, which
already maps content and pitch to a plausible normalised mel, so a few minutes of the target and a few hundred
steps give a decoder that would otherwise need thousands (``recipes/mel_prior`` makes the one that ships).

    mel = mel_net(content, pitch)  # (batch, content_dim, n), (batch, 2, n * rate) -> (batch, bands, n * rate)

The torch module is ``voicetwin.voice.nets.MelNet`` (building); ``voicetwin.voice.forward.mel_decoder`` runs a
built one with numpy (converting).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..audio.pitch import PitchStats
from ..errors import ConfigError, MissingDependencyError, ModelNotFoundError

PRIOR_TYPE, PRIOR_FORMAT = "voicetwin-mel-prior", 1
DEFAULT_PRIOR = "mel-prior-rms"  # registered in voicetwin.hub: made by recipes/mel_prior from flite's rms voice


def vocoder_mel(audio: np.ndarray, sample_rate: int, content_frames: int, hop_seconds: float, rate: int) -> np.ndarray:
    """What the decoder learns: ``(samples,)`` -> ``(content_frames * rate, bands)`` float32 log mel of the universal
    vocoder (``voicetwin.audio.hifigan.mel_frames``) at ``mel_times``."""
    from ..audio.hifigan import mel_frames

    period = hop_seconds * 1000.0 / rate
    return mel_frames(audio, sample_rate, period, content_frames * rate, offset=period / 2)


def mel_times(content_frames: int, hop_seconds: float, rate: int) -> np.ndarray:
    """Seconds of the ``content_frames * rate`` mel frames: the centres of each content frame's ``rate`` parts (the
    grid ``nets.MelNet``'s linear upsampling lands on)."""
    return (np.arange(content_frames * rate) + 0.5) * hop_seconds / rate


def pitch_input(f0: np.ndarray, frame_period: float, times: np.ndarray, pitch: PitchStats) -> np.ndarray:
    """``(frames,)`` F0 in Hz every ``frame_period`` ms (0: unvoiced) -> ``(2, len(times))`` float32 at ``times``
    seconds: log F0 normalised by the voice's range (``pitch.log_mean``, ``log_std``), carried across unvoiced
    frames by interpolation, and voicing (1 or 0, the nearer frame's)."""
    f0 = np.asarray(f0, dtype=np.float64)
    t_in = np.arange(len(f0)) * frame_period / 1000.0
    voiced = f0 > 0
    out = np.zeros((2, len(times)), np.float32)
    if len(f0) == 0 or not voiced.any():
        return out
    lf0 = (np.log(f0[voiced]) - pitch.log_mean) / pitch.log_std
    out[0] = np.interp(times, t_in[voiced], lf0)
    nearest = np.clip(np.round(times * 1000.0 / frame_period).astype(np.int64), 0, len(f0) - 1)
    out[1] = voiced[nearest]
    return out


def restore_spread(values: np.ndarray, spread: np.ndarray, power: float) -> np.ndarray:
    """Predicted ``(frames, dims)`` values with each dimension's spread over the frames moved towards ``spread``
    (the real recordings' average within-recording standard deviation) by ``power``: never narrowed, at most
    doubled. Averaging in training smooths what a network predicts; this gives the spread back."""
    mean, std = values.mean(axis=0), values.std(axis=0) + 1e-6
    return mean + (values - mean) * np.clip(np.asarray(spread) / std, 1.0, 2.0) ** power


def follow_performer(mel: np.ndarray, performer: np.ndarray, voiced: np.ndarray, energy: str, window: int) -> np.ndarray:
    """A predicted ``(frames, bands)`` log mel given the performance's level: ``performer`` is the performance's
    own log mel on the same frames, ``voiced`` ``(frames,)`` its voicing. ``energy``: ``"performer"`` takes each
    frame's energy from the performance; ``"phrase"`` its dynamics averaged over ``window`` frames
    (``voicetwin.audio.world.follow_dynamics``); ``"target"`` leaves the mel as it is."""
    from ..audio.world import follow_dynamics, frame_energy

    if energy == "target":
        return mel
    power, theirs = np.exp(2.0 * mel.astype(np.float64)), np.exp(2.0 * performer.astype(np.float64))
    if energy == "performer":
        gain = frame_energy(theirs) - frame_energy(power)
    else:
        gain = frame_energy(follow_dynamics(power, theirs, voiced, window)) - frame_energy(power)
    return (mel + 0.5 * gain[:, None]).astype(np.float32)


@dataclass(frozen=True)
class MelPrior:
    """What a mel decoder was built for (it fits a voice only if all but ``trained_on`` are the voice's)."""

    content: str  # the content features' registered name (voicetwin.voice.content)
    content_dim: int
    mel_bands: int
    hidden: int
    layers: int
    kernel: int
    rate: int  # mel frames per content frame
    trained_on: str = ""


def save_mel_prior(net, prior: MelPrior, out: str | Path) -> Path:
    """Write a decoder as a prior: ``out/config.json`` + ``out/model.safetensors``."""
    from ..checkpoint import save_checkpoint

    return save_checkpoint(out, prior, net.state_dict(), PRIOR_TYPE, PRIOR_FORMAT)


def warm_start(net, wanted: MelPrior, prior: str, say: Callable[[str], None] = lambda _m: None) -> str | None:
    """Load the prior ``prior`` into ``net`` (built for ``wanted``); returns what it started from, or None.

    ``prior``: ``"none"`` (random weights), ``"auto"`` (``DEFAULT_PRIOR`` when it is installed and fits, random
    weights otherwise, said through ``say``), or a registered name or model directory, which must fit."""
    from ..checkpoint import load_checkpoint, load_weights

    if prior == "none":
        return None
    name = DEFAULT_PRIOR if prior == "auto" else prior
    try:
        ckpt = load_checkpoint(name, MelPrior, PRIOR_TYPE, PRIOR_FORMAT, kind="mel-prior")
    except (ModelNotFoundError, MissingDependencyError) as exc:
        if prior != "auto":
            raise
        say(f"mel decoder: random start ({exc})")
        return None
    if replace(ckpt.config, trained_on="") != replace(wanted, trained_on=""):
        differs = [k for k in wanted.__dataclass_fields__ if k != "trained_on"
                   and getattr(ckpt.config, k) != getattr(wanted, k)]
        message = f"the mel prior {name!r} was built for other settings " + ", ".join(
            f"{k} {getattr(ckpt.config, k)!r} (this voice: {getattr(wanted, k)!r})" for k in differs)
        if prior == "auto":
            say(f"mel decoder: random start ({message})")
            return None
        raise ConfigError(message, path=ckpt.path, fix="use a prior built with the same content features and "
                                                       "decoder size, or --mel-prior none")
    load_weights(net, ckpt.tensors, ckpt.weights)
    say(f"mel decoder: starts from {name} ({ckpt.config.trained_on})")
    return name


__all__ = ["DEFAULT_PRIOR", "MelPrior", "follow_performer", "mel_times", "pitch_input", "restore_spread",
           "save_mel_prior", "vocoder_mel", "warm_start"]
