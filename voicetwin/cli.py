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
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.set_defaults(func=_run_ingest)


def _run_ingest(args: argparse.Namespace) -> int:
    from .ingest import IngestOptions, ingest

    options = IngestOptions(
        language=args.language,
        denoise=args.denoise,
        threshold=args.threshold,
        encoder=args.encoder,
        asr_model=args.asr,
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


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_ingest,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="voicetwin",
        description=(
            "voicetwin recreates a person's voice, with consent, from archive recordings and a relative's "
            "performance. Run 'voicetwin COMMAND --help' for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"voicetwin {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VoiceTwinError as exc:
        print(f"voicetwin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("voicetwin: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
