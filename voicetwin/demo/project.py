"""Voice projects of the demo: a folder per person, and the background jobs that fill it.

No web code here: the Gradio app (``demo/app.py``) and the tests call these functions, and the job functions
(``task_*``) run in background processes started by ``voicetwin.production.jobs``. Everything goes through voicetwin's
public API.

A project folder::

    PROJECTS/<slug>/project.json     name, creation time
    PROJECTS/<slug>/consent.json     the consent record (voicetwin.consent)
    PROJECTS/<slug>/archive/         uploaded archive recordings (never modified)
    PROJECTS/<slug>/references/      optional clips known to be the person
    PROJECTS/<slug>/dataset/         the ingest result (clips/, manifest.jsonl, report.json)
    PROJECTS/<slug>/voice/           the built voice
    PROJECTS/<slug>/renders/<id>/    a performance, a typed line or a song: original + result
    PROJECTS/<slug>/lipsync/<id>/    a face-swapped clip and its lip-synced version
    PROJECTS/<slug>/scenes/<id>/     a scene file, its media and its deliverables
    PROJECTS/<slug>/jobs/<id>/       background jobs (state.json, log.txt)
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError, InputNotFoundError, VoiceTwinError
from ..files import write_json
from ..production import jobs

TASKS = __name__  # job targets are "voicetwin.demo.project:task_name", imported by the job's own process

INGEST, BUILD, RENDER, LIPSYNC, SCENE = "ingest", "build", "render", "lipsync", "scene"
KINDS = (INGEST, BUILD, RENDER, LIPSYNC, SCENE)

# ingest's rejection reasons in plain words
REASONS = {
    "kept": "kept",
    "too_short": "too short",
    "music": "music, not speech",
    "noise": "noise, not speech",
    "other_speaker": "someone else speaking",
    "clipped": "distorted (clipping)",
    "low_snr": "too much background noise",
    "narrowband": "muffled, telephone-like sound",
}

# build presets: plain names -> training steps
QUALITY = {"Quick test (a few minutes)": 300, "Standard": 1500, "Best (slow)": 3000}

LANGUAGES = {"Detect automatically": None, "English": "en", "Russian": "ru"}


def slugify(name: str) -> str:
    slug = re.sub(r"[^\w]+", "-", name.strip().lower()).strip("-_")
    return slug[:60]


@dataclass(frozen=True)
class Project:
    """A project folder (see the module docstring)."""

    dir: Path

    @property
    def name(self) -> str:
        return self.info().get("name", self.dir.name)

    def info(self) -> dict:
        path = self.dir / "project.json"
        if not path.exists():
            raise InputNotFoundError("not a voice project (no project.json)", path=self.dir)
        return json.loads(path.read_text(encoding="utf-8"))

    archive = property(lambda self: self.dir / "archive")
    references = property(lambda self: self.dir / "references")
    dataset = property(lambda self: self.dir / "dataset")
    voice = property(lambda self: self.dir / "voice")
    renders = property(lambda self: self.dir / "renders")
    lipsync = property(lambda self: self.dir / "lipsync")
    scenes = property(lambda self: self.dir / "scenes")
    jobs = property(lambda self: self.dir / "jobs")

    def has_dataset(self) -> bool:
        return (self.dataset / "manifest.jsonl").is_file()

    def has_voice(self) -> bool:
        return (self.voice / "config.json").is_file() and (self.voice / "model.safetensors").is_file()

    def archive_files(self) -> list[Path]:
        return sorted(p for p in self.archive.glob("*") if p.is_file()) if self.archive.is_dir() else []

    def reference_files(self) -> list[Path]:
        return sorted(p for p in self.references.glob("*") if p.is_file()) if self.references.is_dir() else []


# --------------------------------------------------------------------------------------------------- projects


def list_projects(projects_dir: str | Path) -> list[Project]:
    """Projects under ``projects_dir``, most recently used first."""
    root = Path(projects_dir)
    if not root.is_dir():
        return []
    found = [Project(d) for d in root.iterdir() if (d / "project.json").is_file()]
    return sorted(found, key=lambda p: _last_used(p), reverse=True)


def _last_used(project: Project) -> float:
    stamps = [project.dir / "project.json", project.jobs]
    return max(p.stat().st_mtime for p in stamps if p.exists())


def open_project(projects_dir: str | Path, slug: str) -> Project:
    if not slug:
        raise InputError("no project is open", fix="create a project on the 'Project & consent' tab, or pick one")
    project = Project(Path(projects_dir) / slug)
    project.info()  # raises when it is not a project
    return project


def create_project(projects_dir: str | Path, name: str, consent: dict) -> Project:
    """Create the project folder for ``name`` with its consent record; ``consent`` holds the record's fields."""
    name = (name or "").strip()
    if not name:
        raise InputError("the person's name is missing", fix="type the name of the person whose voice is recreated")
    slug = slugify(name)
    if not slug:
        raise InputError(f"cannot make a folder name from {name!r}", fix="use letters or digits in the name")
    project = Project(Path(projects_dir) / slug)
    if (project.dir / "project.json").exists():
        raise InputError(f"a project for {name!r} already exists", path=project.dir,
                         fix="pick it in the project list, or use another name")
    record = make_consent(name, consent)  # validates before anything is written
    project.dir.mkdir(parents=True, exist_ok=True)
    save_consent(project, record)
    write_json(project.dir / "project.json", {"name": name, "slug": slug, "created": time.time()})
    return project


def make_consent(name: str, fields: dict):
    """A ``voicetwin.consent.ConsentRecord`` for ``name`` from the form's fields (validated by the record)."""
    from voicetwin.consent import ConsentRecord

    productions = fields.get("productions") or ()
    if isinstance(productions, str):
        productions = [p for p in re.split(r"[,;\n]", productions) if p.strip()]
    expires = (fields.get("expires") or "").strip() or None
    return ConsentRecord(
        subject=name,
        granted_by=(fields.get("granted_by") or "").strip(),
        relation=fields.get("relation") or "self",
        scope=tuple(fields.get("scope") or ()),
        productions=tuple(productions),
        expires=expires,
        document=(fields.get("document") or "").strip(),
        notes=(fields.get("notes") or "").strip(),
    )


def save_consent(project: Project, record) -> None:
    """Keep the record in the project, and in the voice folder once there is one."""
    from voicetwin.consent import save_consent as save

    save(project.dir, record, overwrite=True)
    if project.voice.is_dir():
        save(project.voice, record, overwrite=True)


def load_consent(project: Project):
    from voicetwin.consent import load_consent as load

    return load(project.dir)


def check(project: Project, use: str, production: str | None = None, record=None,
          production_fix: str = "type the production's name, as the consent names it, in the Production box"):
    """``voicetwin.consent.check_consent`` on the project's voice (or ``record``), its refusal worded for the page:
    the same reason, with the fix pointing at the consent form instead of the command line."""
    from voicetwin.consent import check_consent
    from voicetwin.errors import ConsentError

    try:
        return check_consent(record if record is not None else project.voice, use=use, production=production)
    except ConsentError as exc:
        reason = str(exc)
        if exc.path and reason.startswith(f"{exc.path}: "):
            reason = reason[len(exc.path) + 2:]
        if exc.fix and reason.endswith(f" ({exc.fix})"):
            reason = reason[: -len(exc.fix) - 3]
        fix = (production_fix if "production" in reason and "scope" not in reason
               else "record the signed consent that covers it on the 'Project & consent' tab")
        raise ConsentError(reason, fix=fix) from exc


def default_production(project: Project) -> str:
    """The first production the consent names ("" when it covers any)."""
    try:
        productions = load_consent(project).productions
    except VoiceTwinError:
        return ""
    return productions[0] if productions else ""


RELATIONS = {"self": "the person themself", "estate": "their estate", "heirs": "their heirs"}


def consent_summary(project: Project) -> str:
    """The project's consent record in plain words (Markdown)."""
    try:
        r = load_consent(project)
    except VoiceTwinError as exc:
        return f"**No valid consent record:** {exc}"
    scope = " and ".join(r.scope)
    productions = ", ".join(r.productions) if r.productions else "any production"
    expires = f"until {r.expires}" if r.expires else "with no expiry date"
    return (f"**{r.subject}** — consent given by **{r.granted_by}** ({RELATIONS.get(r.relation, r.relation)}) "
            f"for **{scope}**, {productions}, {expires}. Document: {r.document}.")


def save_uploads(files, dest: Path) -> list[Path]:
    """Copy uploaded files (paths) into ``dest`` under their own names; returns the new paths."""
    out = []
    dest.mkdir(parents=True, exist_ok=True)
    for f in files or []:
        src = Path(getattr(f, "name", f))
        if not src.is_file():
            raise InputNotFoundError("the uploaded file is gone", path=src, fix="upload it again")
        target = dest / src.name  # scene files refer to their media by name
        shutil.copyfile(src, target)
        out.append(target)
    return out


def prepare_scene(project: Project, files) -> tuple[Path, Path]:
    """Put an uploaded scene (a YAML file and its media, or a .zip of them) in a new folder and check it.

    A link named ``voice`` next to the scene file points to the project's voice (``voice: voice`` in the scene).
    Returns ``(folder, scene file)``; an invalid scene raises with the file, line and field concerned.
    """
    import zipfile

    from voicetwin.production.scene import load_scene

    if not files:
        raise InputError("no scene uploaded", fix="upload the scene file (YAML) and the media it names, or a .zip")
    folder = new_folder(project.scenes, "scene")
    for saved in save_uploads(files, folder):
        if saved.suffix.lower() == ".zip":
            with zipfile.ZipFile(saved) as z:
                for member in z.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise InputError(f"unsafe path {member!r} inside the .zip", path=saved)
                z.extractall(folder)
    found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".yaml", ".yml") and p.is_file())
    if len(found) != 1:
        raise InputError(f"expected one scene file (.yaml), found {len(found)}",
                         fix="upload exactly one scene file with its media")
    scene = found[0]
    link = scene.parent / "voice"
    if project.voice.is_dir() and not link.exists():
        link.symlink_to(project.voice.resolve(), target_is_directory=True)
    load_scene(scene)
    return folder, scene


def new_folder(parent: Path, stem: str) -> Path:
    folder = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}"
    n = 1
    while folder.exists():
        n += 1
        folder = parent / f"{time.strftime('%Y%m%d-%H%M%S')}-{stem}-{n}"
    folder.mkdir(parents=True)
    return folder


# --------------------------------------------------------------------------------------------------- jobs


def start(project: Project, kind: str, params: dict, title: str, background: bool = True) -> jobs.JobState:
    """Start the job ``task_<kind>`` of this project (one at a time per kind)."""
    current = jobs.latest(project.jobs, kind)
    if current is not None and current.active:
        raise InputError(f"'{current.title}' is still running", fix="wait for it to finish, or stop it")
    params = {"project": str(project.dir), **params}
    return jobs.submit(project.jobs, kind, f"{TASKS}:task_{kind}", params, title=title, background=background)


def latest_job(project: Project | None, kind: str, states: list[jobs.JobState] | None = None) -> jobs.JobState | None:
    """The project's newest job of ``kind``; ``states``: the project's jobs if already listed (newest first)."""
    if project is None:
        return None
    if states is None:
        return jobs.latest(project.jobs, kind)
    return next((s for s in states if s.kind == kind), None)


def clip_rows(project: Project) -> list[dict]:
    """Every clip the ingest found, kept or not, with its reason in plain words and its audio file if written."""
    from ..manifest import read_manifest

    if not project.has_dataset():
        return []
    rows = []
    for clip in read_manifest(project.dataset):
        audio = project.dataset / clip.path if clip.path else None
        rows.append({
            "id": clip.id,
            "kept": bool(clip.kept),
            "reason": REASONS.get(clip.reason, clip.reason.replace("_", " ")),
            "source": Path(clip.source).name,
            "start": round(float(clip.start), 2),
            "seconds": round(float(clip.duration), 2),
            "similarity": None if clip.speaker_similarity is None else round(float(clip.speaker_similarity), 2),
            "snr_db": None if clip.snr_db is None else round(float(clip.snr_db), 1),
            "audio": str(audio) if audio is not None and audio.exists() else None,
        })
    return rows


# --------------------------------------------------------------------------------------------------- tasks
# Each runs in its own process: ``task_<kind>(job)`` with ``job.params`` set by the app; returns a JSON dict.


def task_ingest(job) -> dict:
    from voicetwin.ingest.pipeline import IngestOptions, ingest

    project = Project(Path(job.params["project"]))
    sources = project.archive_files()
    if not sources:
        raise InputError("no archive recordings have been uploaded", fix="upload audio or video files of the person")
    options = IngestOptions(language=job.params.get("language"), keep_rejected_audio=True)
    job.step("finding the person's speech", 0.0, 1.0)
    report = ingest([str(p) for p in sources], project.dataset, references=[str(p) for p in project.reference_files()],
                    options=options, progress=True)
    return report


def task_build(job) -> dict:
    from voicetwin.voice.model import BuildOptions, Voice

    project = Project(Path(job.params["project"]))
    if not project.has_dataset():
        raise InputError("the archive has not been processed yet", fix="run step 2 (Archive) first")
    record = check(project, "build", record=load_consent(project))
    steps = int(job.params.get("steps", 1500))
    job.step("learning the voice from the kept clips", 0.0, 1.0)
    Voice.build(project.dataset, project.voice, BuildOptions(steps=steps), progress=True, log=job.log,
                consent=record)  # the record travels inside the voice folder
    return json.loads((project.voice / "report.json").read_text(encoding="utf-8"))


def voice_id(project: Project) -> str:
    """The id a project's voice carries in watermarks and provenance."""
    return f"voicetwin:{project.dir.name}"


SCORE_EXTENSIONS = (".mid", ".midi", ".kar", ".musicxml", ".xml", ".mxl")


def task_render(job) -> dict:
    """A performer's take, a typed line or a song, in the voice, next to the original."""
    p = job.params
    project = Project(Path(p["project"]))
    folder = Path(p["folder"])
    mode = p["mode"]  # performance | line | song
    if not project.has_voice():
        raise InputError("the voice has not been built yet", fix="build it in step 3 first")
    source = Path(p["input"]) if p.get("input") else None
    is_score = source is not None and source.suffix.lower() in SCORE_EXTENSIONS
    use = "singing" if mode == "song" else "speech"
    production = (p.get("production") or "").strip() or None
    job.step("checking consent", 0.0, 0.05)
    check(project, use, production)  # the project's own message; the render service checks again

    job.step("loading the voice", 0.05, 0.2)
    from voicetwin.production.render import RenderRequest, render_file
    from voicetwin.voice.model import ConvertOptions, Voice

    voice = Voice.load(project.voice)
    transpose = p.get("transpose")
    rate = float(p.get("rate") or 1.0)
    language = p.get("language")
    vid = voice_id(project)
    extra = {"mode": mode, "transpose": transpose, "rate": rate}
    base = None  # the base voice's rendition, for a line or a song: generated audio too
    if mode == "line":
        from voicetwin.synth.speak import SpeakOptions

        text = (p.get("text") or "").strip()
        if not text:
            raise InputError("there is no line to say", fix="type the words the voice should say")
        options = SpeakOptions(language=language, rate=rate, production=production)
        request = RenderRequest("text", text, voice, options, production, voice_id=vid)
        base = RenderRequest("text", text, None, options, production, voice_id="voicetwin:base")
    elif is_score:
        from voicetwin.synth.sing import SingOptions, read_score

        lyrics = (p.get("lyrics") or "").strip() or None
        score = read_score(source, lyrics=lyrics, language=language)
        semitones = 0.0 if transpose in (None, "auto") else float(transpose)
        options = SingOptions(language=language, transpose=semitones, production=production,
                              tempo=None if rate == 1.0 else min(400.0, max(20.0, score.tempo * rate)))
        request = RenderRequest("score", source, voice, options, production, lyrics=lyrics, voice_id=vid)
        base = RenderRequest("score", source, None, options, production, lyrics=lyrics, voice_id="voicetwin:base")
    else:
        if source is None:
            raise InputError("no recording was uploaded", fix="upload the performer's take or the song")
        performance = source
        if rate != 1.0:  # pace the performance (Rubber Band, pitch kept), then convert it
            from voicetwin.audio.io import load_audio
            from voicetwin.production.fit import time_stretch

            original, osr = load_audio(source)
            performance = (time_stretch(original, osr, 1.0 / rate), osr)
        options = ConvertOptions(mode="singing" if mode == "song" else "speech",
                                 transpose=transpose if transpose == "auto" else
                                 (None if transpose in (None, 0, 0.0) else float(transpose)))
        request = RenderRequest("recording", performance, voice, options, production, voice_id=vid)
    job.step("rendering in the voice", 0.2, 0.9)
    out = {"mode": mode}
    if base is not None:
        out["original"] = str(render_file(base, folder / "original.wav", extra={"role": "base rendition"}).path)
    else:
        out["original"] = str(source)
    job.step("watermarking and saving", 0.9, 1.0)
    done = render_file(request, folder / "result.wav", extra=extra)
    out["result"] = {"path": str(done.path), "provenance": str(done.provenance), "render_id": done.render_id,
                     "watermark_verified": done.verified}
    out["seconds"] = round(len(done.audio) / done.sample_rate, 2)
    return out


def task_lipsync(job) -> dict:
    """Re-render the mouth of a face-swapped clip to the voice's audio (voicetwin.video.lipsync.render)."""
    from voicetwin.video.lipsync import RenderOptions, render
    from voicetwin.production.provenance import write_provenance

    p = job.params
    project = Project(Path(p["project"]))
    folder = Path(p["folder"])
    video, audio = Path(p["video"]), Path(p["audio"])
    job.step("re-drawing the mouth frame by frame", 0.0, 1.0)
    output = folder / "lipsynced.mp4"
    result = render(video, audio, output, RenderOptions(), progress=True)
    provenance = write_provenance(output, inputs=[video, audio], model_ids={"lipsync": "voicetwin.video.lipsync.render"},
                                  voice_id=voice_id(project), extra={"lipsync": result.to_dict()})
    return {"video": str(output), "provenance": str(provenance), **result.to_dict()}


def task_scene(job) -> dict:
    """Dub a scene file (voicetwin.production.dub) and list the deliverables."""
    from voicetwin.production.dub import DubOptions, dub

    p = job.params
    folder = Path(p["folder"])
    scene, out = Path(p["scene"]), folder / "deliverables"
    from voicetwin.production.scene import load_scene

    project = Project(Path(p["project"]))
    job.step("checking consent", 0.0, 0.02)
    parsed = load_scene(scene)
    ours = project.voice.resolve()
    for line in parsed.lines:
        if line.voice and Path(line.voice).resolve() == ours:
            check(project, "singing" if line.source.kind == "score" else "dub", parsed.production,
                  production_fix="add 'production: NAME' to the scene file, as the consent names it")
    job.step("rendering the lines", 0.02, 0.9)
    counts = {"lines": 0, "done": 0}

    def on_event(event: dict) -> None:
        kind = event.get("event")
        if kind == "scene":
            counts["lines"] += int(event.get("lines", 0))
        elif kind == "line":
            counts["done"] += 1
            job.report(counts["done"] / max(counts["lines"], 1), f"line {event.get('line')} "
                       + ("done" if event.get("ok") else "failed"))
        elif kind == "mix":
            job.step("mixing and writing the deliverables", 0.9, 1.0)

    report = dub(scene, out, DubOptions(resume=True), on_event=on_event)
    files = sorted(str(f) for f in out.iterdir() if f.is_file() and not f.name.startswith("."))
    return {"folder": str(out), "files": files, "lines": len(report.get("lines", [])),
            "warnings": [w for row in report.get("lines", []) for w in row.get("warnings", [])]}
