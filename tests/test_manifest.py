import pytest

from voicetwin.errors import InputError, InputNotFoundError
from voicetwin.files import atomic_path, expand_media
from voicetwin.manifest import Clip, dataset_clips, read_manifest, write_manifest


def _clip(i: int, kept: bool = True) -> Clip:
    return Clip(id=f"c{i}", path=f"clips/c{i}.wav", source="a.mp3", start=i, end=i + 2.0, duration=2.0,
                sample_rate=16000, kept=kept, reason="kept" if kept else "music")


def test_manifest_round_trip_keeps_unknown_fields_in_custom(tmp_path):
    clips = [_clip(0), _clip(1, kept=False)]
    clips[0].custom["mood"] = "calm"
    write_manifest(tmp_path / "manifest.jsonl", clips)
    back = read_manifest(tmp_path)
    assert [c.id for c in back] == ["c0", "c1"]
    assert back[0].custom == {"mood": "calm"}
    assert back[1].kept is False and back[1].reason == "music"
    assert [c.id for c, _ in dataset_clips(tmp_path)] == ["c0"]


def test_missing_and_broken_manifest(tmp_path):
    with pytest.raises(InputNotFoundError, match="voicetwin ingest"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.jsonl").write_text('{"id": "x"}\nnot json\n')
    with pytest.raises(InputError, match="line 1"):
        read_manifest(tmp_path)


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_text("whole")
    assert target.read_text() == "whole" and list(tmp_path.iterdir()) == [target]


def test_expand_media(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.mp4").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    found = expand_media([tmp_path])
    assert [p.name for p in found] == ["a.wav", "b.mp4"]
    with pytest.raises(InputNotFoundError):
        expand_media([tmp_path / "missing"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no audio or video"):
        expand_media([empty])
