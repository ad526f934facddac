"""Train an English text-to-speech acoustic model on recordings of flite's awb voice and flite's own phone timings.

This is how ``recipes/awb_tts/model/`` was made. ``train.py`` next to it is the everyday path (ingest with a
recogniser + voice build, with phone timings found by forced alignment).

    python recipes/awb_tts/train_from_labels.py --out out/awb_tts                       # ~25 min on 2 CPU cores
    python recipes/awb_tts/train_from_labels.py --out out/awb_tts --voice VOICE         # and put it in a voice built from awb
    python recipes/awb_tts/train_from_labels.py --out out/awb_tts --steps 200           # a quick, worse model

awb is a Scottish-English male voice that flite (Debian package flite) speaks with a statistical model trained on a
real man's recordings; the benchmarks treat it as an archive speaker (bench/vc.py builds a voice from 21 minutes of
it). Unlike an archive, flite can say anything and tells when each phone ends (``flite -psdur``), so this recipe
records its own transcribed corpus:

1. corpus:   everyday sentences (voicetwin.examples.english_sentences, a seed of their own) and sentences of the
   plain-English prose of the licence texts every Debian system holds (/usr/share/common-licenses; lines with
   digits, acronyms or symbols left out), spoken by ``flite -voice awb`` until ``corpus.minutes`` of audio, with
   phone end times from ``-psdur`` and lexical stress from flite's own text analysis (``t2p``, the phone front
   end the model speaks with: ``front_end="flite"``); cached per utterance in OUT/features/ (resumable);
2. train:    voicetwin.synth.acoustic_train.train, as for the festvox-ru model (recipes/festvox_ru_tts);
3. save:     OUT/model/ = config.json + model.safetensors (``--base model:OUT/model``, or ``--voice VOICE``).

bench/tts.py's 20 English test sentences are written by hand and occur in neither source. Settings are in
``config.json`` next to this script (32 minutes, 900 steps, 1 thread, seed 0).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from voicetwin.synth.acoustic import CMU_PHONES, PAUSE, AcousticConfig, AcousticModel, _FliteFrontEnd  # noqa: E402
from voicetwin.synth.acoustic_train import TrainSettings, train, utterance  # noqa: E402
from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.consent import ConsentRecord, save_consent  # noqa: E402
from voicetwin.errors import MissingDependencyError  # noqa: E402
from voicetwin.examples import english_sentences  # noqa: E402
from voicetwin.files import atomic_path, write_json  # noqa: E402

# the model speaks in a real person's voice by itself: it carries the consent its recordings came with
SPEAKER = "awb (flite's cmu_us_awb voice)"
CONSENT = ConsentRecord(subject=SPEAKER, granted_by=SPEAKER, relation="self", scope=("speech", "singing"),
                        document="voice released for speech synthesis in the Debian package flite "
                                 "(/usr/share/doc/libflite1/copyright)")
LICENSES = Path("/usr/share/common-licenses")
PROSE = ("GPL-3", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "GFDL-1.3", "Artistic", "CC0-1.0", "GPL-2")


def prose_sentences() -> list[str]:
    """Sentences (or comma-separated parts of long ones) of 5-20 plain words from the licence texts."""
    out, seen = [], set()
    for name in PROSE:
        path = LICENSES / name
        if not path.exists():
            continue
        text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
        for sentence in re.split(r"(?<=[.;:!?])\s+", text):
            parts, piece = [], []
            for word in sentence.split():
                piece.append(word)
                if word.endswith(",") and len(piece) >= 8:
                    parts.append(" ".join(piece))
                    piece = []
            parts.append(" ".join(piece))
            for part in parts:
                part = part.strip(" ,;:")
                words = part.split()
                plain = all(re.fullmatch(r"[A-Za-z][a-z']*[,.;:]?", w) for w in words)
                if plain and 5 <= len(words) <= 20 and part.lower() not in seen:
                    seen.add(part.lower())
                    out.append(part[0].upper() + part[1:].rstrip(",;:.!?") + ".")
    return out


def corpus_texts(minutes: float, prose_share: float, seed: int) -> list[str]:
    """Everyday and prose sentences interleaved in a seeded order; enough for ``minutes`` at ~2.6 words a second."""
    rng = random.Random(seed)
    prose = prose_sentences()
    rng.shuffle(prose)
    everyday = english_sentences(4000, seed)
    words = minutes * 60 * 2.6 * 1.3  # a margin: the corpus is cut at ``minutes`` of audio
    texts, n_words, i, j = [], 0, 0, 0
    while n_words < words and (i < len(prose) or j < len(everyday)):
        take_prose = i < len(prose) and (rng.random() < prose_share or j >= len(everyday))
        text = prose[i] if take_prose else everyday[j]
        i, j = i + take_prose, j + (not take_prose)
        texts.append(text)
        n_words += len(text.split())
    return texts


def labels(text: str, wav: Path) -> list[tuple[str, float]] | None:
    """flite awb speaks ``text`` into ``wav``; its phone end times with the front end's stress marks, or None
    where the two phone sequences differ."""
    run = subprocess.run(["flite", "-voice", "awb", "-psdur", "-o", str(wav), "-t", text], capture_output=True,
                         text=True, check=True)
    timed = [(p.rsplit(":", 1)[0], float(p.rsplit(":", 1)[1])) for p in run.stdout.split() if ":" in p]
    marked = _FliteFrontEnd._t2p(" ".join(text.split()))
    if [p.rstrip("1") for p in marked] != [p for p, _ in timed]:
        return None
    return [(m, end) for m, (_, end) in zip(marked, timed)]


def utterance_features(uid: str, text: str, config: AcousticConfig, cache: Path) -> Path | None:
    """Record and analyse one line into OUT/features/UID.npz; None when it cannot be labelled."""
    path = cache / f"{uid}.npz"
    if path.exists() and np.load(path)["features"].shape[1] == config.output_dims:  # not one of another config
        return path
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "line.wav"
        timed = labels(text, wav)
        if timed is None or any(p not in config.phones for p, _ in timed):
            return None
        audio, sr = load_audio(wav, sample_rate=config.sample_rate)
    utt = utterance(audio, sr, timed, config)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **utt)
    return path


def extract(texts: list[str], config: AcousticConfig, cache: Path, workers: int, minutes: float) -> list[dict]:
    cache.mkdir(parents=True, exist_ok=True)
    write_json(cache / "texts.json", {f"awb_{i:04d}": t for i, t in enumerate(texts)})
    with ProcessPoolExecutor(workers) as pool:
        jobs = [pool.submit(utterance_features, f"awb_{i:04d}", t, config, cache) for i, t in enumerate(texts)]
        paths = [job.result() for job in tqdm(jobs, desc="recording and analysing", unit="line")]
    data, total, skipped = [], 0.0, 0
    for path in paths:
        if path is None:
            skipped += 1
            continue
        if total >= minutes * 60:
            break
        data.append(dict(np.load(path)))
        total += len(data[-1]["features"]) * config.frame_period / 1000
    print(f"{len(data)} lines, {total / 60:.1f} min ({skipped} left out: flite's and t2p's phones differ)")
    return data


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/awb_tts")
    ap.add_argument("--config", default=str(Path(__file__).with_name("config.json")))
    ap.add_argument("--steps", type=int, default=None, help="override the config's training steps")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop training after this long")
    ap.add_argument("--workers", type=int, default=2, help="processes for recording and WORLD analysis")
    ap.add_argument("--voice", default=None,
                    help="a voice directory built from awb: the model is also copied into VOICE/tts, where "
                         "`voicetwin speak --voice VOICE` uses it instead of piper + conversion")
    args = ap.parse_args()
    for tool in ("flite", "t2p"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            raise MissingDependencyError("flite", None, "recording the awb corpus (apt-get install flite)")

    settings = json.loads(Path(args.config).read_text(encoding="utf-8"))
    corpus = settings["corpus"]
    config = replace(AcousticConfig(phones=CMU_PHONES, language="en", front_end="flite"), **settings["model"])
    train_settings = TrainSettings(**settings["train"])
    train_settings = replace(train_settings, steps=args.steps or train_settings.steps,
                             max_minutes=args.max_minutes or train_settings.max_minutes)
    out = Path(args.out)

    # 1. corpus
    texts = corpus_texts(corpus["minutes"], corpus["prose_share"], corpus["seed"])
    data = extract(texts, config, out / "features", args.workers, corpus["minutes"])
    valid = corpus["valid_last"]
    train_data, valid_data = data[:-valid], data[-valid:]

    # 2. train
    net = train(train_data, valid_data, config, train_settings)

    # 3. save
    path = AcousticModel(config, net).save(out / "model")
    save_consent(path, CONSENT, overwrite=True)
    size = (path / "model.safetensors").stat().st_size / 1e6
    print(f"model: {path} ({size:.1f} MB); speak with --base model:{path}")
    if args.voice:
        print(f"copied into {AcousticModel.load(path).save(Path(args.voice) / 'tts')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
