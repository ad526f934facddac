"""Small file helpers: atomic writes, hashing, finding media files."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputError, InputNotFoundError, OutputError

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aac", ".aif", ".aiff")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v")
MEDIA_EXTENSIONS = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only if the block succeeds.

    Readers never see a half-written file, and a failure leaves no file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_json(path: str | Path, obj, indent: int | None = 2) -> None:
    """Write JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def write_text(path: str | Path, text: str) -> None:
    """Write text atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def expand_media(paths: Iterable[str | Path], extensions: tuple[str, ...] = MEDIA_EXTENSIONS) -> list[Path]:
    """Expand files and folders into a sorted list of media files.

    A folder contributes every file below it whose extension is in ``extensions``; a file given
    explicitly is kept whatever its extension (decoding decides). A missing path raises.
    """
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if not p.exists():
            raise InputNotFoundError("no such file or folder", path=p, fix="check the path")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in extensions)
            if not found:
                raise InputError(
                    "folder contains no audio or video files",
                    path=p,
                    fix=f"expected files ending in {', '.join(extensions)}",
                )
            out.extend(found)
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for p in out:
        key = p.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique


def check_output_path(path: str | Path) -> Path:
    """Refuse, before any work, an output file that could not be written: its folder is missing and cannot be made
    (a file stands in the way), is not writable, or the output itself is a folder. Creates missing folders.
    Returns the path."""
    path = Path(path)
    if path.is_dir():
        raise OutputError("the output is a folder", path=path, fix="give a file name, e.g. OUT/name.wav")
    parent = path.parent if str(path.parent) else Path(".")
    for up in [parent, *parent.parents]:
        if up.exists():
            if not up.is_dir():
                raise OutputError(f"cannot create the output's folder: {up} is a file", path=path,
                                  fix="choose another output folder")
            if not os.access(up, os.W_OK | os.X_OK):
                raise OutputError(f"no permission to write in {up}", path=path,
                                  fix="choose a folder you can write to, or change its permissions")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output's folder ({exc.strerror})", path=path,
                          fix="choose another output folder") from exc
    if path.exists() and not os.access(path, os.W_OK):
        raise OutputError("the output exists and is not writable", path=path, fix="choose another name")
    return path
