"""The producers' web demo (Gradio): ``voicetwin demo`` serves it; ``launch()`` starts it from Python."""

from __future__ import annotations

_LAZY = {
    # app
    "build_app": "app",
    "launch": "app",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "app":
        from . import app as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["build_app", "launch"]
