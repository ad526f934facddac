"""What voicetwin writes on the terminal: progress, and quiet third-party start-up chatter.

* ``progress_bar`` is the one progress bar of the package: a tqdm bar on a terminal, and plain lines (one per
  quarter of the work, and the last) when stderr is a file or a pipe, so logs hold no carriage returns.
* ``quiet_warnings`` hides named start-up warnings of a third-party import for the import only, and
  ``mute_native_stderr`` / ``unmute_native_stderr`` send what native libraries (MediaPipe, TFLite, absl) print on
  file descriptor 2 to /dev/null while Python's own ``sys.stderr`` keeps writing to the real stderr.
* ``set_verbose(True)`` (the CLI's ``--verbose``, or ``VOICETWIN_VERBOSE=1``) turns both off.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

VERBOSE_ENV = "VOICETWIN_VERBOSE"
PKG_RESOURCES_WARNING = "pkg_resources is deprecated"  # pyworld imports pkg_resources for its version string


def is_verbose() -> bool:
    """True when third-party warnings and native logs should be shown (``VOICETWIN_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def set_verbose(verbose: bool) -> None:
    """Show (True) or hide (False) third-party start-up chatter, here and in worker processes started later."""
    if verbose:
        os.environ[VERBOSE_ENV] = "1"
    else:
        os.environ.pop(VERBOSE_ENV, None)


@contextlib.contextmanager
def quiet_warnings(*messages: str) -> Iterator[None]:
    """Hide warnings whose message starts with one of ``messages`` inside the block only (an import)."""
    if is_verbose():
        yield
        return
    with warnings.catch_warnings():
        for message in messages:
            warnings.filterwarnings("ignore", message=message)
        yield


# --- native libraries' stderr ----------------------------------------------------------------------------------

_native_lock = threading.Lock()
_native: dict[str, Any] = {"depth": 0, "saved": None, "proxy": None}


class _RealStderr:
    """``sys.stderr`` while file descriptor 2 is muted: Python's writes go to the real stderr (a copy of its
    descriptor); once unmuted, to the stream it stood in for."""

    def __init__(self, real, fd: int):
        self._real, self._fd = real, fd
        self.encoding = getattr(real, "encoding", None) or "utf-8"
        self.errors = "backslashreplace"

    def write(self, text: str) -> int:
        fd = self._fd
        if fd is not None:
            data = text.encode(self.encoding, "backslashreplace")
            try:
                while data:
                    data = data[os.write(fd, data):]
                return len(text)
            except OSError:  # unmuted meanwhile
                pass
        return self._real.write(text)

    def flush(self) -> None:
        if self._fd is None:
            self._real.flush()

    def isatty(self) -> bool:
        fd = self._fd
        return os.isatty(fd) if fd is not None else self._real.isatty()

    def fileno(self) -> int:
        fd = self._fd
        return fd if fd is not None else self._real.fileno()

    def release(self) -> None:
        self._fd = None

    def __getattr__(self, name: str):
        return getattr(self._real, name)


def _is_fd2(stream) -> bool:
    try:
        return stream is not None and stream.fileno() == 2
    except (AttributeError, OSError, ValueError):
        return False


def mute_native_stderr() -> bool:
    """Start sending file descriptor 2 to /dev/null, keeping Python's ``sys.stderr`` on the real stderr.

    Nested calls are counted; each returns True when it muted (pair it with ``unmute_native_stderr``) and False
    when it did nothing (verbose, or no file descriptor 2)."""
    if is_verbose():
        return False
    with _native_lock:
        if _native["depth"] == 0:
            try:
                saved = os.dup(2)
            except OSError:
                return False
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 2)
            os.close(null)
            proxy = None
            if _is_fd2(sys.stderr):
                proxy = _RealStderr(sys.stderr, saved)
                sys.stderr = proxy
            _native.update(saved=saved, proxy=proxy)
        _native["depth"] += 1
        return True


def unmute_native_stderr() -> None:
    """Undo one ``mute_native_stderr`` that returned True."""
    with _native_lock:
        if _native["depth"] == 0:
            return
        _native["depth"] -= 1
        if _native["depth"]:
            return
        proxy = _native["proxy"]
        if proxy is not None:
            proxy.release()  # a bar that kept it writes on through the real stream
            if sys.stderr is proxy:
                sys.stderr = proxy._real
        os.dup2(_native["saved"], 2)
        os.close(_native["saved"])
        _native.update(saved=None, proxy=None)


# --- progress ----------------------------------------------------------------------------------------------------

def on_terminal(stream=None) -> bool:
    """Whether ``stream`` (default: stderr) is a terminal, where bars may redraw themselves."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@functools.lru_cache(maxsize=1)
def _line_bar_class():
    from tqdm import tqdm

    class LineBar(tqdm):
        """A tqdm bar that prints a plain line at the start, at each quarter of the work and at the end."""

        STEPS = 4  # lines per known total (plus the start)
        EVERY = 60.0  # seconds between lines when the total is unknown

        def __init__(self, *args, **kwargs):
            self._printed: tuple | None = None
            self._step = -1
            super().__init__(*args, **kwargs)

        def _text(self) -> str:
            desc = (self.desc or "").strip().rstrip(":")
            count = f"{self.n:g}/{self.total:g}" if self.total else f"{self.n:g}"
            unit = f" {self.unit}" if self.unit and self.unit != "it" else ""
            share = f" ({100 * self.n / self.total:.0f}%)" if self.total else ""
            if self.unit == "%" and self.total:  # a bar counting per cent already says the share
                count, unit, share = f"{100 * self.n / self.total:.0f}%", "", ""
            post = f" [{self.postfix}]" if self.postfix else ""
            elapsed = self._time() - self.start_t if hasattr(self, "start_t") else 0.0
            return f"{desc}: {count}{unit}{share}{post}, {elapsed:.0f} s".lstrip(": ")

        def display(self, msg=None, pos=None):
            if msg == "":  # tqdm clearing its line: there is nothing to clear in a log
                return True
            if self.total:
                step = int(self.STEPS * min(self.n, self.total) / self.total)
            else:
                elapsed = self._time() - self.start_t if hasattr(self, "start_t") else 0.0
                step = int(elapsed // self.EVERY)
            state = (self.n, self.total, self.postfix)
            if step == self._step and not getattr(self, "_closing", False) or state == self._printed:
                return True
            self._step, self._printed = step, state
            self.fp.write(self._text() + "\n")
            with contextlib.suppress(Exception):
                self.fp.flush()
            return True

        def clear(self, nolock=False):
            pass

        def moveto(self, n):
            pass

        def close(self):
            if self.disable:
                return
            self._closing = True
            with contextlib.suppress(ValueError):  # the stream was closed
                self.display()
            self.fp = _NullStream()  # tqdm's own close writes "\n" or "\r"
            super().close()

    return LineBar


class _NullStream:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def close_bars() -> None:
    """Close every open progress bar (before an error message, so the message starts on a line of its own)."""
    tqdm_module = sys.modules.get("tqdm.std")
    if tqdm_module is None:
        return
    for bar in list(getattr(tqdm_module.tqdm, "_instances", [])):
        with contextlib.suppress(Exception):
            bar.close()


def progress_bar(iterable=None, *, total: float | None = None, desc: str | None = None, unit: str = "it",
                 leave: bool = True, enabled: bool = True, file=None, **kwargs):
    """A progress bar over ``iterable`` (or updated by hand up to ``total``) on ``file`` (default: stderr).

    On a terminal (or in a notebook) a tqdm bar; otherwise plain lines, one per quarter of the work and one at the
    end, with no carriage returns. ``enabled=False`` gives a bar that prints nothing. Always a tqdm instance, so
    code that follows open bars (the demo's job monitor) sees it either way."""
    stream = file if file is not None else sys.stderr
    if not enabled or on_terminal(stream) or "ipykernel" in sys.modules:
        from tqdm.auto import tqdm as cls
    else:
        cls = _line_bar_class()
    return cls(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not enabled, file=stream, **kwargs)


__all__ = ["PKG_RESOURCES_WARNING", "close_bars", "is_verbose", "mute_native_stderr", "on_terminal", "progress_bar", "quiet_warnings",
           "set_verbose", "unmute_native_stderr"]
