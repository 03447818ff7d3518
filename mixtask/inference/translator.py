"""Inference: a task vector applied to images of any size (paper, Sec. 3.2 and 3.3).

`Translator` is the public entry point: it picks the device and precision (`devices`), rewrites
the trained `MixNet` into an `InferenceNet` and runs it untiled for small images or streamed
through tiles for large ones (`tiling`). `InferenceNet` computes the same function as
`MixNet.forward` with fewer passes over memory (see README, "Speed"):

- channels-last activations and weights cast to the precision (bf16 on CPUs with bf16 dot
  products: 1.9x fp32);
- nearest x2 up-sampling + reflection pad + 3x3 conv rewritten as a replicate pad + 2x2 conv
  with 4x the outputs, interleaved ("sub-pixel" form): no up-sampled tensor and 2.25x fewer
  multiply-adds;
- the last 9x9 conv (32 -> 3 channels, which vectorises badly) rewritten as a 10x10 stride-2
  conv to 12 channels + pixel shuffle: 3x faster;
- InstanceNorm + FiLM (+ ReLU) applied as one per-channel affine written straight into the
  padded input buffer of the next conv; statistics from one fused kernel, kept in fp32.

The other architectures of `mixtask.nets.registry` run as they are through `ModuleNet` (autocast for
half precision, never tiled); `Translator` checks what each one can be asked (`capabilities`).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mixtask.choices import FILL_HEAD, GATED_HEADS
from mixtask.errors import MixtaskError
from mixtask.fileio import cache_dir, write_bytes_atomic
from mixtask.inference import devices, tiling
from mixtask.nets import capabilities
from mixtask.nets.convforms import strided_conv, strided_weight, subpixel_conv, subpixel_weight
from mixtask.nets.film import (
    MixNet,
    any_size_padding,
    apply_gated_head,
    context_block,
    film_pairs,
    input_stats,
    pad_any_size,
)
from mixtask.tensors import from_uint8, psnr_db, to_uint8
from mixtask.weights import WeightsInfo, load_weights

CL = torch.channels_last
EPS = 1e-5  # InstanceNorm epsilon, as in model.NormFiLM
PROBE_SIZE = 64
# An image whose short side is under the weights' training crop is run enlarged to it (`Translator._run`), its long
# side at most this many times the crop: a strip of a few pixels stays as it is rather than growing without bound.
ENLARGE_MAX_ASPECT = 4

Stats = list  # per norm layer, in order: (mean, var), each (B or 1, C) fp32
Gated = tuple[np.ndarray, np.ndarray | None]  # an output (H, W, 3) uint8 and its gate (H, W) float32, or None


def enlarged_size(height: int, width: int, scale: float) -> tuple[int, int]:
    """The size an image of this size is enlarged to by `enlarged`."""
    return round(height * scale), round(width * scale)


def enlarged(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Float images (B, 3, H, W) in [0, 1], enlarged `scale` times (bicubic, clamped back to [0, 1])."""
    size = enlarged_size(x.shape[-2], x.shape[-1], scale)
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False).clamp_(0, 1)


def channel_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample, per-channel (mean, biased var) of (B, C, H, W) in fp32, one pass over y."""
    if y.device.type != "cpu":
        var, mean = torch.var_mean(y.float(), dim=(2, 3), correction=0)
        return mean, var
    means, variances = [], []
    for sample in y.split(1):  # the batch-norm kernel reduces over the batch: one sample at a time
        # Without running statistics this returns the biased variance, as InstanceNorm uses.
        mean, var = torch.batch_norm_update_stats(sample.contiguous(memory_format=CL), None, None, 0.0)
        means.append(mean.float())
        variances.append(var.float())
    return torch.stack(means), torch.stack(variances)


def fill_border(padded: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """Fill the `pad`-wide border of a buffer whose interior is already written (reflect/replicate)."""
    if pad == 0:
        return padded
    height, width = padded.shape[-2] - 2 * pad, padded.shape[-1] - 2 * pad
    rows = slice(pad, pad + width)
    for i in range(pad):
        top, bottom = (pad + 1 + i, pad + height - 2 - i) if mode == "reflect" else (pad, pad + height - 1)
        padded[:, :, pad - 1 - i, rows] = padded[:, :, top, rows]
        padded[:, :, pad + height + i, rows] = padded[:, :, bottom, rows]
    for i in range(pad):
        left, right = (pad + 1 + i, pad + width - 2 - i) if mode == "reflect" else (pad, pad + width - 1)
        padded[:, :, :, pad - 1 - i] = padded[:, :, :, left]
        padded[:, :, :, pad + width + i] = padded[:, :, :, right]
    return padded


def _exact(weight: torch.Tensor) -> torch.Tensor:
    """A weight in float64 on the CPU, where the rewrites fold taps without rounding."""
    return weight.detach().cpu().double()


def _engine_copy(branch: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The context branch for the engine: an fp32 copy on `device` that training cannot change under it. A
    frozen backbone is shared instead where it is already there in fp32: copying its 3 M weights was the
    slowest step of building the engine (one that `--tune-backbone` trains is copied)."""
    backbone = getattr(branch, "backbone", None)
    shared = (
        backbone is not None
        and not branch.backbone_tuned
        and all(  # (BatchNorms' step counts are integers)
            t.device == torch.device(device) and (t.dtype == torch.float32 or not t.is_floating_point())
            for t in backbone.state_dict().values()
        )
    )
    return copy.deepcopy(branch, {id(backbone): backbone} if shared else {}).float().to(device).eval()


class InferenceNet:
    """A `MixNet` prepared for inference on one device in one dtype (same outputs, less work).

    The forward pass is split at the bottleneck so that `tiling` can stream large images:
    `encode` (full -> 1/4 resolution), `bottleneck` (the residual blocks) and `decode`. Each
    takes `stats`, a list of per-layer (mean, var) that it *extends* with the statistics of
    every layer it normalises beyond the list's end: pass `[]` to compute everything (plain
    InstanceNorm), or a full list to run with frozen whole-image statistics (tiles).
    `stop=k` returns the raw (pre-norm) output of layer k instead, for statistics passes.
    """

    tiles = True  # `tiling` can stream it

    def __init__(self, model: MixNet, device: torch.device, dtype: torch.dtype):
        if not isinstance(model, MixNet):
            raise MixtaskError(f"cannot run a {type(model).__name__} model: this mixtask knows the FiLM network only")
        self.device, self.dtype = device, dtype
        # Half precision loses most accuracy in the first two full-resolution layers (PSNR
        # against fp32 45 dB instead of 40 on a full-width net): they stay in fp32 (+10% time).
        self.stem_dtype = torch.float32 if dtype in (torch.bfloat16, torch.float16) else dtype
        self.config = model.config
        self.gated = model.config.head in GATED_HEADS
        self.fill = model.config.head == FILL_HEAD
        self.film_generator = copy.deepcopy(model.film).float().to(device).eval()
        self.channels = [norm.channels for norm in model.norms]
        self.relus = [norm.relu for norm in model.norms]
        self.encoder = [
            self._conv(layer.conv.weight, layer.conv.bias, self.stem_dtype if i < 2 else dtype)
            for i, layer in enumerate(model.encoder)
        ]
        self.residual = [self._conv(layer.conv.weight, layer.conv.bias) for layer in model.residual]
        self.decoder = [
            self._conv(subpixel_weight(_exact(layer.conv.weight)), layer.conv.bias.repeat(4)) for layer in model.decoder
        ]
        out = model.output.conv
        self.output = self._conv(strided_weight(_exact(out.weight)), out.bias.repeat_interleave(4))
        # The context branch works on 1/32 of the image: a few thousandths of the work, run as it is in fp32.
        self.context = None if model.context is None else _engine_copy(model.context, device)

    channel_stats = staticmethod(channel_stats)

    def _conv(self, weight: torch.Tensor, bias: torch.Tensor, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
        dtype = dtype or self.dtype
        return weight.detach().to(self.device, dtype).contiguous(memory_format=CL), bias.detach().to(self.device, dtype)

    @torch.inference_mode()
    def film(self, vectors: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per-layer (gamma, beta), each (B, C) fp32, for task vectors (B, tasks); the context branch's
        layers, if any, after the norm layers'."""
        vectors = vectors.to(self.device, torch.float32)
        pairs = film_pairs(self.film_generator(vectors), self.channels)
        return pairs if self.context is None else pairs + self.context.film_params(vectors)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Image tensor (uint8 0..255 or float 0..1, any device) -> this net's device, dtype, layout."""
        is_bytes = x.dtype == torch.uint8
        x = x.to(self.device, non_blocking=True).to(self.stem_dtype, memory_format=CL)
        return x.div_(255) if is_bytes else x

    # --- the pieces of the forward pass -------------------------------------------------------

    def _affine(self, index, y, film, stats) -> tuple[torch.Tensor, torch.Tensor]:
        """InstanceNorm + FiLM of layer `index` folded into one (scale, shift), (B, C, 1, 1)."""
        if index >= len(stats):
            assert index == len(stats), "statistics must be filled in layer order"
            stats.append(channel_stats(y))
        mean, var = stats[index]
        gamma, beta = film[index]
        scale = gamma * torch.rsqrt(var + EPS)
        shift = beta - mean * scale
        return scale.to(y.dtype)[:, :, None, None], shift.to(y.dtype)[:, :, None, None]

    def normalize(self, index, y, film, stats, pad=0, mode="reflect", skip=None, dtype=None) -> torch.Tensor:
        """Norm + FiLM (+ ReLU, + skip) of raw output y, written into a buffer padded for the next
        conv (in `dtype`, default y's). The affine is computed in y's dtype: mixed-dtype kernels are slow."""
        scale, shift = self._affine(index, y, film, stats)
        dtype = dtype or y.dtype
        if pad == 0 and dtype == y.dtype:
            out = inner = y
        else:
            size = (y.shape[0], y.shape[1], y.shape[2] + 2 * pad, y.shape[3] + 2 * pad)
            out = torch.empty(size, dtype=dtype, device=y.device, memory_format=CL)
            inner = out[:, :, pad : pad + y.shape[2], pad : pad + y.shape[3]]
        result = y if dtype != y.dtype else inner
        torch.addcmul(shift, y, scale, out=result)
        if self.relus[index]:
            result.relu_()
        if skip is not None:
            result.add_(skip)
        if result is not inner:
            inner.copy_(result)
        return fill_border(out, pad, mode)

    def conv_same(self, h: torch.Tensor, index: int, band: int | None = None, in_place: bool = False) -> torch.Tensor:
        """Reflection-padded 3x3 conv of residual layer `index`.

        With `band`, row band by row band (bounded scratch memory); `in_place` then writes the
        output over h band by band, keeping a copy of the one input row the next band still needs.
        """
        weight, bias = self.residual[index]
        height = h.shape[2]
        if band is None or height <= band:
            return F.conv2d(F.pad(h, (1, 1, 1, 1), mode="reflect"), weight, bias)
        out = h if in_place else torch.empty_like(h, memory_format=CL)
        above = None  # input row just above the band (saved before `out` overwrote it)
        for top in range(0, height, band):
            bottom = min(top + band, height)
            rows = h[:, :, top : bottom + 1] if above is None else torch.cat([above, h[:, :, top : bottom + 1]], dim=2)
            pads = (1, 1, int(top == 0), int(bottom == height))  # real neighbours inside, reflection at edges
            result = F.conv2d(F.pad(rows, pads, mode="reflect"), weight, bias)
            above = h[:, :, bottom - 1 : bottom].clone()
            out[:, :, top:bottom] = result
        return out

    # --- the three stages -----------------------------------------------------------------------

    def encode(self, x: torch.Tensor, film, stats: Stats, stop: int | None = None) -> torch.Tensor:
        """Layers 0-2: prepared image (B, 3, H, W), H and W multiples of 4 -> (B, 4w, H/4, W/4)."""
        (w0, b0), (w1, b1), (w2, b2) = self.encoder
        y = F.conv2d(F.pad(x, (4, 4, 4, 4), mode="reflect"), w0, b0)
        if stop == 0:
            return y
        y = F.conv2d(self.normalize(0, y, film, stats, pad=1), w1, b1, stride=2)
        if stop == 1:
            return y
        y = F.conv2d(self.normalize(1, y, film, stats, pad=1, dtype=self.dtype), w2, b2, stride=2)
        return y if stop == 2 else self.normalize(2, y, film, stats)

    def image_features(self, x: torch.Tensor) -> list[torch.Tensor] | None:
        """The context branch's backbone features of the whole image x (1, 3, H, W), uint8 or float on any device
        (moved and converted window by window), or None without a backbone."""
        if self.context is None:
            return None
        return self.context.image_features(x, prepare=lambda window: self.prepare(window).float())

    def bottleneck(self, h: torch.Tensor, film, stats: Stats, band: int | None = None, features=None) -> torch.Tensor:
        """The residual blocks (layers 3-12) on the normalised encoder output, and the context branch if any
        (on the whole h, also when streamed: its pooled picture is the whole image's; `features`: the image's
        `image_features`)."""
        blocks = len(self.residual) // 2
        for block in range(blocks):
            if self.context is not None and block == context_block(blocks):
                h.add_(self.context.addend(h, film[len(self.channels) :], features))
            first = 3 + 2 * block
            t = self.normalize(first, self.conv_same(h, 2 * block, band), film, stats)
            u = self.conv_same(t, 2 * block + 1, band, in_place=True)  # streamed: two bottleneck tensors, not three
            h = self.normalize(first + 1, u, film, stats, skip=h)
        return h

    def decode(self, h: torch.Tensor, film, stats: Stats, stop: int | None = None) -> torch.Tensor:
        """Layers 13-14 and the output conv: (B, 4w, h, w) -> raw output (B, 3 or 5, 4h, 4w), see `finish`."""
        first = len(self.relus) - 2
        y = subpixel_conv(F.pad(h, (1, 1, 1, 1), mode="replicate"), *self.decoder[0])
        if stop == first:
            return y
        y = subpixel_conv(self.normalize(first, y, film, stats, pad=1, mode="replicate"), *self.decoder[1])
        if stop == first + 1:
            return y
        weight, bias = self.output
        return strided_conv(self.normalize(first + 1, y, film, stats, pad=4), weight, bias)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, film, stats: Stats | None = None, known=None) -> torch.Tensor:
        """Whole network on a prepared image whose sides are multiples of 4 (at least 16); `known`: `finish`'s."""
        stats = [] if stats is None else stats
        features = self.image_features(x)
        raw = self.decode(self.bottleneck(self.encode(x, film, stats), film, stats, features=features), film, stats)
        return self.finish(raw, x, self.input_stats(x), known)

    def input_stats(self, x: torch.Tensor):
        """What the output head needs of the whole prepared input: its (mean, std), or None."""
        return input_stats(x) if self.gated else None

    def finish(self, raw: torch.Tensor, x: torch.Tensor, stats, known=None) -> torch.Tensor:
        """Raw output + the matching input pixels -> the image (the gated head; see `model`). `known` (B, 1, H, W)
        float: the pixels known to be kept, in place of the gate (`apply_gated_head`); the rgb head has no gate."""
        return apply_gated_head(raw, x, *stats, fill=self.fill, known=known) if self.gated else raw

    def forward_any_size(self, x: torch.Tensor, film, known=None) -> torch.Tensor:
        """Like `MixNet.forward_any_size`: pad to a multiple of 4 (at least 16), run, crop back."""
        height, width = x.shape[-2:]
        known = None if known is None else pad_to_multiple(known)
        return self.forward(pad_to_multiple(x), film, known=known)[..., :height, :width]


class ModuleNet:
    """Any other architecture of `mixtask.nets.registry`, run as it is (the interface `Translator` uses).

    InferenceNet's rewrites are MixNet's own, so here the module's `forward_any_size` runs
    unchanged, on channels-last input; half precision is autocast (the weights stay fp32),
    checked by the same quality probe. These networks are never tiled (`tiles`): `Translator`
    refuses an image over the untiled memory budget. `film` is the identity: the task vectors
    (or per-pixel task maps) go to the module as they are.
    """

    tiles = False

    def __init__(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype):
        self.device, self.dtype = device, dtype
        self.config = model.config
        self.module = model.to(device).eval()  # shared by the fp32 and half engines: autocast needs no copy

    def film(self, vectors: torch.Tensor) -> torch.Tensor:
        return vectors.to(self.device, torch.float32)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """Image tensor (uint8 0..255 or float 0..1, any device) -> fp32 channels-last on this device."""
        is_bytes = x.dtype == torch.uint8
        x = x.to(self.device, non_blocking=True).to(torch.float32, memory_format=CL)
        return x.div_(255) if is_bytes else x

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32)

    @torch.inference_mode()
    def forward(self, x: torch.Tensor, vectors: torch.Tensor, stats=None, known=None) -> torch.Tensor:
        """Whole network on a prepared image whose sides are multiples of 4 (at least 16). These modules take no
        `known` map: their own output stands where a caller knows the pixels are missing."""
        with self._autocast():
            return self.module.forward(x, vectors)

    @torch.inference_mode()
    def forward_any_size(self, x: torch.Tensor, vectors: torch.Tensor, known=None) -> torch.Tensor:
        with self._autocast():
            return self.module.forward_any_size(x, vectors)


def engine(model: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> InferenceNet | ModuleNet:
    """The fast rewritten engine for the FiLM network, the module as it is for any other."""
    return (InferenceNet if isinstance(model, MixNet) else ModuleNet)(model, device, dtype)


def pad_to_multiple(x: torch.Tensor) -> torch.Tensor:
    """`model.pad_any_size`, also for uint8 images on the CPU: torch pads floats only, and numpy keeps
    a large image at 1 byte per value while it is padded."""
    if x.dtype != torch.uint8 or x.device.type != "cpu":
        return pad_any_size(x.float() if x.dtype == torch.uint8 else x)
    pad_h, pad_w, reflect = any_size_padding(*x.shape[-2:])
    if not (pad_h or pad_w):
        return x
    padded = np.pad(x[0].permute(1, 2, 0).numpy(), ((0, pad_h), (0, pad_w), (0, 0)), "reflect" if reflect else "edge")
    return torch.from_numpy(padded).permute(2, 0, 1)[None]


def probe_image(size: int = PROBE_SIZE) -> torch.Tensor:
    """A fixed synthetic image (gradients, edges, texture) for the half-precision quality check."""
    line = torch.linspace(0, 1, size)
    yy, xx = torch.meshgrid(line, line, indexing="ij")
    generator = torch.Generator().manual_seed(0)
    noise = torch.rand((3, size, size), generator=generator)
    red = 0.5 + 0.4 * torch.sin(9 * xx + 4 * yy)
    green = ((xx * 6).floor() + (yy * 6).floor()) % 2 * 0.6 + 0.2
    blue = xx * yy
    return (torch.stack([red, green, blue]) * 0.85 + 0.15 * noise).clamp(0, 1)[None]


class Translator:
    """A loaded model ready to translate images: `translate(image, "denoise=1,style1=0.5")`.

    `device`: auto | cpu | cuda | cuda:N | mps. `precision`: auto | fp32 | bf16 | fp16 (see
    `devices`; `auto` keeps half precision only if the probe image stays >= 40 dB PSNR against
    fp32: `probe_psnr` records the figure). `tile`: None or 0 = automatic (untiled while the
    image fits the memory budget, else streamed in tiles), N = tiles of N x N pixels; only the
    FiLM network runs in tiles. Task vectors are checked against what the architecture can do
    (`capabilities`): a mix or a fractional strength it cannot take is a MixtaskError.

    An image whose short side is under `working_side` (the crop size the weights were trained at, from their
    provenance; None: no minimum) runs enlarged to it: the network learnt its tasks at that scale, and on
    smaller grids its seg, styles and mixes drift from what it does at that scale (README, "What you see").
    """

    def __init__(self, model, info: WeightsInfo, *, device="auto", precision="auto", tile: int | None = None):
        self.info = info
        self.task_set = info.task_set
        self.device = devices.resolve_device(device)
        requested = devices.check_precision(precision, self.device)
        self.tile = tiling.check_tile(tile)
        trained_size = info.provenance.get("size")
        self.working_side: int | None = trained_size if isinstance(trained_size, int) and trained_size > 0 else None
        self.probe_psnr: float | None = None
        self.capabilities = capabilities.of_model(model)
        if self.tile is not None and not isinstance(model, MixNet):
            raise MixtaskError(f"--tile: only film models run in tiles, not {self.capabilities.arch}; use --tile 0")
        model = model.eval()
        with devices.threads_for(0, self.device):  # weight rewrites and the probe: small ops only
            if requested == "auto":
                self.precision, self.net = self._choose_precision(model)
            else:
                self.precision = requested
                self.net = engine(model, self.device, devices.dtype_of(requested))

    @classmethod
    def from_file(
        cls, weights: str | Path | None = None, *, device="auto", precision="auto", tile: int | None = None
    ) -> Translator:
        """Load a weights file (default: the shipped model) onto a device."""
        model, info = load_weights(weights)
        return cls(model, info, device=device, precision=precision, tile=tile)

    def _choose_precision(self, model) -> tuple[str, InferenceNet | ModuleNet]:
        candidate = devices.auto_candidate(self.device)
        if candidate == "fp32":
            return "fp32", engine(model, self.device, torch.float32)
        half = engine(model, self.device, devices.dtype_of(candidate))
        key = probe_key(self.info.path, self.device, candidate)
        self.probe_psnr = cached_probe(key)
        if self.probe_psnr is not None and self.probe_psnr >= devices.MIN_HALF_PSNR:
            return candidate, half  # a cached verdict: the fp32 engine is not needed (a start-up saving)
        reference = engine(model, self.device, torch.float32)
        if self.probe_psnr is None:
            self.probe_psnr = probe_psnr(reference, half, len(self.task_set))
            remember_probe(key, self.probe_psnr)
        if self.probe_psnr >= devices.MIN_HALF_PSNR:
            return candidate, half
        return "fp32", reference

    def parse_task(self, text: str) -> tuple[float, ...]:
        """`denoise=1,style1=0.6` -> task vector (names and aliases from the weights)."""
        return self.task_set.parse(text)

    def _vectors(self, task, batch: int, size: tuple[int, int]) -> torch.Tensor:
        """A task text, a vector, or one vector per sample -> (batch, tasks) fp32 tensor; for an
        architecture with task maps also one vector per pixel, (batch, tasks, H, W) for images of `size`."""
        if isinstance(task, str):
            task = self.parse_task(task)
        elif isinstance(task, Mapping):
            task = self.task_set.vector(task)
        vectors = torch.as_tensor(task, dtype=torch.float32).cpu()
        if vectors.ndim == 1:
            vectors = vectors.expand(batch, -1)
        maps = self.capabilities.task_maps and vectors.ndim == 4
        if vectors.shape != (batch, len(self.task_set), *(size if maps else ())):
            raise self._shape_error(vectors, batch, size)
        if not torch.isfinite(vectors).all() or vectors.min() < 0 or vectors.max() > 1:
            raise MixtaskError("task strengths must be in [0, 1]")
        capabilities.check_vectors(self.capabilities, vectors)
        return vectors

    def check_task(self, task) -> None:
        """A MixtaskError now, before any image, if the architecture cannot do `task` (text, vector or map)."""
        vectors = torch.as_tensor(self.parse_task(task) if isinstance(task, str) else task, dtype=torch.float32)
        capabilities.check_vectors(self.capabilities, vectors[None] if vectors.ndim in (1, 3) else vectors)

    def _shape_error(self, vectors: torch.Tensor, batch: int, size: tuple[int, int]) -> MixtaskError:
        arch, tasks = self.capabilities.arch, len(self.task_set)
        if vectors.ndim == 4 and not self.capabilities.task_maps:
            return MixtaskError(f"the {arch} architecture takes one task vector per image, not per-pixel task maps")
        maps = f", or task maps of shape {(batch, tasks, *size)}" if self.capabilities.task_maps else ""
        return MixtaskError(
            f"task vector of shape {tuple(vectors.shape)} does not fit {batch} image(s) and "
            f"{tasks} tasks ({', '.join(self.task_set.names)}){maps}"
        )

    def _tiled(self, height: int, width: int) -> bool:
        """Whether an image is streamed in tiles (`tiling`); too big for an engine without tiles is an error."""
        tiled = tiling.use_tiles(height, width, self.tile, self.net)
        if tiled and not self.net.tiles:
            raise MixtaskError(
                f"{width}x{height} px does not fit one untiled pass in memory, and only film models run in "
                f"tiles ({self.capabilities.arch} does not): downscale the image"
            )
        return tiled

    @torch.inference_mode()
    def translate_tensor(self, x: torch.Tensor, vector) -> torch.Tensor:
        """(B, 3, H, W) float in [0, 1] -> same shape, float32 in [0, 1], on x's device.

        `vector`: a task text, one vector, one per image, or (architectures with `task_maps`)
        per-pixel vectors (B, tasks, H, W).
        """
        if x.ndim != 4 or x.shape[1] != 3 or not x.is_floating_point():
            raise MixtaskError(f"expected a float tensor (B, 3, H, W), got {x.dtype} {tuple(x.shape)}")
        film = self.net.film(self._vectors(vector, x.shape[0], tuple(x.shape[-2:])))
        if not self._tiled(*x.shape[-2:]):
            return self._run(x, film, to_bytes=False).to(x.device)
        outputs = []
        for i in range(x.shape[0]):  # streamed: one image at a time
            one = [(gamma[i : i + 1], beta[i : i + 1]) for gamma, beta in film]
            outputs.append(self._run(x[i : i + 1], one, to_bytes=False).to(x.device))
        return torch.cat(outputs)

    @torch.inference_mode()
    def translate_array(self, rgb: np.ndarray, vector, known: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (H, W, 3) uint8 RGB of the same size.

        `known` (H, W) bool: where the caller knows the pixels are sound (False: missing, e.g. a user's inpainting
        mask). The gated head then takes it as its gate (`mixtask.nets.film.apply_gated_head`)."""
        if not isinstance(rgb, np.ndarray) or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            found = f"{rgb.dtype} {rgb.shape}" if isinstance(rgb, np.ndarray) else type(rgb).__name__
            raise MixtaskError(f"expected an (H, W, 3) uint8 RGB array, got {found}")
        rgb = rgb if rgb.flags.writeable else rgb.copy()  # torch warns on read-only arrays (np.asarray of PIL)
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None]  # (1, 3, H, W), channels-last
        if known is not None:
            if np.shape(known) != rgb.shape[:2]:
                raise MixtaskError(f"the known map is {np.shape(known)}, the image {rgb.shape[:2]}: they must match")
            known = torch.from_numpy(np.asarray(known, dtype=np.float32))[None, None].to(self.device)
        y = self._run(x, self.net.film(self._vectors(vector, 1, rgb.shape[:2])), to_bytes=True, known=known)
        return np.ascontiguousarray(y[0].permute(1, 2, 0).numpy())

    @torch.inference_mode()
    def translate_with_gate(self, rgb: np.ndarray, vector, sharpen: bool = False) -> Gated:
        """`translate_array`'s output and the gated head's gate, (H, W) float32 in [0, 1], from the same pass
        (None for the rgb head). An image streamed in tiles takes its gate from `gate_array`'s one pass.
        `sharpen`: the head mixes with its gate sharpened, and that gate is returned (`film.sharpened_gates`:
        a restoration's finish)."""
        from mixtask.nets.film import recording_gates, sharpen_gate, sharpened_gates

        height, width = rgb.shape[:2]
        scale = self.enlargement(height, width)
        with sharpened_gates() if sharpen else contextlib.nullcontext():
            if scale == 1 and self._tiled(height, width):
                output, gate = self.translate_array(rgb, vector), self.gate_array(rgb, vector)
            else:
                with recording_gates() as gates:
                    output = self.translate_array(rgb, vector)
                gate = self._gate_of_pass(gates, height, width, scale)
        if gate is None:
            return output, None
        return output, sharpen_gate(gate) if sharpen else gate

    @staticmethod
    def _gate_of_pass(gates: list[torch.Tensor], height: int, width: int, scale: float) -> np.ndarray | None:
        """The last gate logits a pass recorded -> its gate at the image's size, (H, W) float32 in [0, 1]."""
        if not gates:
            return None
        ran = enlarged_size(height, width, scale)  # the size the network ran at (its input padded beyond it)
        gate = torch.sigmoid(gates[-1].float())[..., : ran[0], : ran[1]].cpu()
        if ran != (height, width):
            gate = F.interpolate(gate, size=(height, width), mode="bilinear", align_corners=False)  # as gate_array
        return np.ascontiguousarray(gate[0, 0].clamp_(0, 1).numpy())

    @torch.inference_mode()
    def gate_array(self, rgb: np.ndarray, vector, max_side: int = 1024) -> np.ndarray | None:
        """The gated head's gate, sigmoid of its logit, as (H, W) float32 in [0, 1] (None for the rgb head).

        Under seg alone the gate is the object mask: the output is gate x input, black elsewhere. It is read
        in one untiled pass, on a copy shrunk to `max_side` when the image is larger (the mask is smooth, and
        a salient object is judged better on the whole picture than tile by tile) or enlarged to the working
        side when it is small (`enlargement`), then resized back."""
        import torch.nn.functional as F

        from mixtask.nets.film import recording_gates

        height, width = rgb.shape[:2]
        x = from_uint8(np.asarray(rgb, dtype=np.uint8))[None]
        scale = min(self.enlargement(height, width), max_side / max(height, width))  # a small image: as `_run`
        if scale < 1:
            size = (max(16, round(height * scale)), max(16, round(width * scale)))
            x = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
        elif scale > 1:
            x = enlarged(x, scale)
        film = self.net.film(self._vectors(vector, 1, tuple(x.shape[-2:])))
        with devices.threads_for(x.shape[-2] * x.shape[-1], self.device), recording_gates() as gates:
            self.net.forward_any_size(self.net.prepare(x), film)
        if not gates:
            return None
        gate = torch.sigmoid(gates[-1].float())[..., : x.shape[-2], : x.shape[-1]].cpu()
        if gate.shape[-2:] != (height, width):
            gate = F.interpolate(gate, size=(height, width), mode="bilinear", align_corners=False)
        return gate[0, 0].clamp_(0, 1).numpy()

    def translate(self, image, task):
        """Translate one image under a task spec (text, {name: strength} or a vector).

        `image`: a PIL image of any mode -> PIL image (EXIF orientation applied, alpha kept); a path (str or
        Path) to an image file -> PIL image; an (H, W, 3) or (H, W, 4) uint8 array -> array of the same shape
        (alpha kept). Anything else is a MixtaskError.
        """
        from mixtask.images import from_pil, load_image, to_pil

        if isinstance(image, np.ndarray):
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
                found = f"{image.shape} {image.dtype}"
                raise MixtaskError(f"an image array must be (H, W, 3) or (H, W, 4) uint8, not {found}")
            out = self.translate_array(np.ascontiguousarray(image[..., :3]), task)
            return out if image.shape[2] == 3 else np.concatenate([out, image[..., 3:]], axis=2)
        if isinstance(image, str | Path):
            loaded = load_image(Path(image))
        elif isinstance(image, Image.Image):
            loaded = from_pil(image)
        else:
            raise MixtaskError(f"translate takes a PIL image, a path or a uint8 array, not {type(image).__name__}")
        return to_pil(self.translate_array(loaded.rgb, task), loaded.alpha)

    def enlargement(self, height: int, width: int) -> float:
        """The factor an image of this size is enlarged by before the network (1: run as it is)."""
        if self.working_side is None:
            return 1.0
        scale = min(self.working_side / min(height, width), ENLARGE_MAX_ASPECT * self.working_side / max(height, width))
        return max(scale, 1.0)

    def _run(self, x: torch.Tensor, film, to_bytes: bool, known: torch.Tensor | None = None) -> torch.Tensor:
        """Images (B, 3, H, W), uint8 or float -> uint8 on the CPU, or float32 in [0, 1] on the device.
        `known`: None, or (1, 1, H, W) float on the device (`translate_array`)."""
        height, width = x.shape[-2:]
        # With a known map (a user's inpainting mask) a small image runs as it is: enlarged, the holes' colour
        # smears over the known pixels around them, which the fill reads (13 small val photos, holes: 18.71 dB
        # enlarged, 19.83 as they are; weights/training/probes/usermask/results.txt).
        scale = self.enlargement(height, width) if known is None else 1.0
        if scale > 1:
            return self._run_enlarged(x, film, to_bytes, scale)
        with devices.threads_for(x.shape[0] * height * width, self.device):
            if self._tiled(height, width):
                return self._streamed(x, film, to_bytes, known)
            y = self.net.forward_any_size(self.net.prepare(x), film, known)
            return to_uint8(y) if to_bytes else y.float().clamp_(0, 1)

    def _run_enlarged(self, x: torch.Tensor, film, to_bytes: bool, scale: float) -> torch.Tensor:
        """A small image: enlarged (bicubic) to the working side, translated, and the network's change brought
        back to the image's own size (antialiased) and added to it: where the network changes nothing (every
        strength 0) the image comes back as it was, and a restoration keeps the image's own detail."""
        height, width = x.shape[-2:]
        x = self.net.prepare(x).float()
        big = enlarged(x, scale)
        with devices.threads_for(big.shape[0] * big.shape[-2] * big.shape[-1], self.device):
            change = self.net.forward_any_size(self.net.prepare(big), film).float() - big
        change = F.interpolate(change, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        y = (x + change).clamp_(0, 1)
        return to_uint8(y) if to_bytes else y

    def _streamed(self, x: torch.Tensor, film, to_bytes: bool, known=None) -> torch.Tensor:
        height, width = x.shape[-2:]
        if to_bytes:
            out = torch.empty((1, height, width, 3), dtype=torch.uint8).permute(0, 3, 1, 2)
        else:
            out = torch.empty((1, height, width, 3), device=self.device).permute(0, 3, 1, 2)

        def write(core: torch.Tensor, top: int, left: int) -> None:
            core = core[:, :, : height - top, : width - left]  # drop the padding to a multiple of 4
            rows, columns = slice(top, top + core.shape[2]), slice(left, left + core.shape[3])
            out[:, :, rows, columns] = to_uint8(core) if to_bytes else core.float().clamp_(0, 1)

        known = None if known is None else pad_to_multiple(known)
        tiling.stream(self.net, pad_to_multiple(x), film, self.tile, write, known)
        return out


PROBE_CACHE = "precision-probes.json"


def probe_key(path, device: torch.device, candidate: str) -> str | None:
    """What a probe's result depends on: the weights file (path, size, time), the device and CPU, torch and the
    half precision tried. None (never cached) for a model not read from a file."""
    if path is None or not Path(path).is_file():
        return None
    stat = Path(path).stat()
    where = devices.cpu_model() if device.type == "cpu" else str(device)
    return json.dumps([str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, where, torch.__version__, candidate])


def cached_probe(key: str | None) -> float | None:
    if key is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        value = json.loads((cache_dir() / PROBE_CACHE).read_text()).get(key)
        return float(value) if isinstance(value, int | float) else None
    return None


def remember_probe(key: str | None, value: float) -> None:
    """Keep a probe's PSNR so that the next start on this machine skips it (0.15 s); a cache that cannot be
    written costs only that time again."""
    if key is None or not math.isfinite(value):
        return
    path = cache_dir() / PROBE_CACHE
    with contextlib.suppress(OSError, ValueError, MixtaskError):
        known = json.loads(path.read_text()) if path.is_file() else {}
        known = dict(list(known.items())[-63:]) | {key: value}  # the last 64 files and machines
        write_bytes_atomic(path, json.dumps(known).encode())


@torch.inference_mode()
def probe_psnr(reference: InferenceNet, half: InferenceNet, num_tasks: int) -> float:
    """Worst PSNR of `half` against `reference` on the probe image for recon and every single task."""
    vectors = torch.cat([torch.zeros(1, num_tasks), torch.eye(num_tasks)])
    x = probe_image().expand(len(vectors), -1, -1, -1)
    with devices.threads_for(x.shape[2] * x.shape[3], reference.device):
        want = reference.forward(reference.prepare(x), reference.film(vectors))
        got = half.forward(half.prepare(x), half.film(vectors))
    return min(psnr_db(a, b) for a, b in zip(got, want))
