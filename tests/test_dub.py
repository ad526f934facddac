"""Batch dubbing: fitting, stretching, mixing, loudness, caching, resume, local edits, failures, Ray."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from voicetwin.production.dub import DubError, DubOptions, dub, mux_video, replace_line
from voicetwin.production.fit import plan_fit, speech_bounds, time_stretch
from voicetwin.production.mixdown import duck_envelope, edit_margin, limiter_gain, mix_scene, true_peak_db
from voicetwin.errors import ConsentError
from voicetwin.production.scene import Ducking, OutputSettings, load_scene

SR = 48_000
DELIVERABLES = ("dialogue.wav", "music_effects.wav", "mix.wav", "subtitles.srt", "subtitles.ass", "report.json")


# ------------------------------------------------------------------------------------------------ units


def test_plan_fit_compresses_borrows_and_never_truncates():
    # within tolerance: untouched
    assert plan_fit(2.02, 2.0, 3.0, False, 1.25)[0] == 2.02
    # too long: compressed to the slot
    target, borrowed, overrun, warnings = plan_fit(2.4, 2.0, 3.0, False, 1.25)
    assert target == 2.0 and borrowed == 0 and overrun == 0 and not warnings
    # beyond the cap: borrows from the gap at the cap
    target, borrowed, overrun, warnings = plan_fit(3.0, 2.0, 3.0, False, 1.25)
    assert target == pytest.approx(2.4) and borrowed == pytest.approx(0.4) and overrun == 0
    # beyond the gap: placed at the cap, overruns, reported; never shorter than speech / cap
    target, borrowed, overrun, warnings = plan_fit(5.0, 2.0, 3.0, False, 1.25)
    assert target == pytest.approx(4.0) and overrun == pytest.approx(1.0) and "cannot fit" in warnings[0]
    # shorter than the slot: kept as it is
    assert plan_fit(1.0, 2.0, 3.0, False, 1.25)[0] == 1.0


@pytest.mark.parametrize("method", ["rubberband", "wsola"])
def test_time_stretch_keeps_pitch_and_gives_exact_length(method, sine):
    if method == "rubberband" and shutil.which("rubberband") is None:
        pytest.fail("rubberband-cli is not installed: run 'make install'")
    x = sine(220.0, 1.0, 16_000)
    for ratio in (0.8, 1.25):
        y = time_stretch(x, 16_000, ratio, method)
        assert len(y) == round(len(x) * ratio)
        mid = y[len(y) // 4: 3 * len(y) // 4]
        spectrum = np.abs(np.fft.rfft(mid * np.hanning(len(mid))))
        peak = np.argmax(spectrum) * 16_000 / len(mid)
        assert abs(peak - 220.0) < 4.0


def test_speech_bounds(sine):
    x = np.concatenate([np.zeros(8000), sine(300, 0.5), np.zeros(4000)]).astype(np.float32)
    start, end = speech_bounds(x, 16_000)
    assert abs(start - 8000) <= 80 and abs(end - 16000) <= 80
    assert speech_bounds(np.zeros(1000, np.float32), 16_000) == (0, 0)


def test_limiter_holds_true_peak_and_stays_local():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.05, (2, SR * 3))
    x[:, SR: SR + 200] *= 30  # a burst far over the ceiling
    gain = limiter_gain(x, SR, -1.3)
    assert true_peak_db(x * gain) <= -1.3 + 0.05
    touched = np.flatnonzero(gain < 1.0)
    assert touched.min() >= SR - int(0.03 * SR) and touched.max() <= SR + 200 + int(0.03 * SR)
    assert np.all(gain[: SR // 2] == 1.0) and np.all(gain[-SR // 2:] == 1.0)


def test_duck_envelope_is_exactly_one_outside_its_ramps():
    env = duck_envelope(SR * 4, [(SR, 2 * SR)], SR, 6.0, 0.1, 0.3)
    assert np.all(env[: SR - int(0.1 * SR)] == 1.0) and np.all(env[2 * SR + int(0.3 * SR):] == 1.0)
    assert env[SR + 100] == pytest.approx(10 ** (-6 / 20))


def test_mix_edit_changes_only_its_window_and_me_is_untouched_outside_dialogue():
    rng = np.random.default_rng(1)
    me = (rng.normal(0, 0.02, (2, SR * 6))).astype(np.float32)
    line_a = (rng.normal(0, 0.1, SR) * np.hanning(SR)).astype(np.float32)
    line_b = (rng.normal(0, 0.1, SR) * np.hanning(SR)).astype(np.float32)
    settings = OutputSettings(ducking=None)
    placed = [(SR, line_a), (4 * SR, line_b)]
    windows = [(SR, 2 * SR), (4 * SR, 5 * SR)]
    first = mix_scene(me, placed, settings, windows)
    assert abs(first.loudness - settings.loudness) <= 0.05 and first.true_peak <= settings.true_peak
    assert np.array_equal(first.mix, first.dialogue + first.music_effects)
    outside = np.ones(me.shape[-1], bool)
    for a, b in windows:
        outside[a:b] = False
    assert np.array_equal(first.mix[:, outside], first.music_effects[:, outside])  # bit-identical
    gain = np.float32(10 ** (first.gain_db / 20))
    assert np.allclose(first.music_effects[:, outside], me[:, outside] * gain, rtol=1e-6, atol=0)

    line_c = (rng.normal(0, 0.1, SR) * np.hanning(SR)).astype(np.float32)  # a new take of the same level
    edited = [(SR, line_a), (4 * SR, line_c)]
    second = mix_scene(me, edited, settings, windows, locked_gain_db=first.gain_db)
    assert second.gain_locked
    changed = np.flatnonzero(np.any(second.mix != first.mix, axis=0))
    margin = int(edit_margin(settings) * SR)
    assert changed.size and changed.min() >= 4 * SR - margin and changed.max() < 5 * SR + margin


def test_mux_copies_the_picture_and_adds_the_mix(tmp_path: Path):
    import av

    from voicetwin.video.io import write_video

    frames = [np.full((32, 48, 3), i * 20, np.uint8) for i in range(10)]
    video = write_video(tmp_path / "in.mp4", frames, 5)
    audio = (0.1 * np.sin(np.arange(2 * SR) / SR * 2 * np.pi * 440))[None].repeat(2, 0).astype(np.float32)
    out = mux_video(video, audio, SR, tmp_path / "out.mp4")
    with av.open(str(video)) as a, av.open(str(out)) as b:
        pa = [bytes(p) for p in a.demux(a.streams.video[0]) if p.size]
        pb = [bytes(p) for p in b.demux(b.streams.video[0]) if p.size]
    assert pa == pb  # picture packets copied, not re-encoded
    with av.open(str(out)) as b:
        stream = b.streams.audio[0]
        assert stream.codec_context.name == "aac" and stream.rate == SR and stream.channels == 2


# ------------------------------------------------------------------------------------------------ end to end


def _take(path: Path, text: str) -> None:
    from voicetwin.synth.speak import speak

    audio, sr = speak(None, text, language="en", base="espeak:en")
    pad = np.zeros(int(0.25 * sr), np.float32)
    sf.write(path, np.concatenate([pad, audio, pad]), sr)


SCENE = """
name: tiny
production: Tests
music_effects: me.wav
output: {{ducking: {ducking}}}
characters:
  ANNA: {{voice: none}}
  HOST: {{voice: none, base: "espeak:en", language: en}}
lines:
  - {{id: r1, character: ANNA, start: 0.6, end: {r1_end}, recording: take.wav, subtitle: Hello there my friend}}
  - {{id: t1, character: HOST, start: 3.6, end: 5.2, text: "{t1_text}"}}
  - {{id: s1, character: ANNA, start: 6.2, end: 7.8, score: song.mid, lyrics: "la la la la", language: en,
     base: "espeak:en"}}
"""


def _write_scene(folder: Path, ducking: str = "off", t1_text: str = "Good evening, everyone.") -> Path:
    from voicetwin.synth.sing import Note, Score, write_midi

    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "take.wav").exists():
        _take(folder / "take.wav", "Hello there my friend.")
        rng = np.random.default_rng(0)
        t = np.arange(9 * SR) / SR
        me = 0.05 * np.sin(2 * np.pi * 110 * t)[None] + rng.normal(0, 0.01, (2, t.size))
        sf.write(folder / "me.wav", me.T.astype(np.float32), SR, subtype="FLOAT")
        write_midi(Score([Note(0.4 * i, 0.38, 57 + 2 * i) for i in range(4)], tempo=120), folder / "song.mid")
    audio, sr = sf.read(folder / "take.wav", dtype="float32")
    a, b = speech_bounds(audio, sr)
    r1_end = round(0.6 + (b - a) / sr / 1.15, 3)  # needs 1.15x compression
    (folder / "scene.yaml").write_text(SCENE.format(ducking=ducking, r1_end=r1_end, t1_text=t1_text),
                                       encoding="utf-8")
    return folder / "scene.yaml"


def _digests(out: Path) -> dict[str, str]:
    return {name: hashlib.sha256((out / name).read_bytes()).hexdigest() for name in DELIVERABLES}


@pytest.fixture(scope="module")
def dubbed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    scene = _write_scene(folder)
    out = folder / "out"
    report = dub(scene, out, DubOptions(workers=1))
    return scene, out, report


def test_dubbed_generated_lines_carry_the_mark_in_every_delivered_track(dubbed):
    """Lines spoken or sung by a synthesiser are generated voice: their marks reach the dialogue stem and the mix
    (the recording used as it is, ``voice: none``, is not marked); the sidecar of each track says so."""
    from voicetwin.audio.io import load_audio
    from voicetwin.production.provenance import sidecar_path
    from voicetwin.production.watermark import detect

    scene, out, report = dubbed
    rows = {r["id"]: r for r in report["lines"]}
    marks = {line: rows[line]["watermark"] for line in ("t1", "s1")}
    assert all(m and m["hex"] for m in marks.values()) and rows["r1"]["watermark"] is None
    for track in ("dialogue.wav", "mix.wav"):
        audio, sr = load_audio(out / track)
        found = detect(audio, sr)
        assert found.detected and found.payload.hex in {m["hex"] for m in marks.values()}, track
        assert sidecar_path(out / track).exists()


def test_dub_delivers_every_line_on_time_at_loudness(dubbed):
    import pyloudnorm

    scene, out, report = dubbed
    for name in DELIVERABLES:
        assert (out / name).exists(), name
    rows = {r["id"]: r for r in report["lines"]}
    assert set(rows) == {"r1", "t1", "s1"} and all(r["status"] == "ok" for r in rows.values())
    assert rows["r1"]["stretch_ratio"] == pytest.approx(1 / 1.15, abs=0.02) and not rows["r1"]["resynthesised"]
    assert rows["t1"]["resynthesised"] and rows["s1"]["resynthesised"]
    s = report["summary"]
    assert s["within_max_stretch"] == 3 and s["cannot_fit"] == []

    dialogue, sr = sf.read(out / "dialogue.wav", dtype="float64")
    mix, _ = sf.read(out / "mix.wav", dtype="float64")
    me, _ = sf.read(out / "music_effects.wav", dtype="float64")
    assert sr == SR and mix.shape[1] == 2
    # each line's speech starts on its slot (an independent detector: 2 ms envelope, -30 dB from the line's peak)
    for row in rows.values():
        start = row["slot"][0]
        seg = dialogue[int((start - 0.4) * sr): int((start + 1.0) * sr)]
        env = np.convolve(np.abs(seg), np.ones(96) / 96, mode="same")
        onset = start - 0.4 + np.flatnonzero(env > env.max() * 10 ** (-30 / 20))[0] / sr
        assert abs(onset - start) <= 0.04, (row["id"], onset, start)
        # nothing is cut: the speech in the stem lasts what the fit says
        assert row["speech_out"] == pytest.approx(row["speech_in"] * row["stretch_ratio"], rel=0.05, abs=0.03)
    meter = pyloudnorm.Meter(sr)
    assert abs(meter.integrated_loudness(mix) - (-23.0)) <= 0.5
    assert true_peak_db(mix.T) <= -1.0
    assert np.max(np.abs(mix - me - dialogue[:, None])) <= 3 / 2**23  # stems add up to the mix
    # without ducking, the M&E is bit-identical to the mix outside the dialogue windows
    mix_i, _ = sf.read(out / "mix.wav", dtype="int32")
    me_i, _ = sf.read(out / "music_effects.wav", dtype="int32")
    outside = np.ones(len(mix_i), bool)
    for row in rows.values():
        a, b = row["window_samples"]
        outside[a:b] = False
    assert np.array_equal(mix_i[outside], me_i[outside])
    srt = (out / "subtitles.srt").read_text(encoding="utf-8")
    assert "Hello there my friend" in srt and "Good evening, everyone." in srt and "la la la la" in srt
    assert (out / "mix.wav.provenance.json").exists()


def test_resume_after_a_crash_is_byte_identical_and_an_edit_stays_local(dubbed, tmp_path: Path):
    scene_path, out, report = dubbed
    before = _digests(out)
    # a crash: t1 never reached the cache, the deliverables were never written
    for p in (out / "cache" / "lines").glob("t1.*"):
        p.unlink()
    for name in DELIVERABLES:
        (out / name).unlink()
    dub(scene_path, out, DubOptions(resume=True))
    run = json.loads((out / "run.json").read_text())
    assert run["rendered"] == ["t1"] and run["cached"] == ["r1", "s1"]
    assert _digests(out) == before

    # edit one line: only it is rendered, and the mix changes only inside its window plus the margin
    mix_before, sr = sf.read(out / "mix.wav", dtype="int32")
    scene = load_scene(scene_path)
    edited = replace_line(scene, "t1", source=scene.line("t1").source.__class__("text", "Good night, everyone."))
    new = dub(edited, out, DubOptions(resume=True))
    run = json.loads((out / "run.json").read_text())
    assert run["rendered"] == ["t1"]
    assert run["mix_gain_kept_from_previous_run"]
    mix_after, _ = sf.read(out / "mix.wav", dtype="int32")
    changed = np.flatnonzero(np.any(mix_after != mix_before, axis=1))
    old_w = next(r["window"] for r in report["lines"] if r["id"] == "t1")
    new_w = next(r["window"] for r in new["lines"] if r["id"] == "t1")
    margin = new["summary"]["edit_margin_s"] + 1 / sr
    assert changed.size
    assert changed.min() / sr >= min(old_w[0], new_w[0]) - margin
    assert changed.max() / sr <= max(old_w[1], new_w[1]) + margin


def test_a_failed_line_fails_clearly_while_the_others_finish(tmp_path: Path):
    folder = tmp_path / "scene"
    scene = _write_scene(folder)
    (folder / "take.wav").write_text("not audio", encoding="utf-8")
    text = scene.read_text(encoding="utf-8").replace("  - {id: s1", "  # - {id: s1").replace("     base:", "  #   base:")
    scene.write_text(text, encoding="utf-8")
    with pytest.raises(DubError, match=r"1 line\(s\) failed.*tiny/r1: .*take.wav"):
        dub(scene, folder / "out", DubOptions(workers=1))
    assert list((folder / "out" / "cache" / "lines").glob("t1.*.npy"))  # the other line finished
    report = json.loads((folder / "out" / "report.json").read_text())
    assert report["complete"] is False and report["missing"] == ["r1"]
    assert not (folder / "out" / "mix.wav").exists()


def test_a_voice_without_consent_is_refused_before_rendering(tmp_path: Path):
    folder = tmp_path / "scene"
    scene = _write_scene(folder)
    (folder / "voice").mkdir()
    scene.write_text(scene.read_text(encoding="utf-8").replace("ANNA: {voice: none}", "ANNA: {voice: voice}"),
                     encoding="utf-8")
    with pytest.raises(ConsentError, match="consent"):
        dub(scene, folder / "out")
    assert not (folder / "out" / "cache").exists()


def test_cli_dub(dubbed, capsys):
    from voicetwin.cli import main

    scene, out, _ = dubbed
    assert main(["dub", str(scene), "-o", str(out), "--resume", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"]["lines"] == 3
    bad = Path(out).parent / "bad.yaml"
    bad.write_text("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi, bogus: 1}\n")
    assert main(["dub", str(bad), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "field 'bogus'" in err and "Traceback" not in err


def test_ray_executor_matches_local(dubbed, tmp_path: Path):
    ray = pytest.importorskip("ray", reason="ray cannot be installed here")
    scene_path, out, _ = dubbed
    scene = load_scene(scene_path)
    one = replace_line(scene, "t1")  # same scene
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        dub(one, tmp_path / "ray", DubOptions(executor="ray", workers=1))
    finally:
        ray.shutdown()
    run = json.loads((tmp_path / "ray" / "run.json").read_text())
    assert run["executor"] == "ray" and sorted(run["rendered"]) == ["r1", "s1", "t1"]
    assert (tmp_path / "ray" / "mix.wav").read_bytes() == (out / "mix.wav").read_bytes() or _same_audio(
        tmp_path / "ray" / "mix.wav", out / "mix.wav")


def _same_audio(a: Path, b: Path) -> bool:
    x, _ = sf.read(a, dtype="int32")
    y, _ = sf.read(b, dtype="int32")
    return x.shape == y.shape and np.array_equal(x, y)


def test_ducking_lowers_the_me_under_dialogue_only(tmp_path: Path, dubbed):
    scene_path, out, _ = dubbed
    scene = load_scene(scene_path)
    from dataclasses import replace

    ducked = replace(scene, output=replace(scene.output, ducking=Ducking(depth=10.0, attack=0.05, release=0.2)))
    shutil.copytree(out / "cache", tmp_path / "cache")  # the lines do not depend on ducking: all cached
    report = dub(ducked, tmp_path, DubOptions(resume=True))
    assert json.loads((tmp_path / "run.json").read_text())["rendered"] == []
    me_plain, sr = sf.read(out / "music_effects.wav")
    me_ducked, _ = sf.read(tmp_path / "music_effects.wav")
    g = 10 ** ((report["summary"]["mix_gain_db"] - json.loads((out / "report.json").read_text())["summary"]
                ["mix_gain_db"]) / 20)
    a, b = next(r["window"] for r in report["lines"] if r["id"] == "t1")
    inside = slice(int(a * sr) + 2400, int(b * sr) - 2400)
    ratio = np.sqrt(np.mean(me_ducked[inside] ** 2) / np.mean((me_plain[inside] * g) ** 2))
    assert 20 * np.log10(ratio) == pytest.approx(-10.0, abs=0.3)
    far = slice(int(8.3 * sr), int(8.9 * sr))  # well after the last line's release
    assert np.allclose(me_ducked[far], me_plain[far] * g, atol=2 / 2**23)


def test_lipsync_render_reworks_the_mouth_inside_the_line_only(tmp_path: Path):
    pytest.importorskip("skimage", reason="scikit-image (voicetwin[video]) is not installed")
    from skimage.data import astronaut

    from voicetwin.video.lipsync import synthesize_talking_face
    from voicetwin.synth.speak import speak
    from voicetwin.video.io import iter_frames, write_video

    audio, sr = speak(None, "This is the original line, spoken by the actor.", language="en", base="espeak:en")
    audio = np.concatenate([np.zeros(sr // 2, np.float32), audio, np.zeros(sr // 2, np.float32)])
    frames = synthesize_talking_face(astronaut(), audio, sr, fps=25, size=128)
    write_video(tmp_path / "face.mp4", frames, 25, audio, sr)
    (tmp_path / "scene.yaml").write_text(
        "video: face.mp4\noutput: {ducking: off}\nlines:\n"
        "  - {id: a, character: X, voice: none, base: 'espeak:en', language: en, start: 0.6, end: 2.2,"
        " text: 'A brand new line.', lipsync: render}\n", encoding="utf-8")
    report = dub(tmp_path / "scene.yaml", tmp_path / "out")
    assert any("mouth re-rendered" in n for n in report["notes"]), report["notes"]
    assert not report["lines"][0]["warnings"]
    original = list(iter_frames(tmp_path / "face.mp4"))
    dubbed_frames = list(iter_frames(tmp_path / "out" / "mix.mp4"))
    assert len(dubbed_frames) == len(original)
    a, b = report["lines"][0]["window"]
    inside = [t for t in range(len(original)) if a * 25 + 1 < t < b * 25 - 1]
    outside = [t for t in range(len(original)) if t > b * 25 + 2]
    # the mouth is a small part of the frame: compare the largest local changes (re-encoding adds a little noise)
    diff = [float(np.percentile(np.abs(dubbed_frames[t].astype(int) - original[t].astype(int)), 99.5))
            for t in range(len(original))]
    assert max(diff[t] for t in inside) > 3 * max(max(diff[t] for t in outside), 0.3)


def test_only_renders_just_the_named_lines(dubbed):
    scene_path, out, _ = dubbed
    report = dub(scene_path, out, DubOptions(only=("t1",)))
    run = json.loads((out / "run.json").read_text())
    assert run["rendered"] == ["t1"] and run["cached"] == ["r1", "s1"] and report["complete"]
    with pytest.raises(Exception, match="--only names no line"):
        dub(scene_path, out, DubOptions(only=("nope",)))


def test_lipsync_align_moves_a_late_line_onto_the_mouth(tmp_path: Path):
    """An actor's take placed 200 ms after the mouth on screen ends up within 40 ms of it; the picture is kept."""
    pytest.importorskip("skimage", reason="scikit-image (voicetwin[video]) is not installed")
    from skimage.data import astronaut

    from voicetwin.audio.io import resample
    from voicetwin.video.lipsync import synthesize_talking_face
    from voicetwin.synth.speak import speak
    from voicetwin.video.io import write_video

    speech, sr = speak(None, "I never said that I would stay here.", language="en", base="espeak:en")
    lead = np.zeros(sr // 2, np.float32)
    acted = np.concatenate([lead, speech, np.zeros(sr, np.float32)])
    frames = synthesize_talking_face(astronaut(), acted, sr, fps=25, size=128)
    write_video(tmp_path / "face.mp4", frames, 25, acted, sr)
    sf.write(tmp_path / "take.wav", np.concatenate([lead[: sr // 4], speech, lead[: sr // 4]]), sr)
    a, b = speech_bounds(acted, sr)
    mouth = a / sr  # the speech onset the mouth was drawn to
    start = round(mouth + 0.2, 3)  # the slot puts the take 200 ms late
    (tmp_path / "scene.yaml").write_text(
        "video: face.mp4\noutput: {ducking: off, lipsync_max_shift: 0.3}\nlines:\n"
        f"  - {{id: a, character: X, voice: none, start: {start}, end: {start + (b - a) / sr + 0.3:.3f},"
        " recording: take.wav, lipsync: align}\n", encoding="utf-8")
    report = dub(tmp_path / "scene.yaml", tmp_path / "out", DubOptions(mux_video=False))
    row = report["lines"][0]
    align = row["lipsync_align"]
    assert align["offset_before_ms"] == pytest.approx(200, abs=40), align
    assert abs(align["offset_after_ms"]) <= 40 and abs(row["onset"] - mouth) <= 0.04, (row, mouth)
    assert row["stretch_ratio"] == 1.0 and row["lipsync_shift_ms"] > 150
    assert report["summary"]["lipsync_aligned"] == {"a": row["lipsync_shift_ms"]}
    # independent of the report: the dialogue stem lines up with the acted audio (cross-correlation)
    dialogue, _ = sf.read(tmp_path / "out" / "dialogue.wav", dtype="float32")
    ref = resample(acted, sr, SR)
    n = 1 << int(np.ceil(np.log2(len(dialogue) + len(ref))))
    xc = np.fft.irfft(np.fft.rfft(dialogue, n) * np.conj(np.fft.rfft(ref, n)), n)
    lag = int(np.argmax(xc))
    lag = lag - n if lag > n // 2 else lag
    assert abs(lag / SR) <= 0.04, lag / SR
    # a re-run with --resume reuses the aligned line and gives the same stem
    again = dub(tmp_path / "scene.yaml", tmp_path / "out", DubOptions(mux_video=False, resume=True))
    assert again["lines"][0]["lipsync_align"] == align
    assert json.loads((tmp_path / "out" / "run.json").read_text())["cached"] == ["a"]
