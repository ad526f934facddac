"""What the voice's two trainings share: reproducible settings, resumable checkpoints, progress per stage.

Reproducible: ``deterministic(threads)`` runs a training with torch's deterministic algorithms on a fixed number of
threads. With the seed, the data order and the number of steps fixed, two trainings on the same data give the same
weights bit for bit on the same machine and torch build; a different thread count changes the order of floating
point sums inside matrix products and convolutions, and so the last bits of the weights (then the weights differ,
as they do across CPU types and torch versions).

Resumable: ``save_checkpoint`` writes a training state (weights, optimiser, schedule, random generators, step)
atomically; ``load_checkpoint`` reads it back. A training resumed from a checkpoint ends with the same weights as
one that was never interrupted.

Progress: ``Stage`` shows one stage of a long job as a tqdm bar on a terminal, as a plain line every 10 % when
stderr is not a terminal (logs, CI), and reports ``(stage, done, total)`` to a callback (the CLI, the demo).
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ConfigError
from .files import atomic_path

Hook = Callable[[str, int, int], None]  # (stage, done, total)


@contextlib.contextmanager
def deterministic(threads: int = 1) -> Iterator[None]:
    """Inside the block torch uses ``threads`` threads and only deterministic algorithms (where an operation has no
    deterministic implementation, torch raises rather than silently differ); both are restored afterwards."""
    import torch

    saved_threads = torch.get_num_threads()
    saved_mode = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(saved_mode)
        torch.set_num_threads(saved_threads)


def save_checkpoint(path: str | Path, state: dict) -> None:
    """Write a training state (tensors, numbers, lists, random generator states) to ``path`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path, fingerprint: str) -> dict | None:
    """The training state at ``path`` when it exists and was written for ``fingerprint`` (the same data and
    settings), None when there is none; ``ConfigError`` when it belongs to other data or settings."""
    import torch

    path = Path(path)
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("fingerprint") != fingerprint:
        raise ConfigError("the interrupted build used other data or settings", path=path,
                          fix="build again without --resume to start over")
    return state


class Stage:
    """Progress of one stage of ``total`` steps: ``with Stage("training voice", 3000, bar=True) as s: s.update()``.

    ``bar``: show it (a tqdm bar when stderr is a terminal, else a line every 10 %); ``hook``: called with
    ``(name, done, total)`` after every update. ``done`` starts at ``start`` (a resumed stage)."""

    def __init__(self, name: str, total: int, bar: bool = False, hook: Hook | None = None, start: int = 0):
        self.name, self.total, self.done, self.hook = name, max(int(total), 0), int(start), hook
        self._tqdm = None
        self._plain = bar and not sys.stderr.isatty()
        self._next_line = 0.0
        self._started = time.time()
        if bar:  # off a terminal the bar draws nowhere, but code that follows open tqdm bars (jobs) still sees it
            from tqdm import tqdm

            self._tqdm = tqdm(total=self.total, initial=self.done, desc=name, unit="", leave=False,
                              dynamic_ncols=True, file=io.StringIO() if self._plain else None)

    def __enter__(self) -> "Stage":
        if self._plain:
            self._line()
        return self

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self._tqdm is not None:
            self._tqdm.update(n)
            if postfix:
                self._tqdm.set_postfix(postfix, refresh=False)
        if self._plain and (self.done >= self.total or self.done / max(self.total, 1) >= self._next_line):
            self._line(postfix)
        if self.hook is not None:
            self.hook(self.name, self.done, self.total)

    def _line(self, postfix: dict | None = None) -> None:
        extra = "".join(f", {k} {v}" for k, v in (postfix or {}).items())
        print(f"{self.name}: {self.done}/{self.total} ({time.time() - self._started:.0f} s{extra})", file=sys.stderr,
              flush=True)
        self._next_line = self.done / max(self.total, 1) + 0.1

    def __exit__(self, *exc) -> None:
        if self._tqdm is not None:
            self._tqdm.close()


def stage_items(items, name: str, bar: bool = False, hook: Hook | None = None):
    """Iterate ``items`` (a sized iterable) inside a ``Stage``."""
    items = list(items)
    with Stage(name, len(items), bar, hook) as stage:
        for item in items:
            yield item
            stage.update()


__all__ = ["Hook", "Stage", "deterministic", "load_checkpoint", "save_checkpoint", "stage_items"]
