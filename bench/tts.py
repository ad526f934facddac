"""Speak and sing benchmark: prints each target of the speak/sing issue next to the measured figure.

    python bench/tts.py                                    # base synthesisers only (no conversion)
    python bench/tts.py --voice-ru voices/festvox_ru --voice-en voices/awb --refs-en DIR_OF_REAL_EN_CLIPS
    python bench/tts.py --voice-ru voices/festvox_ru --model-ru out/festvox_ru_tts/model --parts ru
    python bench/tts.py --voice-en voices/awb --refs-en DIR --model-en out/awb_tts/model --parts en

With ``--model-ru`` (an acoustic model trained on the festvox-ru speaker, recipes/festvox_ru_tts) the Russian rows are
measured twice in the same run: espeak-ng + conversion into --voice-ru, and the trained model alone; the last line
says which wins on the judges. ``--model-en`` (recipes/awb_tts) does the same for English against piper joe +
conversion into --voice-en.

* duration: 20 held-out festvox-ru texts (the last 20 utterances of txt.done.data), each requested at a length from
  0.8x to 1.25x of its natural length; error = |measured / requested - 1| of the written audio;
* English: the sentences below (20 by default, 60 with ``--en-lines 60``), Whisper tiny.en word error rate of the spoken (and converted) lines;
* similarity (with a voice): GE2E and d-vector cosine to the centroid of real clips of the target (voicetwin.eval.judges);
* singing: a 30 s melody written here (octave leaps, a 2 s sustained note, a run of sixteenth notes) as a MIDI file
  with lyric events, sung at its written key (D4-D5) and, with a voice, in the voice's key (``transpose="auto"``),
  then judged by WORLD harvest F0 against the score's notes on voiced frames; a note's
  onset (notes at least a semitone from the previous one) is where the sung pitch arrives and stays within 50 cents
  of it for 30 ms. A single frame within 50 cents (also printed) is not enough: glides between notes and F0
  estimates at consonants pass through the note's pitch before it is sung;
* speed: seconds of audio per second of wall-clock time (x real time), one process on this machine.
* naturalness: DNSMOS P.835 OVRL / SIG / BAK of every system's lines and of the sung song, and as ceilings, of the
  held-out recordings themselves and of their copy synthesis by WORLD and by the universal HiFi-GAN;
  ``--vocoder hifigan`` renders speak and sing through the neural vocoder.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from voicetwin.synth.sing import Note, Score, SingOptions, read_score, set_lyrics, sing, write_midi  # noqa: E402
from voicetwin.synth.speak import SpeakOptions, speak, synthesize  # noqa: E402

FESTVOX = Path("/usr/share/festival/voices/russian/msu_ru_nsh_clunits")

EN_LINES = [
    "The old lighthouse keeper climbed the stairs every evening at dusk.",
    "She folded the letter twice and hid it under the loose floorboard.",
    "We missed the last train, so we walked home along the river.",
    "His grandfather taught him to fix clocks in a tiny workshop.",
    "The market opens at seven, but the best bread is gone by eight.",
    "Nobody noticed the cat sleeping on top of the piano.",
    "They painted the fence bright blue to annoy the neighbours.",
    "A cold wind came down from the hills and rattled the windows.",
    "I promised my sister I would call her before the end of the week.",
    "The orchestra tuned their instruments while the audience found their seats.",
    "He kept every ticket from every film he had ever seen.",
    "The garden was full of tomatoes that nobody wanted to pick.",
    "Please leave the keys with the porter at the front desk.",
    "The children built a raft out of barrels and old planks.",
    "Rain fell all night and the road was flooded by morning.",
    "She laughed so hard that she had to sit down on the steps.",
    "The doctor said the fever would pass in a day or two.",
    "We found an old map of the city in the attic.",
    "The baker hums the same song every morning while he works.",
    "After the storm, the whole village came out to clear the streets.",
    "My uncle drives a rusty truck that only starts on sunny days.",
    "The librarian asked us to whisper near the reading room.",
    "Two swans glided slowly across the frozen edge of the lake.",
    "Bring a warm coat, because the evenings get chilly in October.",
    "The postman waved at the twins as he passed the gate.",
    "Our team lost the final match by a single goal.",
    "She spent the whole summer learning to play the violin.",
    "The soup tasted of garlic, pepper and fresh green herbs.",
    "He forgot his umbrella on the bus again this morning.",
    "The museum keeps a dinosaur skeleton in the main hall.",
    "Every spring the farmers plant potatoes in long straight rows.",
    "The kettle whistled while grandmother searched for the sugar.",
    "A small boat drifted past the harbour wall without a sailor.",
    "The teacher wrote three difficult questions on the board.",
    "We watched the fireworks from the roof of the old factory.",
    "The dog barked at every bicycle that rolled down the lane.",
    "Please close the window before the rain comes in.",
    "The mountain path was narrow, steep and covered in loose stones.",
    "He bought a second hand camera at the Sunday flea market.",
    "The baby finally fell asleep after the third lullaby.",
    "They argued for an hour about where to hang the painting.",
    "The bridge was closed for repairs until the end of June.",
    "I found twenty coins in the pocket of my winter jacket.",
    "The choir sang beautifully in the cold stone chapel.",
    "A thick fog rolled in from the sea just after sunset.",
    "The chef sharpened his knives before the evening rush began.",
    "Nobody could remember who had left the lights on.",
    "The fisherman mended his nets on the pier every afternoon.",
    "Her brother collects stamps from countries he has never visited.",
    "The train to the coast leaves from platform nine.",
    "We planted an apple tree on the day my daughter was born.",
    "The old radio crackled before the news finally came through.",
    "He wrapped the present in brown paper and tied it with string.",
    "The students cheered when the headmaster cancelled the exam.",
    "A family of foxes lives under the shed at the bottom of the garden.",
    "The candle flickered and went out in the sudden draught.",
    "She painted the kitchen yellow to make the mornings brighter.",
    "The pilot announced that we would land twenty minutes early.",
    "Fresh snow covered the village square by the time we woke up.",
    "My neighbour grows enormous pumpkins for the autumn fair.",
]

# (MIDI pitch or None for a rest, beats); 72 BPM: 30 s
SONG = [
    (62, 1), (69, 1), (67, 0.5), (66, 0.5), (64, 1), (62, 2), (None, 1),            # leap up a fifth
    (57, 1), (69, 1), (67, 1), (64, 1), (66, 3), (None, 1),                          # octave leap, held note
    (62, 0.25), (64, 0.25), (66, 0.25), (67, 0.25), (69, 0.25), (71, 0.25), (72, 0.25), (74, 0.25),  # fast run
    (74, 2), (72, 1), (71, 1), (69, 1), (62, 1), (None, 1),                           # octave drop
    (64, 1), (66, 1), (67, 1), (69, 1), (71, 0.5), (69, 0.5), (67, 1), (66, 1), (64, 1), (62, 4),
]
SONG_LYRICS = ("Ве-чер ти-хий на-стал, свет в о-кне по-гас, лу-на _ _ _ _ _ _ "
               "вы-со-ко в но-чи, и по-ёт ве-тер в ду-ше мо-ей _")


def song_score(bpm: float = 72.0) -> Score:
    beat = 60.0 / bpm
    notes, t = [], 0.0
    for pitch, beats in SONG:
        if pitch is not None:
            notes.append(Note(t, beats * beat * 0.97, float(pitch)))
        t += beats * beat
    return Score(notes, bpm)


def festvox_heldout(n: int = 20) -> list[tuple[str, str]]:
    lines = (FESTVOX / "etc" / "txt.done.data").read_text(encoding="utf-8").splitlines()
    items = [(line.split()[1], line.split('"')[1]) for line in lines if '"' in line]
    return items[-n:]


def load_voice(path: str | None):
    if not path:
        return None
    from voicetwin.synth.speak import voice_class

    return voice_class().load(path)


def bench_duration(voice, lines: list[tuple[str, str]], base: str | None = None, vocoder: str | None = None) -> dict:
    factors = np.linspace(0.8, 1.25, len(lines))
    errors, audio_s, wall = [], 0.0, 0.0
    for (uid, text), factor in zip(lines, factors):
        natural = synthesize(text, SpeakOptions(language="ru", base=base)).seconds
        target = natural * factor
        t0 = time.perf_counter()
        audio, sr = speak(voice, text, SpeakOptions(language="ru", base=base, duration=target, tolerance=0.02,
                                                    vocoder=vocoder or VOCODER))
        wall += time.perf_counter() - t0
        audio_s += len(audio) / sr
        errors.append(abs(len(audio) / sr / target - 1))
    return {"mean": float(np.mean(errors)), "max": float(np.max(errors)), "speed": audio_s / wall}


def bench_speak(voice, lines: list[str], language: str, base: str | None = None,
                vocoder: str | None = None) -> tuple[list, dict]:
    out, audio_s, wall = [], 0.0, 0.0
    options = SpeakOptions(language=language, base=base, vocoder=vocoder or VOCODER)
    speak(voice, lines[0], options)  # load models outside the timing
    for text in lines:
        t0 = time.perf_counter()
        audio, sr = speak(voice, text, options)
        wall += time.perf_counter() - t0
        audio_s += len(audio) / sr
        out.append((audio, sr))
    return out, {"speed": audio_s / wall}


def score_f0(score: Score, n_frames: int, hop: float = 0.005) -> np.ndarray:
    """The score's pitch in Hz per frame (0 outside notes), read from the notes alone."""
    hz = np.zeros(n_frames)
    for n in score.notes:
        hz[int(round(n.start / hop)):min(n_frames, int(round(n.end / hop)))] = 440 * 2 ** ((n.pitch - 69) / 12)
    return hz


def note_onsets(f0: np.ndarray, score: Score, hold_ms: float, hop: float = 0.005) -> list[float]:
    """|onset - score| in ms for each note a semitone or more from the one before: the onset is the first frame,
    from 150 ms before the note to 250 ms after, that starts ``hold_ms`` of pitch within 50 cents of the note
    (250 ms when none does). With ``hold_ms`` 0 a single frame counts, so a glide or an F0 estimate jumping at a
    consonant that passes through the note's pitch counts as its onset."""
    hold = max(1, int(round(hold_ms / 1000 / hop)))
    out = []
    for prev, n in zip(score.notes, score.notes[1:]):
        if abs(n.pitch - prev.pitch) < 1:
            continue
        target = 440 * 2 ** ((n.pitch - 69) / 12)
        near = (f0 > 0) & (np.abs(1200 * np.log2(np.maximum(f0, 1e-9) / target)) < 50)
        lo, hi = max(0, int((n.start - 0.15) / hop)), min(len(f0) - hold + 1, int((n.start + 0.25) / hop))
        hit = [i for i in range(lo, hi) if near[i:i + hold].all()]
        out.append(abs(hit[0] * hop - n.start) * 1000 if hit else 250.0)
    return out


def pitch_and_onsets(audio: np.ndarray, sr: int, score: Score) -> dict:
    """Judge the sung audio against the score alone: WORLD harvest F0 (5 ms) on voiced frames, and note onsets as
    the start of a pitch held within 50 cents of the note for 30 ms (the single-frame rule is reported beside)."""
    from voicetwin.eval.judges import extract_f0

    f0 = extract_f0((audio, sr), method="harvest", frame_period_ms=5.0, f0_floor=60.0, f0_ceil=1000.0)
    plan = score_f0(score, len(f0))
    both = (f0 > 0) & (plan > 0)
    cents = np.abs(1200 * np.log2(f0[both] / plan[both]))
    onsets = np.array(note_onsets(f0, score, hold_ms=30.0))
    single = np.array(note_onsets(f0, score, hold_ms=0.0))
    return {"median_cents": float(np.median(cents)), "voiced": float(both.sum() / max(1, (plan > 0).sum())),
            "octave_errors": float(np.mean(cents > 600)), "onset_median_ms": float(np.median(onsets)),
            "onset_p90_ms": float(np.percentile(onsets, 90)), "onsets_within_30ms": float(np.mean(onsets <= 30)),
            "onsets": len(onsets), "single_frame_within_30ms": float(np.mean(single <= 30)),
            "single_frame_median_ms": float(np.median(single))}


VOCODER = "world"  # --vocoder: how speak and sing render


def naturalness(clips: list) -> str:
    """DNSMOS P.835 of ``(audio, sr)`` clips or paths, as "OVRL / SIG / BAK"."""
    from voicetwin.eval.judges import naturalness_report

    mos = naturalness_report(clips)
    return f"{mos['ovrl']:.2f} / {mos['sig']:.2f} / {mos['bak']:.2f}"


def ceiling_rows(held: list[tuple[str, str]]) -> list:
    """DNSMOS of the held-out recordings themselves and of their copy synthesis by each vocoder: the ceilings."""
    from voicetwin.audio.hifigan import load_vocoder
    from voicetwin.audio.io import load_audio
    from voicetwin.audio.world import analyze, synthesize as world_synthesize

    real = [load_audio(FESTVOX / "wav" / f"{uid}.wav", 16_000)[0] for uid, _ in held]
    world = []
    for x in real:
        f = analyze(x, 16_000, 10.0)
        world.append((world_synthesize(f.f0, f.sp, f.ap, 16_000, 10.0, len(x)), 16_000))
    neural = [load_vocoder().resynthesize(x, 16_000) for x in real]
    return [("ru DNSMOS OVRL / SIG / BAK", "ceiling", f"{naturalness([(x, 16_000) for x in real])} (real recordings)"),
            ("ru DNSMOS OVRL / SIG / BAK", "ceiling", f"{naturalness(world)} (real, WORLD copy synthesis)"),
            ("ru DNSMOS OVRL / SIG / BAK", "ceiling", f"{naturalness(neural)} (real, HiFi-GAN copy synthesis)")]


def similarity(clips: list, refs: list) -> dict:
    from voicetwin.eval.judges import similarity_report

    report = similarity_report(clips, refs)
    return {k: v.score for k, v in report.items()}


def russian_rows(voice, base: str | None, tag: str, lines: list[tuple[str, str]], out: Path,
                 vocoder: str | None = None) -> tuple[list, dict]:
    """The Russian speak rows for one system (a base synthesiser, with or without conversion into ``voice``)."""
    from voicetwin.audio.io import save_audio

    rows = []
    d = bench_duration(voice, lines, base, vocoder)
    rows.append(("ru --duration error, 20 lines at 0.8-1.25x", "<= 3%",
                 f"mean {100 * d['mean']:.2f}%, max {100 * d['max']:.2f}% ({tag})"))
    rows.append(("ru speak speed with --duration", "> 3x real time", f"{d['speed']:.1f}x ({tag})"))
    clips, s = bench_speak(voice, [t for _, t in lines], "ru", base, vocoder)
    rows.append(("ru speak speed, natural pace", "> 3x real time", f"{s['speed']:.1f}x ({tag})"))
    rows.append(("ru DNSMOS OVRL / SIG / BAK", ">= 3.1 OVRL", f"{naturalness(clips)} ({tag})"))
    sim: dict = {}
    if voice is not None or base:
        refs = [FESTVOX / "wav" / f"{uid}.wav" for uid, _ in lines]
        sim = similarity(clips, refs)
        rows.append(("ru GE2E / d-vector similarity", ">= 0.85 / >= 0.75",
                     " / ".join(f"{v:.3f}" for v in sim.values()) + f" ({tag})"))
    else:
        rows.append(("ru GE2E / d-vector similarity", ">= 0.85 / >= 0.75", "not measured: no --voice-ru"))
    folder = out / re.sub(r"\W+", "_", tag).strip("_")[:40]
    folder.mkdir(parents=True, exist_ok=True)
    for (uid, _), (audio, sr) in zip(lines[:3], clips):
        save_audio(folder / f"{uid}.wav", audio, sr)
    return rows, sim


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voice-ru", default=None, help="voice built from festvox-ru (without the held-out lines)")
    ap.add_argument("--voice-en", default=None, help="English voice")
    ap.add_argument("--refs-en", default=None, help="folder of real clips of the English voice's speaker")
    ap.add_argument("--out", default="out/bench_tts", help="where the song and samples are written")
    ap.add_argument("--model-ru", action="append", default=[],
                    help="acoustic model trained on festvox-ru (recipes/festvox_ru_tts); repeat to compare several")
    ap.add_argument("--model-en", action="append", default=[],
                    help="acoustic model trained on awb (recipes/awb_tts); repeat to compare several")
    ap.add_argument("--built-ru", default=None,
                    help="a voice built from festvox-ru by ingest + voice build alone; speaks with its own speech model")
    ap.add_argument("--built-en", default=None, help="an English voice built by ingest + voice build alone")
    ap.add_argument("--parts", default="ru,en,sing", help="which parts to run: ru, en, sing (comma-separated)")
    ap.add_argument("--lines", type=int, default=20, help="held-out festvox-ru lines (at most 20)")
    ap.add_argument("--en-lines", type=int, default=20, help=f"English sentences (at most {len(EN_LINES)})")
    ap.add_argument("--vocoder", choices=("world", "hifigan"), default="world", help="how speak and sing render")
    args = ap.parse_args()
    global VOCODER
    VOCODER = args.vocoder
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, str, str]] = []
    voice_ru, voice_en = load_voice(args.voice_ru), load_voice(args.voice_en)
    tag_ru = "espeak-ng + conversion" if voice_ru else "base espeak-ng, no conversion"

    parts = set(args.parts.split(","))
    held = festvox_heldout(args.lines)
    sims = {}
    if "ru" in parts:
        # espeak-ng (the default Russian base) + conversion; --base espeak so a model inside the voice is not used
        base_rows, sims[tag_ru] = russian_rows(voice_ru, "espeak" if voice_ru else None, tag_ru, held, out)
        rows += base_rows
        for model in args.model_ru:
            for suffix, vocoder in renders(model):
                tag_model = model_tag(model, args.model_ru) + suffix
                model_rows, sims[tag_model] = russian_rows(None, f"model:{model}", tag_model, held, out, vocoder)
                rows += model_rows
        if args.built_ru:
            for suffix, vocoder in renders(Path(args.built_ru) / "tts"):
                tag_built = "voice build, own speech model" + suffix
                built_rows, sims[tag_built] = russian_rows(load_voice(args.built_ru), None, tag_built, held, out,
                                                           vocoder)
                rows += built_rows
            rows += build_rows("ru", args.built_ru)
        rows += winner_row("ru", sims)
        rows += ceiling_rows(held)
    if "en" in parts:
        rows += english_rows(voice_en, args, out)
    if "sing" in parts:
        rows += singing_rows(voice_ru, tag_ru, held, out, args.model_ru[0] if args.model_ru else None)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure'.ljust(width)}  {'target':<18}  measured")
    for name, target, got in rows:
        print(f"{name.ljust(width)}  {target:<18}  {got}")
    return 0


def winner_row(language: str, sims: dict[str, dict]) -> list:
    """Which system wins on the judges: higher on both speaker encoders (or on their mean when they disagree)."""
    scored = {tag: sim for tag, sim in sims.items() if sim}
    if len(scored) < 2:
        return []
    best = max(scored, key=lambda tag: float(np.mean(list(scored[tag].values()))))
    both = all(scored[best][k] >= v for tag, sim in scored.items() for k, v in sim.items())
    return [(f"{language} winner on the judges", "", f"{best} ({'both judges' if both else 'mean of the judges'})")]


def english_rows(voice_en, args, out: Path) -> list:
    """The English sentences spoken by piper joe + conversion into --voice-en (``base="piper"``, so a model inside the
    voice is not used) and, with --model-en, by the trained model alone; WER, speed and similarity of each."""
    from voicetwin.audio.io import save_audio
    from voicetwin.eval.judges import wer_report

    lines = EN_LINES[: args.en_lines]
    systems = [("piper joe + conversion" if voice_en else "base piper joe, no conversion", voice_en, "piper", None)]
    for model in args.model_en:
        systems += [(model_tag(model, args.model_en) + suffix, None, f"model:{model}", vocoder)
                    for suffix, vocoder in renders(model)]
    if args.built_en:
        systems += [("voice build, own speech model" + suffix, load_voice(args.built_en), None, vocoder)
                    for suffix, vocoder in renders(Path(args.built_en) / "tts")]
    refs = sorted(Path(args.refs_en).glob("*.wav")) if args.refs_en else []
    rows, sims = [], {}
    for tag, voice, base, vocoder in systems:
        clips, s = bench_speak(voice, lines, "en", base, vocoder)
        wer = wer_report(list(zip(clips, lines)))
        rows.append(("en Whisper tiny.en WER", "<= 10%", f"{100 * wer['wer']:.1f}% ({tag})"))
        rows.append(("en speak speed, natural pace", "> 3x real time", f"{s['speed']:.1f}x ({tag})"))
        rows.append(("en DNSMOS OVRL / SIG / BAK", ">= 3.1 OVRL", f"{naturalness(clips)} ({tag})"))
        if refs and (voice is not None or base.startswith("model:")):
            sims[tag] = similarity(clips, refs)
            rows.append(("en GE2E / d-vector similarity", ">= 0.85 / >= 0.75",
                         " / ".join(f"{v:.3f}" for v in sims[tag].values()) + f" ({tag})"))
        else:
            rows.append(("en GE2E / d-vector similarity", ">= 0.85 / >= 0.75", f"not measured: no --refs-en ({tag})"))
        folder = out / "en" / re.sub(r"\W+", "_", tag).strip("_")[-40:]
        for i, (audio, sr) in enumerate(clips[:3]):
            save_audio(folder / f"en_{i:02d}.wav", audio, sr)
    if args.built_en:
        rows += build_rows("en", args.built_en)
    return rows + winner_row("en", sims)


def renders(model: str | Path) -> list[tuple[str, str | None]]:
    """How a trained speech model is spoken in the table: through --vocoder, and a model that predicts the neural
    vocoder's mel also through each vocoder by name -> ``[(tag suffix, vocoder or None for --vocoder)]``."""
    from voicetwin.synth.acoustic import AcousticModel, is_acoustic_model

    if not is_acoustic_model(model) or not AcousticModel.load(model).config.mel_bands:
        return [("", None)]
    return [(", WORLD", "world"), (", HiFi-GAN from its mel", "hifigan")]


def model_tag(model: str, models: list[str]) -> str:
    """A trained model's name in the table; with several, its folder too."""
    return "trained model, no conversion" + (f" {model}" if len(models) > 1 else "")


def build_rows(language: str, voice: str) -> list:
    """How the voice was built, from its report: the dataset, the speech model's share of it, the build time."""
    import json

    report = json.loads((Path(voice) / "report.json").read_text(encoding="utf-8"))
    speech = report.get("speech_model") or {}
    if not speech.get("built"):
        return [(f"{language} voice build", "", f"no speech model in {voice}: {speech.get('reason', 'not built')}")]
    left = sum(len(speech.get(k, [])) for k in ("left_out_doubtful_text", "left_out_unaligned", "left_out_no_phones"))
    return [(f"{language} voice build: dataset, speech model", "",
             f"{report['minutes']:.1f} min, {report['clips']} clips; speech model on {speech['minutes']:.1f} min "
             f"({speech['clips']} clips, {left} left out), {speech['steps']} steps"),
            (f"{language} voice build time (both models)", "<= 25 min for 30 min",
             f"{report['build_seconds'] / 60:.1f} min (conversion {report['conversion_seconds'] / 60:.1f}, "
             f"speech {speech['build_seconds'] / 60:.1f}){' (resumed)' if report.get('resumed') else ''}")]


def singing_rows(voice_ru, tag_ru: str, held: list[tuple[str, str]], out: Path, model_ru: str | None = None) -> list:
    """The song sung at the key it is written in (D4-D5) and in the voice's key (``transpose="auto"``: the
    median note moved to the voice's median speaking pitch), by espeak-ng (+ conversion into --voice-ru) and, with
    --model-ru, by the trained model (no conversion)."""
    from voicetwin.audio.io import save_audio
    from voicetwin.synth.sing import key_shift

    rows = []
    midi = write_midi(set_lyrics(song_score(), SONG_LYRICS, "ru"), out / "song.mid")
    score = read_score(midi)
    systems = [(tag_ru, voice_ru, "espeak" if voice_ru else None)]
    if model_ru:
        systems.append(("trained model, no conversion", None, f"model:{model_ru}"))
    keys = [("written key", 0)]
    if voice_ru is not None:
        keys.append((f"voice's key, auto = {key_shift(score, voice_ru.pitch.median_hz):+d}",
                     key_shift(score, voice_ru.pitch.median_hz)))
    refs = [FESTVOX / "wav" / f"{uid}.wav" for uid, _ in held]
    for tag, voice, base in systems:
        for key, shift in keys:
            t0 = time.perf_counter()
            audio, sr = sing(voice, score, SingOptions(language="ru", base=base, transpose=shift, vocoder=VOCODER))
            wall = time.perf_counter() - t0
            save_audio(out / f"song_{re.sub(r'[^a-z]+', '_', tag)[:24]}_{shift:+d}.wav", audio, sr)
            sung = read_score(midi, transpose=shift)
            p = pitch_and_onsets(audio, sr, sung)
            label = f"{tag}; {key}"
            rows.append(("sing: median |pitch error| on voiced frames", "<= 20 cents",
                         f"{p['median_cents']:.1f} cents (voiced {100 * p['voiced']:.0f}% of note frames, "
                         f"{100 * p['octave_errors']:.1f}% octave errors; {label})"))
            rows.append(("sing: note onsets", "within 30 ms",
                         f"median {p['onset_median_ms']:.0f} ms, 90th pct {p['onset_p90_ms']:.0f} ms, "
                         f"{100 * p['onsets_within_30ms']:.0f}% of {p['onsets']} within 30 ms (first frame within "
                         f"50 cents: {100 * p['single_frame_within_30ms']:.0f}%; {label})"))
            rows.append((f"sing speed (song of {score.seconds:.0f} s)", "> 3x real time",
                         f"{len(audio) / sr / wall:.1f}x ({label})"))
            rows.append(("sing DNSMOS OVRL / SIG / BAK", ">= 3.0 OVRL", f"{naturalness([(audio, sr)])} ({label})"))
            if voice is not None or base.startswith("model:"):
                sim = similarity([(audio, sr)], refs)
                rows.append(("sing GE2E / d-vector similarity", ">= 0.80 (GE2E)",
                             " / ".join(f"{v:.3f}" for v in sim.values()) + f" ({label})"))
            else:
                rows.append(("sing GE2E similarity", ">= 0.80", f"not measured: no --voice-ru ({label})"))
    return rows


if __name__ == "__main__":
    sys.exit(main())
