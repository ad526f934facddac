"""Speaker profiles kept with their dataset: a dataset is enrolled once per encoder, then read back.

    encoder = SpeakerEncoder.load()
    profile = dataset_profile(encoder, "dataset/")   # enrols the kept clips, or reads the profile cached earlier
    profile = load_profile("profile.npy", encoder)   # a profile saved with numpy.save (e.g. the quickstart's)

The cache is ``DATASET/speaker_profile.<encoder tag>.json``, next to the manifest, written atomically. It holds the
encoder's identity, a key over the kept clips (their paths, sizes and modification times) and the
``(embedding_size,)`` profile. A clip added, removed, re-kept or re-written changes the key and the dataset is
enrolled again; a dataset folder that cannot be written to is enrolled every time (nothing fails).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError, InputNotFoundError
from ..files import write_json
from ..manifest import dataset_clips

if TYPE_CHECKING:
    from .encoder import SpeakerEncoder

CACHE_VERSION = 1
CACHE_PREFIX = "speaker_profile"


def encoder_identity(encoder: SpeakerEncoder) -> str:
    """What the cache is keyed by: the encoder's name (``"ge2e"``), or its resolved directory or file with the
    size and modification time of its weights (a re-trained encoder in the same folder is a new encoder)."""
    source = Path(str(encoder.source))
    if not source.exists():
        return str(encoder.source)
    weights = source / "model.safetensors" if source.is_dir() else source
    try:
        stat = weights.stat()
        return f"{source.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    except OSError:
        return str(source.resolve())


def cache_path(dataset: str | Path, encoder: SpeakerEncoder) -> Path:
    """``DATASET/speaker_profile.<tag>.json``: the tag is the encoder's name when it is a plain name, else a short
    hash of its path."""
    name = str(encoder.source)
    tag = name if re.fullmatch(r"[A-Za-z0-9_-]{1,40}", name) else \
        "encoder-" + hashlib.sha1(str(Path(name).resolve()).encode()).hexdigest()[:12]
    return Path(dataset) / f"{CACHE_PREFIX}.{tag}.json"


def clips_key(dataset: str | Path, clips: list[Path], identity: str) -> str:
    """A hash over the encoder identity and each kept clip's path (relative to the dataset), size and mtime."""
    h = hashlib.sha256(f"{CACHE_VERSION}|{identity}".encode())
    root = Path(dataset)
    for clip in clips:
        try:
            stat = clip.stat()
        except OSError as exc:
            raise InputNotFoundError("a kept clip of the dataset is missing", path=clip,
                                     fix="re-run the ingest, or remove the clip from manifest.jsonl") from exc
        try:
            name = clip.relative_to(root).as_posix()
        except ValueError:
            name = str(clip)
        h.update(f"\n{name}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return h.hexdigest()


def _read_cache(path: Path, identity: str, key: str, size: int) -> np.ndarray | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("version") != CACHE_VERSION or data.get("encoder") != identity or data.get("key") != key:
            return None
        profile = np.asarray(data["profile"], dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing, stale or unreadable: enrol again
    return profile if profile.shape == (size,) and np.all(np.isfinite(profile)) else None


def dataset_profile(encoder: SpeakerEncoder, dataset: str | Path, cache: bool = True) -> np.ndarray:
    """The ``(embedding_size,)`` unit-vector profile of a dataset's kept clips (``SpeakerEncoder.enroll``).

    With ``cache`` it is read from ``cache_path(dataset, encoder)`` when the key still matches the kept clips, and
    written there after enrolling otherwise.
    """
    dataset = Path(dataset)
    clips = [wav for _, wav in dataset_clips(dataset)]
    if not clips:
        raise InputError("dataset has no kept clips", path=dataset, fix="ingest recordings of the person first")
    if not cache:
        return encoder.enroll(clips)
    identity = encoder_identity(encoder)
    key = clips_key(dataset, clips, identity)
    path = cache_path(dataset, encoder)
    size = encoder.config.embedding_size
    profile = _read_cache(path, identity, key, size)
    if profile is not None:
        return profile
    profile = encoder.enroll(clips)
    try:
        write_json(path, {"version": CACHE_VERSION, "encoder": identity, "key": key, "clips": len(clips),
                          "profile": [float(v) for v in profile]}, indent=None)
    except OSError:
        pass  # a read-only dataset: the profile is simply not kept
    return profile


def load_profile(path: str | Path, encoder: SpeakerEncoder | None = None) -> np.ndarray:
    """A saved profile: a ``.npy`` file holding one embedding (``numpy.save``), or a cache file written by
    ``dataset_profile``. Returns a ``(embedding_size,)`` unit vector; the size is checked against ``encoder``."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError("no such profile file", path=path, fix="check the path")
    try:
        if path.suffix.lower() == ".json":
            profile = np.asarray(json.loads(path.read_text(encoding="utf-8"))["profile"], dtype=np.float32)
        else:
            profile = np.asarray(np.load(path, allow_pickle=False), dtype=np.float32)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not a speaker profile ({exc})", path=path,
                         fix="pass a .npy file of one embedding, as numpy.save writes it") from exc
    size = encoder.config.embedding_size if encoder is not None else profile.size
    norm = float(np.linalg.norm(profile)) if profile.size else 0.0
    if profile.ndim != 1 or profile.shape[0] != size or not np.isfinite(norm) or norm == 0.0:
        raise InputError(f"not a speaker profile: expected {size} numbers, found an array of shape {profile.shape}",
                         path=path, fix="pass a profile made with the same --encoder")
    return (profile / norm).astype(np.float32)


__all__ = ["cache_path", "clips_key", "dataset_profile", "encoder_identity", "load_profile"]
