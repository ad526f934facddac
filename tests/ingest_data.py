"""Example material shared by the ingest and CLI tests (generated once per test session)."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_CACHE: dict[str, object] = {}


def example_archive(root: Path, minutes: float = 1.0, container: str = "mp3"):
    """A generated mixed archive (target, interviewer, guest, music, noise, silence) with its ground truth."""
    from voicetwin.examples import make_archive

    key = f"{minutes}-{container}"
    if key not in _CACHE:
        _CACHE[key] = make_archive(root / f"archive-{key}", minutes=minutes, container=container, seed=0)
    return _CACHE[key]


def encoder():
    """The pretrained GE2E encoder, loaded once."""
    if "encoder" not in _CACHE:
        from voicetwin.speaker.encoder import SpeakerEncoder

        _CACHE["encoder"] = SpeakerEncoder.load("ge2e")
    return _CACHE["encoder"]
