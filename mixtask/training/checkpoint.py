"""Training checkpoints: everything needed to continue a run exactly where it stopped.

A checkpoint holds the model, the discriminator, both optimisers, the frozen stage-1 model
(Method 3, paper Sec. 3.3), the step, the run's options and every random state of every rank
(torch's global generator, the task and corruption generators, the sample maker). It is our
own file, written atomically with `torch.save` and read back with `weights_only=True`, so
loading never runs pickled code. Weights meant for others go out as safetensors instead
(`mixtask.weights.save_weights`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from mixtask.errors import MixtaskError
from mixtask.fileio import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / CHECKPOINT_NAME


def save_checkpoint(run_dir: str | Path, state: dict) -> Path:
    """Write `state` to RUN_DIR/checkpoint.pt atomically (a crash keeps the previous one)."""
    path = checkpoint_path(run_dir)
    with atomic_path(path) as temp:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, temp)
    return path


def load_checkpoint(run_dir: str | Path) -> dict:
    """Read RUN_DIR/checkpoint.pt (tensors and plain containers only)."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        raise MixtaskError(f"cannot resume: {path} not found (is {run_dir} a training run folder?)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling and truncation errors come in many types
        # Not torch's message: it suggests loading with weights_only=False, which must never be followed.
        raise MixtaskError(f"cannot resume: {path} is damaged or not a checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise MixtaskError(f"cannot resume: {path} is not a mixtask checkpoint of format {CHECKPOINT_FORMAT}")
    check_state(path, state)
    return state


REQUIRED = {"options": dict, "step": int, "wall_seconds": (int, float), "model": dict, "optimizer": dict, "rng": list}


def check_state(path: Path, state: dict) -> None:
    """Every key a resume reads, of the right type: a crafted file is one error naming the key."""
    for key, kind in REQUIRED.items():
        value = state.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MixtaskError(f"cannot resume: {path} has no valid {key!r} (found {type(value).__name__})")
    if state["step"] < 0:
        raise MixtaskError(f"cannot resume: {path} has a negative step ({state['step']})")


def capture_rng(generators: dict[str, torch.Generator], sampler) -> dict:
    """This process's random states: torch's global one(s), named generators, the sample maker."""
    state = {
        "torch": torch.get_rng_state(),
        "generators": {name: generator.get_state() for name, generator in generators.items()},
        "sampler": sampler.state_dict(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, generators: dict[str, torch.Generator], sampler) -> None:
    """Inverse of `capture_rng`."""
    torch.set_rng_state(state["torch"])
    for name, generator in generators.items():
        generator.set_state(state["generators"][name])
    sampler.load_state_dict(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
