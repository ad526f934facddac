"""Benchmark of batch dubbing on a generated 2-minute scene: timing, fitting, loudness, caching, resume, edits.

    python bench/dub.py [--out out/bench_dub] [--voice VOICE_DIR | --no-voice] [--minutes 2] [--lines 12]

The scene (recipes/dub_example/make_scene.py): 12 lines of 3 characters (FATHER: performer takes converted into
his voice and one sung line; GUEST and HOST: text) over a stereo music-and-effects stem, with a picture. Without
``--voice`` a small FATHER voice is built once from festvox-ru recordings (recipes/festvox_ru) and cached in OUT.

Figures, all measured on the delivered files with detectors independent of the dubber's own:
* onset error per line: 2 ms envelope of dialogue.wav, first sample within 30 dB of the line's peak, vs slot start;
* dropped / truncated lines: no sound in a line's window, or less speech in the stem than rendered x stretch ratio;
* share of lines within 1.25x time-stretch;
* integrated loudness (pyloudnorm) vs the target, true peak (4x FFT interpolation, scipy.signal.resample);
* with ducking off: mix.wav vs music_effects.wav outside the dialogue windows (bit-identical?), and the M&E stem
  vs the input M&E times the mix gain;
* kill in the middle (SIGKILL of the CLI process group once some lines are cached), ``--resume``: byte-identical?
* a one-line edit: which lines re-render, and where the mix changed vs the line's window plus the edit margin;
* throughput: scene minutes per wall-clock minute with 1 and 2 workers (the CLI, from a cold cache).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "recipes" / "dub_example"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
FILES = ("dialogue.wav", "music_effects.wav", "mix.wav", "mix.mp4", "subtitles.srt", "subtitles.ass", "report.json")


def cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "voicetwin", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            **kwargs)


def dub_cli(scene: Path, out: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    proc = cli(["dub", str(scene), "-o", str(out), *extra])
    _, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"voicetwin dub failed ({proc.returncode}): {err.strip()[-2000:]}")
    return time.perf_counter() - t0


def digests(out: Path) -> dict[str, str]:
    return {f: hashlib.sha256((out / f).read_bytes()).hexdigest() for f in FILES if (out / f).exists()}


def build_voice(out: Path) -> Path:
    """A small FATHER voice from 40 festvox-ru recordings (built once; cached in OUT)."""
    voice = out / "voice"
    if (voice / "model.safetensors").exists():
        return voice
    sys.path.insert(0, str(ROOT / "recipes" / "festvox_ru"))
    from prepare import ids_in, prepare_archive  # noqa: E402

    from voicetwin.voice.model import BuildOptions, Voice

    print("building a small FATHER voice from 40 festvox-ru recordings (once)...", flush=True)
    dataset = prepare_archive(out / "archive", ids_in("0:40"))
    Voice.build(dataset, voice, BuildOptions(steps=300, augment=1), log=print, consent=bench_consent())
    return voice


def bench_consent():
    """The consent record the benchmark voice is built on (the example scene is its only production)."""
    from voicetwin.consent import ConsentRecord

    return ConsentRecord(
        subject="festvox-ru speaker (msu_ru_nsh)", granted_by="festvox-ru speaker (msu_ru_nsh)",
        document="benchmark voice built from the freely licensed Debian festvox-ru recordings",
        scope=("speech", "singing"), productions=("Example Scene",))


def ensure_consent(voice: Path) -> None:
    from voicetwin.consent import consent_path, save_consent

    if not consent_path(voice).exists():
        save_consent(voice, bench_consent())


def envelope_onset(x: np.ndarray, sr: int, lo: int, hi: int, floor_db: float = -30.0) -> tuple[float, float] | None:
    """First and last sample (seconds) within ``floor_db`` of the peak of a 2 ms envelope of ``x[lo:hi]``."""
    seg = np.abs(x[max(0, lo): hi])
    if seg.size == 0 or seg.max() <= 1e-6:
        return None
    env = np.convolve(seg, np.ones(96) / 96, mode="same")
    loud = np.flatnonzero(env > env.max() * 10 ** (floor_db / 20))
    return (max(0, lo) + loud[0]) / sr, (max(0, lo) + loud[-1]) / sr


def true_peak_fft(x: np.ndarray) -> float:
    """True peak in dBTP by 4x FFT interpolation (independent of the limiter's polyphase FIR)."""
    from scipy.signal import resample

    peak = 0.0
    for ch in np.atleast_2d(x):
        for a in range(0, len(ch), 48_000 * 10):  # 10 s blocks with 0.1 s overlap
            block = ch[max(0, a - 4800): a + 48_000 * 10 + 4800]
            peak = max(peak, float(np.abs(resample(block, len(block) * 4)).max()))
    return 20 * np.log10(peak)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench_dub")
    ap.add_argument("--voice", default=None, help="FATHER's voice directory (default: build a small one once)")
    ap.add_argument("--no-voice", action="store_true", help="use the performer takes as they are (no conversion)")
    ap.add_argument("--minutes", type=float, default=2.0)
    ap.add_argument("--lines", type=int, default=12)
    ap.add_argument("--kill-after", type=int, default=5, help="lines cached before the kill")
    args = ap.parse_args()

    import pyloudnorm
    import soundfile as sf

    from make_scene import make_scene  # noqa: E402

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    voice = None
    if not args.no_voice:
        voice = Path(args.voice).resolve() if args.voice else build_voice(out)
        ensure_consent(voice)
    reference = out / "reference"  # real FATHER clips for the similarity column (held-out festvox-ru utterances)
    if not reference.exists():
        reference.mkdir()
        for wav in sorted((FESTVOX / "wav").glob("*.wav"))[590:600]:
            shutil.copyfile(wav, reference / wav.name)
    scene = make_scene(out / "scene", args.minutes, args.lines, voice, reference=reference if voice else None)
    scene_minutes = args.minutes
    print(f"scene: {scene} ({args.lines} lines, {scene_minutes:.1f} min); FATHER voice: {voice or 'none (takes as is)'}")
    for d in ("w1", "w2", "killed", "edit", "noduck"):
        shutil.rmtree(out / d, ignore_errors=True)

    # throughput, cold cache, with 1 and 2 workers (the same deliverables are expected from both)
    wall1 = dub_cli(scene, out / "w1", "--workers", "1")
    wall2 = dub_cli(scene, out / "w2", "--workers", "2")
    same_12 = digests(out / "w1") == digests(out / "w2")

    # kill in the middle, then resume
    proc = cli(["dub", str(scene), "-o", str(out / "killed"), "--workers", "1"])
    cache = out / "killed" / "cache" / "lines"
    while proc.poll() is None and len(list(cache.glob("*.json"))) < args.kill_after:
        time.sleep(0.1)
    killed_at = len(list(cache.glob("*.json")))
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    mixed_before_kill = (out / "killed" / "report.json").exists()
    dub_cli(scene, out / "killed", "--workers", "1", "--resume")
    run = json.loads((out / "killed" / "run.json").read_text())
    resume_same = digests(out / "killed") == digests(out / "w1")

    # figures on the first run's deliverables
    report = json.loads((out / "w1" / "report.json").read_text())
    rows = report["lines"]
    dialogue, sr = sf.read(out / "w1" / "dialogue.wav", dtype="float64")
    mix, _ = sf.read(out / "w1" / "mix.wav", dtype="float64")
    print("\nper line (measured on dialogue.wav):")
    print(f"{'line':5} {'character':9} {'source':9} {'slot s':>15} {'onset err ms':>12} {'stretch':>7} "
          f"{'speech in->out s':>17} {'borrowed s':>10} {'similarity':>10}  warnings")
    onset_errors, dropped, truncated = [], [], []
    for r in rows:
        a, b = r["window_samples"]
        found = envelope_onset(dialogue, sr, a, b)
        if found is None:
            dropped.append(r["id"])
            continue
        onset, end = found
        err = 1000 * (onset - r["slot"][0])
        onset_errors.append(err)
        # truncated: less sound in the stem than rendered x stretch ratio (both at -40 dB), or sound at the very end
        first40, last40 = envelope_onset(dialogue, sr, a, b, floor_db=-40.0)
        if last40 - first40 < r["speech_in"] * r["stretch_ratio"] * 0.95 - 0.03 or b - int(last40 * sr) < int(0.02 * sr):
            truncated.append(r["id"])
        sim = "" if r["similarity"] is None else f"{r['similarity']:.3f}"
        print(f"{r['id']:5} {r['character']:9} {r['source']:9} {r['slot'][0]:7.2f}-{r['slot'][1]:7.2f} {err:12.1f} "
              f"{r['stretch_ratio']:7.3f} {r['speech_in']:8.2f}->{end - onset:6.2f} {r['borrowed']:10.3f} "
              f"{sim:>10}  {'; '.join(r['warnings'])}")
    within = sum(1 for r in rows if max(r["stretch_ratio"], 1 / r["stretch_ratio"]) <= 1.25 + 1e-6) / len(rows)
    meter = pyloudnorm.Meter(sr)
    loudness = meter.integrated_loudness(mix)
    target = report["summary"]["loudness_target"]
    peak = true_peak_fft(mix.T)

    # ducking off: the M&E stays bit-identical outside the dialogue windows (lines come from the cache)
    shutil.copytree(out / "w1" / "cache", out / "noduck" / "cache")
    text = scene.read_text(encoding="utf-8").replace("  ducking:\n    depth: 6\n", "  ducking: false\n")
    noduck_scene = scene.with_name("scene_noduck.yaml")
    noduck_scene.write_text(text, encoding="utf-8")
    dub_cli(noduck_scene, out / "noduck", "--resume")
    nd = json.loads((out / "noduck" / "report.json").read_text())
    mix_i, _ = sf.read(out / "noduck" / "mix.wav", dtype="int32")
    me_i, _ = sf.read(out / "noduck" / "music_effects.wav", dtype="int32")
    outside = np.ones(len(mix_i), bool)
    for r in nd["lines"]:
        a, b = r["window_samples"]
        outside[a:b] = False
    me_diff = int(np.count_nonzero(np.any(mix_i[outside] != me_i[outside], axis=1)))
    me_in, _ = sf.read(scene.parent / "music_effects.wav", dtype="float64")
    gain = 10 ** (nd["summary"]["mix_gain_db"] / 20)
    me_out, _ = sf.read(out / "noduck" / "music_effects.wav", dtype="float64")
    me_vs_input_lsb = float(np.max(np.abs(me_out[outside] - me_in[outside] * gain)) * 2**23)

    # a one-line edit: change the words of one text line, resume
    shutil.copytree(out / "w1", out / "edit")
    edited_id = next(r["id"] for r in rows if r["source"] == "text" and r["character"] == "HOST")
    text = scene.read_text(encoding="utf-8")
    line_text = next(x for x in text.split("- id: ")[1:] if x.startswith(edited_id)).split("text: ", 1)[1].split("\n")[0]
    edited_scene = scene.with_name("scene_edit.yaml")
    edited_scene.write_text(text.replace(line_text, "Вот новая реплика, сказанная иначе."), encoding="utf-8")
    wall_edit = dub_cli(edited_scene, out / "edit", "--resume")
    edit_run = json.loads((out / "edit" / "run.json").read_text())
    after, _ = sf.read(out / "edit" / "mix.wav", dtype="int32")
    before, _ = sf.read(out / "w1" / "mix.wav", dtype="int32")
    changed = np.flatnonzero(np.any(after != before, axis=1)) if after.shape == before.shape else np.arange(len(after))
    old_w = next(r for r in rows if r["id"] == edited_id)["window_samples"]
    new_rep = json.loads((out / "edit" / "report.json").read_text())
    new_w = next(r for r in new_rep["lines"] if r["id"] == edited_id)["window_samples"]
    margin = int(new_rep["summary"]["edit_margin_s"] * sr) + 1
    lo, hi = min(old_w[0], new_w[0]) - margin, max(old_w[1], new_w[1]) + margin
    outside_edit = int(np.count_nonzero((changed < lo) | (changed >= hi)))

    print("\nfigures:")
    print(f"  onset error per line        max |err| {max(abs(e) for e in onset_errors):.1f} ms, mean "
          f"{np.mean(np.abs(onset_errors)):.1f} ms over {len(onset_errors)} lines (target <= 40 ms)")
    print(f"  dropped / truncated lines   {len(dropped)} / {len(truncated)} {dropped + truncated or ''} (target 0)")
    print(f"  lines within 1.25x stretch  {100 * within:.0f}% (target >= 95%); cannot fit: "
          f"{report['summary']['cannot_fit'] or 'none'}")
    print(f"  integrated loudness         {loudness:.2f} LUFS, target {target:.0f} -> {loudness - target:+.2f} LU "
          f"(target within 0.5 LU; pyloudnorm on mix.wav)")
    print(f"  true peak                   {peak:.2f} dBTP (4x FFT interpolation; target <= -1 dBTP)")
    print(f"  M&E outside dialogue, no ducking: {me_diff} of {int(outside.sum())} samples differ between mix.wav and "
          f"music_effects.wav (target 0); M&E stem vs input x mix gain: max {me_vs_input_lsb:.2f} LSB (24-bit)")
    print(f"  kill and resume             killed after {killed_at} cached lines (mix written before kill: "
          f"{mixed_before_kill}); resume rendered {len(run['rendered'])}, reused {len(run['cached'])}; "
          f"deliverables byte-identical to the uninterrupted run: {resume_same} ({', '.join(FILES)})")
    print(f"  one-line edit ({edited_id})        re-rendered {edit_run['rendered']} in {wall_edit:.1f} s; "
          f"{changed.size} samples changed, {outside_edit} outside the line's window +- {margin / sr:.3f} s "
          f"(target 0); mix gain kept: {edit_run['mix_gain_kept_from_previous_run']}")
    print(f"  throughput                  1 worker: {wall1:.1f} s wall = {scene_minutes / (wall1 / 60):.2f} scene "
          f"min per wall min; 2 workers: {wall2:.1f} s = {scene_minutes / (wall2 / 60):.2f} (cold cache, CLI, "
          f"shared machine)")
    print(f"  1 vs 2 workers              deliverables byte-identical: {same_12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
