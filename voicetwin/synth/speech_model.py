"""The voice's own speech model, trained by ``voice build`` on the dataset's transcribed clips.

    report = build_speech_model(clips, "voices/grandpa/tts", "ru", SpeechOptions(), state="voices/grandpa/.build")

1. text:     each clip's transcript, normalised (``voicetwin.text.normalize``), through the phone front end of its
             language (``FRONT_ENDS``: festival's Russian, flite's US English). A clip transcribed by a recogniser
             whose confidence is below ``min_text_confidence`` is left out, and listed in the report;
2. features: WORLD features and the neural vocoder's log mel of every clip
             (``voicetwin.synth.acoustic.frame_features``) and MFCCs for alignment, cached in ``STATE/speech/``
             (a resumed build does not analyse a clip again);
3. timings:  forced alignment of the phones on the audio (``voicetwin.synth.align``); a clip whose text does not
             fit its audio is left out, and listed;
4. training: ``voicetwin.synth.acoustic_train.fit``: seeded, a fixed number of steps, checkpointed in ``STATE``;
5. saved:    ``OUT`` = ``config.json`` + ``model.safetensors``. Inside a voice directory this is ``VOICE/tts``, where
             ``speak``, ``sing``, ``dub`` and the demo find it (``voicetwin.synth.speak.voice_model``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, InputError, MissingDependencyError
from ..training import Hook, Stage
from .acoustic import CMU_PHONES, FESTVOX_RU_PHONES, AcousticConfig, AcousticModel
from .align import AlignOptions, align_dataset, alignment_features, outliers

# language -> (phone front end, its phone set, the programs it needs, how to install them)
FRONT_ENDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...], str]] = {
    "ru": ("festival:msu_ru_nsh_clunits", FESTVOX_RU_PHONES, ("festival",), "apt-get install festival festvox-ru"),
    "en": ("flite", CMU_PHONES, ("t2p",), "apt-get install flite"),
}
# model sizes: "base" is the recipes' model (1.4 M parameters with the mel decoder); "tiny" is for tests and smoke runs
SIZES: dict[str, dict] = {
    "base": {"hidden": 128, "encoder_layers": 4, "decoder_layers": 6, "kernel": 5},
    "tiny": {"hidden": 16, "encoder_layers": 1, "decoder_layers": 2, "kernel": 3, "mel_layers": 1},
}
MIN_MINUTES = 10.0  # below this the report says more transcribed speech would help


@dataclass(frozen=True)
class SpeechOptions:
    """How the speech model is trained. ``min_text_confidence``: clips a recogniser transcribed with a lower
    confidence (``custom["text_confidence"]`` in the manifest, 0-1) are left out. ``valid``: clips held out to
    print a validation loss (at most a tenth of the clips). ``max_train_seconds``: stop training after this long
    (None: train all ``steps``; a cap makes the model depend on the machine's speed). ``mel_bands``: 80, the model
    also predicts the universal HiFi-GAN's log mel and speaks through it (``vocoder="auto"``); 0, WORLD features
    only."""

    steps: int = 900
    size: str = "base"
    batch_size: int = 8
    learning_rate: float = 0.002
    min_text_confidence: float = 0.5
    valid: int = 10
    seed: int = 0
    threads: int = 1
    max_train_seconds: float | None = None
    mel_bands: int = 80

    def __post_init__(self):
        if self.steps < 1 or self.batch_size < 1 or self.threads < 1 or self.valid < 1:
            raise ConfigError("steps, batch_size, threads and valid must be >= 1")
        if self.size not in SIZES:
            raise ConfigError(f"unknown speech model size '{self.size}'", fix="use " + " or ".join(map(repr, SIZES)))
        if not 0.0 <= self.min_text_confidence <= 1.0:
            raise ConfigError(f"min_text_confidence must be between 0 and 1, got {self.min_text_confidence}")
        if self.max_train_seconds is not None and not self.max_train_seconds > 0:
            raise ConfigError("max_train_seconds must be positive (or None for no cap)")

    def config(self, language: str) -> AcousticConfig:
        front_end, phones, _, _ = FRONT_ENDS[language]
        return AcousticConfig(phones=phones, language=language, front_end=front_end, mel_bands=self.mel_bands,
                              **SIZES[self.size])


def check_front_end(language: str) -> None:
    """Raise before any work when the phone front end for ``language`` is missing (``MissingDependencyError``)."""
    if language not in FRONT_ENDS:
        return
    _, _, programs, install = FRONT_ENDS[language]
    for program in programs:
        if shutil.which(program) is None:
            raise MissingDependencyError(program, None, f"the {language} phone front end of the speech model "
                                                        f"({install}; or build with --no-speech-model)")


def transcribed(clips: list, min_confidence: float) -> tuple[list, list[dict]]:
    """``[(clip, wav), ...]`` -> the clips with text good enough for training, and the left-out ones with text
    (``{"id", "confidence"}``: a recogniser's confidence below ``min_confidence``)."""
    keep, doubtful = [], []
    for clip, wav in clips:
        if not (clip.text or "").strip():
            continue
        confidence = clip.custom.get("text_confidence")
        if confidence is not None and float(confidence) < min_confidence:
            doubtful.append({"id": clip.id, "confidence": round(float(confidence), 3), "text": clip.text})
            continue
        keep.append((clip, wav))
    return keep, doubtful


def dataset_language(clips: list, fallback: str | None = None) -> str:
    """The most common ``language`` of the clips, else ``fallback``, else guessed from their text."""
    from ..text import detect_language

    languages = [c.language for c, _ in clips if c.language]
    if languages:
        return max(sorted(set(languages)), key=languages.count)
    if fallback:
        return fallback
    return detect_language(" ".join(c.text or "" for c, _ in clips[:50]))


def _analyse(clip, wav: Path, text: str, config: AcousticConfig, cache: Path) -> dict | None:
    """One clip -> phones with words, WORLD features and alignment features (cached in ``cache``); None when the
    front end finds nothing to say or phones outside the model's phone set."""
    from ..audio import load_audio
    from .acoustic import frame_features, front_end_phones

    key = f"{clip.id}|{text}|{config.front_end}|{config.envelope_dims}|{wav}" + (f"|mel{config.mel_bands}"
                                                                                  if config.mel_bands else "")
    key = hashlib.sha256(key.encode()).hexdigest()[:16]
    path = cache / f"{key}.npz"
    if path.exists():
        data = np.load(path)
        return {"phones": [str(p) for p in data["phones"]], "words": data["words"], "features": data["features"],
                "align": data["align"]}
    try:
        marked = front_end_phones(text, config.front_end)
    except InputError:
        return None
    if any(p not in config.phones for p, _ in marked):
        return None
    audio, sr = load_audio(wav, sample_rate=config.sample_rate)
    features = frame_features(audio, sr, config)
    data = {"phones": np.array([p for p, _ in marked]), "words": np.array([w for _, w in marked], np.int64),
            "features": features, "align": alignment_features(audio, sr, len(features), config.frame_period)}
    from ..files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **data)
    return {**data, "phones": [str(p) for p in data["phones"]]}


def build_speech_model(clips: list, out: str | Path, language: str, options: SpeechOptions, state: str | Path,
                       fingerprint: str = "", progress: bool = False, hook: Hook | None = None,
                       log: Callable[[str], None] | None = None) -> dict:
    """Train the speech model on the transcribed ``[(clip, wav path), ...]`` of ``language`` and save it in
    ``out``; returns its report. ``state``: a folder for cached features and the training checkpoint (a build
    started again with the same ``fingerprint`` continues from there). ``hook``: ``(stage, done, total)``."""
    from ..text import normalize
    from .acoustic_train import TrainSettings, fit

    started = time.time()
    say = log or (lambda _msg: None)
    if language not in FRONT_ENDS:
        raise ConfigError(f"no phone front end for '{language}'", fix="give ru or en text, or --no-speech-model")
    config = options.config(language)
    state = Path(state)
    cache = state / "speech"
    cache.mkdir(parents=True, exist_ok=True)
    usable, doubtful = transcribed(clips, options.min_text_confidence)
    if doubtful:
        say(f"speech model: {len(doubtful)} clip(s) with doubtful text left out "
            f"(recogniser confidence < {options.min_text_confidence})")
    analysed, no_phones = [], []
    with Stage("speech model: text and features", len(usable), progress, hook) as bar:
        for clip, wav in usable:
            item = _analyse(clip, wav, normalize(clip.text, language), config, cache)
            if item is None:
                no_phones.append(clip.id)
            else:
                analysed.append((clip, item))
            bar.update()
    if len(analysed) < 2:
        raise InputError(f"only {len(analysed)} transcribed clip(s) usable for the speech model",
                         fix="add transcripts (ingest --transcripts FILE or --asr MODEL), or build with "
                             "--no-speech-model")
    with Stage("speech model: phone timings", AlignOptions().iterations, progress, hook) as bar:
        alignments = align_dataset([(list(zip(d["phones"], d["words"].tolist())), d["align"]) for _, d in analysed],
                                   AlignOptions(), progress=lambda done, total: bar.update())
    bad = outliers(alignments)
    index = {p: i for i, p in enumerate(config.phones)}
    data, ids = [], []
    for (clip, item), alignment, drop in zip(analysed, alignments, bad):
        if drop:
            continue
        data.append({"phones": np.array([index[p] for p in alignment.phones], np.int64), "frames": alignment.frames,
                     "features": item["features"][: int(alignment.frames.sum())]})
        ids.append(clip.id)
    unaligned = [clip.id for (clip, _), drop in zip(analysed, bad) if drop]
    if len(data) < 2:
        raise InputError("fewer than 2 clips could be aligned with their text", fix="check the transcripts")
    valid = min(options.valid, max(1, len(data) // 10))
    minutes = sum(len(d["features"]) for d in data) * config.frame_period / 60_000
    say(f"speech model: {len(data)} clips ({minutes:.1f} min) of {language} text, {len(unaligned)} left out "
        "(text does not fit the audio)")
    settings = TrainSettings(steps=options.steps, batch_size=options.batch_size, learning_rate=options.learning_rate,
                             seed=options.seed, threads=options.threads,
                             max_minutes=None if options.max_train_seconds is None else options.max_train_seconds / 60)
    net, info = fit(data[:-valid], data[-valid:], config, settings, progress=progress, hook=hook, log=say,
                    checkpoint=state / "speech-train.pt", fingerprint=fingerprint + json.dumps(asdict(options)))
    AcousticModel(config, net).save(out)
    report = {
        "built": True,
        "path": Path(out).name,
        "language": language,
        "front_end": config.front_end,
        "size": options.size,
        "clips": len(data) - valid,
        "validation_clips": valid,
        "minutes": round(minutes, 2),
        "steps": info["steps"],
        "final_training_loss": info["final_loss"],
        "validation_loss": info["validation"],
        "left_out_doubtful_text": doubtful,
        "left_out_unaligned": unaligned,
        "left_out_no_phones": no_phones,
        "build_seconds": round(time.time() - started, 1),
    }
    if minutes < MIN_MINUTES:
        report["note"] = (f"only {minutes:.1f} min of transcribed speech; {MIN_MINUTES:.0f} min or more make a "
                          "clearer speech model")
    return report


def no_text_report(dataset: str | Path) -> dict:
    """The report's entry when the dataset has no text: speech goes through a base synthesiser and conversion."""
    return {"built": False,
            "reason": "the dataset has no transcripts",
            "speech": "speak, sing, dub and the demo use a base synthesiser (piper for English, espeak-ng otherwise) "
                      "converted into the voice",
            "fix": f"add text with 'voicetwin ingest SOURCES --out {dataset} --transcripts FILE' (or --asr MODEL) "
                   "and build again: the voice then speaks with its own speech model"}


__all__ = ["FRONT_ENDS", "SIZES", "SpeechOptions", "build_speech_model", "check_front_end", "dataset_language",
           "no_text_report", "transcribed"]
