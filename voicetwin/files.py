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

    Readers never see a half-written file, and a failure leaves no file behind. The file gets the permissions
    a newly created file gets under the process's umask (0644 under the usual 022), not the temporary file's 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part" + path.suffix, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            os.chmod(tmp_path, (0o777 if tmp_path.is_dir() else 0o666) & ~current_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def current_umask() -> int:
    """The process's file-mode creation mask, read without changing it where the system says it
    (``/proc/self/status``); elsewhere set and restored at once."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


def check_output_path(path: str | Path, *, directory: bool = False) -> Path:
    """Refuse, before any work, an output that could not be written. Returns ``Path(path)``.

    ``path`` is a file to write (``directory=False``) or a folder to fill (``directory=True``). Missing folders on
    the way are fine (they are made when the output is written; checking makes nothing). Raises ``OutputError``
    naming the path and the fix when a file stands where a folder is needed (or a folder where the output file
    goes), when the nearest existing folder cannot be written in (tried with a probe file, so read-only file
    systems and ACLs count, and root is not waved through), or when an existing output file is read-only.
    """
    path = Path(path)
    if path.exists():
        if directory and not path.is_dir():
            raise OutputError("the output is a file, not a folder", path=path,
                              fix="give a folder name for the output, or remove the file")
        if not directory and path.is_dir():
            raise OutputError("the output is a folder, not a file", path=path,
                              fix="give a file name, e.g. OUT/name.wav")
    folder = path if directory else (path.parent if str(path.parent) else Path("."))
    existing = folder
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot make the output's folder: {existing} is a file, not a folder", path=path,
                          fix="choose another output folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=".voicetwin-write-check.", dir=existing)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise OutputError(f"cannot write in {existing} ({reason})", path=path,
                          fix="choose a folder you can write to, or change its permissions") from exc
    os.close(fd)
    os.unlink(probe)
    if path.is_file() and not os.access(path, os.W_OK):
        raise OutputError("the output exists and is read-only", path=path, fix="choose another name")
    return path
