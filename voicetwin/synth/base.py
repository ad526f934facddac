"""What every base synthesiser gives: speech with its phones' timings (piper, espeak-ng, festival, the trained
acoustic model all return a ``Synthesis``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Phone:
    """One phone of synthesised speech: ``start``/``end`` in seconds, ``kind`` vowel | consonant | pause."""

    symbol: str
    start: float
    end: float
    kind: str
    word: int  # index of the word of the input text, -1 for pauses between words

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass
class Synthesis:
    """Speech from a base synthesiser: ``audio`` (samples,) float32 at ``sample_rate`` Hz, and its phones.
    ``mel``: the same speech as the neural vocoder's log mel ``(frames, num_mels)``, frame ``i`` at ``i *
    mel_period`` ms of ``audio``, from a base that predicts it (a trained acoustic model with mel bands);
    ``voicetwin.synth.speak.render_synthesis`` renders that instead of re-rendering ``audio``."""

    audio: np.ndarray
    sample_rate: int
    phones: list[Phone] = field(default_factory=list)
    scale: float = 1.0  # the duration scale it was made with (> 1 slower)
    mel: np.ndarray | None = None
    mel_period: float = 10.0

    def trimmed(self, start: int, end: int, phones: list[Phone]) -> "Synthesis":
        """Samples ``start:end`` of this speech (its mel frames with them) with ``phones`` retimed by the caller."""
        mel = self.mel
        if mel is not None:
            first = int(round(start / self.sample_rate * 1000 / self.mel_period))
            mel = mel[first: first + max(1, int(round((end - start) / self.sample_rate * 1000 / self.mel_period)))]
        return Synthesis(self.audio[start:end], self.sample_rate, phones, self.scale, mel, self.mel_period)

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate


class BaseSynthesizer(Protocol):
    name: str
    language: str
    sample_rate: int
    min_scale: float
    max_scale: float

    def synthesize(self, text: str, scale: float = 1.0) -> Synthesis:
        """Speak normalised ``text``; ``scale`` multiplies phone and pause durations (> 1 is slower)."""
        ...
