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


VOICE_MODEL_TYPE = "voicetwin-voice"  # voicetwin.voice.model.MODEL_TYPE, read here without importing torch


def voice_folder(path: str | Path) -> Path | None:
    """``path`` itself when it is a voice folder (``config.json`` of a voicetwin voice + ``model.safetensors``), or
    its ``voice/`` subfolder when that is one (``make quickstart`` writes out/quickstart/voice); else None."""
    for folder in (Path(path), Path(path) / "voice"):
        config = folder / "config.json"
        if config.is_file() and (folder / "model.safetensors").is_file():
            try:
                kind = json.loads(config.read_text(encoding="utf-8")).get("model_type")
            except (OSError, ValueError, AttributeError):
                continue
            if kind == VOICE_MODEL_TYPE:
                return folder
    return None


def find_voices(roots: list[str | Path]) -> list[Path]:
    """Voice folders in each of ``roots`` (e.g. ``out/``) down to three levels (``out/quickstart/voice``), newest
    first."""
    found: dict[Path, float] = {}
    for root in map(Path, roots):
        if not root.is_dir():
            continue
        for candidate in [root, *root.glob("*"), *root.glob("*/*")]:
            voice = voice_folder(candidate) if candidate.is_dir() else None
            if voice is not None:
                found[voice.resolve()] = (voice / "model.safetensors").stat().st_mtime
    return sorted(found, key=found.get, reverse=True)


def open_from_disk(projects_dir: str | Path, path: str | Path) -> Project:
    """Open a voice or a project that is already on this machine, so it can speak without waiting for a build.

    - a voice folder (or a folder holding one as ``voice/``, e.g. ``out/quickstart``): copied into a new project
      with the consent record it carries (a voice without one is refused: nothing is rendered without consent);
      opening the same voice again opens the project made the first time;
    - a project folder of this demo's projects folder: opened as it is.
    Returns the project; raises ``InputError`` saying what the folder is missing.
    """
    raw = str(path or "").strip()
    if not raw:
        raise InputError("no folder given", fix="type the path of a voice folder, e.g. out/quickstart/voice")
    folder = Path(raw).expanduser()
    if not folder.exists():
        raise InputNotFoundError("no such folder on the server", path=folder,
                                 fix="give a path on the machine that serves this page")
    projects_dir = Path(projects_dir).resolve()
    if (folder / "project.json").is_file():
        if folder.resolve().parent != projects_dir:
            raise InputError("this project is outside the demo's projects folder", path=folder,
                             fix=f"move it into {projects_dir}, or open its voice/ folder instead")
        return open_project(projects_dir, folder.resolve().name)
    voice = voice_folder(folder)
    if voice is None:
        raise InputError("not a voice folder (no voicetwin config.json and model.safetensors, nor a voice/ folder "
                         "holding them)", path=folder,
                         fix="give a folder that a voice build wrote, e.g. out/quickstart/voice after make quickstart")
    if voice.resolve().parent.parent == projects_dir and (voice.resolve().parent / "project.json").is_file():
        return open_project(projects_dir, voice.resolve().parent.name)  # the voice of one of the demo's projects
    source = str(voice.resolve())
    for project in list_projects(projects_dir):
        if project.info().get("source") == source:
            return project
    from ..consent import load_consent as load

    record = load(voice)  # refuses a voice without a valid record, with the command that records one
    slug = slugify(record.subject) or slugify(voice.resolve().parent.name) or "voice"
    n, base = 1, slug
    while (projects_dir / slug).exists():
        n += 1
        slug = f"{base}-{n}"
    staging = projects_dir / f".{slug}.opening"
    shutil.rmtree(staging, ignore_errors=True)
    try:  # built aside and moved into place: a half-copied voice never shows up as a project
        shutil.copytree(voice, staging / "voice", symlinks=False)
        project = Project(staging)
        save_consent(project, record)
        write_json(staging / "project.json", {"name": record.subject, "slug": slug, "created": time.time(),
                                              "source": source})
        staging.rename(projects_dir / slug)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise InputError(f"cannot copy the voice into the projects folder ({exc.strerror or exc})", path=voice,
                         fix=f"check that {projects_dir} can be written to and has room") from exc
    return Project(projects_dir / slug)


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


# --------------------------------------------------------------------------------------------------- scene table
# The Dub tab edits a scene's lines as a table; the YAML scene file (voicetwin.production.scene) is built from it,
# keeping whatever else the YAML says (stems, video, output settings, each line's extra fields).

SCENE_COLUMNS = ["line", "character", "start (s)", "end (s)", "text to say", "or: recording / score (file name)"]
_TABLE_KEYS = ("id", "character", "start", "end", "cue", "recording", "text", "score")


def _scene_dict(text: str | None) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text or "") or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"the scene YAML cannot be read{where} ({getattr(exc, 'problem', None) or exc})",
                         fix="correct the YAML, or clear it and use the table") from exc
    if not isinstance(data, dict):
        raise InputError("the scene YAML must be a mapping (production:, characters:, lines: ...)")
    return data


def scene_table(text: str | None) -> tuple[list[list[str]], str, str]:
    """A scene file's YAML -> ``(rows in SCENE_COLUMNS order, production, duration)`` for the Dub tab's table.
    Times are shown as written (seconds or timecodes); a line placed by a subtitle ``cue`` has empty times."""
    data = _scene_dict(text)
    rows = []
    for n, line in enumerate(data.get("lines") or [], 1):
        if not isinstance(line, dict):
            continue
        media = line.get("recording") or line.get("score") or ""
        rows.append([str(line.get("id", f"l{n}")), str(line.get("character", "")),
                     "" if line.get("start") is None else str(line["start"]),
                     "" if line.get("end") is None else str(line["end"]),
                     str(line.get("text") or ""), str(media)])
    duration = data.get("duration")
    return rows, str(data.get("production") or ""), "" if duration is None else str(duration)


def scene_cells(row) -> list[str]:
    """A table row as ``len(SCENE_COLUMNS)`` stripped strings (missing or empty cells: "")."""
    values = list(row or []) + [""] * len(SCENE_COLUMNS)
    out = []
    for value in values[: len(SCENE_COLUMNS)]:
        if value is None or (isinstance(value, float) and value != value):  # empty cells arrive as None or NaN
            value = ""
        out.append(str(value).strip())
    return out


def _seconds(value: str) -> float | str:
    try:
        return float(value)
    except ValueError:
        return value  # a timecode ("00:01:10.200"): the scene parser reads it, or names the line and field


def scene_yaml(rows, production: str = "", duration: str | float | None = "", base: str | None = "",
               voice: str = "voice") -> str:
    """The scene file for the table's ``rows`` (``SCENE_COLUMNS``), merged into the YAML ``base``.

    The table decides which lines exist, who says them, when, and from what (typed text, or the file name of an
    uploaded recording or score); everything else in ``base`` stays. Characters new to the scene are played by
    ``voice`` (``voice: voice``: the project's voice, linked next to the scene file). Empty rows are skipped; a row
    without a character, a slot or something to say raises ``InputError`` naming the line.
    """
    import yaml

    data = _scene_dict(base)
    old_lines = {str(line.get("id")): line for line in data.get("lines") or [] if isinstance(line, dict)}
    old_characters = data.get("characters") if isinstance(data.get("characters"), dict) else {}
    lines, characters = [], {}
    for n, row in enumerate(rows or [], 1):
        line_id, character, start, end, text, media = scene_cells(row)
        if not any((character, start, end, text, media)):
            continue
        line_id = line_id or f"l{n}"
        old = old_lines.get(line_id, {})
        if not character:
            raise InputError(f"line {line_id}: the character column is empty", fix="type who says the line")
        entry: dict = {"id": line_id, "character": character}
        if start or end:
            if not (start and end):
                raise InputError(f"line {line_id}: give both its start and its end (seconds)")
            entry["start"], entry["end"] = _seconds(start), _seconds(end)
        elif "cue" in old:
            entry["cue"] = old["cue"]
        else:
            raise InputError(f"line {line_id}: no start and end", fix="type when the line starts and ends, in seconds")
        if text and media:
            raise InputError(f"line {line_id}: has both text and a file",
                             fix="keep the text to say it, or the file name to convert (or sing) it")
        if media:
            entry["score" if Path(media).suffix.lower() in SCORE_EXTENSIONS else "recording"] = media
        elif text:
            entry["text"] = text
        else:
            raise InputError(f"line {line_id}: nothing to say",
                             fix="type the text, or the name of an uploaded recording or score")
        entry.update({k: v for k, v in old.items() if k not in _TABLE_KEYS})
        lines.append(entry)
        characters[character] = old_characters.get(character) or {"voice": voice}
    if not lines:
        raise InputError("the scene has no lines", fix="add a line to the table")
    out: dict = {}
    if (production or "").strip():
        out["production"] = production.strip()
    if duration not in (None, ""):
        out["duration"] = _seconds(str(duration).strip())
    out.update({k: v for k, v in data.items() if k not in ("production", "duration", "characters", "lines")})
    out["characters"] = characters
    out["lines"] = lines
    return yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=120)


def write_scene(project: Project, text: str, files=None) -> tuple[Path, Path]:
    """Put a scene made in the Dub tab (``text``: its YAML) and its uploaded media in a new folder and check it.

    Uploaded ``.zip`` files are unpacked next to the scene; uploaded scene files are not copied (their content is
    in ``text``). A link named ``voice`` points to the project's voice. Returns ``(folder, scene file)``; an
    invalid scene raises with the line and field concerned.
    """
    import zipfile

    from ..files import write_text
    from voicetwin.production.scene import load_scene

    _scene_dict(text)
    folder = new_folder(project.scenes, "scene")
    media = [f for f in files or [] if Path(getattr(f, "name", f)).suffix.lower() not in (".yaml", ".yml")]
    for saved in save_uploads(media, folder):
        if saved.suffix.lower() == ".zip":
            with zipfile.ZipFile(saved) as z:
                for member in z.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise InputError(f"unsafe path {member!r} inside the .zip", path=saved)
                z.extractall(folder)
    scene = folder / "scene.yaml"
    write_text(scene, text)
    link = folder / "voice"
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
    from ..production.build import build_voice
    from ..voice.model import BuildOptions

    project = Project(Path(job.params["project"]))
    if not project.has_dataset():
        raise InputError("the archive has not been processed yet", fix="run step 2 (Archive) first")
    record = check(project, "build", record=load_consent(project))
    steps = int(job.params.get("steps", 1500))
    job.step("learning the voice from the kept clips", 0.0, 1.0)
    build_voice(project.dataset, project.voice, BuildOptions(steps=steps), progress=True, log=job.log,
                consent=record)  # the record travels inside the voice folder; with text, the speech model too
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
            "warnings": [f"{row.get('id')}: {w}" for row in report.get("lines", []) for w in row.get("warnings", [])]}
