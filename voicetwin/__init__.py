"""voicetwin: recreate a person's voice, with consent, from archive recordings and a relative's performance.

The package imports nothing heavy at import time; capabilities load on first use:

    from voicetwin import SpeakerEncoder, IngestOptions
    from voicetwin.ingest import ingest       # functions named like their module are imported from it
    from voicetwin.sing import sing
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "speak": "tts",
    "SpeakOptions": "tts",
    "AcousticModel": "acoustic",
    "SingOptions": "sing",
    "read_score": "sing",
    "normalize_text": "text",
    "VoiceTwinError": "errors",
    "load_audio": "audio",
    "save_audio": "audio",
    "Clip": "manifest",
    "read_manifest": "manifest",
    "SpeakerEncoder": "speaker",
    "IngestOptions": "ingest",
    "ConsentError": "errors",
    "ConsentRecord": "consent",
    "check_consent": "consent",
    "load_consent": "consent",
    "save_consent": "consent",
    "read_consent": "consent",
    "voice_consent": "consent",
    "Payload": "watermark",
    "Detection": "watermark",
    "payload_for": "watermark",
    "embed_watermark": "watermark",
    "detect_watermark": "watermark",
    "write_provenance": "provenance",
    "finalize_output": "provenance",
    "finetune_speaker": "speaker_train",
    "FinetuneOptions": "speaker_train",
    "similarity_report": "eval",
    "equal_error_rate": "eval",
    "word_error_rate": "eval",
    "f0_agreement": "eval",
    "mel_cepstral_distortion": "eval",
    "measure": "eval",
    "Voice": "voice",
    "BuildOptions": "voice",
    "ConvertOptions": "voice",
    "convert_files": "voice",
    "load_content": "content",
    "DubOptions": "dub",
    "Scene": "scene",
    "load_scene": "scene",
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
    from .ingest import IngestOptions
    from .manifest import Clip, read_manifest
    from .speaker import SpeakerEncoder
    from .content import load_content
    from .voice import BuildOptions, ConvertOptions, Voice, convert_files
