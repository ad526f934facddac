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


def _split_weights(tmp_path, monkeypatch, data: bytes):
    """Two importable packages carrying a file split in two, the second also carrying the model's config."""
    import hashlib
    import sys

    for name, files in (("vt_part_one", {"data/w.part1": data[:5]}),
                        ("vt_part_two", {"data/w.part2": data[5:], "data/config.json": b"{}"})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text("")
        for rel, blob in files.items():
            (tmp_path / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / rel).write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("vt_part_one", "vt_part_two"):
        sys.modules.pop(name, None)
    monkeypatch.setenv("VOICETWIN_CACHE", str(tmp_path / "cache"))
    return hashlib.sha256(data).hexdigest()


def _split_entry(sha256: str) -> hub.ModelEntry:
    return hub.ModelEntry("content", "vt_part_two", "data", "a split test model", sha256=sha256,
                          joined=("model.bin", (("vt_part_one", "data/w.part1"), ("vt_part_two", "data/w.part2"))))


def test_a_split_weights_file_is_joined_once_into_the_cache(tmp_path, monkeypatch):
    data = bytes(range(20))
    digest = _split_weights(tmp_path, monkeypatch, data)
    monkeypatch.setitem(hub.MODELS, "split-test", _split_entry(digest))
    folder = hub.resolve("split-test", kind="content")
    assert folder == tmp_path / "cache" / "models" / "split-test"
    assert (folder / "model.bin").read_bytes() == data  # part 1 then part 2
    assert (folder / "config.json").is_symlink() and not (folder / "w.part2").exists()
    stamp = (folder / "model.bin").stat().st_mtime_ns
    assert hub.resolve("split-test") == folder and (folder / "model.bin").stat().st_mtime_ns == stamp


def test_a_joined_file_with_another_checksum_is_refused_and_not_left(tmp_path, monkeypatch):
    _split_weights(tmp_path, monkeypatch, bytes(range(20)))
    monkeypatch.setitem(hub.MODELS, "split-test", _split_entry("0" * 64))
    with pytest.raises(ModelNotFoundError, match="sha256"):
        hub.resolve("split-test")
    assert not list((tmp_path / "cache" / "models" / "split-test").glob("*model.bin*"))
