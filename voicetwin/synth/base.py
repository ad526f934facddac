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
    """Speech from a base synthesiser: ``audio`` (samples,) float32 at ``sample_rate`` Hz, and its phones."""

    audio: np.ndarray
    sample_rate: int
    phones: list[Phone] = field(default_factory=list)
    scale: float = 1.0  # the duration scale it was made with (> 1 slower)

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
