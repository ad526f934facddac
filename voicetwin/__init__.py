"""voicetwin: recreate a person's voice, with consent, from archive recordings and a relative's performance.

The package imports nothing heavy at import time; capabilities load on first use:

    from voicetwin import SpeakerEncoder, ingest
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "VoiceTwinError": "errors",
    "load_audio": "audio",
    "save_audio": "audio",
    "Clip": "manifest",
    "read_manifest": "manifest",
    "SpeakerEncoder": "speaker",
    "ingest": "ingest",
    "IngestOptions": "ingest",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'voicetwin' has no attribute '{name}'")
    return getattr(importlib.import_module(f".{module}", __name__), name)


if TYPE_CHECKING:  # pragma: no cover
    from .audio import load_audio, save_audio
    from .errors import VoiceTwinError
    from .ingest import IngestOptions, ingest
    from .manifest import Clip, read_manifest
    from .speaker import SpeakerEncoder
