"""Top-down control network: a task- and image-dependent stream modulates every unit of the main one.

Levi & Ullman, "Multi-task learning by a top-down control network" (arXiv 2020; ICIP 2021). Three
streams: BU1, a bottom-up pass over the image; TD, a top-down stream that starts from the task
embedding, runs through the layers in reverse and takes in BU1's features of each layer through
lateral connections; BU2, the main bottom-up stream, whose every layer is modulated element-wise
(in space and channel) by maps TD emits for it. BU1 and BU2 share their weights, as in the paper.
Here the bottom-up network is the plain Johnson encoder-decoder (`trunk.JohnsonTrunk`); TD has one
reflection-padded 3x3 conv per BU layer at `width` channels, and the modulation of BU2's layer i
after its norm is `y * (1 + m_i) + a_i` (multiplicative and additive, from a zero-initialised 1x1
conv, so BU2 equals BU1 at init).

Our change: BU2 normalises each layer with BU1's statistics of that layer (the per-image mean and
variance of the unmodulated pass) instead of its own. InstanceNorm statistics of a modulated layer
would pool all regions of a task map, so one region's task would shift every other region: on a
random tiny model, the left half of a half-A/half-B map came out only ~1.5x closer to task A's
output than to task B's with BU2's own statistics, 25x or more with BU1's.

The task signal is spatial by construction: c is (B, tasks), or a per-pixel task map
(B, tasks, H, W). The task embedding is a 1x1 conv (+ ReLU) over the map, averaged down to each
layer's resolution and injected into TD at every layer (a 1x1 conv each), so different regions
of one image can get different tasks and strengths; a vector is the same as a uniform map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.errors import MixtaskError
from mixtask.nets.base import TaskNet
from mixtask.nets.film import ConvLayer, ModelConfig, apply_head, forward_any_size, layer_shapes
from mixtask.nets.trunk import AffineNorm, JohnsonTrunk, conv_params, plain_johnson_params


def resize(t: torch.Tensor, size: torch.Size) -> torch.Tensor:
    """t at spatial `size`: area average down, nearest up; a 1x1 (uniform) map stays 1x1."""
    if t.shape[-2:] == size or t.shape[-2:] == (1, 1):
        return t
    if t.shape[-2] > size[0]:
        return F.adaptive_avg_pool2d(t, size)
    return F.interpolate(t, size=size, mode="nearest")


def instance_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel (mean, variance) of a layer's conv output, in fp32."""
    var, mean = torch.var_mean(y.float(), dim=(2, 3), keepdim=True, correction=0)
    return mean, var


def normalize(norm: AffineNorm, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """InstanceNorm of y with the given statistics, then the norm's own affine."""
    mean, var = stats
    scale = norm.weight[:, None, None] * torch.rsqrt(var + norm.eps)
    return torch.addcmul((norm.bias[:, None, None] - mean * scale).to(y.dtype), y, scale.to(y.dtype))


def zero_conv(c_in: int, c_out: int) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 1)
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class TopDownNet(TaskNet):
    """BU1 -> TD (task embedding + lateral BU1 features) -> modulated BU2 (see the module docstring)."""

    mixes, continuous, task_maps = True, True, True

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.bottom_up = JohnsonTrunk(config)
        channels = [norm.channels for norm in self.bottom_up.norms]
        self.embed = nn.Conv2d(config.num_tasks, w, 1)
        self.inject = nn.ModuleList(nn.Conv2d(w, w, 1) for _ in channels)
        self.lateral = nn.ModuleList(nn.Conv2d(c, w, 1) for c in channels)
        self.descend = nn.ModuleList(ConvLayer(w, w, 3) for _ in channels[1:])  # TD layer i + 1 -> i
        self.modulation = nn.ModuleList(zero_conv(w, 2 * c) for c in channels)

    def task_map(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """c as (B, tasks, H, W) or (B, tasks, 1, 1); MixtaskError for other shapes."""
        batch, tasks = len(x), self.config.num_tasks
        if c.dim() == 2 and c.shape == (batch, tasks):
            return c[:, :, None, None]
        if c.dim() == 4 and c.shape == (batch, tasks, *x.shape[-2:]):
            return c
        raise MixtaskError(
            f"task input of shape {tuple(c.shape)}: give ({batch}, {tasks}) vectors or ({batch}, {tasks}, H, W) maps "
            f"of the image's size {tuple(x.shape[-2:])}"
        )

    def top_down(self, features: list[torch.Tensor], embedding: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
        """TD from the last BU layer down to the first -> per BU layer (multiplier - 1, addend)."""
        modulations, t = [None] * len(features), None
        for i in reversed(range(len(features))):
            size = features[i].shape[-2:]
            s = self.lateral[i](features[i]) + self.inject[i](resize(embedding, size))
            if t is not None:
                s = s + self.descend[i](resize(t, size))
            t = F.relu(s)
            modulations[i] = self.modulation[i](t).chunk(2, dim=1)
        return modulations

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) or (B, tasks, H, W)."""
        embedding = F.relu(self.embed(self.task_map(x, c).to(x.dtype)))
        bu, features, stats = self.bottom_up, [], []

        def bu1_layer(i: int, h: torch.Tensor) -> torch.Tensor:
            y = bu.convs[i](h)
            stats.append(instance_stats(y))
            features.append(bu.activate(i, normalize(bu.norms[i], y, stats[i])))
            return features[i]

        bu.run(x, bu1_layer)
        modulations = self.top_down(features, embedding)

        def bu2_layer(i: int, h: torch.Tensor) -> torch.Tensor:
            scale, shift = modulations[i]
            y = normalize(bu.norms[i], bu.convs[i](h), stats[i])
            return bu.activate(i, torch.addcmul(shift, y, 1 + scale))

        return apply_head(self.config, bu.output(bu.run(x, bu2_layer)), x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Like forward for any H, W; a task map is padded like the image."""
        return forward_any_size(self.forward, x, c)


def parameter_count(config: ModelConfig) -> int:
    """The bottom-up network once (BU1 = BU2) and TD: embedding, per layer inject, lateral,
    modulation, and a 3x3 conv between consecutive layers."""
    w, tasks = config.width, config.num_tasks
    channels = [c_out for _, c_out, _, _, _ in layer_shapes(config)]
    per_layer = sum(conv_params(w, w, 1) + conv_params(c, w, 1) + conv_params(w, 2 * c, 1) for c in channels)
    descend = (len(channels) - 1) * conv_params(w, w, 3)
    return plain_johnson_params(config) + conv_params(tasks, w, 1) + per_layer + descend
