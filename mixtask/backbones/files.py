"""Backbone helpers: read weight files safely (safetensors or a PyTorch state dict), freeze modules.

Nothing here unpickles arbitrary objects: `.pth` files go through
`torch.load(..., weights_only=True)`, which only rebuilds tensors and plain containers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from mixtask.errors import MixtaskError

SAFETENSORS_MAX_HEADER = 100_000_000  # bytes; anything larger is not a real header


@dataclass
class StateFile:
    """Tensors of a weights file and its string metadata (empty for `.pth` files)."""

    path: Path
    state: dict[str, torch.Tensor]
    metadata: dict[str, str] = field(default_factory=dict)
    kind: str = "safetensors"  # or "pytorch"


def looks_like_safetensors(path: Path) -> bool:
    """True when the file starts like safetensors: 8-byte little-endian length, then a JSON `{`."""
    with path.open("rb") as handle:
        head = handle.read(9)
    if len(head) < 9:
        return False
    size = int.from_bytes(head[:8], "little")
    return 0 < size < SAFETENSORS_MAX_HEADER and head[8:9] == b"{"


def _read_safetensors(path: Path, what: str) -> StateFile:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            state = {key: handle.get_tensor(key) for key in handle.keys()}
            return StateFile(path, state, dict(handle.metadata() or {}), "safetensors")
    except Exception as error:  # safetensors raises several types for damaged data
        raise MixtaskError(f"{what} file {path} is a damaged safetensors file ({error})") from None


def _read_pytorch(path: Path, what: str) -> StateFile:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling errors come in many types
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MixtaskError(
            f"{what} file {path} is neither safetensors nor a PyTorch state dict loadable with "
            f"weights_only=True ({first})"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # common checkpoint wrapper
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MixtaskError(f"{what} file {path} holds a {type(state).__name__}, not a state dict of tensors")
    return StateFile(path, dict(state), {}, "pytorch")


def read_state_file(path: str | Path, what: str) -> StateFile:
    """Tensors + metadata of `path`; `what` names the backbone in error messages."""
    path = Path(path)
    if not path.is_file():
        raise MixtaskError(f"{what} file {path} not found")
    if looks_like_safetensors(path):
        return _read_safetensors(path, what)
    return _read_pytorch(path, what)


def load_strict(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, what: str) -> None:
    """`load_state_dict(strict=True)` with a one-line MixtaskError naming the file."""
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as error:
        detail = " ".join(str(error).split())[:400]
        raise MixtaskError(f"{what} file {path} does not match the expected layers ({detail})") from None


def freeze(model: torch.nn.Module) -> torch.nn.Module:
    """Eval mode and no gradients: backbones are fixed feature extractors."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model
