"""Voice conversion: build a tiny voice from a few real festvox-ru clips, convert speech and singing.

Offline and small: MFCC content features (no model) for the voice built once per module, a few dozen
training steps; the Whisper and transformers content paths are checked on their own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from voicetwin.cli import main  # noqa: E402
from voicetwin.consent import ConsentRecord  # noqa: E402
from voicetwin.errors import ConfigError, InputNotFoundError, ModelNotFoundError  # noqa: E402
from voicetwin.manifest import Clip, write_manifest  # noqa: E402
from voicetwin.audio.pitch import PitchStats, fix_octave_jumps, map_speech, track_f0  # noqa: E402
from voicetwin.audio.world import crossfade_bands, follow_dynamics, frame_energy, keep_fundamental  # noqa: E402
from voicetwin.voice.model import (BuildOptions, ConvertOptions, Voice, global_variance, match_global_variance,  # noqa: E402
                             split_at_pauses)

FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
SR = 16_000
needs_festvox = pytest.mark.skipif(not (FESTVOX / "wav").is_dir(), reason="Debian package festvox-ru not installed")


def _texts() -> dict[str, str]:
    out = {}
    for line in (FESTVOX / "etc" / "txt.done.data").read_text(encoding="utf-8").splitlines():
        parts = line.split('"')
        if len(parts) >= 2:
            out[parts[0].strip("( ").strip()] = parts[1]
    return out


def _dataset(root: Path, wavs: list[tuple[str, Path, str]]) -> Path:
    (root / "clips").mkdir(parents=True)
    clips = []
    for uid, wav, text in wavs:
        shutil.copyfile(wav, root / "clips" / f"{uid}.wav")
        d = sf.info(str(wav)).duration
        clips.append(Clip(id=uid, path=f"clips/{uid}.wav", source=str(wav), start=0.0, end=d, duration=d,
                          sample_rate=sf.info(str(wav)).samplerate, text=text, language="ru"))
    write_manifest(root / "manifest.jsonl", clips)
    (root / "report.json").write_text("{}")
    return root


# the festvox-ru recordings are distributed for reuse; every voice here is built on this record
CONSENT = ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker", scope=("speech", "singing"),
                        document="test voice from the Debian festvox-ru recordings")


def _sung_vowel(f0_hz: np.ndarray, sr: int = SR) -> np.ndarray:
    """A vowel-like harmonic tone following ``f0_hz`` (one value per 10 ms)."""
    f0 = np.repeat(f0_hz, sr // 100)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k * (1.0 if k < 4 else 0.4) for k in range(1, 12))
    return (0.1 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.fixture(scope="module")
def target_dataset(tmp_path_factory) -> Path:
    if not (FESTVOX / "wav").is_dir():
        pytest.skip("Debian package festvox-ru not installed")
    texts = _texts()
    ids = ["ru_0001", "ru_0002", "ru_0003", "ru_0004"]
    return _dataset(tmp_path_factory.mktemp("target"), [(i, FESTVOX / "wav" / f"{i}.wav", texts[i]) for i in ids])


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory) -> Path:
    """Two clips, for the builds that only check plumbing."""
    if not (FESTVOX / "wav").is_dir():
        pytest.skip("Debian package festvox-ru not installed")
    texts = _texts()
    ids = ["ru_0001", "ru_0003"]
    return _dataset(tmp_path_factory.mktemp("small"), [(i, FESTVOX / "wav" / f"{i}.wav", texts[i]) for i in ids])


@pytest.fixture(scope="module")
def voice(target_dataset, tmp_path_factory) -> Voice:
    out = tmp_path_factory.mktemp("voices") / "tiny"
    return Voice.build(target_dataset, out, BuildOptions(content="mfcc", steps=30, augment=1, batch_size=4,
                                                             speech_model=False, mel_bands=0),
                       consent=CONSENT)  # envelopes only: these tests measure the WORLD render


def test_voice_directory_is_self_describing(voice):
    files = {p.name for p in voice.path.iterdir()}
    assert {"config.json", "model.safetensors", "stats.json", "sources.json", "report.json"} <= files
    config = json.loads((voice.path / "config.json").read_text())
    assert config["model_type"] == "voicetwin-voice" and config["format_version"] == 1
    report = json.loads((voice.path / "report.json").read_text())
    assert report["clips"] == 4 and 0.3 < report["minutes"] < 2.0 and report["steps"] == 30
    # the festvox-ru speaker is a man: his median pitch lies in a male range
    assert 80 < report["pitch_median_hz"] < 180
    sources = json.loads((voice.path / "sources.json").read_text())
    assert sources["clips"][0] == "ru_0001" and voice.language == "ru"
    loaded = Voice.load(voice.path)
    assert loaded.config == voice.config
    x = np.random.default_rng(0).standard_normal((50, voice.config.content_dim)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_envelope(x), voice.predict_envelope(x), rtol=1e-5, atol=1e-5)


@needs_festvox
def test_speech_conversion_keeps_duration_and_moves_pitch_into_range(voice):
    x, sr = sf.read(str(FESTVOX / "wav" / "ru_0010.wav"), dtype="float32")
    up = np.interp(np.arange(0, len(x), 0.8), np.arange(len(x)), x).astype(np.float32)  # higher performer
    y, out_sr = voice.convert(up, sr)
    assert out_sr == voice.config.sample_rate and len(y) == len(up)
    assert np.isfinite(y).all() and 0.001 < np.sqrt(np.mean(y**2)) < 0.5
    f0_in, f0_out = track_f0(up, sr), track_f0(y, sr)
    assert abs(12 * np.log2(np.median(f0_out[f0_out > 0]) / voice.pitch.median_hz)) < 2.0
    assert abs(12 * np.log2(np.median(f0_in[f0_in > 0]) / voice.pitch.median_hz)) > 3.0
    v = (f0_in > 0) & (f0_out > 0)
    assert np.corrcoef(np.log(f0_in[v]), np.log(f0_out[v]))[0, 1] > 0.8


@needs_festvox
def test_conversion_moves_both_speaker_judges_towards_the_target(voice, espeak):
    """The envelope carries the timbre: conversion must sound more like the target, to two independent speaker
    encoders, than the performer's own envelope re-sung on the same pitch contour (what a pitch shift gives)."""
    from voicetwin.audio.io import load_audio
    from voicetwin.audio.world import analyze, synthesize
    from voicetwin.eval.judges import similarity_report

    lines = ["Добрый вечер, дорогие друзья, мы снова вместе.", "Сегодня мы поговорим о старых песнях и о людях."]
    takes = [load_audio(espeak(line, "ru"), sample_rate=SR)[0] for line in lines]
    converted = [voice.convert(x, SR)[0] for x in takes]
    shifted = []  # the performer's envelope and aperiodicity on the contour conversion gives: a pitch shift
    for x in takes:
        f0 = track_f0(x, SR, 10.0)
        frames = analyze(x, SR, 10.0, f0=f0)
        shifted.append(synthesize(map_speech(f0, PitchStats.from_f0(f0), voice.pitch), frames.sp, frames.ap, SR, 10.0,
                                  len(x)))
    refs = [load_audio(FESTVOX / "wav" / f"ru_{i:04d}.wav", sample_rate=SR)[0] for i in range(40, 46)]
    moved = similarity_report(converted, refs, sample_rate=SR)
    kept = similarity_report(shifted, refs, sample_rate=SR)
    for judge in ("ge2e", "dvector"):
        assert moved[judge].score > kept[judge].score + 0.05, (judge, moved[judge].score, kept[judge].score)


@pytest.fixture(scope="module")
def mel_voice(target_dataset, tmp_path_factory) -> Voice:
    """A voice with the mel decoder (the default build): conversion renders its mel through HiFi-GAN."""
    out = tmp_path_factory.mktemp("voices") / "mel"
    return Voice.build(target_dataset, out, BuildOptions(content="mfcc", steps=150, augment=1, batch_size=4,
                                                         speech_model=False), consent=CONSENT)


@needs_festvox
def test_mel_voice_converts_through_the_neural_vocoder(mel_voice, espeak):
    """The mel decoder gives the words the target's timbre and the performance's intonation: both speaker judges
    move towards the target against a pitch shift, the melody follows the performance moved into the target's
    range, and the length is the take's."""
    from voicetwin.audio.io import load_audio, resample
    from voicetwin.audio.world import analyze, synthesize
    from voicetwin.eval.judges import similarity_report

    voice = mel_voice
    assert voice.config.mel_bands == 80 and voice.renders_mel(ConvertOptions())
    assert not voice.renders_mel(ConvertOptions(vocoder="world")) and not voice.renders_mel(ConvertOptions(strategy="match"))
    loaded = Voice.load(voice.path)
    content = np.random.default_rng(0).standard_normal((40, voice.config.content_dim)).astype(np.float32)
    f0 = np.where(np.arange(41) % 10 < 7, 120.0, 0.0)
    np.testing.assert_allclose(loaded.predict_mel(content, f0), voice.predict_mel(content, f0), atol=1e-5)
    lines = ["Добрый вечер, дорогие друзья, мы снова вместе.", "Сегодня мы поговорим о старых песнях и о людях."]
    takes = [load_audio(espeak(line, "ru"), sample_rate=SR)[0] for line in lines]
    converted, shifted = [], []
    for x in takes:
        y, sr = voice.convert(x, SR)
        assert sr == 22050 and abs(len(y) - len(x) * 22050 / SR) <= 1 and np.isfinite(y).all()
        converted.append(resample(y, sr, SR))
        f0 = track_f0(x, SR, 10.0)
        frames = analyze(x, SR, 10.0, f0=f0)
        shifted.append(synthesize(map_speech(f0, PitchStats.from_f0(f0), voice.pitch), frames.sp, frames.ap, SR,
                                  10.0, len(x)))
        f0_out = track_f0(converted[-1], SR)  # the decoder's harmonics sit in the target's range
        assert abs(12 * np.log2(np.median(f0_out[f0_out > 0]) / voice.pitch.median_hz)) < 3.0
    refs = [load_audio(FESTVOX / "wav" / f"ru_{i:04d}.wav", sample_rate=SR)[0] for i in range(40, 46)]
    moved = similarity_report(converted, refs, sample_rate=SR)
    kept = similarity_report(shifted, refs, sample_rate=SR)
    for judge in ("ge2e", "dvector"):
        assert moved[judge].score > kept[judge].score + 0.05, (judge, moved[judge].score, kept[judge].score)


def test_mel_prior_starts_the_decoder(mel_voice, small_dataset, tmp_path):
    """A voice's decoder exported as a prior starts another build's decoder; a prior for other content features is
    refused when asked for by name and skipped under "auto"; the prior that ships fits the default build."""
    from voicetwin.checkpoint import load_checkpoint
    from voicetwin.voice.mel import DEFAULT_PRIOR, PRIOR_FORMAT, PRIOR_TYPE, MelPrior, warm_start
    from voicetwin.voice.model import VoiceConfig, mel_prior_of
    from voicetwin.voice.nets import new_mel_net

    prior = mel_voice.export_mel_prior(tmp_path / "prior", trained_on="the test voice")
    config = mel_voice.config
    said: list[str] = []
    net = new_mel_net(config)
    assert warm_start(net, mel_prior_of(config), str(prior), said.append) == str(prior)
    for name, value in mel_voice.mel_net.state_dict().items():
        torch.testing.assert_close(net.state_dict()[name], value)
    assert "the test voice" in said[-1]
    fresh = new_mel_net(config)
    before = {k: v.clone() for k, v in fresh.state_dict().items()}
    assert warm_start(fresh, mel_prior_of(config), "none") is None
    whisper = VoiceConfig(content="whisper-tiny.en", content_dim=384, mel_bands=80)
    with pytest.raises(ConfigError, match="content 'mfcc'"):
        warm_start(new_mel_net(whisper), mel_prior_of(whisper), str(prior))
    assert warm_start(fresh, mel_prior_of(config), "auto", said.append) is None  # the shipped prior is Whisper's
    assert "random start" in said[-1] and "content 'whisper-tiny.en'" in said[-1]
    for name, value in fresh.state_dict().items():
        torch.testing.assert_close(value, before[name])
    shipped = load_checkpoint(DEFAULT_PRIOR, MelPrior, PRIOR_TYPE, PRIOR_FORMAT, kind="mel-prior").config
    default = BuildOptions()
    assert (shipped.content, shipped.mel_bands, shipped.hidden, shipped.layers) == (
        default.content, default.mel_bands, VoiceConfig.mel_hidden, VoiceConfig.mel_layers)
    built = Voice.build(small_dataset, tmp_path / "warm", BuildOptions(content="mfcc", steps=1, augment=0,
                                                                      batch_size=2, speech_model=False,
                                                                      mel_prior=str(prior)), consent=CONSENT)
    report = json.loads((built.path / "report.json").read_text())
    assert report["mel_prior"] == str(prior)
    start = mel_voice.mel_net.state_dict()
    moved = max(float((built.mel_net.state_dict()[k] - v).abs().max()) for k, v in start.items())
    assert 0.0 < moved < 0.05  # one step from the prior, not from random weights


def test_a_loaded_voice_runs_its_networks_with_numpy_and_converts_without_torch(mel_voice):
    """A loaded voice's mel decoder and envelope network run on their weights with numpy (the torch modules' output
    to float precision), and converting imports no torch once the vocoder's ONNX export is cached."""
    from voicetwin.checkpoint import CheckpointError
    from voicetwin.voice.forward import check_state, envelope_net, mel_decoder, state_shapes

    loaded = Voice.load(mel_voice.path)
    assert loaded._mel_net is None and loaded._net is None  # nothing built in torch yet
    rng = np.random.default_rng(0)
    config = loaded.config
    content = rng.standard_normal((config.content_dim, 37)).astype(np.float32)
    pitch = rng.standard_normal((2, 37 * config.envelope_rate)).astype(np.float32)
    got = mel_decoder(loaded._state("mel."), content, pitch, config.envelope_rate)
    codes = envelope_net(loaded._state("net."), content)
    with torch.inference_mode():
        want = loaded.mel_net(torch.from_numpy(content)[None], torch.from_numpy(pitch)[None])[0].numpy()
        want_codes = loaded.net(torch.from_numpy(content)[None])[0].numpy()
    np.testing.assert_allclose(got, want, atol=1e-4 * float(np.abs(want).max()))
    np.testing.assert_allclose(codes, want_codes, atol=1e-4 * float(np.abs(want_codes).max()))
    shapes = state_shapes(config.content_dim, config.mel_bands, config.mel_hidden, config.mel_layers, config.kernel)
    state = loaded._state("mel.")
    check_state(state, shapes, "model.safetensors", "mel decoder")
    with pytest.raises(CheckpointError, match="mel decoder.*out.weight"):
        check_state({**state, "out.weight": state["out.weight"][:40]}, shapes, "model.safetensors", "mel decoder")
    code = (f"import sys, soundfile as sf; from voicetwin.voice.model import Voice, ConvertOptions; "
            f"x, sr = sf.read({str(FESTVOX / 'wav' / 'ru_0010.wav')!r}, dtype='float32'); "
            f"v = Voice.load({str(mel_voice.path)!r}); y, rate = v.convert(x, sr, ConvertOptions(vocoder='hifigan')); "
            f"w, world_rate = v.convert(x, sr, ConvertOptions(vocoder='world')); "
            f"assert rate == 22050 and world_rate == 16000 and len(y) and len(w); print('torch' in sys.modules)")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stderr[-2000:]
    assert runs[1].stdout.strip() == "False"  # the first run may export the vocoder; the second needs no torch


def test_mel_decoder_inputs():
    from voicetwin.voice.mel import follow_performer, mel_times, pitch_input
    from voicetwin.voice.nets import MelNet

    stats = PitchStats.from_f0(np.array([100.0, 120.0, 140.0] * 10))
    f0 = np.array([0, 0, 100, 110, 0, 0, 121, 0], dtype=float)  # every 10 ms
    times = mel_times(4, 0.02, 2)
    np.testing.assert_allclose(times, [0.005, 0.015, 0.025, 0.035, 0.045, 0.055, 0.065, 0.075])
    pitch = pitch_input(f0, 10.0, times, stats)
    assert pitch.shape == (2, 8) and pitch.dtype == np.float32
    np.testing.assert_array_equal(pitch[1], [0, 1, 1, 0, 0, 1, 1, 0])  # the nearer frame's voicing (ties: the even one)
    norm = (np.log([100.0, 110.0, 121.0]) - stats.log_mean) / stats.log_std
    assert pitch[0, 0] == pytest.approx(norm[0]) and pitch[0, -1] == pytest.approx(norm[2])  # held at the ends
    assert norm[1] < pitch[0, 4] < norm[2]  # carried across the unvoiced gap
    assert not pitch_input(np.zeros(8), 10.0, times, stats).any()
    net = MelNet(content_dim=12, mel_bands=80, hidden=16, layers=2, kernel=3, rate=2)
    assert net(torch.zeros(1, 12, 4), torch.from_numpy(pitch)[None]).shape == (1, 80, 8)
    # the performance's level: "performer" takes each frame's, "phrase" only its slow course, "target" none
    mel = np.zeros((100, 80), np.float32)
    loud = np.full((100, 80), np.log(2.0), np.float32)
    loud[50:] = np.log(4.0)
    voiced = np.ones(100, bool)
    assert follow_performer(mel, loud, voiced, "target", 10) is mel
    np.testing.assert_allclose(follow_performer(mel, loud, voiced, "performer", 10), loud, atol=1e-5)
    phrase = follow_performer(mel, loud, voiced, "phrase", 100)
    assert np.log(2.0) < phrase[45, 0] < phrase[55, 0] < np.log(4.0)


def test_content_matching_takes_envelopes_from_the_target_frames(voice, tmp_path):
    assert (voice.path / "index.safetensors").exists()
    keys, codes = voice.index["content"], voice.index["code"]
    assert keys.dtype == codes.dtype == torch.float16 and keys.shape[0] == codes.shape[0] > 100
    # a target frame's own content finds itself (k=1; near-duplicates such as silences may tie): its stored
    # envelope comes back
    rows = np.arange(0, keys.shape[0], 37)
    got = voice.match_envelope(keys[rows].float().numpy(), k=1)
    same = np.abs(got - codes[rows].float().numpy()).max(axis=1) < 1e-2
    assert same.mean() > 0.8
    # k=4 is the mean of four real envelopes; smoothing makes neighbouring frames closer
    x = np.random.default_rng(1).standard_normal((80, voice.config.content_dim)).astype(np.float32)
    y4, ys = voice.match_envelope(x, k=4), voice.match_envelope(x, k=4, smooth=2)
    assert y4.shape == (80, voice.config.envelope_dims)
    assert np.abs(np.diff(ys, axis=0)).mean() < np.abs(np.diff(y4, axis=0)).mean()
    # conversion by matching keeps the length and differs from the network's envelope
    perf, sr = sf.read(str(FESTVOX / "wav" / "ru_0010.wav"), dtype="float32")
    ym, _ = voice.convert(perf, sr, ConvertOptions(strategy="match"))
    yn, _ = voice.convert(perf, sr, ConvertOptions(strategy="network"))
    assert len(ym) == len(yn) == len(perf) and np.isfinite(ym).all() and not np.allclose(ym, yn)
    with pytest.raises(ConfigError):
        ConvertOptions(strategy="nearest")
    with pytest.raises(ConfigError):
        ConvertOptions(k=0)
    with pytest.raises(ConfigError):
        ConvertOptions(energy="loud")
    # a voice without an index says how to add one; add_index rebuilds it from the voice's dataset
    copy = tmp_path / "copy"
    shutil.copytree(voice.path, copy)
    (copy / "index.safetensors").unlink()
    bare = Voice.load(copy)
    with pytest.raises(ModelNotFoundError, match="add-index"):
        bare.convert(perf, sr, ConvertOptions(strategy="match"))
    bare.add_index()
    assert Voice.load(copy).index["content"].shape == keys.shape


def test_singing_keeps_notes_after_transposition(voice):
    notes = np.repeat([440.0, 880.0, 660.0, 440.0], 60)  # 0.6 s notes, an octave leap
    vibrato = 2 ** (0.3 / 12 * np.sin(2 * np.pi * 5.5 * np.arange(len(notes)) / 100))
    x = _sung_vowel(notes * vibrato)
    y, sr = voice.convert(x, SR, ConvertOptions(mode="singing", transpose=-12))
    assert len(y) == len(x)
    f0 = track_f0(y, sr, f0_range=(50, 1100))
    want = notes * vibrato / 2
    v = f0[: len(want)] > 0
    cents = 1200 * np.log2(f0[: len(want)][v] / want[v])
    assert v.mean() > 0.8 and np.median(np.abs(cents)) < 30 and (np.abs(cents) > 600).mean() < 0.02


def test_auto_transpose_picks_whole_semitones_towards_the_voice(voice):
    x = _sung_vowel(np.full(150, 440.0))
    kind, semitones = voice.pitch_plan([track_f0(x, SR, f0_range=(50, 1100))], ConvertOptions(mode="singing", transpose="auto"))
    assert kind == "transpose" and semitones == round(12 * np.log2(voice.pitch.median_hz / 440.0))


def test_long_input_is_cut_at_pauses_and_keeps_its_length(voice):
    rng = np.random.default_rng(1)
    tone = _sung_vowel(np.full(250, 150.0))  # 2.5 s
    gap = (rng.standard_normal(SR // 2) * 1e-4).astype(np.float32)
    x = np.concatenate([tone, gap, tone, gap, tone])
    pieces = split_at_pauses(x, SR, 4.0)
    assert len(pieces) >= 2 and pieces[0][0] == 0 and pieces[-1][1] == len(x)
    for _, cut in pieces[:-1]:
        assert np.abs(x[cut - 80:cut + 80]).max() < 1e-3  # cut inside a pause
    y, _ = voice.convert(x, SR, ConvertOptions(chunk_seconds=4.0))
    assert len(y) == len(x)


def test_pitch_helpers():
    stats = PitchStats.from_f0(np.array([100.0, 110, 120, 0, 130, 140] * 5))
    target = PitchStats.from_f0(np.array([200.0, 220, 240, 0, 260, 280] * 5))
    mapped = map_speech(np.array([100.0, 0, 140]), stats, target)
    np.testing.assert_allclose(mapped, [200.0, 0, 280], rtol=1e-6)  # same spread: a pure shift
    wide = PitchStats.from_f0(np.array([50.0, 100, 200, 400, 0] * 6))
    mapped = map_speech(np.array([120.0, 0, 130]), stats, wide)
    assert np.log(mapped[2] / mapped[0]) == pytest.approx(2.0 * np.log(130 / 120))  # spread capped at 2x
    f0 = np.full(40, 200.0)
    f0[10:13] = 400.0  # a 3-frame octave error
    f0[25:] = 400.0  # a real leap
    fixed = fix_octave_jumps(f0)
    assert np.allclose(fixed[10:13], 200.0) and np.allclose(fixed[30:], 400.0)


def test_singing_tracker_hears_breathy_high_notes():
    """A breathy sung note (half the energy aperiodic) with vibrato: DIO alone voices few of its frames; DIO with
    SwiftF0 where DIO is silent tracks the note."""
    pw = pytest.importorskip("pyworld")
    frames, bins = 120, 513
    for note in (300.0, 740.0):
        f0 = note * 2 ** (30 * np.sin(2 * np.pi * 5.5 * np.arange(frames) / 100) / 1200)
        freqs = np.arange(bins) * SR / 1024
        sp = np.tile(np.exp(-((freqs - 600) / 900) ** 2) + 0.05, (frames, 1)) * 1e-3
        x = pw.synthesize(f0, sp, np.full((frames, bins), 0.5), SR, 10.0)
        dio = track_f0(x, SR, f0_range=(50, 1100), method="dio")[:frames]
        both = track_f0(x, SR, f0_range=(50, 1100), method="dio+swift")[:frames]
        v = both > 0
        cents = 1200 * np.log2(both[v] / f0[v])
        assert v.mean() > 0.9 and v.mean() > (dio > 0).mean() + 0.3
        assert np.sqrt(np.mean(cents**2)) < 60 and (np.abs(cents) > 600).mean() == 0
    assert ConvertOptions(mode="singing").tracker == "fcpe+swift" and ConvertOptions().tracker == "dio"
    assert ConvertOptions(mode="singing", f0_method="harvest").tracker == "harvest"


def test_singing_postfilter_sharpens_only_above_the_first_formant_region():
    bins, sr = 513, SR
    freqs = np.arange(bins) * sr / 1024
    low, high = np.full((2, bins), 1e-4), np.full((2, bins), 1e-2)
    out = crossfade_bands(low, high, sr, 1200.0)
    np.testing.assert_allclose(out[:, freqs <= 600], 1e-4)  # the fundamental's and first formant's region as predicted
    np.testing.assert_allclose(out[:, freqs >= 1200], 1e-2)  # sharpened from 1200 Hz up
    mid = out[0, (freqs > 650) & (freqs < 1150)]
    assert np.all(np.diff(mid) > 0) and np.all((mid > 1e-4) & (mid < 1e-2))
    assert ConvertOptions(mode="singing").postfilter_from_hz == 1200.0 and ConvertOptions().postfilter_from_hz == 0.0
    assert ConvertOptions(mode="singing", postfilter_hz=0.0).postfilter_from_hz == 0.0
    assert ConvertOptions().postfilter_power == 0.75 and ConvertOptions(mode="singing").postfilter_power == 1.0
    assert ConvertOptions(postfilter=0.0).postfilter_power == 0.0
    with pytest.raises(ConfigError):
        ConvertOptions(postfilter_hz=-1.0)


def test_keep_fundamental_raises_only_a_weak_first_harmonic():
    bins, sr = 513, SR
    freqs = np.arange(bins) * sr / 1024
    sp = np.tile(np.where(freqs < 150, 1e-6, 1e-3), (3, 1))  # nothing below 150 Hz
    f0 = np.array([100.0, 0.0, 300.0])
    out = keep_fundamental(sp, f0, sr, -3.0)
    h1, h2 = np.interp(100, freqs, out[0]), np.interp(200, freqs, out[0])
    assert 10 * np.log10(h1 / h2) == pytest.approx(-3.0, abs=0.1)
    np.testing.assert_array_equal(out[0][freqs >= 180], sp[0][freqs >= 180])  # H2 and above untouched
    np.testing.assert_array_equal(out[1:], sp[1:])  # unvoiced frame, and a fundamental already strong enough
    with pytest.raises(ConfigError):
        ConvertOptions(fundamental_db=20)


def test_follow_dynamics_keeps_the_phrase_level_and_the_targets_syllables():
    """Performer: a loud phrase, a pause, a phrase 20 dB softer, each flat. New envelope: the same level
    throughout, with syllables alternating 6 dB. Out: each phrase at the performer's level on average, the
    target's 6 dB syllables kept inside it, and the pause given a gain between its two phrases' (the performer's
    silence, 60 dB down, does not pull the phrases around it down)."""
    frames, bins = 400, 65
    perf = np.ones((frames, bins))
    perf[200:] *= 0.01
    perf[180:220] *= 1e-6  # the pause
    voiced = np.ones(frames, bool)
    voiced[180:220] = False
    syllable = np.where((np.arange(frames) // 10) % 2 == 0, 4.0, 1.0)  # +6 dB every other 100 ms
    new = np.ones((frames, bins)) * 3.0 * syllable[:, None]
    out = follow_dynamics(new, perf, voiced, window=100)
    db = 10 / np.log(10) * (frame_energy(out) - frame_energy(perf))
    loud, soft = slice(20, 160), slice(240, 380)  # away from the window's reach of the change
    assert abs(db[loud].mean()) < 0.5 and abs(db[soft].mean()) < 0.5
    inner = 10 / np.log(10) * np.diff(frame_energy(out))[loud]
    assert np.abs(inner).max() == pytest.approx(6.02, abs=0.1)  # the target's syllables are still there
    gain = frame_energy(out) - frame_energy(new)
    assert gain[300] < gain[185] < gain[100] and gain[300] < gain[215] < gain[100]  # between its phrases' gains
    with pytest.raises(ConfigError):
        ConvertOptions(energy="loud")
    assert ConvertOptions(energy="phrase").energy == "phrase"


def test_options_and_loading_errors(tmp_path, voice):
    with pytest.raises(ConfigError):
        ConvertOptions(mode="rap")
    with pytest.raises(ConfigError):
        ConvertOptions(transpose="up")
    for bad in ({"chunk_seconds": 1.0}, {"chunk_seconds": 90.0}, {"retrieval": 1.5}, {"f0_method": "yin"}):
        with pytest.raises(ConfigError):
            ConvertOptions(**bad)
    with pytest.raises(ModelNotFoundError):
        Voice.load(tmp_path / "missing")
    newer = tmp_path / "newer"
    shutil.copytree(voice.path, newer)
    config = json.loads((newer / "config.json").read_text())
    config["format_version"] = 99
    (newer / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError):
        Voice.load(newer)
    with pytest.raises(InputNotFoundError):
        Voice.build(tmp_path, tmp_path / "v", consent=CONSENT)


@needs_festvox
def test_performer_lines_with_the_same_text_are_aligned(small_dataset, tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    texts = _texts()
    lines = []
    for uid in ("ru_0001", "ru_0002"):  # only ru_0001 is also in the target's dataset
        wav = tmp_path / f"{uid}.wav"
        subprocess.run(["espeak-ng", "-v", "ru", "-w", str(wav), texts[uid]], check=True, capture_output=True)
        lines.append((uid, wav, texts[uid]))
    performer = _dataset(tmp_path / "performer", lines)
    voice = Voice.build(small_dataset, tmp_path / "v", BuildOptions(content="mfcc", steps=5, augment=0, batch_size=2,
                                                                     speech_model=False),
                        performer=performer, consent=CONSENT)
    report = json.loads((voice.path / "report.json").read_text())
    assert report["parallel_performer_lines"] == 1
    assert voice.performer_pitch is not None


def test_whisper_content_frames():
    pytest.importorskip("faster_whisper")
    from voicetwin.voice.content import load_content

    model = load_content("whisper-tiny.en")
    frames = model.frames(_sung_vowel(np.full(130, 200.0)))  # 1.3 s
    assert frames.shape == (65, 384) and np.isfinite(frames).all()


def test_transformers_content_with_a_tiny_random_wavlm(tmp_path, small_dataset):
    transformers = pytest.importorskip("transformers")
    config = transformers.WavLMConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                      conv_dim=(32, 32), conv_stride=(5, 64), conv_kernel=(10, 64),
                                      num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2)
    transformers.WavLMModel(config).save_pretrained(tmp_path / "wavlm")
    from voicetwin.voice.content import load_content

    model = load_content(str(tmp_path / "wavlm"))
    assert model.dim == 32 and model.hop_seconds == pytest.approx(0.02)
    frames = model.frames(_sung_vowel(np.full(100, 200.0)))
    assert frames.shape == (50, 32)
    voice = Voice.build(small_dataset, tmp_path / "v", BuildOptions(content=str(tmp_path / "wavlm"), steps=3,
                                                                     augment=0, batch_size=2, speech_model=False),
                        consent=CONSENT)
    loaded = Voice.load(voice.path)
    assert loaded.config.envelope_rate == 2 and loaded.envelope_hop == pytest.approx(0.01)  # 10 ms envelopes
    assert loaded.predict_envelope(frames).shape == (100, loaded.config.envelope_dims)
    assert loaded.predict_mel(frames, np.full(101, 150.0)).shape == (100, 80)  # the mel decoder on 10 ms too
    y, sr = loaded.convert(_sung_vowel(np.full(100, 150.0)), SR)
    assert sr == 22050 and len(y) == 22050 and np.isfinite(y).all()


def test_envelope_targets_at_two_per_content_frame():
    """A code that rises 1 per 10 ms WORLD frame, taken at 20 ms content frames with two envelopes each: the
    values at 5 and 15 ms into each content frame, side by side (one per frame: its centre, 10 ms in)."""
    from voicetwin.voice.model import to_content_rate

    code = np.stack([np.arange(50.0), -np.arange(50.0)], axis=1)  # (frames, dims=2), frame i at 10 i ms
    wide = to_content_rate(code, 10.0, 20, 0.02, rate=2)
    assert wide.shape == (20, 4)
    np.testing.assert_allclose(wide[3], [6.5, -6.5, 7.5, -7.5])  # 65 and 75 ms
    np.testing.assert_allclose(to_content_rate(code, 10.0, 20, 0.02)[3], [7.0, -7.0])  # 70 ms


@needs_festvox
def test_cli_build_and_convert(small_dataset, voice, tmp_path, capsys):
    assert main(["voice", "build", str(small_dataset), "--out", str(tmp_path / "v"), "--content", "mfcc",
                 "--steps", "3", "--augment", "0", "--no-speech-model", "--consent", str(voice.path / "consent.json"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["clips"] == 2
    wav = tmp_path / "line.wav"
    sf.write(wav, _sung_vowel(np.full(120, 300.0)), SR)
    assert main(["convert", "--voice", str(voice.path), str(wav), "-o", str(tmp_path / "out.wav"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result[0]["output"].endswith("out.wav") and sf.info(str(tmp_path / "out.wav")).frames == 120 * SR // 100
    assert main(["convert", "--voice", str(voice.path), str(wav), "-o", str(tmp_path / "dir"), "--mode", "singing",
                 "--transpose", "auto", "--json"]) == 0
    assert (tmp_path / "dir" / "line.wav").exists()
    assert main(["convert", "--voice", str(tmp_path / "nope"), str(wav), "-o", str(tmp_path / "x.wav")]) == 2
    with pytest.raises(SystemExit) as exc:
        main(["convert", "--voice", str(voice.path), str(wav), "-o", "x.wav", "--transpose", "up"])
    assert exc.value.code == 2


def test_global_variance_postfilter_restores_the_targets_spread():
    rng = np.random.default_rng(0)
    target = rng.standard_normal((2000, 8)) * np.linspace(1.0, 0.2, 8)
    target[:, 0] += np.where(rng.random(2000) < 0.3, -5.0, 0.0)  # quiet frames: low c0
    gv = global_variance(target)
    smooth = target * 0.5  # an over-smoothed prediction: half the spread
    out = match_global_variance(smooth, gv, 1.0)
    speech = out[:, 0] > np.percentile(out[:, 0], 30)
    assert np.allclose(out[:, 0], smooth[:, 0])  # the level is left alone
    assert np.allclose(out[speech, 1:].var(0), gv[1:], rtol=0.05)
    assert np.allclose(match_global_variance(smooth, gv, 0.0), smooth, atol=1e-6)
    half = match_global_variance(smooth, gv, 0.5)[speech, 1:].var(0)
    assert np.all((half > smooth[speech, 1:].var(0)) & (half < gv[1:]))


def test_new_voices_normalise_content_and_carry_the_targets_envelope_spread(voice):
    assert voice.config.content_mean_norm is True
    stats = json.loads((voice.path / "stats.json").read_text())
    assert len(stats["envelope_gv"]) == voice.config.envelope_dims and min(stats["envelope_gv"][1:]) > 0
    # the network's input does not depend on a constant offset of the content (per-input mean removed)
    rng = np.random.default_rng(1)
    content = rng.standard_normal((50, voice.config.content_dim)).astype(np.float32)
    assert np.allclose(voice.predict_envelope(content), voice.predict_envelope(content + 3.0), atol=1e-4)
