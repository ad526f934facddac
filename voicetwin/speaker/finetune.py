"""Fine-tuning the GE2E speaker encoder to tell one voice from look-alikes (a son who sounds like his father).

Kept apart from ``speaker.py`` so the inference path never imports training code.

    encoder = SpeakerEncoder.load("ge2e")
    tuned = finetune(encoder, target_clips, {"brother": [...], "narrator": [...]}, steps=300)
    report = finetune_speaker(target_clips, others, out="encoders/anna")   # split, EER before/after, save

Training follows GE2E (Wan et al., 2018): each step draws ``speakers_per_batch`` speakers (the target always
among them) x ``utterances_per_speaker`` random 1.6 s windows, embeds them, and minimises the softmax loss
over the scaled cosine similarity of each window to every speaker centroid (its own centroid excludes it).
The pretrained weights are the start and training is short (a few hundred steps at the pretraining rate),
so the encoder keeps what it knew; the tuned encoder is checked on voices it never saw (bench/speaker.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..audio.io import AudioLike
from ..errors import ConfigError, InputError
from .verification import equal_error_rate, verification_eer
from .encoder import SpeakerEncoder, mel_frames


@dataclass(frozen=True)
class FinetuneOptions:
    """Hyperparameters of GE2E fine-tuning.

    ``held_out``: share of each speaker's clips kept out of training to measure the equal error rate;
    ``enroll_clips``: at most this many training clips of the target form its profile for the EER trials.
    """

    steps: int = 200
    speakers_per_batch: int = 4
    utterances_per_speaker: int = 6
    learning_rate: float = 1e-4  # the rate GE2E was trained with; a few hundred steps move it only a little
    grad_clip: float = 3.0
    held_out: float = 0.3
    enroll_clips: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ConfigError(f"steps must be >= 0, got {self.steps}")
        if self.speakers_per_batch < 2:
            raise ConfigError(f"speakers_per_batch must be >= 2, got {self.speakers_per_batch}")
        if self.utterances_per_speaker < 2:
            raise ConfigError(f"utterances_per_speaker must be >= 2, got {self.utterances_per_speaker}")
        if not 0 < self.learning_rate < 1e-2:
            raise ConfigError(f"learning_rate {self.learning_rate} is out of range (0, 0.01)")
        if not 0 < self.held_out < 1:
            raise ConfigError(f"held_out must be in (0, 1), got {self.held_out}")
        if self.enroll_clips < 1:
            raise ConfigError(f"enroll_clips must be >= 1, got {self.enroll_clips}")


def ge2e_loss(embeddings: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """GE2E softmax loss of ``(speakers, utterances, dim)`` unit embeddings (mean over all utterances)."""
    n, m, _ = embeddings.shape
    centroids = embeddings.mean(dim=1)
    centroids = centroids / (centroids.norm(dim=-1, keepdim=True) + 1e-8)  # (n, dim)
    exclusive = (embeddings.sum(dim=1, keepdim=True) - embeddings) / (m - 1)  # own centroid without the utterance
    exclusive = exclusive / (exclusive.norm(dim=-1, keepdim=True) + 1e-8)  # (n, m, dim)
    sim = torch.einsum("nmd,kd->nmk", embeddings, centroids)  # (n, m, n)
    own = (embeddings * exclusive).sum(dim=-1)  # (n, m)
    mask = torch.eye(n, dtype=torch.bool, device=embeddings.device)[:, None, :].expand(n, m, n)
    sim = torch.where(mask, own[:, :, None].expand(n, m, n), sim)
    logits = sim * weight.clamp(min=1e-6) + bias
    target = torch.arange(n, device=embeddings.device)[:, None].expand(n, m)
    return torch.nn.functional.cross_entropy(logits.reshape(n * m, n), target.reshape(-1))


def split_held_out(clips: Sequence, fraction: float = 0.3, seed: int = 0) -> tuple[list, list]:
    """Shuffle ``clips`` reproducibly and split them into ``(train, held_out)``; both keep at least one clip."""
    if len(clips) < 2:
        raise InputError(f"need at least 2 clips to hold some out, got {len(clips)}")
    order = list(clips)
    random.Random(seed).shuffle(order)
    n_test = min(len(order) - 1, max(1, round(len(order) * fraction)))
    return order[n_test:], order[:n_test]


def _speaker_mels(encoder: SpeakerEncoder, clips: Sequence[AudioLike], name: str) -> list[np.ndarray]:
    mels = []
    for clip in clips:
        wav = encoder.preprocess(clip)
        mels.append(mel_frames(wav, encoder.config))
    if not mels:
        raise InputError(f"speaker '{name}' has no clips")
    return mels


def _random_window(mels: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    if len(mels) <= frames:
        return np.pad(mels, ((0, frames - len(mels)), (0, 0)))
    start = int(rng.integers(0, len(mels) - frames + 1))
    return mels[start : start + frames]


def finetune(encoder: SpeakerEncoder, target_clips: Sequence[AudioLike], other_speakers: dict[str, Sequence[AudioLike]],
             steps: int | None = None, options: FinetuneOptions | None = None,
             on_step: Callable[[int, float], None] | None = None, progress: bool = False) -> SpeakerEncoder:
    """Fine-tune a copy of ``encoder`` with the GE2E loss; ``encoder`` itself is left unchanged.

    Args:
        target_clips: clips (paths or ``(array, sr)``) of the voice to single out.
        other_speakers: ``{name: clips}`` of other voices, look-alikes first of all (at least one speaker).
        steps: overrides ``options.steps``.
        on_step: called as ``on_step(step, loss)`` after every step.

    Returns a new ``SpeakerEncoder`` (in eval mode) with the tuned weights.
    """
    options = options or FinetuneOptions()
    steps = options.steps if steps is None else steps
    if not other_speakers:
        raise InputError("fine-tuning needs clips of at least one other speaker", fix="pass --others DATASET")
    import copy

    torch.manual_seed(options.seed)
    rng = np.random.default_rng(options.seed)
    speakers = {"target": _speaker_mels(encoder, target_clips, "target")}
    for name, clips in other_speakers.items():
        speakers[f"other:{name}"] = _speaker_mels(encoder, clips, name)
    others = [k for k in speakers if k != "target"]
    n_others = min(options.speakers_per_batch - 1, len(others))
    frames = encoder.config.partial_frames

    model = copy.deepcopy(encoder.model).to(encoder.device).train()
    params = [p for n, p in model.named_parameters() if not n.startswith("similarity_")]
    optimiser = torch.optim.Adam([
        {"params": params, "lr": options.learning_rate},
        # the loss scale and bias move fast in GE2E training; here they adapt gently to the new batch make-up
        {"params": [model.similarity_weight, model.similarity_bias], "lr": options.learning_rate * 10},
    ])
    iterator = range(steps)
    if progress:
        from ..console import progress_bar

        iterator = progress_bar(iterator, desc="fine-tune speaker encoder", unit="step")
    for step in iterator:
        names = ["target"] + [others[i] for i in rng.choice(len(others), n_others, replace=False)]
        batch = np.stack([
            np.stack([_random_window(speakers[name][int(rng.integers(len(speakers[name])))], frames, rng)
                      for _ in range(options.utterances_per_speaker)])
            for name in names
        ])  # (speakers, utterances, frames, n_mels)
        x = torch.from_numpy(batch).to(encoder.device)
        emb = model(x.reshape(-1, *x.shape[2:])).reshape(len(names), options.utterances_per_speaker, -1)
        loss = ge2e_loss(emb, model.similarity_weight, model.similarity_bias)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, options.grad_clip)
        optimiser.step()
        value = loss.item()
        if on_step:
            on_step(step, value)
        if progress:
            iterator.set_postfix(loss=f"{value:.3f}")
    return SpeakerEncoder(model.eval(), source=f"{encoder.source}+finetuned")


def speaker_eer(encoder: SpeakerEncoder, enroll: Sequence[AudioLike], target_test: Sequence[AudioLike],
                other_test: dict[str, Sequence[AudioLike]]) -> dict:
    """Equal error rates of held-out trials against the target profile enrolled from ``enroll``.

    Returns ``{"eer": all other speakers pooled, "per_speaker": {name: eer of target vs that speaker},
    "target_similarity": mean, "other_similarity": {name: mean}}``.
    """
    profile = encoder.enroll(list(enroll))
    target_scores = np.array([encoder.similarity(encoder.embed(c), profile) for c in target_test])
    other_scores = {name: np.array([encoder.similarity(encoder.embed(c), profile) for c in clips])
                    for name, clips in other_test.items()}
    pooled = np.concatenate(list(other_scores.values()))
    return {
        "eer": verification_eer(target_scores, pooled),
        "per_speaker": {name: verification_eer(target_scores, s) for name, s in other_scores.items()},
        "target_similarity": float(target_scores.mean()),
        "other_similarity": {name: float(s.mean()) for name, s in other_scores.items()},
    }


def finetune_speaker(target_clips: Sequence[AudioLike], other_speakers: dict[str, Sequence[AudioLike]],
                     out: str | Path | None = None, encoder: str | Path | SpeakerEncoder = "ge2e",
                     options: FinetuneOptions | None = None, progress: bool = False) -> dict:
    """Split every speaker's clips into train/held-out, measure the EER, fine-tune, measure again, save.

    The encoder directory ``out`` gets ``config.json``, ``model.safetensors`` and ``training.json`` (this report).
    Returns the report: ``{"before": speaker_eer(...), "after": ..., "options": ..., "clips": ...}``.
    """
    options = options or FinetuneOptions()
    if out is not None:
        out = Path(out)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "config.json").exists())):
            raise InputError("exists and is not an encoder directory; refusing to overwrite it", path=out,
                             fix="choose a new --out")
    base = encoder if isinstance(encoder, SpeakerEncoder) else SpeakerEncoder.load(encoder)
    target_train, target_test = split_held_out(target_clips, options.held_out, options.seed)
    train_others, test_others = {}, {}
    for i, (name, clips) in enumerate(other_speakers.items()):
        train_others[name], test_others[name] = split_held_out(clips, options.held_out, options.seed + 1 + i)
    enroll = target_train[: options.enroll_clips]
    before = speaker_eer(base, enroll, target_test, test_others)
    tuned = finetune(base, target_train, train_others, options=options, progress=progress)
    after = speaker_eer(tuned, enroll, target_test, test_others)
    report = {
        "base_encoder": str(base.source),
        "options": asdict(options),
        "clips": {"target": {"train": len(target_train), "held_out": len(target_test)},
                  **{name: {"train": len(train_others[name]), "held_out": len(test_others[name])}
                     for name in other_speakers}},
        "before": before,
        "after": after,
    }
    if out is not None:
        report["encoder_dir"] = str(out)
        _save_atomically(tuned, out, report)
    return report


def _save_atomically(encoder: SpeakerEncoder, out: Path, report: dict) -> None:
    """Write the encoder directory next to ``out`` and move it into place, so no half-written encoder is left."""
    import os
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        encoder.save(tmp, extra=report)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


__all__ = ["FinetuneOptions", "finetune", "finetune_speaker", "ge2e_loss", "speaker_eer", "split_held_out",
           "equal_error_rate"]
