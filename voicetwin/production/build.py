"""Building a whole voice: the conversion model, then the voice's own speech model from its transcribed clips.

    voice = build_voice("datasets/grandpa", "voices/grandpa", BuildOptions(), consent="consent.json")

1. conversion model: ``Voice.build`` (``voicetwin.voice.model``), which turns a performer's speech or singing into
   the voice;
2. speech model: when the dataset's clips have text (``ingest --transcripts`` or ``--asr``) and
   ``options.speech_model``, ``voicetwin.synth.speech_model.build_speech_model`` trains the acoustic model on them
   into ``VOICE/tts``, where ``speak``, ``sing``, ``dub`` and the demo find it. Without text, the report says that
   speech goes through a base synthesiser and conversion, and how to add text.

Both stages keep their state in ``VOICE/.build`` until the build ends, so an interrupted build continues with
``resume=True`` and ends with the same weights. ``VOICE/report.json`` holds the conversion model's report with a
``speech_model`` entry.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from ..consent import ConsentRecord, consent_for_build, consent_path, load_consent, save_consent
from ..files import write_json
from ..manifest import dataset_clips
from ..training import BuildState, Hook
from ..voice.model import BUILD_DIR, BuildOptions, Voice, build_fingerprint


def speech_options(options: BuildOptions):
    """The speech model's settings (``voicetwin.synth.speech_model.SpeechOptions``) of a build's options."""
    from ..synth.speech_model import SpeechOptions

    return SpeechOptions(steps=options.speech_steps, size=options.speech_size,
                         min_text_confidence=options.min_text_confidence, seed=options.seed, threads=options.threads,
                         max_train_seconds=options.max_train_seconds)


def build_voice(dataset: str | Path, out: str | Path, options: BuildOptions | None = None,
                performer: str | Path | None = None, progress: bool = False,
                log: Callable[[str], None] | None = None, consent: ConsentRecord | str | Path | None = None,
                resume: bool = False, hook: Hook | None = None) -> Voice:
    """Build the voice in ``out`` from the ingested ``dataset``: the conversion model and, when the clips have
    text, the speech model (see the module's docstring; arguments as for ``Voice.build``). Refuses before any
    work without a valid consent record, or when the clips' language needs a phone front end that is missing."""
    from ..synth.speech_model import check_front_end, dataset_language

    options = options or BuildOptions()
    consent_for_build(out, consent)  # refuse before any work
    speech = speech_options(options)  # checks the speech model's settings before any work
    started = time.time()
    say = log or (lambda _msg: None)
    out = Path(out)
    clips, language = [], None
    if options.speech_model:
        clips = [(c, p) for c, p in dataset_clips(dataset) if p.exists() and (c.text or "").strip()]
        if clips:
            language = dataset_language(clips)
            check_front_end(language)
    state = BuildState(out / BUILD_DIR, build_fingerprint(dataset, performer, options), resume, say)
    voice = Voice.build(dataset, out, options, performer=performer, progress=progress, log=log, consent=consent,
                        hook=hook, state=state)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    report["speech_model"] = _speech_model(voice, dataset, clips, language, options, speech, progress, say, hook,
                                           state)
    report["build_seconds"] = round(time.time() - started, 1)  # this run's (a resumed build: since resuming)
    report["resumed"] = state.resumed
    write_json(out / "report.json", report)
    state.close()
    return voice


def _speech_model(voice: Voice, dataset: str | Path, clips: list, language: str | None, options: BuildOptions,
                  speech, progress: bool, say: Callable[[str], None], hook: Hook | None, state: BuildState) -> dict:
    """Train the voice's own speech model into ``VOICE/tts`` when there is text -> the report's entry."""
    from ..synth.speak import VOICE_MODEL_DIR
    from ..synth.speech_model import FRONT_ENDS, build_speech_model, no_text_report

    out = Path(voice.path) / VOICE_MODEL_DIR
    earlier = {"kept": f"an earlier speech model in {out} is kept"} if (out / "config.json").exists() else {}
    if not options.speech_model:
        return {"built": False, "reason": "not asked for (--no-speech-model)", **earlier}
    if not clips:
        entry = no_text_report(dataset)
        say(f"no transcripts in the dataset: {entry['speech']}; {entry['fix']}")
        return {**entry, **earlier}
    if language not in FRONT_ENDS:
        entry = {"built": False, "reason": f"no phone front end for '{language}' yet (only "
                 + ", ".join(sorted(FRONT_ENDS)) + ")", "speech": no_text_report(dataset)["speech"]}
        say(f"speech model: {entry['reason']}")
        return {**entry, **earlier}
    done = state.path / "speech.json"
    if state.finished("speech") and done.exists():
        return json.loads(done.read_text(encoding="utf-8"))
    report = build_speech_model(clips, out, language, speech, state.path, state.fingerprint, progress, hook, say)
    if consent_path(voice.path).exists():  # the model can also be used alone (--base model:VOICE/tts)
        save_consent(out, load_consent(voice.path), overwrite=True)
    write_json(done, report)
    state.finish("speech")
    say(f"speech model written to {out}: {report['minutes']:.1f} min of {language} text, {report['steps']} steps")
    return report


__all__ = ["build_voice", "speech_options"]
