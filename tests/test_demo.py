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
    assert "scene" in app.start_scene(tmp_path, slug, [])


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
