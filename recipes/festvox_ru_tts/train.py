"""Train a text-to-speech acoustic model on the festvox-ru speaker's transcribed recordings.

    python recipes/festvox_ru_tts/train.py --out out/festvox_ru_tts          # ~20 min on 2 busy CPU cores
    python recipes/festvox_ru_tts/train.py --out out/festvox_ru_tts --voice voices/festvox_ru  # and put it in a voice
    python recipes/festvox_ru_tts/train.py --out out/festvox_ru_tts --steps 200   # a quick, worse model

The Debian package festvox-ru holds 620 recordings of one Russian male speaker (16 kHz) with their phone labels
(``lab/*.lab``: the end time and name of each phone, in the phone set of festival's Russian front end). Settings are
in ``config.json`` next to this script. The last 20 utterances of ``etc/txt.done.data`` (``ru_0818``-``ru_0844``)
are never read: bench/tts.py speaks their texts; the 10 before them are the validation set.

1. features: WORLD analysis of every training and validation recording (coded envelope, log F0, voicing, band
   aperiodicities every 10 ms) and the phone labels turned into frames per phone; cached per utterance in
   OUT/features/ (resumable: a finished utterance is not analysed again);
2. train:    voicetwin.acoustic.AcousticNet on whole utterances: L1 loss on the normalised envelope, log F0 and
   aperiodicity, cross-entropy on voicing, squared error on log durations (durations from the labels);
3. save:     OUT/model/ = config.json + model.safetensors (load with AcousticModel.load or ``--base model:OUT/model``).

``recipes/festvox_ru_tts/model/`` holds the model this script trains with ``config.json`` (900 steps, 1 thread, seed 0;
the same bytes again on torch 2.13 CPU: model.safetensors sha256 91df4c34...). On the 20 held-out lines bench/tts.py
measures GE2E / d-vector similarity 0.896 / 0.884 to the real recordings.

The validation loss printed along the way only says that training converges; how the voice sounds is judged by
bench/tts.py with independent speaker encoders.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from voicetwin.acoustic import AcousticConfig, AcousticModel, AcousticNet, training_loss, world_features  # noqa: E402
from voicetwin.audio import load_audio  # noqa: E402
from voicetwin.errors import InputNotFoundError  # noqa: E402
from voicetwin.files import atomic_path  # noqa: E402

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


def utterance_features(uid: str, config: AcousticConfig, cache: Path) -> Path:
    """Analyse one recording into OUT/features/UID.npz (phones, frames per phone, frame features)."""
    path = cache / f"{uid}.npz"
    if path.exists():
        return path
    audio, sr = load_audio(FESTVOX_RU / "wav" / f"{uid}.wav", sample_rate=config.sample_rate)
    feats = world_features(audio, sr, config)
    labels = read_lab(FESTVOX_RU / "lab" / f"{uid}.lab")
    hop = config.frame_period / 1000.0
    ends = np.minimum(np.round(np.array([end for _, end in labels]) / hop).astype(np.int64), len(feats))
    frames = np.diff(np.concatenate([[0], ends]))
    index = {p: i for i, p in enumerate(config.phones)}
    phones = np.array([index[p] for p, _ in labels], dtype=np.int64)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, phones=phones, frames=frames, features=feats[: int(ends[-1])])
    return path


def extract(ids: list[str], config: AcousticConfig, cache: Path, workers: int) -> list[dict]:
    cache.mkdir(parents=True, exist_ok=True)
    todo = [u for u in ids if not (cache / f"{u}.npz").exists()]
    if todo:
        with ProcessPoolExecutor(workers) as pool:
            jobs = [pool.submit(utterance_features, u, config, cache) for u in todo]
            for job in tqdm(jobs, desc="WORLD features", unit="utt"):
                job.result()
    return [dict(np.load(cache / f"{u}.npz")) for u in ids]


def normalisation(data: list[dict], config: AcousticConfig) -> dict[str, torch.Tensor]:
    """Per-dimension mean and spread of the features (voicing left as 0/1), and the average within-utterance
    spread of each envelope coefficient."""
    allf = np.concatenate([d["features"] for d in data])
    mean, std = allf.mean(axis=0), allf.std(axis=0) + 1e-4
    v = config.voicing_index
    mean[v], std[v] = 0.0, 1.0
    spread = np.mean([d["features"][:, : config.envelope_dims].std(axis=0) for d in data], axis=0)
    return {"mean": torch.tensor(mean, dtype=torch.float32), "std": torch.tensor(std, dtype=torch.float32),
            "spread": torch.tensor(spread, dtype=torch.float32)}


def batches(data: list[dict], size: int, rng: random.Random) -> list[list[int]]:
    """Utterances grouped by length (little padding), groups in random order."""
    order = sorted(range(len(data)), key=lambda i: len(data[i]["features"]) + rng.random() * 200)
    groups = [order[i: i + size] for i in range(0, len(order), size)]
    rng.shuffle(groups)
    return groups


def collate(data: list[dict], items: list[int]) -> tuple[torch.Tensor, ...]:
    """Utterances -> phones, phone mask, frames per phone ``(batch, phones)``, features ``(batch, frames, dims)``."""
    n_ph = max(len(data[i]["phones"]) for i in items)
    n_fr = max(int(data[i]["frames"].sum()) for i in items)
    dims = data[items[0]]["features"].shape[1]
    phones = torch.zeros(len(items), n_ph, dtype=torch.long)
    frames = torch.zeros(len(items), n_ph, dtype=torch.long)
    pmask = torch.zeros(len(items), n_ph, dtype=torch.bool)
    feats = torch.zeros(len(items), n_fr, dims)
    for b, i in enumerate(items):
        d = data[i]
        n, t = len(d["phones"]), int(d["frames"].sum())
        phones[b, :n] = torch.from_numpy(d["phones"])
        frames[b, :n] = torch.from_numpy(d["frames"])
        pmask[b, :n] = True
        feats[b, :t] = torch.from_numpy(d["features"][:t])
    return phones, pmask, frames, feats


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
    train = settings["train"]
    steps = args.steps or train["steps"]
    max_minutes = args.max_minutes or train["max_minutes"]
    out = Path(args.out)
    torch.manual_seed(train["seed"])
    rng = random.Random(train["seed"])
    torch.set_num_threads(train["threads"])

    # 1. features
    train_ids, valid_ids, held_ids = split_ids(train["held_out_last"], train["valid_last"])
    print(f"held out (never read): {held_ids[0]}..{held_ids[-1]}")
    data = extract(train_ids + valid_ids, config, out / "features", args.workers)
    train_data, valid_data = data[: len(train_ids)], data[len(train_ids):]
    hours = sum(len(d["features"]) for d in train_data) * config.frame_period / 3.6e6
    print(f"training on {len(train_data)} utterances ({60 * hours:.1f} min), validating on {len(valid_data)}")

    # 2. train
    net = AcousticNet(config)
    for name, value in normalisation(train_data, config).items():
        getattr(net, name).copy_(value)
    with torch.no_grad():  # start the duration head at the average phone length
        net.duration[-1].bias.fill_(float(np.mean(np.concatenate([np.log1p(d["frames"]) for d in train_data]))))
    print(f"{sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters")
    optim = torch.optim.AdamW(net.parameters(), lr=train["learning_rate"], weight_decay=1e-4)
    warmup = 50
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    start, step, queue = time.time(), 0, []
    bar = tqdm(total=steps, desc="training", unit="step")
    while step < steps and time.time() - start < 60 * max_minutes:
        if not queue:
            queue = batches(train_data, train["batch_size"], rng)
        net.train()
        loss = training_loss(net, *collate(train_data, queue.pop()))
        optim.zero_grad()
        loss["total"].backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optim.step()
        sched.step()
        step += 1
        bar.update(1)
        bar.set_postfix({k: f"{v.item():.3f}" for k, v in loss.items()})
        if step % 250 == 0 or step == steps:
            net.eval()
            with torch.no_grad():
                val = [training_loss(net, *collate(valid_data, [i])) for i in range(len(valid_data))]
            tqdm.write(f"step {step}: validation " + ", ".join(
                f"{k} {np.mean([v[k].item() for v in val]):.3f}" for k in ("features", "voicing", "duration")))
    bar.close()
    print(f"trained {step} steps in {(time.time() - start) / 60:.1f} min")

    # 3. save
    path = AcousticModel(config, net).save(out / "model")
    size = (path / "model.safetensors").stat().st_size / 1e6
    print(f"model: {path} ({size:.1f} MB); speak with --base model:{path}")
    if args.voice:
        print(f"copied into {AcousticModel.load(path).save(Path(args.voice) / 'tts')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
