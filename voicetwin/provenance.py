"""Provenance sidecars and the one exit every generated audio file goes through.

``finalize_output`` watermarks the audio (voice id + render id), saves it atomically and writes
``<output>.provenance.json`` next to it: the hashes of the inputs, the model and voice ids, the consent reference,
the UTC time and the voicetwin version. Every capability that writes audio calls it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import InputError, InputNotFoundError
from .files import sha256_file, write_json

SIDECAR_SUFFIX = ".provenance.json"
FORMAT_VERSION = 1



def sidecar_path(output_path: str | Path) -> Path:
    """``out.wav`` -> ``out.wav.provenance.json``."""
    output_path = Path(output_path)
    return output_path.with_name(output_path.name + SIDECAR_SUFFIX)


def new_render_id() -> str:
    """A fresh render id (12 hex digits)."""
    return uuid.uuid4().hex[:12]


def hash_array(audio: np.ndarray) -> str:
    """SHA-256 of an array's float32 bytes (for inputs that exist only in memory)."""
    return hashlib.sha256(np.ascontiguousarray(np.asarray(audio, dtype=np.float32)).tobytes()).hexdigest()


def _describe_input(item) -> dict:
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise InputNotFoundError("input listed for provenance does not exist", path=path,
                                     fix="pass the files the output was made from")
        return {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
    if isinstance(item, Mapping):
        return dict(item)
    if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
        return {"name": item[0], "sha256": hash_array(item[1])}
    raise InputError(f"cannot describe provenance input of type {type(item).__name__}",
                     fix="pass file paths, dicts, or (name, array) pairs")


def _consent_entry(consent_ref) -> dict | str | None:
    if consent_ref is None:
        return None
    from .consent import ConsentRecord, consent_reference, load_consent

    if isinstance(consent_ref, ConsentRecord):
        return consent_reference(consent_ref)
    if isinstance(consent_ref, Path) or (isinstance(consent_ref, str) and Path(consent_ref).is_dir()):
        return consent_reference(load_consent(consent_ref))
    if isinstance(consent_ref, (Mapping, str)):
        return dict(consent_ref) if isinstance(consent_ref, Mapping) else consent_ref
    raise InputError(f"cannot record consent reference of type {type(consent_ref).__name__}",
                     fix="pass a ConsentRecord, a voice directory, a dict or a string")


def write_provenance(
    output_path: str | Path,
    inputs: Iterable = (),
    model_ids: Iterable[str] | Mapping[str, str] = (),
    voice_id: str | None = None,
    consent_ref=None,
    render_id: str | None = None,
    extra: Mapping | None = None,
) -> Path:
    """Write ``<output_path>.provenance.json`` (atomic) and return its path.

    Args:
        output_path: the generated file (must exist: its hash is recorded).
        inputs: files (hashed), dicts (kept as given) or ``(name, array)`` pairs (array hashed).
        model_ids: names or paths of the models used, or a ``{role: id}`` mapping.
        voice_id: the voice the output speaks or sings with.
        consent_ref: a ``ConsentRecord``, a voice directory, a dict or a string.
        render_id: the id carried by the output's watermark.
        extra: anything else worth keeping (options, watermark payload, scene line...), JSON-serialisable.
    """
    from . import __version__

    output_path = Path(output_path)
    if not output_path.is_file():
        raise InputNotFoundError("cannot write provenance for a file that does not exist", path=output_path)
    models = dict(model_ids) if isinstance(model_ids, Mapping) else list(model_ids)
    record = {
        "format_version": FORMAT_VERSION,
        "output": {"path": output_path.name, "sha256": sha256_file(output_path), "bytes": output_path.stat().st_size},
        "created_utc": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "software": {"name": "voicetwin", "version": __version__},
        "voice_id": voice_id,
        "render_id": render_id,
        "models": models,
        "consent": _consent_entry(consent_ref),
        "inputs": [_describe_input(i) for i in inputs],
        "extra": dict(extra or {}),
    }
    path = sidecar_path(output_path)
    write_json(path, record)
    return path


@dataclass(frozen=True)
class FinalizedOutput:
    """What ``finalize_output`` wrote."""

    path: Path
    provenance: Path
    render_id: str
    payload: dict  # the watermark payload ({"voice", "render", "hex"})
    verified: bool | None  # the mark was found again in the saved file (None: too short to check)


def finalize_output(
    audio: np.ndarray,
    sample_rate: int,
    path: str | Path,
    voice_id: str,
    render_id: str | None = None,
    inputs: Iterable = (),
    model_ids: Iterable[str] | Mapping[str, str] = (),
    consent=None,
    extra: Mapping | None = None,
    key: str | None = None,
    verify: bool = True,
) -> FinalizedOutput:
    """Watermark ``audio``, save it to ``path`` atomically and write its provenance sidecar.

    Args:
        audio: float ``(samples,)`` or ``(channels, samples)`` in [-1, 1].
        sample_rate: Hz (>= 16 kHz; lower rates are resampled to 16 kHz first).
        path: output file; the format follows the extension (wav, flac, mp3, m4a...).
        voice_id: the voice's id (hashed into the mark's 16-bit voice field).
        render_id: id of this render (default: a fresh one), hashed into the mark's 24-bit render field.
        inputs, model_ids, consent, extra: recorded in the sidecar (see ``write_provenance``).
        key: watermark key (default: voicetwin's public key).
        verify: decode the saved file again and record whether the mark was found.
    """
    from .audio import load_audio, resample, save_audio
    from .watermark import DEFAULT_KEY, detect, embed, payload_for

    key = key or DEFAULT_KEY
    render_id = render_id or new_render_id()
    audio = np.asarray(audio, dtype=np.float32)
    if sample_rate < 16000:
        audio, sample_rate = resample(audio, sample_rate, 16000), 16000
    payload = payload_for(voice_id, render_id)
    marked = embed(audio, sample_rate, payload, key=key)
    peak = float(np.max(np.abs(marked))) if marked.size else 0.0
    if peak > 1.0:  # never let the file format clip the mark away
        marked = marked / peak
    path = save_audio(path, marked, sample_rate)
    verified = None
    if verify and marked.shape[-1] >= 1.5 * sample_rate:
        saved, sr = load_audio(path)
        found = detect(saved, sr, key=key)
        verified = bool(found.detected and found.payload == payload)
    info = dict(extra or {})
    info["watermark"] = {**payload.to_dict(), "key": "default" if key == DEFAULT_KEY else "custom",
                         "verified": verified}
    provenance = write_provenance(path, inputs=inputs, model_ids=model_ids, voice_id=voice_id, consent_ref=consent,
                                  render_id=render_id, extra=info)
    return FinalizedOutput(path=Path(path), provenance=provenance, render_id=render_id, payload=payload.to_dict(),
                           verified=verified)
