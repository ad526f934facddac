"""The command line: `voicetwin ingest` end to end, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
import soundfile as sf

from ingest_data import example_archive
from voicetwin.audio.io import save_audio
from voicetwin.cli import build_parser, main
from voicetwin.examples import write_video


def bad_inputs(folder):
    """name -> path of a file that must be refused."""
    folder.mkdir(exist_ok=True)
    text = folder / "notes.txt"
    text.write_text("minutes of the meeting\n" * 50)
    empty = folder / "empty.wav"
    empty.write_bytes(b"")
    silent = folder / "silent.wav"
    sf.write(silent, np.zeros(48_000, np.float32), 16_000)
    good = save_audio(folder / "good.mp3", 0.3 * np.sin(np.arange(48_000) / 16_000 * 2 * np.pi * 220), 16_000)
    corrupt = folder / "corrupt.mp3"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, good.stat().st_size, dtype=np.uint8).tobytes())
    novideo = write_video(folder / "no_sound.mp4", None, seconds=1.0)
    return {"text file": text, "empty file": empty, "silent file": silent, "corrupt mp3": corrupt,
            "video without audio": novideo, "missing path": folder / "does_not_exist.wav"}


@pytest.mark.parametrize("case", ["text file", "empty file", "silent file", "corrupt mp3", "video without audio",
                                  "missing path"])
def test_bad_input_one_line_exit_2(tmp_path, capsys, case):
    path = bad_inputs(tmp_path / "in")[case]
    out = tmp_path / "dataset"
    code = main(["ingest", str(path), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("voicetwin: error: ") and path.name in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing half-written


def test_bad_reference_is_named(tmp_path, capsys):
    files = bad_inputs(tmp_path / "in")
    good = tmp_path / "speech.wav"
    sf.write(good, 0.1 * np.random.default_rng(0).standard_normal(32_000), 16_000)
    code = main(["ingest", str(good), "--reference", str(files["empty file"]), "--out", str(tmp_path / "ds")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "empty.wav" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "ds").exists()


def test_bad_option_exits_2(tmp_path, capsys):
    good = tmp_path / "speech.wav"
    sf.write(good, 0.1 * np.random.default_rng(0).standard_normal(32_000), 16_000)
    code = main(["ingest", str(good), "--out", str(tmp_path / "ds"), "--threshold", "3"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "threshold" in err and len(err.splitlines()) == 1


def test_ingest_json(tmp_path_factory, capsys):
    archive = example_archive(tmp_path_factory.getbasetemp())
    out = tmp_path_factory.mktemp("cli") / "dataset"
    refs = archive.references[0].parent
    args = ["ingest", str(archive.path), "--reference", str(refs), "--language", "ru", "--sample-rate", "22050",
            "--out", str(out)]
    code = main(args + ["--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["clips_kept"] > 0 and report["sources"] == 1
    assert report["speaker"]["mode"] == "references" and report["speaker"]["references"] == len(archive.references)
    assert {"music", "noise", "other_speaker"} <= set(report["minutes_rejected_by_reason"])
    lines = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert {x["language"] for x in lines} == {"ru"} and {x["sample_rate"] for x in lines} == {22_050}
    kept = [x for x in lines if x["kept"]]
    assert sf.info(str(out / kept[0]["path"])).samplerate == 22_050

    code = main(args)
    printed = capsys.readouterr().out
    assert code == 0 and "kept" in printed and str(out) in printed  # resumed: same dataset, summary printed


def test_every_command_has_help_that_explains_it(capsys):
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"ingest", "voice", "convert", "speak", "sing", "dub", "lipsync", "consent", "watermark", "demo"} <= set(commands)
    top = parser.format_help()
    for name, sub in commands.items():
        assert name in top
        assert sub.description and len(sub.description) > 30, f"'{name}' has no description"
        with pytest.raises(SystemExit) as done:
            main([name, "--help"])
        assert done.value.code == 0
        assert f"usage: voicetwin {name}" in capsys.readouterr().out
