"""The demo below the web page: background jobs on disk, projects and consent, the handlers' messages and views.

The browser test (tests/ui, ``make test-ui``) drives the whole flow in Chromium; these are the fast checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from voicetwin.production import jobs
from voicetwin.audio.io import save_audio
from voicetwin.errors import InputError, VoiceTwinError
from voicetwin.manifest import Clip, write_manifest

from voicetwin.demo import app
from voicetwin.demo import project as P

ROOT = Path(__file__).resolve().parents[1]

TOY = '''
import time
from tqdm import tqdm
from voicetwin.errors import InputError

def work(job):
    job.step("counting", 0.0, 0.8)
    for _ in tqdm(range(job.params["n"]), desc="count", mininterval=0):
        time.sleep(job.params.get("sleep", 0.0))
    job.step("finishing", 0.8, 1.0)
    if job.params.get("fail"):
        raise InputError("the input is unusable", fix="give another one")
    if job.params.get("crash"):
        raise ValueError("boom")
    return {"n": job.params["n"]}
'''


@pytest.fixture()
def toy(tmp_path) -> str:
    path = tmp_path / "toy.py"
    path.write_text(TOY)
    return f"{path}:work"


CONSENT = {"relation": "Their estate", "granted_by": "Estate of Ivan Petrov",
           "scope": ["Speech (speaking, typed lines, dubbing)"], "productions": "The Last Letter",
           "expires": "2099-12-31", "document": "contract 2025-114"}


def make(projects: Path, name: str = "Ivan Petrov", **changes) -> tuple[str | None, str]:
    fields = {**CONSENT, **changes}
    slug, message = app.create_project(projects, name, fields["relation"], fields["granted_by"], fields["scope"],
                                       fields["productions"], fields["expires"], fields["document"])
    return slug, message


# --------------------------------------------------------------------------------------------------- jobs


def test_background_job_reports_steps_bars_and_result(tmp_path, toy):
    root = tmp_path / "jobs"
    state = jobs.submit(root, "toy", toy, {"n": 12, "sleep": 0.1}, title="Counting")
    assert state.status in (jobs.QUEUED, jobs.RUNNING) and state.pid
    seen = set()
    deadline = time.time() + 60
    while state.active and time.time() < deadline:
        time.sleep(0.2)
        state = jobs.read(root, state.id)
        seen.add((state.step, round(state.progress, 2)))
    assert state.status == jobs.DONE, state.error
    assert state.result == {"n": 12} and state.progress == 1.0
    # the tqdm bar moved the job inside the step's 0-0.8 span
    assert any(step == "counting" and 0 < p <= 0.8 for step, p in seen), seen
    assert [s.id for s in jobs.list_jobs(root, "toy")] == [state.id]


def test_job_errors_are_one_line_messages_and_tracebacks_stay_in_the_log(tmp_path, toy):
    root = tmp_path / "jobs"
    failed = jobs.submit(root, "toy", toy, {"n": 1, "fail": True}, background=False)
    assert failed.status == jobs.FAILED
    assert failed.error == "the input is unusable (give another one)"
    crashed = jobs.submit(root, "toy", toy, {"n": 1, "crash": True}, background=False)
    assert crashed.status == jobs.FAILED
    assert crashed.error.startswith("unexpected error: ValueError: boom") and "Traceback" not in crashed.error
    assert "Traceback" in (root / crashed.id / "log.txt").read_text()


def test_a_job_whose_process_died_reads_as_interrupted(tmp_path, toy):
    root = tmp_path / "jobs"
    state = jobs.submit(root, "toy", toy, {"n": 1}, background=False)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    data = json.loads((root / state.id / "state.json").read_text())
    data.update(status=jobs.RUNNING, pid=dead.pid, finished=None)
    (root / state.id / "state.json").write_text(json.dumps(data))
    again = jobs.read(root, state.id)
    assert again.status == jobs.INTERRUPTED and "start it again" in again.error


def test_a_running_job_can_be_stopped(tmp_path, toy):
    root = tmp_path / "jobs"
    state = jobs.submit(root, "toy", toy, {"n": 400, "sleep": 0.05})
    deadline = time.time() + 30
    while jobs.read(root, state.id).status != jobs.RUNNING and time.time() < deadline:
        time.sleep(0.1)
    stopped = jobs.cancel(root, state.id)
    assert stopped.status == jobs.CANCELLED
    assert not jobs.read(root, state.id).active


def test_job_targets_and_parameters_are_checked(tmp_path):
    with pytest.raises(VoiceTwinError, match="module:function"):
        jobs.submit(tmp_path, "x", "no_colon", {})
    with pytest.raises(VoiceTwinError, match="JSON"):
        jobs.submit(tmp_path, "x", "a:b", {"array": np.zeros(2)})


# --------------------------------------------------------------------------------------------------- projects


def test_create_project_records_consent_and_refuses_gaps(tmp_path):
    slug, message = make(tmp_path, document="")
    assert slug is None and "document reference" in message
    slug, message = make(tmp_path, name="")
    assert slug is None and "name" in message
    slug, message = make(tmp_path, expires="31/12/2099")
    assert slug is None and "YYYY-MM-DD" in message
    assert P.list_projects(tmp_path) == []  # nothing half-made stays behind

    slug, message = make(tmp_path)
    assert slug == "ivan-petrov" and "Project created" in message
    project = P.open_project(tmp_path, slug)
    record = json.loads((project.dir / "consent.json").read_text())
    assert record["relation"] == "estate" and record["scope"] == ["speech"]
    assert record["productions"] == ["The Last Letter"] and record["document"] == "contract 2025-114"
    assert "Estate of Ivan Petrov" in P.consent_summary(project)
    assert P.default_production(project) == "The Last Letter"
    again, message = make(tmp_path)
    assert again is None and "already exists" in message


def test_building_with_expired_consent_is_refused_with_the_reason(tmp_path):
    slug, _ = make(tmp_path, expires="2001-01-01")
    message = app.start_build(tmp_path, slug, "Standard", None)
    assert "expired on 2001-01-01" in message and "Traceback" not in message
    assert jobs.list_jobs(P.open_project(tmp_path, slug).jobs) == []


def test_handlers_say_what_is_missing(tmp_path):
    slug, _ = make(tmp_path)
    assert "nothing to render" in app.start_render(tmp_path, slug, "Convert a performer's take", None, "", None, "",
                                                   0, True, 1.0, "Russian", "The Last Letter")
    assert "type the line" in app.start_render(tmp_path, slug, "Type a line", None, "  ", None, "", 0, True, 1.0,
                                               "Russian", "The Last Letter")
    assert "upload" in app.start_ingest(tmp_path, slug, [], [], "Russian")
    assert "no project is open" in app.start_ingest(tmp_path, "", [], [], "Russian")
    assert "face-swapped clip" in app.start_lipsync(tmp_path, slug, None, None)
    assert "no lines" in app.start_scene(tmp_path, slug, [["", "", "", "", "", ""]], "", "", "", [])


def test_a_job_that_cannot_run_fails_with_a_plain_message(tmp_path):
    slug, _ = make(tmp_path)
    state = P.start(P.open_project(tmp_path, slug), P.BUILD, {"steps": 1}, "Building the voice", background=False)
    assert state.status == jobs.FAILED and "archive has not been processed" in state.error
    html = app.progress_html(state)
    assert 'data-status="failed"' in html and "archive has not been processed" in html


def test_archive_view_lists_kept_and_rejected_clips_with_reasons(tmp_path):
    slug, _ = make(tmp_path)
    project = P.open_project(tmp_path, slug)
    (project.dataset / "clips").mkdir(parents=True)
    sr = 16000
    save_audio(project.dataset / "clips" / "a.wav", 0.1 * np.sin(np.arange(sr) / 10).astype(np.float32), sr)
    save_audio(project.dataset / "clips" / "b.wav", 0.1 * np.sin(np.arange(sr) / 7).astype(np.float32), sr)
    write_manifest(project.dataset / "manifest.jsonl", [
        Clip("a", "clips/a.wav", "/x/tape1.mp3", 0.0, 1.0, 1.0, sr, speaker_similarity=0.91, snr_db=30.0),
        Clip("b", "clips/b.wav", "/x/tape1.mp3", 2.0, 3.0, 1.0, sr, kept=False, reason="other_speaker",
             speaker_similarity=0.41),
        Clip("c", None, "/x/tape1.mp3", 4.0, 4.5, 0.5, sr, kept=False, reason="music"),
    ])
    view = app.ingest_view(project)
    assert "Kept 1 clip(s)" in view["report"]
    assert "someone else speaking" in view["report"] and "music, not speech" in view["report"]
    assert [row[0] for row in view["rows"]] == ["✓ kept", "✗ rejected", "✗ rejected"]
    assert [c[1] for c in view["choices"]] == ["a", "b"]  # the clips with audio are playable


def test_progress_html_shows_step_detail_and_percentage():
    state = jobs.JobState(id="x", kind="build", title="Building the voice", status=jobs.RUNNING, progress=0.42,
                          step="learning the voice", detail="training 420/1000", started=time.time() - 75)
    html = app.progress_html(state)
    assert "Building the voice: learning the voice — training 420/1000" in html
    assert 'data-progress="42"' in html and "1 min" in html


def test_players_are_redrawn_only_when_they_change_per_page():
    shown = app.ShownPanels(pages=2)
    assert shown.changed("a", {"render.result": "one.wav", "render.files": None}) == {"render.result", "render.files"}
    assert shown.changed("a", {"render.result": "one.wav", "render.files": None}) == set()
    assert shown.changed("a", {"render.result": "two.wav", "render.files": None}) == {"render.result"}
    assert shown.changed("b", {"render.result": "two.wav"}) == {"render.result"}  # another page draws its own
    shown.changed("c", {})  # a third page: the least recently polled one ("a") is forgotten
    assert shown.changed("a", {"render.result": "two.wav"}) == {"render.result"}
    assert shown.changed("b", {"render.result": "two.wav"}) == {"render.result"}  # and "a" coming back pushed out "b"



# --------------------------------------------------------------------------------------------------- the app


def test_the_library_does_not_import_gradio():
    code = "import sys, voicetwin, voicetwin.production.jobs, voicetwin.cli; sys.exit('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_demo_command_and_app_build(tmp_path):
    from voicetwin.cli import build_parser

    args = build_parser().parse_args(["demo", "--project-dir", str(tmp_path), "--password", "pw"])
    assert args.host == "127.0.0.1" and args.password == "pw" and args.port is None
    blocks = app.build_app(tmp_path / "projects")
    assert (tmp_path / "projects").is_dir()
    import gradio as gr

    assert isinstance(blocks, gr.Blocks) and len(blocks.fns) >= 5  # the steps' buttons are wired to handlers


def test_uploads_keep_their_names_and_missing_uploads_are_reported(tmp_path):
    src = tmp_path / "take 1.wav"
    src.write_bytes(b"RIFF")
    out = P.save_uploads([str(src)], tmp_path / "dest")
    assert out == [tmp_path / "dest" / "take 1.wav"] and out[0].read_bytes() == b"RIFF"
    with pytest.raises(InputError, match="upload it again"):
        P.save_uploads([str(tmp_path / "gone.wav")], tmp_path / "dest")
    assert os.path.exists(tmp_path / "take 1.wav")  # inputs are never moved


def test_consent_can_be_replaced_and_travels_into_the_voice_folder(tmp_path):
    slug, _ = make(tmp_path)
    project = P.open_project(tmp_path, slug)
    project.voice.mkdir(parents=True)
    message = app.update_consent(tmp_path, slug, "The person themself", "Ivan Petrov", ["Singing"], "", "", "letter 7")
    assert "Consent updated" in message
    for folder in (project.dir, project.voice):
        record = json.loads((folder / "consent.json").read_text())
        assert record["scope"] == ["singing"] and record["productions"] == [] and record["document"] == "letter 7"
    assert "nothing" in app.update_consent(tmp_path, slug, "The person themself", "Ivan Petrov", [], "", "", "x")


def test_consent_refusals_point_at_the_page_not_the_command_line(tmp_path):
    from voicetwin.errors import ConsentError

    slug, _ = make(tmp_path)
    project = P.open_project(tmp_path, slug)
    record = P.load_consent(project)
    with pytest.raises(ConsentError) as refused:
        P.check(project, "singing", "The Last Letter", record=record)
    assert "outside the consent's scope" in str(refused.value) and "'Project & consent' tab" in str(refused.value)
    assert "voicetwin consent" not in str(refused.value)
    with pytest.raises(ConsentError, match="Production box"):
        P.check(project, "speech", None, record=record)
    with pytest.raises(ConsentError, match="not covered"):
        P.check(project, "speech", "Another Film", record=record)
    assert P.check(project, "speech", "the last letter", record=record) is record


def test_a_reused_process_id_does_not_keep_a_dead_job_running(tmp_path, toy):
    root = tmp_path / "jobs"
    state = jobs.submit(root, "toy", toy, {"n": 1}, background=False)
    data = json.loads((root / state.id / "state.json").read_text())
    # this test's own process is alive, but it started long after the job claims to have started: a reused pid
    data.update(status=jobs.RUNNING, pid=os.getpid(), started=time.time() - 365 * 86400, finished=None)
    (root / state.id / "state.json").write_text(json.dumps(data))
    assert jobs.read(root, state.id).status == jobs.INTERRUPTED
    data.update(status=jobs.RUNNING, started=time.time())
    (root / state.id / "state.json").write_text(json.dumps(data))
    assert jobs.read(root, state.id).status == jobs.RUNNING  # the process that runs it inline is alive


def test_the_demo_listens_on_localhost_and_asks_for_the_password(tmp_path):
    import socket
    import urllib.error
    import urllib.parse
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = app.launch(tmp_path / "projects", port=port, password="open sesame", block=False)
    try:
        base = f"http://127.0.0.1:{port}"
        assert served.server_name == "127.0.0.1"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/config", timeout=10)
        assert refused.value.code == 401

        def login(password: str) -> int:
            data = urllib.parse.urlencode({"username": "producer", "password": password}).encode()
            try:
                return urllib.request.urlopen(f"{base}/login", data=data, timeout=10).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert login("wrong") == 400
        assert login("open sesame") == 200
    finally:
        served.close()



# --------------------------------------------------------------------------------------------------- the new flow


def fake_voice(folder: Path, consent: bool = True, subject: str = "Nikolai Orlov") -> Path:
    """A folder laid out as a voice (config.json of a voicetwin voice, weights, consent), enough to open it."""
    from voicetwin.consent import ConsentRecord, save_consent

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "voicetwin-voice", "format_version": 1}))
    (folder / "model.safetensors").write_bytes(b"weights")
    if consent:
        save_consent(folder, ConsentRecord(subject=subject, granted_by="Estate of Nikolai Orlov", relation="estate",
                                           scope=("speech",), productions=("The Last Letter",),
                                           document="contract 7"))
    return folder


def test_the_voice_model_type_the_demo_looks_for_is_the_voices():
    from voicetwin.voice.model import MODEL_TYPE

    assert P.VOICE_MODEL_TYPE == MODEL_TYPE


def test_a_voice_on_disk_opens_as_a_project_that_can_speak_at_once(tmp_path):
    projects = tmp_path / "projects"
    quickstart = tmp_path / "out" / "quickstart"
    voice = fake_voice(quickstart / "voice")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in voice.iterdir())

    assert P.find_voices([tmp_path / "out"]) == [voice.resolve()]
    slug, message = app.open_voice(projects, str(quickstart))  # the folder holding voice/, as make quickstart leaves it
    assert slug == "nikolai-orlov" and "Opened: Nikolai Orlov" in message and "Speak & sing" in message
    project = P.open_project(projects, slug)
    assert project.has_voice() and (project.voice / "model.safetensors").read_bytes() == b"weights"
    assert P.load_consent(project).document == "contract 7" and P.default_production(project) == "The Last Letter"
    assert project.info()["source"] == str(voice.resolve())
    assert sorted((p.name, p.stat().st_mtime_ns) for p in voice.iterdir()) == before  # the original is untouched
    assert not [p for p in projects.iterdir() if p.name.startswith(".")]  # no staging folder left behind

    # opening it again opens the same project; a project of the demo opens as it is
    assert app.open_voice(projects, str(voice))[0] == slug
    assert P.open_from_disk(projects, project.dir) == project
    assert P.open_from_disk(projects, project.voice) == project  # its own voice folder opens it too
    assert [p.dir.name for p in P.list_projects(projects)] == [slug]
    # another voice of the same person gets its own folder
    assert app.open_voice(projects, str(fake_voice(tmp_path / "v2")))[0] == "nikolai-orlov-2"


def test_what_cannot_be_opened_is_refused_with_the_reason(tmp_path):
    projects = tmp_path / "projects"
    cases = {
        "": "no folder given",
        str(tmp_path / "missing"): "no such folder",
        str(fake_voice(tmp_path / "unconsented", consent=False)): "no consent record",
        str(tmp_path): "not a voice folder",
    }
    for path, reason in cases.items():
        slug, message = app.open_voice(projects, path)
        assert slug is None and reason in message and message.startswith(app.REFUSED), (path, message)
    assert "voicetwin consent create" in app.open_voice(projects, str(tmp_path / "unconsented"))[1]
    other = tmp_path / "elsewhere" / "someone"
    other.mkdir(parents=True)
    (other / "project.json").write_text("{}")
    assert "outside the demo" in app.open_voice(projects, str(other))[1]
    assert P.list_projects(projects) == []


def test_tabs_and_buttons_open_as_their_step_becomes_possible(tmp_path):
    assert not any(app.gates(None).values())
    assert "Start here" in app.next_step(None) and "make quickstart" in app.next_step(None)

    slug, message = make(tmp_path)
    assert "Next: upload the person's archive recordings" in message.replace("**", "")
    project = P.open_project(tmp_path, slug)
    gates = app.gates(project)
    assert gates["tab-archive"] and gates["tab-build"] and gates["tab-lipsync"] and gates["update-consent"]
    assert not gates["start-build"] and not gates["tab-render"] and not gates["tab-scene"]

    project.dataset.mkdir()
    write_manifest(project.dataset / "manifest.jsonl", [])
    assert app.gates(project)["start-build"] and not app.gates(project)["tab-render"]
    assert "3 · Build the voice" in app.next_step(project)

    fake_voice(project.voice, consent=False)
    assert all(app.gates(project).values())
    assert "the voice is ready" in app.next_step(project)
    assert "The voice is ready" in app.build_view(project)["report"]  # a voice without its build report


def test_one_status_panel_per_task_shows_a_refusal_until_a_newer_job(tmp_path, toy):
    idle = app.progress_html(None, "Choose what to render.")
    assert 'data-status="none"' in idle and "Choose what to render." in idle

    root = tmp_path / "jobs"
    older = jobs.submit(root, "toy", toy, {"n": 1}, background=False)
    message = app.start_render(tmp_path, make(tmp_path)[0], "Type a line", None, " ", None, "", 0, True, 1.0,
                               "Russian", "The Last Letter")
    assert app.refused(message)
    notice = app.notice_for(message)
    refused = app.progress_html(None, "Choose what to render.", notice)
    assert 'data-status="refused"' in refused and "Cannot do this: nothing to render" in refused
    assert "starting" not in refused and "Choose what to render." not in refused

    assert older.created < notice["at"]
    assert 'data-status="refused"' in app.progress_html(older, "", notice)  # the refusal is the news
    newer = jobs.submit(root, "toy", toy, {"n": 1, "fail": True}, background=False)
    shown = app.progress_html(newer, "", notice)  # a job started after the refusal replaces it
    assert 'data-status="failed"' in shown and "the input is unusable" in shown
    assert "nothing to render" not in shown and "starting" not in shown
    running = jobs.JobState(id="r", kind="toy", title="Counting", status=jobs.RUNNING, progress=0.5,
                            created=notice["at"] - 1, started=notice["at"] - 1)
    both = app.progress_html(running, "", notice)  # refused while a job runs: the bar stays, the reason shows
    assert 'data-status="running"' in both and "Cannot do this: nothing to render" in both
    assert not app.refused("Started.")


def test_the_scene_table_becomes_a_scene_file_and_back(tmp_path):
    import yaml

    rows = [["l1", "NIKOLAI", "1", "3.5", "Здравствуйте.", ""], ["", "NIKOLAI", "4", "00:00:06.500", "", "take.wav"],
            [None, None, None, None, None, None], ["l3", "ANNA", "7", "9", "", "song.mid"]]
    text = app.P.scene_yaml(rows, "The Last Letter", "12")
    data = yaml.safe_load(text)
    assert data["production"] == "The Last Letter" and data["duration"] == 12.0
    assert data["characters"] == {"NIKOLAI": {"voice": "voice"}, "ANNA": {"voice": "voice"}}
    assert data["lines"] == [
        {"id": "l1", "character": "NIKOLAI", "start": 1.0, "end": 3.5, "text": "Здравствуйте."},
        {"id": "l2", "character": "NIKOLAI", "start": 4.0, "end": "00:00:06.500", "recording": "take.wav"},
        {"id": "l3", "character": "ANNA", "start": 7.0, "end": 9.0, "score": "song.mid"},
    ]
    back, production, duration = P.scene_table(text)
    assert back[0] == ["l1", "NIKOLAI", "1.0", "3.5", "Здравствуйте.", ""] and back[2][5] == "song.mid"
    assert (production, duration) == ("The Last Letter", "12.0")

    # what the table does not show stays: output settings, a character's own voice, a line's extra fields, a cue
    base = ("production: Old\nvideo: picture.mp4\noutput: {loudness: -16}\nsubtitles: lines.srt\n"
            "characters:\n  ANNA: {voice: none, base: 'espeak:ru+f2'}\n"
            "lines:\n  - {id: l3, character: ANNA, start: 7, end: 9, text: x, gain: -2}\n"
            "  - {id: l4, character: ANNA, cue: 2, text: y}\n")
    merged = yaml.safe_load(P.scene_yaml(rows + [["l4", "ANNA", "", "", "Добрый вечер.", ""]], "New", "", base))
    assert merged["production"] == "New" and "duration" not in merged
    assert merged["video"] == "picture.mp4" and merged["output"] == {"loudness": -16}
    assert merged["characters"]["ANNA"] == {"voice": "none", "base": "espeak:ru+f2"}
    assert merged["lines"][2] == {"id": "l3", "character": "ANNA", "start": 7.0, "end": 9.0, "score": "song.mid",
                                  "gain": -2}
    assert merged["lines"][3] == {"id": "l4", "character": "ANNA", "cue": 2, "text": "Добрый вечер."}

    for bad, reason in (([["l1", "", "1", "2", "Hi", ""]], "character column is empty"),
                        ([["l1", "A", "1", "", "Hi", ""]], "both its start and its end"),
                        ([["l1", "A", "", "", "Hi", ""]], "no start and end"),
                        ([["l1", "A", "1", "2", "Hi", "take.wav"]], "both text and a file"),
                        ([["l1", "A", "1", "2", "", ""]], "nothing to say"),
                        ([], "no lines")):
        with pytest.raises(InputError, match=reason):
            P.scene_yaml(bad)
    with pytest.raises(InputError, match="cannot be read at line 3"):
        P.scene_yaml(rows, base="production: x\nlines: [\n")


def test_lines_added_to_the_table_follow_the_last_one():
    rows = app.add_scene_line([["l1", "NIKOLAI", "1", "3.5", "Hi", ""], ["", "", "", "", "", ""]], "X")
    assert rows == [["l1", "NIKOLAI", "1", "3.5", "Hi", ""], ["l2", "NIKOLAI", "4", "6.5", "", ""]]
    assert app.add_scene_line([], "IVAN") == [["l1", "IVAN", "1", "3.5", "", ""]]
    assert app.default_character(None) == "VOICE"


def test_a_scene_made_in_the_table_is_written_with_its_media_and_checked(tmp_path):
    from voicetwin.production.scene import load_scene

    slug, _ = make(tmp_path / "projects")
    project = P.open_project(tmp_path / "projects", slug)
    fake_voice(project.voice)
    take = tmp_path / "take.wav"
    save_audio(take, 0.1 * np.sin(np.arange(16000) / 5).astype(np.float32), 16000)
    old_scene = tmp_path / "old.yaml"
    old_scene.write_text("lines: []\n")
    rows = [["l1", "IVAN", "1", "3", "Добрый вечер.", ""], ["l2", "IVAN", "4", "6", "", "take.wav"]]
    folder, scene = P.write_scene(project, P.scene_yaml(rows, "The Last Letter"), [str(take), str(old_scene)])
    assert scene == folder / "scene.yaml" and (folder / "take.wav").is_file() and not (folder / "old.yaml").exists()
    assert (folder / "voice").resolve() == project.voice.resolve()
    parsed = load_scene(scene)
    assert [line.source.kind for line in parsed.lines] == ["text", "recording"]
    assert parsed.production == "The Last Letter"

    rows_back, production, duration, text = app.scene_from_files([str(take), str(scene)])
    assert rows_back[1][5] == "take.wav" and production == "The Last Letter" and text == scene.read_text()
    assert app.scene_from_files([str(take)]) is None

    message = app.start_scene(tmp_path / "projects", slug, [["l1", "IVAN", "1", "3", "", "missing.wav"]],
                              "The Last Letter", "", "", [])
    assert app.refused(message) and "missing.wav" in message


def test_the_voices_offered_to_open_are_those_on_disk_not_the_demos_own(tmp_path):
    out = tmp_path / "out"
    quickstart = fake_voice(out / "quickstart" / "voice")
    slug, _ = make(out / "demo-projects")
    fake_voice(out / "demo-projects" / slug / "voice")
    blocks = app.build_app(out / "demo-projects", voice_roots=[out])
    offered = next(b for b in blocks.blocks.values() if getattr(b, "elem_id", None) == "open-path")
    assert [value for _, value in offered.choices] == [str(quickstart.resolve())]
    assert offered.value == str(quickstart.resolve())
