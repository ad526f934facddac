"""Lip-sync: score, align and render on small generated talking faces and on Debian's Megamind.avi.

Talking faces are made from scikit-image's astronaut photo with the mouth opening following espeak-ng speech.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

pytest.importorskip("mediapipe", reason="needs the video extra: pip install 'voicetwin[video]'")
pytest.importorskip("dlib", reason="needs the video extra: pip install 'voicetwin[video]'")
skimage_data = pytest.importorskip("skimage.data", reason="needs scikit-image (test extra)")

from voicetwin.audio.io import load_audio, save_audio  # noqa: E402
from voicetwin.cli import main  # noqa: E402
from voicetwin.errors import ConfigError, InputError, InputNotFoundError  # noqa: E402
from voicetwin.video.face import LAYOUTS, load_landmarker, mouth_opening  # noqa: E402
from voicetwin.video.lipsync import (  # noqa: E402
    ANALYSIS_RATE, AlignOptions, NoFaceError, RenderOptions, SyncOptions, align, find_phrases, mouth_jitter,
    render_frames, score, score_tracks, seam_sums, speech_envelope, synthesize_talking_face, track_mouth,
)
from voicetwin.video.io import VideoDecodeError, iter_frames, probe, write_video  # noqa: E402

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
FPS = 25
SIZE = 160


def _espeak(text: str, voice: str, path: Path) -> tuple[np.ndarray, int]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng (Debian) is needed to make speech")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "160", "-w", str(path), text], check=True)
    return load_audio(path)


def _shifted(x: np.ndarray, sr: int, ms: float) -> np.ndarray:
    n = int(round(ms / 1000 * sr))
    if n >= 0:
        return np.concatenate([np.zeros(n, np.float32), x])[: len(x)]
    return np.concatenate([x[-n:], np.zeros(-n, np.float32)])


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A 5 s talking face (160x160, 25 fps, with 8 blank 'title card' frames in the middle) and foreign speech."""
    d = tmp_path_factory.mktemp("lipsync")
    x, sr = _espeak("Hello there, this is a short test. The mouth moves with the words, then it rests.", "en",
                    d / "own.wav")
    frames = synthesize_talking_face(skimage_data.astronaut(), x, sr, fps=FPS, size=SIZE)
    mid = len(frames) // 2
    card = np.full_like(frames[0], 30)
    frames = frames[:mid] + [card] * 8 + frames[mid + 8:]  # a cutaway without a face, audio keeps going
    video = write_video(d / "talk.mp4", frames, FPS, x, sr)
    y, sr2 = _espeak("Another voice says something else entirely, with a long pause at the end.", "en+f3",
                     d / "foreign.wav")
    info = probe(video)
    n = int(info.duration * sr2)
    save_audio(d / "foreign_fit.wav", np.pad(y, (0, max(0, n - len(y))))[:n], sr2)
    return {"dir": d, "video": video, "audio": (x, sr), "foreign": d / "foreign_fit.wav", "card": (mid, mid + 8)}


@pytest.fixture(scope="module")
def tracks(media):
    return track_mouth(media["video"])


# ------------------------------------------------------------------------------------------------ video + faces


def test_write_video_keeps_size_rate_and_streams(media):
    info = probe(media["video"])
    assert (info.width, info.height) == (SIZE, SIZE)
    assert info.fps == pytest.approx(FPS)
    assert info.has_audio and info.codec == "h264"
    import av

    with av.open(str(media["video"])) as c:
        assert c.streams.audio[0].codec_context.name == "aac"


def test_both_landmark_models_see_the_mouth_open_and_close():
    x = np.zeros(16000, np.float32)
    x[4000:12000] = np.sin(np.arange(8000) / 16000 * 2 * np.pi * 220) * np.hanning(8000)
    frames = synthesize_talking_face(skimage_data.astronaut(), x, 16000, fps=FPS, size=SIZE, motion=0)
    closed, wide = frames[2], frames[len(frames) // 2]
    for name in ("mediapipe", "dlib"):
        model = load_landmarker(name, video=False)
        a = mouth_opening(model(closed)[0], LAYOUTS[name])
        b = mouth_opening(model(wide)[0], LAYOUTS[name])
        model.close()
        assert b > a + 0.02, (name, a, b)


# ------------------------------------------------------------------------------------------------ score


@pytest.mark.parametrize("shift_ms", [-480.0, -130.0, 0.0, 210.0, 570.0])
def test_score_recovers_known_offsets(media, tracks, shift_ms):
    x, sr = media["audio"]
    report = score_tracks(tracks, _shifted(x, sr, shift_ms), sr, SyncOptions())
    assert abs(report.overall.offset_ms - shift_ms) < 40, report.overall
    assert report.overall.confidence > 0.1


def test_score_file_skips_faceless_frames_and_reports_json(media, capsys):
    report = score(media["video"])
    a, b = media["card"]
    assert report.frames == probe(media["video"]).frames
    assert abs(report.overall.offset_ms) < 40
    assert main(["lipsync", "score", str(media["video"]), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"offset_ms", "confidence", "shots"} <= set(out)
    assert len(out["shots"]) >= 2  # the title card makes cuts


def test_score_sign_positive_when_audio_lags(media, tracks):
    x, sr = media["audio"]
    late = score_tracks(tracks, _shifted(x, sr, 300), sr).overall.offset_ms
    early = score_tracks(tracks, _shifted(x, sr, -300), sr).overall.offset_ms
    assert late > 200 and early < -200


def test_with_two_faces_the_one_that_speaks_is_scored(media, tmp_path):
    x, sr = media["audio"]
    other, _ = _espeak("Somebody else is talking on the left, quite differently.", "en+m3", tmp_path / "o.wav")
    other = np.pad(other, (0, max(0, len(x) - len(other))))[: len(x)]
    left = synthesize_talking_face(skimage_data.astronaut(), other, sr, fps=FPS, size=SIZE)
    right = synthesize_talking_face(skimage_data.astronaut(), x, sr, fps=FPS, size=SIZE)
    n = min(len(left), len(right))
    video = write_video(tmp_path / "two.mp4", [np.hstack([a, b]) for a, b in zip(left[:n], right[:n])], FPS, x, sr)
    report = score(video)
    assert report.face == 1  # the right-hand face moves with the sound
    assert abs(report.overall.offset_ms) < 40
    forced = score(video, options=SyncOptions(face=0))
    assert forced.face == 0 and forced.overall.confidence < report.overall.confidence

@pytest.mark.skipif(not MEGAMIND.exists(), reason="Debian opencv-doc is not installed")
def test_score_megamind_real_dialogue():
    tr = track_mouth(MEGAMIND)
    x, sr = load_audio(MEGAMIND, sample_rate=ANALYSIS_RATE)
    base = score_tracks(tr, x, sr)
    assert abs(base.overall.offset_ms) < 60  # the film's own track is in sync
    assert len(base.shots) >= 3  # four camera shots
    shifted = score_tracks(tr, _shifted(x, sr, 400), sr)
    assert abs(shifted.overall.offset_ms - 400) < 40


# ------------------------------------------------------------------------------------------------ align


def test_align_moves_audio_back_in_sync(media, tmp_path):
    x, sr = media["audio"]
    late = save_audio(tmp_path / "late.wav", _shifted(x, sr, 280), sr)
    out = tmp_path / "aligned.mp4"
    result = align(media["video"], late, out, AlignOptions(max_shift_ms=600))
    assert abs(result.offset_before_ms - 280) < 40
    assert abs(result.offset_after_ms) < 40
    assert abs(result.shift_ms - 280) < 40
    info, src = probe(out), probe(media["video"])
    assert (info.width, info.height, info.fps) == (src.width, src.height, src.fps)
    rescored = score(out)
    assert abs(rescored.overall.offset_ms) < 40
    # the picture is copied, not re-encoded
    a = next(iter_frames(out))
    b = next(iter_frames(media["video"]))
    assert np.array_equal(a, b)


def _mpeg4(path: Path, frames: list[np.ndarray], fps: int) -> Path:
    """An MPEG-4 Part 2 video (not H.264) without sound, like Megamind.avi."""
    import av

    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        stream.options = {"qscale": "2"}
        for f in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        out.mux(stream.encode(None))
    return path


@pytest.mark.parametrize("size", [(96, 128), (97, 129)])
def test_replace_audio_reencodes_other_codecs_to_h264_keeping_the_picture(tmp_path, size):
    from voicetwin.video.io import replace_audio

    h, w = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames = [np.stack([(xx * 2 + 5 * t) % 256, (yy * 2) % 256, np.full_like(xx, 40 + 8 * t)], -1).astype(np.uint8)
              for t in range(20)]
    src = _mpeg4(tmp_path / "in.avi", frames, 10)
    sr = 16000
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(2 * sr) / sr)).astype(np.float32)
    out = replace_audio(src, tmp_path / "out.mp4", tone, sr)
    info, before = probe(out), probe(src)
    assert info.codec == "h264" and info.has_audio and before.codec == "mpeg4"
    assert (info.width, info.height) == (w - w % 2, h - h % 2)  # yuv420p needs even sizes
    assert info.fps == pytest.approx(before.fps) and info.frames == before.frames == 20
    decoded = list(iter_frames(src))
    for a, b in zip(iter_frames(out), decoded):
        mse = np.mean((a.astype(np.float64) - b[: a.shape[0], : a.shape[1]]) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 35  # the same picture, not another frame or colour
    y, sr2 = load_audio(out, sample_rate=sr)
    assert abs(len(y) - len(tone)) < 0.05 * sr and np.corrcoef(y[2000:20000], tone[2000:20000])[0, 1] > 0.99


def test_find_phrases_splits_at_pauses():
    sr = 16000
    tone = np.sin(np.arange(sr // 2) / sr * 2 * np.pi * 500).astype(np.float32) * 0.5
    x = np.concatenate([np.zeros(sr // 4), tone, np.zeros(sr // 2), tone, np.zeros(sr // 4)]).astype(np.float32)
    phrases = find_phrases(x, sr, min_pause=0.2)
    assert len(phrases) == 2
    assert phrases[0][0] == pytest.approx(0.25, abs=0.05) and phrases[1][0] == pytest.approx(1.25, abs=0.05)


# ------------------------------------------------------------------------------------------------ render


def test_render_changes_only_the_mouth_and_follows_new_audio(media):
    y, sr = load_audio(media["foreign"], sample_rate=ANALYSIS_RATE)
    alphas: list = []
    frames, result, info = render_frames(media["video"], y, sr, RenderOptions(), alphas=alphas)
    out = list(frames)
    src = list(iter_frames(media["video"]))
    assert len(out) == len(src) and out[0].shape == src[0].shape
    a, b = media["card"]
    for t in range(len(out)):
        if alphas[t] is None:
            assert np.array_equal(out[t], src[t])
        else:
            outside = alphas[t] == 0
            assert outside.mean() > 0.5
            assert np.array_equal(out[t][outside], src[t][outside])
    assert all(alphas[t] is None for t in range(a, b))  # the title card passes through
    assert result.rendered >= len(out) - 10

    # independent judge: dlib's 68 points on the output follow the new speech better than the input did
    judge = load_landmarker("dlib")
    env = speech_envelope(y, sr, info.fps, len(out))

    def corr(frames_):
        op = np.array([mouth_opening(f[0], LAYOUTS["dlib"]) if (f := judge(x)) else np.nan for x in frames_])
        ok = ~np.isnan(op)
        return np.corrcoef(op[ok], env[ok])[0, 1]

    c_in, c_out = corr(src), corr(out)
    assert c_out > c_in + 0.2, (c_in, c_out)

    # no visible seam: the border is no busier than the inside
    sums = np.zeros(4)
    for f, al in zip(out, alphas):
        if al is not None:
            sums += seam_sums(f, al)
    assert (sums[0] / sums[1]) / (sums[2] / sums[3]) <= 1.2

    # during the new audio's silence the mouth is no jumpier than in the input
    silent = np.ones(len(out), dtype=bool)
    for p0, p1 in find_phrases(y, sr):
        silent[max(0, int(p0 * info.fps) - 1):int(np.ceil(p1 * info.fps)) + 1] = False
    assert silent.sum() > 10
    assert mouth_jitter(out, alphas, silent) <= mouth_jitter(src, alphas, silent)


def test_render_cli_writes_h264_aac(media, tmp_path, capsys):
    out = tmp_path / "rendered.mp4"
    assert main(["lipsync", "render", str(media["video"]), "--audio", str(media["foreign"]), "-o", str(out),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rendered"] > 0 and report["identities"] == 1
    info, src = probe(out), probe(media["video"])
    assert (info.width, info.height, info.codec) == (src.width, src.height, "h264")
    assert info.fps == pytest.approx(src.fps)
    y, sr = load_audio(out)
    assert len(y) / sr == pytest.approx(src.duration, abs=0.15)


# ------------------------------------------------------------------------------------------------ errors


def test_video_without_face_is_a_clear_error(tmp_path, capsys):
    frames = [np.full((96, 96, 3), 40 + i, np.uint8) for i in range(20)]
    video = write_video(tmp_path / "noface.mp4", frames, FPS, np.zeros(16000, np.float32), 16000)
    with pytest.raises(NoFaceError, match="no face"):
        score(video)
    assert main(["lipsync", "score", str(video)]) == 2
    assert "no face found" in capsys.readouterr().err


def test_unreadable_and_missing_files(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_text("not a video")
    with pytest.raises(VideoDecodeError):
        score(bad)
    with pytest.raises(InputNotFoundError):
        score(tmp_path / "missing.mp4")


def test_audio_much_longer_than_video_is_refused(media, tmp_path):
    x, sr = media["audio"]
    long = save_audio(tmp_path / "long.wav", np.tile(x, 4), sr)
    with pytest.raises(InputError, match="only"):
        align(media["video"], long, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_options_are_validated():
    with pytest.raises(ConfigError):
        SyncOptions(window=4)
    with pytest.raises(ConfigError):
        SyncOptions(landmarker="nope")
    with pytest.raises(ConfigError):
        AlignOptions(max_shift_ms=0)
    with pytest.raises(ConfigError):
        RenderOptions(feather=1.5)


# ------------------------------------------------------------------------------------------------ GPU recipe


def test_per_identity_recipe_trains_saves_and_renders_tiny(media, tmp_path):
    import sys

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "lipsync"
    sys.path.insert(0, str(recipe))
    try:
        import render as recipe_render
        import train as recipe_train
    finally:
        sys.path.remove(str(recipe))
    x, sr = media["audio"]
    clip = list(iter_frames(media["video"]))[:60]  # 2.4 s is enough for a smoke test
    video = write_video(tmp_path / "clip.mp4", clip, FPS, x[: int(2.4 * sr)], sr)
    model_config, train_config = recipe_train.read_yaml(recipe / "tiny.yaml")
    summary = recipe_train.train(video, tmp_path / "model", model_config, train_config, device="cpu")
    log = json.loads((tmp_path / "model" / "log.json").read_text())
    assert len(log["log"]) == train_config.steps and np.isfinite(summary["heldout_l1"])
    model, config, *_ = recipe_train.load(tmp_path / "model", device="cpu")
    assert config == model_config
    out = tmp_path / "model_render.mp4"
    foreign = save_audio(tmp_path / "foreign.wav", load_audio(media["foreign"])[0][: int(2.4 * sr)], sr)
    report = recipe_render.render_with_model(tmp_path / "model", video, foreign, out, device="cpu")
    assert report["rendered"] > 0
    assert (probe(out).width, probe(out).height) == (SIZE, SIZE)
    with pytest.raises(ConfigError):
        bad = tmp_path / "bad.yaml"
        bad.write_text("model:\n  chanels: 8\n")
        recipe_train.read_yaml(bad)
