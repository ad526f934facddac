from dataclasses import dataclass

import pytest

from voicetwin import hub
from voicetwin.errors import ConfigError, ModelNotFoundError


@dataclass(frozen=True)
class TinyConfig:
    width: int = 4
    layers: tuple = (1, 2)


def test_registered_model_resolves_offline_to_a_packaged_file():
    path = hub.resolve("ge2e", kind="speaker-encoder")
    assert path.is_file() and path.name == "pretrained.pt"
    assert "ge2e" in hub.available_models("speaker-encoder")


def test_local_path_wins(tmp_path):
    assert hub.resolve(tmp_path) == tmp_path


def test_unknown_name_lists_known_models():
    with pytest.raises(ModelNotFoundError, match="ge2e"):
        hub.resolve("./no/such/model")


def test_wrong_kind_is_refused():
    with pytest.raises(ModelNotFoundError, match="speaker-encoder"):
        hub.resolve("ge2e", kind="asr")


def test_hub_name_fails_clearly_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("VOICETWIN_CACHE", str(tmp_path))
    with pytest.raises(Exception) as info:
        hub.resolve("some-org/some-model")
    assert "some-org/some-model" in str(info.value)


def test_config_round_trip_and_refusals():
    data = hub.config_to_dict(TinyConfig(width=8), "tiny", 1)
    assert data["format_version"] == 1 and data["model_type"] == "tiny"
    assert hub.config_from_dict(TinyConfig, data, "tiny", 1) == TinyConfig(width=8)
    with pytest.raises(ConfigError, match="format_version"):
        hub.config_from_dict(TinyConfig, {**data, "format_version": 2}, "tiny", 1)
    with pytest.raises(ConfigError, match="unknown config keys"):
        hub.config_from_dict(TinyConfig, {**data, "colour": "red"}, "tiny", 1)
    with pytest.raises(ConfigError, match="not a 'tiny' model"):
        hub.config_from_dict(TinyConfig, {**data, "model_type": "big"}, "tiny", 1)
