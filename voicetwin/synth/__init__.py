"""Synthesis: base synthesisers (piper, espeak-ng, festival), the trained acoustic model, speak and sing."""

from __future__ import annotations

_LAZY = {
    # speak
    "synthesize": "speak",
    "SpeakOptions": "speak",
    "base_synthesizer": "speak",
    # sing
    "SingOptions": "sing",
    "read_score": "sing",
    "Score": "sing",
    "Note": "sing",
    # acoustic
    "AcousticModel": "acoustic",
    "AcousticConfig": "acoustic",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "speak":
        from . import speak as module
    elif where == "sing":
        from . import sing as module
    elif where == "acoustic":
        from . import acoustic as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["AcousticConfig", "AcousticModel", "Note", "Score", "SingOptions", "SpeakOptions", "base_synthesizer", "read_score", "synthesize"]
