"""The architectures by name: the paper's FiLM network and the other ways of sharing one network between tasks
(issue 5). Adding one means writing its module (the interface below) and one line in `_REGISTRY`, nothing else.

`film` itself lives in `mixtask.nets.film` (MixNet). Every architecture is a `mixtask.nets.base.TaskNet` (the
contract: constructor, forward, capability flags, hooks) and its module exposes `parameter_count(config)`.
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
    "crossstitch": "mixtask.nets.crossstitch:CrossStitchNet",
    "mtan": "mixtask.nets.mtan:MTANNet",
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
