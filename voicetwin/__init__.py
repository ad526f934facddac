"""voicetwin: recreate a person's voice, with consent, from archive recordings and a relative's performance.

The pipeline, one subpackage per stage (imports flow down this list, never up):

    errors, files, hub, manifest, checkpoint   the ground floor: typed errors, atomic files, model resolver
    audio/      file I/O, pitch trackers, WORLD vocoder, denoising
    text/       normalisation for the phone front ends
    speaker/    the speaker encoder and its fine-tuning
    ingest/     archive recordings -> a dataset of clean clips
    voice/      the voice model: build from a dataset, convert a performance
    synth/      base synthesisers, the acoustic model, speak, sing
    video/      video I/O, faces, lip-sync
    eval/       the judges
    production/ the render service (consent -> render -> watermark -> provenance), scenes, dubbing, jobs
    cli, demo/  the command line and the web demo

Importing the package loads nothing heavy; each name below loads its module on first use:

    from voicetwin import Voice, speak, sing, dub
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module (below voicetwin) that defines it
_EXPORTS = {
    "speak": "synth.speak",
    "SpeakOptions": "synth.speak",
    "sing": "synth.sing",
    "SingOptions": "synth.sing",
    "read_score": "synth.sing",
    "AcousticModel": "synth.acoustic",
    "normalize_text": "text.normalization",
    "VoiceTwinError": "errors",
    "ConsentError": "errors",
    "load_audio": "audio.io",
    "save_audio": "audio.io",
    "Clip": "manifest",
    "read_manifest": "manifest",
    "SpeakerEncoder": "speaker.encoder",
    "finetune_speaker": "speaker.finetune",
    "FinetuneOptions": "speaker.finetune",
    "IngestOptions": "ingest.pipeline",
    "ConsentRecord": "consent",
    "check_consent": "consent",
    "load_consent": "consent",
    "save_consent": "consent",
    "read_consent": "consent",
    "voice_consent": "consent",
    "Payload": "production.watermark",
    "Detection": "production.watermark",
    "payload_for": "production.watermark",
    "embed_watermark": "production.watermark",
    "detect_watermark": "production.watermark",
    "write_provenance": "production.provenance",
    "RenderRequest": "production.render",
    "RenderResult": "production.render",
    "render": "production.render",
    "render_file": "production.render",
    "finalize_output": "production.render",
    "convert_files": "production.render",
    "dub": "production.dub",
    "DubOptions": "production.dub",
    "Scene": "production.scene",
    "load_scene": "production.scene",
    "similarity_report": "eval.judges",
    "equal_error_rate": "eval.judges",
    "word_error_rate": "eval.judges",
    "f0_agreement": "eval.judges",
    "mel_cepstral_distortion": "eval.judges",
    "measure": "eval.judges",
    "Voice": "voice.model",
    "BuildOptions": "voice.model",
    "ConvertOptions": "voice.model",
    "load_content": "voice.content",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    where = _EXPORTS.get(name)
    if where == "synth.speak":
        from .synth import speak as module
    elif where == "synth.sing":
        from .synth import sing as module
    elif where == "synth.acoustic":
        from .synth import acoustic as module
    elif where == "text.normalization":
        from .text import normalization as module
    elif where == "errors":
        from . import errors as module
    elif where == "audio.io":
        from .audio import io as module
    elif where == "manifest":
        from . import manifest as module
    elif where == "speaker.encoder":
        from .speaker import encoder as module
    elif where == "speaker.finetune":
        from .speaker import finetune as module
    elif where == "ingest.pipeline":
        from .ingest import pipeline as module
    elif where == "consent":
        from . import consent as module
    elif where == "production.watermark":
        from .production import watermark as module
    elif where == "production.provenance":
        from .production import provenance as module
    elif where == "production.render":
        from .production import render as module
    elif where == "production.dub":
        from .production import dub as module
    elif where == "production.scene":
        from .production import scene as module
    elif where == "eval.judges":
        from .eval import judges as module
    elif where == "voice.model":
        from .voice import model as module
    elif where == "voice.content":
        from .voice import content as module
    else:
        raise AttributeError(f"module 'voicetwin' has no attribute '{name}'")
    return getattr(module, name)


if TYPE_CHECKING:  # pragma: no cover
    from .synth.speak import SpeakOptions, speak
    from .synth.sing import SingOptions, read_score, sing
    from .synth.acoustic import AcousticModel
    from .text.normalization import normalize_text
    from .errors import ConsentError, VoiceTwinError
    from .audio.io import load_audio, save_audio
    from .manifest import Clip, read_manifest
    from .speaker.encoder import SpeakerEncoder
    from .speaker.finetune import FinetuneOptions, finetune_speaker
    from .ingest.pipeline import IngestOptions
    from .consent import ConsentRecord, check_consent, load_consent, read_consent, save_consent, voice_consent
    from .production.watermark import Detection, Payload, detect_watermark, embed_watermark, payload_for
    from .production.provenance import write_provenance
    from .production.render import RenderRequest, RenderResult, convert_files, finalize_output, render, render_file
    from .production.dub import DubOptions, dub
    from .production.scene import Scene, load_scene
    from .eval.judges import equal_error_rate, f0_agreement, measure, mel_cepstral_distortion, similarity_report, word_error_rate
    from .voice.model import BuildOptions, ConvertOptions, Voice
    from .voice.content import load_content
