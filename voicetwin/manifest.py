"""Dataset manifests: one JSON line per clip.

A dataset directory holds ``clips/*.wav``, ``manifest.jsonl`` and ``report.json``. The manifest separates
the audio (path, source, times) from what is said in it (text) and from what we measured; an open
``custom`` dict takes anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import InputError, InputNotFoundError
from .files import atomic_path


@dataclass
class Clip:
    """One clip of a dataset. Times are seconds in the source file; ``path`` is relative to the dataset."""

    id: str
    path: str | None
    source: str
    start: float
    end: float
    duration: float
    sample_rate: int
    text: str | None = None
    language: str | None = None
    speaker: str | None = None
    speaker_similarity: float | None = None
    snr_db: float | None = None
    loudness_lufs: float | None = None
    clipping: float | None = None
    bandwidth_hz: float | None = None
    kept: bool = True
    reason: str = "kept"
    custom: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "Clip":
        known = {f.name for f in fields(cls)}
        extra = {k: v for k, v in data.items() if k not in known}
        clip = cls(**{k: v for k, v in data.items() if k in known})
        clip.custom.update(extra)
        return clip


def read_manifest(path: str | Path) -> list[Clip]:
    """Read ``manifest.jsonl`` (or a dataset directory containing one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "manifest.jsonl"
    if not path.exists():
        raise InputNotFoundError("no manifest.jsonl here", path=path, fix="run 'voicetwin ingest' to make a dataset")
    clips = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    clips.append(Clip.from_dict(json.loads(line)))
                except (json.JSONDecodeError, TypeError) as exc:
                    raise InputError(f"line {n} is not a valid clip record ({exc})", path=path) from exc
    return clips


def write_manifest(path: str | Path, clips: Iterable[Clip]) -> None:
    """Write the manifest atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for clip in clips:
            f.write(json.dumps(asdict(clip), ensure_ascii=False) + "\n")


def dataset_clips(dataset: str | Path, kept_only: bool = True) -> Iterator[tuple[Clip, Path]]:
    """Yield ``(clip, absolute wav path)`` for the clips of a dataset directory."""
    dataset = Path(dataset)
    for clip in read_manifest(dataset):
        if (clip.kept or not kept_only) and clip.path:
            yield clip, dataset / clip.path


def is_dataset(path: str | Path) -> bool:
    return (Path(path) / "manifest.jsonl").is_file()
