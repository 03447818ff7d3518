"""Damage a photo the way training does (holes, scratches): inputs to try inpaint and denoise on.

The corruptions are the training ones (`data.corruptions`, paper Table 1), drawn from a seeded
generator, so `mixtask damage photo.jpg --kind denoise --seed 3` gives the same scratches on
every machine. Returns the damaged image and the mask of the changed pixels.
"""

from __future__ import annotations

import numpy as np
import torch

from mixtask.data.corruptions import CORRUPTIONS, corrupt
from mixtask.errors import MixtaskError, UsageError
from mixtask.tensors import from_uint8, to_array

KINDS = tuple(CORRUPTIONS)  # task kinds with a corruption: inpaint (holes), denoise (scratches)


def kind_of(label: str) -> str:
    """A task name or alias as `--task` takes it (`holes`, `scratches`, `denoising`, ...) -> its damage kind."""
    from mixtask.tasks import DEFAULT_TASK_SET

    try:
        kind = DEFAULT_TASK_SET.tasks[DEFAULT_TASK_SET.index(label)].kind
    except MixtaskError:
        return label  # unknown: reported with the others below
    return kind if kind in KINDS else label


def damage(rgb: np.ndarray, kinds: tuple[str, ...], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 -> (damaged (H, W, 3) uint8, mask (H, W) uint8 0/255). `kinds`: task names or aliases."""
    kinds = tuple(dict.fromkeys(kind_of(label) for label in kinds))
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown or not kinds:
        raise UsageError(f"unknown damage {', '.join(unknown) or '(none)'}: choose from {', '.join(KINDS)}")
    x = from_uint8(rgb)[None]
    damaged, mask = corrupt(x, kinds, torch.Generator().manual_seed(seed))
    out = to_array(damaged[0])
    return np.ascontiguousarray(out), (mask[0, 0] * 255).to(torch.uint8).numpy()
