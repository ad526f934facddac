"""One checkpoint format for every model: config.json + model.safetensors, type and version checked, one error."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import torch

from voicetwin.checkpoint import load_checkpoint, load_weights, save_checkpoint
from voicetwin.errors import CheckpointError, ConfigError, ModelNotFoundError


@dataclass(frozen=True)
class TinyConfig:
    width: int = 3
    layers: tuple[int, ...] = (1, 2)


def _net(config: TinyConfig) -> torch.nn.Module:
    return torch.nn.Linear(config.width, 2)


def test_round_trip_keeps_config_weights_and_extra_keys(tmp_path):
    torch.manual_seed(0)
    net = _net(TinyConfig())
    save_checkpoint(tmp_path / "m", TinyConfig(), net.state_dict(), "tiny", 2, extra={"mean": [0.5]})
    ckpt = load_checkpoint(tmp_path / "m", TinyConfig, "tiny", 2, extra_keys=("mean",))
    assert ckpt.config == TinyConfig() and ckpt.extra == {"mean": [0.5]}
    again = load_weights(_net(ckpt.config), ckpt.tensors, ckpt.weights)
    assert torch.equal(again.weight, net.weight) and not again.training
    # a file inside the directory resolves to the directory
    assert load_checkpoint(tmp_path / "m" / "model.safetensors", TinyConfig, "tiny", 2, extra_keys=("mean",)).config


def test_every_mismatch_is_a_checkpoint_error(tmp_path):
    save_checkpoint(tmp_path / "m", TinyConfig(), _net(TinyConfig()).state_dict(), "tiny", 2)
    with pytest.raises(CheckpointError, match="not a 'other' model"):
        load_checkpoint(tmp_path / "m", TinyConfig, "other", 2)
    with pytest.raises(CheckpointError, match="format_version 2"):
        load_checkpoint(tmp_path / "m", TinyConfig, "tiny", 1)  # written by a newer voicetwin
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "depth": 4}))
    with pytest.raises(CheckpointError, match="unknown config keys"):
        load_checkpoint(tmp_path / "m", TinyConfig, "tiny", 2)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    ckpt = load_checkpoint(tmp_path / "m", TinyConfig, "tiny", 2)
    with pytest.raises(CheckpointError, match="do not match"):
        load_weights(_net(TinyConfig(width=5)), ckpt.tensors, ckpt.weights)  # another shape
    with pytest.raises(CheckpointError, match="do not match"):
        load_weights(torch.nn.Sequential(_net(TinyConfig())), ckpt.tensors, ckpt.weights)  # other names
    (tmp_path / "m" / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_checkpoint(tmp_path / "m", TinyConfig, "tiny", 2)
    (tmp_path / "m" / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError):
        load_checkpoint(tmp_path / "m", TinyConfig, "tiny", 2)
    assert issubclass(CheckpointError, ConfigError)


def test_models_refuse_each_others_directories_with_the_same_error(tmp_path):
    from voicetwin.speaker.encoder import SpeakerEncoder
    from voicetwin.synth.acoustic import AcousticConfig, AcousticModel
    from voicetwin.voice.model import Voice

    acoustic = AcousticModel(AcousticConfig(phones=("a", "b", "pau"))).save(tmp_path / "acoustic")
    with pytest.raises(CheckpointError, match="not a 'voicetwin-voice' model"):
        Voice.load(acoustic)
    with pytest.raises(CheckpointError, match="not a 'ge2e-speaker-encoder' model"):
        SpeakerEncoder.load(acoustic)
    assert AcousticModel.load(acoustic).config.phones == ("a", "b", "pau")
