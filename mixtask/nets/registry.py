"""The architectures by name: the paper's FiLM network and the other ways of sharing one network between tasks
(issue 5). Adding one means writing its module (the interface below) and one line in `_REGISTRY`, nothing else.

`film` itself lives in `mixtask.nets.film` (MixNet). Every architecture here is an `nn.Module`
built from a `ModelConfig` with `forward(x, c)` (x: (B, 3, H, W) in [0, 1], sides multiples
of 4; c: (B, tasks) task vectors), `forward_any_size(x, c)` (any H, W) and three class attributes
saying what it can do: `mixes` (more than one task at once), `continuous` (strengths between
0 and 1) and `task_maps` (c may also be per-pixel, (B, tasks, H, W)). Each module also
exposes `parameter_count(config)`, the closed-form parameter count its tests pin.
"""

from __future__ import annotations

import importlib

# name -> "module:Class"; modules are imported on first use only, so that `mixtask --help` needs no torch
_REGISTRY: dict[str, str] = {
    "film": "mixtask.nets.film:MixNet",
    "encin": "mixtask.nets.encin:EncInNet",
    "ccam": "mixtask.nets.ccam:CCAMNet",
    "ccam-bias": "mixtask.nets.ccam:CCAMBiasNet",
    "sharedenc": "mixtask.nets.sharedenc:SharedEncoderNet",
    "single": "mixtask.nets.single:SingleTaskNets",
    "piggyback": "mixtask.nets.piggyback:PiggybackNet",
    "tsn": "mixtask.nets.tsn:TaskSwitchingNet",
    "topdown": "mixtask.nets.topdown:TopDownNet",
}


def names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def architecture_class(name: str) -> type:
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r} (known: {', '.join(_REGISTRY)})")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_model(config) -> object:
    """The network `config.arch` (a `ModelConfig`) names, built from `config`."""
    return architecture_class(config.arch)(config)
