"""Provenance sidecars: ``<output>.provenance.json`` next to a generated file, with the hashes of the inputs, the
model and voice ids, the consent reference, the watermark's payload, the UTC time and the voicetwin version.

The render service (``voicetwin.production.render``) writes them; this module only knows their format.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from ..errors import InputError, InputNotFoundError
from ..files import sha256_file, write_json

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
    from ..consent import ConsentRecord, consent_reference, load_consent

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
    from .. import __version__

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
