"""Speaker: the GE2E speaker encoder (enrol, embed, score), profiles cached with their dataset, and the
encoder's fine-tuning on an archive voice."""

from __future__ import annotations

_LAZY = {
    # encoder
    "SpeakerEncoder": "encoder",
    "EncoderConfig": "encoder",
    # profile
    "dataset_profile": "profile",
    "load_profile": "profile",
    # finetune
    "finetune_speaker": "finetune",
    "FinetuneOptions": "finetune",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "encoder":
        from . import encoder as module
    elif where == "profile":
        from . import profile as module
    elif where == "finetune":
        from . import finetune as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["EncoderConfig", "FinetuneOptions", "SpeakerEncoder", "dataset_profile", "finetune_speaker",
           "load_profile"]
