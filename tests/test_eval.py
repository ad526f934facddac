"""The judges: EER, speaker similarity (two encoders), WER/CER, F0 agreement, MCD, cost measurement."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from voicetwin.eval import judges
from voicetwin.audio.io import load_audio, save_audio
from voicetwin.cli import main
from voicetwin.errors import InputError

SR = 16_000
EN_TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the speaker encoders' small LSTMs


def tone(f0: np.ndarray, harmonics: int = 1, sr: int = SR) -> np.ndarray:
    """A tone following the F0 contour ``f0`` (Hz per sample) with decaying harmonics."""
    phase = 2 * np.pi * np.cumsum(f0) / sr
    return (0.3 * sum(np.sin(k * phase) / k for k in range(1, harmonics + 1))).astype(np.float32)


def vibrato(seconds: float = 1.5, base: float = 200.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return base * 2 ** (0.5 * np.sin(2 * np.pi * 3 * t) / 12)


# --- equal error rate -----------------------------------------------------------------------


def test_eer_of_synthetic_scores():
    assert judges.equal_error_rate([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], [1, 1, 1, 0, 0, 0])[0] == 0.0
    assert judges.equal_error_rate([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], [1, 1, 1, 0, 0, 0])[0] == 1.0
    eer, threshold = judges.equal_error_rate([0.9, 0.8, 0.2, 0.75, 0.3, 0.1], [1, 1, 1, 0, 0, 0])
    assert eer == pytest.approx(1 / 3) and 0.2 < threshold <= 0.75
    rng = np.random.default_rng(0)  # two unit-variance Gaussians 2 apart: EER = Phi(-1) = 0.159
    scores = np.concatenate([rng.normal(1, 1, 20000), rng.normal(-1, 1, 20000)])
    labels = np.r_[np.ones(20000), np.zeros(20000)]
    assert judges.equal_error_rate(scores, labels)[0] == pytest.approx(0.1587, abs=0.01)
    with pytest.raises(InputError):
        judges.equal_error_rate([0.1, 0.2], [1, 1])


# --- speaker similarity ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(festvox_wavs):
    return [(load_audio(p, SR, duration=4.0)[0], SR) for p in festvox_wavs[10:16]]


def test_dvector_judge_separates_real_speaker_from_espeak(real, espeak):
    judge = judges.speaker_judge("dvector")
    e = judge.embed(*real[0])
    assert e.shape == (256,) and abs(float(np.linalg.norm(e)) - 1) < 1e-4
    profile = judge.enroll(real[:3])
    same = [judge.similarity(judge.embed(*c), profile) for c in real[3:]]
    other = [judge.similarity(judge.embed(espeak("Она пошла через улицу с корзинкой.", v)), profile)
             for v in ("ru", "ru+m3")]
    assert min(same) > max(other) + 0.2


def test_similarity_report_gives_ceiling_and_floor(real, espeak):
    others = [espeak("Она пошла через улицу.", "ru+m1"), espeak("He crossed the street.", "en-us")]
    report = judges.similarity_report(real[4:], real[:4], others)
    assert set(report) == {"ge2e", "dvector"}
    for score in report.values():
        assert score.floor < score.score and score.floor < score.ceiling
        assert len(score.scores) == 2 and score.ceiling > 0.8
    assert judges.similarity_report(real[4:5], real[:1])["ge2e"].ceiling is None


# --- recognition ----------------------------------------------------------------------------


def test_english_normalisation_and_error_rates():
    assert judges.normalize_english("Dr. Smith paid 3.5% - it's 20!") == \
        "doctor smith paid three point five percent it's twenty"
    assert judges.number_to_words(1984) == "one thousand nine hundred eighty four"
    assert judges.word_error_rate("the cat sat", "The cat, sat!") == 0.0
    assert judges.word_error_rate("the cat sat on the mat", "the cat sat on mat") == pytest.approx(1 / 6)
    assert judges.word_error_rate("a b", "a b c d") == 1.0
    assert judges.char_error_rate("abcd", "abed") == 0.25
    with pytest.raises(InputError):
        judges.word_error_rate("", "something")


@pytest.fixture(scope="module")
def english_clip(tmp_path_factory):
    if shutil.which("flite") is None:
        pytest.fail("flite is not installed: run 'make install'")
    path = tmp_path_factory.mktemp("flite") / "slt.wav"
    subprocess.run(["flite", "-voice", "slt", "-t", EN_TEXT, "-o", str(path)], check=True)
    return path


def test_whisper_and_pocketsphinx_recognise_generated_english(english_clip):
    report = judges.wer_report([(english_clip, EN_TEXT)])
    assert report["recogniser"] == "whisper-tiny.en" and report["wer"] <= 0.2 and report["cer"] <= 0.15
    assert judges.word_error_rate(EN_TEXT, judges.transcribe(english_clip, recogniser="pocketsphinx")) <= 0.5
    garbled = judges.wer_report([(english_clip, "Completely different words are spoken in another clip.")])
    assert garbled["wer"] > 0.7


def test_cli_eval_wer(english_clip, capsys):
    assert main(["eval", "wer", str(english_clip), "--text", EN_TEXT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["wer"] <= 0.2


# --- pitch, spectrum, cost ------------------------------------------------------------------


def test_one_semitone_offset_gives_100_cents():
    f0 = vibrato()
    ref = judges.extract_f0((tone(f0), SR), method="dio")
    up = judges.extract_f0((tone(f0 * 2 ** (1 / 12)), SR), method="dio")
    result = judges.f0_agreement(ref, up)
    assert result.rmse_cents == pytest.approx(100, abs=5)
    assert result.correlation > 0.95 and result.voicing_error < 0.02 and result.gross_error_rate == 0
    assert judges.f0_agreement(ref, up, transpose_semitones=1).rmse_cents < 20


def test_pyin_judge_follows_a_vibrato_and_sees_a_semitone():
    f0 = vibrato()
    ref = judges.extract_f0((tone(f0, harmonics=5), SR), method="pyin", frame_period_ms=10.0)
    up = judges.extract_f0((tone(f0 * 2 ** (1 / 12), harmonics=5), SR), method="pyin", frame_period_ms=10.0)
    truth = f0[::SR // 100]  # the true F0 at each 10 ms frame's centre
    assert len(ref) == pytest.approx(len(truth), abs=1) and (ref > 0).mean() > 0.9
    assert judges.f0_agreement(truth, ref).rmse_cents < 30
    assert judges.f0_agreement(ref, up).rmse_cents == pytest.approx(100, abs=15)
    assert judges.f0_agreement(ref, up, transpose_semitones=1).rmse_cents < 30


def test_harvest_on_a_harmonic_tone_and_octave_errors():
    f0 = vibrato()
    ref = judges.extract_f0((tone(f0, harmonics=5), SR), method="harvest")
    assert (ref > 0).mean() > 0.9 and np.median(np.abs(1200 * np.log2(ref[ref > 0] / 200))) < 60
    octave = judges.f0_agreement(ref, ref * 2)
    assert octave.octave_error_rate == 1.0 and octave.gross_error_rate == 1.0
    assert octave.rmse_cents == pytest.approx(1200, abs=1)
    unvoiced = judges.f0_agreement(ref, np.zeros_like(ref))
    assert unvoiced.voicing_error > 0.9 and np.isnan(unvoiced.rmse_cents)


def test_mcd_is_zero_for_a_copy_and_grows_with_the_difference(festvox_wavs, espeak):
    clip = (load_audio(festvox_wavs[20], SR, duration=3.0)[0], SR)
    assert judges.mel_cepstral_distortion(clip, clip)["mcd_db"] == pytest.approx(0, abs=1e-6)
    noisy = (clip[0] + 0.003 * np.random.default_rng(0).standard_normal(len(clip[0])).astype(np.float32), SR)
    near = judges.mel_cepstral_distortion(clip, noisy)["mcd_db"]
    far = judges.mel_cepstral_distortion(clip, espeak("Со спокойным мужеством.", "ru"))["mcd_db"]
    assert 0 < near < far and far > 5


def test_cli_eval_f0(tmp_path, capsys):
    f0 = vibrato()
    save_audio(tmp_path / "a.wav", tone(f0, 5), SR)
    save_audio(tmp_path / "b.wav", tone(f0 * 2 ** (2 / 12), 5), SR)
    assert main(["eval", "f0", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--semitones", "2",
                 "--no-align", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["rmse_cents"] < 20 and result["voicing_error"] < 0.05


def test_measure_reports_time_memory_and_real_time_factor():
    with judges.measure(audio_seconds=2.0) as m:
        block = np.ones((4000, 4000))  # 128 MB
        block += 1
    assert m.wall_s > 0 and m.peak_rss_mb >= m.rss_start_mb + 60
    assert m.real_time_factor == pytest.approx(m.wall_s / 2.0)
    with pytest.raises(InputError):
        judges.real_time_factor(1.0, 0)
