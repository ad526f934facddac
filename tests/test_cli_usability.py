"""What a newcomer meets at the command line: outputs that cannot be written, file modes, quiet output, exact
durations, language codes, consent wording, output rate and level, interrupts."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicetwin.cli import build_parser, main
from voicetwin.errors import OutputError
from voicetwin.files import atomic_path, check_output_path, write_json

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
REPO = Path(__file__).resolve().parents[1]


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("voicetwin: error: ") and "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def tiny_voice(two_clip_dataset, tmp_path_factory) -> Path:
    """A voice built in seconds from two festvox-ru clips (MFCC content, three training steps)."""
    from voicetwin.consent import ConsentRecord
    from voicetwin.voice.model import BuildOptions, Voice

    root = two_clip_dataset
    record = ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker", scope=("speech", "singing"),
                           document="test voice from the Debian festvox-ru recordings")
    out = tmp_path_factory.mktemp("voices") / "tiny"
    Voice.build(root, out, BuildOptions(content="mfcc", steps=3, augment=0, batch_size=2), consent=record)
    return out


# --- 1. outputs that cannot be written are refused before any work -----------------------------------------------

def test_check_output_path(tmp_path):
    a_file = tmp_path / "take.wav"
    a_file.write_bytes(b"RIFF")
    assert check_output_path(tmp_path / "new" / "deeper" / "o.wav") == tmp_path / "new" / "deeper" / "o.wav"
    assert not (tmp_path / "new").exists()  # checking creates nothing
    assert check_output_path(tmp_path / "ds", directory=True) == tmp_path / "ds"
    with pytest.raises(OutputError, match="is a file, not a folder") as refused:
        check_output_path(a_file / "o.wav")
    assert str(a_file) in str(refused.value)
    with pytest.raises(OutputError, match="is a folder, not a file"):
        check_output_path(tmp_path)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_path(a_file, directory=True)
    if Path("/proc/self").is_dir():  # a place nobody can create files in, root included
        with pytest.raises(OutputError, match="cannot write"):
            check_output_path("/proc/voicetwin/o.wav")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]  # no probe left behind


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes in read-only folders")
def test_read_only_folder_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="Permission denied"):
            check_output_path(locked / "o.wav")
    finally:
        locked.chmod(0o755)


def test_commands_refuse_an_unwritable_output_before_rendering(tmp_path, capsys, monkeypatch):
    import voicetwin.synth.speak as speak_module

    def never(*_args, **_kwargs):
        raise AssertionError("rendered although the output cannot be written")

    monkeypatch.setattr(speak_module, "speak", never)
    in_the_way = tmp_path / "some_file.wav"
    in_the_way.write_bytes(b"x")
    cases = {
        "speak": ["speak", "--text", "Hello.", "--language", "en", "-o", str(in_the_way / "o.wav")],
        "speak into a folder": ["speak", "--text", "Hello.", "--language", "en", "-o", str(tmp_path)],
        "ingest": ["ingest", str(in_the_way), "--out", str(in_the_way / "ds")],
        "consent": ["consent", "create", str(in_the_way), "--subject", "A", "--document", "D"],
        "watermark": ["watermark", "embed", str(in_the_way), "-o", str(in_the_way / "m.wav"), "--voice-id", "1"],
        "dub": ["dub", str(in_the_way), "-o", str(in_the_way / "out")],
        "lipsync": ["lipsync", "render", str(in_the_way), "--audio", str(in_the_way), "-o", str(in_the_way / "o.mp4")],
        "sing": ["sing", "--score", str(in_the_way), "-o", str(in_the_way / "s.wav")],
    }
    for name, argv in cases.items():
        assert main(argv) == 2, name
        err = _one_line_error(capsys)
        assert str(in_the_way) in err or str(tmp_path) in err, (name, err)
        assert "not a" in err, (name, err)


def test_convert_refuses_an_unwritable_output(tiny_voice, tmp_path, capsys):
    source = tmp_path / "take.wav"
    sf.write(source, 0.1 * np.sin(np.arange(16_000) / 16_000 * 2 * np.pi * 150), 16_000)
    assert main(["convert", str(source), "--voice", str(tiny_voice), "-o", str(source / "o.wav")]) == 2
    assert "is a file, not a folder" in _one_line_error(capsys)


def test_an_os_error_while_writing_is_one_line(tmp_path, capsys, monkeypatch):
    import voicetwin.consent as consent_module

    def full_disk(path, *_args, **_kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(consent_module, "write_json", full_disk)
    code = main(["consent", "create", str(tmp_path / "v"), "--subject", "A", "--document", "D"])
    err = _one_line_error(capsys)
    assert code == 2 and "No space left on device" in err and "consent.json" in err


# --- 2. files follow the umask -----------------------------------------------------------------------------------

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    from voicetwin.audio import save_audio

    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"a": 1})
        save_audio(tmp_path / "a.wav", np.zeros(1600, np.float32), 16_000)
        with atomic_path(tmp_path / "sub" / "b.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("a.json", "a.wav", "sub/b.bin"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


# --- 3. quiet by default -----------------------------------------------------------------------------------------

def _run_cli(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO), **(env or {})}
    environment.pop("VOICETWIN_VERBOSE", None)
    return subprocess.run([sys.executable, "-m", "voicetwin", *args], cwd=cwd, capture_output=True, text=True,
                          env=environment, timeout=600)


THIRD_PARTY = ("Warning", "pkg_resources", "W0000", "I0000", "INFO:", "absl", "TensorFlow", "share=True")


def test_speak_and_convert_piped_to_a_file_are_plain_lines(tiny_voice, tmp_path):
    speak = _run_cli(["speak", "--voice", str(tiny_voice), "--text", "Привет, это тест.", "--language", "ru",
                      "-o", "line.wav"], tmp_path)
    convert = _run_cli(["convert", "line.wav", "--voice", str(tiny_voice), "-o", "converted"], tmp_path)
    for run in (speak, convert):
        assert run.returncode == 0, run.stderr
        text = run.stdout + run.stderr
        assert "\r" not in text and not any(word in text for word in THIRD_PARTY), text
    assert "converting: 1/1" in convert.stderr  # progress as plain lines
    (tmp_path / "empty.wav").write_bytes(b"")
    failed = _run_cli(["convert", "empty.wav", "--voice", str(tiny_voice), "-o", "converted"], tmp_path)
    lines = failed.stderr.splitlines()
    assert failed.returncode == 2 and "\r" not in failed.stderr
    assert lines[-1].startswith("voicetwin: error: empty.wav") and lines[0].startswith("converting: 0/1")


@pytest.mark.skipif(not MEGAMIND.exists(), reason="opencv-doc's Megamind.avi is not installed")
def test_lipsync_is_quiet_unless_verbose(tmp_path):
    quiet = _run_cli(["lipsync", "score", str(MEGAMIND)], tmp_path)
    assert quiet.returncode == 0, quiet.stderr
    assert "\r" not in quiet.stderr and not any(word in quiet.stderr for word in THIRD_PARTY), quiet.stderr
    assert "landmarks: 270/270" in quiet.stderr and "offset" in quiet.stdout
    loud = _run_cli(["--verbose", "lipsync", "score", str(MEGAMIND), "--json"], tmp_path)
    assert loud.returncode == 0 and "TensorFlow Lite" in loud.stderr  # --verbose shows what the libraries say


def test_progress_lines_when_not_on_a_terminal():
    from voicetwin.console import progress_bar

    stream = io.StringIO()
    bar = progress_bar(total=8, desc="converting", unit="file", file=stream)
    for _ in range(8):
        bar.update(1)
    bar.close()
    for _ in progress_bar(range(3), desc="quiet", file=stream, enabled=False):
        pass
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("converting: 0/8 file") and lines[-1].startswith("converting: 8/8 file (100%)")
    assert "quiet" not in text


def test_help_shows_each_default_once():
    parser = build_parser()
    seen = 0
    stack = [parser]
    while stack:
        p = stack.pop()
        text = p.format_help()
        seen += 1
        assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text
        for chunk in text.split("\n  -")[1:]:  # one option's help each
            assert chunk.count("default") <= 1, chunk
        for action in p._actions:
            if action.choices and isinstance(action.choices, dict):
                stack.extend(action.choices.values())
    assert seen > 20
    assert "--verbose" in parser.format_help()


def test_gradio_share_hint_is_not_printed(tmp_path, capsys):
    pytest.importorskip("gradio")
    from voicetwin.demo import app

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    served = app.launch(tmp_path / "projects", port=port, block=False)
    try:
        out = capsys.readouterr()
        text = out.out + out.err
        assert "share=True" not in text and "public link" not in text
        assert f"http://127.0.0.1:{port}" in text  # where to open it, in one line
    finally:
        served.close()


# --- 5. --duration exact to the sample ----------------------------------------------------------------------------

def test_duration_is_exact_to_the_sample(tiny_voice, tmp_path):
    from voicetwin.synth.speak import fit_length, speak

    audio, sr = speak(tiny_voice, "Привет, это тест.", language="ru", duration=1.9)
    assert len(audio) == round(1.9 * sr)
    for seconds, rate in ((3.2, None), (3.2, 48_000)):
        out = tmp_path / f"line_{rate}.wav"
        argv = ["speak", "--text", "Hello there, this is a test.", "--language", "en", "--duration", str(seconds),
                "-o", str(out)] + (["--sample-rate", str(rate)] if rate else [])
        assert main(argv) == 0
        info = sf.info(str(out))
        assert info.frames == round(seconds * info.samplerate), (info.frames, info.samplerate)
    # padding and trimming happen in the silence at the ends
    x = np.zeros(1000, np.float32)
    x[300:700] = 0.5
    longer, shorter = fit_length(x, 1100, 1000), fit_length(x, 800, 1000)
    assert len(longer) == 1100 and np.count_nonzero(longer) == 400
    assert len(shorter) == 800 and np.count_nonzero(shorter) == 400


# --- 6. language codes -------------------------------------------------------------------------------------------

def test_language_codes_are_checked_once_with_the_choices(tmp_path, capsys):
    source = tmp_path / "speech.wav"
    sf.write(source, 0.1 * np.random.default_rng(0).standard_normal(32_000), 16_000)
    runs = {
        "speak": ["speak", "--text", "Hello.", "--language", "xx", "-o", str(tmp_path / "o.wav")],
        "ingest": ["ingest", str(source), "--language", "klingon", "--out", str(tmp_path / "ds")],
        "sing": ["sing", "--score", str(source), "--language", "xx", "-o", str(tmp_path / "s.wav")],
    }
    for name, argv in runs.items():
        assert main(argv) == 2, name
        err = _one_line_error(capsys)
        assert "--language" in err and "ru or en" in err and " de," in err, (name, err)
        assert "espeak-ng has no voice" not in err
    assert not (tmp_path / "ds").exists() and not (tmp_path / "o.wav").exists()


def test_every_listed_language_has_an_espeak_voice():
    from voicetwin.text.normalization import SPEECH_LANGUAGES, check_language

    # in a child process: selecting 114 voices changes libespeak-ng's global state for later tests
    script = ("from voicetwin.synth.speak import EspeakBase\n"
              "from voicetwin.text.normalization import SPEECH_LANGUAGES\n"
              "print(' '.join(c for c in SPEECH_LANGUAGES if EspeakBase(c).language == c))")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == list(SPEECH_LANGUAGES)
    assert check_language("en-US") == "en" and check_language("RU") == "ru"


# --- 7. consent wording -------------------------------------------------------------------------------------------

def test_consent_create_refuses_a_past_expiry_and_speaks_cli_on_a_second_record(tmp_path, capsys):
    voice = tmp_path / "v"
    base = ["consent", "create", str(voice), "--subject", "A", "--document", "contract 7"]
    assert main(base + ["--expires", "2020-01-01"]) == 2
    err = _one_line_error(capsys)
    assert "2020-01-01" in err and "past" in err and not (voice / "consent.json").exists()
    assert main(base) == 0
    capsys.readouterr()
    assert main(base) == 2
    err = _one_line_error(capsys)
    assert "--force" in err and "overwrite=True" not in err
    assert main(base + ["--force"]) == 0


# --- 8. transposition, output rate and level ------------------------------------------------------------------

def test_sing_auto_transpose_says_the_shift(tmp_path, capsys):
    from voicetwin.synth.sing import Note, Score, set_lyrics, write_midi

    notes = [Note(0.5 * i, 0.45, float(p)) for i, p in enumerate((67, 67, 69, 67))]
    score = write_midi(set_lyrics(Score(notes, 120.0), "мо-ло-ко _", "ru"), tmp_path / "song.mid")
    out = tmp_path / "song.wav"
    assert main(["sing", "--score", str(score), "--language", "ru", "--transpose", "auto", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    line = [x for x in captured.err.splitlines() if "transpose" in x]
    assert len(line) == 1 and "semitone" in line[0], captured.err
    sidecar = json.loads((tmp_path / "song.wav.provenance.json").read_text())
    shift = sidecar["extra"]["transpose_semitones"]
    assert shift == round(shift) and shift < 0 and f"{shift:+g} semitones" in line[0]


def test_generated_lines_share_one_level_and_state_rate_and_level(tiny_voice, tmp_path, capsys):
    from voicetwin.audio import LINE_LOUDNESS, load_audio, loudness_lufs
    from voicetwin.production.mixdown import true_peak_db

    spoken, converted = tmp_path / "spoken.wav", tmp_path / "converted.wav"
    assert main(["speak", "--voice", str(tiny_voice), "--text", "Привет, это тест.", "--language", "ru",
                 "-o", str(spoken)]) == 0
    printed = capsys.readouterr().out
    assert "22050 Hz" in printed and "LUFS" in printed  # the voice's mel rendered by HiFi-GAN
    assert main(["convert", str(spoken), "--voice", str(tiny_voice), "--sample-rate", "16000",
                 "-o", str(converted)]) == 0
    assert "16000 Hz" in capsys.readouterr().out
    for path, rate in ((spoken, 22_050), (converted, 16_000)):
        audio, sr = load_audio(path)
        assert sr == rate
        assert abs(loudness_lufs(audio, sr) - LINE_LOUDNESS) < 0.5, path
        assert true_peak_db(audio) < -0.8, path  # -1 dBTP, give or take the watermark
    assert main(["speak", "--text", "Hello.", "--sample-rate", "8000", "-o", str(tmp_path / "low.wav")]) == 2
    assert "--sample-rate" in _one_line_error(capsys)


# --- 10. interrupts --------------------------------------------------------------------------------------------------

def test_interrupt_mentions_resuming_only_where_it_resumes(tmp_path, capsys, monkeypatch):
    import voicetwin.ingest.pipeline as ingest_module
    import voicetwin.synth.speak as speak_module

    def interrupted(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(speak_module, "speak", interrupted)
    monkeypatch.setattr(ingest_module, "ingest", interrupted)
    assert main(["speak", "--text", "Hello.", "-o", str(tmp_path / "o.wav")]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "resume" not in err
    source = tmp_path / "a.wav"
    sf.write(source, np.zeros(1600), 16_000)
    assert main(["ingest", str(source), "--out", str(tmp_path / "ds")]) == 130
    assert "re-run the same command to resume" in capsys.readouterr().err
