"""The ``voicetwin`` command line: thin subcommands over the library functions.

Errors raised on purpose (``VoiceTwinError``) print one line on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from . import __version__
from .errors import VoiceTwinError
from .files import check_output_path


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


# Each ``_add_*`` function adds one subcommand (or group) and sets ``func`` on its parser.
# ``func(args) -> int`` returns the exit code.


def _add_ingest(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ingest",
        help="turn archive recordings into a clean dataset of one person's voice",
        description=(
            "Find speech in audio or video files, cut it into 1-15 s clips at natural pauses, measure each clip's "
            "quality, keep the target speaker's clips (matched against --reference clips, or the dominant speaker) "
            "and write DATASET/clips/*.wav, DATASET/manifest.jsonl and DATASET/report.json. Re-running resumes; "
            "sources are never modified."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="audio/video files or folders")
    p.add_argument("--out", "-o", required=True, metavar="DATASET", help="dataset directory to write")
    p.add_argument("--reference", nargs="+", default=[], metavar="CLIP",
                   help="clips (or folders) of the target person; without them the dominant speaker is kept")
    p.add_argument("--language", default=None, help="language code of the speech (ru, en, ...)")
    p.add_argument("--transcripts", default=None, metavar="FILE",
                   help="transcripts: JSONL/TSV of clip id or 'source start end' to text, or festival txt.done.data")
    p.add_argument("--asr", default=None, metavar="MODEL",
                   help="transcribe kept clips with a faster-whisper model name or path (whisper-tiny.en works offline)")
    p.add_argument("--denoise", action="store_true", help="denoise kept clips (DeepFilterNet3, 48 kHz)")
    p.add_argument("--threshold", type=float, default=None,
                   help="speaker similarity needed to keep a clip (default: chosen from the references)")
    p.add_argument("--encoder", default="ge2e", help="speaker encoder name or directory")
    p.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                   help="sample rate of the written clips (default: each source's own rate)")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(func=_run_ingest)


def _run_ingest(args: argparse.Namespace) -> int:
    from .ingest.pipeline import IngestOptions, ingest

    check_output_path(args.out, directory=True)  # before any work
    options = IngestOptions(
        language=args.language,
        denoise=args.denoise,
        threshold=args.threshold,
        encoder=args.encoder,
        asr_model=args.asr,
        sample_rate=args.sample_rate,
    )
    report = ingest(args.sources, args.out, references=args.reference, transcripts=args.transcripts,
                    options=options, progress=not args.json)
    if args.json:
        _print_json(report)
    else:
        print(report_summary(report))
    return 0


def report_summary(report: dict) -> str:
    lines = [
        f"found {report['minutes_found']:.1f} min of speech in {report['sources']} source(s); "
        f"kept {report['minutes_kept']:.1f} min in {report['clips_kept']} clips",
    ]
    for reason, minutes in sorted(report.get("minutes_rejected_by_reason", {}).items()):
        lines.append(f"  rejected {minutes:6.2f} min: {reason}")
    lines.append(f"dataset: {report['dataset']}")
    return "\n".join(lines)


def _add_output_rate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sample-rate", type=int, default=None, metavar="HZ",
                   help="sample rate of the written audio, 16000 or more (default: the voice's rate, 16000 for the "
                        "voices 'voice build' makes, else the base synthesiser's); every generated line is "
                        "levelled to -23 LUFS integrated (EBU R128), true peaks at most -1 dBTP")


def _level(result) -> str:
    """``16000 Hz, -23.0 LUFS``: the rate and measured loudness of a written render."""
    from .audio.io import loudness_lufs

    return f"{result.sample_rate} Hz, {loudness_lufs(result.audio, result.sample_rate):.1f} LUFS"


def _add_vocoder(p: argparse.ArgumentParser) -> None:
    p.add_argument("--vocoder", choices=("auto", "world", "hifigan"), default="auto",
                   help="auto: what predicts the universal HiFi-GAN's mel renders through it at 22050 Hz (a voice's "
                        "speech model; speech conversion through a voice built with a mel decoder), the rest through "
                        "WORLD (singing; older voices); world: WORLD throughout; hifigan: HiFi-GAN throughout (singing "
                        "through the mel decoder, and WORLD output of voices without one rendered again)")


def _add_speak(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "speak",
        help="say new lines in a voice (text to speech, then conversion into the voice)",
        description=(
            "Speak text with a base synthesiser (piper joe for English, espeak-ng for other languages, or --base) "
            "and convert it into the voice. Numbers, dates and abbreviations are spelled out; Russian stress can be "
            "marked with '+' before the stressed vowel. --duration fits the line to an exact length by changing "
            "phone and pause durations in synthesis."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--voice", default=None, help="voice directory (omit to hear the base synthesiser alone)")
    text = p.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", help="the line to say")
    text.add_argument("--text-file", metavar="FILE", help="UTF-8 file with the text to say")
    p.add_argument("--language", default=None, help="ru, en, ... (default: the voice's, else guessed from the text)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="length of the line, exact to the sample (paced in synthesis to within 1%%, then the "
                        "silence at its ends padded or trimmed)")
    p.add_argument("--rate", type=float, default=1.0, help="pace multiplier (1.2 = 20%% faster)")
    p.add_argument("--base", default=None,
                   help="base synthesiser: piper, piper:VOICE.onnx, espeak[:VOICE], festival[:VOICE], or model:DIR "
                        "(an acoustic model trained on the voice's recordings; used by default when VOICE/tts holds one; "
                        "without --voice, DIR must hold a consent.json covering the use, as the training recipes write)")
    p.add_argument("--production", default=None, metavar="NAME",
                   help="the production the line is for (required when the voice's consent names productions)")
    _add_vocoder(p)
    p.add_argument("--out", "-o", required=True, metavar="OUT", help="audio file to write")
    _add_output_rate(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run_speak)


def _run_speak(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import InputError, InputNotFoundError
    from .production.render import RenderRequest, render_file
    from .synth.speak import SpeakOptions

    if args.text_file:
        path = Path(args.text_file)
        if not path.exists():
            raise InputNotFoundError("text file not found", path=path)
        try:
            line = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError("the text file is not UTF-8", path=path) from exc
    else:
        line = args.text
    options = SpeakOptions(language=args.language, base=args.base, duration=args.duration, rate=args.rate,
                           production=args.production, vocoder=args.vocoder)
    result = render_file(RenderRequest("text", line, args.voice, options, args.production,
                                       sample_rate=args.sample_rate), args.out,
                         extra={"command": "speak", "text_file": args.text_file})
    summary = {"output": str(args.out), "seconds": round(len(result.audio) / result.sample_rate, 3),
               "sample_rate": result.sample_rate, "requested_seconds": args.duration, "voice": args.voice,
               "provenance": str(result.provenance)}
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote {args.out}: {summary['seconds']:.2f} s, {_level(result)}")
    return 0


def _add_sing(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sing",
        help="sing a melody with lyrics in a voice",
        description=(
            "Sing a MIDI (lyric meta events) or MusicXML score in the voice: syllables on notes with melisma, "
            "consonants before the beat, vibrato, glides between notes and breaths at rests; then convert into the "
            "voice in singing mode (a voice with its own trained model in VOICE/tts sings with it directly, each "
            "phone drawn at the length the song holds it). --lyrics replaces the score's lyrics (hyphens split syllables, '_' holds)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--voice", default=None, help="voice directory (omit to hear the base synthesiser alone)")
    p.add_argument("--score", required=True, help="SONG.mid or SONG.musicxml")
    p.add_argument("--lyrics", default=None, help="lyrics to sing instead of the score's")
    p.add_argument("--language", default=None, help="ru, en, ... (default: guessed from the lyrics)")
    p.add_argument("--tempo", type=float, default=None, metavar="BPM", help="tempo replacing the score's")
    p.add_argument("--transpose", type=_transpose_arg, default=0.0, metavar="N|auto",
                   help="semitones to move the melody; auto: the key where the voice speaks (its median pitch)")
    p.add_argument("--base", default=None, help="base synthesiser (as for speak)")
    p.add_argument("--vibrato", type=float, default=30.0, metavar="CENTS", help="vibrato depth on long notes")
    p.add_argument("--production", default=None, metavar="NAME",
                   help="the production the song is for (required when the voice's consent names productions)")
    _add_vocoder(p)
    p.add_argument("--out", "-o", required=True, metavar="OUT", help="audio file to write")
    _add_output_rate(p)
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    p.set_defaults(func=_run_sing)


def _run_sing(args: argparse.Namespace) -> int:
    from .production.render import RenderRequest, render_file
    from .synth.sing import SingOptions, read_score

    check_output_path(args.out)  # before any work
    options = SingOptions(language=args.language, base=args.base, tempo=args.tempo, transpose=args.transpose,
                          vibrato_cents=args.vibrato, production=args.production, vocoder=args.vocoder)
    score = read_score(args.score, lyrics=args.lyrics, language=args.language)
    result = render_file(RenderRequest("score", args.score, args.voice, options, args.production, lyrics=args.lyrics,
                                       sample_rate=args.sample_rate), args.out, extra={"command": "sing"})
    shift = result.report.get("transpose_semitones")
    summary = {"output": str(args.out), "seconds": round(len(result.audio) / result.sample_rate, 3),
               "sample_rate": result.sample_rate, "notes": len(score.notes), "voice": args.voice,
               "transpose_semitones": shift, "provenance": str(result.provenance)}
    if args.transpose == "auto" and shift is not None:
        print(f"voicetwin: transpose auto: {shift:+g} semitones (the song's median note to the "
              f"{'voice' if args.voice else 'base voice'}'s median speaking pitch)", file=sys.stderr)
    if args.json:
        _print_json(summary)
    else:
        print(f"wrote {args.out}: {summary['seconds']:.2f} s, {summary['notes']} notes, {_level(result)}")
    return 0


def _add_watermark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "watermark",
        help="embed or detect voicetwin's inaudible audio watermark",
        description="Every file voicetwin generates carries an inaudible watermark with a voice id and a render id. "
        "'embed' marks your own material; 'detect' reports presence, payload and confidence "
        "(exit code 0: found, 1: not found, 2: error).",
    )
    wsub = p.add_subparsers(dest="watermark_command", metavar="ACTION", required=True)
    e = wsub.add_parser("embed", help="watermark an audio file", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    e.add_argument("input", metavar="IN", help="audio file (or a video's audio track)")
    e.add_argument("--out", "-o", required=True, metavar="OUT", help="output audio file (wav, flac, mp3, m4a)")
    e.add_argument("--voice-id", required=True, help="voice id (an integer below 65536 is kept, text is hashed)")
    e.add_argument("--render-id", default=None, help="render id (integer below 2**24 kept, text hashed; default: new)")
    e.add_argument("--key", default=None, help="watermark key (default: voicetwin's public key)")
    e.add_argument("--no-provenance", action="store_true", help="do not write OUT.provenance.json")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.set_defaults(func=_run_watermark_embed)
    d = wsub.add_parser("detect", help="look for a watermark in an audio or video file")
    d.add_argument("file", metavar="FILE")
    d.add_argument("--key", default=None, help="watermark key (default: voicetwin's public key)")
    d.add_argument("--json", action="store_true", help="print {detected, payload, confidence, ...} as JSON")
    d.set_defaults(func=_run_watermark_detect)


def _run_watermark_embed(args: argparse.Namespace) -> int:
    from .production.provenance import new_render_id, write_provenance
    from .production.watermark import DEFAULT_KEY, embed_file, payload_for

    check_output_path(args.out)  # before any work
    key = args.key or DEFAULT_KEY
    render_id = args.render_id or new_render_id()
    payload = payload_for(args.voice_id, render_id)
    out, snr = embed_file(args.input, args.out, payload, key=key)
    result = {"output": str(out), "voice_id": args.voice_id, "render_id": render_id, "payload": payload.to_dict(),
              "snr_db": round(snr, 2)}
    if not args.no_provenance:
        result["provenance"] = str(write_provenance(
            out, inputs=[args.input], voice_id=args.voice_id, render_id=render_id,
            extra={"watermark": {**payload.to_dict(), "key": "default" if key == DEFAULT_KEY else "custom"}}))
    if args.json:
        _print_json(result)
    else:
        print(f"wrote {out} (payload {payload.hex}, render id {render_id}, SNR {result['snr_db']:.1f} dB)")
    return 0


def _run_watermark_detect(args: argparse.Namespace) -> int:
    from .production.watermark import DEFAULT_KEY, detect_file

    found = detect_file(args.file, key=args.key or DEFAULT_KEY)
    result = {"file": str(args.file), **found.to_dict()}
    if args.json:
        _print_json(result)
    elif found.detected:
        print(f"{args.file}: watermark found, payload {found.payload.hex} (voice {found.payload.voice}, render "
              f"{found.payload.render}), confidence {found.confidence:.6f}, crc {'ok' if found.crc_ok else 'bad'}")
    else:
        print(f"{args.file}: no watermark found (score {found.score:.2f})")
    return 0 if found.detected else 1


def _add_consent(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "consent",
        help="record or check the consent that goes with a voice",
        description="A voice directory carries consent.json: who agreed (the person, or the estate / heirs of a "
        "late person), the scope (speech, singing, named productions), expiry and the signed document's reference.",
    )
    csub = p.add_subparsers(dest="consent_command", metavar="ACTION", required=True)
    c = csub.add_parser("create", help="write VOICE_DIR/consent.json")
    c.add_argument("voice_dir", metavar="VOICE_DIR")
    c.add_argument("--subject", required=True, help="the person whose voice is recreated")
    c.add_argument("--granted-by", default=None, help="who signed (default: the subject; the estate or heirs' names "
                   "for a late person)")
    c.add_argument("--relation", default="self", choices=["self", "estate", "heirs"])
    c.add_argument("--scope", nargs="+", default=["speech"], choices=["speech", "singing"])
    c.add_argument("--production", nargs="+", default=[], metavar="NAME",
                   help="productions covered (default: any production)")
    c.add_argument("--expires", default=None, metavar="YYYY-MM-DD", help="last valid day (default: no expiry)")
    c.add_argument("--document", required=True, help="reference of the signed consent document")
    c.add_argument("--notes", default="")
    c.add_argument("--force", action="store_true", help="replace an existing record")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_run_consent_create)
    k = csub.add_parser("check", help="check that a use of a voice is covered (exit 0) or refused (exit 2)")
    k.add_argument("voice_dir", metavar="VOICE_DIR")
    k.add_argument("--use", default="speech", choices=["build", "speech", "singing", "dub"])
    k.add_argument("--production", default=None, metavar="NAME")
    k.add_argument("--json", action="store_true")
    k.set_defaults(func=_run_consent_check)


def _run_consent_create(args: argparse.Namespace) -> int:
    import datetime as dt

    from .consent import ConsentRecord, consent_path, save_consent
    from .errors import ConsentError

    path = check_output_path(consent_path(args.voice_dir))  # before any work
    if args.relation != "self" and not args.granted_by:
        raise ConsentError(f"relation '{args.relation}' needs --granted-by (the estate's or heirs' names)")
    record = ConsentRecord(subject=args.subject, granted_by=args.granted_by or args.subject, relation=args.relation,
                           scope=tuple(args.scope), productions=tuple(args.production), expires=args.expires,
                           document=args.document, notes=args.notes)
    today = dt.datetime.now(dt.timezone.utc).date()
    if record.expiry_date is not None and record.expiry_date < today:
        raise ConsentError(f"--expires {args.expires} is in the past, so the record would refuse every use",
                           fix=f"give the last day the signed consent is valid, {today.isoformat()} or later")
    if path.exists() and not args.force:
        raise ConsentError("a consent record already exists", path=path,
                           fix="add --force to replace it, or 'voicetwin consent check' to see what it covers")
    path = save_consent(args.voice_dir, record, overwrite=args.force)
    if args.json:
        _print_json({"path": str(path), **record.to_dict()})
    else:
        print(f"wrote {path}")
    return 0


def _run_consent_check(args: argparse.Namespace) -> int:
    from .consent import check_consent, consent_reference

    record = check_consent(args.voice_dir, use=args.use, production=args.production)
    if args.json:
        _print_json({"allowed": True, "use": args.use, "production": args.production, **consent_reference(record)})
    else:
        print(f"{args.use} with {record.subject}'s voice is covered by the consent of {record.granted_by} "
              f"({record.document})")
    return 0


def _add_voice(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("voice", help="build a voice from a dataset of the target person",
                       description="Build a voice from a dataset of the target person "
                                   "('voicetwin voice build DATASET --out VOICE'), or add a content-matching index to "
                                   "one ('voicetwin voice add-index').")
    vsub = p.add_subparsers(dest="voice_command", metavar="ACTION")
    b = vsub.add_parser(
        "build",
        help="build a voice from an ingested dataset",
        description=(
            "Train a voice on an ingested dataset of the target (5 to 120+ minutes; more is better). "
            "With --performer, the relative's dataset is used too: lines with the same text are aligned and "
            "learnt as parallel examples, and the performer's pitch range is stored for speech-mode mapping. "
            "A voice is built only on a valid consent record: VOICE/consent.json ('voicetwin consent create "
            "VOICE ...' first) or --consent FILE.json."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    b.add_argument("dataset", metavar="DATASET", help="dataset directory (from 'voicetwin ingest')")
    b.add_argument("--out", "-o", required=True, metavar="VOICE", help="voice directory to write")
    b.add_argument("--performer", default=None, metavar="DATASET", help="dataset of the performer's recordings")
    b.add_argument("--content", default="whisper-tiny.en", metavar="NAME_OR_PATH",
                   help="content features: whisper-tiny.en, whisper-base, wakehubert, mfcc, or a WavLM/HuBERT hub "
                        "name or local directory")
    b.add_argument("--steps", type=int, default=3000, help="training steps of the conversion model")
    b.add_argument("--augment", type=int, default=2, help="pitch/formant-perturbed copies of the target audio")
    b.add_argument("--speech-steps", type=int, default=900,
                   help="training steps of the speech model (trained when the dataset's clips have text)")
    b.add_argument("--no-speech-model", action="store_true",
                   help="do not train the speech model even when the clips have text")
    b.add_argument("--no-mel-decoder", action="store_true",
                   help="envelopes only: conversion then renders through WORLD (a faster build; the mel decoder "
                        "trained beside the envelope network lets speech conversion render through HiFi-GAN)")
    b.add_argument("--mel-prior", default="auto", metavar="NAME|DIR|none",
                   help="where the mel decoder starts: 'auto' (default) the decoder learnt on another speaker that "
                        "ships with voicetwin (mel-prior-rms), when it fits the content features; 'none' random "
                        "weights; or a registered name or a directory written by recipes/mel_prior")
    b.add_argument("--min-text-confidence", type=float, default=0.5, metavar="P",
                   help="clips transcribed by a recogniser (ingest --asr) with a lower confidence (0-1) are left out "
                        "of the speech model (not of the conversion model)")
    b.add_argument("--max-train-seconds", type=float, default=None, metavar="S",
                   help="stop each training after this long (default: train all steps, so the same dataset always "
                        "gives the same voice)")
    b.add_argument("--seed", type=int, default=0, help="random seed of both trainings")
    b.add_argument("--resume", action="store_true",
                   help="continue an interrupted build of the same dataset and options (from VOICE/.build)")
    b.add_argument("--consent", default=None, metavar="FILE.json",
                   help="the consent record to build on (a JSON file from 'voicetwin consent create', or a folder "
                        "holding consent.json); it is copied into VOICE. Default: VOICE/consent.json, which must "
                        "exist ('voicetwin consent create VOICE ...' first)")
    b.add_argument("--json", action="store_true", help="print the build report as JSON on stdout")
    b.set_defaults(func=_run_voice_build)
    ix = vsub.add_parser("add-index", help="add the content-matching index to a voice built without one",
                         description="Write VOICE/index.safetensors (for --strategy match) from the voice's dataset.")
    ix.add_argument("voice", metavar="VOICE", help="voice directory")
    ix.add_argument("--dataset", default=None, metavar="DATASET", help="default: the dataset the voice was built from")
    ix.set_defaults(func=_run_voice_add_index)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _run_voice_add_index(args: argparse.Namespace) -> int:
    from .voice.model import Voice

    check_output_path(args.voice, directory=True)  # before any work
    voice = Voice.load(args.voice)
    print(f"index written: {voice.add_index(args.dataset, progress=True)} ({voice.index['content'].shape[0]} frames)")
    return 0


def _run_voice_build(args: argparse.Namespace) -> int:
    from .production.build import build_voice
    from .voice.model import BuildOptions

    check_output_path(args.out, directory=True)  # before any work
    options = BuildOptions(content=args.content, steps=args.steps, augment=args.augment,
                           speech_model=not args.no_speech_model, speech_steps=args.speech_steps,
                           mel_bands=0 if args.no_mel_decoder else 80, mel_prior=args.mel_prior,
                           min_text_confidence=args.min_text_confidence, max_train_seconds=args.max_train_seconds,
                           seed=args.seed)
    log = None if args.json else (lambda msg: print(msg, file=sys.stderr))
    voice = build_voice(args.dataset, args.out, options, performer=args.performer, progress=not args.json, log=log,
                        consent=args.consent, resume=args.resume)
    report = json.loads((voice.path / "report.json").read_text(encoding="utf-8"))
    if args.json:
        _print_json({"voice": str(voice.path), **report})
        return 0
    print(f"voice {voice.path}: {report['minutes']:.1f} min of target audio, pitch median "
          f"{report['pitch_median_hz']} Hz, built in {report['build_seconds']:.0f} s")
    speech = report["speech_model"]
    if speech["built"]:
        print(f"speech model {voice.path / speech['path']}: {speech['minutes']:.1f} min of {speech['language']} text "
              f"({len(speech['left_out_doubtful_text'])} clips with doubtful text left out); speak uses it")
    else:
        print(f"no speech model ({speech['reason']}): {speech.get('speech', '')}" +
              (f"\n  to add one: {speech['fix']}" if speech.get("fix") else ""))
    return 0


def _transpose_arg(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError("expected a number of semitones or 'auto'") from exc


def _add_convert(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="convert a performer's speech or singing into a voice",
        description=(
            "Convert recordings of a performer into the voice. Speech mode maps intonation into the voice's "
            "range; singing mode keeps every note after --transpose (auto: the shift that suits the voice). "
            "Timing, breaths and dynamics are kept. OUT is a folder (one OUT/<name>.wav per input; existing "
            "outputs are skipped so a batch resumes) or, for a single input, a file name. The voice's consent record "
            "must cover the mode (speech or singing); every output is watermarked and gets a provenance sidecar "
            "(OUT.provenance.json)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="audio/video files or folders")
    p.add_argument("--voice", required=True, metavar="VOICE", help="voice directory (from 'voicetwin voice build')")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="output folder, or file for one input")
    p.add_argument("--mode", choices=("speech", "singing"), default="speech")
    p.add_argument("--transpose", type=_transpose_arg, default=None, metavar="SEMITONES|auto",
                   help="semitones to shift the pitch (singing), or auto")
    p.add_argument("--retrieval", type=float, default=0.0, metavar="0..1",
                   help="blend the predicted envelope with its 4 nearest real envelopes of the voice")
    p.add_argument("--strategy", choices=("network", "match"), default="network",
                   help="envelope from the voice's network, or from the target's frames nearest in content")
    p.add_argument("--energy", choices=("performer", "target", "phrase"), default=None,
                   help="frame energy: the performance's, the new envelope's, or the performance's dynamics over "
                        "about a second with the new envelope's level within (default: target in speech, phrase "
                        "in singing)")
    p.add_argument("--f0-method", choices=("dio", "harvest", "dio+swift", "fcpe", "fcpe+swift"), default=None,
                   help="pitch tracker (default: dio in speech; in singing the FCPE network, with SwiftF0 where it "
                        "hears no pitch)")
    p.add_argument("--production", default=None, metavar="NAME",
                   help="the production the outputs are for (required when the voice's consent names productions)")
    _add_vocoder(p)
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    _add_output_rate(p)
    p.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    p.set_defaults(func=_run_convert)


def _run_convert(args: argparse.Namespace) -> int:
    from .production.render import convert_files
    from .voice.model import ConvertOptions, Voice

    options = ConvertOptions(mode=args.mode, transpose=args.transpose, retrieval=args.retrieval,
                             strategy=args.strategy, energy=args.energy, f0_method=args.f0_method,
                             vocoder=args.vocoder)
    voice = Voice.load(args.voice)
    results = convert_files(voice, args.inputs, args.out, options, progress=not args.json, overwrite=args.overwrite,
                            production=args.production, sample_rate=args.sample_rate)
    if args.json:
        _print_json(results)
    else:
        for r in results:
            state = "kept existing" if r.get("skipped") else (
                f"{r['seconds']:.1f} s, {r['sample_rate']} Hz, {r['loudness_lufs']:.1f} LUFS, "
                f"{r['real_time_factor']:.1f}x real time")
            print(f"{r['input']} -> {r['output']} ({state})")
    return 0


def _add_lipsync(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "lipsync",
        help="measure and fix lip-sync: score, align new audio, re-render the mouth",
        description="Lip-sync between a face on screen and a voice track. Run 'voicetwin lipsync ACTION --help'.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    fmt = argparse.ArgumentDefaultsHelpFormatter

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("video", metavar="VIDEO", help="video file with a visible face")
        q.add_argument("--face", type=int, default=None, metavar="INDEX",
                       help="face to use, numbered from the left from 0 (default: the one that speaks)")
        q.add_argument("--landmarks", default="mediapipe", choices=["mediapipe", "dlib"], help="landmark model")
        q.add_argument("--json", action="store_true", help="print the result as JSON on stdout")

    q = actions.add_parser("score", formatter_class=fmt, help="audio-video offset (ms) and confidence",
                           description="SyncNet-protocol offset between the mouth and the audio, per shot and for "
                                       "the whole video. Positive offset_ms: the audio lags the picture.")
    common(q)
    q.add_argument("--audio", default=None, metavar="AUDIO", help="score this audio instead of the video's own")
    q.set_defaults(func=_run_lipsync_score)

    q = actions.add_parser("align", formatter_class=fmt, help="shift new audio so it matches the visible mouth",
                           description="Shift the new audio phrase by phrase (never the picture) to match the mouth "
                                       "movement, write VIDEO's picture with it, and report the residual offset.")
    common(q)
    q.add_argument("--audio", required=True, metavar="AUDIO", help="the new audio track")
    q.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    q.add_argument("--max-shift", type=float, default=700.0, metavar="MS",
                   help="largest shift of any phrase (a wider search risks false matches a syllable away)")
    q.set_defaults(func=_run_lipsync_align)

    q = actions.add_parser("render", formatter_class=fmt, help="re-render the mouth to new words",
                           description="Re-render the mouth region to the new audio from the face's own mouth images "
                                       "in VIDEO; pixels outside the mouth region are left untouched.")
    common(q)
    q.add_argument("--audio", required=True, metavar="AUDIO", help="the new audio track")
    q.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    q.set_defaults(func=_run_lipsync_render)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _run_lipsync_score(args: argparse.Namespace) -> int:
    from .video.lipsync import SyncOptions, score

    report = score(args.video, args.audio, SyncOptions(landmarker=args.landmarks, face=args.face),
                   progress=not args.json)
    if args.json:
        _print_json(report.to_dict())
        return 0
    o = report.overall
    print(f"offset {o.offset_ms:+.0f} ms ({o.offset_frames:+.2f} frames; positive: audio late), "
          f"confidence {o.confidence:.3f}, face {report.face}")
    for s in report.shots:
        print(f"  frames {s.start:6d}-{s.end:6d}: offset {s.offset_ms:+.0f} ms, confidence {s.confidence:.3f}")
    return 0


def _run_lipsync_align(args: argparse.Namespace) -> int:
    from .video.lipsync import AlignOptions, SyncOptions, align

    check_output_path(args.output)  # before any work
    result = align(args.video, args.audio, args.output, AlignOptions(max_shift_ms=args.max_shift),
                   SyncOptions(landmarker=args.landmarks, face=args.face), progress=not args.json)
    if args.json:
        _print_json(result.to_dict())
        return 0
    print(f"offset {result.offset_before_ms:+.0f} ms -> residual {result.offset_after_ms:+.0f} ms "
          f"({len(result.phrases)} phrases); wrote {result.output}")
    return 0


def _run_lipsync_render(args: argparse.Namespace) -> int:
    from .video.lipsync import RenderOptions, render

    check_output_path(args.output)  # before any work
    result = render(args.video, args.audio, args.output, RenderOptions(landmarker=args.landmarks, face=args.face),
                    progress=not args.json)
    if args.json:
        _print_json(result.to_dict())
        return 0
    print(f"re-rendered the mouth in {result.rendered} of {result.frames} frames from a library of "
          f"{result.library} mouths ({result.identities} people); wrote {result.output}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="open the producers' web demo (Gradio) on this machine",
        description=(
            "Serve the step-by-step web demo: create a voice project with its consent record, process archive "
            "recordings, build the voice, render takes, lines and songs, lip-sync a clip and dub a scene. Long jobs "
            "run in the background and their state is kept in the project folder. Listens on 127.0.0.1 (this "
            "machine only) unless --host says otherwise; needs the 'demo' extra (pip install 'voicetwin[demo]')."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--project-dir", default="voicetwin-projects", metavar="DIR", help="folder of voice projects")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: the whole network)")
    p.add_argument("--port", type=int, default=None, help="port; None: 7860, or the next free one")
    p.add_argument("--password", default=None,
                   help="ask for this password before showing the page (also read from VOICETWIN_DEMO_PASSWORD)")
    p.set_defaults(func=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    import os

    from .errors import require

    check_output_path(args.project_dir, directory=True)  # before any work
    require("gradio", "demo", "the web demo")
    password = args.password or os.environ.get("VOICETWIN_DEMO_PASSWORD") or None
    if args.host not in ("127.0.0.1", "localhost", "::1") and not password:
        print(f"voicetwin: warning: the demo is open to anyone who can reach {args.host}; set --password",
              file=sys.stderr)
    from .demo.app import launch

    launch(args.project_dir, args.host, args.port, password)
    return 0


def _add_dub(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dub",
        help="dub film scenes: render every line, fit it to its slot, mix over the M&E, deliver",
        description=(
            "Render each line of SCENE.yaml (performer recordings converted, text spoken, scores sung), fit it to "
            "its slot (re-synthesised at the slot's length, or time-stretched up to the scene's max_stretch, "
            "borrowing from the following gap; never cut), mix it over the music-and-effects stem with ducking, "
            "normalise to EBU R128 with a true-peak ceiling, and write dialogue.wav, music_effects.wav, mix.wav, "
            "mix.mp4, subtitles.srt/.ass and report.json into OUTDIR (OUTDIR/<scene name>/ for several scenes). "
            "Lines are cached by a hash of their inputs: --resume renders only missing or changed lines."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("scenes", nargs="+", metavar="SCENE", help="scene files (YAML; schema in the README)")
    p.add_argument("--out", "-o", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--workers", type=int, default=1, help="lines rendered at once (worker processes or Ray CPUs)")
    p.add_argument("--resume", action="store_true", help="reuse cached lines whose inputs are unchanged")
    p.add_argument("--only", nargs="+", default=[], metavar="LINE_ID",
                   help="render just these lines afresh; the mix is rebuilt when all other lines are cached")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="local worker processes, or Ray (a local instance, or the cluster at --ray-address)")
    p.add_argument("--ray-address", default=None, help="address of a running Ray cluster (default: $RAY_ADDRESS)")
    p.add_argument("--no-video", action="store_true", help="do not write the MP4")
    p.add_argument("--max-shift", type=float, default=None, metavar="MS",
                   help="most a 'lipsync: align' line is moved to meet the mouth (default: the scene's "
                        "lipsync_max_shift, 400 ms)")
    p.add_argument("--json", action="store_true", help="print the report(s) as JSON on stdout")
    p.set_defaults(func=_run_dub)


def _run_dub(args: argparse.Namespace) -> int:
    from .production.dub import DubOptions, ProgressBars, dub

    check_output_path(args.out, directory=True)  # before any work
    options = DubOptions(workers=args.workers, executor=args.executor, resume=args.resume, only=tuple(args.only),
                         ray_address=args.ray_address, mux_video=not args.no_video,
                         max_shift=None if args.max_shift is None else args.max_shift / 1000)
    bars = ProgressBars(enabled=not args.json)
    try:
        result = dub(args.scenes if len(args.scenes) > 1 else args.scenes[0], args.out, options, on_event=bars)
    finally:
        bars.close()
    reports = result if isinstance(result, list) else [result]
    if args.json:
        _print_json(result)
        return 0
    for report in reports:
        s = report.get("summary")
        if not s:
            print(f"{report['name']}: lines rendered; mix not rebuilt (missing: {', '.join(report['missing'])})")
            continue
        print(f"{report['name']}: {s['lines']} lines, {s['within_max_stretch']} within the stretch cap, "
              f"max onset error {s['max_abs_onset_error_ms']:.1f} ms, {s['integrated_loudness']:.1f} LUFS "
              f"(target {s['loudness_target']:.0f}), true peak {s['true_peak_dbtp']:.1f} dBTP")
        for row in report["lines"]:
            for warning in row.get("warnings", []):
                print(f"  {row['id']}: {warning}")
        if s["cannot_fit"]:
            print(f"  lines that cannot fit their slot: {', '.join(s['cannot_fit'])}")
    return 0


def _add_similarity(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "similarity",
        help="cosine similarity of two voices",
        description=(
            "Compare two voices with a speaker encoder. A and B are clips, folders of clips or datasets; a folder "
            "or dataset is enrolled as one profile (the normalised mean of its clip embeddings). A dataset's "
            "profile is kept next to its manifest (speaker_profile.ENCODER.json) and enrolled again only when its "
            "kept clips change."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("a", metavar="A", help="clip, folder or dataset")
    p.add_argument("b", metavar="B", nargs="?", help="clip, folder or dataset (or give --profile instead)")
    p.add_argument("--profile", metavar="FILE",
                   help="B's saved profile instead of B: a .npy file of one embedding made with the same encoder "
                        "(e.g. the quickstart's profile.npy) or a dataset's speaker_profile.*.json")
    p.add_argument("--encoder", default="ge2e", help="speaker encoder name or directory (e.g. from 'speaker finetune')")
    p.add_argument("--json", action="store_true", help='print {"similarity": ...} as JSON')
    p.set_defaults(func=_run_similarity)


def _run_similarity(args: argparse.Namespace) -> int:
    """A dataset's profile is cached next to its manifest (``speaker.profile``): scoring a clip against it again
    embeds the clip only."""
    import torch

    from .errors import InputError
    from .eval.judges import clip_paths
    from .manifest import is_dataset
    from .speaker.encoder import SpeakerEncoder
    from .speaker.profile import dataset_profile, load_profile

    if (args.b is None) == (args.profile is None):
        raise InputError("give B or --profile, not both" if args.b else "nothing to compare A with",
                         fix="voicetwin similarity A B, or voicetwin similarity A --profile FILE")
    specs = [args.a] + ([args.b] if args.b is not None else [])
    for spec in specs:  # check the inputs before loading the model
        clip_paths(spec)
    if args.profile is not None:
        load_profile(args.profile)
    # the LSTM runs small batches: on a busy 2-core machine one thread embedded 10 clips in 1.0 s, two in 6.8 s
    torch.set_num_threads(1)
    encoder = SpeakerEncoder.load(args.encoder)

    def profile(spec: str):
        return dataset_profile(encoder, spec) if is_dataset(spec) else encoder.enroll(clip_paths(spec))

    a = profile(args.a)
    b = profile(args.b) if args.b is not None else load_profile(args.profile, encoder)
    value = float(encoder.similarity(a, b))
    if args.json:
        _print_json({"similarity": round(value, 4)})
    else:
        print(f"{value:.3f}")
    return 0


def _add_speaker(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speaker", help="speaker encoder tools (fine-tuning)",
                       description="The speaker encoder that tells voices apart (GE2E). 'voicetwin speaker finetune "
                                   "CLIPS --out DIR' adapts it to an archive voice; pass DIR wherever an encoder is "
                                   "asked for (similarity, ingest --encoder).")
    group = p.add_subparsers(dest="speaker_command", metavar="SPEAKER_COMMAND")
    f = group.add_parser(
        "finetune",
        help="fine-tune the speaker encoder to tell the target from look-alike voices",
        description=(
            "Fine-tune the GE2E speaker encoder (GE2E softmax loss, pretrained weights as the start) to separate "
            "the target voice from other voices, look-alikes first of all. Every speaker's clips are split into "
            "training and held-out clips; the equal error rate on the held-out clips is printed before and after. "
            "The encoder directory can be passed wherever --encoder is accepted."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    f.add_argument("--target", required=True, metavar="DATASET", help="dataset (or folder of clips) of the target")
    f.add_argument("--others", required=True, nargs="+", metavar="DATASET",
                   help="datasets (or folders), one per other speaker")
    f.add_argument("--out", "-o", required=True, metavar="ENCODER_DIR", help="directory to write the encoder to")
    f.add_argument("--steps", type=int, default=200, help="training steps")
    f.add_argument("--learning-rate", type=float, default=1e-4, help="Adam learning rate")
    f.add_argument("--held-out", type=float, default=0.3, help="share of each speaker's clips kept for the EER")
    f.add_argument("--encoder", default="ge2e", help="encoder to start from (name or directory)")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--json", action="store_true", help="print the training report as JSON")
    f.set_defaults(func=_run_speaker_finetune)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _run_speaker_finetune(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .eval.judges import clip_paths
    from .speaker.finetune import FinetuneOptions, finetune_speaker

    check_output_path(args.out, directory=True)  # before any work
    options = FinetuneOptions(steps=args.steps, learning_rate=args.learning_rate, held_out=args.held_out,
                              seed=args.seed)
    target = clip_paths(args.target)
    others: dict = {}
    for spec in args.others:
        name = Path(spec).resolve().name
        while name in others:
            name += "'"
        others[name] = clip_paths(spec)
    report = finetune_speaker(target, others, out=args.out, encoder=args.encoder, options=options,
                              progress=not args.json)
    if args.json:
        _print_json(report)
        return 0
    before, after = report["before"], report["after"]
    print(f"held-out equal error rate: {100 * before['eer']:.1f}% before, {100 * after['eer']:.1f}% after")
    for name in before["per_speaker"]:
        print(f"  target vs {name}: {100 * before['per_speaker'][name]:.1f}% -> "
              f"{100 * after['per_speaker'][name]:.1f}%")
    print(f"encoder: {report['encoder_dir']}")
    return 0


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="the judges: speaker similarity, word error rate, F0 agreement, MCD",
                       description="Judge generated audio with models independent of the ones that made it: speaker "
                                   "similarity (GE2E and a second d-vector), word error rate (Whisper), F0 agreement "
                                   "(CREPE or pYIN) and mel-cepstral distortion.")
    group = p.add_subparsers(dest="eval_command", metavar="JUDGE")
    s = group.add_parser(
        "similarity",
        help="similarity to a target voice with two independent encoders, with ceiling and floor",
        description=(
            "Score clips against the centroid of real clips of the target with the GE2E and d-vector judges, "
            "next to the real-versus-real ceiling (leave-one-out over the references) and the different-speaker "
            "floor (--others)."
        ),
    )
    s.add_argument("candidates", nargs="+", metavar="CLIPS", help="clips, folders or datasets to judge")
    s.add_argument("--reference", required=True, nargs="+", metavar="REF", help="real clips of the target")
    s.add_argument("--others", nargs="*", default=[], metavar="OTHER", help="clips of different speakers (floor)")
    s.add_argument("--judge", nargs="+", default=["ge2e", "dvector"], choices=["ge2e", "dvector"])
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_run_eval_similarity)
    w = group.add_parser(
        "wer",
        help="word and character error rate of English speech",
        description=(
            "Recognise English clips with Whisper tiny.en (or another faster-whisper model, or pocketsphinx) and "
            "compare with the reference texts: --text for a single clip, the manifest text for a dataset, or a "
            "same-named .txt file next to each clip of a folder."
        ),
    )
    w.add_argument("audio", nargs="+", metavar="CLIPS", help="clips, folders or datasets")
    w.add_argument("--text", default=None, help="reference text (single clip)")
    w.add_argument("--recogniser", default="whisper", choices=["whisper", "pocketsphinx"])
    w.add_argument("--model", default="whisper-tiny.en", help="faster-whisper model name or directory")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=_run_eval_wer)
    f = group.add_parser("f0", help="F0 agreement of a recording with a reference (after DTW alignment)")
    f.add_argument("reference", metavar="REFERENCE")
    f.add_argument("audio", metavar="AUDIO")
    f.add_argument("--semitones", type=float, default=0.0, help="expected transposition of AUDIO")
    f.add_argument("--method", default="harvest", choices=["harvest", "dio"])
    f.add_argument("--no-align", action="store_true", help="compare frame by frame without DTW")
    f.add_argument("--json", action="store_true")
    f.set_defaults(func=_run_eval_f0)
    m = group.add_parser("mcd", help="mel-cepstral distortion (dB) after DTW alignment")
    m.add_argument("reference", metavar="REFERENCE")
    m.add_argument("audio", metavar="AUDIO")
    m.add_argument("--json", action="store_true")
    m.set_defaults(func=_run_eval_mcd)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _clips_of(specs: list[str]) -> list:
    from .eval.judges import clip_paths

    return [path for spec in specs for path in clip_paths(spec)]


def _run_eval_similarity(args: argparse.Namespace) -> int:
    from .eval.judges import similarity_report

    candidates, references, others = _clips_of(args.candidates), _clips_of(args.reference), _clips_of(args.others)
    report = similarity_report(candidates, references, others, judges=args.judge)
    if args.json:
        _print_json({name: score.to_dict() for name, score in report.items()})
        return 0
    for name, score in report.items():
        ceiling = "n/a" if score.ceiling is None else f"{score.ceiling:.3f}"
        floor = "n/a" if score.floor is None else f"{score.floor:.3f}"
        print(f"{name:8s} similarity {score.score:.3f}  (real-vs-real ceiling {ceiling}, different-speaker floor "
              f"{floor}; {len(candidates)} clips)")
    return 0


def _run_eval_wer(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .errors import InputError
    from .eval.judges import clip_paths, clip_texts, wer_report

    items = []
    for spec in args.audio:
        texts = clip_texts(spec)
        for path in clip_paths(spec):
            text = args.text if args.text is not None else texts.get(path)
            sidecar = Path(path).with_suffix(".txt")
            if text is None and sidecar.exists():
                text = sidecar.read_text(encoding="utf-8").strip()
            if not text:
                raise InputError("no reference text for this clip", path=path,
                                 fix="pass --text, use a dataset with transcripts, or put a .txt file next to it")
            items.append((path, text))
    report = wer_report(items, recogniser=args.recogniser, model=args.model, progress=not args.json)
    if args.json:
        _print_json(report)
    else:
        print(f"WER {100 * report['wer']:.1f}%  CER {100 * report['cer']:.1f}%  ({report['clips']} clips, "
              f"{report['recogniser']})")
    return 0


def _run_eval_f0(args: argparse.Namespace) -> int:
    from .eval.judges import f0_agreement_audio

    result = f0_agreement_audio(args.reference, args.audio, transpose_semitones=args.semitones,
                                align=not args.no_align, method=args.method).to_dict()
    if args.json:
        _print_json(result)
    else:
        print(f"F0 correlation {result['correlation']:.3f}, RMSE {result['rmse_cents']:.1f} cents, voicing error "
              f"{100 * result['voicing_error']:.1f}%, gross errors {100 * result['gross_error_rate']:.1f}%, octave "
              f"errors {100 * result['octave_error_rate']:.1f}% ({result['voiced_frames']} voiced frames)")
    return 0


def _run_eval_mcd(args: argparse.Namespace) -> int:
    from .eval.judges import mel_cepstral_distortion

    result = mel_cepstral_distortion(args.reference, args.audio)
    if args.json:
        _print_json(result)
    else:
        print(f"MCD {result['mcd_db']:.2f} dB ({result['frames']} aligned frames)")
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_ingest,
    _add_lipsync,
    _add_speak,
    _add_sing,
    _add_watermark,
    _add_consent,
    _add_voice,
    _add_convert,
    _add_demo,
    _add_dub,
    _add_similarity,
    _add_speaker,
    _add_eval,
]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds "(default: ...)" once: not where the help already speaks of the default, nor for a default that says
    nothing (None, False, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False or default is argparse.SUPPRESS
                or (isinstance(default, (list, tuple)) and not default)):
            return text
        return super()._get_help_string(action)


_VERBOSE_HELP = "show what third-party libraries print (warnings, native logs) and tracebacks of OS errors"


def _finish_parsers(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """Every parser: one help formatter, and ``--verbose`` accepted after the command too."""
    parser.formatter_class = _HelpFormatter
    if not top and not any("--verbose" in a.option_strings for a in parser._actions):
        parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _finish_parsers(child, top=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicetwin",
        description=(
            "voicetwin recreates a person's voice, with consent, from archive recordings and a relative's "
            "performance. Run 'voicetwin COMMAND --help' for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"voicetwin {__version__}")
    parser.add_argument("--verbose", action="store_true", help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    _finish_parsers(parser)
    return parser


# commands that pick up where an interrupted run stopped, and how
_RESUME = {"ingest": "re-run the same command to resume", "convert": "re-run the same command to resume",
           "dub": "re-run with --resume to keep the lines already rendered"}


def main(argv: list[str] | None = None) -> int:
    from .console import close_bars, is_verbose, set_verbose

    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "verbose", False):
        set_verbose(True)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VoiceTwinError as exc:
        close_bars()
        print(f"voicetwin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the system refused a read or write the checks could not foresee (disk full, ...)
        if is_verbose():
            raise
        close_bars()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"voicetwin: error: {where}{exc.strerror or exc} (check the path, its permissions and the free space)",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        close_bars()
        hint = _RESUME.get(args.command)
        print(f"voicetwin: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
