"""Voice: the voice model (build from a dataset, convert a performance into the voice) and its content features."""

from __future__ import annotations

_LAZY = {
    # model
    "Voice": "model",
    "VoiceConfig": "model",
    "BuildOptions": "model",
    "ConvertOptions": "model",
    # content
    "load_content": "content",
    "ContentModel": "content",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "model":
        from . import model as module
    elif where == "content":
        from . import content as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["BuildOptions", "ContentModel", "ConvertOptions", "Voice", "VoiceConfig", "load_content"]
