"""Speaker: the GE2E speaker encoder (enrol, embed, score) and its fine-tuning on an archive voice."""

from __future__ import annotations

_LAZY = {
    # encoder
    "SpeakerEncoder": "encoder",
    "EncoderConfig": "encoder",
    # finetune
    "finetune_speaker": "finetune",
    "FinetuneOptions": "finetune",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "encoder":
        from . import encoder as module
    elif where == "finetune":
        from . import finetune as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["EncoderConfig", "FinetuneOptions", "SpeakerEncoder", "finetune_speaker"]
