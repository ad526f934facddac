"""Prepare the festvox-ru recordings (Debian package festvox-ru) as an "archive" dataset, and performer lines.

The 620 utterances of one Russian male speaker stand in for a late person's archive recordings. We split
them by utterance id: a training subset becomes a voicetwin dataset (clips/*.wav + manifest.jsonl +
report.json), and the texts of held-out utterances are spoken by espeak-ng to stand in for a performer.

    python recipes/festvox_ru/prepare.py --out out/festvox_ru --train 0:200 --test 590:620
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path

import soundfile as sf

from voicetwin.consent import ConsentRecord, consent_path, save_consent
from voicetwin.errors import InputNotFoundError, MissingDependencyError
from voicetwin.files import write_json
from voicetwin.manifest import Clip, is_dataset, write_manifest

FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")


def example_consent(subject: str = "festvox-ru speaker (msu_ru_nsh)") -> ConsentRecord:
    """The consent record the example voices are built on: recordings distributed for reuse in a Debian package
    (festvox-ru, or flite's voices for the English benchmark voice), for speech and singing, any production."""
    return ConsentRecord(
        subject=subject, granted_by=subject, relation="self", scope=("speech", "singing"),
        document="example voice: freely licensed recordings distributed in a Debian package (festvox-ru / flite)",
    )


def ensure_consent(voice_dir: str | Path, record: ConsentRecord) -> None:
    """Give a voice built before voices carried consent records the example's record (an existing one is kept)."""
    if not consent_path(voice_dir).exists():
        save_consent(voice_dir, record)


def read_texts(root: Path = FESTVOX_RU) -> dict[str, str]:
    """Utterance id -> text, from festival's ``etc/txt.done.data`` (stress marks '+' removed)."""
    path = root / "etc" / "txt.done.data"
    if not path.exists():
        raise InputNotFoundError("festvox-ru is not installed", path=path, fix="apt-get install festvox-ru")
    texts = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)\s*$', line)
        if m:
            texts[m.group(1)] = m.group(2).replace("+", "")
    return texts


def ids_in(spec: str, root: Path = FESTVOX_RU) -> list[str]:
    """Utterances by position in the sorted list of recordings: '0:200' (first 200) or '0:100,150:200'."""
    all_ids = sorted(p.stem for p in (root / "wav").glob("*.wav"))
    ids = []
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        ids += all_ids[int(lo):int(hi) if hi else int(lo) + 1]
    return ids


def prepare_archive(out: str | Path, ids: list[str], root: Path = FESTVOX_RU) -> Path:
    """Write a dataset of the given utterances; idempotent (a finished dataset is left as it is)."""
    out = Path(out)
    if is_dataset(out) and (out / "report.json").exists():
        return out
    texts = read_texts(root)
    (out / "clips").mkdir(parents=True, exist_ok=True)
    clips = []
    for uid in ids:
        src = root / "wav" / f"{uid}.wav"
        if not src.exists():
            continue
        dst = out / "clips" / f"{uid}.wav"
        shutil.copyfile(src, dst)
        info = sf.info(str(dst))
        clips.append(Clip(id=uid, path=f"clips/{uid}.wav", source=str(src), start=0.0, end=info.duration,
                          duration=info.duration, sample_rate=info.samplerate, text=texts.get(uid),
                          language="ru", speaker="msu_ru_nsh"))
    write_manifest(out / "manifest.jsonl", clips)
    write_json(out / "report.json", {"clips_kept": len(clips), "minutes_kept": round(sum(c.duration for c in clips) / 60, 2),
                                     "source": str(root), "ids": f"{ids[0]}..{ids[-1]}"})
    return out


def espeak(text: str, out: str | Path, voice: str = "ru", speed: int | None = None) -> Path:
    """Speak ``text`` with espeak-ng into a wav file."""
    if shutil.which("espeak-ng") is None:
        raise MissingDependencyError("espeak-ng", purpose="performer lines (apt-get install espeak-ng)")
    cmd = ["espeak-ng", "-v", voice, "-w", str(out)] + (["-s", str(speed)] if speed else []) + [text]
    subprocess.run(cmd, check=True, capture_output=True)
    return Path(out)


def prepare_performer_lines(out: str | Path, ids: list[str], voice: str = "ru", root: Path = FESTVOX_RU) -> list[tuple[str, Path, str]]:
    """espeak-ng renditions of the held-out texts: ``[(id, wav, text), ...]``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    texts = read_texts(root)
    lines = []
    for uid in ids:
        wav = out / f"{uid}.wav"
        if not wav.exists():
            espeak(texts[uid], wav, voice)
        lines.append((uid, wav, texts[uid]))
    return lines


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/festvox_ru")
    ap.add_argument("--train", default="0:200", help="positions (in the sorted list of 620 recordings) of the archive subset")
    ap.add_argument("--test", default="590:620", help="positions of the held-out utterances (performer lines)")
    args = ap.parse_args()
    ds = prepare_archive(Path(args.out) / "archive", ids_in(args.train))
    lines = prepare_performer_lines(Path(args.out) / "performer", ids_in(args.test))
    print(f"archive dataset: {ds}; {len(lines)} performer lines in {Path(args.out) / 'performer'}")
