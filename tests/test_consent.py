"""Consent records: storage, and every refusal path of check_consent."""

from __future__ import annotations

import datetime as dt
import json

import shutil
from pathlib import Path

import numpy as np
import pytest

from voicetwin.cli import main
from voicetwin.consent import (
    ConsentRecord,
    check_consent,
    consent_path,
    consent_reference,
    load_consent,
    save_consent,
)
from voicetwin.errors import ConsentError


def estate_record(**kw) -> ConsentRecord:
    base = dict(subject="Ivan Petrov", granted_by="Estate of Ivan Petrov", relation="estate", scope=("speech",),
                productions=("The Last Letter",), expires="2030-12-31", document="contract 2025-114")
    base.update(kw)
    return ConsentRecord(**base)


def test_save_load_round_trip(tmp_path):
    rec = estate_record()
    path = save_consent(tmp_path / "voice", rec)
    assert path == consent_path(tmp_path / "voice")
    assert load_consent(tmp_path / "voice") == rec
    with pytest.raises(ConsentError, match="already exists"):
        save_consent(tmp_path / "voice", rec)
    save_consent(tmp_path / "voice", estate_record(expires=None), overwrite=True)
    assert load_consent(tmp_path / "voice").expires is None


def test_allowed_use_returns_record(tmp_path):
    save_consent(tmp_path, estate_record())
    rec = check_consent(tmp_path, use="dub", production="the last  letter", when=dt.date(2026, 1, 1))
    assert rec.subject == "Ivan Petrov"
    assert check_consent(tmp_path, use="build", when=dt.date(2026, 1, 1)) == rec
    ref = consent_reference(rec)
    assert ref["document"] == "contract 2025-114" and len(ref["record_sha256"]) == 64


def test_missing_record_is_refused(tmp_path):
    with pytest.raises(ConsentError) as exc:
        check_consent(tmp_path / "voice", use="speech")
    msg = str(exc.value)
    assert "no consent record" in msg and "voicetwin consent create" in msg


def test_expired_record_is_refused():
    rec = estate_record(expires="2024-06-30")
    with pytest.raises(ConsentError, match="expired on 2024-06-30"):
        check_consent(rec, use="speech", production="The Last Letter", when=dt.date(2024, 7, 1))
    # the last day itself is still valid
    check_consent(rec, use="speech", production="The Last Letter", when=dt.date(2024, 6, 30))


def test_singing_outside_scope_is_refused():
    with pytest.raises(ConsentError) as exc:
        check_consent(estate_record(), use="singing", production="The Last Letter", when=dt.date(2026, 1, 1))
    msg = str(exc.value)
    assert "singing" in msg and "outside the consent's scope" in msg and "--scope singing speech" in msg


def test_wrong_or_missing_production_is_refused():
    rec = estate_record()
    with pytest.raises(ConsentError, match="'Another Film' is not covered"):
        check_consent(rec, use="dub", production="Another Film", when=dt.date(2026, 1, 1))
    with pytest.raises(ConsentError, match="no production was named"):
        check_consent(rec, use="speech", when=dt.date(2026, 1, 1))
    # a record naming no production covers any
    check_consent(estate_record(productions=()), use="speech", when=dt.date(2026, 1, 1))


def test_invalid_records_are_refused(tmp_path):
    with pytest.raises(ConsentError, match="document reference"):
        estate_record(document=" ")
    with pytest.raises(ConsentError, match="unknown scope"):
        estate_record(scope=("speech", "dance"))
    with pytest.raises(ConsentError, match="not a date"):
        estate_record(expires="next year")
    with pytest.raises(ConsentError, match="relation"):
        estate_record(relation="friend")
    with pytest.raises(ConsentError, match="unknown use"):
        check_consent(estate_record(), use="karaoke")
    consent_path(tmp_path).write_text(json.dumps({"subject": "X", "granted_by": "X", "document": "d", "colour": 1}))
    with pytest.raises(ConsentError, match="unknown keys"):
        load_consent(tmp_path)
    consent_path(tmp_path).write_text("{not json")
    with pytest.raises(ConsentError, match="not readable JSON"):
        load_consent(tmp_path)


def test_cli_consent_create_and_check(tmp_path, capsys):
    voice = tmp_path / "voice"
    assert main(["consent", "create", str(voice), "--subject", "Anna K.", "--scope", "speech", "singing",
                 "--document", "release form 12", "--expires", "2099-01-01", "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert rec["granted_by"] == "Anna K." and rec["relation"] == "self"
    assert main(["consent", "check", str(voice), "--use", "singing", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["allowed"] is True
    assert main(["consent", "check", str(tmp_path / "nobody"), "--use", "speech"]) == 2
    assert "no consent record" in capsys.readouterr().err
    assert main(["consent", "create", str(voice), "--subject", "Anna K.", "--relation", "heirs",
                 "--document", "d"]) == 2
    assert "--granted-by" in capsys.readouterr().err


# --- consent enforced by the public API: building, converting, speaking, singing ------------------------------

FILM = "The Last Letter"


def _record(**kw) -> ConsentRecord:
    base = dict(subject="festvox-ru speaker", granted_by="festvox-ru speaker", scope=("speech",),
                productions=(FILM,), expires="2099-12-31", document="test voice from the Debian festvox-ru recordings")
    base.update(kw)
    return ConsentRecord(**base)


def _tiny():
    from voicetwin.voice.model import BuildOptions

    return BuildOptions(content="mfcc", steps=3, augment=0, batch_size=2, speech_model=False)


@pytest.fixture(scope="module")
def dataset(two_clip_dataset) -> Path:
    """Two festvox-ru clips as an ingested dataset."""
    return two_clip_dataset


@pytest.fixture(scope="module")
def voice(dataset, tmp_path_factory):
    """A tiny voice built on a speech-only consent for one production; the record goes into its folder."""
    from voicetwin.voice.model import Voice

    out = tmp_path_factory.mktemp("voices") / "nsh"
    built = Voice.build(dataset, out, _tiny(), consent=_record())
    assert load_consent(out) == _record(created=load_consent(out).created)
    return built


def _performance(seconds: float = 1.5, sr: int = 16_000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    return (0.1 * sum(np.sin(k * phase) / k for k in range(1, 10))).astype(np.float32)


def test_build_refuses_without_a_valid_record_before_any_work(dataset, tmp_path, capsys):
    from voicetwin.voice.model import Voice

    out = tmp_path / "v"
    with pytest.raises(ConsentError) as refused:
        Voice.build(dataset, out, _tiny())
    msg = str(refused.value)
    assert "consent record" in msg and "voicetwin consent create" in msg and "--consent" in msg
    assert not out.exists()  # nothing was written
    with pytest.raises(ConsentError, match="expired on 2020-01-01"):
        Voice.build(dataset, out, _tiny(), consent=_record(expires="2020-01-01"))
    assert not out.exists()
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"subject": "X", "granted_by": "X"}))
    with pytest.raises(ConsentError, match="lacks document"):
        Voice.build(dataset, out, _tiny(), consent=bad)
    assert main(["voice", "build", str(dataset), "--out", str(out), "--content", "mfcc", "--steps", "3",
                 "--no-speech-model", "--augment", "0"]) == 2
    err = capsys.readouterr().err
    assert "consent" in err and len(err.strip().splitlines()) == 1


def test_build_on_a_record_created_first_or_passed_as_a_file(dataset, voice, tmp_path, capsys):
    from voicetwin.voice.model import Voice

    # 'voicetwin consent create' first, then build into the same folder
    out = tmp_path / "v1"
    assert main(["consent", "create", str(out), "--subject", "N", "--document", "letter 7", "--scope", "singing"]) == 0
    capsys.readouterr()
    assert main(["voice", "build", str(dataset), "--out", str(out), "--content", "mfcc", "--steps", "3",
                 "--no-speech-model", "--augment", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["voice"] == str(out)
    assert load_consent(out).scope == ("singing",) and (out / "model.safetensors").exists()
    # --consent FILE.json: the record is copied into the voice folder
    out2 = tmp_path / "v2"
    assert main(["voice", "build", str(dataset), "--out", str(out2), "--content", "mfcc", "--steps", "3",
                 "--no-speech-model", "--augment", "0", "--consent", str(consent_path(voice.path)), "--json"]) == 0
    assert consent_path(out2).read_bytes() == consent_path(voice.path).read_bytes()
    assert Voice.load(out2).path == out2


def test_convert_checks_scope_production_and_expiry(voice, tmp_path):
    from voicetwin.voice.model import ConvertOptions, Voice

    x = _performance()
    with pytest.raises(ConsentError, match="singing with festvox-ru speaker's voice is outside the consent's scope"):
        voice.convert(x, 16_000, ConvertOptions(mode="singing"), production=FILM)
    with pytest.raises(ConsentError, match="no production was named"):
        voice.convert(x, 16_000)
    with pytest.raises(ConsentError, match="'Another Film' is not covered"):
        voice.convert(x, 16_000, production="Another Film")
    y, sr = voice.convert(x, 16_000, production=FILM)  # through the voice's mel decoder and HiFi-GAN
    assert sr == 22_050 and len(y) == round(len(x) * 22_050 / 16_000)
    expired = tmp_path / "expired"
    shutil.copytree(voice.path, expired)
    save_consent(expired, _record(expires="2020-01-01"), overwrite=True)
    with pytest.raises(ConsentError, match="expired on 2020-01-01"):
        Voice.load(expired).convert(x, 16_000, production=FILM)
    consent_path(expired).unlink()
    with pytest.raises(ConsentError, match="no consent record"):
        Voice.load(expired).convert(x, 16_000, production=FILM)
    detached = Voice.load(voice.path)
    detached.path = None
    with pytest.raises(ConsentError, match="no directory"):
        detached.convert(x, 16_000, production=FILM)


def test_convert_files_watermarks_and_records_the_consent(voice, tmp_path, capsys):
    import soundfile as sf

    from voicetwin.production.provenance import sidecar_path
    from voicetwin.production.render import convert_files
    from voicetwin.voice.model import ConvertOptions
    from voicetwin.production.watermark import detect_file

    wav = tmp_path / "take.wav"
    sf.write(wav, _performance(3.0), 16_000)
    with pytest.raises(ConsentError, match="singing"):
        convert_files(voice, [wav], tmp_path / "sung", ConvertOptions(mode="singing"), production=FILM)
    assert not (tmp_path / "sung").exists()  # refused before any output
    results = convert_files(voice, [wav], tmp_path / "out", production=FILM)
    out = Path(results[0]["output"])
    assert out == tmp_path / "out" / "take.wav" and results[0]["watermark_verified"] is True
    record = json.loads(sidecar_path(out).read_text())
    assert record["consent"] == consent_reference(load_consent(voice.path))
    assert record["extra"]["production"] == FILM and record["inputs"][0]["path"] == str(wav)
    found = detect_file(out)
    assert found.detected and found.payload.hex == record["extra"]["watermark"]["hex"]
    # the CLI goes the same way, and names the production
    assert main(["convert", "--voice", str(voice.path), str(wav), "-o", str(tmp_path / "cli.wav")]) == 2
    assert "no production was named" in capsys.readouterr().err
    assert main(["convert", "--voice", str(voice.path), str(wav), "-o", str(tmp_path / "cli.wav"),
                 "--production", FILM, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["provenance"] == str(sidecar_path(tmp_path / "cli.wav"))
    assert detect_file(tmp_path / "cli.wav").detected


def test_speak_and_sing_check_the_consent_before_synthesis(tmp_path):
    from voicetwin.synth.sing import sing
    from voicetwin.synth.speak import speak

    save_consent(tmp_path, _record())

    class Unconvertible:  # a voice whose conversion must never be reached
        path = tmp_path
        language = "ru"

        def convert(self, *args, **kwargs):
            raise AssertionError("consent must be checked before anything is rendered")

    with pytest.raises(ConsentError, match="singing .* outside the consent's scope"):
        sing(Unconvertible(), tmp_path / "no-such-score.mid", production=FILM)  # refused before the score is read
    with pytest.raises(ConsentError, match="'Another Film' is not covered"):
        speak(Unconvertible(), "Добрый вечер.", production="Another Film")
    with pytest.raises(ConsentError, match="no production was named"):
        speak(Unconvertible(), "Добрый вечер.")
    with pytest.raises(ConsentError, match="no consent record"):
        speak(type("Bare", (), {"path": tmp_path / "none"})(), "Добрый вечер.")
