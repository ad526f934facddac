"""`voice build` with text: the speech model in the voice directory, reproducible builds, resuming.

A tiny English dataset is generated with espeak-ng (clips and their transcripts); MFCC content, a tiny speech
model and a dozen steps keep every build to seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from voicetwin.cli import main  # noqa: E402
from voicetwin.synth.acoustic import AcousticModel  # noqa: E402
from voicetwin.consent import ConsentRecord  # noqa: E402
from voicetwin.errors import ConfigError  # noqa: E402
from voicetwin.manifest import Clip, write_manifest  # noqa: E402
from voicetwin.production.build import build_voice  # noqa: E402
from voicetwin.voice.model import BuildOptions, Voice  # noqa: E402

LINES = [
    "The old man walked slowly along the river bank.",
    "She opened the window and looked at the garden.",
    "We will meet again next summer by the sea.",
    "A small boat was waiting near the wooden bridge.",
    "He never forgot the songs his mother used to sing.",
    "The children ran home before the rain began.",
    "Please close the door when you leave the room.",
    "My brother keeps a diary of every journey he makes.",
    "The bread in this little shop is always fresh.",
    "They sat by the fire and told stories until midnight.",
]
DOUBTFUL = 9  # this clip's text comes from a recogniser that was unsure of it
CONSENT = ConsentRecord(subject="espeak-ng en", granted_by="espeak-ng en", scope=("speech", "singing"),
                        document="synthetic test voice")
OPTIONS = BuildOptions(content="mfcc", steps=12, augment=0, batch_size=4, speech_steps=12, speech_size="tiny")


def _dataset(root: Path, texts: bool = True) -> Path:
    if shutil.which("espeak-ng") is None or shutil.which("t2p") is None:
        pytest.fail("espeak-ng and flite are needed: run 'make install'")
    (root / "clips").mkdir(parents=True)
    clips = []
    for i, line in enumerate(LINES):
        wav = root / "clips" / f"line{i:02d}.wav"
        subprocess.run(["espeak-ng", "-v", "en+m3", "-s", "150", "-w", str(wav), line], check=True)
        info = sf.info(str(wav))
        custom = {"text_from": "whisper-tiny.en", "text_confidence": 0.21 if i == DOUBTFUL else 0.83}
        clips.append(Clip(id=f"line{i:02d}", path=f"clips/line{i:02d}.wav", source=str(wav), start=0.0,
                          end=info.duration, duration=info.duration, sample_rate=info.samplerate,
                          text=line if texts else None, language="en", custom=custom if texts else {}))
    write_manifest(root / "manifest.jsonl", clips)
    return root


def _tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _same_weights(a: Path, b: Path) -> None:
    for name in ("model.safetensors", "index.safetensors", "tts/model.safetensors"):
        ta, tb = _tensors(a / name), _tensors(b / name)
        assert ta.keys() == tb.keys(), name
        for key in ta:
            assert ta[key].dtype == tb[key].dtype and np.array_equal(ta[key].numpy(), tb[key].numpy()), f"{name}: {key}"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return _dataset(tmp_path_factory.mktemp("texts"))


@pytest.fixture(scope="module")
def voice(dataset, tmp_path_factory) -> Voice:
    return build_voice(dataset, tmp_path_factory.mktemp("voices") / "v", OPTIONS, consent=CONSENT)


def test_build_writes_the_speech_model_and_reports_doubtful_text(voice):
    from voicetwin.synth.acoustic import AcousticModel

    report = json.loads((voice.path / "report.json").read_text())
    speech = report["speech_model"]
    assert speech["built"] and speech["language"] == "en" and speech["front_end"] == "flite"
    assert speech["clips"] + speech["validation_clips"] + len(speech["left_out_unaligned"]) == len(LINES) - 1
    assert [c["id"] for c in speech["left_out_doubtful_text"]] == [f"line{DOUBTFUL:02d}"]
    assert report["clips"] == len(LINES)  # the doubtful clip still trains the conversion model
    assert report["steps"] == OPTIONS.steps and speech["steps"] == OPTIONS.speech_steps
    model = AcousticModel.load(voice.path / "tts")
    assert model.config.language == "en" and model.config.hidden == 16
    assert (voice.path / "tts" / "consent.json").exists()
    assert not (voice.path / ".build").exists()  # nothing left to resume


def test_speak_uses_the_voices_own_speech_model_by_default(voice, tmp_path):
    from voicetwin.synth.speak import SpeakOptions, speak, speech_base

    line = "The garden was quiet in the morning."
    own = f"model:{voice.path / 'tts'}"
    assert speech_base(voice, line) == own
    assert speech_base(voice, line, SpeakOptions(base="espeak")) == "espeak"
    default, sr = speak(voice, line)
    explicit, _ = speak(voice, line, SpeakOptions(base=own))
    converted, _ = speak(voice, line, SpeakOptions(base="espeak:en"))
    assert sr == 22050 and np.array_equal(default, explicit)  # its predicted mel through the neural vocoder
    assert AcousticModel.load(voice.path / "tts").config.mel_bands == 80
    assert len(converted) != len(default) or not np.array_equal(converted, default)
    out = tmp_path / "line.wav"
    assert main(["speak", "--voice", str(voice.path), "--text", line, "--out", str(out)]) == 0
    provenance = json.loads(Path(f"{out}.provenance.json").read_text())
    assert own in json.dumps(provenance)


def test_a_second_build_gives_identical_weights(dataset, voice, tmp_path):
    again = build_voice(dataset, tmp_path / "again", OPTIONS, consent=CONSENT)
    _same_weights(voice.path, again.path)
    other = build_voice(dataset, tmp_path / "other", BuildOptions(**{**OPTIONS.__dict__, "seed": 1}), consent=CONSENT)
    with pytest.raises(AssertionError):
        _same_weights(voice.path, other.path)


@pytest.mark.parametrize("stage", ["training voice", "training speech model"])
def test_an_interrupted_build_resumes_to_the_same_weights(dataset, voice, tmp_path, stage):
    def interrupt(name: str, done: int, total: int) -> None:
        if name == stage and done == 5:
            raise KeyboardInterrupt

    out = tmp_path / "v"
    with pytest.raises(KeyboardInterrupt):
        build_voice(dataset, out, OPTIONS, consent=CONSENT, hook=interrupt)
    assert list((out / ".build").glob("*-train.pt"))
    with pytest.raises(ConfigError, match="another dataset or other options"):
        build_voice(dataset, out, BuildOptions(**{**OPTIONS.__dict__, "seed": 1}), consent=CONSENT, resume=True)
    seen = []
    resumed = build_voice(dataset, out, OPTIONS, consent=CONSENT, resume=True,
                          hook=lambda name, done, total: seen.append((name, done)))
    first = [done for name, done in seen if name == stage][0]
    assert first == 6  # training went on from the step it was interrupted at
    assert json.loads((out / "report.json").read_text())["resumed"]
    _same_weights(voice.path, resumed.path)


def test_a_build_without_text_says_how_speech_is_made_and_how_to_add_text(tmp_path, capsys):
    from voicetwin.consent import save_consent
    from voicetwin.synth.speak import speech_base

    data = _dataset(tmp_path / "data", texts=False)
    save_consent(tmp_path / "v", CONSENT)
    code = main(["voice", "build", str(data), "--out", str(tmp_path / "v"), "--content", "mfcc", "--steps", "3",
                 "--augment", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "no speech model" in printed and "ingest" in printed and "--transcripts" in printed
    speech = json.loads((tmp_path / "v" / "report.json").read_text())["speech_model"]
    assert not speech["built"] and "base synthesiser" in speech["speech"]
    assert not (tmp_path / "v" / "tts").exists()
    assert speech_base(tmp_path / "v", "Good morning.") == "piper"


def test_alignment_finds_the_phone_boundaries_of_real_recordings(festvox_wavs):
    """Forced alignment on 30 festvox-ru recordings against the package's own phone labels."""
    from voicetwin.audio import load_audio
    from voicetwin.synth.acoustic import front_end_phones
    from voicetwin.synth.align import align_dataset, alignment_features
    from voicetwin.text import normalize

    root = festvox_wavs[0].parents[1]
    texts = {}
    for line in (root / "etc" / "txt.done.data").read_text(encoding="utf-8").splitlines():
        parts = line.split('"')
        if len(parts) >= 2:
            texts[parts[0].strip("( ").strip()] = parts[1]
    ids = sorted(texts)[:30]
    clips = []
    for uid in ids:
        audio, sr = load_audio(root / "wav" / f"{uid}.wav", sample_rate=16_000)
        clips.append((list(front_end_phones(normalize(texts[uid], "ru"))),
                      alignment_features(audio, sr, int(len(audio) / 160) + 1)))
    errors, compared = [], 0
    for uid, found in zip(ids, align_dataset(clips)):
        labels = []
        for row in (root / "lab" / f"{uid}.lab").read_text(encoding="utf-8").split("#", 1)[-1].splitlines():
            if len(row.split()) == 3:
                labels.append((row.split()[2], float(row.split()[0])))
        ends = np.cumsum(found.frames) * 0.01
        ours = [(p, e) for p, e in zip(found.phones, ends) if p != "pau"]
        theirs = [(p, e) for p, e in labels if p != "pau"]
        if [p for p, _ in ours] == [p for p, _ in theirs]:
            compared += 1
            errors += [a - b for (_, a), (_, b) in zip(ours, theirs)][:-1]
    errors = np.array(errors)
    assert compared >= 20
    assert np.median(np.abs(errors)) < 0.015 and np.mean(np.abs(errors) < 0.05) > 0.85
    assert abs(np.median(errors)) < 0.012  # not late or early as a whole (without lead_frames: 18 ms late)


def test_shifted_boundaries_move_earlier_and_keep_the_clip_length():
    from voicetwin.errors import ConfigError
    from voicetwin.synth.align import AlignOptions, shift_boundaries

    assert shift_boundaries(np.array([5, 3, 4, 6]), 0).tolist() == [5, 3, 4, 6]
    assert shift_boundaries(np.array([5, 3, 4, 6]), 1).tolist() == [4, 3, 4, 7]
    # a boundary never moves before the start: the first phones give what they have
    assert shift_boundaries(np.array([5, 3, 4, 6]), 7).tolist() == [0, 1, 4, 13]
    assert shift_boundaries(np.array([9]), 2).tolist() == [9]
    with pytest.raises(ConfigError):
        AlignOptions(lead_frames=-1)
