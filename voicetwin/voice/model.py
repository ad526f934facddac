"""A voice: what turns a performer's speech or singing into the recreated voice.

How it works. The performance is analysed with WORLD. Its F0 contour is kept (moved into the target's range
in speech mode, transposed note for note in singing mode) and so is its aperiodicity (breaths, sibilants);
only the spectral envelope is replaced. The new envelope comes from a small convolutional network trained on
the target's own recordings to predict the target's coded envelope from speaker-independent content features
(Whisper encoder frames by default). The network is also trained on copies of the target's audio with
shifted pitch and formants, still asked for the original envelope, so that it learns to undo another
speaker's traits. The network sees each input's content frames minus their mean (what stays constant over an
input is more the speaker and the channel than the words). Predicted envelopes are smoother than real ones, so
a global-variance postfilter gives each coded dimension the target's own spread over speech frames. In singing
each output frame keeps the performer's frame energy, so dynamics and silences survive, each note's first harmonic
is kept within 3 dB of its second, and pitch is tracked with DIO plus SwiftF0 where DIO hears none.

A voice built with ``mel_bands`` (the default) also has a mel decoder (``voicetwin.voice.mel``): from the same
content frames and the new pitch contour it predicts the universal HiFi-GAN's log mel, which the neural vocoder
renders at 22050 Hz. Speech conversion goes that way by default (``ConvertOptions.vocoder``); WORLD stays for
singing and as ``vocoder="world"``.

    voice = Voice.build("datasets/grandpa", "voices/grandpa")
    voice = Voice.load("voices/grandpa")
    audio, sr = voice.convert(performance, 16000, ConvertOptions(mode="singing", transpose="auto"))

A voice directory holds ``config.json`` (architecture + format version), ``model.safetensors`` (network and
normalisation), ``stats.json`` (pitch range), ``sources.json`` (what it was built from), ``report.json`` and
``index.safetensors`` (for content matching: the target's content frames, float16, and their coded WORLD
envelopes, float16; about 45 MB per 30 minutes of target audio).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..audio.hifigan import check_vocoder, revocode
from ..audio.io import AudioLike, load_audio, normalize_input, resample
from ..consent import ConsentRecord, consent_for_build, save_consent, voice_consent
from .content import load_content, resample_frames
from .forward import check_state, envelope_net, mel_decoder, state_shapes
from .mel import (MelPrior, follow_performer, mel_times, pitch_input, restore_spread, save_mel_prior, vocoder_mel,
                  warm_start)
from ..errors import ConfigError, EmptyAudioError, InputError, InputNotFoundError, ModelNotFoundError
from ..files import atomic_path, sha256_file, write_json

from ..manifest import dataset_clips, is_dataset
from ..training import BuildState, Hook, Stage, deterministic, load_training_state, save_training_state, stage_items
from ..audio.pitch import (F0_METHODS, SINGING_RANGE_HZ, SPEECH_RANGE_HZ, PitchStats, auto_transpose, map_speech, track_f0,
                    transpose)
from ..audio.world import (WorldFrames, analyze, code_envelope, crossfade_bands, decode_envelope, follow_dynamics,
                      frame_energy, keep_fundamental, synthesize, warp_envelope)

if TYPE_CHECKING:  # torch is imported where a network is built or trained, not to convert (see nets.py)
    import torch
    from torch import nn

    from .nets import EnvelopeNet, MelNet

MODEL_TYPE = "voicetwin-voice"
FORMAT_VERSION = 1
CONTENT_RATE = 16_000
BANK_FRAMES = 20_000  # real target envelopes kept for retrieval
BUILD_DIR = ".build"  # inside a voice directory while it is being built: what --resume continues from
CHECKPOINT_SECONDS = 60.0  # a resumable training state is written this often
INDEX_FRAMES = 120_000  # content-matching index: at most 40 min of target frames at 20 ms
STRATEGIES = ("network", "match")
ENERGIES = ("performer", "target", "phrase")
PHRASE_SECONDS = 1.0  # energy="phrase": the span over which the performer's dynamics are followed
SINGING_POSTFILTER_HZ = 1200.0  # singing: the postfilter sharpens the envelope from here up (fading in from 600 Hz)
SPEECH_POSTFILTER = 0.75  # speech: the postfilter's power at every frequency (1: the target's full spread)
# each objective's learning rate relative to BuildOptions.learning_rate: the mel decoder learns three times as fast
# (a 300-step example voice: DNSMOS 2.78 against 2.59 on 8 lines; a 1500-step one: GE2E +0.008, see README)
LEARNING_RATE_SCALE = {"mel": 3.0}


@dataclass(frozen=True)
class VoiceConfig:
    """Architecture of a voice, stored in ``config.json``. Content is a name from ``voicetwin.voice.content``."""

    sample_rate: int = 16_000
    frame_period: float = 10.0  # ms
    envelope_dims: int = 60
    content: str = "whisper-tiny.en"
    content_dim: int = 384
    content_hop: float = 0.02  # s
    hidden: int = 192
    layers: int = 4
    kernel: int = 3
    content_mean_norm: bool = False  # the network sees each input's content minus its mean frame (new builds)
    envelope_rate: int = 1  # envelopes predicted per content frame (new builds: 2, one every 10 ms on 20 ms content)
    mel_bands: int = 0  # 0: envelopes only; 80: also the mel decoder (voicetwin.voice.mel) for the neural vocoder
    mel_hidden: int = 128
    mel_layers: int = 4


@dataclass(frozen=True)
class BuildOptions:
    """How a voice is built. ``augment``: perturbed copies of the target audio (pitch and formant shifts).

    Reproducible by default: ``steps`` (and ``speech_steps``) are always trained, seeded by ``seed``, on ``threads``
    threads with deterministic kernels (``voicetwin.training.deterministic``), so the same dataset gives the same
    weights. ``max_train_seconds`` caps each training by wall-clock time instead (None: no cap); the result then
    depends on how busy the machine is.

    ``mel_bands``: 80 trains the mel decoder (``voicetwin.voice.mel``) beside the envelope network, on the same
    steps, so that speech conversion renders through the universal HiFi-GAN; 0 builds envelopes only (WORLD).
    ``mel_prior``: where the decoder starts (``voicetwin.voice.mel.warm_start``): ``"auto"`` the prior that ships
    with voicetwin (a decoder learnt on another speaker) when it fits the content features, ``"none"`` random
    weights, or a registered name or directory.

    ``speech_model``: ``build_voice`` (``voicetwin.production.build``) also trains the voice's own speech model on
    the clips that have text (``VOICE/tts``, see ``voicetwin.synth.speech_model``), ``speech_steps`` steps,
    ``speech_size`` ``"base"`` (or ``"tiny"`` for tests), leaving out clips a recogniser transcribed with a
    confidence below ``min_text_confidence``.
    """

    content: str = "whisper-tiny.en"
    sample_rate: int = 16_000
    augment: int = 2
    steps: int = 3000
    batch_size: int = 16
    segment_frames: int = 200
    learning_rate: float = 2e-3
    max_train_seconds: float | None = None
    seed: int = 0
    threads: int = 1  # torch threads while training; more than one is slower on a busy machine
    mel_bands: int = 80
    mel_prior: str = "auto"
    speech_model: bool = True
    speech_steps: int = 900
    speech_size: str = "base"
    min_text_confidence: float = 0.5

    def __post_init__(self):
        if self.mel_bands not in (0, 80):
            raise ConfigError(f"mel_bands must be 0 (envelopes only) or 80 (the universal vocoder's), not {self.mel_bands}")
        if self.augment < 0 or self.steps < 1 or self.batch_size < 1 or self.segment_frames < 8 or self.threads < 1:
            raise ConfigError("augment must be >= 0, steps, batch_size and threads >= 1, segment_frames >= 8")
        if self.sample_rate not in (16_000, 22_050, 24_000, 44_100, 48_000):
            raise ConfigError(f"unsupported sample rate {self.sample_rate}", fix="use 16000, 22050, 24000, 44100 or 48000")
        if self.max_train_seconds is not None and not self.max_train_seconds > 0:
            raise ConfigError("max_train_seconds must be positive (or None: train all steps)")
        if self.speech_steps < 1 or not 0.0 <= self.min_text_confidence <= 1.0:
            raise ConfigError("speech_steps must be >= 1 and min_text_confidence between 0 and 1")


@dataclass(frozen=True)
class ConvertOptions:
    """How a performance is converted.

    ``mode``: ``"speech"`` maps intonation into the target's range; ``"singing"`` keeps every note.
    ``transpose``: semitones (singing; also allowed in speech, applied after the range mapping), or ``"auto"``
    (singing: the whole-semitone shift that brings the performance's median pitch nearest the target's).
    ``chunk_seconds``: longest piece processed at once; longer inputs are cut at their quietest moments.
    ``strategy``: where the target's envelope comes from. ``"network"``: predicted by the voice's network from
    the content frames. ``"match"``: each content frame is matched (cosine) to its ``k`` nearest content frames
    of the target's own recordings and takes the log-domain mean of their real envelopes (the voice's
    ``index.safetensors``; ``Voice.add_index`` makes it for voices built without one). ``smooth``: frames
    (at the content rate) either side averaged after matching, 0 for none. ``energy``: ``"performer"`` gives
    each frame the performance's frame energy; ``"target"`` keeps the level of the new envelope (in speech it is
    the more like the target by both similarity judges); ``"phrase"`` follows the performance's dynamics over
    about a second (``voicetwin.audio.world.follow_dynamics``) and the new envelope's level within it, so a song's
    crescendos and soft verses survive while each sound keeps the target's own level; ``None``: ``"target"`` in
    speech mode, ``"phrase"`` in singing mode. ``postfilter``: predicted and
    averaged envelopes are smoother than real ones (formant peaks flattened); each coded dimension's spread over
    the piece's speech frames is moved towards the target's own spread (its global variance, in ``stats.json``)
    by this power: 1 all the way, 0 off; ``None``: 0.75 in speech mode (at the full spread the sharpened first
    and second formants cost intelligibility and, in English, similarity), 1 in singing mode (where it acts only
    above ``postfilter_hz``). ``postfilter_hz``: the postfilter acts fully from this
    frequency up and not at all below half of it (``voicetwin.audio.world.crossfade_bands``); ``None``: 0 (every
    frequency) in speech mode, 1200 Hz in singing mode, where a sharpened first formant under a low sung note
    can outweigh its fundamental with the 2nd or 3rd harmonic and the note is heard a fifth or an octave up.
    ``fundamental_db``: each voiced frame's first harmonic is kept at least this many dB relative to its second
    (``voicetwin.audio.world.keep_fundamental``); ``None``: -3 in singing mode (a note sung below the voice's speaking
    range falls where its envelope was never observed, and a weak fundamental is heard an octave up), off in
    speech mode. ``f0_method``: ``None`` is DIO in speech and FCPE + SwiftF0 in singing (``ConvertOptions.tracker``).
    ``vocoder``: ``"auto"``: a voice built with a mel decoder (``VoiceConfig.mel_bands``) converts speech by
    predicting the universal HiFi-GAN's log mel from the content and the new pitch contour and rendering it at
    22050 Hz (``Voice.renders_mel``); singing, and every conversion through a voice without a mel decoder, is the
    WORLD synthesis at the voice's rate. ``"world"``: WORLD always. ``"hifigan"``: the mel decoder in both modes; a
    voice without one has its WORLD synthesis rendered again through HiFi-GAN from its log mel
    (``voicetwin.audio.hifigan.revocode``), at 22050 Hz.
    """

    mode: str = "speech"
    transpose: float | str | None = None
    f0_method: str | None = None  # None: "dio" in speech, "fcpe+swift" in singing (voicetwin.audio.pitch.track_f0)
    chunk_seconds: float = 25.0
    retrieval: float = 0.0  # 0..1: blend of the predicted envelope with the mean of its 4 nearest real target frames
    strategy: str = "network"  # "match" is close behind (see bench/vc.py): higher d-vector, lower GE2E, higher WER
    k: int = 4
    smooth: int = 0
    energy: str | None = None
    postfilter: float | None = None
    postfilter_hz: float | None = None
    fundamental_db: float | None = None
    vocoder: str = "auto"  # "auto": speech through the mel decoder and HiFi-GAN when the voice has one, else WORLD

    def __post_init__(self):
        check_vocoder(self.vocoder)
        if self.fundamental_db is not None and not -30.0 <= self.fundamental_db <= 10.0:
            raise ConfigError("fundamental_db must be between -30 and 10 (dB of the first harmonic over the second)")
        if self.postfilter is not None and not 0.0 <= self.postfilter <= 1.5:
            raise ConfigError("postfilter must be between 0 and 1.5")
        if self.postfilter_hz is not None and not 0.0 <= self.postfilter_hz <= 6000.0:
            raise ConfigError("postfilter_hz must be between 0 and 6000")
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"unknown strategy '{self.strategy}'", fix="use " + " or ".join(map(repr, STRATEGIES)))
        if not 1 <= self.k <= 64 or not 0 <= self.smooth <= 10:
            raise ConfigError("k must be between 1 and 64 and smooth between 0 and 10")
        if self.energy not in (None, *ENERGIES):
            raise ConfigError(f"unknown energy '{self.energy}'", fix="use " + ", ".join(map(repr, ENERGIES)))
        if self.mode not in ("speech", "singing"):
            raise ConfigError(f"unknown mode '{self.mode}'", fix="use 'speech' or 'singing'")
        if isinstance(self.transpose, str):
            if self.transpose != "auto":
                raise ConfigError(f"transpose must be a number of semitones or 'auto', not '{self.transpose}'")
        elif self.transpose is not None and not -36 <= float(self.transpose) <= 36:
            raise ConfigError("transpose must be within +-36 semitones")
        if self.f0_method is not None and self.f0_method not in F0_METHODS:
            raise ConfigError(f"unknown F0 method '{self.f0_method}'", fix="use " + ", ".join(map(repr, F0_METHODS)))
        if not 2.0 <= self.chunk_seconds <= 60.0:
            raise ConfigError("chunk_seconds must be between 2 and 60")
        if not 0.0 <= self.retrieval <= 1.0:
            raise ConfigError("retrieval must be between 0 and 1")

    @property
    def tracker(self) -> str:
        """The F0 tracker used: ``f0_method``, or the mode's own (DIO for speech; for singing the FCPE network,
        with SwiftF0 where FCPE hears no pitch: fewer octave slips and missed notes than DIO, see bench/pitch.py)."""
        return self.f0_method or ("fcpe+swift" if self.mode == "singing" else "dio")

    @property
    def postfilter_power(self) -> float:
        """The postfilter's power: ``postfilter``, or the mode's own."""
        if self.postfilter is not None:
            return self.postfilter
        return 1.0 if self.mode == "singing" else SPEECH_POSTFILTER

    @property
    def postfilter_from_hz(self) -> float:
        """The frequency from which the postfilter acts fully: ``postfilter_hz``, or the mode's own."""
        if self.postfilter_hz is not None:
            return self.postfilter_hz
        return SINGING_POSTFILTER_HZ if self.mode == "singing" else 0.0


# --- the network -----------------------------------------------------------------------------


def mel_prior_of(config: VoiceConfig, trained_on: str = "") -> MelPrior:
    """What a mel prior must have been built for to start ``config``'s decoder."""
    return MelPrior(config.content, config.content_dim, config.mel_bands, config.mel_hidden, config.mel_layers,
                    config.kernel, config.envelope_rate, trained_on)


# --- analysis shared by build and convert ------------------------------------------------------


def _content_frames(model, audio: np.ndarray, sample_rate: int) -> np.ndarray:
    """``(samples,)`` -> ``(content frames, dim)`` at the content model's own rate."""
    x16 = resample(audio, sample_rate, CONTENT_RATE) if sample_rate != CONTENT_RATE else audio
    return model.frames(x16.astype(np.float32))


def to_content_rate(code: np.ndarray, frame_period: float, n: int, hop_seconds: float, rate: int = 1) -> np.ndarray:
    """``(WORLD frames, dims)`` every ``frame_period`` ms -> ``(n, rate * dims)``: for each of ``n`` content frames
    the codes at the centres of its ``rate`` equal parts, side by side (``rate`` 1: at the frame's centre)."""
    t_in = np.arange(code.shape[0]) * frame_period / 1000.0
    t_out = ((np.arange(n)[:, None] + (np.arange(rate)[None, :] + 0.5) / rate) * hop_seconds).ravel()
    out = np.stack([np.interp(t_out, t_in, code[:, d]) for d in range(code.shape[1])], axis=1)
    return out.reshape(n, rate * code.shape[1]).astype(np.float32)


def split_at_pauses(audio: np.ndarray, sample_rate: int, max_seconds: float) -> list[tuple[int, int]]:
    """Cut ``(samples,)`` into ``[(start, stop), ...]`` pieces no longer than ``max_seconds``, each cut at the
    quietest 10 ms in the last 40 % of the allowed span (a pause, when there is one)."""
    n, max_len = len(audio), int(max_seconds * sample_rate)
    if n <= max_len:
        return [(0, n)]
    hop = sample_rate // 100
    frames = len(audio) // hop
    power = (audio[: frames * hop].reshape(frames, hop).astype(np.float64) ** 2).mean(axis=1)
    power = np.convolve(power, np.ones(5) / 5, mode="same")
    pieces, start = [], 0
    while n - start > max_len:
        lo, hi = (start + int(0.6 * max_len)) // hop, (start + max_len) // hop
        cut = (lo + int(np.argmin(power[lo:hi]))) * hop
        pieces.append((start, cut))
        start = cut
    pieces.append((start, n))
    return pieces


# --- the voice -----------------------------------------------------------------------------------


class Voice:
    """A built voice: ``Voice.build(...)``, ``Voice.load(path)``, ``voice.convert(audio, sr, options)``."""

    def __init__(self, config: VoiceConfig, net: EnvelopeNet | None, norm: dict[str, np.ndarray], stats: dict,
                 path: Path | None = None, index: dict[str, torch.Tensor] | None = None, mel_net: MelNet | None = None,
                 weights: dict[str, np.ndarray] | None = None):
        """``net`` and ``mel_net``: the trained torch modules, or None to build them from ``weights`` (the
        checkpoint's float32 arrays, ``net.*`` and ``mel.*``) when first used. Converting runs the networks on
        their weights with numpy (``voicetwin.voice.forward``) and never needs torch."""
        self.config = config
        self._index = index  # {"content": (N, content_dim) unit rows, "code": (N, envelope_dims)} float16, or None
        self._net = net.eval() if net is not None else None
        self._mel_net = mel_net.eval() if mel_net is not None else None
        self._weights = weights or {}
        self.norm = norm
        self.stats = stats
        self.pitch = PitchStats(**stats["pitch"])
        self.performer_pitch = PitchStats(**stats["performer_pitch"]) if stats.get("performer_pitch") else None
        self.language = stats.get("language")  # most common language of the target's clips, or None
        self.path = path
        self._content = None
        self._keys = None
        gv = stats.get("envelope_gv")
        if gv is None and self.index is not None:  # voices built before stats.json carried it
            gv = global_variance(self.index["code"].float().numpy()).tolist()
        self.envelope_gv = np.asarray(gv, dtype=np.float32) if gv is not None else None

    @property
    def net(self) -> EnvelopeNet:
        """The envelope network (torch; built from the weights the first time it is used)."""
        if self._net is None:
            self._net = self._module("net.")
        return self._net

    @property
    def mel_net(self) -> MelNet | None:
        """The mel decoder as a torch module (built from the weights the first time), or None without one."""
        if self._mel_net is None and self.config.mel_bands:
            self._mel_net = self._module("mel.")
        return self._mel_net

    def _module(self, prefix: str):
        import torch

        from ..checkpoint import load_weights
        from .nets import EnvelopeNet, new_mel_net

        module = EnvelopeNet(self.config) if prefix == "net." else new_mel_net(self.config)
        tensors = {k: torch.from_numpy(v) for k, v in self._weights.items() if k.startswith(prefix)}
        return load_weights(module, tensors, self.path or "model.safetensors", prefix=prefix).eval()

    def _state(self, prefix: str) -> dict[str, np.ndarray]:
        """The weights of the envelope network (``"net."``) or the mel decoder (``"mel."``) as float32 arrays, from
        the torch module when there is one (it may be training)."""
        module = self._net if prefix == "net." else self._mel_net
        if module is not None:
            return {k: v.detach().numpy() for k, v in module.state_dict().items()}
        return {k[len(prefix):]: v for k, v in self._weights.items() if k.startswith(prefix)}

    @property
    def index(self) -> dict[str, torch.Tensor] | None:
        """The content-matching index (``index.safetensors``, read when first used), or None."""
        if self._index is None and self.path is not None and (self.path / "index.safetensors").exists():
            from safetensors.torch import load_file

            self._index = load_file(str(self.path / "index.safetensors"))
        return self._index

    @index.setter
    def index(self, value: dict[str, torch.Tensor] | None) -> None:
        self._index = value
        self._keys = None

    # --- loading and saving

    @classmethod
    def load(cls, path: str | Path) -> "Voice":
        """Load a voice directory written by ``Voice.build`` (a local directory or a hub id, through the model
        resolver)."""
        from ..checkpoint import load_checkpoint

        try:
            ckpt = load_checkpoint(path, VoiceConfig, MODEL_TYPE, FORMAT_VERSION, kind="voice", framework="numpy")
        except ModelNotFoundError as exc:
            if Path(path).is_dir():
                raise
            raise ModelNotFoundError("no voice directory here", path=path,
                                     fix="build one with 'voicetwin voice build'") from exc
        config, path = ckpt.config, ckpt.path
        weights = {k: v for k, v in ckpt.tensors.items() if k.startswith(("net.", "mel."))}
        norm = {k[5:]: v for k, v in ckpt.tensors.items() if k.startswith("norm.")}
        stats = json.loads((path / "stats.json").read_text(encoding="utf-8"))
        voice = cls(config, None, norm, stats, path, weights=weights)
        check_state(voice._state("net."), state_shapes(config.content_dim, config.envelope_dims * config.envelope_rate,
                                                       config.hidden, config.layers, config.kernel, pitch=False),
                    ckpt.weights, "envelope network")
        if config.mel_bands:
            check_state(voice._state("mel."), state_shapes(config.content_dim, config.mel_bands, config.mel_hidden,
                                                           config.mel_layers, config.kernel), ckpt.weights, "mel decoder")
        return voice

    def save(self, out: str | Path, sources: dict, report: dict) -> Path:
        import torch
        from safetensors.torch import save_file

        from ..checkpoint import save_checkpoint

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        if self.index is not None:
            with atomic_path(out / "index.safetensors") as tmp:
                save_file({k: v.contiguous() for k, v in self.index.items()}, str(tmp))
        write_json(out / "stats.json", self.stats)
        write_json(out / "sources.json", sources)
        write_json(out / "report.json", report)
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        if self.mel_net is not None:
            tensors.update({f"mel.{k}": v for k, v in self.mel_net.state_dict().items()})
        tensors.update({f"norm.{k}": torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in self.norm.items()})
        save_checkpoint(out, self.config, tensors, MODEL_TYPE, FORMAT_VERSION)  # config.json last
        self.path = out
        return out

    @property
    def content(self):
        if self._content is None:
            self._content = load_content(self.config.content)
        return self._content

    # --- building

    @classmethod
    def build(cls, dataset: str | Path, out: str | Path, options: BuildOptions | None = None,
              performer: str | Path | None = None, progress: bool = False,
              log: Callable[[str], None] | None = None,
              consent: ConsentRecord | str | Path | None = None, resume: bool = False,
              hook: Hook | None = None, state: BuildState | None = None) -> "Voice":
        """Build a voice's conversion model from an ingested dataset of the target (and optionally the performer's
        dataset). ``voicetwin.production.build.build_voice`` builds the whole voice: this, then the voice's own
        speech model from the dataset's transcribed clips.

        A voice is built only on a valid, unexpired consent record: ``consent`` (a ``ConsentRecord``, its JSON
        file, or a directory holding ``consent.json``), written into ``out`` with the voice, or else the record
        already in ``out`` (``voicetwin consent create OUT ...``). Without one, ``ConsentError`` is raised before
        any work.

        Where the performer's dataset has clips with the same text as the target's, those pairs are aligned
        (DTW over content frames) and added to training as parallel examples; the performer's pitch range is
        stored and used as the source range in speech mode.

        Reproducible: ``options.steps`` seeded steps with deterministic kernels (``BuildOptions``). ``resume``:
        continue a build of the same dataset and options that was interrupted, from the training checkpoint kept
        in ``out/.build`` (removed when the build finishes); the result is the same as an uninterrupted build's.
        Without it, an earlier build's state there is discarded. ``state``: the build state of a longer build
        that goes on after this one (then it is left open). ``progress``: a bar per stage on stderr. ``hook``:
        called with ``(stage, done, total)`` as each stage advances.
        """
        options = options or BuildOptions()
        record = consent_for_build(out, consent)  # refuse before any work
        started = time.time()
        say = log or (lambda _msg: None)
        out = Path(out)
        own_state = state is None
        if own_state:
            state = BuildState(out / BUILD_DIR, build_fingerprint(dataset, performer, options), resume, say)
        if state.finished("voice"):
            say("conversion model: finished before the interruption")
            return cls.load(out)
        clips = _read_dataset(dataset)
        voice, sources, report = cls._build_conversion(clips, dataset, options, performer, progress, say, hook, state)
        report["build_seconds"] = round(time.time() - started, 1)
        voice.save(out, sources, report)
        if consent is not None:
            save_consent(out, record, overwrite=True)  # the record travels with the voice
        state.finish("voice")
        if own_state:
            state.close()
        say(f"voice written to {out} in {report['build_seconds']:.0f} s")
        return voice

    @classmethod
    def _build_conversion(cls, clips: list, dataset: str | Path, options: BuildOptions, performer, progress: bool,
                          say: Callable[[str], None], hook: Hook | None, state: BuildState):
        """The conversion model: analysis of the target's clips, training (checkpointed in ``state``)."""
        import torch

        from .nets import EnvelopeNet, new_mel_net

        started = time.time()
        rng = np.random.default_rng(options.seed)
        torch.manual_seed(options.seed)
        content = load_content(options.content)
        config = VoiceConfig(sample_rate=options.sample_rate, content=options.content, content_dim=content.dim,
                             content_hop=content.hop_seconds, content_mean_norm=True,
                             envelope_rate=max(1, round(content.hop_seconds * 1000 / VoiceConfig.frame_period)),
                             mel_bands=options.mel_bands)
        sr, fp, rate = config.sample_rate, config.frame_period, config.envelope_rate

        inputs, targets, f0s, codes_per_clip, contents_per_clip, seconds = [], [], [], [], [], 0.0
        wide_per_clip = []  # training targets: envelope_rate codes per content frame
        mels, mel_of = [], []  # mel decoder targets per clip; for each input, its clip (a perturbed copy: its original)
        for clip, wav in _bar(clips, progress, "analysing target", hook):
            audio, _ = load_audio(wav, sr)
            if len(audio) < sr * 0.2:
                continue
            seconds += len(audio) / sr
            frames = analyze(audio, sr, fp)
            x = _content_frames(content, audio, sr)
            coded = code_envelope(frames.sp, sr, config.envelope_dims)
            code = to_content_rate(coded, fp, len(x), content.hop_seconds)
            wide = to_content_rate(coded, fp, len(x), content.hop_seconds, rate)
            inputs.append(_center(x).astype(np.float16))
            targets.append(wide)
            wide_per_clip.append(wide)
            f0s.append(frames.f0)
            codes_per_clip.append(code)
            contents_per_clip.append((clip, x))
            if config.mel_bands:
                mels.append(vocoder_mel(audio, sr, len(x), content.hop_seconds, rate))
                mel_of.append(len(mels) - 1)
            for _ in range(options.augment):
                ratio = float(np.exp(rng.uniform(np.log(0.82), np.log(1.22))))
                shift = float(2.0 ** rng.uniform(-0.6, 0.6))
                y = synthesize(frames.f0 * shift, warp_envelope(frames.sp, ratio), frames.ap, sr, fp, len(audio))
                inputs.append(_center(_content_frames(content, y, sr)).astype(np.float16))
                targets.append(wide)
                if config.mel_bands:
                    mel_of.append(len(mels) - 1)
        if seconds < 5.0:
            raise InputError(f"only {seconds:.1f} s of usable target audio", path=dataset,
                             fix="give at least a few minutes of the target's speech (5 to 120+ minutes works)")
        say(f"analysed {seconds / 60:.1f} min of target audio ({len(codes_per_clip)} clips, {options.augment} perturbed copies)")

        languages = [c.language for c, _ in clips if c.language]
        stats = {"pitch": PitchStats.from_f0(f0s).to_dict(), "performer_pitch": None,
                 "language": max(set(languages), key=languages.count) if languages else None,
                 "envelope_gv": global_variance(np.concatenate(codes_per_clip)).tolist()}
        own_rows = sum(len(x) for x in inputs)  # the target's own frames and their copies (the mel decoder's data)
        parallel_lines = 0
        if performer is not None:
            pairs, performer_f0 = _performer_pairs(performer, contents_per_clip, wide_per_clip, content, config, progress)
            for x, code in pairs:
                inputs.append(x.astype(np.float16))
                targets.append(code)
            parallel_lines = len(pairs)
            stats["performer_pitch"] = PitchStats.from_f0(performer_f0).to_dict()
            say(f"performer: {parallel_lines} parallel lines aligned")

        X = np.concatenate(inputs)
        Y = np.concatenate(targets)
        bank = np.concatenate(codes_per_clip)
        bank = bank[rng.permutation(len(bank))[:BANK_FRAMES]]
        norm = {
            "in_mean": X.astype(np.float32).mean(0), "in_std": X.astype(np.float32).std(0) + 1e-5,
            "out_mean": Y.reshape(-1, config.envelope_dims).mean(0),  # per envelope dimension, shared by
            "out_std": Y.reshape(-1, config.envelope_dims).std(0) + 1e-5,  # the envelope_rate codes of a frame
        }
        norm["bank"] = ((bank - norm["out_mean"]) / norm["out_std"]).astype(np.float32)
        net = EnvelopeNet(config)
        objectives = {"envelope": _envelope_loss(net, X, Y, norm, options, rng)}
        mel_net, prior = None, None
        if config.mel_bands:
            pitch = PitchStats(**stats["pitch"])
            pitches = [pitch_input(f0, fp, mel_times(len(x), content.hop_seconds, rate), pitch).T
                       for f0, (_, x) in zip(f0s, contents_per_clip)]
            P = np.concatenate([pitches[i] for i in mel_of]).astype(np.float16)
            M = np.concatenate([mels[i] for i in mel_of])
            norm["mel_mean"], norm["mel_std"] = M.mean(0), M.std(0) + 1e-5
            stats["mel_spread"] = np.mean([m.std(axis=0) for m in mels], axis=0).tolist()
            mel_net = new_mel_net(config)
            prior = warm_start(mel_net, mel_prior_of(config), options.mel_prior, say)
            objectives["mel"] = _mel_loss(mel_net, X[:own_rows], P, M, norm, options, rng)
        history, steps_done = _train(objectives, options, rng, progress, hook, state.path / "voice-train.pt",
                                     state.fingerprint, say)
        voice = cls(config, net, norm, stats, index=make_index([x for _, x in contents_per_clip], codes_per_clip, rng),
                    mel_net=mel_net)
        sources = {
            "dataset": str(Path(dataset).resolve()),
            "manifest_sha256": sha256_file(Path(dataset) / "manifest.jsonl"),
            "clips": [c.id for c, _ in clips],
            "performer": str(Path(performer).resolve()) if performer else None,
        }
        report = {
            "minutes": round(seconds / 60, 2),
            "clips": len(codes_per_clip),
            "augmented_copies": options.augment,
            "parallel_performer_lines": parallel_lines,
            "training_frames": int(X.shape[0]),
            "steps": steps_done,
            "mel_prior": prior,
            "final_training_loss": {k: round(float(np.mean(v[-50:])), 4) for k, v in history.items() if v} or None,
            "pitch_median_hz": round(stats["pitch"]["median_hz"], 1),
            "pitch_range_hz": [round(stats["pitch"]["p05_hz"], 1), round(stats["pitch"]["p95_hz"], 1)],
            "conversion_seconds": round(time.time() - started, 1),
            "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
        }
        return voice, sources, report

    def add_index(self, dataset: str | Path | None = None, progress: bool = False) -> Path:
        """Write ``index.safetensors`` (for ``strategy="match"``) into the voice directory from ``dataset``
        (default: the dataset named in the voice's ``sources.json``): content frames and coded envelopes of
        every clip. For voices built before voices carried an index."""
        if self.path is None:
            raise InputError("the voice has no directory yet", fix="save or load the voice first")
        if dataset is None:
            dataset = json.loads((self.path / "sources.json").read_text(encoding="utf-8"))["dataset"]
        sr, fp, contents, codes = self.config.sample_rate, self.config.frame_period, [], []
        for _clip, wav in _bar(_read_dataset(dataset), progress, "indexing target"):
            audio, _ = load_audio(wav, sr)
            if len(audio) < sr * 0.2:
                continue
            x = _content_frames(self.content, audio, sr)
            frames = analyze(audio, sr, fp)
            code = code_envelope(frames.sp, sr, self.config.envelope_dims)
            contents.append(x)
            codes.append(to_content_rate(code, fp, len(x), self.content.hop_seconds))
        self.index = make_index(contents, codes, np.random.default_rng(0))
        from safetensors.torch import save_file

        with atomic_path(self.path / "index.safetensors") as tmp:
            save_file({k: v.contiguous() for k, v in self.index.items()}, str(tmp))
        return self.path / "index.safetensors"

    # --- converting

    def convert(self, audio: AudioLike, sample_rate: int | None = None,
                options: ConvertOptions | None = None, production: str | None = None) -> tuple[np.ndarray, int]:
        """Convert a performance: ``(samples,)`` at ``sample_rate`` (or a path) -> ``(samples', sr)`` float32 in
        the voice, at the voice's rate, or 22050 Hz where HiFi-GAN renders it (``ConvertOptions.vocoder``); the
        duration is the input's (to one sample at the output rate).

        The voice's consent record must be valid and cover ``options.mode`` (speech or singing) and, when it names
        productions, ``production``; otherwise ``ConsentError``. The audio returned is UNMARKED: anything meant for
        a listener goes through the render service (``voicetwin.render_file``, ``voicetwin.convert_files``)."""
        options = options or ConvertOptions()
        voice_consent(self, options.mode, production)
        sr, fp = self.config.sample_rate, self.config.frame_period
        x, _ = normalize_input(audio, sample_rate, sr)
        if x.size < sr * 0.05:
            raise EmptyAudioError("the performance is shorter than 50 ms")
        f0_range = SINGING_RANGE_HZ if options.mode == "singing" else SPEECH_RANGE_HZ
        pieces = split_at_pauses(x, sr, options.chunk_seconds)
        f0s = [track_f0(x[a:b], sr, fp, f0_range, options.tracker) for a, b in pieces]
        new_f0s = self._map_pitch(f0s, options)
        if options.strategy == "match" and self.index is None:
            raise ModelNotFoundError("the voice has no content-matching index (index.safetensors)", path=self.path,
                                     fix="run 'voicetwin voice add-index VOICE', or convert with --strategy network")
        if self.renders_mel(options):
            out = [self._mel_piece(x[a:b], new_f0, options) for (a, b), new_f0 in zip(pieces, new_f0s)]
            return np.concatenate([audio for audio, _ in out]), out[0][1]
        out = [self._convert_piece(x[a:b], f0, new_f0, options)
               for (a, b), f0, new_f0 in zip(pieces, f0s, new_f0s)]
        return revocode(np.concatenate(out), sr, options.vocoder)

    def renders_mel(self, options: ConvertOptions) -> bool:
        """Whether ``convert`` renders the mel decoder's output through HiFi-GAN: a voice with a mel decoder, the
        ``"network"`` strategy, and ``vocoder`` ``"hifigan"``, or ``"auto"`` in speech mode (in singing ``"auto"``
        is WORLD, which puts each harmonic exactly on the note; the decoder's harmonics are a few tens of cents
        off the contour it is given, see README "Conversion through the voice's mel decoder")."""
        if not self.config.mel_bands or options.strategy != "network":
            return False
        return options.vocoder == "hifigan" or (options.vocoder == "auto" and options.mode == "speech")

    def _mel_piece(self, x: np.ndarray, new_f0: np.ndarray, options: ConvertOptions) -> tuple[np.ndarray, int]:
        """``(samples,)`` of the performance and its new ``(frames,)`` F0 -> the voice through the mel decoder and
        HiFi-GAN, as long as ``x``, and the vocoder's rate: the postfilter's power restores the mel's spread, the
        level follows ``options.energy`` as in the WORLD render."""
        from ..audio.hifigan import render_mel

        sr, hop, rate = self.config.sample_rate, self.config.content_hop, self.config.envelope_rate
        content = _content_frames(self.content, x, sr)
        pitch = self._pitch_input(new_f0, len(content))
        mel = self._decode_mel(content, pitch, options.postfilter_power)
        period = self.envelope_hop * 1000.0
        energy = options.energy or ("phrase" if options.mode == "singing" else "target")
        if energy != "target":
            mel = follow_performer(mel, vocoder_mel(x, sr, len(content), hop, rate), pitch[1] > 0, energy,
                                   round(PHRASE_SECONDS * 1000 / period))
        return render_mel(mel, period, len(x) / sr, offset=period / 2)

    def export_mel_prior(self, out: str | Path, trained_on: str) -> Path:
        """Write this voice's mel decoder as a prior other voices' builds can start from (``BuildOptions.mel_prior``)."""
        if not self.config.mel_bands:
            raise ModelNotFoundError("the voice has no mel decoder (built without mel_bands)", path=self.path,
                                     fix="build the voice with its mel decoder (the default)")
        return save_mel_prior(self.mel_net, mel_prior_of(self.config, trained_on), out)

    def predict_mel(self, content: np.ndarray, f0: np.ndarray, variance: float = 0.0) -> np.ndarray:
        """``(frames, content_dim)`` content at the content rate and ``(world frames,)`` F0 in Hz every
        ``frame_period`` ms -> ``(frames * envelope_rate, mel_bands)`` log mel for the universal vocoder, one every
        ``envelope_hop`` seconds from half of that (``voicetwin.voice.mel``). ``variance`` (0-1.5): each band's
        spread over the piece is moved towards the target's average spread within a recording by this power (never
        narrowed, at most doubled), undoing the smoothing of a predicted mel."""
        if not self.config.mel_bands:
            raise ModelNotFoundError("the voice has no mel decoder (built without mel_bands)", path=self.path,
                                     fix="convert with --vocoder world, or rebuild the voice")
        return self._decode_mel(content, self._pitch_input(f0, len(content)), variance)

    def _pitch_input(self, f0: np.ndarray, content_frames: int) -> np.ndarray:
        """``(world frames,)`` F0 -> the decoder's ``(2, content_frames * envelope_rate)`` pitch input."""
        times = mel_times(content_frames, self.config.content_hop, self.config.envelope_rate)
        return pitch_input(f0, self.config.frame_period, times, self.pitch)

    def _decode_mel(self, content: np.ndarray, pitch: np.ndarray, variance: float) -> np.ndarray:
        n = self.norm
        x = (_center(content) - n["in_mean"]) / n["in_std"]
        y = mel_decoder(self._state("mel."), x.T, pitch, self.config.envelope_rate).T
        y = y * n["mel_std"] + n["mel_mean"]
        spread = self.stats.get("mel_spread")
        if variance > 0 and spread is not None and len(y) > 1:
            y = restore_spread(y, spread, variance)
        return y.astype(np.float32)

    def pitch_plan(self, f0s: list[np.ndarray], options: ConvertOptions) -> tuple[str, float]:
        """How the performance's pitch will be moved: ``("map", semitones)`` or ``("transpose", semitones)``."""
        voiced = sum(int((f > 0).sum()) for f in f0s)
        if voiced < 10:
            return ("none", 0.0)
        source = PitchStats.from_f0(list(f0s))
        if options.mode == "singing":
            if options.transpose == "auto":
                return ("transpose", float(auto_transpose(source, self.pitch)))
            return ("transpose", float(options.transpose or 0.0))
        extra = 0.0 if options.transpose in (None, "auto") else float(options.transpose)
        return ("map", extra)

    def _map_pitch(self, f0s: list[np.ndarray], options: ConvertOptions) -> list[np.ndarray]:
        kind, semitones = self.pitch_plan(f0s, options)
        if kind == "none":
            return f0s
        if kind == "transpose":
            return [transpose(f, semitones) for f in f0s]
        source = self.performer_pitch or PitchStats.from_f0(list(f0s))
        return [transpose(map_speech(f, source, self.pitch), semitones) for f in f0s]

    def _convert_piece(self, x: np.ndarray, f0: np.ndarray, new_f0: np.ndarray, options: ConvertOptions) -> np.ndarray:
        sr, fp = self.config.sample_rate, self.config.frame_period
        frames = analyze(x, sr, fp, f0=f0)
        content = _content_frames(self.content, x, sr)
        if options.strategy == "match":
            code, hop = self.match_envelope(content, options.k, options.smooth), self.config.content_hop
        else:
            code, hop = self.predict_envelope(content, options.retrieval), self.envelope_hop
        postfilter = options.postfilter_power
        sharp = None
        if postfilter > 0 and self.envelope_gv is not None:
            sharp = match_global_variance(code, self.envelope_gv, postfilter)
            if options.postfilter_from_hz <= 0:
                code, sharp = sharp, None
        return self.resynthesize(frames, code, new_f0, options, len(x), hop, sharp)

    def resynthesize(self, frames: WorldFrames, code: np.ndarray, new_f0: np.ndarray, options: ConvertOptions,
                     samples: int, hop_seconds: float | None = None, sharp: np.ndarray | None = None) -> np.ndarray:
        """The performance's WORLD ``frames`` with a new ``(n, envelope_dims)`` coded envelope, one every
        ``hop_seconds`` (default: the content hop), and ``(frames,)`` F0 -> ``(samples,)`` audio: ``sharp`` (the
        postfiltered code, same shape) taking over from ``options.postfilter_from_hz`` up, the level set by
        ``options.energy``, the fundamental kept (``options.fundamental_db``), the performance's aperiodicity,
        WORLD synthesis."""
        sr, fp = self.config.sample_rate, self.config.frame_period
        hop = hop_seconds or self.config.content_hop
        sp = decode_envelope(resample_frames(code, hop, frames.frames, fp), sr)
        if sharp is not None:
            high = decode_envelope(resample_frames(sharp, hop, frames.frames, fp), sr)
            sp = crossfade_bands(sp, high, sr, options.postfilter_from_hz)
        energy = options.energy or ("phrase" if options.mode == "singing" else "target")
        if energy == "performer":
            sp *= np.exp(frame_energy(frames.sp) - frame_energy(sp))[:, None]  # keep the performer's dynamics
        elif energy == "phrase":
            sp = follow_dynamics(sp, frames.sp, new_f0 > 0, round(PHRASE_SECONDS * 1000 / fp))
        fundamental = options.fundamental_db if options.fundamental_db is not None else (
            -3.0 if options.mode == "singing" else None)
        if fundamental is not None:
            sp = keep_fundamental(sp, new_f0, sr, fundamental)
        return synthesize(new_f0, sp, frames.ap, sr, fp, samples)

    @property
    def envelope_hop(self) -> float:
        """Seconds between the envelopes ``predict_envelope`` returns (the content hop / ``envelope_rate``)."""
        return self.config.content_hop / self.config.envelope_rate

    def predict_envelope(self, content: np.ndarray, retrieval: float = 0.0) -> np.ndarray:
        """``(frames, content_dim)`` content at the content rate -> ``(frames * envelope_rate, envelope_dims)``
        coded envelopes of the target, one every ``envelope_hop`` seconds."""
        n = self.norm
        if self.config.content_mean_norm:
            content = _center(content)
        x = (content.astype(np.float32) - n["in_mean"]) / n["in_std"]
        y = envelope_net(self._state("net."), x.T).T
        y = np.ascontiguousarray(y.reshape(-1, self.config.envelope_dims))
        if retrieval > 0 and "bank" in n:
            bank = n["bank"]
            q, b = y[:, 1:], bank[:, 1:]  # match envelope shape (c1+), not level
            d = (q * q).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * q @ b.T
            idx = np.argpartition(d, min(3, len(bank) - 1), axis=1)[:, :4]  # the 4 nearest (any order)
            y = (1 - retrieval) * y + retrieval * bank[idx].mean(1)
        return y * n["out_std"] + n["out_mean"]

    def match_envelope(self, content: np.ndarray, k: int = 4, smooth: int = 0, chunk: int = 512) -> np.ndarray:
        """``(frames, content_dim)`` content -> ``(frames, envelope_dims)`` coded envelope at the content rate:
        for each frame the mean of the codes (log-domain envelopes) of its ``k`` nearest index frames by cosine,
        then a moving average over ``2 * smooth + 1`` frames. Top-k by matrix products, ``chunk`` frames at a time."""
        import torch

        if self._keys is None:
            self._keys = self.index["content"].float()  # float32 once: half-precision matmul is slow on CPU
        keys, codes = self._keys, self.index["code"]
        k = min(k, keys.shape[0])
        q = torch.nn.functional.normalize(torch.from_numpy(np.ascontiguousarray(content, dtype=np.float32)), dim=1)
        out = []
        with torch.inference_mode():
            for i in range(0, q.shape[0], chunk):
                idx = (q[i:i + chunk] @ keys.T).topk(k, dim=1).indices
                out.append(codes[idx].float().mean(1))
        y = torch.cat(out).numpy() if out else np.zeros((0, codes.shape[1]), np.float32)
        if smooth > 0 and len(y) > 1:
            w = np.ones(2 * smooth + 1) / (2 * smooth + 1)
            pad = np.pad(y, ((smooth, smooth), (0, 0)), mode="edge")
            y = np.stack([np.convolve(pad[:, d], w, mode="valid") for d in range(y.shape[1])], axis=1)
        return y.astype(np.float32)


# --- helpers ------------------------------------------------------------------------------------


def _center(x: np.ndarray) -> np.ndarray:
    """``(frames, dim)`` -> the same minus its mean frame (per-input content mean normalisation: what stays
    constant over an input, the speaker and the channel more than the words, is removed)."""
    x = np.asarray(x, dtype=np.float32)
    return x - x.mean(axis=0, keepdims=True) if len(x) else x


def _speech_frames(code: np.ndarray) -> np.ndarray:
    """``(frames, dims)`` coded envelopes -> boolean mask of the louder 70 % (by the level coefficient c0)."""
    return code[:, 0] > np.percentile(code[:, 0], 30)


def global_variance(code: np.ndarray) -> np.ndarray:
    """``(frames, dims)`` coded envelopes of the target -> ``(dims,)`` variance of each dimension over speech frames."""
    code = np.asarray(code, dtype=np.float64)
    return code[_speech_frames(code)].var(axis=0).astype(np.float32)


def match_global_variance(code: np.ndarray, target_gv: np.ndarray, power: float = 1.0) -> np.ndarray:
    """Global-variance postfilter: ``(frames, dims)`` -> same shape, each dimension but the level (c0) scaled about
    its mean over the speech frames by ``(target_gv / gv) ** (power / 2)`` (kept within 0.5-2), which undoes the over-smoothing of
    averaged or predicted envelopes (sharper formants)."""
    if len(code) < 10:
        return code
    speech = _speech_frames(code)
    mean = code[speech].mean(axis=0)
    scale = np.clip((np.asarray(target_gv) / (code[speech].var(axis=0) + 1e-8)) ** (power / 2), 0.5, 2.0)
    scale[0] = 1.0
    return ((code - mean) * scale + mean).astype(np.float32)


def make_index(contents: list[np.ndarray], codes: list[np.ndarray], rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Per-clip ``(frames, content_dim)`` content and ``(frames, envelope_dims)`` codes (same frames) -> the
    content-matching index: unit-norm content rows and codes, float16, at most ``INDEX_FRAMES`` rows."""
    keys = np.concatenate(contents).astype(np.float32)
    vals = np.concatenate(codes).astype(np.float32)
    if len(keys) > INDEX_FRAMES:
        keep = np.sort(rng.permutation(len(keys))[:INDEX_FRAMES])
        keys, vals = keys[keep], vals[keep]
    keys /= np.linalg.norm(keys, axis=1, keepdims=True) + 1e-8
    import torch

    return {"content": torch.from_numpy(keys.astype(np.float16)), "code": torch.from_numpy(vals.astype(np.float16))}


def _read_dataset(dataset: str | Path) -> list:
    dataset = Path(dataset)
    if not is_dataset(dataset):
        raise InputNotFoundError("not a dataset (no manifest.jsonl)", path=dataset,
                                 fix="make one with 'voicetwin ingest'")
    clips = [(c, p) for c, p in dataset_clips(dataset) if p.exists()]
    if not clips:
        raise InputError("the dataset has no kept clips with audio", path=dataset, fix="re-run 'voicetwin ingest'")
    return clips


def _normalize_text(text: str | None) -> str:
    return re.sub(r"[^\w]+", " ", (text or "").lower().replace("+", "")).strip()


def _performer_pairs(performer, target_contents, target_codes, content, config: VoiceConfig, progress: bool):
    """Parallel lines: performer content frames warped (DTW) onto the target's frames, paired with its codes."""
    import librosa

    by_text = {}
    for (clip, x), code in zip(target_contents, target_codes):
        key = _normalize_text(clip.text)
        if key:
            by_text[key] = (x, code)
    pairs, f0s = [], []
    for clip, wav in _bar(_read_dataset(performer), progress, "analysing performer"):
        audio, _ = load_audio(wav, config.sample_rate)
        if len(audio) < config.sample_rate * 0.2:
            continue
        f0 = track_f0(audio, config.sample_rate, config.frame_period)
        f0s.append(f0)
        match = by_text.get(_normalize_text(clip.text))
        if match is None:
            continue
        tx, code = match
        px = _content_frames(content, audio, config.sample_rate)
        _, path = librosa.sequence.dtw(X=px.T.astype(np.float32), Y=tx.T.astype(np.float32), metric="cosine")
        warp = np.zeros(len(tx), dtype=int)
        warp[path[::-1, 1]] = path[::-1, 0]  # for each target frame, the performer frame aligned to it
        pairs.append((_center(px)[warp], code))
    if not f0s:
        raise InputError("the performer dataset has no usable clips", path=performer)
    return pairs, f0s


Objective = tuple["nn.Module", Callable[[], "torch.Tensor"]]  # a network and the loss of one random batch of it


def _envelope_loss(net: EnvelopeNet, X: np.ndarray, Y: np.ndarray, norm: dict, options: BuildOptions,
                   rng: np.random.Generator) -> Objective:
    """The envelope network's objective: L1 on normalised codes over random windows of the (content, code) pairs."""
    import torch

    seg = min(options.segment_frames, X.shape[0])
    in_mean, in_std = torch.from_numpy(norm["in_mean"]), torch.from_numpy(norm["in_std"])
    rate = Y.shape[1] // len(norm["out_mean"])
    out_mean, out_std = (torch.from_numpy(np.tile(norm[k], rate)) for k in ("out_mean", "out_std"))

    def loss() -> torch.Tensor:
        starts = rng.integers(0, X.shape[0] - seg + 1, options.batch_size)
        xb = torch.from_numpy(np.stack([X[s:s + seg] for s in starts]).astype(np.float32))
        yb = torch.from_numpy(np.stack([Y[s:s + seg] for s in starts]))
        xb = ((xb - in_mean) / in_std).transpose(1, 2)
        yb = ((yb - out_mean) / out_std).transpose(1, 2)
        return (net(xb) - yb).abs().mean()

    return net, loss


def _mel_loss(net: MelNet, X: np.ndarray, P: np.ndarray, M: np.ndarray, norm: dict, options: BuildOptions,
              rng: np.random.Generator) -> Objective:
    """The mel decoder's objective: L1 on normalised log mel over random windows of content ``X`` (content frames,
    dim), pitch ``P`` and mel ``M`` (``net.rate`` frames per content frame)."""
    import torch

    seg, rate = min(options.segment_frames, X.shape[0]), net.rate
    in_mean, in_std = torch.from_numpy(norm["in_mean"]), torch.from_numpy(norm["in_std"])
    mel_mean, mel_std = torch.from_numpy(norm["mel_mean"]), torch.from_numpy(norm["mel_std"])

    def loss() -> torch.Tensor:
        starts = rng.integers(0, X.shape[0] - seg + 1, options.batch_size)
        xb = torch.from_numpy(np.stack([X[s:s + seg] for s in starts]).astype(np.float32))
        pb = torch.from_numpy(np.stack([P[s * rate:(s + seg) * rate] for s in starts]).astype(np.float32))
        mb = torch.from_numpy(np.stack([M[s * rate:(s + seg) * rate] for s in starts]).astype(np.float32))
        xb = ((xb - in_mean) / in_std).transpose(1, 2)
        mb = ((mb - mel_mean) / mel_std).transpose(1, 2)
        return (net(xb, pb.transpose(1, 2)) - mb).abs().mean()

    return net, loss


def _train(objectives: dict[str, Objective], options: BuildOptions, rng: np.random.Generator, progress: bool,
           hook: Hook | None = None, checkpoint: Path | None = None, fingerprint: str = "",
           say: Callable[[str], None] = lambda _msg: None) -> tuple[dict[str, list[float]], int]:
    """Fit the networks together, each on its own loss (summed; one AdamW over all their weights).

    ``options.steps`` steps (fewer only when ``options.max_train_seconds`` runs out), deterministic on
    ``options.threads`` threads. ``checkpoint``: the training state is saved there every minute and when training
    is interrupted, and training continues from it when it exists (the same weights as an uninterrupted run).
    Returns each objective's losses and the steps done."""
    import torch
    from torch import nn

    nets = nn.ModuleDict({name: net for name, (net, _) in objectives.items()})
    groups = [{"params": list(net.parameters()), "lr": options.learning_rate * LEARNING_RATE_SCALE.get(name, 1.0)}
              for name, net in nets.items()]
    opt = torch.optim.AdamW(groups, lr=options.learning_rate, weight_decay=1e-4)
    warmup = max(1, options.steps // 20)  # linear warm-up, then cosine decay to zero
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: min((i + 1) / warmup, 0.5 * (1 + np.cos(np.pi * i / options.steps))))
    losses, step = {name: [] for name in objectives}, 0
    state = load_training_state(checkpoint, fingerprint) if checkpoint else None
    if state is not None:
        nets.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        losses, step = state["losses"], state["step"]
        say(f"conversion model: resuming training at step {step} of {options.steps}")

    def save() -> None:
        save_training_state(checkpoint, {"fingerprint": fingerprint, "net": nets.state_dict(), "opt": opt.state_dict(),
                                     "sched": sched.state_dict(), "rng": rng.bit_generator.state,
                                     "torch_rng": torch.get_rng_state(), "losses": losses, "step": step})

    started = saved_at = time.time()
    consistent = True
    nets.train()
    with deterministic(options.threads), Stage("training voice", options.steps, progress, hook, start=step) as bar:
        try:
            while step < options.steps:
                if options.max_train_seconds is not None and time.time() - started > options.max_train_seconds:
                    say(f"conversion model: stopped by the time cap after {step} of {options.steps} steps")
                    break
                consistent = False
                parts = {name: fn() for name, (_, fn) in objectives.items()}
                opt.zero_grad()
                sum(parts.values()).backward()
                opt.step()
                sched.step()
                for name, value in parts.items():
                    losses[name].append(float(value.detach()))
                step += 1
                consistent = True
                if checkpoint and time.time() - saved_at > CHECKPOINT_SECONDS:
                    save()
                    saved_at = time.time()
                bar.update(1, loss=" ".join(f"{v[-1]:.3f}" for v in losses.values()))
        except BaseException:
            if checkpoint and consistent:  # an interrupted step leaves the last saved state
                save()
            raise
    nets.eval()
    if checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
    return losses, step


def _bar(items, progress: bool, desc: str, hook: Hook | None = None):
    """``items`` with a progress bar (``voicetwin.training.Stage``) and ``hook`` reports."""
    return stage_items(items, desc, progress, hook) if progress or hook else items


def build_fingerprint(dataset: str | Path, performer: str | Path | None, options: BuildOptions) -> str:
    """What makes a build's result: the datasets' manifests and the options."""
    for folder in (dataset, performer):
        if folder is not None and not is_dataset(folder):
            raise InputNotFoundError("not a dataset (no manifest.jsonl)", path=folder,
                                     fix="make one with 'voicetwin ingest'")
    parts = [sha256_file(Path(dataset) / "manifest.jsonl"), str(Path(dataset).resolve()),
             sha256_file(Path(performer) / "manifest.jsonl") if performer else "",
             json.dumps({k: getattr(options, k) for k in options.__dataclass_fields__}, sort_keys=True)]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


__all__ = ["BUILD_DIR", "BuildOptions", "ConvertOptions", "Voice", "VoiceConfig", "build_fingerprint",
           "global_variance", "match_global_variance", "split_at_pauses"]
