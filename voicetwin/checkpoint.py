"""One way to keep a model on disk, for every model voicetwin trains (voices, acoustic models, speaker encoders,
the lip-sync network).

A model directory holds ``config.json`` (the architecture: a frozen dataclass, plus ``model_type`` and
``format_version``) and ``model.safetensors`` (the weights). ``save_checkpoint`` writes both atomically;
``load_checkpoint`` finds the directory through the model resolver (a local directory or file, a registered name,
a hub id), refuses another model type, a newer format or unknown keys, and ``load_weights`` refuses weights that
do not fit the network. Every refusal of a directory that exists but does not fit is a ``CheckpointError``; a
directory that is not there is a ``ModelNotFoundError``.

    ckpt = load_checkpoint(path, AcousticConfig, "voicetwin-acoustic", 1, kind="acoustic")
    net = load_weights(AcousticNet(ckpt.config), ckpt.tensors, ckpt.weights)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from .errors import CheckpointError, ConfigError, ModelNotFoundError
from .files import atomic_path, write_json
from .hub import config_from_dict, config_to_dict, read_config, resolve

WEIGHTS = "model.safetensors"
C = TypeVar("C")


@dataclass(frozen=True)
class Checkpoint(Generic[C]):
    """A loaded model directory: its config, its tensors (name -> CPU tensor, or numpy array), the other keys of
    ``config.json`` (``extra``), and where they came from."""

    config: C
    tensors: dict
    path: Path
    extra: dict = field(default_factory=dict)

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS


def save_checkpoint(out: str | Path, config: Any, tensors: dict, model_type: str, format_version: int,
                    extra: dict | None = None) -> Path:
    """Write ``out/model.safetensors`` (``tensors``: name -> tensor) and ``out/config.json`` (``config`` + ``extra``
    keys), each atomically, the config last so that a directory with a config always has its weights."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    with atomic_path(out / WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"model_type": model_type, "format_version": str(format_version)})
    write_json(out / "config.json", {**config_to_dict(config, model_type, format_version), **dict(extra or {})})
    return out


def load_checkpoint(name_or_path: str | Path, config_cls: type[C], model_type: str, format_version: int,
                    kind: str | None = None, extra_keys: tuple[str, ...] = (),
                    framework: str = "torch") -> Checkpoint[C]:
    """Load a model directory written by ``save_checkpoint``. ``name_or_path``: the directory, a file in it, a
    registered name or a hub id (resolved with ``kind``). ``extra_keys``: keys of ``config.json`` that are not
    fields of ``config_cls`` (returned in ``Checkpoint.extra``). ``framework``: ``"torch"`` (tensors) or
    ``"numpy"`` (arrays, without importing torch)."""
    from safetensors import SafetensorError

    if framework == "numpy":
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file

    path = resolve(name_or_path, kind=kind)
    if path.is_file():
        path = path.parent
    data = read_config(path)
    extra = {k: data.pop(k) for k in extra_keys if k in data}
    try:
        config = config_from_dict(config_cls, data, model_type, format_version, path / "config.json")
    except CheckpointError:
        raise
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from exc
    weights = path / WEIGHTS
    if not weights.is_file():
        raise ModelNotFoundError(f"the {model_type} directory has no {WEIGHTS}", path=path,
                                 fix="copy the whole model directory, or train or build it again")
    try:
        tensors = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise CheckpointError(f"the weights cannot be read ({exc})", path=weights,
                              fix="the file is damaged: copy or train the model again") from exc
    return Checkpoint(config, tensors, path, extra)


def load_weights(module: Any, tensors: dict, path: str | Path, prefix: str = "", strict: bool = True,
                 optional: tuple[str, ...] = ()) -> Any:
    """Load ``tensors`` (those starting with ``prefix``, prefix removed) into ``module`` (a ``torch.nn.Module``) and
    return it in eval mode. Refuses weights that do not fit with ``CheckpointError``; ``optional``: name prefixes
    of parameters the file may lack."""
    state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes differ
        raise CheckpointError(f"the weights do not match config.json ({str(exc).splitlines()[0]})", path=path,
                              fix="load the weights with the config they were saved with") from exc
    missing = [k for k in missing if not k.startswith(optional)] if optional else list(missing)
    if strict and (missing or unexpected):
        raise CheckpointError(f"the weights do not match config.json (missing {missing[:5]}, unexpected "
                              f"{list(unexpected)[:5]})", path=path,
                              fix="load the weights with the config they were saved with")
    return module.eval()


__all__ = ["WEIGHTS", "Checkpoint", "load_checkpoint", "load_weights", "save_checkpoint"]
