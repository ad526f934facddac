"""What the voice's two trainings share: reproducible settings, resumable checkpoints, progress per stage.

Reproducible: ``deterministic(threads)`` runs a training with torch's deterministic algorithms on a fixed number of
threads. With the seed, the data order and the number of steps fixed, two trainings on the same data give the same
weights bit for bit on the same machine and torch build; a different thread count changes the order of floating
point sums inside matrix products and convolutions, and so the last bits of the weights (then the weights differ,
as they do across CPU types and torch versions).

Resumable: ``save_training_state`` writes a training state (weights, optimiser, schedule, random generators, step)
atomically; ``load_training_state`` reads it back. A training resumed from a checkpoint ends with the same weights as
one that was never interrupted.

Progress: ``Stage`` shows one stage of a long job with the package's progress bar (``voicetwin.console``: a tqdm
bar on a terminal, plain lines in logs) and reports ``(stage, done, total)`` to a callback (the CLI, the demo).
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import ConfigError
from .files import atomic_path, write_json

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


def save_training_state(path: str | Path, state: dict) -> None:
    """Write a training state (tensors, numbers, lists, random generator states) to ``path`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str | Path, fingerprint: str) -> dict | None:
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


class BuildState:
    """A folder (``VOICE/.build``) holding what an interrupted build needs to continue: which stages finished, the
    training checkpoints and cached features. ``resume``: keep what is there when it was written for the same
    ``fingerprint`` (``ConfigError`` when for another); without it, start afresh. ``close()`` when the build ends."""

    def __init__(self, path: str | Path, fingerprint: str, resume: bool, say: Callable[[str], None] = print):
        import json

        self.path, self.fingerprint, self.resumed = Path(path), fingerprint, False
        marker = self.path / "state.json"
        saved = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else None
        if resume and saved is not None and saved.get("fingerprint") != fingerprint:
            raise ConfigError("the interrupted build used another dataset or other options", path=self.path,
                              fix="give the same dataset and options with --resume, or build without --resume")
        if resume and saved is not None:
            self.resumed = True
            self.done = set(saved.get("finished", []))
            say(f"resuming the interrupted build ({', '.join(sorted(self.done)) or 'no stage'} finished)")
        else:
            if resume:
                say("nothing to resume here: building from the start")
            shutil.rmtree(self.path, ignore_errors=True)
            self.done = set()
        self.path.mkdir(parents=True, exist_ok=True)
        self._write()

    def _write(self) -> None:
        write_json(self.path / "state.json", {"fingerprint": self.fingerprint, "finished": sorted(self.done)})

    def finished(self, stage: str) -> bool:
        return stage in self.done

    def finish(self, stage: str) -> None:
        self.done.add(stage)
        self._write()

    def close(self) -> None:
        """The build is done: nothing to resume."""
        shutil.rmtree(self.path, ignore_errors=True)


class Stage:
    """Progress of one stage of ``total`` steps: ``with Stage("training voice", 3000, bar=True) as s: s.update()``.

    ``bar``: show it (``voicetwin.console.progress_bar``: a tqdm bar on a terminal, plain lines in logs); ``hook``:
    called with ``(name, done, total)`` after every update. ``done`` starts at ``start`` (a resumed stage)."""

    def __init__(self, name: str, total: int, bar: bool = False, hook: Hook | None = None, start: int = 0):
        self.name, self.total, self.done, self.hook = name, max(int(total), 0), int(start), hook
        self._bar = None
        if bar:
            from .console import progress_bar

            self._bar = progress_bar(total=self.total, initial=self.done, desc=name, unit="step", leave=False)

    def __enter__(self) -> "Stage":
        return self

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            self._bar.update(n)
        if self.hook is not None:
            self.hook(self.name, self.done, self.total)

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()


def stage_items(items, name: str, bar: bool = False, hook: Hook | None = None):
    """Iterate ``items`` (a sized iterable) inside a ``Stage``."""
    items = list(items)
    with Stage(name, len(items), bar, hook) as stage:
        for item in items:
            yield item
            stage.update()


__all__ = ["BuildState", "Hook", "Stage", "deterministic", "load_training_state", "save_training_state", "stage_items"]
