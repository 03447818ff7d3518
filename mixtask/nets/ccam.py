"""CCAM: task-conditioned channel attention (SGN's conditional channel attention module).

Chang et al., SGN (ICCV 2019), as the baseline "CCAM" / "CCAM-bias" of Takeda, Benitez & Yanai,
"Training of Multiple and Mixed Tasks With A Single Network Using Feature Modulation" (ICPR
2020 workshops). A squeeze-and-excitation style block (Hu et al. 2018,
https://arxiv.org/abs/1709.01507) whose excitation also sees the task: for features h (B, C, H, W)

    z = ReLU(W1 [avgpool(h), c] + b1),   s = sigmoid(W2 z + b2),   h' = s * h   (+ b, "-bias")

`ccam-bias` adds an unconstrained per-channel bias b computed the same way (a second output of
the same MLP, so W2 has 2C rows). Our choices, which the comparison does not fix:

- three modules, as in SGN, placed where the Johnson trunk changes stage: after the encoder
  (4w channels, 1/4 resolution), after the residual blocks (4w) and after the first
  up-sampling conv (2w, 1/2 resolution);
- hidden width C / 4 (at least 8): at width 32 with 5 tasks the three modules hold 19,232
  (ccam) or 28,768 (ccam-bias) parameters, the size of FiLM's task-specific generator (19,200);
- the trunk is otherwise the plain Johnson network (InstanceNorm with its own affine).

Everything task-specific is in the attention, so strengths and mixes are simply other inputs
(`mixes` and `continuous` hold; whether the result is any good is what the comparison measures).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.nets.base import TaskNet
from mixtask.nets.film import ModelConfig, forward_any_size
from mixtask.nets.trunk import (
    OutputHead,
    linear_params,
    plain_decoder,
    plain_encoder,
    plain_johnson_params,
    plain_residual,
)

REDUCTION, MIN_HIDDEN = 4, 8


def hidden_width(channels: int) -> int:
    return max(channels // REDUCTION, MIN_HIDDEN)


class ChannelAttention(nn.Module):
    """h * sigmoid(MLP([avgpool(h), c])) per channel, plus an MLP bias with `bias` (see module doc)."""

    def __init__(self, channels: int, num_tasks: int, bias: bool):
        super().__init__()
        self.channels, self.bias = channels, bias
        self.hidden = nn.Linear(channels + num_tasks, hidden_width(channels))
        self.out = nn.Linear(hidden_width(channels), channels * (2 if bias else 1))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        pooled = h.float().mean(dim=(2, 3))
        out = self.out(F.relu(self.hidden(torch.cat([pooled, c.float()], dim=1)))).float()
        scale = torch.sigmoid(out[:, : self.channels])[:, :, None, None].to(h.dtype)
        if not self.bias:
            return h * scale
        return torch.addcmul(out[:, self.channels :, None, None].to(h.dtype), h, scale)


class CCAMNet(TaskNet):
    """Plain Johnson trunk with three task-conditioned channel attentions (see module doc)."""

    mixes, continuous, task_maps = True, True, False
    bias = False

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        w, tasks = config.width, config.num_tasks
        self.encoder = plain_encoder(config)
        self.residual = plain_residual(config)
        self.decoder = plain_decoder(config)
        self.head = OutputHead(config)
        self.attention = nn.ModuleList(ChannelAttention(ch, tasks, self.bias) for ch in attention_channels(w))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        after_encoder, after_residual, after_upsample = self.attention
        h = after_encoder(self.encoder(x), c)
        h = after_residual(self.residual(h), c)
        up, last = self.decoder
        h = last(after_upsample(up(h), c))
        return self.head(h, x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return forward_any_size(self.forward, x, c)


class CCAMBiasNet(CCAMNet):
    """CCAM with an unconstrained per-channel bias next to the sigmoid scale (`ccam-bias`)."""

    bias = True


def attention_channels(width: int) -> tuple[int, int, int]:
    """Channels at the three attention points: after the encoder, the residual blocks, the first up-sampling."""
    return 4 * width, 4 * width, 2 * width


def parameter_count(config: ModelConfig) -> int:
    """The plain trunk + three attention MLPs (C + tasks -> C/4 -> C, or 2C with the bias)."""
    outputs = 2 if config.arch == "ccam-bias" else 1
    channels = attention_channels(config.width)
    attention = sum(linear_params([ch + config.num_tasks, hidden_width(ch), outputs * ch]) for ch in channels)
    return plain_johnson_params(config) + attention
