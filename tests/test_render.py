"""The render service and the package layout: every generated voice leaves marked, with provenance, or not at all;
imports flow one way; the dubbing cache follows the code a line's rendering imports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import voicetwin
from voicetwin import RenderRequest, render, render_file, sources
from voicetwin.audio.io import load_audio
from voicetwin.cli import main
from voicetwin.errors import ConfigError, OutputError
from voicetwin.production.dub import ALIGN_ENTRY, RENDER_ENTRY
from voicetwin.production.provenance import sidecar_path
from voicetwin.production.watermark import detect
from voicetwin.synth.speak import SpeakOptions

FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
ESPEAK_EN = SpeakOptions(language="en", base="espeak")

# the stages, bottom to top: a module may import its own level and the levels below, never above
LEVELS = {
    "ground": {"errors", "files", "hub", "manifest", "sources", "consent", "console", "checkpoint", "training"},
    "signal": {"audio", "text"},
    "models": {"speaker", "ingest", "voice", "synth", "video", "eval"},
    "production": {"production"},
    "top": {"cli", "demo", "examples", "__main__"},
}
ORDER = list(LEVELS)


def _level(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return ORDER.index("top")  # the package itself: its lazy re-exports reach every stage
    for i, name in enumerate(ORDER):
        if parts[1] in LEVELS[name]:
            return i
    raise AssertionError(f"{module} belongs to no stage of the layout")


def test_imports_form_no_cycle_and_flow_down_the_stages():
    graph = sources.import_graph()
    assert "voicetwin.production.render" in graph and "voicetwin.synth.speak" in graph
    assert sources.find_cycle(graph) is None
    upward = [(m, t) for m, targets in graph.items() for t in targets if _level(t) > _level(m)]
    assert upward == []


def test_cycle_finder_finds_a_cycle():
    graph = {"a": frozenset({"b"}), "b": frozenset({"c"}), "c": frozenset({"a"}), "d": frozenset()}
    assert sources.find_cycle(graph) == ["a", "b", "c", "a"]
    assert sources.find_cycle({"a": frozenset({"b"}), "b": frozenset()}) is None


def test_no_module_imports_its_own_package_by_name_at_run_time():
    offenders = []
    for path in sources.ROOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if "import_module(f\"{__package__}" in text or "import_module(\"voicetwin" in text or "__import__(f\"{__package__}" in text:
            offenders.append(path.name)
    assert offenders == []


def test_dub_cache_key_covers_every_module_a_line_render_imports(tmp_path):
    on_path = sources.closure(*RENDER_ENTRY)
    for module in ("voicetwin.synth.acoustic", "voicetwin.synth.speak", "voicetwin.voice.model", "voicetwin.audio.world",
                   "voicetwin.voice.content", "voicetwin.production.render", "voicetwin.production.watermark"):
        assert module in on_path
    assert "voicetwin.cli" not in on_path and "voicetwin.demo.app" not in on_path
    assert "voicetwin.video.lipsync" in sources.closure(*ALIGN_ENTRY)

    copy = tmp_path / "voicetwin"
    shutil.copytree(sources.ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = sources.fingerprint(*RENDER_ENTRY, root=copy)
    assert before == sources.fingerprint(*RENDER_ENTRY)  # the copy hashes like the package
    for module in on_path:  # an edit anywhere on the path invalidates
        path = sources.module_file(module, copy)
        original = path.read_text(encoding="utf-8")
        path.write_text(original + "\n# edited\n", encoding="utf-8")
        assert sources.fingerprint(*RENDER_ENTRY, root=copy) != before, module
        path.write_text(original, encoding="utf-8")
    off = sources.module_file("voicetwin.cli", copy)
    off.write_text(off.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert sources.fingerprint(*RENDER_ENTRY, root=copy) == before  # the command line shapes no line


def test_public_api_names_the_render_service():
    assert voicetwin.render_file is render_file and voicetwin.RenderRequest is RenderRequest
    assert "render_file" in voicetwin.__all__ and "convert_files" in voicetwin.__all__
    with pytest.raises(ConfigError):
        RenderRequest("recording", "take.wav")  # converting needs a voice
    with pytest.raises(ConfigError):
        RenderRequest("poem", "words")


def test_render_marks_audio_in_memory():
    result = render(RenderRequest("text", "The render service marks every line it makes.", options=ESPEAK_EN))
    found = detect(result.audio, result.sample_rate)
    assert found.detected and found.payload.hex == result.payload["hex"]
    assert result.report["kind"] == "text" and result.report["seconds"] > 1.0


def test_too_short_to_carry_the_mark_is_refused_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "short.wav"
    with pytest.raises(OutputError, match="watermark"):
        render_file(RenderRequest("text", "Yes.", options=ESPEAK_EN), out)
    assert not out.exists() and not sidecar_path(out).exists()
    assert main(["speak", "--text", "Yes.", "--base", "espeak", "--language", "en", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "watermark" in err[0] and not out.exists()


def _assert_marked(path: Path) -> None:
    audio, sr = load_audio(path)
    found = detect(audio, sr)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert found.detected, path
    assert found.payload.hex == sidecar["extra"]["watermark"]["hex"]
    assert sidecar["extra"]["watermark"]["verified"] is True


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory) -> Path:
    import soundfile as sf

    from voicetwin.consent import ConsentRecord
    from voicetwin.manifest import Clip, write_manifest
    from voicetwin.voice.model import BuildOptions, Voice

    root = tmp_path_factory.mktemp("dataset")
    clips = []
    for wav in sorted((FESTVOX / "wav").glob("*.wav"))[:8]:
        info = sf.info(str(wav))
        clips.append(Clip(id=wav.stem, path=str(wav), source=str(wav), start=0.0, end=info.duration,
                          duration=info.duration, sample_rate=info.samplerate, language="ru"))
    write_manifest(root / "manifest.jsonl", clips)
    (root / "report.json").write_text("{}")
    out = tmp_path_factory.mktemp("voice") / "nsh"
    consent = ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker", scope=("speech", "singing"),
                            document="test voice from the Debian festvox-ru recordings")
    Voice.build(root, out, BuildOptions(content="mfcc", steps=5, augment=0, batch_size=4), consent=consent)
    return out


def test_every_command_that_writes_a_generated_voice_marks_it(tmp_path, tiny_voice, espeak):
    from voicetwin.synth.sing import Note, Score, write_midi

    take = espeak("a performer reads this line for the voice to say", "en")
    outs = {}
    outs["speak"] = tmp_path / "speak.wav"
    assert main(["speak", "--text", "Every line that leaves is marked.", "--base", "espeak", "--language", "en",
                 "-o", str(outs["speak"])]) == 0
    outs["convert"] = tmp_path / "convert.wav"
    assert main(["convert", str(take), "--voice", str(tiny_voice), "-o", str(outs["convert"])]) == 0
    score = Score([Note(0.5 * i, 0.45, 60 + i % 5, "la") for i in range(6)], tempo=120.0)
    midi = write_midi(score, tmp_path / "song.mid")
    outs["sing"] = tmp_path / "sing.wav"
    assert main(["sing", "--score", str(midi), "--lyrics", "la la la la la la", "--language", "en", "--base", "espeak",
                 "-o", str(outs["sing"])]) == 0
    outs["speak in the voice"] = tmp_path / "speak_voice.wav"
    assert main(["speak", "--voice", str(tiny_voice), "--text", "Спасибо, что вы пришли сегодня вечером.",
                 "--language", "ru", "--base", "espeak", "-o", str(outs["speak in the voice"])]) == 0
    for name, path in outs.items():
        _assert_marked(path)
    # and a voice whose consent does not cover the use writes nothing
    from voicetwin.consent import ConsentRecord, save_consent

    speech_only = tmp_path / "speech_only"
    shutil.copytree(tiny_voice, speech_only)
    save_consent(speech_only, ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker",
                                            scope=("speech",), document="speech only"), overwrite=True)
    refused = tmp_path / "refused.wav"
    assert main(["sing", "--voice", str(speech_only), "--score", str(midi), "--lyrics", "la la la la la la",
                 "--language", "en", "--base", "espeak", "-o", str(refused)]) == 2
    assert not refused.exists() and not sidecar_path(refused).exists()


def test_an_installed_wheel_serves_the_demo(tmp_path):
    """The demo ships inside the package: a wheel built from the tree, unpacked away from the source, answers
    ``voicetwin demo --help`` and finds its app module."""
    import os
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "dist"), str(root)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("voicetwin-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "voicetwin/demo/app.py" in names and "voicetwin/production/render.py" in names
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = ("import voicetwin, voicetwin.cli, importlib.util, sys; "
            "assert voicetwin.__file__.startswith(sys.argv[1]), voicetwin.__file__; "
            "assert importlib.util.find_spec('voicetwin.demo.app') is not None; "
            "voicetwin.cli.main(['demo', '--help'])")
    done = subprocess.run([sys.executable, "-c", code, str(site)], cwd=elsewhere, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert "usage: voicetwin demo" in done.stdout
