"""Watermark: payload round trip, a few attacks on short clips, no detection on unmarked audio, SNR bound,
provenance sidecar and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from voicetwin.audio.io import load_audio, resample, save_audio
from voicetwin.cli import main
from voicetwin.errors import ConfigError, EmptyAudioError, InputError
from voicetwin.files import sha256_file
from voicetwin.production.provenance import sidecar_path, write_provenance
from voicetwin.production.render import finalize_output
from voicetwin.production.watermark import (
    PAYLOAD_BITS,
    Payload,
    WatermarkConfig,
    conv_encode,
    detect,
    embed,
    payload_for,
    payload_from_bits,
    snr_db,
    viterbi_decode,
)


@pytest.fixture(scope="module")
def speech(festvox_wavs):
    """About 8 s of real speech at 16 kHz (two festvox-ru utterances), peak -1 dBFS."""
    parts = [load_audio(p)[0] for p in festvox_wavs[10:12]]
    a = np.concatenate(parts)
    return (a / np.abs(a).max() * 0.89).astype(np.float32), 16000


@pytest.fixture(scope="module")
def marked(speech):
    a, sr = speech
    payload = Payload(0xBEEF, 0x123456)
    return embed(a, sr, payload), sr, payload


def test_payload_bits_round_trip_and_crc():
    p = Payload(513, 777777)
    bits = p.bits()
    assert bits.shape == (PAYLOAD_BITS,)
    back, ok = payload_from_bits(bits)
    assert back == p and ok
    bits[3] ^= 1
    _, ok = payload_from_bits(bits)
    assert not ok
    assert payload_for("nsh", "render-1") == payload_for("nsh", "render-1")
    assert payload_for("nsh", "render-1") != payload_for("nsh", "render-2")
    assert payload_for(12, 34) == Payload(12, 34)
    with pytest.raises(InputError):
        Payload(2**16, 0)


def test_viterbi_corrects_errors():
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2, PAYLOAD_BITS).astype(np.uint8)
    soft = 1.0 - 2.0 * conv_encode(bits)
    soft[rng.choice(len(soft), 6, replace=False)] *= -1  # six hard errors
    assert np.array_equal(viterbi_decode(soft, PAYLOAD_BITS), bits)


def test_round_trip_and_snr(speech, marked):
    a, _ = speech
    y, sr, payload = marked
    assert y.shape == a.shape and y.dtype == np.float32
    assert snr_db(a, y) >= 35.0
    d = detect(y, sr)
    assert d.detected and d.crc_ok and d.payload == payload
    assert d.confidence > 0.999
    assert d.to_dict()["payload"]["voice"] == 0xBEEF


def test_other_rates_and_stereo(speech):
    a, sr = speech
    a48 = resample(a, sr, 48000)
    stereo = np.stack([a48, 0.5 * a48])
    y = embed(stereo, 48000, Payload(1, 2))
    assert y.shape == stereo.shape
    d = detect(y, 48000)
    assert d.detected and d.payload == Payload(1, 2)
    # the 48 kHz mark read after resampling to 16 kHz
    assert detect(resample(y[0], 48000, 16000), 16000).payload == Payload(1, 2)


def test_survives_mp3_noise_gain_and_excerpt(marked, tmp_path):
    y, sr, payload = marked
    rng = np.random.default_rng(0)
    path = tmp_path / "m.mp3"
    save_audio(path, y, sr, bitrate=64000)
    mp3, _ = load_audio(path, sample_rate=sr)
    noise = rng.standard_normal(len(y)) * np.sqrt(np.mean(y**2) / 100)  # 20 dB SNR
    start = 12345
    for name, attacked in {
        "mp3": mp3,
        "noise": y + noise,
        "gain+6-clip": np.clip(y * 2, -1, 1),
        "excerpt-3s": y[start : start + 3 * sr],
    }.items():
        d = detect(attacked.astype(np.float32), sr)
        assert d.detected, name
        assert np.mean(d.bits == payload.bits()) >= 0.98, name


def _chords(seconds: float = 6.0, sr: int = 44100) -> np.ndarray:
    """Tonal music: a chord of harmonic notes changing every half second, peak -1 dBFS."""
    t = np.arange(int(seconds * sr)) / sr
    y = np.zeros_like(t)
    rng = np.random.default_rng(7)
    for start in np.arange(0, seconds, 0.5):
        env = np.clip((t - start) / 0.01, 0, 1) * np.exp(-np.clip(t - start, 0, None) * 3) * (t >= start)
        for semis in rng.choice([[0, 4, 7], [0, 3, 7], [2, 5, 9]]):
            f = 220 * 2 ** (semis / 12)
            for h in range(1, 8):
                y += env * 0.1 / h**1.3 * np.sin(2 * np.pi * f * h * t + rng.uniform(0, 6.3))
    return (0.89 * y / np.abs(y).max()).astype(np.float32)


def test_tonal_music_survives_excerpt_with_noise():
    sr = 44100
    music = _chords(sr=sr)
    payload = Payload(4242, 987654)
    y = embed(music, sr, payload)
    assert snr_db(music, y) >= 35.0
    clip = y[sr : 4 * sr].astype(np.float64)
    noise = np.random.default_rng(1).standard_normal(len(clip)) * np.sqrt(np.mean(clip**2) / 100)  # 20 dB SNR
    d = detect((clip + noise).astype(np.float32), sr)
    assert d.detected and d.crc_ok and d.payload == payload


def _pink(seconds: float, seed: int, sr: int = 16000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    f = np.maximum(np.fft.rfftfreq(n, 1 / sr), 20.0)
    y = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.sqrt(f), n=n)
    return (0.3 * y / np.max(np.abs(y))).astype(np.float32)


def test_noise_hosts_decode_with_the_weighting_that_keeps_their_tiles():
    """On a host that is itself stationary noise, the plain host-share weighting leaves each tile a small random
    weight; the second weighting (share floored at 0.3) decodes more of the same marked clips."""
    payload = Payload(1234, 56789)
    both, plain_only = 0, 0
    for seed in range(8):
        y = embed(_pink(8.0, seed), 16000, payload)
        both += detect(y, 16000).payload == payload
        plain_only += detect(y, 16000, config=WatermarkConfig(share_floors=(0.0,))).payload == payload
    assert both >= 7 and both > plain_only
    with pytest.raises(ConfigError):
        WatermarkConfig(share_floors=())


def test_no_detection_on_unmarked_audio(speech, espeak, sine):
    a, sr = speech
    rng = np.random.default_rng(3)
    clips = [
        (a, sr),
        load_audio(espeak("no watermark was embedded in this sentence at all", "en")),
        (sine(440, 3.0, 44100) + sine(660, 3.0, 44100), 44100),
        ((0.1 * rng.standard_normal(48000 * 3)).astype(np.float32), 48000),
    ]
    for audio, rate in clips:
        d = detect(audio, rate)
        assert not d.detected and d.payload is None
        assert d.score < 5.0


def test_only_the_right_key_detects(speech):
    a, sr = speech
    payload = Payload(0xBEEF, 0x123456)
    y = embed(a, sr, payload, key="studio-key")
    right = detect(y, sr, key="studio-key")
    assert right.detected and right.payload == payload  # the detector does detect...
    for key in ("another-key", None):  # ...and only with the key the mark was made with
        wrong = detect(y, sr, key=key) if key else detect(y, sr)
        assert not wrong.detected and wrong.payload is None


def test_input_checks():
    with pytest.raises(EmptyAudioError):
        detect(np.zeros(8000, np.float32), 16000)
    with pytest.raises(InputError):
        embed(np.zeros(16000, np.float32), 8000, Payload(0, 0))
    silent = np.zeros(32000, np.float32)
    assert np.array_equal(embed(silent, 16000, Payload(0, 0)), silent)


def test_write_provenance_contents(tmp_path, speech):
    a, sr = speech
    src = tmp_path / "in.wav"
    save_audio(src, a, sr)
    out = tmp_path / "out.wav"
    save_audio(out, a, sr)
    path = write_provenance(out, inputs=[src, {"name": "text", "sha256": "ab"}, ("take", a)],
                            model_ids={"vc": "knn-vc-small"}, voice_id="nsh", consent_ref="contract 7",
                            render_id="r42", extra={"line": 3})
    assert path == sidecar_path(out) and path.name == "out.wav.provenance.json"
    rec = json.loads(path.read_text())
    assert rec["output"]["sha256"] == sha256_file(out)
    assert rec["inputs"][0]["sha256"] == sha256_file(src)
    assert rec["inputs"][1] == {"name": "text", "sha256": "ab"}
    assert len(rec["inputs"][2]["sha256"]) == 64
    assert rec["models"] == {"vc": "knn-vc-small"}
    assert rec["voice_id"] == "nsh" and rec["render_id"] == "r42" and rec["consent"] == "contract 7"
    assert rec["software"]["name"] == "voicetwin" and rec["created_utc"].endswith("Z")
    assert rec["extra"] == {"line": 3}


def test_finalize_output_marks_saves_and_records(tmp_path, speech):
    from voicetwin.consent import ConsentRecord, save_consent

    a, sr = speech
    voice_dir = tmp_path / "voice"
    save_consent(voice_dir, ConsentRecord(subject="N. Sh.", granted_by="N. Sh.", document="doc-1"))
    out = finalize_output(a[: 4 * sr], sr, tmp_path / "line.wav", voice_id="nsh", render_id="take-7",
                          model_ids=["tts-small"], consent=voice_dir)
    assert out.path.exists() and out.verified is True
    rec = json.loads(out.provenance.read_text())
    assert rec["render_id"] == "take-7" and rec["voice_id"] == "nsh"
    assert rec["consent"]["document"] == "doc-1" and len(rec["consent"]["record_sha256"]) == 64
    assert rec["extra"]["watermark"]["hex"] == payload_for("nsh", "take-7").hex
    y, rate = load_audio(out.path)
    assert detect(y, rate).payload == payload_for("nsh", "take-7")
    assert not list(tmp_path.glob(".*.part*"))  # atomic: no temporary files left


def test_cli_embed_detect_json_and_exit_codes(tmp_path, speech, capsys):
    a, sr = speech
    src = tmp_path / "own.wav"
    save_audio(src, a[: 5 * sr], sr)
    out = tmp_path / "own.marked.mp3"
    assert main(["watermark", "embed", str(src), "-o", str(out), "--voice-id", "7", "--render-id", "99",
                 "--json"]) == 0
    emb = json.loads(capsys.readouterr().out)
    assert emb["payload"]["voice"] == 7 and emb["snr_db"] >= 35
    assert sidecar_path(out).exists()
    assert main(["watermark", "detect", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["detected"] is True and res["payload"]["voice"] == 7 and res["payload"]["render"] == 99
    assert 0.99 < res["confidence"] <= 1.0
    assert main(["watermark", "detect", str(src), "--json"]) == 1
    res = json.loads(capsys.readouterr().out)
    assert res["detected"] is False and res["payload"] is None
    assert main(["watermark", "detect", str(tmp_path / "missing.wav")]) == 2
    assert "missing.wav" in capsys.readouterr().err


def test_box_mean_is_scipys_uniform_filter_with_nearest_edges():
    from scipy.ndimage import uniform_filter

    from voicetwin.production.watermark import box_mean

    rng = np.random.default_rng(0)
    for shape, sizes in (((50, 8), (3, 1)), ((50, 8), (5, 5)), ((3, 2), (5, 5)), ((1, 4), (3, 3))):
        x = rng.standard_normal(shape) * 100
        np.testing.assert_allclose(box_mean(x, sizes), uniform_filter(x, size=sizes, mode="nearest"), atol=1e-9)
    with pytest.raises(ConfigError):
        box_mean(np.zeros((4, 4)), (2, 1))
