"""The trained-voice acoustic model: tiny random configs, one training step, save/load, duration control."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from voicetwin.synth.acoustic import (  # noqa: E402
    FESTVOX_RU_PHONES,
    AcousticBase,
    AcousticConfig,
    AcousticModel,
    AcousticNet,
    front_end_phones,
    frames_from_scaled,
    is_acoustic_model,
    render_features,
    training_loss,
    world_features,
)
from voicetwin.errors import ConfigError, InputError, ModelNotFoundError  # noqa: E402

TINY = AcousticConfig(hidden=16, encoder_layers=1, decoder_layers=2, kernel=3, envelope_dims=12,
                      aperiodicity_bands=3, dropout=0.0)


def _vowel(seconds: float = 0.6, f0: float = 120.0, sr: int = 16_000) -> np.ndarray:
    """A harmonic tone with two formant-like peaks and a short silence after it."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k * (1 + 3 * np.exp(-((k * f0 - 700) / 200) ** 2))
            for k in range(1, 40))
    return np.concatenate([0.1 * x / np.abs(x).max(), np.zeros(int(0.2 * sr))]).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> AcousticModel:
    torch.manual_seed(0)
    net = AcousticNet(TINY)
    with torch.no_grad():  # an untrained net with plausible outputs: ~8 frames a phone, F0 near 120 Hz
        net.duration[-1].bias.fill_(float(np.log(9.0)))
        net.mean[TINY.envelope_dims] = float(np.log(120.0))
        net.std[TINY.envelope_dims] = 0.05
    model = AcousticModel(TINY, net)
    model.save(tmp_path_factory.mktemp("acoustic") / "model")
    return model


def test_forward_shapes_and_masks():
    torch.manual_seed(0)
    net = AcousticNet(TINY)
    phones = torch.randint(0, len(TINY.phones), (2, 7))
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[1, 5:] = False
    durations = torch.tensor([[3, 1, 0, 4, 2, 2, 5], [2, 2, 2, 2, 2, 0, 0]])
    log_dur, feats, frame_mask = net(phones, mask, durations)
    assert log_dur.shape == (2, 7)
    assert torch.all(log_dur[1, 5:] == 0)
    assert feats.shape == (2, 17, TINY.feature_dims)
    assert frame_mask.sum(dim=1).tolist() == [17.0, 10.0]
    # padding phones cannot change the real ones' predictions
    log_dur_short, feats_short, _ = net(phones[1:, :5], mask[1:, :5], durations[1:, :5])
    assert torch.allclose(log_dur_short[0], log_dur[1, :5], atol=1e-5)
    assert torch.allclose(feats_short[0], feats[1, :10], atol=1e-4)


def test_one_training_step_on_real_features_lowers_the_loss():
    torch.manual_seed(0)
    audio = _vowel()
    feats = world_features(audio, 16_000, TINY)
    assert feats.shape == (81, TINY.feature_dims)
    assert feats[:55, TINY.voicing_index].mean() > 0.9 and feats[-10:, TINY.voicing_index].max() == 0
    assert np.allclose(np.exp(feats[10:50, TINY.envelope_dims]), 120.0, rtol=0.03)
    net = AcousticNet(TINY)
    net.mean.copy_(torch.from_numpy(feats.mean(axis=0)))
    net.std.copy_(torch.from_numpy(feats.std(axis=0) + 1e-3))
    batch = (torch.tensor([[0, 7, 0]]), torch.ones(1, 3, dtype=torch.bool), torch.tensor([[5, 55, 21]]),
             torch.from_numpy(feats)[None])
    optim = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = training_loss(net, *batch)
    assert all(torch.isfinite(v) for v in first.values())
    for _ in range(5):
        loss = training_loss(net, *batch)
        optim.zero_grad()
        loss["total"].backward()
        optim.step()
    assert training_loss(net, *batch)["total"] < 0.8 * first["total"]


def test_render_gives_exact_length_and_keeps_pitch():
    from voicetwin.eval.judges import extract_f0

    feats = world_features(_vowel(), 16_000, TINY)
    audio = render_features(feats, TINY)
    assert len(audio) == len(feats) * 160
    f0 = extract_f0((audio, 16_000), method="harvest", frame_period_ms=10.0)
    assert np.median(f0[10:45][f0[10:45] > 0]) == pytest.approx(120.0, rel=0.03)


def test_save_load_round_trip(tiny_model, tmp_path):
    loaded = AcousticModel.load(tiny_model.path)
    assert loaded.config == TINY
    phones = ["pau", "s", "oo", "n", "pau"]
    frames = np.array([3, 4, 10, 5, 3])
    assert np.allclose(loaded.features(phones, frames), tiny_model.features(phones, frames), atol=1e-5)
    assert is_acoustic_model(tiny_model.path) and not is_acoustic_model(tmp_path)
    # a newer format and unknown keys are refused with the file named
    newer = tmp_path / "newer"
    newer.mkdir()
    data = json.loads((tiny_model.path / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps({**data, "format_version": 99}))
    with pytest.raises(ConfigError, match="format_version"):
        AcousticModel.load(newer)
    (newer / "config.json").write_text(json.dumps({**data, "heads": 4}))
    with pytest.raises(ConfigError, match="unknown config keys"):
        AcousticModel.load(newer)
    (newer / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelNotFoundError, match="model.safetensors"):
        AcousticModel.load(newer)
    with pytest.raises(ModelNotFoundError):
        AcousticModel.load(tmp_path / "missing")


def test_bad_configs_and_phones_are_refused(tiny_model):
    with pytest.raises(ConfigError):
        AcousticConfig(kernel=4)
    with pytest.raises(ConfigError):
        AcousticConfig(phones=("a", "b"))
    with pytest.raises(InputError, match="phone set"):
        tiny_model.durations(["pau", "th", "pau"])


def test_duration_scaling_is_exact():
    log_dur = np.log1p(np.array([20.0, 3.3, 7.6, 0.2, 12.1, 30.0]))
    pauses = np.array([True, False, False, False, False, True])
    natural = frames_from_scaled(log_dur, 1.0, pauses)
    assert natural[3] == 1  # a phone keeps at least one frame
    for scale in (0.8, 1.0, 1.13, 1.25):
        frames = frames_from_scaled(log_dur, scale, pauses)
        assert frames.sum() == round(scale * (20 + 3.3 + 7.6 + 12.1 + 30.0) + max(0.2 * scale, 1.0))
        assert np.all(frames >= 0) and np.all(frames[~pauses] >= 1)


def test_model_base_speaks_russian_at_a_requested_length(tiny_model):
    from voicetwin.synth.speak import SpeakOptions, base_synthesizer, speak, synthesize, voice_model

    text = "Она завела прядь волнистых вол+ос за ухо."
    phones = front_end_phones(text)
    names = [p for p, _ in phones]
    assert names[0] == names[-1] == "pau" and set(names) <= set(FESTVOX_RU_PHONES)
    assert "oo" in names  # the marked stress lands on волосы's second vowel
    base = base_synthesizer(f"model:{tiny_model.path}", "ru")
    assert isinstance(base, AcousticBase) and base.in_voice
    natural = synthesize(text, SpeakOptions(language="ru", base=f"model:{tiny_model.path}"))
    for factor in (0.8, 1.25):
        target = natural.seconds * factor
        syn = synthesize(text, SpeakOptions(language="ru", base=f"model:{tiny_model.path}", duration=target))
        assert abs(syn.seconds / target - 1) <= 0.01
        assert syn.phones and syn.phones[-1].end <= syn.seconds + 1e-6

    class FakeVoice:  # a voice directory holding its own model in tts/
        path = tiny_model.path.parent
        language = "ru"

        def convert(self, audio, sr, options=None):
            raise AssertionError("a model that speaks in the voice must not be converted")

    (tiny_model.path.parent / "tts").mkdir(exist_ok=True)
    for name in ("config.json", "model.safetensors"):
        (tiny_model.path.parent / "tts" / name).write_bytes((tiny_model.path / name).read_bytes())
    assert voice_model(FakeVoice(), "ru") == tiny_model.path.parent / "tts"
    assert voice_model(FakeVoice(), "en") is None
    from voicetwin.consent import ConsentRecord, save_consent
    from voicetwin.errors import ConsentError

    with pytest.raises(ConsentError, match="no consent record"):  # a voice speaks only with a consent record
        speak(FakeVoice(), text, SpeakOptions(language="ru", duration=2.0))
    save_consent(tiny_model.path.parent, ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker",
                                                       document="test voice"), overwrite=True)
    audio, sr = speak(FakeVoice(), text, SpeakOptions(language="ru", duration=2.0))
    assert sr == 16_000 and abs(len(audio) / sr / 2.0 - 1) <= 0.01
    # singing in that voice uses its model too (no conversion); auto picks the key from the voice's pitch
    from voicetwin.audio.pitch import PitchStats
    from voicetwin.synth.sing import Note, Score, SingOptions, sing

    FakeVoice.pitch = PitchStats(log_mean=np.log(110.0), log_std=0.2, median_hz=110.0, p05_hz=80.0, p95_hz=160.0,
                                 voiced_frames=1000)
    FakeVoice.config = None
    save_consent(tiny_model.path.parent, ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker",
                                                       document="test voice", scope=("speech", "singing")),
                 overwrite=True)
    song = Score([Note(0.1, 0.5, 69.0, "ма"), Note(0.7, 0.8, 69.0, "ма")])
    audio, sr = sing(FakeVoice(), song, SingOptions(language="ru", transpose="auto", breaths=False))
    assert sr == 16_000 and abs(len(audio) / sr - (song.seconds + 0.3)) < 0.05


def test_a_model_base_sings_long_notes_with_the_model_not_stretched(tiny_model, monkeypatch):
    from voicetwin.synth.sing import Note, Score, SingOptions, render

    asked = []
    original = AcousticBase.features

    def recording(self, phones, frames):
        asked.append((list(phones), np.asarray(frames)))
        return original(self, phones, frames)

    monkeypatch.setattr(AcousticBase, "features", recording)
    song = Score([Note(0.2, 1.5, 50.0, "да")])
    audio, sr = render(song, SingOptions(language="ru", base=f"model:{tiny_model.path}", breaths=False,
                                         sample_rate=16_000))
    assert sr == 16_000 and abs(len(audio) / sr - (song.seconds + 0.3)) < 0.05
    assert len(asked) == 1  # the sung frames were drawn by the model once, at the song's lengths
    phones, frames = asked[0]
    vowel = max(range(len(phones)), key=lambda i: frames[i] if phones[i][0] in "aeiouy" else -1)
    hop = tiny_model.config.frame_period / 1000
    assert phones[vowel] in ("a", "aa") and frames[vowel] * hop > 1.2  # the vowel fills most of the 1.5 s note


def test_english_front_end_gives_stressed_cmu_phones_and_words():
    import shutil

    from voicetwin.synth.acoustic import CMU_PHONES, is_vowel

    if shutil.which("t2p") is None:
        pytest.skip("flite is not installed")
    marked = front_end_phones("The market opens at seven, but the bread is gone.", "flite")
    assert marked[0] == ("pau", -1) and marked[-1] == ("pau", -1)
    assert all(p in CMU_PHONES for p, _ in marked)
    words = [w for p, w in marked if p != "pau"]
    assert words == sorted(words) and set(words) == set(range(10))  # every word, in order
    by_word = {}
    for p, w in marked:
        by_word.setdefault(w, []).append(p)
    assert by_word[1] == ["m", "aa1", "r", "k", "ax", "t"]  # "market": stress on the first syllable only
    assert by_word[4] == ["s", "eh1", "v", "ax", "n"]
    assert ("pau", -1) in marked[1:-1]  # the comma's phrase break
    assert is_vowel("aa1", "en") and is_vowel("ax", "en") and not is_vowel("y", "en")
    assert is_vowel("y", "ru") and not is_vowel("zh", "ru")


def test_training_is_deterministic_and_refuses_unknown_phones():
    from voicetwin.synth.acoustic_train import TrainSettings, train, utterance

    audio = _vowel()
    labels = [("pau", 0.05), ("a", 0.55), ("pau", 0.8)]
    utt = utterance(audio, 16_000, labels, TINY)
    assert utt["frames"].tolist() == [5, 50, 25] and len(utt["features"]) == 80
    with pytest.raises(InputError, match="phone set"):
        utterance(audio, 16_000, [("pau", 0.1), ("th", 0.8)], TINY)
    data = [utt, {**utt, "phones": np.array([0, 7, 0])}]
    settings = TrainSettings(steps=4, batch_size=2, seed=3, warmup=1)
    first = train(data, data[:1], TINY, settings, progress=False)
    second = train(data, data[:1], TINY, settings, progress=False)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    assert not torch.equal(first.state_dict()["embed.weight"], AcousticNet(TINY).state_dict()["embed.weight"])


def test_a_model_alone_speaks_and_sings_only_with_its_own_consent_record(tmp_path, tiny_model):
    from voicetwin.consent import ConsentRecord, save_consent
    from voicetwin.errors import ConsentError
    from voicetwin.synth.sing import Note, Score, SingOptions, sing
    from voicetwin.synth.speak import SpeakOptions, speak

    model_dir = tiny_model.save(tmp_path / "model")
    options = SpeakOptions(language="ru", base=f"model:{model_dir}")
    song = Score([Note(0.1, 0.4, 57.0, "ма")])
    with pytest.raises(ConsentError, match="no consent record"):
        speak(None, "Она пришла.", options)
    with pytest.raises(ConsentError, match="no consent record"):
        sing(None, song, SingOptions(language="ru", base=f"model:{model_dir}", breaths=False))
    save_consent(model_dir, ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker",
                                          document="test model", scope=("speech",)))
    audio, sr = speak(None, "Она пришла.", options)
    assert sr == 16_000 and len(audio) > 0.3 * sr
    with pytest.raises(ConsentError, match="singing"):
        sing(None, song, SingOptions(language="ru", base=f"model:{model_dir}", breaths=False))
    speak(None, "She came home.", SpeakOptions(language="en"))  # a synthetic base voice needs no record


def test_a_model_with_mel_bands_learns_the_vocoders_input_and_speaks_through_it(tmp_path, monkeypatch):
    """mel_bands=80: the vocoder's log mel on the model's frames is a training target beside the WORLD features;
    with the neural vocoder, speak renders that mel (trimmed with the audio) instead of re-rendering WORLD."""
    from voicetwin.audio import hifigan
    from voicetwin.audio.hifigan import HifiGan, HifiGanConfig
    from voicetwin.consent import ConsentRecord, save_consent
    from voicetwin.synth.acoustic import frame_features
    from voicetwin.synth.acoustic_train import TrainSettings, collate, train, utterance
    from voicetwin.synth.speak import SpeakOptions, speak, synthesize

    config = AcousticConfig(**{**TINY.__dict__, "mel_bands": 80})
    assert config.output_dims == TINY.feature_dims + 80
    with pytest.raises(ConfigError, match="mel_bands"):
        AcousticConfig(mel_bands=-1)
    feats = frame_features(_vowel(), 16_000, config)
    assert feats.shape == (81, config.output_dims)
    assert np.array_equal(feats[:, : TINY.feature_dims], world_features(_vowel(), 16_000, TINY))
    mel = feats[:, TINY.feature_dims:]
    assert mel[10:50].mean() > mel[-8:].mean() + 5  # the vowel, then silence
    utt = utterance(_vowel(), 16_000, [("pau", 0.05), ("a", 0.55), ("pau", 0.8)], config)
    net = train([utt, utt], [utt], config, TrainSettings(steps=3, batch_size=2, warmup=1), progress=False)
    loss = training_loss(net, *collate([utt], [0]))
    assert loss["mel"] > 0 and loss["total"] > loss["features"] + loss["mel"] - 1e-6
    assert AcousticNet(TINY).spread.shape == (TINY.envelope_dims,)  # older models keep their buffers
    model_dir = AcousticModel(config, net).save(tmp_path / "model")
    save_consent(model_dir, ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker",
                                          document="test model", scope=("speech",)))
    narrow = HifiGan.from_config(HifiGanConfig(upsample_initial_channel=32))
    monkeypatch.setattr(hifigan, "load_vocoder", lambda *a, **k: narrow)
    base = f"model:{model_dir}"
    syn = synthesize("Она пришла.", SpeakOptions(language="ru", base=base))
    assert syn.mel is not None and syn.mel.shape[1] == 80
    assert abs(len(syn.mel) * syn.mel_period / 1000 - syn.seconds) <= 0.011  # trimmed with the audio's edges
    rendered = []
    monkeypatch.setattr(hifigan, "revocode", lambda audio, sr, vocoder: rendered.append(vocoder) or (audio, sr))
    audio, sr = speak(None, "Она пришла.", SpeakOptions(language="ru", base=base, vocoder="hifigan", duration=1.5))
    assert sr == 22050 and len(audio) == round(1.5 * 22050)
    assert "hifigan" not in rendered  # from the mel, not the WORLD render re-rendered
    audio, sr = speak(None, "Она пришла.", SpeakOptions(language="ru", base=base))
    assert sr == 22050 and "hifigan" not in rendered  # the default ("auto") renders the mel too
    audio, sr = speak(None, "Она пришла.", SpeakOptions(language="ru", base=base, vocoder="world"))
    assert sr == 16_000 and "hifigan" not in rendered  # WORLD stays an option and the fallback
    old_dir = AcousticModel(TINY, AcousticNet(TINY)).save(tmp_path / "old")
    save_consent(old_dir, ConsentRecord(subject="festvox-ru speaker", granted_by="festvox-ru speaker",
                                        document="test model", scope=("speech",)))
    speak(None, "Она пришла.", SpeakOptions(language="ru", base=f"model:{old_dir}", vocoder="hifigan"))
    assert rendered[-1] == "hifigan"  # a model without mel bands: its WORLD render is re-rendered
    audio, sr = speak(None, "Она пришла.", SpeakOptions(language="ru", base=f"model:{old_dir}"))
    assert sr == 16_000 and rendered[-1] == "auto"  # ... and by default spoken through WORLD
