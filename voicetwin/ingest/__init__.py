"""Ingest: archive recordings in, a dataset of clean single-speaker clips with transcripts out.

Analysis (speech, music, noise, clipping, bandwidth), selection of the target speaker, transcripts and the
manifest are the stages of :func:`ingest`.
"""

from __future__ import annotations

from .pipeline import IngestOptions, ingest, read_transcripts, transcribe, transcribe_scored

__all__ = ["IngestOptions", "ingest", "read_transcripts", "transcribe", "transcribe_scored"]
