"""Speaker encoder benchmark: does similarity single out the archive voice, and does fine-tuning help
against a look-alike?

(a) Equal error rate of the pretrained GE2E encoder and of the independent d-vector judge separating the
    festvox-ru speaker (real recordings, held-out utterances, profile enrolled from 20 other utterances)
    from other voices: espeak-ng Russian and English variants, flite kal/awb/rms/slt, festival kal and slt.
    Target: <= 5 %.
(b) A look-alike: other utterances of the same speaker passed through WORLD with the spectral envelope
    stretched 2 % up the frequency axis (formants 2 % higher) and F0 one semitone higher, a synthetic
    stand-in for a son who sounds like his father. The target side of this test is passed through the same
    WORLD analysis and synthesis without changes, so the vocoder itself gives nothing away. The GE2E
    encoder is fine-tuned on a training split (target, look-alike and five synthetic voices) and the EER
    target-vs-look-alike is measured on held-out utterances of both, before and after.

Generated audio is cached under --work (default out/bench/speaker); a second run only re-measures.

    .venv/bin/python bench/speaker.py [--steps 150] [--clips 80]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicetwin.audio.io import load_audio, save_audio  # noqa: E402
from voicetwin.eval.judges import speaker_judge, verification_eer  # noqa: E402
from voicetwin.speaker.finetune import FinetuneOptions, finetune_speaker, speaker_eer, split_held_out  # noqa: E402

FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
SR = 16_000
MAX_SECONDS = 6.0
LOOKALIKE_SEMITONES = 1.0
LOOKALIKE_WARP = 1.02
EN_LINES = [
    "The old lighthouse keeper walked slowly along the rocky shore.",
    "Please remember to close the window before the storm arrives.",
    "A small boat drifted past the harbour in the early morning fog.",
    "Nobody expected the concert to end so abruptly last night.",
    "She painted the fence a bright shade of green on Sunday.",
    "The train to the northern valley leaves at half past seven.",
    "Fresh bread and warm soup were waiting on the kitchen table.",
    "His letters were written in a careful, slanting hand.",
    "We counted eleven swans on the lake behind the mill.",
    "The museum will open a new gallery of ancient maps in spring.",
]
ESPEAK_VOICES = {"espeak-ru": ("ru", "ru"), "espeak-ru-m3": ("ru+m3", "ru"), "espeak-ru-m7": ("ru+m7", "ru"),
                 "espeak-ru-f2": ("ru+f2", "ru"), "espeak-ru-klatt": ("ru+klatt4", "ru"),
                 "espeak-en-us-m2": ("en-us+m2", "en"), "espeak-en-gb": ("en-gb", "en"),
                 "espeak-en-f3": ("en+f3", "en")}
FLITE_VOICES = ("kal", "awb", "rms", "slt")
FESTIVAL_VOICES = {"festival-kal": "voice_kal_diphone", "festival-slt-hts": "voice_cmu_us_slt_arctic_hts"}
TUNING_OTHERS = ("espeak-ru", "espeak-ru-m3", "flite-awb", "flite-rms", "festival-kal")


def festvox_utterances() -> list[tuple[str, str]]:
    """``(utterance id, text)`` of the festvox-ru recordings, stress marks removed."""
    rows = []
    for line in (FESTVOX / "etc" / "txt.done.data").read_text(encoding="utf-8").splitlines():
        m = re.match(r'\(\s*(\S+)\s+"(.*)"\s*\)', line)
        if m and (FESTVOX / "wav" / f"{m.group(1)}.wav").exists():
            rows.append((m.group(1), m.group(2).replace("+", "")))
    return rows


def world_voice(audio: np.ndarray, sr: int, semitones: float = 0.0, warp: float = 1.0) -> np.ndarray:
    """WORLD analysis and resynthesis, F0 scaled by ``semitones`` and the envelope stretched by ``warp``."""
    import pyworld

    x = audio.astype(np.float64)
    f0, t = pyworld.dio(x, sr, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, sr)
    sp = pyworld.cheaptrick(x, f0, t, sr)
    ap = pyworld.d4c(x, f0, t, sr)
    if warp != 1.0:
        bins = np.arange(sp.shape[1])
        src = np.clip(bins / warp, 0, sp.shape[1] - 1)
        sp = np.stack([np.interp(src, bins, row) for row in sp])
        ap = np.stack([np.interp(src, bins, row) for row in ap])
    y = pyworld.synthesize(f0 * 2 ** (semitones / 12), sp, ap, sr, 5.0)
    return (0.9 * y / max(1e-6, np.abs(y).max())).astype(np.float32)


def _render(cmd: list[str], path: Path) -> None:
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    audio, sr = load_audio(path, SR)
    save_audio(path, audio, SR)


def build_corpus(work: Path, n_clips: int) -> dict[str, list[Path]]:
    """Write (or reuse) every voice's clips under ``work``; returns ``{voice: [wav paths]}``."""
    rows = festvox_utterances()
    target_rows, lookalike_rows, text_rows = rows[0::3][:n_clips], rows[1::3][:n_clips], rows[2::3]
    corpus: dict[str, list[Path]] = {}

    def make(voice: str, items, render) -> None:
        folder = work / voice
        done = folder / ".complete"
        paths = [folder / f"{name}.wav" for name, _ in items]
        if not done.exists():
            folder.mkdir(parents=True, exist_ok=True)
            for (name, payload), path in zip(items, paths):
                if not path.exists():
                    render(payload, path)
            done.touch()
        corpus[voice] = paths

    def festvox_clip(uid: str, path: Path, semitones: float = 0.0, warp: float = 1.0, vocode: bool = False):
        audio, _ = load_audio(FESTVOX / "wav" / f"{uid}.wav", SR, duration=MAX_SECONDS)
        save_audio(path, world_voice(audio, SR, semitones, warp) if vocode else audio, SR)

    make("target", [(u, u) for u, _ in target_rows], lambda u, p: festvox_clip(u, p))
    make("target-world", [(u, u) for u, _ in target_rows], lambda u, p: festvox_clip(u, p, vocode=True))
    make("lookalike", [(u, u) for u, _ in lookalike_rows],
         lambda u, p: festvox_clip(u, p, LOOKALIKE_SEMITONES, LOOKALIKE_WARP, vocode=True))
    ru_lines = [text for _, text in text_rows[:10]]
    for voice, (espeak_voice, lang) in ESPEAK_VOICES.items():
        lines = ru_lines if lang == "ru" else EN_LINES
        make(voice, [(f"{i:02d}", t) for i, t in enumerate(lines)],
             lambda t, p, v=espeak_voice: _render(["espeak-ng", "-v", v, "-w", str(p), t], p))
    if shutil.which("flite"):
        for voice in FLITE_VOICES:
            make(f"flite-{voice}", [(f"{i:02d}", t) for i, t in enumerate(EN_LINES)],
                 lambda t, p, v=voice: _render(["flite", "-voice", v, "-t", t, "-o", str(p)], p))
    if shutil.which("text2wave"):
        for voice, scheme in FESTIVAL_VOICES.items():
            def festival(t: str, p: Path, scheme: str = scheme) -> None:
                txt = p.with_suffix(".txt")
                txt.write_text(t, encoding="utf-8")
                _render(["text2wave", "-eval", f"({scheme})", str(txt), "-o", str(p)], p)
                txt.unlink()
            try:
                make(voice, [(f"{i:02d}", t) for i, t in enumerate(EN_LINES)], festival)
            except subprocess.CalledProcessError:
                print(f"  ({voice} unavailable, skipped)")
    return corpus


def detection_eer(judge_name: str, enroll: list[Path], target: list[Path], others: dict[str, list[Path]]) -> dict:
    judge = speaker_judge(judge_name)
    profile = judge.enroll(enroll)
    t = [judge.similarity(judge.embed(p), profile) for p in target]
    o = {name: [judge.similarity(judge.embed(p), profile) for p in clips] for name, clips in others.items()}
    pooled = [s for scores in o.values() for s in scores]
    per = {name: verification_eer(t, s) for name, s in o.items()}
    worst = max(per, key=per.get)
    return {"eer": verification_eer(t, pooled), "worst_voice": worst, "worst_eer": per[worst],
            "target_mean": float(np.mean(t)), "others_max": float(np.max(pooled))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("out/bench/speaker"))
    parser.add_argument("--clips", type=int, default=80, help="festvox utterances for the target and the look-alike")
    parser.add_argument("--steps", type=int, default=150, help="fine-tuning steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    import torch

    torch.set_num_threads(1)  # on a shared 2-core machine a second thread makes LSTM training several times slower

    print(f"building the corpus in {args.work} ...", flush=True)
    corpus = build_corpus(args.work, args.clips)
    print(f"  {len(corpus)} voices, {sum(len(v) for v in corpus.values())} clips "
          f"({time.perf_counter() - start:.0f} s)", flush=True)
    others = {k: v for k, v in corpus.items() if k not in ("target", "target-world", "lookalike")}

    # (a) the archive voice against other voices, pretrained judges
    enroll, held_out = split_held_out(corpus["target"], 0.5, args.seed)
    enroll = enroll[:20]
    results: dict = {"a": {}, "b": {}}
    print(f"\n(a) festvox-ru speaker vs {len(others)} other voices ({sum(map(len, others.values()))} clips); "
          f"{len(held_out)} held-out target clips, profile from {len(enroll)} others")
    for judge in ("ge2e", "dvector"):
        r = detection_eer(judge, enroll, held_out, others)
        results["a"][judge] = r
        verdict = "meets" if r["eer"] <= 0.05 else "MISSES"
        print(f"  {judge:8s} EER {100 * r['eer']:5.2f}%  ({verdict} <= 5%; target mean {r['target_mean']:.3f}, "
              f"highest other {r['others_max']:.3f}, hardest voice {r['worst_voice']} {100 * r['worst_eer']:.1f}%)")

    # (b) fine-tuning against the look-alike
    tuning_others = {"lookalike": corpus["lookalike"], **{k: others[k] for k in TUNING_OTHERS if k in others}}
    options = FinetuneOptions(steps=args.steps, seed=args.seed, held_out=0.3)
    print(f"\n(b) fine-tuning GE2E for {args.steps} steps on target (WORLD-resynthesised) + look-alike "
          f"({LOOKALIKE_SEMITONES:+.0f} semitone, envelope x{LOOKALIKE_WARP}) + {len(tuning_others) - 1} "
          f"synthetic voices", flush=True)
    t0 = time.perf_counter()
    out = args.work / "encoder"
    report = finetune_speaker(corpus["target-world"], tuning_others, out=out, options=options, progress=True)
    train_s = time.perf_counter() - t0
    before, after = report["before"], report["after"]
    results["b"] = report
    clips = report["clips"]
    print(f"  held-out clips: target {clips['target']['held_out']}, look-alike {clips['lookalike']['held_out']} "
          f"(train {clips['target']['train']} + {clips['lookalike']['train']}); {train_s:.0f} s incl. EER runs")
    print(f"  EER target vs look-alike: {100 * before['per_speaker']['lookalike']:.1f}% before -> "
          f"{100 * after['per_speaker']['lookalike']:.1f}% after fine-tuning")
    print(f"  mean similarity to the target profile: target {before['target_similarity']:.3f} -> "
          f"{after['target_similarity']:.3f}, look-alike {before['other_similarity']['lookalike']:.3f} -> "
          f"{after['other_similarity']['lookalike']:.3f}")
    print(f"  EER pooled over the tuning set's held-out voices: {100 * before['eer']:.1f}% -> {100 * after['eer']:.1f}%")

    # the tuned encoder must still tell the real archive voice from every other voice
    from voicetwin.speaker.encoder import SpeakerEncoder

    tuned = SpeakerEncoder.load(out)
    untouched = {k: v for k, v in others.items() if k not in TUNING_OTHERS}
    real_after = speaker_eer(tuned, enroll, held_out, untouched)
    results["b"]["tuned_real_vs_unseen_voices"] = real_after
    print(f"  tuned encoder, real target vs the {len(untouched)} voices it never saw: EER "
          f"{100 * real_after['eer']:.2f}%")
    print(f"\nencoder and report: {out}; total {time.perf_counter() - start:.0f} s (shared 2-core machine)")
    (args.work / "results.json").write_text(json.dumps(results, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
