"""Consent records: storage, and every refusal path of check_consent."""

from __future__ import annotations

import datetime as dt
import json

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
