"""Shared test fixtures: everything offline, audio generated or read from installed packages."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")


@pytest.fixture(scope="session")
def festvox_wavs() -> list[Path]:
    """Real recordings of one Russian speaker (Debian festvox-ru)."""
    wavs = sorted((FESTVOX_RU / "wav").glob("*.wav"))
    if not wavs:
        pytest.fail("festvox-ru is not installed: run 'make install'")
    return wavs


@pytest.fixture(scope="module")
def two_clip_dataset(festvox_wavs, tmp_path_factory) -> Path:
    """An ingested dataset of two festvox-ru clips (ru_0001, ru_0003), whole recordings, for voices built in seconds."""
    import soundfile as sf

    from voicetwin.manifest import Clip, write_manifest

    root = tmp_path_factory.mktemp("dataset")
    (root / "clips").mkdir()
    clips = []
    for uid in ("ru_0001", "ru_0003"):
        wav = FESTVOX_RU / "wav" / f"{uid}.wav"
        shutil.copyfile(wav, root / "clips" / f"{uid}.wav")
        info = sf.info(str(wav))
        clips.append(Clip(id=uid, path=f"clips/{uid}.wav", source=str(wav), start=0.0, end=info.duration,
                          duration=info.duration, sample_rate=info.samplerate, language="ru"))
    write_manifest(root / "manifest.jsonl", clips)
    (root / "report.json").write_text("{}")
    return root


@pytest.fixture(scope="session")
def espeak(tmp_path_factory):
    """Render text with espeak-ng: ``espeak(text, voice="en") -> Path`` of a 22.05 kHz wav."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'make install'")
    root = tmp_path_factory.mktemp("espeak")
    counter = iter(range(10_000))

    def render(text: str, voice: str = "en") -> Path:
        path = root / f"{next(counter):04d}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        return path

    return render


@pytest.fixture
def sine():
    """``sine(freq=220, seconds=1, sr=16000, amp=0.3) -> float32 array``."""

    def make(freq: float = 220.0, seconds: float = 1.0, sr: int = 16_000, amp: float = 0.3) -> np.ndarray:
        t = np.arange(int(seconds * sr)) / sr
        return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)

    return make


@pytest.fixture(scope="module")
def one_torch_thread():
    """Small LSTMs run fastest on one thread, and a second one stalls badly on a busy shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
