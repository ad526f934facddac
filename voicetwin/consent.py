"""Consent records: who agreed that a voice may be recreated, for what, until when.

Every voice directory carries ``consent.json``. Building a voice (``Voice.build``: ``consent_for_build``),
converting into it (``Voice.convert``, ``convert_files``), making it speak or sing (``speak``, ``sing``) and dubbing
with it check the record first (``voice_consent`` / ``check_consent``); a missing, expired or out-of-scope record
raises ``ConsentError`` with a message that says what is missing and how to fix it. The record's reference
(``consent_reference``) goes into the provenance sidecar of every output.

Consent is a function of a directory path (or a record) only; it knows nothing about the model files next to it.

    record = ConsentRecord(subject="Ivan Petrov", granted_by="Estate of Ivan Petrov", relation="estate",
                           scope=("speech",), productions=("The Last Letter",), expires="2027-12-31",
                           document="contract 2025-114, signed 2025-03-02")
    save_consent("voices/ivan", record)
    check_consent("voices/ivan", use="dub", production="The Last Letter")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .errors import ConsentError
from .files import write_json

CONSENT_FILE = "consent.json"
FORMAT_VERSION = 1
SCOPES = ("speech", "singing")  # what a record can allow
USES = ("build", "speech", "singing", "dub")  # what a caller can ask for
RELATIONS = ("self", "estate", "heirs")  # who signed: the person, or the estate / heirs of a late person
_USE_NEEDS = {"speech": "speech", "singing": "singing", "dub": "speech"}  # dubbing renders speech


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _utc_stamp() -> str:
    return _now().replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ConsentRecord:
    """Consent to recreate one person's voice.

    Attributes:
        subject: the person whose voice is recreated.
        granted_by: who signed: the person themself, or the estate / heirs (names) for a late person.
        relation: ``"self"``, ``"estate"`` or ``"heirs"``.
        scope: what the voice may do: ``"speech"`` (speaking, text to speech, dubbing) and/or ``"singing"``.
        productions: the named productions the consent covers; empty means any production.
        expires: last valid day, ISO ``YYYY-MM-DD`` (UTC); ``None`` for no expiry.
        document: reference of the signed document (contract number, archive file, e-mail).
        created: when the record was written (ISO UTC).
        notes: free text.
    """

    subject: str
    granted_by: str
    document: str
    relation: str = "self"
    scope: tuple[str, ...] = ("speech",)
    productions: tuple[str, ...] = ()
    expires: str | None = None
    created: str = field(default_factory=_utc_stamp)
    notes: str = ""
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        # accept lists from JSON, keep tuples inside the frozen record
        object.__setattr__(self, "scope", tuple(self.scope))
        object.__setattr__(self, "productions", tuple(p.strip() for p in self.productions))
        if not self.subject.strip():
            raise ConsentError("the consent record does not name the person (subject)",
                               fix="give the name of the person whose voice is recreated")
        if not self.granted_by.strip():
            raise ConsentError("the consent record does not say who consented (granted_by)",
                               fix="give the person's name, or the estate's / heirs' names for a late person")
        if self.relation not in RELATIONS:
            raise ConsentError(f"unknown relation '{self.relation}'", fix=f"use one of {', '.join(RELATIONS)}")
        if not self.document.strip():
            raise ConsentError("the consent record has no document reference",
                               fix="give the reference of the signed consent (contract number, archive file)")
        if not self.scope:
            raise ConsentError("the consent record allows nothing (empty scope)",
                               fix=f"give at least one of {', '.join(SCOPES)}")
        unknown = [s for s in self.scope if s not in SCOPES]
        if unknown:
            raise ConsentError(f"unknown scope {', '.join(map(repr, unknown))}", fix=f"use {' and/or '.join(SCOPES)}")
        if any(not p for p in self.productions):
            raise ConsentError("a production name in the consent record is empty")
        if self.expires is not None:
            _parse_date(self.expires)
        if self.format_version != FORMAT_VERSION:
            raise ConsentError(f"consent record format {self.format_version} is not supported (expected "
                               f"{FORMAT_VERSION})", fix="upgrade voicetwin or re-create the record")

    @property
    def expiry_date(self) -> dt.date | None:
        return None if self.expires is None else _parse_date(self.expires)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["scope"] = list(self.scope)
        d["productions"] = list(self.productions)
        return d

    @classmethod
    def from_dict(cls, data: dict, path: str | Path | None = None) -> ConsentRecord:
        if not isinstance(data, dict):
            raise ConsentError("consent record is not a JSON object", path=path, fix="re-create it")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConsentError(f"unknown keys in the consent record: {', '.join(unknown)}", path=path,
                               fix=f"allowed keys: {', '.join(sorted(known))}")
        missing = [k for k in ("subject", "granted_by", "document") if not data.get(k)]
        if missing:
            raise ConsentError(f"the consent record lacks {', '.join(missing)}", path=path,
                               fix="re-create it with 'voicetwin consent create'")
        try:
            return cls(**data)
        except ConsentError as exc:
            raise ConsentError(str(exc), path=path) from exc
        except TypeError as exc:
            raise ConsentError(f"malformed consent record ({exc})", path=path, fix="re-create it") from exc


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(text)[:10])
    except ValueError as exc:
        raise ConsentError(f"expiry '{text}' is not a date", fix="write it as YYYY-MM-DD") from exc


def consent_path(voice_dir: str | Path) -> Path:
    return Path(voice_dir) / CONSENT_FILE


def save_consent(voice_dir: str | Path, record: ConsentRecord, overwrite: bool = False) -> Path:
    """Write ``record`` as ``voice_dir/consent.json`` (atomic). An existing record is kept unless ``overwrite``."""
    path = consent_path(voice_dir)
    if path.exists() and not overwrite:
        raise ConsentError("a consent record already exists", path=path,
                           fix="pass overwrite=True (CLI: --force) to replace it")
    write_json(path, record.to_dict())
    return path


def load_consent(voice_dir: str | Path) -> ConsentRecord:
    """Read ``voice_dir/consent.json``; a missing or invalid record raises ``ConsentError``."""
    voice_dir = Path(voice_dir)
    path = consent_path(voice_dir)
    if not path.exists():
        raise ConsentError(
            "this voice has no consent record (consent.json)",
            path=voice_dir,
            fix=f"record who agreed: voicetwin consent create {voice_dir} --subject NAME --granted-by NAME "
            "--document REF --scope speech",
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConsentError(f"consent record is not readable JSON ({exc})", path=path,
                           fix="re-create it with 'voicetwin consent create --force'") from exc
    return ConsentRecord.from_dict(data, path=path)


def check_consent(
    voice: str | Path | ConsentRecord,
    use: str = "speech",
    production: str | None = None,
    when: dt.datetime | dt.date | None = None,
) -> ConsentRecord:
    """Refuse a use of a voice that its consent record does not cover.

    Args:
        voice: a voice directory (holding ``consent.json``) or a ``ConsentRecord``.
        use: ``"build"`` (any valid record), ``"speech"``, ``"singing"`` or ``"dub"`` (needs speech).
        production: the production the output is for; required when the record names productions.
        when: the time of use (default: now, UTC).

    Returns:
        The record, for the output's provenance.

    Raises:
        ConsentError: no record, expired, or the use or production is outside its scope.
    """
    if use not in USES:
        raise ConsentError(f"unknown use '{use}'", fix=f"use one of {', '.join(USES)}")
    if isinstance(voice, ConsentRecord):
        record, where = voice, None
    else:
        record, where = load_consent(voice), consent_path(voice)
    if when is None:
        today = _now().date()
    elif isinstance(when, dt.datetime):
        today = (when.astimezone(dt.timezone.utc) if when.tzinfo else when).date()
    else:
        today = when
    expiry = record.expiry_date
    if expiry is not None and today > expiry:
        raise ConsentError(
            f"the consent of {record.granted_by} for {record.subject}'s voice expired on {expiry.isoformat()}",
            path=where,
            fix="obtain a renewed consent and record it with 'voicetwin consent create --force --expires YYYY-MM-DD'",
        )
    needed = _USE_NEEDS.get(use)
    if needed is not None and needed not in record.scope:
        what = "dubbing (speech)" if use == "dub" else use
        raise ConsentError(
            f"{what} with {record.subject}'s voice is outside the consent's scope (it allows: "
            f"{', '.join(record.scope)})",
            path=where,
            fix=f"obtain consent that covers {needed} and add it with 'voicetwin consent create --force --scope "
            f"{' '.join(sorted(set(record.scope) | {needed}))}'",
        )
    if record.productions and use != "build":
        allowed = ", ".join(f"'{p}'" for p in record.productions)
        if production is None:
            raise ConsentError(
                f"the consent for {record.subject}'s voice is limited to the productions {allowed}, and no "
                "production was named",
                path=where,
                fix="name the production the output is for (--production NAME)",
            )
        if _norm(production) not in {_norm(p) for p in record.productions}:
            raise ConsentError(
                f"production '{production}' is not covered by the consent for {record.subject}'s voice (it "
                f"covers {allowed})",
                path=where,
                fix="obtain consent for this production and add it to the record's productions",
            )
    return record


def read_consent(source: ConsentRecord | str | Path) -> ConsentRecord:
    """A consent record from a ``ConsentRecord``, a record's JSON file, or a directory holding ``consent.json``."""
    if isinstance(source, ConsentRecord):
        return source
    if not isinstance(source, (str, Path)):
        raise ConsentError(f"cannot read a consent record from a {type(source).__name__}",
                           fix="pass a ConsentRecord, a consent JSON file or a voice directory")
    path = Path(source)
    if path.is_dir():
        return load_consent(path)
    if not path.is_file():
        raise ConsentError("no consent record here", path=path,
                           fix="give the JSON file written by 'voicetwin consent create' (VOICE_DIR/consent.json)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConsentError(f"consent record is not readable JSON ({exc})", path=path,
                           fix="give the JSON file written by 'voicetwin consent create'") from exc
    return ConsentRecord.from_dict(data, path=path)


def consent_for_build(
    voice_dir: str | Path,
    consent: ConsentRecord | str | Path | None = None,
    when: dt.datetime | dt.date | None = None,
) -> ConsentRecord:
    """The consent a voice is built on: ``consent`` (a record, its JSON file or a directory holding one) or, when
    None, the record already in ``voice_dir``. Raises ``ConsentError`` when there is none or it has expired."""
    if consent is not None:
        return check_consent(read_consent(consent), use="build", when=when)
    if not consent_path(voice_dir).exists():
        raise ConsentError(
            "a voice is built only with a consent record, and there is none for this voice",
            path=voice_dir,
            fix=f"record who agreed first (voicetwin consent create {voice_dir} --subject NAME --granted-by NAME "
            "--document REF --scope speech) or pass one (voicetwin voice build --consent FILE.json; "
            "Voice.build(..., consent=record))",
        )
    return check_consent(voice_dir, use="build", when=when)


def voice_consent(
    voice,
    use: str = "speech",
    production: str | None = None,
    when: dt.datetime | dt.date | None = None,
) -> ConsentRecord:
    """``check_consent`` for a voice: a voice directory, or an object whose ``path`` is one (a loaded ``Voice``).

    Raises ``ConsentError`` for a voice without a directory (nothing records its consent), and every refusal of
    ``check_consent``; returns the record for the output's provenance."""
    if isinstance(voice, (ConsentRecord, str, Path)):
        return check_consent(voice, use=use, production=production, when=when)
    path = getattr(voice, "path", None)
    if path is None:
        raise ConsentError(
            "this voice has no directory, so no consent record covers it",
            fix="build it with Voice.build(..., consent=record), or load it from a voice directory holding "
            "consent.json",
        )
    return check_consent(path, use=use, production=production, when=when)


def _norm(name: str) -> str:
    return " ".join(name.casefold().split())


def consent_reference(record: ConsentRecord) -> dict:
    """What an output's provenance records about the consent: who, what, which document, and a hash of the record."""
    canonical = json.dumps(record.to_dict(), sort_keys=True, ensure_ascii=False).encode("utf-8")
    return {
        "subject": record.subject,
        "granted_by": record.granted_by,
        "relation": record.relation,
        "scope": list(record.scope),
        "productions": list(record.productions),
        "expires": record.expires,
        "document": record.document,
        "record_sha256": hashlib.sha256(canonical).hexdigest(),
    }
