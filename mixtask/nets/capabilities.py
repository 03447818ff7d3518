"""What an architecture can be asked, and the one-line errors when it is asked for more.

Every architecture of `mixtask.nets.registry` is a `nets.base.TaskNet` and says what it can do with three
class attributes: `mixes` (more than one task at once), `continuous` (strengths between 0 and 1) and
`task_maps` (per-pixel task vectors). Inference, training and evaluation read them here, so
the rules and their messages live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from mixtask.errors import MixtaskError
from mixtask.nets.base import TaskNet


@dataclass(frozen=True)
class Capabilities:
    arch: str
    mixes: bool = True
    continuous: bool = True
    task_maps: bool = False

    @property
    def cannot_mix(self) -> str:
        return f"the {self.arch} architecture cannot mix tasks (one task at a time)"

    @property
    def not_continuous(self) -> str:
        return f"the {self.arch} architecture cannot take strengths between 0 and 1 (only 0 or 1)"


def of_class(arch: str, cls: type[TaskNet]) -> Capabilities:
    return Capabilities(arch, mixes=cls.mixes, continuous=cls.continuous, task_maps=cls.task_maps)


def of_model(model) -> Capabilities:
    """A built network's capabilities (its config names the architecture)."""
    return of_class(model.config.arch, type(model))


def of_arch(name: str) -> Capabilities:
    """An architecture's capabilities by registry name (imports its module, hence torch)."""
    from mixtask.nets.registry import architecture_class

    return of_class(name, architecture_class(name))


def check_vectors(caps: Capabilities, vectors) -> None:
    """MixtaskError when task vectors (B, tasks) or maps (B, tasks, H, W) ask for what `caps` lacks."""
    if not caps.mixes and bool(((vectors != 0).sum(dim=1) > 1).any()):
        raise MixtaskError(caps.cannot_mix)
    if not caps.continuous and bool(((vectors != 0) & (vectors != 1)).any()):
        raise MixtaskError(caps.not_continuous)


def not_applicable(caps: Capabilities) -> dict[str, str]:
    """Evaluation parts a model cannot take part in -> why ("mixes", "strength sweep")."""
    reasons = {}
    if not caps.mixes:
        reasons["mixes"] = caps.cannot_mix
    if not caps.continuous:
        reasons["strength sweep"] = caps.not_continuous
    return reasons
