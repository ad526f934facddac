"""Judges: speaker similarity (GE2E, d-vector), word error rate (Whisper), pitch (CREPE, pYIN), spectral distance,
naturalness (DNSMOS)."""

from __future__ import annotations

_LAZY = {
    # judges
    "similarity_report": "judges",
    "equal_error_rate": "judges",
    "word_error_rate": "judges",
    "f0_agreement": "judges",
    "mel_cepstral_distortion": "judges",
    "measure": "judges",
    "extract_f0": "judges",
    "naturalness": "judges",
    "naturalness_report": "judges",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "judges":
        from . import judges as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["equal_error_rate", "extract_f0", "f0_agreement", "measure", "mel_cepstral_distortion", "naturalness", "naturalness_report", "similarity_report", "word_error_rate"]
