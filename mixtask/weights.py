"""Self-describing weights files: safetensors tensors plus string metadata.

Metadata keys (all JSON text except the version): `mixtask.format` (version),
`mixtask.config` (ModelConfig), `mixtask.tasks` (TaskSet: tasks, aliases, descriptions,
mixes trained), `mixtask.provenance` (data, command, steps, hardware, date) and
`mixtask.metrics`. Loading never unpickles anything and never needs key surgery.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mixtask.errors import MixtaskError
from mixtask.tasks import TaskSet

FORMAT_VERSION = "1"
DEFAULT_WEIGHTS_NAME = "mixtask-base.safetensors"
WEIGHTS_ENV = "MIXTASK_WEIGHTS"


@dataclass
class WeightsInfo:
    """Everything a weights file says about itself, without its tensors."""

    path: Path
    config: object  # ModelConfig (typed loosely so this module imports without torch)
    task_set: TaskSet
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def default_weights_path() -> Path:
    """The shipped model: $MIXTASK_WEIGHTS, the repo's weights/, or the installed share/ copy."""
    if os.environ.get(WEIGHTS_ENV):
        return Path(os.environ[WEIGHTS_ENV])
    candidates = [
        Path(__file__).resolve().parent.parent / "weights" / DEFAULT_WEIGHTS_NAME,
        Path(sys.prefix) / "share" / "mixtask" / "weights" / DEFAULT_WEIGHTS_NAME,
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MixtaskError(
        f"no default weights found (looked for {candidates[0]}); pass --weights FILE or set {WEIGHTS_ENV}"
    )


def resolve_weights_path(path: str | Path | None) -> Path:
    return default_weights_path() if path is None else Path(path)


def _open(path: Path):
    from safetensors import SafetensorError, safe_open

    if path.is_dir():
        raise MixtaskError(f"weights file {path} is a folder; give the .safetensors file in it")
    if not path.is_file():
        raise MixtaskError(f"weights file {path} not found")
    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise MixtaskError(f"{path} is not a valid safetensors weights file (truncated or corrupt: {error})") from None


def _parse_metadata(path: Path, metadata: dict | None) -> WeightsInfo:
    from mixtask.nets.film import ModelConfig

    metadata = metadata or {}
    version = metadata.get("mixtask.format")
    if version is None:
        raise MixtaskError(f"{path} is a safetensors file but not mixtask weights (no mixtask.format metadata)")
    if version != FORMAT_VERSION:
        raise MixtaskError(f"{path} has weights format version {version!r}; this mixtask reads {FORMAT_VERSION}")
    try:
        config = ModelConfig.from_json(json.loads(metadata["mixtask.config"]))
        task_set = TaskSet.from_json(json.loads(metadata["mixtask.tasks"]))
        provenance = json.loads(metadata.get("mixtask.provenance", "{}"))
        metrics = json.loads(metadata.get("mixtask.metrics", "{}"))
        for name, value in (("mixtask.provenance", provenance), ("mixtask.metrics", metrics)):
            if not isinstance(value, dict):
                raise ValueError(f"{name} is not a JSON object")
    except (KeyError, TypeError, ValueError, MixtaskError) as error:
        raise MixtaskError(f"{path} has broken mixtask metadata: {error}") from None
    if config.num_tasks != len(task_set):
        raise MixtaskError(f"{path}: config has {config.num_tasks} task inputs but {len(task_set)} task names")
    return WeightsInfo(path, config, task_set, provenance, metrics)


def read_info(path: str | Path | None = None) -> WeightsInfo:
    """Read only the metadata of a weights file (fast: no tensors are loaded)."""
    path = resolve_weights_path(path)
    with _open(path) as handle:
        return _parse_metadata(path, handle.metadata())


def _read_tensors(path: Path, handle) -> dict:
    import torch

    try:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # safetensors raises several types for damaged data
        raise MixtaskError(f"{path}: tensor data is damaged ({error})") from None
    for key, tensor in tensors.items():
        if not tensor.is_floating_point():
            raise MixtaskError(f"{path}: tensor {key!r} is {tensor.dtype}, not floating point")
    # One fused call over every tensor (a loop of isfinite calls took ten times as long, 0.02 s at start-up): a
    # NaN or an Inf anywhere in a tensor makes its norm NaN or Inf (so would values beyond 1e19, which no weight has).
    norms = torch._foreach_norm(list(tensors.values())) if tensors else []
    for key, norm in zip(tensors, norms):
        if not bool(torch.isfinite(norm)):
            raise MixtaskError(f"{path}: tensor {key!r} holds NaN or Inf values")
    return tensors


@contextlib.contextmanager
def _skipping_initialisation():
    """Build modules without their random initialisation, in this thread only (every weight then comes from the
    file): the standard layers' `reset_parameters` are half the time of building the network, about 0.015 s of
    start-up. Another thread building a model meanwhile still initialises its own."""
    from torch import nn

    builder = threading.get_ident()
    layers = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._NormBase)
    originals = [layer.__dict__["reset_parameters"] for layer in layers]

    def skipping(original):
        def reset_parameters(self):
            if threading.get_ident() != builder:
                original(self)

        return reset_parameters

    for layer, original in zip(layers, originals):
        layer.reset_parameters = skipping(original)
    try:
        yield
    finally:
        for layer, original in zip(layers, originals):
            layer.reset_parameters = original


def load_weights(path: str | Path | None = None):
    """Load a weights file into a fresh model (eval mode, CPU, fp32) -> (model, WeightsInfo)."""
    import torch

    from mixtask.nets.registry import build_model

    path = resolve_weights_path(path)
    with _open(path) as handle:
        info = _parse_metadata(path, handle.metadata())
        state = _read_tensors(path, handle)
    # no random initial weights to overwrite: every weight comes from the file
    with torch.device("meta"), _skipping_initialisation():
        model = build_model(info.config)
    try:
        model.load_state_dict({key: value.float() for key, value in state.items()}, strict=True, assign=True)
    except RuntimeError as error:
        first_line = str(error).strip().splitlines()[-1].strip()
        raise MixtaskError(f"{path}: tensors do not match its config ({first_line})") from None
    # parameters and buffers, also the ones not saved (constants made in __init__, which must be made on the CPU)
    unset = [name for name, tensor in [*model.named_parameters(), *model.named_buffers()] if tensor.is_meta]
    if unset:
        raise RuntimeError(f"{info.config.arch}: {unset[0]} is not in the file nor made on the CPU")
    return model.eval(), info


def save_weights(path: str | Path, model, task_set: TaskSet, provenance: dict | None = None, metrics=None) -> Path:
    """Write model + metadata atomically (temp file, then rename)."""
    from safetensors.torch import save_file

    from mixtask.fileio import atomic_path

    metadata = {
        "mixtask.format": FORMAT_VERSION,
        "mixtask.config": json.dumps(model.config.to_json()),
        "mixtask.tasks": json.dumps(task_set.to_json()),
        "mixtask.provenance": json.dumps(provenance or {}),
        "mixtask.metrics": json.dumps(metrics or {}),
    }
    state = {key: value.detach().float().cpu().contiguous() for key, value in model.state_dict().items()}
    path = Path(path)
    with atomic_path(path) as temp:
        save_file(state, str(temp), metadata=metadata)
    return path


def record_metrics(path: str | Path, metrics: dict) -> None:
    """Rewrite a weights file with `metrics` in its metadata (tensors unchanged; atomic)."""
    from safetensors.torch import save_file

    from mixtask.fileio import atomic_path

    path = Path(path)
    with _open(path) as handle:
        _parse_metadata(path, handle.metadata())
        metadata = dict(handle.metadata())
        state = _read_tensors(path, handle)
    metadata["mixtask.metrics"] = json.dumps(metrics)
    with atomic_path(path) as temp:
        save_file(state, str(temp), metadata=metadata)
