"""Text: normalisation, sentence splitting, stress marks and syllables for the phone front ends."""

from __future__ import annotations

from .normalization import LANGUAGES, SPEECH_LANGUAGES, check_language, detect_language, normalize, split_sentences, syllabify, words

__all__ = ["LANGUAGES", "SPEECH_LANGUAGES", "check_language", "detect_language", "normalize", "split_sentences", "syllabify", "words"]
