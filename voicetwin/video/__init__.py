"""Video: frames in and out, faces and mouth landmarks, lip-sync (score, align, render)."""

from __future__ import annotations

from .io import VideoInfo, iter_frames, probe, replace_audio, write_video

_LAZY = {
    # lipsync
    "score": "lipsync",
    "align": "lipsync",
    "render": "lipsync",
    "SyncOptions": "lipsync",
    "AlignOptions": "lipsync",
    "RenderOptions": "lipsync",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "lipsync":
        from . import lipsync as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["AlignOptions", "RenderOptions", "SyncOptions", "VideoInfo", "align", "iter_frames", "probe", "render", "replace_audio", "score", "write_video"]
