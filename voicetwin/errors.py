"""Typed errors. Every message names the file or model concerned and says how to fix it.

The CLI turns any ``VoiceTwinError`` into a one-line message on stderr and exit code 2.
"""

from __future__ import annotations

from pathlib import Path


class VoiceTwinError(Exception):
    """Base class of all errors voicetwin raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, fix: str | None = None):
        self.path = None if path is None else str(path)
        self.fix = fix
        text = f"{self.path}: {message}" if self.path else message
        if fix:
            text = f"{text} ({fix})"
        super().__init__(text)


class InputError(VoiceTwinError):
    """A file or argument the user gave cannot be used."""


class InputNotFoundError(InputError):
    """A path does not exist."""


class AudioDecodeError(InputError):
    """A file is not decodable audio or video (corrupt, text, unknown format)."""


class NoAudioStreamError(InputError):
    """A video container has no audio track."""


class EmptyAudioError(InputError):
    """The audio is empty, too short, or silent."""


class OutputError(VoiceTwinError):
    """An output cannot be written where it was asked for (missing folder, no permission, a file in the way)."""


class ConfigError(VoiceTwinError):
    """A config or options object is invalid (unknown key, bad value, wrong format version)."""


class CheckpointError(ConfigError):
    """A model directory exists but does not fit: another model type, a newer format, unknown config keys, or
    weights that do not match the config."""


class ModelNotFoundError(VoiceTwinError):
    """A model name is not in the registry and is not a local path."""


class ConsentError(VoiceTwinError):
    """A voice has no valid consent record, or the use asked for is outside its scope."""


class MissingDependencyError(VoiceTwinError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str | None = None, purpose: str | None = None):
        hint = f"pip install 'voicetwin[{extra}]'" if extra else f"pip install {module}"
        what = f" (needed for {purpose})" if purpose else ""
        super().__init__(f"the Python package '{module}' is not installed{what}", fix=hint)
        self.module = module


def require(module: str, extra: str | None = None, purpose: str | None = None):
    """Import ``module`` or raise ``MissingDependencyError`` with an install hint."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(module.split(".")[0], extra, purpose) from exc
