"""The architecture contract: what every network of `mixtask.nets.registry` is and says about itself.

An architecture is a `TaskNet` built from a `ModelConfig` (`cls(config)`, kept as `self.config`) with
`forward(x, c)` (x: (B, 3, H, W) in [0, 1], sides multiples of 4; c: (B, tasks) task vectors, or
(B, tasks, H, W) when `task_maps`) and `forward_any_size(x, c)` (any H, W). Its class attributes say what
it can do; apply, eval, info, compare and training read them (`mixtask.nets.capabilities`), never probe.
Its module has `parameter_count(config)`, the closed-form count its tests pin. Adding one: subclass,
implement, register in `registry._REGISTRY`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from mixtask.nets.film import ModelConfig


class TaskNet(nn.Module):
    mixes: ClassVar[bool] = True  # more than one task at once
    continuous: ClassVar[bool] = True  # strengths between 0 and 1
    task_maps: ClassVar[bool] = False  # per-pixel task vectors, (B, tasks, H, W)
    unused_parameters: ClassVar[bool] = False  # a step may leave some parameters without a gradient (DDP must know)

    config: ModelConfig

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def shared_weight(self) -> torch.Tensor | None:
        """GradNorm's W, the last layer every task shares; None: the last conv, when no part is per task."""
        return None
