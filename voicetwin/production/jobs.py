"""Background jobs whose state lives on disk, so any process can watch them (a reloaded web page, a new server).

A job is a folder ``ROOT/<id>/``:

- ``job.json``: what to run (a ``package.module:function`` or ``/path/file.py:function`` target), its JSON
  parameters, a kind and a title;
- ``state.json``: status, progress (0-1), the step being done, then the result or the error; rewritten atomically;
- ``log.txt``: everything the job printed (progress bars, tracebacks).

``submit`` starts ``python -m voicetwin.production.jobs ROOT/<id>`` in its own process and returns at once; ``read`` and
``list_jobs`` report what it is doing from anywhere, any time later. The target is called as ``function(job)`` with a
``JobContext`` (``job.params``, ``job.dir``, ``job.step(name, start, end)``) and returns a JSON-serialisable dict.
Progress also follows the tqdm bars the work opens (the library's own ``progress=True`` bars): within a step, the
innermost open bar's fraction moves the job from the step's ``start`` to its ``end``.

A ``VoiceTwinError`` ends the job with its one-line message as the error; any other exception ends it with
"unexpected error: ..." (the traceback goes to log.txt only). A job whose process vanished (machine restarted,
process killed) reads as ``interrupted``.

    state = submit("project/jobs", "ingest", "mypkg.tasks:ingest", {"sources": ["a.mp3"]})
    state = read("project/jobs", state.id)    # state.status, state.progress, state.step, state.result
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InputNotFoundError, VoiceTwinError
from ..files import write_json

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
INTERRUPTED = "interrupted"
CANCELLED = "cancelled"
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, FAILED, INTERRUPTED, CANCELLED)

_CHILDREN: dict[str, subprocess.Popen] = {}  # job id -> process started by this process (reaped on read)


@dataclass
class JobState:
    """What a job is doing. ``progress`` in [0, 1]; times in seconds since the epoch."""

    id: str
    kind: str
    title: str = ""
    status: str = QUEUED
    progress: float = 0.0
    step: str = ""
    detail: str = ""  # the open progress bar, e.g. "training 1200/3000"
    result: dict | None = None
    error: str | None = None
    created: float = 0.0
    started: float | None = None
    finished: float | None = None
    pid: int | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def elapsed(self) -> float:
        if self.started is None:
            return 0.0
        return (self.finished or time.time()) - self.started

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class JobContext:
    """Handed to the job's function: its parameters, its folder, and the way to say what it is doing."""

    dir: Path
    params: dict
    state: JobState
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _span: tuple[float, float] = (0.0, 1.0)

    def step(self, name: str, start: float | None = None, end: float | None = None) -> None:
        """Start a step: ``name`` in plain words, the job's progress going from ``start`` to ``end`` (0-1)
        while the step's progress bars advance."""
        with self._lock:
            lo = self.state.progress if start is None else float(start)
            hi = lo if end is None else float(end)
            self._span = (lo, max(lo, hi))
            self.state.step = name
            self.state.detail = ""
            self.state.progress = lo
            self._save()

    def report(self, fraction: float, detail: str = "") -> None:
        """Progress within the current step, ``fraction`` in [0, 1]."""
        with self._lock:
            lo, hi = self._span
            self.state.progress = round(lo + (hi - lo) * min(max(float(fraction), 0.0), 1.0), 4)
            self.state.detail = detail
            self._save()

    def log(self, message: str) -> None:
        """A line in log.txt (and the step's detail)."""
        print(message, flush=True)
        with self._lock:
            self.state.detail = message
            self._save()

    def _save(self) -> None:
        write_json(self.dir / "state.json", self.state.to_dict())


# --------------------------------------------------------------------------------------------------- reading


def _job_dir(root: str | Path, job_id: str) -> Path:
    return Path(root) / job_id


def _load_state(job_dir: Path) -> JobState:
    path = job_dir / "state.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputNotFoundError("no such job", path=job_dir) from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"the job's state is unreadable ({exc})", path=path) from exc
    known = JobState.__dataclass_fields__
    return JobState(**{k: v for k, v in data.items() if k in known})


def _process_alive(state: JobState, job_dir: Path) -> bool:
    child = _CHILDREN.get(state.id)
    if child is not None:
        if child.poll() is None:
            return True
        _CHILDREN.pop(state.id, None)
        return False
    pid = _pid(state, job_dir)
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a finished process not yet reaped, or the pid reused by a process that started after the job did
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(int(line.split()[1]) for line in open("/proc/stat") if line.startswith("btime"))
        started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return True  # no /proc: trust the pid
    return fields[0] != "Z" and started <= (state.started or time.time()) + 2.0


def _pid(state: JobState, job_dir: Path) -> int | None:
    """The job's process: from its state, or (before the process wrote its state) from the pid file."""
    if state.pid:
        return state.pid
    try:
        return int((job_dir / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def read(root: str | Path, job_id: str) -> JobState:
    """The job's current state. A queued or running job whose process is gone reads as ``interrupted``."""
    job_dir = _job_dir(root, job_id)
    state = _load_state(job_dir)
    state.pid = _pid(state, job_dir)
    child = _CHILDREN.get(job_id)
    if child is not None and not state.active and child.poll() is not None:
        _CHILDREN.pop(job_id, None)  # reaped: no zombie left behind
    if state.active and not _process_alive(state, job_dir):
        time.sleep(0.05)  # the process may have just written its last state
        state = _load_state(job_dir)
        if state.active and not _process_alive(state, job_dir):
            state.status = INTERRUPTED
            state.error = ("the job stopped before finishing (its process ended: the server or the machine may "
                           "have been restarted); start it again")
            state.finished = time.time()
            write_json(job_dir / "state.json", state.to_dict())
    return state


def list_jobs(root: str | Path, kind: str | None = None) -> list[JobState]:
    """All jobs under ``root`` (newest first), optionally only those of one ``kind``."""
    root = Path(root)
    if not root.is_dir():
        return []
    states = []
    for d in root.iterdir():
        if (d / "state.json").exists():
            try:
                state = read(root, d.name)
            except VoiceTwinError:
                continue
            if kind is None or state.kind == kind:
                states.append(state)
    return sorted(states, key=lambda s: (s.created, s.id), reverse=True)


def latest(root: str | Path, kind: str) -> JobState | None:
    """The newest job of ``kind`` under ``root``, or None when there is none."""
    jobs = list_jobs(root, kind)
    return jobs[0] if jobs else None


def wait(root: str | Path, job_id: str, timeout: float = 600.0, poll: float = 0.2) -> JobState:
    """Block until the job has finished (or ``timeout`` seconds have passed) and return its state."""
    deadline = time.time() + timeout
    while True:
        state = read(root, job_id)
        if not state.active or time.time() > deadline:
            return state
        time.sleep(poll)


def log_text(root: str | Path, job_id: str, tail: int = 4000) -> str:
    """The last ``tail`` characters of the job's log, progress-bar redraws collapsed."""
    path = _job_dir(root, job_id) / "log.txt"
    if not path.exists():
        return ""
    text = path.read_text(encoding="utf-8", errors="replace")[-tail * 4:]
    lines = [line.split("\r")[-1] for line in text.splitlines()]
    return "\n".join(lines)[-tail:]


# --------------------------------------------------------------------------------------------------- starting


def _new_id(kind: str) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{kind}-{secrets.token_hex(3)}"


def submit(root: str | Path, kind: str, target: str, params: dict | None = None, title: str = "",
           background: bool = True) -> JobState:
    """Create a job under ``root`` and start it.

    ``target``: ``package.module:function`` or ``/path/to/file.py:function``; ``params`` must be JSON-serialisable.
    With ``background=False`` the job runs in this process before ``submit`` returns (same state files).
    """
    if ":" not in target:
        raise ConfigError(f"job target {target!r} must look like 'module:function' or 'file.py:function'")
    params = dict(params or {})
    try:
        json.dumps(params)
    except TypeError as exc:
        raise ConfigError(f"job parameters must be JSON-serialisable ({exc})") from exc
    job_id = _new_id(kind)
    job_dir = _job_dir(root, job_id)
    job_dir.mkdir(parents=True, exist_ok=False)
    write_json(job_dir / "job.json", {"id": job_id, "kind": kind, "title": title, "target": target, "params": params})
    state = JobState(id=job_id, kind=kind, title=title, created=time.time(), step="waiting to start")
    write_json(job_dir / "state.json", state.to_dict())
    if not background:
        run(job_dir)
        return read(root, job_id)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_MININTERVAL="0.5")
    with open(job_dir / "log.txt", "ab") as log:
        child = subprocess.Popen([sys.executable, "-m", "voicetwin.production.jobs", str(job_dir.resolve())], stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    _CHILDREN[job_id] = child
    # state.json belongs to the child from now on; until it writes its pid there, this file tells who runs the job
    (job_dir / "pid").write_text(f"{child.pid}\n")
    return read(root, job_id)


def cancel(root: str | Path, job_id: str) -> JobState:
    """Stop a queued or running job (its process group gets SIGTERM)."""
    state = read(root, job_id)
    if not state.active:
        return state
    pid = _pid(state, _job_dir(root, job_id))
    if pid:
        try:
            os.killpg(pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        child = _CHILDREN.pop(job_id, None)
        if child is not None:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    state = _load_state(_job_dir(root, job_id))
    if state.active:
        state.status, state.error, state.finished = CANCELLED, "stopped by the user", time.time()
        write_json(_job_dir(root, job_id) / "state.json", state.to_dict())
    return state


# --------------------------------------------------------------------------------------------------- running


def load_target(target: str) -> Callable[[JobContext], Any]:
    """Import ``module:function`` or ``/path/file.py:function``."""
    where, _, name = target.rpartition(":")
    if where.endswith(".py"):
        path = Path(where)
        if not path.exists():
            raise InputNotFoundError("the job's code file is missing", path=path)
        spec = importlib.util.spec_from_file_location(f"_voicetwin_job_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
        sys.path.insert(0, str(path.parent))  # its sibling modules import as they do when it is run directly
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(where)
    func = getattr(module, name, None)
    if not callable(func):
        raise ConfigError(f"{where} has no function {name!r}")
    return func


def _watch_bars(ctx: JobContext, stop: threading.Event) -> None:
    """Follow the innermost open tqdm bar and report its fraction within the current step."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return
    last = None
    while not stop.wait(0.5):
        bars = [b for b in list(getattr(tqdm, "_instances", [])) if not getattr(b, "disable", False)]
        if not bars:
            continue
        bar = max(bars, key=lambda b: abs(getattr(b, "pos", 0)))
        n, total, desc = bar.n, bar.total, (bar.desc or "").rstrip(": ")
        if (n, total, desc) == last:
            continue
        last = (n, total, desc)
        if total:
            ctx.report(n / total, f"{desc} {n:g}/{total:g}".strip())
        else:
            with ctx._lock:
                ctx.state.detail = f"{desc} {n:g}".strip()
                ctx._save()


def run(job_dir: str | Path) -> JobState:
    """Run the job in ``job_dir`` in this process, writing its state as it goes (the worker's entry point)."""
    job_dir = Path(job_dir)
    spec = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    state = _load_state(job_dir)
    state.status, state.started, state.pid, state.step = RUNNING, time.time(), os.getpid(), "starting"
    ctx = JobContext(dir=job_dir, params=spec.get("params", {}), state=state)
    ctx._save()
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_bars, args=(ctx, stop), daemon=True)
    watcher.start()
    try:
        result = load_target(spec["target"])(ctx)
        json.dumps(result)  # a result that cannot be stored is a bug in the job's function
    except VoiceTwinError as exc:
        _finish(ctx, stop, FAILED, error=str(exc))
    except KeyboardInterrupt:
        _finish(ctx, stop, CANCELLED, error="stopped by the user")
    except Exception as exc:
        with open(job_dir / "log.txt", "a", encoding="utf-8") as log:
            log.write(traceback.format_exc())
        details = job_dir / "log.txt"
        _finish(ctx, stop, FAILED, error=f"unexpected error: {type(exc).__name__}: {exc} (details in {details})")
    else:
        _finish(ctx, stop, DONE, result=result)
    return ctx.state


def _finish(ctx: JobContext, stop: threading.Event, status: str, result: dict | None = None,
            error: str | None = None) -> None:
    stop.set()
    with ctx._lock:
        ctx.state.status, ctx.state.result, ctx.state.error = status, result, error
        ctx.state.finished = time.time()
        if status == DONE:
            ctx.state.progress, ctx.state.step, ctx.state.detail = 1.0, "finished", ""
        ctx._save()


def _terminate(_signum, _frame) -> None:
    raise KeyboardInterrupt("stopped")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m voicetwin.production.jobs JOB_DIR", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    try:
        os.nice(5)  # background work yields to the web server
    except OSError:
        pass
    state = run(argv[0])
    return 0 if state.status == DONE else 1


if __name__ == "__main__":
    sys.exit(main())
