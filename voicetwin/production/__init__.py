"""Production: everything that turns a render into a deliverable.

The render service (consent, render, watermark, provenance), the watermark, provenance
sidecars, scene files, fitting lines to their slots, the mixdown, dubbing and background jobs.
"""

from __future__ import annotations

from .scene import Scene, load_scene

_LAZY = {
    # watermark
    "embed_watermark": "watermark",
    "detect_watermark": "watermark",
    "Payload": "watermark",
    "Detection": "watermark",
    "payload_for": "watermark",
    # provenance
    "write_provenance": "provenance",
    # render
    "RenderRequest": "render",
    "RenderResult": "render",
    "render_file": "render",
    "finalize_output": "render",
    # dub
    "DubOptions": "dub",
}


def __getattr__(name: str):
    """Load the torch- or framework-heavy modules on first use."""
    where = _LAZY.get(name)
    if where == "watermark":
        from . import watermark as module
    elif where == "provenance":
        from . import provenance as module
    elif where == "render":
        from . import render as module
    elif where == "dub":
        from . import dub as module
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(module, name)


__all__ = ["Detection", "DubOptions", "Payload", "RenderRequest", "RenderResult", "Scene", "detect_watermark", "embed_watermark", "finalize_output", "load_scene", "payload_for", "render_file", "write_provenance"]
