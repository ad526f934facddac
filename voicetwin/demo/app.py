"""voicetwin's demo for film producers: a web page over the public API, step by step.

    voicetwin demo --project-dir ~/voice-projects        # or: make demo; then open http://127.0.0.1:7860

1. Project & consent: open a voice that is already built (e.g. ``make quickstart``'s), or start a project for a
   new person: their name and who agreed, for what, until when, on which document.
2. Archive: upload recordings; voicetwin finds the person's speech and shows every clip, kept or rejected, and why.
3. Build the voice (a background job with a progress bar).
4. Speak & sing: a performer's take, a typed line or a song, in the voice, next to the original.
5. Lip-sync: a face-swapped clip re-rendered to the new voice.
6. Dub a scene: the scene's lines in a table (or its YAML file) and their media in, the deliverables out.

Tabs open as their step becomes possible (a project, then a dataset, then a voice), a line under the project
says what to do next, and each task has one status panel: its progress bar, or why it could not start.

Long work runs as background jobs (``voicetwin.production.jobs``) whose state is kept in the project folder: the page polls
it, so reloading the page (or restarting the server) loses nothing. Gradio is imported only when the app is built.
"""

from __future__ import annotations

import html
import sys
import threading
import time
import traceback
from collections import OrderedDict
from pathlib import Path

from ..errors import VoiceTwinError
from ..production import jobs
from . import project as P

TITLE = "voicetwin"
POLL_SECONDS = 1.0
RELATION_CHOICES = {"The person themself": "self", "Their estate": "estate", "Their heirs": "heirs"}
SCOPE_CHOICES = {"Speech (speaking, typed lines, dubbing)": "speech", "Singing": "singing"}
MODES = {"Convert a performer's take": "performance", "Type a line": "line", "Sing a song": "song"}

CSS = """
.vt-job {border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;}
.vt-step {font-weight: 600; margin-bottom: 6px;}
.vt-bar {height: 12px; background: var(--background-fill-secondary); border-radius: 6px; overflow: hidden;}
.vt-bar > div {height: 100%; background: #2f7bf6; transition: width 0.4s;}
.vt-job[data-status=done] .vt-bar > div {background: #2e9d5b;}
.vt-job[data-status=failed] .vt-bar > div, .vt-job[data-status=interrupted] .vt-bar > div {background: #d9534f;}
.vt-note {font-size: 0.9em; margin-top: 6px; opacity: 0.85;}
.vt-error {color: #c0392b; font-weight: 600; margin-top: 6px;}
"""


# --------------------------------------------------------------------------------------------------- helpers


# panels redrawn only when their value changes: a player or a table that is redrawn starts again or loses its place
PLAYERS = frozenset({"ingest.rows", "ingest.choices", "render.original", "render.result", "render.files",
                     "lipsync.video", "lipsync.files", "scene.files"})


class ShownPanels:
    """What each open page's players show now, kept by the server.

    The page polls once a second, and a poll's inputs are taken when it is sent: a cache kept in the page would be
    compared against what the page showed before the answers still on their way, and a panel could stay stale for
    good. Here the polls of one page run one at a time and record what they sent as they send it."""

    def __init__(self, pages: int = 64):
        self.pages = pages
        self._shown: OrderedDict[str, dict[str, object]] = OrderedDict()
        self._lock = threading.Lock()

    def changed(self, page: str, values: dict[str, object]) -> set[str]:
        """The names in ``values`` whose value differs from what ``page`` shows, recorded as shown from now on."""
        with self._lock:
            shown = self._shown.pop(page, {})
            self._shown[page] = shown  # most recently polled last
            while len(self._shown) > self.pages:
                self._shown.popitem(last=False)
            fresh = {name for name, value in values.items() if name not in shown or shown[name] != value}
            shown.update({name: values[name] for name in fresh})
            return fresh


REFUSED = "**Cannot do this:**"


def _fail(exc: Exception) -> str:
    return f"{REFUSED} {html.escape(str(exc))}"


def refused(message: str) -> bool:
    """Whether a handler's message says the task could not start (see ``_fail``)."""
    return (message or "").startswith(REFUSED)


def notice_for(message: str, at: float | None = None) -> dict:
    """A refusal to show in a task's status panel until a newer job replaces it (``progress_html``)."""
    text = (message or "")[len(REFUSED):].strip() if refused(message) else (message or "")
    return {"message": f"Cannot do this: {text}", "at": time.time() if at is None else at}


def _project(projects_dir: Path, slug: str | None) -> P.Project | None:
    if not slug:
        return None
    try:
        return P.open_project(projects_dir, slug)
    except VoiceTwinError:
        return None


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def progress_html(state: jobs.JobState | None, idle: str = "", notice: dict | None = None) -> str:
    """A task's one status panel: the job's step, progress bar and outcome in plain words, or, when ``notice`` (a
    refusal from ``notice_for``) is newer than the job, why the task could not start."""
    fresh = notice if notice and (state is None or notice.get("at", 0.0) > state.created) else None
    if fresh is not None and (state is None or not state.active):
        return (f'<div class="vt-job" data-status="refused"><div class="vt-error">{fresh["message"]}</div>'
                f'</div>')  # the message is escaped by _fail
    if state is None:
        return f'<div class="vt-job" data-status="none"><div class="vt-note">{html.escape(idle)}</div></div>'
    pct = int(round(100 * (state.progress or 0.0)))
    step = state.step or ""
    if state.detail and state.active:
        step = f"{step} — {state.detail}"
    status_words = {
        jobs.QUEUED: "starting…", jobs.RUNNING: f"{pct}% · {_duration(state.elapsed)} so far",
        jobs.DONE: f"finished in {_duration(state.elapsed)}", jobs.FAILED: "stopped with an error",
        jobs.INTERRUPTED: "interrupted", jobs.CANCELLED: "stopped",
    }
    title = html.escape(state.title or state.kind)
    parts = [f'<div class="vt-job" data-status="{state.status}" data-progress="{pct}" data-job="{state.id}">',
             f'<div class="vt-step">{title}: {html.escape(step)}</div>',
             f'<div class="vt-bar"><div style="width:{pct if state.status != jobs.DONE else 100}%"></div></div>',
             f'<div class="vt-note">{html.escape(status_words.get(state.status, state.status))}</div>']
    if state.error:
        parts.append(f'<div class="vt-error">{html.escape(state.error)}</div>')
    if fresh is not None:  # refused while this job runs: both show, in the one panel
        parts.append(f'<div class="vt-error">{fresh["message"]}</div>')
    parts.append("</div>")
    return "".join(parts)


def next_step(project: P.Project | None, states: list[jobs.JobState] | None = None) -> str:
    """One line saying what to do next with ``project`` (Markdown)."""
    if project is None:
        return ("**Start here:** open a voice that is already built (for example the one `make quickstart` writes "
                "to out/quickstart/voice) on **1 · Project & consent**, or create a project for a new person there.")
    running = [s for s in (jobs.list_jobs(project.jobs) if states is None else states) if s.active]
    if project.has_voice():
        return ("**Next:** the voice is ready. Type a line or convert a performer's take on **4 · Speak & sing**, "
                "or dub a scene on **6 · Dub a scene**.")
    if any(s.kind == P.BUILD for s in running):
        return "The voice is being built on **3 · Build the voice**; you can leave this page and come back."
    if project.has_dataset():
        return "**Next:** build the voice from the kept clips on **3 · Build the voice**."
    if any(s.kind == P.INGEST for s in running):
        return "The archive is being processed on **2 · Archive**."
    return "**Next:** upload the person's archive recordings on **2 · Archive**."


def gates(project: P.Project | None) -> dict[str, bool]:
    """Which tabs and buttons can work yet: a project opens the archive, build and lip-sync tabs; a processed
    archive the build button; a voice the speak and dub tabs."""
    has_project = project is not None
    has_voice = has_project and project.has_voice()
    return {"tab-archive": has_project, "tab-build": has_project, "start-build": has_project and project.has_dataset(),
            "tab-render": has_voice, "tab-lipsync": has_project, "tab-scene": has_voice,
            "update-consent": has_project}


def project_choices(projects_dir: Path) -> list[tuple[str, str]]:
    return [(p.name, p.dir.name) for p in P.list_projects(projects_dir)]


# --------------------------------------------------------------------------------------------------- handlers
# Plain functions (no web code): each takes the projects folder and the form's values and returns what to show.


def create_project(projects_dir: Path, name: str, relation: str, granted_by: str, scope: list[str],
                   productions: str, expires: str, document: str) -> tuple[str | None, str]:
    """-> (the new project's slug or None, a message)."""
    try:
        project = P.create_project(projects_dir, name, {
            "relation": RELATION_CHOICES.get(relation, relation),
            "granted_by": granted_by,
            "scope": [SCOPE_CHOICES.get(s, s) for s in scope or []],
            "productions": productions,
            "expires": expires,
            "document": document,
        })
    except VoiceTwinError as exc:
        return None, _fail(exc)
    return project.dir.name, f"**Project created.** {P.consent_summary(project)}\n\n{next_step(project)}"


def open_voice(projects_dir: Path, path: str) -> tuple[str | None, str]:
    """Open a voice folder (copied into a new project with its consent) or a project from disk.
    -> (the project's slug or None, a message)."""
    try:
        project = P.open_from_disk(projects_dir, path)
    except VoiceTwinError as exc:
        return None, _fail(exc)
    return project.dir.name, f"**Opened: {html.escape(project.name)}.** {next_step(project)}"


def update_consent(projects_dir: Path, slug: str, relation: str, granted_by: str, scope: list[str],
                   productions: str, expires: str, document: str) -> str:
    """Replace the open project's consent record (e.g. a renewed or wider consent)."""
    try:
        project = P.open_project(projects_dir, slug)
        record = P.make_consent(project.name, {
            "relation": RELATION_CHOICES.get(relation, relation), "granted_by": granted_by,
            "scope": [SCOPE_CHOICES.get(s, s) for s in scope or []], "productions": productions,
            "expires": expires, "document": document,
        })
        P.save_consent(project, record)
    except VoiceTwinError as exc:
        return _fail(exc)
    return f"**Consent updated.** {P.consent_summary(project)}"


def start_ingest(projects_dir: Path, slug: str, archive: list[str] | None, references: list[str] | None,
                 language: str) -> str:
    try:
        project = P.open_project(projects_dir, slug)
        P.save_uploads(archive, project.archive)
        P.save_uploads(references, project.references)
        if not project.archive_files():
            return _fail(VoiceTwinError("no archive recordings yet", fix="upload audio or video files first"))
        P.start(project, P.INGEST, {"language": P.LANGUAGES.get(language)}, "Processing the archive")
    except VoiceTwinError as exc:
        return _fail(exc)
    return f"Started: processing {len(project.archive_files())} recording(s)."


def start_build(projects_dir: Path, slug: str, quality: str, steps: float | None) -> str:
    try:
        project = P.open_project(projects_dir, slug)
        P.check(project, "build", record=P.load_consent(project))
        steps = int(steps) if steps else P.QUALITY.get(quality, 1500)
        if steps < 1:
            raise VoiceTwinError("training steps must be at least 1")
        P.start(project, P.BUILD, {"steps": steps}, "Building the voice")
    except VoiceTwinError as exc:
        return _fail(exc)
    return "Started: building the voice. You can leave this page and come back."


def start_render(projects_dir: Path, slug: str, mode: str, take: str | None, text: str, song: str | None,
                 lyrics: str, transpose: float, auto: bool, rate: float, language: str, production: str) -> str:
    try:
        project = P.open_project(projects_dir, slug)
        kind = MODES.get(mode, mode)
        source = take if kind == "performance" else song if kind == "song" else None
        if kind != "line" and not source:
            what = "the performer's take" if kind == "performance" else "a song (a recording, or a MIDI/MusicXML score)"
            raise VoiceTwinError(f"nothing to render: upload {what}")
        if kind == "line" and not (text or "").strip():
            raise VoiceTwinError("nothing to render: type the line the voice should say")
        folder = P.new_folder(project.renders, kind)
        inputs = P.save_uploads([source], folder) if source else []
        params = {
            "folder": str(folder), "mode": kind, "input": str(inputs[0]) if inputs else None, "text": text,
            "lyrics": lyrics, "transpose": "auto" if (kind == "song" and auto) else float(transpose or 0),
            "rate": float(rate or 1.0), "language": P.LANGUAGES.get(language), "production": production,
        }
        titles = {"performance": "Converting the take", "line": "Speaking the line", "song": "Singing the song"}
        P.start(project, P.RENDER, params, titles[kind])
    except VoiceTwinError as exc:
        return _fail(exc)
    return "Started."


def start_lipsync(projects_dir: Path, slug: str, video: str | None, audio: str | None) -> str:
    try:
        project = P.open_project(projects_dir, slug)
        if not video:
            raise VoiceTwinError("upload the face-swapped clip first")
        if not audio:
            done = [s for s in jobs.list_jobs(project.jobs, P.RENDER) if s.status == jobs.DONE and s.result]
            if not done:
                raise VoiceTwinError("no audio for the mouth: upload one, or render something in step 4 first")
            audio = done[0].result["result"]["path"]
        folder = P.new_folder(project.lipsync, "clip")
        video_copy, = P.save_uploads([video], folder)
        audio_copy, = P.save_uploads([audio], folder / "audio")
        P.start(project, P.LIPSYNC, {"folder": str(folder), "video": str(video_copy), "audio": str(audio_copy)},
                "Lip-syncing the clip")
    except VoiceTwinError as exc:
        return _fail(exc)
    return "Started."


def start_scene(projects_dir: Path, slug: str, rows, production: str, duration: str, yaml_text: str,
                files: list[str] | None) -> str:
    """Dub the scene of the Dub tab: its lines (``rows``, ``P.SCENE_COLUMNS``) merged into its YAML, with the
    uploaded media."""
    try:
        project = P.open_project(projects_dir, slug)
        text = P.scene_yaml(rows, production, duration, yaml_text)
        folder, scene = P.write_scene(project, text, files)
        P.start(project, P.SCENE, {"folder": str(folder), "scene": str(scene)}, "Dubbing the scene")
    except VoiceTwinError as exc:
        return _fail(exc)
    return "Started."


def default_character(project: P.Project | None) -> str:
    """The name the scene table gives the project's person: the first word of their name, in capitals."""
    words = (project.name if project is not None else "").split()
    return words[0].upper() if words else "VOICE"


def add_scene_line(rows, character: str = "VOICE") -> list[list[str]]:
    """The table with one more line: the same character as the last line, starting half a second after it."""
    kept = [P.scene_cells(r) for r in rows or [] if any(P.scene_cells(r))]
    start = 1.0
    if kept:
        try:
            start = float(kept[-1][3]) + 0.5
        except ValueError:
            pass
    ids = {r[0] for r in kept}
    n = len(kept) + 1
    while f"l{n}" in ids:
        n += 1
    kept.append([f"l{n}", kept[-1][1] if kept else character, f"{start:g}", f"{start + 2.5:g}", "", ""])
    return kept


def scene_preview(rows, production: str, duration: str, yaml_text: str) -> str | None:
    """The YAML of the table as it stands, or None while the table is not a valid scene yet."""
    try:
        return P.scene_yaml(rows, production, duration, yaml_text)
    except VoiceTwinError:
        return None


def scene_from_files(files: list[str] | None) -> tuple[list[list[str]], str, str, str] | None:
    """A scene file among uploaded ``files`` -> ``(rows, production, duration, its YAML)``; None when there is
    none. An unreadable one raises ``InputError``."""
    for f in files or []:
        path = Path(getattr(f, "name", f))
        if path.suffix.lower() in (".yaml", ".yml"):
            text = path.read_text(encoding="utf-8")
            rows, production, duration = P.scene_table(text)
            return rows, production, duration, text
    return None


def stop_job(projects_dir: Path, slug: str, kind: str) -> str:
    project = _project(projects_dir, slug)
    state = P.latest_job(project, kind)
    if state is None or not state.active:
        return _fail(VoiceTwinError("nothing is running"))
    jobs.cancel(project.jobs, state.id)
    return "Stopped."


# --- what each panel shows


def ingest_view(project: P.Project | None, states: list[jobs.JobState] | None = None,
                notice: dict | None = None) -> dict:
    state = P.latest_job(project, P.INGEST, states)
    view = {"progress": progress_html(state, "Upload recordings, then press the button.", notice), "report": "",
            "rows": [], "choices": []}
    if project is None or not project.has_dataset() or (state is not None and state.active):
        return view
    try:
        report = (state.result if state is not None and state.status == jobs.DONE else None) or {}
        rows = P.clip_rows(project)
    except VoiceTwinError as exc:
        view["report"] = _fail(exc)
        return view
    kept = [r for r in rows if r["kept"]]
    lines = [f"**Kept {len(kept)} clip(s), {sum(r['seconds'] for r in kept) / 60:.1f} min of the person's voice**; "
             f"rejected {len(rows) - len(kept)}."]
    by_reason: dict[str, float] = {}
    for r in rows:
        if not r["kept"]:
            by_reason[r["reason"]] = by_reason.get(r["reason"], 0.0) + r["seconds"]
    for reason, seconds in sorted(by_reason.items(), key=lambda kv: -kv[1]):
        lines.append(f"- rejected, {reason}: {seconds:.1f} s")
    if report.get("minutes_total") is not None:
        lines.append(f"\n{report['minutes_total']:.1f} min of recordings looked at.")
    view["report"] = "\n".join(lines)
    view["rows"] = [["✓ kept" if r["kept"] else "✗ rejected", r["reason"], r["source"], r["start"], r["seconds"],
                     r["similarity"], r["snr_db"], r["id"]] for r in rows]
    view["choices"] = [(f"{'✓' if r['kept'] else '✗'} {r['id']} · {r['reason']} · {r['seconds']:.1f} s", r["id"])
                       for r in rows if r["audio"]]
    return view


def build_view(project: P.Project | None, states: list[jobs.JobState] | None = None,
               notice: dict | None = None) -> dict:
    state = P.latest_job(project, P.BUILD, states)
    idle = "Process the archive first, then build." if project is None or not project.has_dataset() else \
        "Ready to build."
    view = {"progress": progress_html(state, idle, notice), "report": ""}
    if project is not None and project.has_voice() and not (state is not None and state.active):
        import json

        try:
            report = json.loads((project.voice / "report.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):  # a voice opened from disk without its build report
            view["report"] = "**The voice is ready.**"
            return view
        view["report"] = (f"**The voice is ready.** Built from {report.get('minutes', 0):.1f} min of speech in "
                          f"{report.get('clips', 0)} clips; typical pitch {report.get('pitch_median_hz', 0):.0f} Hz; "
                          f"took {_duration(report.get('build_seconds', 0))}.")
    return view


def render_view(project: P.Project | None, states: list[jobs.JobState] | None = None,
                notice: dict | None = None) -> dict:
    state = P.latest_job(project, P.RENDER, states)
    view = {"progress": progress_html(state, "Choose what to render, then press the button.", notice),
            "original": None,
            "result": None, "info": "", "files": None}
    if state is not None and state.status == jobs.DONE and state.result:
        res = state.result["result"]
        view.update(original=state.result["original"], result=res["path"], files=[res["path"], res["provenance"]])
        mark = {True: "embedded and found again in the saved file", None: "embedded (too short to check)",
                False: "embedded, but not found again in the saved file"}[res.get("watermark_verified")]
        view["info"] = (f"{state.result['seconds']:.1f} s rendered. Watermark {mark} (render id "
                        f"`{res['render_id']}`); provenance file alongside.")
    return view


def lipsync_view(project: P.Project | None, states: list[jobs.JobState] | None = None,
                 notice: dict | None = None) -> dict:
    state = P.latest_job(project, P.LIPSYNC, states)
    view = {"progress": progress_html(state, "Upload a clip; the latest render is used as its audio.", notice),
            "video": None, "files": None}
    if state is not None and state.status == jobs.DONE and state.result:
        view.update(video=state.result["video"], files=[state.result["video"], state.result["provenance"]])
    return view


def scene_view(project: P.Project | None, states: list[jobs.JobState] | None = None,
               notice: dict | None = None) -> dict:
    state = P.latest_job(project, P.SCENE, states)
    view = {"progress": progress_html(state, "Fill the table (or upload a scene file), then press the button.",
                                      notice), "report": "", "files": None}
    if state is not None and state.status == jobs.DONE and state.result:
        r = state.result
        warnings = "".join(f"\n- {w}" for w in r.get("warnings", []))  # each names its line
        view.update(report=f"**{r['lines']} line(s) dubbed.**{warnings}", files=r["files"])
    return view


def jobs_table(project: P.Project | None, states: list[jobs.JobState] | None = None) -> str:
    if project is None:
        return "No project open."
    rows = ["| job | status | progress | started |", "|---|---|---|---|"]
    for s in (jobs.list_jobs(project.jobs) if states is None else states)[:12]:
        when = time.strftime("%H:%M:%S", time.localtime(s.created))
        rows.append(f"| {s.title or s.kind} | {s.status} | {int(round(100 * s.progress))}% | {when} |")
    return "\n".join(rows) if len(rows) > 2 else "No jobs yet."


# --------------------------------------------------------------------------------------------------- the page


def build_app(projects_dir: str | Path, voice_roots: list[str | Path] | None = None):
    """The Gradio Blocks app for the projects under ``projects_dir``. ``voice_roots``: folders searched for voices
    to offer under "Open a voice" (default: ``out/`` of the working directory, where ``make quickstart`` writes)."""
    import gradio as gr

    projects_dir = Path(projects_dir).resolve()
    projects_dir.mkdir(parents=True, exist_ok=True)
    roots = [Path.cwd() / "out"] if voice_roots is None else list(voice_roots)
    headers = ["decision", "reason", "source", "start (s)", "length (s)", "voice match", "noise margin (dB)", "clip"]

    def offered_voices() -> list[str]:
        """Voices found under ``roots``, except those of this demo's own projects (the project list has them)."""
        return [str(v) for v in P.find_voices(roots) if projects_dir not in v.parents]

    with gr.Blocks(title=TITLE) as app:
        gr.Markdown("# voicetwin\nRecreate a person's voice — with their consent, or their estate's — from archive "
                    "recordings. Everything voicetwin makes carries an inaudible watermark and a provenance file.")
        with gr.Row():
            project = gr.Dropdown(label="Voice project", choices=project_choices(projects_dir), value=None,
                                  interactive=True, scale=3, elem_id="project")
            refresh = gr.Button("↻ Refresh", scale=0)
        consent_md = gr.Markdown(elem_id="consent-summary")
        next_md = gr.Markdown(next_step(None), elem_id="next-step")

        with gr.Tabs() as tabs:
            with gr.Tab("1 · Project & consent", id="tab-project"):
                gr.Markdown("**Open a voice that is already built** (a voice folder, or a folder holding one such as "
                            "`make quickstart`'s out/quickstart): it comes with its consent record and can speak at "
                            "once. Or open a project of this demo.")
                with gr.Row():
                    found = offered_voices()
                    open_path = gr.Dropdown(choices=found, value=found[0] if found else None, allow_custom_value=True,
                                            label="Voice or project folder on this machine (pick one, or type a path)",
                                            elem_id="open-path", scale=4)
                    open_btn = gr.Button("Open", variant="primary", elem_id="open-voice", scale=1)
                open_status = gr.Markdown(elem_id="open-status")
                gr.Markdown("---\n**Or start a project for a new person.** Nothing can be built or rendered without a "
                            "valid consent record: who agreed, for what, until when, and the signed document.")
                with gr.Row():
                    name = gr.Textbox(label="Person's name (whose voice is recreated)", elem_id="person-name")
                    relation = gr.Radio(list(RELATION_CHOICES), value="The person themself",
                                        label="Who gave consent", elem_id="relation")
                with gr.Row():
                    granted_by = gr.Textbox(label="Name of who signed", elem_id="granted-by")
                    document = gr.Textbox(label="Consent document reference (contract number, file)",
                                          elem_id="document")
                with gr.Row():
                    scope = gr.CheckboxGroup(list(SCOPE_CHOICES), value=[list(SCOPE_CHOICES)[0]],
                                             label="What the voice may do", elem_id="scope")
                    productions = gr.Textbox(label="Productions covered (comma-separated; empty: any)",
                                             elem_id="productions")
                    expires = gr.Textbox(label="Valid until (YYYY-MM-DD; empty: no end date)", elem_id="expires")
                with gr.Row():
                    create = gr.Button("Create project", variant="primary", elem_id="create-project")
                    update = gr.Button("Replace the open project's consent", elem_id="update-consent",
                                       interactive=False)
                create_status = gr.Markdown(elem_id="create-status")

            with gr.Tab("2 · Archive", id="tab-archive", interactive=False) as tab_archive:
                gr.Markdown("Upload archive recordings (interviews, films, tapes: audio or video). voicetwin finds the "
                            "person's speech, cuts it into clips and rejects music, noise, other speakers and poor "
                            "sound. Optionally add a few short clips known to be the person, to tell them apart.")
                with gr.Row():
                    archive = gr.File(label="Archive recordings", file_count="multiple", type="filepath",
                                      elem_id="archive-files")
                    references = gr.File(label="Optional: clips known to be the person", file_count="multiple",
                                         type="filepath", elem_id="reference-files")
                language = gr.Dropdown(list(P.LANGUAGES), value="Detect automatically", label="Language spoken")
                with gr.Row():
                    ingest_btn = gr.Button("Find the voice in the archive", variant="primary", elem_id="start-ingest")
                    ingest_stop = gr.Button("Stop", scale=0)
                ingest_progress = gr.HTML(progress_html(None), elem_id="ingest-progress")
                ingest_report = gr.Markdown(elem_id="ingest-report")
                clips = gr.Dataframe(headers=headers, value=[], interactive=False, label="Every clip found",
                                     elem_id="clips-table", max_height=320)
                with gr.Row():
                    clip_choice = gr.Dropdown(label="Listen to a clip", choices=[], elem_id="clip-choice", scale=2)
                    clip_audio = gr.Audio(label="Clip", type="filepath", interactive=False, elem_id="clip-audio",
                                          buttons=["download"],
                                          scale=3)

            with gr.Tab("3 · Build the voice", id="tab-build", interactive=False) as tab_build:
                gr.Markdown("Teach voicetwin the person's voice from the kept clips. This runs in the background; "
                            "you can close the page and come back.")
                quality = gr.Radio(list(P.QUALITY), value="Standard", label="Quality", elem_id="quality")
                with gr.Accordion("Advanced settings", open=False):
                    steps = gr.Number(value=None, label="Training steps (overrides the quality choice)",
                                      precision=0, elem_id="steps")
                with gr.Row():
                    build_btn = gr.Button("Build the voice", variant="primary", elem_id="start-build",
                                          interactive=False)
                    build_stop = gr.Button("Stop", scale=0)
                build_progress = gr.HTML(progress_html(None), elem_id="build-progress")
                build_report = gr.Markdown(elem_id="build-report")

            with gr.Tab("4 · Speak & sing", id="tab-render", interactive=False) as tab_render:
                mode = gr.Radio(list(MODES), value=list(MODES)[0], label="What to make", elem_id="render-mode")
                with gr.Row():
                    take = gr.Audio(label="Performer's take (a relative or an actor reading the line)",
                                    type="filepath", sources=["upload"], elem_id="take")
                    text = gr.Textbox(label="Line to say", lines=3, visible=False, elem_id="line-text")
                    song = gr.File(label="Song: a sung recording, or a score (MIDI, MusicXML)", type="filepath",
                                   visible=False, elem_id="song-file")
                    lyrics = gr.Textbox(label="Lyrics (for a score without them)", visible=False, elem_id="lyrics")
                with gr.Row():
                    transpose = gr.Slider(-12, 12, value=0, step=1, label="Transpose (semitones; takes and songs)",
                                          elem_id="transpose")
                    auto = gr.Checkbox(value=True, label="Songs: move into the voice's range automatically",
                                       elem_id="auto-transpose")
                    rate = gr.Slider(0.5, 2.0, value=1.0, step=0.05, label="Pace (1 = as performed; 1.2 = 20% faster)",
                                     elem_id="rate")
                with gr.Row():
                    render_language = gr.Dropdown(list(P.LANGUAGES), value="Detect automatically", label="Language")
                    production = gr.Textbox(label="Production (as named in the consent)", elem_id="production")
                with gr.Row():
                    render_btn = gr.Button("Render", variant="primary", elem_id="start-render")
                    render_stop = gr.Button("Stop", scale=0)
                render_progress = gr.HTML(progress_html(None), elem_id="render-progress")
                with gr.Row():
                    original_audio = gr.Audio(label="Original", type="filepath", interactive=False,
                                              buttons=["download"],
                                              elem_id="original-audio")
                    result_audio = gr.Audio(label="In the voice", type="filepath", interactive=False,
                                            buttons=["download"],
                                            elem_id="result-audio")
                render_info = gr.Markdown(elem_id="render-info")
                render_files = gr.File(label="Download", file_count="multiple", interactive=False,
                                       elem_id="render-files")

            with gr.Tab("5 · Lip-sync", id="tab-lipsync", interactive=False) as tab_lipsync:
                gr.Markdown("Upload a face-swapped clip. Its mouth is re-drawn, from the clip's own frames, to match "
                            "the new voice (your latest render, or an audio file you upload).")
                with gr.Row():
                    clip_video = gr.File(label="Face-swapped clip (video)", type="filepath", elem_id="lipsync-video")
                    clip_voice = gr.File(label="Optional: audio to use instead of the latest render",
                                         type="filepath", elem_id="lipsync-audio")
                with gr.Row():
                    lipsync_btn = gr.Button("Lip-sync", variant="primary", elem_id="start-lipsync")
                    lipsync_stop = gr.Button("Stop", scale=0)
                lipsync_progress = gr.HTML(progress_html(None), elem_id="lipsync-progress")
                lipsync_video = gr.Video(label="Lip-synced clip", interactive=False, elem_id="lipsync-result",
                                         height=360)
                lipsync_files = gr.File(label="Download", file_count="multiple", interactive=False,
                                        elem_id="lipsync-files")

            with gr.Tab("6 · Dub a scene", id="tab-scene", interactive=False) as tab_scene:
                gr.Markdown("Write the scene line by line: who says what, and when (seconds from the start of the "
                            "scene). A line is typed text, spoken in the voice, or the file name of an uploaded "
                            "performer's recording (converted into the voice) or score (sung). Double-click a cell "
                            "to edit it. A scene file (YAML) uploaded below fills the table.")
                with gr.Row():
                    scene_production = gr.Textbox(label="Production (as named in the consent)",
                                                  elem_id="scene-production")
                    scene_duration = gr.Textbox(label="Scene length in seconds (empty: to the end of the last line)",
                                                elem_id="scene-duration")
                scene_lines = gr.Dataframe(headers=P.SCENE_COLUMNS, datatype="str", type="array", interactive=True,
                                           value=[["l1", "VOICE", "1", "3.5", "", ""]], label="The scene's lines",
                                           elem_id="scene-lines", max_height=360)
                add_line = gr.Button("+ Add a line", elem_id="scene-add-line", size="sm")
                scene_files = gr.File(label="Recordings, scores and stems the lines name (or a scene file to fill "
                                            "the table, or a .zip)", file_count="multiple", type="filepath",
                                      elem_id="scene-files")
                with gr.Accordion("The scene file (YAML)", open=False, elem_id="scene-yaml-accordion"):
                    gr.Markdown("Made from the table; edit it for what the table does not show (stems, video, "
                                "loudness, ducking...), then fill the table from it. Dubbing keeps these settings.")
                    scene_yaml = gr.Code(language="yaml", interactive=True, elem_id="scene-yaml", label="scene.yaml")
                    yaml_apply = gr.Button("Fill the table from this YAML", elem_id="scene-yaml-apply", size="sm")
                with gr.Row():
                    scene_btn = gr.Button("Dub the scene", variant="primary", elem_id="start-scene")
                    scene_stop = gr.Button("Stop", scale=0)
                scene_progress = gr.HTML(progress_html(None), elem_id="scene-progress")
                scene_report = gr.Markdown(elem_id="scene-report")
                scene_out = gr.File(label="Deliverables", file_count="multiple", interactive=False,
                                    elem_id="scene-deliverables")

        with gr.Accordion("All jobs of this project", open=False):
            jobs_md = gr.Markdown(elem_id="jobs-table")

        notices = gr.State({})  # per task: why it could not start, until a newer job replaces it
        timer = gr.Timer(POLL_SECONDS)

        # --- wiring

        consent_form = [name, relation, granted_by, scope, productions, expires, document]
        gated = {"tab-archive": tab_archive, "tab-build": tab_build, "start-build": build_btn,
                 "tab-render": tab_render, "tab-lipsync": tab_lipsync, "tab-scene": tab_scene,
                 "update-consent": update}

        def on_project(slug):
            """Show the project's consent, fill the forms with it, and reset what the panels show."""
            p = _project(projects_dir, slug)
            table = [["l1", default_character(p), "1", "3.5", "", ""]]
            if p is None:
                return ["", gr.skip(), *[gr.skip()] * len(consent_form), table, "", {}]
            try:
                r = P.load_consent(p)
            except VoiceTwinError:
                form = [gr.skip()] * len(consent_form)
            else:
                relation_label = {v: k for k, v in RELATION_CHOICES.items()}.get(r.relation, r.relation)
                scope_labels = [k for k, v in SCOPE_CHOICES.items() if v in r.scope]
                form = [p.name, relation_label, r.granted_by, scope_labels, ", ".join(r.productions),
                        r.expires or "", r.document]
            production_name = P.default_production(p)
            return [P.consent_summary(p), production_name, *form, table, production_name, {}]

        def on_refresh(slug):
            choices = project_choices(projects_dir)
            slugs = [c[1] for c in choices]
            value = slug if slug in slugs else (slugs[0] if slugs else None)
            return gr.update(choices=choices, value=value)

        def on_load():
            """The projects, and the voices found on disk now (a quickstart may have finished since the start)."""
            choices = project_choices(projects_dir)
            voices = offered_voices()
            return (gr.update(choices=choices, value=choices[0][1] if choices else None),
                    gr.update(choices=voices, value=voices[0] if voices else None))

        def on_create(*values):
            slug, message = create_project(projects_dir, *values)
            if slug is None:
                return gr.skip(), message, gr.skip()
            return gr.update(choices=project_choices(projects_dir), value=slug), message, ""

        def on_open(path):
            """Open the voice, then show the Speak tab ready for a typed line: the quickest thing to hear."""
            slug, message = open_voice(projects_dir, path)
            if slug is None:
                return gr.skip(), message, gr.skip(), gr.skip(), gr.skip()
            if not P.open_project(projects_dir, slug).has_voice():
                return gr.update(choices=project_choices(projects_dir), value=slug), message, "", gr.skip(), gr.skip()
            return (gr.update(choices=project_choices(projects_dir), value=slug), message, "",
                    gr.Tabs(selected="tab-render"), "Type a line")

        def on_mode(choice):
            kind = MODES.get(choice)
            return (gr.update(visible=kind == "performance"), gr.update(visible=kind == "line"),
                    gr.update(visible=kind == "song"), gr.update(visible=kind == "song"))

        def on_clip(slug, clip_id):
            p = _project(projects_dir, slug)
            if p is None or not clip_id:
                return None
            for row in P.clip_rows(p):
                if row["id"] == clip_id:
                    return row["audio"]
            return None

        def on_table_select(slug, evt: gr.SelectData):
            p = _project(projects_dir, slug)
            rows = P.clip_rows(p) if p else []
            index = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            if 0 <= index < len(rows) and rows[index]["audio"]:
                return rows[index]["id"], rows[index]["audio"]
            return gr.skip(), gr.skip()

        on_table_select.__annotations__["evt"] = gr.SelectData  # this file's annotations are strings

        panels = [ingest_progress, ingest_report, clips, clip_choice, build_progress, build_report,
                  render_progress, original_audio, result_audio, render_info, render_files,
                  lipsync_progress, lipsync_video, lipsync_files, scene_progress, scene_report, scene_out, jobs_md,
                  next_md, *gated.values()]

        shown = ShownPanels()

        def on_tick(slug, notes, request: gr.Request):
            """Refresh the panels: text every time, players and tables only when they change (they keep playing)."""
            try:
                return panel_values(slug, notes, request.session_hash if request else "")
            except Exception:  # a poll that fails leaves the page as it is; the next one tries again
                traceback.print_exc(file=sys.stderr)
                return [gr.skip()] * len(panels)

        on_tick.__annotations__["request"] = gr.Request  # this file's annotations are strings

        def panel_values(slug, notes, page: str) -> list:
            p = _project(projects_dir, slug)
            states = jobs.list_jobs(p.jobs) if p is not None else []
            notes = notes or {}
            views = {"ingest": ingest_view(p, states, notes.get(P.INGEST)),
                     "build": build_view(p, states, notes.get(P.BUILD)),
                     "render": render_view(p, states, notes.get(P.RENDER)),
                     "lipsync": lipsync_view(p, states, notes.get(P.LIPSYNC)),
                     "scene": scene_view(p, states, notes.get(P.SCENE))}
            table = jobs_table(p, states)
            interactive = lambda v: gr.update(interactive=v)  # noqa: E731
            values = [
                ("ingest.progress", views["ingest"]["progress"], None),
                ("ingest.report", views["ingest"]["report"], None),
                ("ingest.rows", views["ingest"]["rows"], None),
                ("ingest.choices", views["ingest"]["choices"], lambda v: gr.update(choices=v)),
                ("build.progress", views["build"]["progress"], None),
                ("build.report", views["build"]["report"], None),
                ("render.progress", views["render"]["progress"], None),
                ("render.original", views["render"]["original"], None),
                ("render.result", views["render"]["result"], None),
                ("render.info", views["render"]["info"], None),
                ("render.files", views["render"]["files"], None),
                ("lipsync.progress", views["lipsync"]["progress"], None),
                ("lipsync.video", views["lipsync"]["video"], None),
                ("lipsync.files", views["lipsync"]["files"], None),
                ("scene.progress", views["scene"]["progress"], None),
                ("scene.report", views["scene"]["report"], None),
                ("scene.files", views["scene"]["files"], None),
                ("jobs", table, None),
                ("next", next_step(p, states), None),
                *[(f"gate.{k}", v, interactive) for k, v in gates(p).items()],
            ]
            fresh = shown.changed(page, {name_: value for name_, value, _ in values if name_ in PLAYERS})
            return [gr.skip() if name_ in PLAYERS and name_ not in fresh else wrap(value) if wrap else value
                    for name_, value, wrap in values]

        def task(kind: str, handler):
            """A task button: run ``handler``; a refusal goes into the task's status panel (``notices``)."""
            def run(slug, notes, *values):
                message = handler(projects_dir, slug, *values)
                notes = dict(notes or {})
                if refused(message):
                    notes[kind] = notice_for(message)
                else:
                    notes.pop(kind, None)
                return notes
            return run

        # every poll of the panels (the timer's and those after a button) in one queue, one at a time
        tick = dict(fn=on_tick, inputs=[project, notices], outputs=panels, show_progress="hidden",
                    concurrency_id="panels", concurrency_limit=1)
        app.load(on_load, outputs=[project, open_path], show_progress="hidden")
        refresh.click(on_refresh, inputs=project, outputs=project)
        project.change(on_project, inputs=project,
                       outputs=[consent_md, production, *consent_form, scene_lines, scene_production, notices],
                       show_progress="hidden").then(**tick)
        timer.tick(**tick)
        open_btn.click(on_open, inputs=open_path, outputs=[project, open_status, create_status, tabs, mode])
        create.click(on_create, inputs=[name, relation, granted_by, scope, productions, expires, document],
                     outputs=[project, create_status, open_status])
        update.click(lambda slug, *v: update_consent(projects_dir, slug, *v),
                     inputs=[project, relation, granted_by, scope, productions, expires, document],
                     outputs=create_status).then(on_project, inputs=project,
                                                 outputs=[consent_md, production, *consent_form, scene_lines,
                                                          scene_production, notices],
                                                 show_progress="hidden")
        ingest_btn.click(task(P.INGEST, start_ingest), inputs=[project, notices, archive, references, language],
                         outputs=notices).then(**tick)
        build_btn.click(task(P.BUILD, start_build), inputs=[project, notices, quality, steps],
                        outputs=notices).then(**tick)
        mode.change(on_mode, inputs=mode, outputs=[take, text, song, lyrics])
        render_btn.click(task(P.RENDER, start_render),
                         inputs=[project, notices, mode, take, text, song, lyrics, transpose, auto, rate,
                                 render_language, production], outputs=notices).then(**tick)
        lipsync_btn.click(task(P.LIPSYNC, start_lipsync), inputs=[project, notices, clip_video, clip_voice],
                          outputs=notices).then(**tick)
        scene_btn.click(task(P.SCENE, start_scene),
                        inputs=[project, notices, scene_lines, scene_production, scene_duration, scene_yaml,
                                scene_files], outputs=notices).then(**tick)
        for button, kind in ((ingest_stop, P.INGEST), (build_stop, P.BUILD), (render_stop, P.RENDER),
                             (lipsync_stop, P.LIPSYNC), (scene_stop, P.SCENE)):
            button.click(task(kind, lambda where, slug, k=kind: stop_job(where, slug, k)),
                         inputs=[project, notices], outputs=notices).then(**tick)
        clip_choice.change(on_clip, inputs=[project, clip_choice], outputs=clip_audio)
        clips.select(on_table_select, inputs=project, outputs=[clip_choice, clip_audio])

        # the Dub tab: the table is the scene's lines; the YAML follows it and keeps everything else
        def on_scene_edit(rows, production_name, duration, text):
            preview = scene_preview(rows, production_name, duration, text)
            return gr.skip() if preview is None or preview == text else preview

        def on_add_line(slug, rows):
            return add_scene_line(rows, default_character(_project(projects_dir, slug)))

        def on_yaml_apply(slug, notes, text):
            notes = dict(notes or {})
            try:
                rows, production_name, duration = P.scene_table(text)
            except VoiceTwinError as exc:
                notes[P.SCENE] = notice_for(_fail(exc))
                return gr.skip(), gr.skip(), gr.skip(), notes
            notes.pop(P.SCENE, None)
            return rows or gr.skip(), production_name, duration, notes

        def on_scene_upload(notes, files):
            notes = dict(notes or {})
            try:
                found_scene = scene_from_files(files)
            except (VoiceTwinError, OSError, UnicodeDecodeError) as exc:
                notes[P.SCENE] = notice_for(_fail(VoiceTwinError(f"cannot read the scene file ({exc})")))
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), notes
            if found_scene is None:
                return gr.skip(), gr.skip(), gr.skip(), gr.skip(), notes
            rows, production_name, duration, text = found_scene
            notes.pop(P.SCENE, None)
            return rows, production_name, duration, text, notes

        scene_inputs = [scene_lines, scene_production, scene_duration, scene_yaml]
        for source in (scene_lines, scene_production, scene_duration):
            source.change(on_scene_edit, inputs=scene_inputs, outputs=scene_yaml, show_progress="hidden")
        add_line.click(on_add_line, inputs=[project, scene_lines], outputs=scene_lines)
        yaml_apply.click(on_yaml_apply, inputs=[project, notices, scene_yaml],
                         outputs=[scene_lines, scene_production, scene_duration, notices]).then(**tick)
        scene_files.upload(on_scene_upload, inputs=[notices, scene_files],
                           outputs=[scene_lines, scene_production, scene_duration, scene_yaml, notices]).then(**tick)
    return app


def launch(projects_dir: str | Path = "voicetwin-projects", host: str = "127.0.0.1", port: int | None = None,
           password: str | None = None, block: bool = True):
    """Serve the demo. ``password``: asked by a login page (any user name). Returns the app when not blocking."""
    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    app = build_app(projects_dir)
    # system fonts: the page makes no request outside this machine
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
    auth = (lambda _user, given: given == password) if password else None
    app.queue(default_concurrency_limit=4)
    # quiet: Gradio's own start-up lines include a hint about public share links, which this demo never uses
    app.launch(server_name=host, server_port=port, auth=auth, auth_message="Enter the demo's password (any user name).",
               allowed_paths=[str(Path(projects_dir).resolve())], prevent_thread_lock=True, quiet=True,
               css=CSS, theme=theme, footer_links=[], ssr_mode=False)
    print(f"voicetwin demo: open {app.local_url} (projects in {projects_dir}; Ctrl-C stops it)", flush=True)
    if block:
        app.block_thread()
    return app


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="voicetwin's demo for producers")
    parser.add_argument("--project-dir", default="voicetwin-projects")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=None)
    parser.add_argument("--password", default=None)
    a = parser.parse_args()
    launch(a.project_dir, a.host, a.port, a.password)
