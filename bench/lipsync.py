"""Lip-sync figures: score accuracy on known shifts, align residuals, render checks, and speed.

Material: Debian opencv-doc's Megamind.avi (a real dialogue scene, read from the package) and talking faces
generated from a real photo (scikit-image's astronaut) whose mouth follows espeak-ng speech.

    .venv/bin/python bench/lipsync.py [--out out/bench-lipsync] [--quick]

Truth for the shifted cases: the source is taken to be in sync, so a shift of d ms should score d ms. For
Megamind, whose true offset is unknown, the error relative to the unshifted score is printed as well.

Align residuals are measured twice: on the output file (for a re-encoded picture, such as Megamind's MPEG-4, the
landmarks on the new pixels move the score by 5-15 ms either way), and with the output's audio against the input's
own picture, which isolates where the audio was placed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicetwin.audio.io import load_audio, save_audio  # noqa: E402
from voicetwin.video.face import LAYOUTS, load_landmarker, mouth_opening  # noqa: E402
from voicetwin.video.lipsync import (  # noqa: E402
    ANALYSIS_RATE, RenderOptions, SyncOptions, align, find_phrases, mouth_jitter, render_frames, score,
    score_tracks, seam_sums, speech_envelope, synthesize_talking_face, track_mouth,
)
from voicetwin.video.io import iter_frames, probe, write_video  # noqa: E402

MEGAMIND = Path("/usr/share/doc/opencv-doc/examples/data/Megamind.avi")
LINES = [
    ("en", "Hello there. This is a test of the lip sync system, with some pauses. "
           "And then another sentence follows here, spoken clearly and slowly."),
    ("en+m3", "We will meet at the station at nine tomorrow morning. Bring the maps, the tickets, "
              "and something warm to wear, because it gets cold up there."),
]
FOREIGN = ("en+f3", "A completely different line is spoken now. It has other words, and other rhythms, "
                    "for the mouth to follow. Then it stops.")


def espeak(text: str, voice: str, path: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
    return path


def shifted(x: np.ndarray, sr: int, ms: float) -> np.ndarray:
    """Delay (ms > 0: the audio lags the picture) or advance ``x``, keeping its length."""
    n = int(round(ms / 1000 * sr))
    if n >= 0:
        return np.concatenate([np.zeros(n, np.float32), x])[: len(x)]
    return np.concatenate([x[-n:], np.zeros(-n, np.float32)])


def make_talking(out: Path, voice: str, text: str, size: int = 256, canvas: tuple[int, int] | None = None) -> Path:
    from skimage import data

    wav = espeak(text, voice, out.with_suffix(".wav"))
    x, sr = load_audio(wav)
    frames = synthesize_talking_face(data.astronaut(), x, sr, fps=25, size=size)
    if canvas is not None:  # widen to e.g. 1280x720 with smeared edges (no second face)
        h, w = canvas
        pad = (w - size) // 2
        frames = [np.pad(f, ((0, h - size), (pad, w - size - pad), (0, 0)), mode="edge") for f in frames]
    write_video(out, frames, 25, x, sr)
    return out


def bench_score(videos: dict[str, Path], offsets: np.ndarray) -> dict:
    out = {}
    for name, video in videos.items():
        t0, c0 = time.perf_counter(), time.process_time()
        report = score(video)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        tracks = track_mouth(video)
        x, sr = load_audio(video, sample_rate=ANALYSIS_RATE)
        base = report.overall.offset_ms
        errors, rel = [], []
        for d in offsets:
            r = score_tracks(tracks, shifted(x, sr, d), sr, SyncOptions())
            errors.append(r.overall.offset_ms - d)
            rel.append(r.overall.offset_ms - base - d)
        errors, rel = np.abs(errors), np.abs(rel)
        out[name] = {
            "frames": report.frames, "fps_video": round(report.fps, 3), "score_wall_s": round(wall, 2),
            "score_frames_per_s": round(report.frames / wall, 1), "unshifted_offset_ms": round(base, 1),
            "unshifted_confidence": round(report.overall.confidence, 3), "cases": len(offsets),
            "score_frames_per_cpu_s": round(report.frames / cpu, 1),
            "within_40ms": round(float((errors < 40).mean()), 3),
            "median_abs_err_ms": round(float(np.median(errors)), 1),
            "max_abs_err_ms": round(float(errors.max()), 1),
            "within_40ms_vs_unshifted": round(float((rel < 40).mean()), 3),
            "shots": [s.to_dict() for s in report.shots],
        }
        print(f"score  {name:10s} {out[name]['within_40ms'] * 100:5.1f}% within 40 ms over {len(offsets)} shifts "
              f"(median |err| {out[name]['median_abs_err_ms']} ms, max {out[name]['max_abs_err_ms']} ms; "
              f"vs unshifted score {out[name]['within_40ms_vs_unshifted'] * 100:.1f}%); unshifted {base:+.1f} ms; "
              f"{out[name]['score_frames_per_s']} frames/s end to end "
              f"({out[name]['score_frames_per_cpu_s']} per CPU-second)",
              flush=True)
    return out


def bench_align(videos: dict[str, Path], offsets: list[float], work: Path) -> dict:
    out = {}
    for name, video in videos.items():
        x, sr = load_audio(video)
        tracks = track_mouth(video)  # the input's picture, to score the output's audio without re-encoding noise
        rows = []
        for d in offsets:
            wav = save_audio(work / f"{name}_shift{int(d)}.wav", shifted(x, sr, d), sr)
            t0, c0 = time.perf_counter(), time.process_time()
            result = align(video, wav, work / f"{name}_aligned{int(d)}.mp4")
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rescored = score(result.output).overall.offset_ms
            y, _ = load_audio(result.output, sample_rate=ANALYSIS_RATE)
            on_input = score_tracks(tracks, y, ANALYSIS_RATE, SyncOptions()).overall.offset_ms
            rows.append({"shift_ms": d, "estimated_ms": round(result.offset_before_ms, 1),
                         "residual_rescored_ms": round(rescored, 1),
                         "residual_input_picture_ms": round(on_input, 1),
                         "residual_true_ms": round(float(d - result.shift_ms), 1),
                         "frames_per_s": round(result.frames / wall, 1),
                         "frames_per_cpu_s": round(result.frames / cpu, 1)})
        res = np.abs([r["residual_rescored_ms"] for r in rows])
        true = np.abs([r["residual_true_ms"] for r in rows])
        inp = np.abs([r["residual_input_picture_ms"] for r in rows])
        out[name] = {"cases": rows, "max_residual_rescored_ms": round(float(res.max()), 1),
                     "max_residual_input_picture_ms": round(float(inp.max()), 1),
                     "max_residual_true_ms": round(float(true.max()), 1),
                     "median_frames_per_s": round(float(np.median([r["frames_per_s"] for r in rows])), 1),
                     "median_frames_per_cpu_s": round(float(np.median([r["frames_per_cpu_s"] for r in rows])), 1)}
        print(f"align  {name:10s} residual (re-scored output) max {res.max():.1f} ms (output's audio on the input's "
              f"picture: max {inp.max():.1f} ms), "
              f"true residual (shift - applied) max {true.max():.1f} ms over {len(rows)} shifts; "
              f"{out[name]['median_frames_per_s']} frames/s end to end "
              f"({out[name]['median_frames_per_cpu_s']} per CPU-second)", flush=True)
    return out


def judge_landmarks(frames: list[np.ndarray]) -> tuple[np.ndarray, list]:
    """Mouth opening per frame by dlib's 68-point model (the renderer uses MediaPipe), NaN without a face,
    and the 68 points (or None) per frame."""
    model = load_landmarker("dlib")
    lay = LAYOUTS["dlib"]
    values = np.full(len(frames), np.nan)
    points = []
    for t, frame in enumerate(frames):
        faces = model(frame)
        points.append(faces[0] if faces else None)
        if faces:
            values[t] = mouth_opening(faces[0], lay)
    return values, points


def stabilized_jitter(frames: list[np.ndarray], points: list, still: np.ndarray) -> float:
    """Mean absolute change (0-255) between consecutive frames of the mouth area after removing head and camera
    motion: each frame is warped so that its dlib eye and nose points (from the input video) land on fixed places,
    and a 96 x 64 box around the mouth is compared. Only pairs of ``still`` frames with a face count."""
    import cv2

    from voicetwin.video.lipsync import similarity_transform

    lay = LAYOUTS["dlib"]
    ref = None
    diffs, prev = [], None
    for t, frame in enumerate(frames):
        p = points[t]
        if p is None or not still[t]:
            prev = None
            continue
        stable = p[list(lay.stable)]
        if ref is None:
            m0 = similarity_transform(p[[lay.eye_left, lay.eye_right]], np.array([[18.0, -40.0], [78.0, -40.0]]))
            ref = stable @ m0[:, :2].T + m0[:, 2]
        m = similarity_transform(stable, ref)
        crop = cv2.warpAffine(frame, m, (96, 64), flags=cv2.INTER_AREA).astype(np.float32)
        if prev is not None:
            diffs.append(float(np.abs(crop - prev).mean()))
        prev = crop
    return float(np.mean(diffs)) if diffs else float("nan")


def bench_render(videos: dict[str, Path], foreign: Path, work: Path, speed_only: set[str]) -> dict:
    out = {}
    y, sr = load_audio(foreign, sample_rate=ANALYSIS_RATE)
    for name, video in videos.items():
        info = probe(video)
        n = int(round(info.duration * sr))
        audio = np.pad(y, (0, max(0, n - len(y))))[:n]
        if name in speed_only:  # speed: the whole job, frames streamed to the encoder
            t0, c0 = time.perf_counter(), time.process_time()
            frames, result, _ = render_frames(video, audio, sr, RenderOptions())
            write_video(work / f"{name}_render.mp4", frames, info.frame_rate, audio, sr)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            out[name] = {"frames": result.frames, "size": f"{info.width}x{info.height}", "wall_s": round(wall, 2),
                         "frames_per_s": round(result.frames / wall, 1),
                         "frames_per_cpu_s": round(result.frames / cpu, 1)}
            print(f"render {name:10s} {info.width}x{info.height}: {out[name]['frames_per_s']} frames/s end to end "
                  f"({out[name]['frames_per_cpu_s']} per CPU-second; {result.frames} frames in {wall:.1f} s, "
                  f"decode + landmarks + render + H.264)", flush=True)
            continue
        alphas: list = []
        t0 = time.perf_counter()
        frames, result, _ = render_frames(video, audio, sr, RenderOptions(), alphas=alphas)
        rendered = list(frames)
        wall = time.perf_counter() - t0
        write_video(work / f"{name}_render.mp4", rendered, info.frame_rate, audio, sr)
        source = list(iter_frames(video))
        outside = sum(int((o != s)[a == 0].sum()) if a is not None else int((o != s).sum())
                      for o, s, a in zip(rendered, source, alphas))
        env = speech_envelope(audio, sr, info.fps, len(rendered))
        corr, judged = {}, {}
        for label, frames_ in (("input", source), ("output", rendered)):
            opening, judged[label] = judge_landmarks(frames_)
            ok = ~np.isnan(opening)
            corr[label] = float(np.corrcoef(opening[ok], env[ok])[0, 1])
        seams = {"output": [0.0, 0, 0.0, 0], "input": [0.0, 0, 0.0, 0]}
        per_frame = []
        for o, s, a in zip(rendered, source, alphas):
            if a is None:
                continue
            for label, f in (("output", o), ("input", s)):
                b, nb, i, ni = seam_sums(f, a)
                acc = seams[label]
                acc[0] += b
                acc[1] += nb
                acc[2] += i
                acc[3] += ni
                if label == "output" and nb and ni:
                    per_frame.append((b / nb) / (i / ni))
        ratio = {k: v[0] / max(v[1], 1) / max(v[2] / max(v[3], 1), 1e-9) for k, v in seams.items()}
        silent = np.ones(len(rendered), dtype=bool)
        for a_, b_ in find_phrases(audio, sr):
            silent[max(0, int(a_ * info.fps) - 1):int(np.ceil(b_ * info.fps)) + 1] = False
        silent[result.shots] = False  # a cut is not jitter
        jitter = {"output": mouth_jitter(rendered, alphas, silent), "input": mouth_jitter(source, alphas, silent),
                  "output_stab": stabilized_jitter(rendered, judged["input"], silent),
                  "input_stab": stabilized_jitter(source, judged["input"], silent)}
        out[name] = {
            "frames": result.frames, "rendered": result.rendered, "library": result.library,
            "identities": result.identities, "frames_per_s_no_encode": round(result.frames / wall, 1),
            "judge_corr_input": round(corr["input"], 3), "judge_corr_output": round(corr["output"], 3),
            "outside_mask_changed_pixels": outside, "seam_ratio_output": round(ratio["output"], 3),
            "seam_ratio_input_same_mask": round(ratio["input"], 3),
            "seam_ratio_worst_frame": round(float(np.max(per_frame)), 3) if per_frame else None,
            "silent_frames": int(silent.sum()), "jitter_silence_output": round(jitter["output"], 3),
            "jitter_silence_input": round(jitter["input"], 3),
            "jitter_silence_stabilized_output": round(jitter["output_stab"], 3),
            "jitter_silence_stabilized_input": round(jitter["input_stab"], 3),
        }
        r = out[name]
        print(f"render {name:10s} dlib-judged opening vs new speech envelope: input r={r['judge_corr_input']:+.3f}, "
              f"output r={r['judge_corr_output']:+.3f}; outside-mask pixels changed {outside}; seam ratio "
              f"{r['seam_ratio_output']} (input with same mask {r['seam_ratio_input_same_mask']}, worst frame "
              f"{r['seam_ratio_worst_frame']}); jitter in silence: in the frame {r['jitter_silence_output']} vs input "
              f"{r['jitter_silence_input']}, head-stabilised {r['jitter_silence_stabilized_output']} vs input "
              f"{r['jitter_silence_stabilized_input']} ({r['silent_frames']} silent frames); {r['identities']} people; "
              f"{r['rendered']}/{r['frames']} frames re-rendered", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="out/bench-lipsync", help="folder for generated videos and results.json")
    parser.add_argument("--quick", action="store_true", help="fewer cases")
    args = parser.parse_args(argv)
    work = Path(args.out)
    work.mkdir(parents=True, exist_ok=True)
    t_all = time.perf_counter()

    videos = {}
    if MEGAMIND.exists():
        videos["megamind"] = MEGAMIND
    else:
        print(f"{MEGAMIND} missing (apt-get install opencv-doc); using generated videos only")
    for i, (voice, text) in enumerate(LINES[: 1 if args.quick else 2]):
        videos[f"talking{i}"] = make_talking(work / f"talking{i}.mp4", voice, text)
    foreign = espeak(FOREIGN[1], FOREIGN[0], work / "foreign.wav")
    hd = make_talking(work / "talking720p.mp4", LINES[0][0], LINES[0][1], size=720, canvas=(720, 1280))

    rng = np.random.default_rng(0)
    offsets = np.concatenate([np.linspace(-600, 600, 9 if args.quick else 25),
                              rng.uniform(-600, 600, 5 if args.quick else 15).round(1)])
    results = {"score": bench_score({**videos, "talking720p": hd}, offsets)}
    align_offsets = [-600.0, -333.0, 250.0, 517.0] if args.quick else [-600.0, -450.0, -333.0, -120.0, 90.0, 250.0,
                                                                      517.0, 600.0]
    results["align"] = bench_align({**videos, "talking720p": hd}, align_offsets, work)
    results["render"] = bench_render({**videos, "talking720p": hd}, foreign, work, speed_only={"talking720p"})

    all_cases = sum(v["cases"] for v in results["score"].values())
    within = sum(v["within_40ms"] * v["cases"] for v in results["score"].values()) / all_cases
    results["summary"] = {"score_within_40ms_all": round(within, 3), "wall_s": round(time.perf_counter() - t_all, 1)}
    print(f"summary: score within 40 ms in {within * 100:.1f}% of {all_cases} cases; "
          f"bench took {results['summary']['wall_s']} s (2 shared CPU cores)")
    (work / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
