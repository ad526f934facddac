"""Train a text-to-speech acoustic model on the festvox-ru speaker's recordings and the package's phone labels.

This is how ``recipes/festvox_ru_tts/model/`` was made. ``train.py`` next to it is the everyday path (ingest +
voice build, with phone timings found by forced alignment); this one needs phone labels an archive
does not have.

    python recipes/festvox_ru_tts/train_from_labels.py --out out/festvox_ru_tts          # ~20 min on 2 busy CPU cores
    python recipes/festvox_ru_tts/train_from_labels.py --out out/festvox_ru_tts --voice voices/festvox_ru  # and put it in a voice
    python recipes/festvox_ru_tts/train_from_labels.py --out out/festvox_ru_tts --steps 200   # a quick, worse model

The Debian package festvox-ru holds 620 recordings of one Russian male speaker (16 kHz) with their phone labels
(``lab/*.lab``: the end time and name of each phone, in the phone set of festival's Russian front end). Settings are
in ``config.json`` next to this script. The last 20 utterances of ``etc/txt.done.data`` (``ru_0818``-``ru_0844``)
are never read: bench/tts.py speaks their texts; the 10 before them are the validation set.

1. features: WORLD analysis of every training and validation recording (coded envelope, log F0, voicing, band
   aperiodicities every 10 ms), the universal HiFi-GAN's log mel on the same frames, and the phone labels turned
   into frames per phone; cached per utterance in OUT/features/ (resumable: a finished utterance is not analysed
   again);
2. train:    voicetwin.synth.acoustic.AcousticNet on whole utterances: L1 loss on the normalised envelope, log F0,
   aperiodicity and mel, cross-entropy on voicing, squared error on log durations (durations from the labels);
3. save:     OUT/model/ = config.json + model.safetensors (load with AcousticModel.load or ``--base model:OUT/model``).

``recipes/festvox_ru_tts/model/`` holds the model this script trains with ``config.json`` (900 steps, 1 thread, seed 0,
torch 2.13 CPU: model.safetensors sha256 29bb8da2..., 16.2 min of training on a shared 2-core machine). On the 20
held-out lines bench/tts.py measures GE2E / d-vector similarity 0.898 / 0.875 to the real recordings and DNSMOS
3.26 through HiFi-GAN from its mel (0.892 / 0.880, 3.22 through WORLD).

The validation loss printed along the way only says that training converges; how the voice sounds is judged by
bench/tts.py with independent speaker encoders.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from voicetwin.synth.acoustic import AcousticConfig, AcousticModel  # noqa: E402
from voicetwin.synth.acoustic_train import TrainSettings, train, utterance  # noqa: E402
from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.consent import ConsentRecord, save_consent  # noqa: E402
from voicetwin.errors import InputNotFoundError  # noqa: E402
from voicetwin.files import atomic_path  # noqa: E402

# the model speaks in a real person's voice by itself: it carries the consent its recordings came with
SPEAKER = "festvox-ru speaker (msu_ru_nsh)"
CONSENT = ConsentRecord(subject=SPEAKER, granted_by=SPEAKER, relation="self", scope=("speech", "singing"),
                        document="recordings released for speech synthesis in the Debian package festvox-ru "
                                 "(/usr/share/doc/festvox-ru/copyright)")
FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")


def split_ids(held_out: int, valid: int) -> tuple[list[str], list[str], list[str]]:
    """Utterance ids of txt.done.data in order -> (train, validation, held-out): the last ``held_out`` are
    bench/tts.py's test lines (never read here), the ``valid`` before them check convergence."""
    path = FESTVOX_RU / "etc" / "txt.done.data"
    if not path.exists():
        raise InputNotFoundError("festvox-ru is not installed", path=path, fix="apt-get install festvox-ru")
    ids = [line.split()[1] for line in path.read_text(encoding="utf-8").splitlines() if '"' in line]
    cut = len(ids) - held_out
    return ids[: cut - valid], ids[cut - valid: cut], ids[cut:]


def read_lab(path: Path) -> list[tuple[str, float]]:
    """A festvox label file -> [(phone, end time in seconds), ...]."""
    out = []
    for line in path.read_text(encoding="utf-8").split("#", 1)[-1].splitlines():
        parts = line.split()
        if len(parts) == 3:
            out.append((parts[2], float(parts[0])))
    return out


def cached(path: Path, config: AcousticConfig) -> bool:
    """Whether ``path`` holds an utterance analysed for ``config``'s features (not those of another config)."""
    return path.exists() and np.load(path)["features"].shape[1] == config.output_dims


def utterance_features(uid: str, config: AcousticConfig, cache: Path) -> Path:
    """Analyse one recording into OUT/features/UID.npz (phones, frames per phone, frame features)."""
    path = cache / f"{uid}.npz"
    if cached(path, config):
        return path
    audio, sr = load_audio(FESTVOX_RU / "wav" / f"{uid}.wav", sample_rate=config.sample_rate)
    utt = utterance(audio, sr, read_lab(FESTVOX_RU / "lab" / f"{uid}.lab"), config)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **utt)
    return path


def extract(ids: list[str], config: AcousticConfig, cache: Path, workers: int) -> list[dict]:
    cache.mkdir(parents=True, exist_ok=True)
    todo = [u for u in ids if not cached(cache / f"{u}.npz", config)]
    if todo:
        with ProcessPoolExecutor(workers) as pool:
            jobs = [pool.submit(utterance_features, u, config, cache) for u in todo]
            for job in tqdm(jobs, desc="WORLD features", unit="utt"):
                job.result()
    return [dict(np.load(cache / f"{u}.npz")) for u in ids]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/festvox_ru_tts")
    ap.add_argument("--config", default=str(Path(__file__).with_name("config.json")))
    ap.add_argument("--steps", type=int, default=None, help="override the config's training steps")
    ap.add_argument("--max-minutes", type=float, default=None, help="stop training after this long")
    ap.add_argument("--workers", type=int, default=2, help="processes for WORLD analysis")
    ap.add_argument("--voice", default=None,
                    help="a voice directory of the same speaker: the model is also copied into VOICE/tts, where "
                         "`voicetwin speak --voice VOICE` uses it instead of espeak-ng + conversion")
    args = ap.parse_args()

    settings = json.loads(Path(args.config).read_text(encoding="utf-8"))
    config = replace(AcousticConfig(), **settings["model"])
    split = settings["train"]
    train_settings = TrainSettings(**{k: v for k, v in split.items() if k not in ("held_out_last", "valid_last")})
    train_settings = replace(train_settings, steps=args.steps or train_settings.steps,
                             max_minutes=args.max_minutes or train_settings.max_minutes)
    out = Path(args.out)

    # 1. features
    train_ids, valid_ids, held_ids = split_ids(split["held_out_last"], split["valid_last"])
    print(f"held out (never read): {held_ids[0]}..{held_ids[-1]}")
    data = extract(train_ids + valid_ids, config, out / "features", args.workers)
    train_data, valid_data = data[: len(train_ids)], data[len(train_ids):]
    hours = sum(len(d["features"]) for d in train_data) * config.frame_period / 3.6e6
    print(f"training on {len(train_data)} utterances ({60 * hours:.1f} min), validating on {len(valid_data)}")

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
