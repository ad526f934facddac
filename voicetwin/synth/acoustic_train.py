"""Training the text-to-speech acoustic model (``voicetwin.synth.acoustic``) on one speaker's transcribed recordings.

Kept apart from ``acoustic.py`` so the inference path never imports training code. ``voice build`` trains it on an
ingested dataset's transcribed clips with timings from forced alignment (``voicetwin.synth.speech_model``); code that
has phone labels already turns recordings and labels into utterances and calls ``train``:

    data = [utterance(audio, sr, [("pau", 0.25), ("hh", 0.3), ...], config), ...]
    net = train(data[:-10], data[-10:], config, TrainSettings(steps=900))
    AcousticModel(config, net).save("out/model")

An utterance is a dict of ``phones`` (ids), ``frames`` (frames per phone, from the labels' end times) and
``features`` (WORLD features and the vocoder's mel, ``voicetwin.synth.acoustic.frame_features``). Training runs on whole utterances grouped
by length: L1 on the normalised envelope, log F0 and aperiodicities, cross-entropy on voicing, squared error on
log durations. Training is reproducible (seeded, a fixed number of steps, deterministic kernels) and resumable
(``fit(..., checkpoint=PATH)``). The validation loss printed only says that training converges; how the voice sounds is judged by
``bench/tts.py`` with independent speaker encoders and a recogniser.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, InputError
from ..training import Hook, Stage, deterministic, load_training_state, save_training_state
from .acoustic import AcousticConfig, AcousticNet, frame_features, training_loss

CHECKPOINT_SECONDS = 60.0  # a resumable training state is written this often


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings. ``max_minutes``: stop after this long (None: train all ``steps``, the same model on
    any machine; a cap makes the model depend on the machine's speed)."""

    steps: int = 900
    batch_size: int = 8
    learning_rate: float = 0.002
    max_minutes: float | None = None
    seed: int = 0
    threads: int = 1
    warmup: int = 50

    def __post_init__(self):
        if min(self.steps, self.batch_size, self.threads, self.warmup) < 1 or not self.learning_rate > 0:
            raise ConfigError("steps, batch_size, threads and warmup must be >= 1 and learning_rate > 0")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise ConfigError("max_minutes must be positive (or None for no cap)")


def utterance(audio: np.ndarray, sample_rate: int, labels: list[tuple[str, float]], config: AcousticConfig) -> dict:
    """A recording and its phone labels ``[(phone, end time in seconds), ...]`` -> a training utterance."""
    index = {p: i for i, p in enumerate(config.phones)}
    unknown = sorted({p for p, _ in labels if p not in index})
    if unknown:
        raise InputError(f"phones {unknown} are not in the model's phone set")
    feats = frame_features(audio, sample_rate, config)
    hop = config.frame_period / 1000.0
    ends = np.minimum(np.round(np.array([end for _, end in labels]) / hop).astype(np.int64), len(feats))
    frames = np.diff(np.concatenate([[0], ends]))
    phones = np.array([index[p] for p, _ in labels], dtype=np.int64)
    return {"phones": phones, "frames": frames, "features": feats[: int(ends[-1])]}


def normalisation(data: list[dict], config: AcousticConfig) -> dict[str, torch.Tensor]:
    """Per-dimension mean and spread of the features (voicing left as 0/1), and the average within-utterance
    spread of each envelope coefficient and mel band."""
    allf = np.concatenate([d["features"] for d in data])
    mean, std = allf.mean(axis=0), allf.std(axis=0) + 1e-4
    v = config.voicing_index
    mean[v], std[v] = 0.0, 1.0
    spread = np.mean([d["features"][:, config.spread_dims].std(axis=0) for d in data], axis=0)
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


def train(train_data: list[dict], valid_data: list[dict], config: AcousticConfig, settings: TrainSettings,
          progress: bool = True, **kwargs) -> AcousticNet:
    """Train an ``AcousticNet`` from scratch (``fit`` without its report)."""
    return fit(train_data, valid_data, config, settings, progress, **kwargs)[0]


def fit(train_data: list[dict], valid_data: list[dict], config: AcousticConfig, settings: TrainSettings,
        progress: bool = True, checkpoint: str | Path | None = None, fingerprint: str = "",
        hook: Hook | None = None, log: Callable[[str], None] | None = print) -> tuple[AcousticNet, dict]:
    """Train an ``AcousticNet`` from scratch -> the net and ``{"steps", "final_loss", "validation"}``.

    Deterministic for given data, settings and torch build (``voicetwin.training.deterministic``). ``checkpoint``:
    a file where the training state is saved every minute and when the training is interrupted; training starts
    from it when it exists (written with the same ``fingerprint``) and ends with the same weights as an
    uninterrupted run. It is deleted once training is done. ``hook``: ``("training speech model", step, steps)``.
    """
    if not train_data or not valid_data:
        raise InputError("training needs at least one training and one validation utterance")
    say = log or (lambda _msg: None)
    fingerprint = fingerprint + repr((settings, config))
    state = load_training_state(checkpoint, fingerprint) if checkpoint else None
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    net = AcousticNet(config)
    for name, value in normalisation(train_data, config).items():
        getattr(net, name).copy_(value)
    with torch.no_grad():  # start the duration head at the average phone length
        net.duration[-1].bias.fill_(float(np.mean(np.concatenate([np.log1p(d["frames"]) for d in train_data]))))
    steps = settings.steps
    optim = torch.optim.AdamW(net.parameters(), lr=settings.learning_rate, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / settings.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps))))
    step, queue, losses = 0, [], []
    if state is not None:
        net.load_state_dict(state["net"])
        optim.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        step, queue, losses = state["step"], state["queue"], state["losses"]
        say(f"speech model: resuming training at step {step} of {steps}")
    else:
        say(f"speech model: {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters, {steps} steps")

    def save() -> None:
        save_training_state(checkpoint, {"fingerprint": fingerprint, "net": net.state_dict(), "optim": optim.state_dict(),
                                     "sched": sched.state_dict(), "rng": rng.getstate(),
                                     "torch_rng": torch.get_rng_state(), "step": step, "queue": queue,
                                     "losses": losses})

    def validate() -> dict:
        net.eval()
        with torch.no_grad():
            val = [training_loss(net, *collate(valid_data, [i])) for i in range(len(valid_data))]
        return {k: round(float(np.mean([v[k].item() for v in val])), 4)
                for k in ("features", "mel", "voicing", "duration", "voicing_error") if k != "mel" or config.mel_bands}

    start, saved_at, consistent = time.time(), time.time(), True
    cap = None if settings.max_minutes is None else 60 * settings.max_minutes
    with deterministic(settings.threads), Stage("training speech model", steps, progress, hook, start=step) as bar:
        try:
            while step < steps and (cap is None or time.time() - start < cap):
                consistent = False
                if not queue:
                    queue = batches(train_data, settings.batch_size, rng)
                net.train()
                loss = training_loss(net, *collate(train_data, queue.pop()))
                optim.zero_grad()
                loss["total"].backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                optim.step()
                sched.step()
                step += 1
                losses.append(round(float(loss["total"].item()), 5))
                consistent = True
                if checkpoint and time.time() - saved_at > CHECKPOINT_SECONDS:
                    save()
                    saved_at = time.time()
                bar.update(1, loss=f"{losses[-1]:.3f}")
                if step % 250 == 0:
                    say(f"step {step}: validation " + ", ".join(f"{k} {v:.3f}" for k, v in validate().items()))
        except BaseException:
            if checkpoint and consistent:  # an interrupted step leaves the last saved state
                save()
            raise
    validation = validate()
    say(f"trained {step} steps in {(time.time() - start) / 60:.1f} min; validation " +
        ", ".join(f"{k} {v:.3f}" for k, v in validation.items()))
    if checkpoint:
        Path(checkpoint).unlink(missing_ok=True)
    return net.eval(), {"steps": step, "final_loss": round(float(np.mean(losses[-50:])), 4) if losses else None,
                        "validation": validation}
