"""The FCPE pitch tracker: our network, tiny random configs, and the weights the torchfcpe package ships."""

import importlib.util

import numpy as np
import pytest
import torch

from voicetwin.audio.fcpe import FCPEConfig, build_fcpe, decode, fcpe_f0, load_fcpe, log_mel, save_fcpe
from voicetwin.audio.pitch import track_f0
from voicetwin.errors import CheckpointError, ConfigError, MissingDependencyError

SR = 16_000
TINY = FCPEConfig(n_mels=16, n_fft=256, win_size=256, hop_size=160, hidden_dims=8, n_layers=2,
                  out_dims=24, f0_min=50.0, f0_max=1000.0)
HAS_WEIGHTS = importlib.util.find_spec("torchfcpe") is not None
needs_weights = pytest.mark.skipif(not HAS_WEIGHTS, reason="torchfcpe (FCPE weights) not installed")


def _sung(f0: float, seconds: float = 1.5, vibrato_cents: float = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic tone with 5.5 Hz vibrato: (audio, true F0 every 10 ms)."""
    t = np.arange(int(SR * seconds)) / SR
    hz = f0 * 2 ** (vibrato_cents / 1200 * np.sin(2 * np.pi * 5.5 * t))
    phase = 2 * np.pi * np.cumsum(hz) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, 7) if k * f0 < SR / 2)
    return (0.3 * x / np.abs(x).max()).astype(np.float32), hz[::160]


def test_tiny_random_config_round_trips_through_a_model_directory(tmp_path):
    torch.manual_seed(0)
    net = build_fcpe(TINY)
    out = save_fcpe(net, tmp_path / "fcpe-tiny")
    again = load_fcpe(str(out))
    assert again.config == TINY
    x = torch.randn(1, 4000) * 0.1
    mel = log_mel(x, TINY)
    assert mel.shape == (1, 4000 // 160 + 1, 16)
    with torch.no_grad():
        assert torch.allclose(net.eval()(mel), again(mel))
    f0, confidence = fcpe_f0(x[0].numpy(), SR, 10.0, model=str(out))
    assert f0.shape == confidence.shape == (4000 // 160 + 1,)


def test_a_package_checkpoint_is_read_with_its_weight_norm_folded(tmp_path):
    torch.manual_seed(1)
    net = build_fcpe(TINY).eval()
    state = dict(net.state_dict())
    w = state.pop("output_proj.weight")
    g = w.norm(dim=1, keepdim=True)
    state.update({"output_proj.weight_g": g, "output_proj.weight_v": w / g * 3.0,
                  "gaussian_blurred_cent_mask": torch.tensor(1.0)})
    config = {"mel": {"sr": SR, "num_mels": 16, "n_fft": 256, "win_size": 256, "hop_size": 160, "fmin": 0,
                      "fmax": 8000},
              "model": {"type": "CFNaiveMelPE", "out_dims": 24, "hidden_dims": 8, "n_layers": 2, "f0_min": 50.0,
                        "f0_max": 1000.0, "use_fa_norm": True, "conv_only": True}}
    torch.save({"model": state, "config_dict": config, "global_step": 1}, tmp_path / "fcpe.pt")
    loaded = load_fcpe(str(tmp_path / "fcpe.pt"))
    assert loaded.config == TINY
    mel = log_mel(torch.randn(1, 3200) * 0.1, TINY)
    with torch.no_grad():
        assert torch.allclose(net(mel), loaded(mel), atol=1e-6)
    torch.save({"model": state, "config_dict": {**config, "model": {**config["model"], "conv_only": False}}},
               tmp_path / "attention.pt")
    with pytest.raises(CheckpointError, match="convolution-only"):
        load_fcpe(str(tmp_path / "attention.pt"))


def test_config_and_decoder_checks():
    with pytest.raises(ConfigError):
        FCPEConfig(hidden_dims=10)
    with pytest.raises(ConfigError):
        FCPEConfig(fmax=9000.0)
    cents = FCPEConfig().cents
    y = np.zeros((3, 360))
    y[0, 100], y[0, 101] = 0.8, 0.8  # halfway between two bins
    y[1, 0], y[1, 1] = 0.9, 0.3  # at the bottom edge: the window is clipped, not wrapped
    y[2, 200] = 0.09  # below the voicing threshold
    f0, confidence = decode(y, cents)
    assert f0[0] == pytest.approx(10 * 2 ** ((cents[100] + cents[101]) / 2 / 1200))
    assert 32.7 < f0[1] < 10 * 2 ** (cents[1] / 1200) and f0[2] == 0 and confidence[2] == pytest.approx(0.09)


def test_a_missing_package_names_the_install_command(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchfcpe" else real(name, *a))
    with pytest.raises(MissingDependencyError, match="--no-deps torchfcpe"):
        load_fcpe.__wrapped__("fcpe")


@needs_weights
@pytest.mark.parametrize("f0", [110.0, 330.0, 880.0])
def test_tracks_a_sung_tone_with_vibrato_within_20_cents(f0):
    x, true = _sung(f0)
    est = track_f0(x, SR, 10.0, (50.0, 1100.0), method="fcpe")
    n = min(len(est), len(true))
    inner, ref = est[5:n - 5], true[5:n - 5]
    assert (inner > 0).all()
    error = np.abs(1200 * np.log2(inner / ref))
    assert np.median(error) < 10 and error.max() < 20  # no octave (1200 cents) or fifth slips anywhere


@needs_weights
def test_silence_and_noise_are_unvoiced_and_other_rates_are_resampled():
    rng = np.random.default_rng(0)
    silence = np.zeros(SR, np.float32)
    noise = (0.1 * rng.standard_normal(SR)).astype(np.float32)
    assert (fcpe_f0(silence, SR)[0] == 0).all()
    f0, confidence = fcpe_f0(noise, SR)
    assert (f0 == 0).all() and confidence.max() < 0.1
    x, _ = _sung(220.0, vibrato_cents=0.0)
    x44 = np.interp(np.arange(int(len(x) * 44100 / SR)) / 44100, np.arange(len(x)) / SR, x).astype(np.float32)
    f44, _ = fcpe_f0(x44, 44100, frame_period=5.0)
    assert len(f44) == int(len(x44) / (44100 * 0.005)) + 1
    assert abs(1200 * np.log2(np.median(f44[20:-20]) / 220.0)) < 10


@needs_weights
def test_the_singing_default_fills_breathy_high_notes_fcpe_leaves_unvoiced():
    """A note with 80 % of its energy aperiodic and vibrato: FCPE alone hears little of it at 740 Hz; FCPE with
    SwiftF0 where FCPE is silent (the singing default) tracks it, without octave slips."""
    pw = pytest.importorskip("pyworld")
    frames, bins = 120, 513
    freqs = np.arange(bins) * SR / 1024
    sp = np.tile(np.exp(-((freqs - 600) / 900) ** 2) + 0.05, (frames, 1)) * 1e-3
    for note in (300.0, 740.0):
        f0 = note * 2 ** (30 * np.sin(2 * np.pi * 5.5 * np.arange(frames) / 100) / 1200)
        x = pw.synthesize(f0, sp, np.full((frames, bins), 0.8), SR, 10.0)
        alone = track_f0(x, SR, f0_range=(50, 1100), method="fcpe")[:frames]
        both = track_f0(x, SR, f0_range=(50, 1100), method="fcpe+swift")[:frames]
        v = both > 0
        cents = 1200 * np.log2(both[v] / f0[v])
        assert v.mean() > 0.9 and (np.abs(cents) >= 600).mean() == 0 and np.sqrt(np.mean(cents**2)) < 30
        assert np.array_equal(both[alone > 0], alone[alone > 0])  # FCPE's own frames are kept
        if note == 740.0:
            assert v.mean() > (alone > 0).mean() + 0.3
