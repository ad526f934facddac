"""Speaker verification figures: the equal error rate of similarity scores (used to fine-tune the encoder and by
the judges)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import InputError


def equal_error_rate(scores: Sequence[float], labels: Sequence[int | bool]) -> tuple[float, float]:
    """Equal error rate of a detector: ``(eer in [0, 1], threshold)``.

    ``scores``: higher means "target"; ``labels``: 1/True for target trials, 0/False for non-target trials.
    The EER is where the false-acceptance rate (non-targets at or above the threshold) equals the
    false-rejection rate (targets below it), interpolated between the two closest thresholds.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise InputError(f"{len(s)} scores but {len(y)} labels")
    if not y.any() or y.all():
        raise InputError("equal error rate needs both target and non-target trials")
    if not np.all(np.isfinite(s)):
        raise InputError("scores contain NaN or infinite values")
    thresholds = np.unique(s)
    thresholds = np.concatenate([thresholds, [thresholds[-1] + 1e-9]])
    pos, neg = np.sort(s[y]), np.sort(s[~y])
    frr = np.searchsorted(pos, thresholds, side="left") / len(pos)  # targets below the threshold
    far = 1.0 - np.searchsorted(neg, thresholds, side="left") / len(neg)  # non-targets at or above it
    diff = far - frr  # decreasing in the threshold
    i = int(np.argmax(diff <= 0))
    if i == 0:
        return float((far[0] + frr[0]) / 2), float(thresholds[0])
    d0, d1 = diff[i - 1], diff[i]
    t = d0 / (d0 - d1) if d0 != d1 else 0.5
    eer = (far[i - 1] + t * (far[i] - far[i - 1]) + frr[i - 1] + t * (frr[i] - frr[i - 1])) / 2
    return float(eer), float(thresholds[i - 1] + t * (thresholds[i] - thresholds[i - 1]))


def verification_eer(target_scores: Sequence[float], other_scores: Sequence[float]) -> float:
    """EER of separating target trials from other-speaker trials by score."""
    scores = np.concatenate([np.asarray(target_scores, float), np.asarray(other_scores, float)])
    labels = np.concatenate([np.ones(len(target_scores)), np.zeros(len(other_scores))])
    return equal_error_rate(scores, labels)[0]
