"""Speaker encoder: embeddings, enrolment, encoder directories, GE2E fine-tuning and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from voicetwin.audio.io import load_audio, save_audio
from voicetwin.cli import main
from voicetwin.errors import ConfigError, InputError
from voicetwin.speaker.encoder import SpeakerEncoder
from voicetwin.speaker.finetune import FinetuneOptions, finetune, ge2e_loss, split_held_out

RU_TEXT = "Со спокойным мужеством он ожидал всего в этом безумном городе."


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the speaker encoders' small LSTMs


@pytest.fixture(scope="module")
def encoder() -> SpeakerEncoder:
    return SpeakerEncoder.load("ge2e")


@pytest.fixture(scope="module")
def real(festvox_wavs):
    """Six real festvox-ru utterances, cut to 4 s, as (array, 16000) pairs."""
    return [(load_audio(p, 16000, duration=4.0)[0], 16000) for p in festvox_wavs[:6]]


@pytest.fixture(scope="module")
def synthetic(espeak):
    return [espeak(RU_TEXT, voice) for voice in ("ru", "ru+m3", "ru+f2")]


def test_embedding_is_a_256_d_unit_vector(encoder, real):
    e = encoder.embed(*real[0])
    assert e.shape == (256,) and e.dtype == np.float32
    assert abs(float(np.linalg.norm(e)) - 1) < 1e-4
    profile = encoder.enroll(real[:3])
    assert profile.shape == (256,) and abs(float(np.linalg.norm(profile)) - 1) < 1e-4


def test_same_speaker_scores_above_other_voices(encoder, real, synthetic):
    profile = encoder.enroll(real[:3])
    same = [encoder.similarity(encoder.embed(*c), profile) for c in real[3:]]
    different = [encoder.similarity(encoder.embed(p), profile) for p in synthetic]
    assert min(same) > 0.8
    assert min(same) > max(different) + 0.15


def test_silence_is_refused(encoder):
    with pytest.raises(InputError, match="silent"):
        encoder.embed(np.zeros(16000, dtype=np.float32), 16000)


def test_encoder_directory_round_trip(encoder, real, tmp_path):
    encoder.save(tmp_path / "enc", extra={"note": "copy"})
    assert {p.name for p in (tmp_path / "enc").iterdir()} >= {"config.json", "model.safetensors", "training.json"}
    again = SpeakerEncoder.load(tmp_path / "enc")
    np.testing.assert_allclose(again.embed(*real[0]), encoder.embed(*real[0]), atol=1e-6)


def test_newer_format_version_and_unknown_keys_are_refused(encoder, tmp_path):
    directory = encoder.save(tmp_path / "enc")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(ConfigError, match="format_version 99"):
        SpeakerEncoder.load(directory)
    (directory / "config.json").write_text(json.dumps({**config, "n_heads": 4}))
    with pytest.raises(ConfigError, match="unknown config keys"):
        SpeakerEncoder.load(directory)


def test_ge2e_loss_prefers_separated_speakers():
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(3, 1, 16), dim=-1)
    tight = torch.nn.functional.normalize(centres + 0.05 * torch.randn(3, 5, 16), dim=-1)
    mixed = torch.nn.functional.normalize(torch.randn(3, 5, 16), dim=-1)
    w, b = torch.tensor([10.0]), torch.tensor([-5.0])
    assert ge2e_loss(tight, w, b) < 0.1 < ge2e_loss(mixed, w, b)


def test_split_held_out_is_reproducible_and_disjoint():
    train, test = split_held_out(list(range(10)), 0.3, seed=1)
    assert len(test) == 3 and not set(train) & set(test) and sorted(train + test) == list(range(10))
    assert (train, test) == split_held_out(list(range(10)), 0.3, seed=1)
    with pytest.raises(InputError):
        split_held_out([1], 0.3)
    with pytest.raises(ConfigError):
        FinetuneOptions(held_out=1.5)


def test_two_fine_tuning_steps_change_a_copy(encoder, real, synthetic):
    before = {k: v.clone() for k, v in encoder.model.state_dict().items()}
    tuned = finetune(encoder, real[:4], {"espeak": synthetic}, steps=2,
                     options=FinetuneOptions(speakers_per_batch=2, utterances_per_speaker=3))
    assert isinstance(tuned, SpeakerEncoder) and not tuned.model.training
    assert all(torch.equal(v, encoder.model.state_dict()[k]) for k, v in before.items())  # original untouched
    w0, w1 = encoder.model.lstm.weight_hh_l0, tuned.model.lstm.weight_hh_l0
    assert not torch.equal(w0, w1) and float((w0 - w1).abs().max()) < 1e-2  # moved, but only a little
    assert tuned.embed(*real[0]).shape == (256,)


def test_cli_similarity_json_and_missing_file(real, synthetic, tmp_path, capsys):
    folder = tmp_path / "target"
    for i, (audio, sr) in enumerate(real[:3]):
        save_audio(folder / f"{i}.wav", audio, sr)
    assert main(["similarity", str(folder), str(synthetic[0]), "--json"]) == 0
    value = json.loads(capsys.readouterr().out)["similarity"]
    assert -1 <= value < 0.8
    assert main(["similarity", str(folder), str(tmp_path / "missing.wav")]) == 2
    err = capsys.readouterr().err
    assert "missing.wav" in err and len(err.strip().splitlines()) == 1


def test_cli_finetune_writes_encoder_and_report(real, synthetic, tmp_path, capsys):
    target, other = tmp_path / "target", tmp_path / "other"
    for i, (audio, sr) in enumerate(real):
        save_audio(target / f"{i}.wav", audio, sr)
    for i, path in enumerate(synthetic):
        save_audio(other / f"{i}.wav", *load_audio(path))
    out = tmp_path / "encoder"
    code = main(["speaker", "finetune", "--target", str(target), "--others", str(other), "--out", str(out),
                 "--steps", "1", "--held-out", "0.34"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "before" in printed and "after" in printed
    report = json.loads((out / "training.json").read_text())
    assert 0 <= report["before"]["eer"] <= 1 and 0 <= report["after"]["eer"] <= 1
    assert report["clips"]["target"] == {"train": 4, "held_out": 2}
    assert main(["similarity", str(target), str(other), "--encoder", str(out), "--json"]) == 0


def test_finetune_refuses_to_overwrite_a_folder_that_is_not_an_encoder(tmp_path, real, synthetic):
    from voicetwin.speaker.finetune import finetune_speaker

    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(InputError, match="not an encoder directory"):
        finetune_speaker(real, {"espeak": synthetic}, out=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


# --------------------------------------------------------------------------------------------------- profiles


def _dataset(folder, clips):
    """A dataset folder (clips/, manifest.jsonl) holding ``clips``, a list of (array, 16000) pairs."""
    from voicetwin.manifest import Clip, write_manifest

    rows = []
    for i, (audio, sr) in enumerate(clips):
        save_audio(folder / "clips" / f"c{i}.wav", audio, sr)
        rows.append(Clip(f"c{i}", f"clips/c{i}.wav", "archive.wav", 0.0, len(audio) / sr, len(audio) / sr, sr))
    write_manifest(folder / "manifest.jsonl", rows)
    return folder


def test_mel_front_end_matches_librosa():
    import librosa

    from voicetwin.speaker.encoder import EncoderConfig, mel_frames

    x = (np.random.default_rng(0).standard_normal(16000 * 2 + 123) * 0.1).astype(np.float32)
    spec = np.abs(librosa.stft(x, n_fft=400, hop_length=160, center=True)) ** 2
    expected = (librosa.filters.mel(sr=16000, n_fft=400, n_mels=40) @ spec).T
    got = mel_frames(x, EncoderConfig())
    assert got.shape == expected.shape == (201, 40)
    assert float(np.abs(got - expected).max()) < 1e-5 * float(expected.max())


def test_dataset_profile_is_cached_and_enrolled_again_when_the_clips_change(encoder, real, tmp_path, monkeypatch):
    from voicetwin.manifest import read_manifest, write_manifest
    from voicetwin.speaker.profile import cache_path, dataset_profile

    dataset = _dataset(tmp_path / "ds", real[:3])
    enrolled = []
    original = encoder.enroll
    monkeypatch.setattr(encoder, "enroll", lambda clips, *a: enrolled.append(len(clips)) or original(clips, *a))

    first = dataset_profile(encoder, dataset)
    assert enrolled == [3] and cache_path(dataset, encoder) == dataset / "speaker_profile.ge2e.json"
    assert cache_path(dataset, encoder).is_file()
    assert np.allclose(first, original([dataset / "clips" / f"c{i}.wav" for i in range(3)]), atol=1e-6)
    again = dataset_profile(encoder, dataset)
    assert enrolled == [3] and np.array_equal(first, again)  # read back, not enrolled again

    save_audio(dataset / "clips" / "c2.wav", *real[4])  # a clip re-written
    changed = dataset_profile(encoder, dataset)
    assert enrolled == [3, 3] and not np.allclose(changed, first)
    assert np.array_equal(dataset_profile(encoder, dataset), changed) and enrolled == [3, 3]

    clips = read_manifest(dataset)
    clips[0].kept, clips[0].reason = False, "other_speaker"  # a clip no longer kept
    write_manifest(dataset / "manifest.jsonl", clips)
    dataset_profile(encoder, dataset)
    assert enrolled == [3, 3, 2]
    # another encoder (here a fine-tuned copy in a folder) has its own cache file
    tuned = SpeakerEncoder.load(encoder.save(tmp_path / "enc"))
    assert cache_path(dataset, tuned) != cache_path(dataset, encoder)


def test_a_dataset_that_cannot_be_written_to_is_enrolled_without_a_cache(encoder, real, tmp_path, monkeypatch):
    from voicetwin.speaker import profile as profiles

    dataset = _dataset(tmp_path / "ds", real[:2])

    def read_only(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(profiles, "write_json", read_only)
    assert profiles.dataset_profile(encoder, dataset).shape == (256,)
    assert not profiles.cache_path(dataset, encoder).exists()
    assert sorted(p.name for p in dataset.iterdir()) == ["clips", "manifest.jsonl"]


def test_cli_similarity_reuses_the_cached_profile_and_a_profile_file(real, tmp_path, capsys, monkeypatch):
    dataset = _dataset(tmp_path / "ds", real[:3])
    clip = tmp_path / "clip.wav"
    save_audio(clip, *real[3])
    assert main(["similarity", str(clip), str(dataset), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)["similarity"]
    assert first > 0.8 and (dataset / "speaker_profile.ge2e.json").is_file()

    enrolled = []
    original = SpeakerEncoder.enroll
    monkeypatch.setattr(SpeakerEncoder, "enroll",
                        lambda self, clips, *a: enrolled.append(len(clips)) or original(self, clips, *a))
    assert main(["similarity", str(clip), str(dataset), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["similarity"] == first
    assert enrolled == [1]  # only the clip: the dataset's profile came from its cache

    profile = tmp_path / "profile.npy"
    np.save(profile, original(SpeakerEncoder.load(), [dataset / "clips" / f"c{i}.wav" for i in range(3)]))
    assert main(["similarity", str(clip), "--profile", str(profile), "--json"]) == 0
    assert abs(json.loads(capsys.readouterr().out)["similarity"] - first) < 1e-3

    np.save(tmp_path / "short.npy", np.ones(10, np.float32))
    assert main(["similarity", str(clip), "--profile", str(tmp_path / "short.npy")]) == 2
    assert "expected 256 numbers" in capsys.readouterr().err
    assert main(["similarity", str(clip), str(dataset), "--profile", str(profile)]) == 2
    assert "not both" in capsys.readouterr().err
    assert main(["similarity", str(clip)]) == 2
    assert "--profile" in capsys.readouterr().err
