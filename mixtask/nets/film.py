"""The FiLM-conditioned Johnson network (paper, Sec. 3.2).

Johnson, Alahi & Fei-Fei (2016), "Perceptual Losses for Real-Time Style Transfer"
(https://arxiv.org/abs/1603.08155), with every InstanceNorm followed by FiLM
(Perez et al. 2018, https://arxiv.org/abs/1709.07871) whose gamma/beta come from a small
fully-connected generator fed with the task vector `c` in [0, 1]^n. The generator's first
layer is the only task-specific part; it starts as the identity FiLM (gamma = 1, beta = 0).

The layer table (`layer_shapes`), the output head (`output_conv`, `apply_head`) and the any-size
padding (`forward_any_size`) are shared with the other architectures of `mixtask.nets.registry`.
This module knows nothing of files or task names: `c` is just a tensor.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.choices import FILL_HEAD, GATED_HEADS, HEADS
from mixtask.nets import convforms
from mixtask.nets.base import TaskNet
from mixtask.nets.registry import names as architecture_names


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a network; stored as JSON in the weights file."""

    num_tasks: int
    width: int = 32  # base channels; the paper's network uses 32
    res_blocks: int = 5
    film_layers: int = 1  # depth of the FiLM generator (the paper tried 1, 3 and 5)
    film_hidden: int = 256  # hidden width of the generator when film_layers > 1
    arch: str = "film"
    head: str = "gated"  # "rgb": the paper's 3-channel output; "gated": see `GatedHead`
    context: int = 0  # 3x3 convs of the global-context branch (`ContextBranch`); 0: none, the paper's network
    context_backbone: str = ""  # frozen image features the context branch adds (CONTEXT_BACKBONES); "": none
    context_scales: int = 1  # the backbone's scales it adds: 1/32 only; 2: also 1/16; 3: also 1/8 (`ContextBranch`)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> ModelConfig:
        """A config read from a file, checked field by field (a crafted file must not build a huge network)."""
        if not isinstance(data, dict):
            raise ValueError("the model config is not a JSON object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(sorted(unknown))}")
        # Weights written before output heads existed have the paper's plain RGB output.
        config = cls(**({"head": "rgb"} | data))
        config.check()
        return config

    def check(self) -> None:
        """ValueError naming the first field out of its type or range."""
        for name, (low, high) in CONFIG_RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"config field {name!r} is {value!r}, not an integer in {low}..{high}")
        if self.arch not in architecture_names():
            raise ValueError(f"config field 'arch' is {self.arch!r}, not one of {', '.join(architecture_names())}")
        if self.head not in HEADS:
            raise ValueError(f"config field 'head' is {self.head!r}, not one of {', '.join(HEADS)}")
        if self.context_backbone and (self.context_backbone not in CONTEXT_BACKBONES or not self.context):
            known = ", ".join(CONTEXT_BACKBONES)
            raise ValueError(f"config field 'context_backbone' is {self.context_backbone!r}: one of {known}, "
                             "with a context branch (context > 0)")  # fmt: skip
        if self.context_scales > 1 and not self.context_backbone:
            raise ValueError(f"config field 'context_scales' is {self.context_scales}: over 1 needs a context_backbone")


# Sane bounds for a config read from a file: far above any trained network, far below a memory bomb.
CONFIG_RANGES = {"num_tasks": (1, 64), "width": (1, 256), "res_blocks": (0, 32), "film_layers": (1, 16),
                 "film_hidden": (1, 4096), "context": (0, 8), "context_scales": (1, 3)}  # fmt: skip
CONTEXT_BACKBONES = ("efficientnet-lite0",)  # `ContextBranch`'s frozen backbones (its stem and 16 blocks)


class NormFiLM(nn.Module):
    """InstanceNorm (no affine of its own), then FiLM `gamma * x + beta`, then optional ReLU.

    (Tiled inference takes whole-image statistics in the inference engine, `mixtask.inference.translator`.)
    """

    eps = 1e-5

    def __init__(self, channels: int, relu: bool):
        super().__init__()
        self.channels = channels
        self.relu = relu

    def forward(self, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
        var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
        # Fold norm and FiLM into one per-channel affine: one pass over x instead of three.
        scale = gamma[:, :, None, None] * torch.rsqrt(var + self.eps)
        shift = beta[:, :, None, None] - mean * scale
        y = torch.addcmul(shift.to(x.dtype), x, scale.to(x.dtype))
        return F.relu(y) if self.relu else y


class ConvLayer(nn.Module):
    """Reflection-padded convolution, optionally after a nearest x2 up-sampling.

    Computed in an exact faster form where one exists (`mixtask.nets.convforms`): the up-sampling layers in
    the sub-pixel form, and with `shuffled` (a wide kernel to few channels, the output conv) as a stride-2
    conv + pixel shuffle. The parameters are the plain conv's either way."""

    def __init__(
        self, c_in: int, c_out: int, kernel: int, stride: int = 1, upsample: bool = False, shuffled: bool = False
    ):
        super().__init__()
        if (upsample or shuffled) and (stride != 1 or kernel % 2 == 0 or (upsample and kernel != 3)):
            raise ValueError("the faster forms need an odd kernel at stride 1 (3x3 after up-sampling)")
        self.upsample, self.shuffled = upsample, shuffled
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride)
        if shuffled:  # not saved: a constant of the kernel size
            self.register_buffer("taps", convforms.strided_taps(kernel), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, self.conv.weight)

    def run(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The layer with `weight` in place of its own (same padding, stride, bias, up-sampling)."""
        if convforms.enabled():
            if self.upsample:
                return convforms.upsample_conv(x, weight, self.conv.bias)
            if self.shuffled and x.shape[-2] % 2 == 0 and x.shape[-1] % 2 == 0:
                return convforms.shuffled_conv(self.pad(x), weight, self.conv.bias, self.taps)
        elif self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.conv2d(self.pad(x), weight, self.conv.bias, self.conv.stride)


class FiLMGenerator(nn.Module):
    """Fully-connected map from the task vector to every layer's (gamma, beta)."""

    def __init__(self, num_tasks: int, num_outputs: int, layers: int, hidden: int):
        super().__init__()
        sizes = [num_tasks] + [hidden] * (layers - 1) + [num_outputs]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        # Identity FiLM at init: the last layer outputs zeros and gamma is read as 1 + output.
        nn.init.zeros_(self.layers[-1].weight)
        nn.init.zeros_(self.layers[-1].bias)

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            c = layer(c)
            if i < len(self.layers) - 1:
                c = F.relu(c)
        return c


Shape = tuple[int, int, int, int, bool]  # a normed conv's (in, out, kernel, stride, upsample)
ENCODER, RESIDUAL, DECODER = slice(0, 3), slice(3, -2), slice(-2, None)  # parts of `layer_shapes`


def layer_shapes(config: ModelConfig) -> list[Shape]:
    """Johnson's normed convs in order: 3 down to 1/4 resolution, 2 per residual block, 2 up-sampling ones."""
    w = config.width
    return [
        (3, w, 9, 1, False), (w, 2 * w, 3, 2, False), (2 * w, 4 * w, 3, 2, False),
        *[(4 * w, 4 * w, 3, 1, False)] * (2 * config.res_blocks),
        (4 * w, 2 * w, 3, 1, True), (2 * w, w, 3, 1, True),
    ]  # fmt: skip


def layer_relus(config: ModelConfig) -> list[bool]:
    """Whether each of `layer_shapes` has a ReLU after its norm: all but a residual block's second conv."""
    return [True] * 3 + [True, False] * config.res_blocks + [True] * 2


def context_block(res_blocks: int) -> int:
    """The residual block before which the context branch runs: after the first half of them."""
    return res_blocks // 2


def run_layers(
    x: torch.Tensor,
    layer: Callable[[int, torch.Tensor], torch.Tensor],
    res_blocks: int,
    context: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Johnson's layer sequence, `layer(i, h)` computing normed layer i of `layer_shapes` (a residual block adds
    its input to its second layer's output). `context`, if given, runs after the first half of the residual
    blocks. Returns the features before the output conv."""
    h = x
    for i in range(3):
        h = layer(i, h)
    for block, i in enumerate(range(3, 3 + 2 * res_blocks, 2)):
        if context is not None and block == context_block(res_blocks):
            h = context(h)
        h = h + layer(i + 1, layer(i, h))
    for i in range(3 + 2 * res_blocks, 5 + 2 * res_blocks):
        h = layer(i, h)
    return h


def film_pairs(out: torch.Tensor, sizes: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A generator's output (B, 2 * sum(sizes)) -> per layer (gamma, beta), each (B, size); gamma is read as
    1 + output, so an all-zero output is the identity FiLM."""
    total = sum(sizes)
    gammas, betas = out[:, :total] + 1.0, out[:, total:]
    return list(zip(gammas.split(sizes, dim=1), betas.split(sizes, dim=1)))


GATED_CHANNELS = 5  # 3 colour + gate + renormalisation blend


def input_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel mean and std (B, 3, 1, 1) of the input image, in fp32."""
    var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, correction=0)
    return mean, torch.sqrt(var + NormFiLM.eps)


_gate_logits: list[torch.Tensor] | None = None  # where `recording_gates` collects the gated head's gate logits
_bottlenecks: list[torch.Tensor] | None = None  # where `recording_bottlenecks` collects MixNet's bottleneck features
_gate_ramp: tuple[float, float] | None = None  # set by `sharpened_gates`: the band `sharpen_gate` ramps over
# A gate as `apply` finishes with it, sharpened: 0 below 0.3, 1 above 0.7, linear between (`sharpen_gate`).
# A restoration's: the network's soft gate lets some of a hole's constant colour through (gates of 0.1-0.3 over
# holes) and blurs some known pixels (0.7-0.9). On the eval's 16 val crops with the step-601 file, as `apply`
# finishes them: holes 19.78 -> 20.22 dB, scratches 20.23 -> 20.28; a hard step at 0.5 gave 20.21 / 20.29, ramps
# over 0.45-0.55 and 0.4-0.6 the same within 0.05 dB: the widest keeps the output smoothest in space and strength
# (weights/training/probes/selfmask/results.txt). Seg's cut-out alpha (`mixtask.apply.cutout`): the faint haze it
# kept over the whole background goes (weights/training/probes/segsharp/results.txt).
GATE_RAMP = (0.3, 0.7)


@contextlib.contextmanager
def recording_bottlenecks() -> Iterator[list[torch.Tensor]]:
    """Collect MixNet's bottleneck features (B, 4w, H/4, W/4), the residual blocks' output, of every forward
    inside the block: training can supervise them through a small head of its own (`--deep-seg-weight`)."""
    global _bottlenecks
    previous, _bottlenecks = _bottlenecks, []
    try:
        yield _bottlenecks
    finally:
        _bottlenecks = previous


@contextlib.contextmanager
def recording_gates() -> Iterator[list[torch.Tensor]]:
    """Collect the gate logits (B, 1, H, W) of every gated head that runs inside the block, in call order.

    For seg the gate is the object mask (the output is gate x input, black elsewhere), so training can
    supervise it directly (`--seg-loss mask`) and a cut-out can read it as alpha; every architecture
    with the gated head supports this, as they all go through `apply_gated_head`."""
    global _gate_logits
    previous, _gate_logits = _gate_logits, []
    try:
        yield _gate_logits
    finally:
        _gate_logits = previous


@contextlib.contextmanager
def sharpened_gates(ramp: tuple[float, float] = GATE_RAMP) -> Iterator[None]:
    """Inside the block, every gated head mixes with its gate sharpened (`sharpen_gate`), and its local fill reads
    the sharpened gate as the kept pixels: `apply`'s finish of a restoration alone, where the gate marks what was
    missing (for seg it is the object's soft alpha, which stays soft)."""
    global _gate_ramp
    previous, _gate_ramp = _gate_ramp, ramp
    try:
        yield
    finally:
        _gate_ramp = previous


def sharpen_gate(gate, ramp: tuple[float, float] = GATE_RAMP):
    """A gate in [0, 1] (tensor or array) -> 0 below ramp[0], 1 above ramp[1], linear between."""
    low, high = ramp
    return ((gate - low) / (high - low)).clip(0, 1)


def apply_gated_head(
    raw: torch.Tensor,
    x: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    fill: bool = False,
    known: torch.Tensor | None = None,
) -> torch.Tensor:
    """The gated output head (config `head="gated"`, our change to the paper): y from raw, in fp32.

    Why: the paper's network cannot see its input's brightness or contrast. The first conv is
    linear and its InstanceNorm has no affine of its own, so x and a * x + b give the same
    output (a test pins this), and reconstruction has to guess each image's exposure: it
    stalled near 14 dB PSNR in training. Here the last conv has two more channels:
    raw = (colour n, gate, blend), g = sigmoid(gate), b = sigmoid(blend), and

        y = g * x + (1 - g) * (n * (b * std + 1 - b) + b * mean)

    The gate passes the input through (identity; the kept pixels of restoration and
    segmentation). The blend re-applies the input's per-channel mean and std to generated
    colours (fills of holes and scratches, predicted in the normalised units an exposure-blind
    network can know) or leaves them absolute (style, black background). mean/std: x's.

    With `fill` (config `head="gated-fill"`), the renormalised colours are offsets from a local fill of
    the input instead of its whole-image mean: `local_fill` of x from the pixels the gate keeps. The
    network then predicts a hole's or a scratch's colour against what surrounds it, and a colour of 0
    already gives a smooth fill (model card, "The gated head's fill").

    `known` (B, 1, H, W) in [0, 1], where a caller knows which pixels are missing (a user's inpainting mask,
    `mixtask.inference.inpainting`), replaces the gate: known pixels pass through, the rest are generated, and the
    local fill reads the known pixels alone. The network's own gate is a soft guess of the same map. Inside
    `sharpened_gates` the gate is sharpened, and read as the known map the same way.
    """
    raw, x = raw.float(), x.float()
    if _gate_logits is not None:
        _gate_logits.append(raw[:, 3:4])
    colour, gate, blend = raw[:, :3], torch.sigmoid(raw[:, 3:4]), torch.sigmoid(raw[:, 4:5])
    if known is not None:
        gate = keep = known.float()
    elif _gate_ramp is not None:
        gate = keep = sharpen_gate(gate, _gate_ramp)
    else:
        keep = kept_weight(gate.detach())
    base = local_fill(x, keep, mean) if fill else mean
    generated = colour * (blend * std + (1 - blend)) + blend * base
    return torch.lerp(generated, x, gate)


def kept_weight(gate: torch.Tensor) -> torch.Tensor:
    """How surely a pixel is kept, from the gate: 0 at a gate of 0.5 or less (a hole's faint pass-through must
    not colour its own fill), 1 at 1."""
    return (2 * gate - 1).clamp(0, 1)


FILL_CELL = 16  # local_fill's coarsest cells, in pixels at 256 px (holes are at most 48 px there)
_FILL_KERNEL = (1.0, 3.0, 3.0, 1.0)  # the pyramid's down-sampling kernel (a smoother fill than 2 x 2 boxes)


def fill_levels(height: int, width: int) -> int:
    """local_fill's pyramid depth: coarsest cells of FILL_CELL px per 256 px of the short side."""
    return max(1, round(math.log2(max(min(height, width), 32) / 256 * FILL_CELL)))


def local_fill(x: torch.Tensor, keep: torch.Tensor, fallback: torch.Tensor, levels: int | None = None) -> torch.Tensor:
    """x where keep is 1, elsewhere interpolated from the kept pixels around (pull-push, Gortler et al. 1996):
    the kept colours are averaged down a pyramid (each level's weight is 4 x its children's mean, at most 1),
    then each level fills what it lacks from the next coarser one, up-sampled. Where no kept pixel lies within
    the coarsest cells, `fallback` (B, C, 1, 1). x (B, C, H, W), keep (B, 1, H, W) in [0, 1]."""
    levels = fill_levels(*x.shape[-2:]) if levels is None else levels
    if levels == 0 or min(x.shape[-2:]) < 2:
        return torch.lerp(fallback.expand_as(x), x, keep)
    kernel = torch.tensor(_FILL_KERNEL, device=x.device)
    kernel = (kernel[:, None] * kernel[None, :] / kernel.sum() ** 2).expand(x.shape[1] + 1, 1, 4, 4)
    both = F.pad(torch.cat([x * keep, keep], 1), (1, 1, 1, 1), mode="replicate")
    pooled = F.conv2d(both, kernel.to(both.dtype), stride=2, groups=x.shape[1] + 1)
    weight = pooled[:, -1:]
    coarse = local_fill(pooled[:, :-1] / weight.clamp_min(1e-6), (4 * weight).clamp(max=1), fallback, levels - 1)
    return torch.lerp(F.interpolate(coarse, size=x.shape[-2:], mode="bilinear", align_corners=False), x, keep)


def output_channels(config: ModelConfig) -> int:
    return GATED_CHANNELS if config.head in GATED_HEADS else 3


def output_conv(config: ModelConfig) -> ConvLayer:
    """The last conv: 9x9, width -> RGB (or the gated head's 5 channels, gate and blend at 0.5 everywhere), no norm."""
    if config.head not in HEADS:
        raise ValueError(f"unknown output head {config.head!r} (known: {', '.join(HEADS)})")
    conv = ConvLayer(config.width, output_channels(config), 9, shuffled=True)
    if config.head in GATED_HEADS:
        nn.init.zeros_(conv.conv.weight[3:])
        nn.init.zeros_(conv.conv.bias[3:])
    return conv


def apply_head(config: ModelConfig, raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The image from `output_conv`'s output through the config's head; x: the network's input."""
    if config.head == "rgb":
        return raw
    return apply_gated_head(raw, x, *input_stats(x), fill=config.head == FILL_HEAD).to(raw.dtype)


CONTEXT_POOL = 8  # bottleneck cells (1/4 of the image) per context cell: the branch works at 1/32


class ContextBranch(nn.Module):
    """Global context (config `context` > 0; our change to the paper), added to the bottleneck features.

    Why: Johnson's network sees about 110 px around each pixel. A salient object larger than that, or
    one that has to be told from the background photo's own objects, needs the whole picture: with
    it alone the network marks an object's most distinctive parts (a badge on a suit). The branch
    average-pools the features to 1/32 of the image, runs `context` 3x3 convs there (IN + FiLM + ReLU
    each, from its own FiLM generator), and adds a 1x1 conv of the result, up-sampled, to the features.
    Three convs at 1/32 see about 250 px for the cost of a few thousandths of the network's work.
    The 1x1 conv starts at zero, so a network given the branch computes what it computed without it
    (a warm start from weights without one is exact).

    With `context_backbone`, a frozen ImageNet network (EfficientNet-Lite0's stem and blocks, 1/32 of the
    image, 320 channels) also looks at the input, and a zero-started 1x1 projection of its features is
    added to the pooled ones: what is an object, which 2 CPU cores cannot learn from a few hundred photos,
    with no backward pass (its measured cost: README, "The network"). Its weights are part of the network's
    file. With `context_scales` 2 or 3, the backbone's 1/16 (and 1/8) stages are also added, through zero-started
    1x1 projections, to the bottleneck features themselves (bilinear up-sampling): where an object's edge runs,
    which 1/32 cells cannot say."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        channels = 4 * config.width
        self.convs = nn.ModuleList(
            nn.Conv2d(channels, channels, 3, padding=1)
            for _ in range(config.context)  # zero pad: any grid size
        )
        self.norms = nn.ModuleList(NormFiLM(channels, relu=True) for _ in range(config.context))
        self.film = FiLMGenerator(config.num_tasks, 2 * channels * config.context, config.film_layers,
                                  config.film_hidden)  # fmt: skip
        self.out = zero_started(nn.Conv2d(channels, channels, 1))
        self.backbone = self.project = None
        self.skips = nn.ModuleList()
        self.taps: tuple[int, ...] = ()
        if config.context_backbone:
            from mixtask.backbones.efficientnet_lite import SCALE_TAPS, EfficientNetTrunk

            self.backbone = EfficientNetTrunk().requires_grad_(False)
            self.taps = SCALE_TAPS[: config.context_scales]
            self.project = zero_started(nn.Conv2d(self.backbone.out_channels, channels, 1))
            self.skips.extend(
                zero_started(nn.Conv2d(self.backbone.channels[tap], channels, 1)) for tap in self.taps[1:]
            )

    def train(self, mode: bool = True) -> ContextBranch:
        super().train(mode)
        if self.backbone is not None:
            self.backbone.eval()  # frozen or tuned, its BatchNorms keep their ImageNet statistics
        return self

    @property
    def backbone_tuned(self) -> bool:
        """Whether training updates the backbone too (`mixtask train --tune-backbone`); it is frozen otherwise."""
        return self.backbone is not None and any(parameter.requires_grad for parameter in self.backbone.parameters())

    def film_params(self, c: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return film_pairs(self.film(c.float()), [norm.channels for norm in self.norms])

    def image_features(self, x: torch.Tensor, prepare=None) -> list[torch.Tensor] | None:
        """The backbone's features of the network's input x (B, 3, H, W) in [0, 1] (or of what `prepare` makes
        of its windows), or None without a backbone: (B, 320, ceil(H/32), ceil(W/32)), then with more
        `context_scales` the 1/16 and 1/8 stages."""
        if self.backbone is None:
            return None
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.backbone_tuned):
            return self.backbone.features(x, prepare, taps=self.taps)

    def summary(
        self, h: torch.Tensor, film: list[tuple[torch.Tensor, torch.Tensor]], features: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The context at 1/32 of the image, (B, C, ceil(H/8), ceil(W/8)) in fp32, from the pooled features h
        (B, C, H, W) and the backbone's `image_features`; film: `film_params` of the task vectors."""
        p = F.avg_pool2d(h, CONTEXT_POOL, ceil_mode=True, count_include_pad=False).float()
        if self.project is not None:
            p = p + self.project(features[0].float())
        for conv, norm, (gamma, beta) in zip(self.convs, self.norms, film):
            p = norm(conv(p), gamma, beta)
        return self.out(p)

    def addend(
        self, h: torch.Tensor, film: list[tuple[torch.Tensor, torch.Tensor]], features: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """What the branch adds to h, in h's dtype: the summary up-sampled, and each finer stage projected and
        resized to h (bilinear). Projection and resizing are both linear (and the resizing's weights sum to
        1, so the bias passes through): the two orders are one map, taken in the cheaper order. Training
        resizes the stage first, with no gradient through the resizing (with one, a compiled step cost 24 % more
        than without the stages; this way 17 %, model card): a tuned backbone learns through its 1/32 features
        alone. Inference projects first, on the small grid (bounded memory)."""
        added = upsampled(self.summary(h, film, features), h)
        for project, stage in zip(self.skips, features[1:] if self.skips else ()):  # 1/16, then 1/8
            if torch.is_grad_enabled():
                added = added + project(bilinear(stage.detach().float(), h)).to(h.dtype)
            else:
                added = added + bilinear(project(stage.float()), h).to(h.dtype)
        return added

    def forward(
        self, h: torch.Tensor, film: list[tuple[torch.Tensor, torch.Tensor]], features: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """h plus the context of the whole picture, up-sampled to it."""
        return h + self.addend(h, film, features)


def bilinear(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """x resized to like's height and width."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


def zero_started(layer: nn.Conv2d) -> nn.Conv2d:
    """The layer with zero weight and bias: a branch it ends adds nothing until trained (warm starts are exact)."""
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


CONTEXT_REPEAT = 4  # `upsampled`: bilinear to 1/4 of the features' size, then each value repeated 4 x 4


def upsampled(summary: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The context summary up-sampled to `like`'s size, in its dtype: bilinear to a quarter of that size, then
    nearest. Why not bilinear all the way: Inductor (torch 2.14, CPU) compiles a large bilinear up-sampling
    into a training step about 20 % slower (also as two matrix products); this costs about 3 %."""
    height, width = like.shape[-2:]
    k = CONTEXT_REPEAT
    small = F.interpolate(summary.float(), size=(-(-height // k), -(-width // k)), mode="bilinear", align_corners=False)
    batch, channels, rows, columns = small.shape
    repeated = small.to(like.dtype)[:, :, :, None, :, None].expand(batch, channels, rows, k, columns, k)
    return repeated.reshape(batch, channels, rows * k, columns * k)[:, :, :height, :width]


class MixNet(TaskNet):
    """Johnson encoder-decoder with IN + FiLM after every conv but the last."""

    mixes, continuous, task_maps = True, True, False  # what it can do (see mixtask.nets.registry)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        shapes = layer_shapes(config)
        self.encoder = nn.ModuleList(ConvLayer(*shape) for shape in shapes[ENCODER])
        self.residual = nn.ModuleList(ConvLayer(*shape) for shape in shapes[RESIDUAL])
        self.decoder = nn.ModuleList(ConvLayer(*shape) for shape in shapes[DECODER])
        self.output = output_conv(config)
        convs, relus = [*self.encoder, *self.residual, *self.decoder], layer_relus(config)
        self.norms = nn.ModuleList(NormFiLM(conv.conv.out_channels, relu) for conv, relu in zip(convs, relus))
        self.film_channels = sum(norm.channels for norm in self.norms)
        self.film = FiLMGenerator(config.num_tasks, 2 * self.film_channels, config.film_layers, config.film_hidden)
        self.context = ContextBranch(config) if config.context else None

    def film_params(self, c: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (gamma, beta), each (batch, channels), for task vectors c (batch, tasks)."""
        return film_pairs(self.film(c.float()), [norm.channels for norm in self.norms])

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, H, W) in [0, 1], H and W multiples of 4; c: (B, tasks) -> (B, 3, H, W)."""
        convs, film = [*self.encoder, *self.residual, *self.decoder], self.film_params(c)

        first_decoder = len(convs) - 2

        def layer(i: int, h: torch.Tensor) -> torch.Tensor:
            if i == first_decoder and _bottlenecks is not None:
                _bottlenecks.append(h)
            return self.norms[i](convs[i](h), *film[i])

        context = None
        if self.context is not None:
            film_c, features = self.context.film_params(c), self.context.image_features(x)
            context = functools.partial(self.context, film=film_c, features=features)
        return apply_head(self.config, self.output(run_layers(x, layer, self.config.res_blocks, context)), x)

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Like forward, for any H and W: pad to a multiple of 4 (at least 16), then crop back."""
        return forward_any_size(self.forward, x, c)


def padding_to_multiple(side: int, multiple: int = 4, minimum: int = 16) -> int:
    """Pixels to add so that `side` becomes a multiple of `multiple`, and at least `minimum`."""
    return max(minimum, side + (-side % multiple)) - side


def any_size_padding(height: int, width: int) -> tuple[int, int, bool]:
    """(bottom pad, right pad, whether by reflection) that `forward_any_size` gives an image.

    Reflection keeps edges natural; it needs the pad smaller than the side, else edges are repeated."""
    pad_h, pad_w = padding_to_multiple(height), padding_to_multiple(width)
    return pad_h, pad_w, pad_h < height and pad_w < width


def pad_any_size(x: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """Pad (..., H, W) right and bottom so both sides are multiples of 4, at least 16 (`forward`'s rule).

    With `like`, x is padded by what like's sides need (a task map exactly as its image)."""
    pad_h, pad_w, reflect = any_size_padding(*(x if like is None else like).shape[-2:])
    if not (pad_h or pad_w):
        return x
    return F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if reflect else "replicate")


def forward_any_size(forward: Callable, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """`forward(x, c)` for any H and W: x padded by `pad_any_size`, then cropped back.

    A per-pixel task map c (B, tasks, H, W) is padded exactly like x."""
    height, width = x.shape[-2:]
    c = pad_any_size(c, like=x) if c.dim() == 4 else c
    return forward(pad_any_size(x), c)[..., :height, :width]


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
