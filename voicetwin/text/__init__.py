"""Text: normalisation, sentence splitting, stress marks and syllables for the phone front ends."""

from __future__ import annotations

from .normalization import check_language, detect_language, normalize, split_sentences, syllabify, words

__all__ = ["check_language", "detect_language", "normalize", "split_sentences", "syllabify", "words"]
