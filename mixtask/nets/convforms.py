"""Exact rewrites of the Johnson network's two costly conv shapes into faster forms (training and inference).

- Nearest x2 up-sampling + reflection pad 1 + 3x3 conv == replicate pad 1 of the low-res input + one 2x2
  conv to 4x the outputs, one per sub-pixel (a, b), interleaved: no up-sampled tensor and 2.25x fewer
  multiply-adds. (Reflecting the up-sampled image by one pixel repeats its edge pixel, so on the low-res
  grid the pad is a replicate pad.)
- A kxk conv (k odd) to few channels (the 9x9 output conv, 32 -> 3 or 5) == a (k+1)x(k+1) stride-2 conv to
  4x the channels + pixel shuffle: more multiply-adds, but wide enough to vectorise, about 3x faster.

The folds are linear in the weight and differentiable, so training keeps the plain weights (checkpoints and
weights files unchanged) and folds them on every step; inference folds once, in float64.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
import torch.nn.functional as F

SUBPIXELS = ((0, 0), (0, 1), (1, 0), (1, 1))
_plain = False  # set by `plain_forms`


@contextlib.contextmanager
def plain_forms() -> Iterator[None]:
    """Inside the block, `ConvLayer`s run in their plain forms (up-sample, pad, conv): the benchmarks' before
    and after, side by side in one process."""
    global _plain
    previous, _plain = _plain, True
    try:
        yield
    finally:
        _plain = previous


def enabled() -> bool:
    """Whether `ConvLayer` runs the faster forms (outside `plain_forms`)."""
    return not _plain


def subpixel_weight(weight: torch.Tensor) -> torch.Tensor:
    """(O, I, 3, 3) conv after nearest x2 + reflect pad 1 -> (4 O, I, 2, 2) conv on the replicate-padded
    low-res input. Output channel (a * 2 + b) * O + o is sub-pixel (a, b) of channel o."""
    taps = weight.new_tensor([[[1, 0, 0], [0, 1, 1]], [[1, 1, 0], [0, 0, 1]]])  # (sub-pixel, tap, kernel row)
    folded = torch.einsum("apk,bql,oikl->aboipq", taps, taps, weight)
    out_channels, in_channels = weight.shape[:2]
    return folded.reshape(4 * out_channels, in_channels, 2, 2)


def strided_taps(kernel: int) -> torch.Tensor:
    """For each entry (a, b, jy, sy, jx, sx) of the strided kernel, the index of the kxk tap it holds, or
    k * k (a zero) where none: sub-pixel (a, b) reads padded row 2 i + 2 jy + sy, i.e. tap 2 jy + sy - a."""
    half = (kernel + 1) // 2
    # on the CPU even while a model is built on the meta device (`load_weights`): a constant, never loaded
    axes = (torch.arange(n, device="cpu") for n in (2, 2, half, 2, half, 2))
    a, b, jy, sy, jx, sx = torch.meshgrid(*axes, indexing="ij")
    ky, kx = 2 * jy + sy - a, 2 * jx + sx - b
    inside = (ky >= 0) & (ky < kernel) & (kx >= 0) & (kx < kernel)
    return torch.where(inside, ky * kernel + kx, kernel * kernel)


def strided_weight(weight: torch.Tensor, taps: torch.Tensor | None = None) -> torch.Tensor:
    """(O, I, k, k) conv, k odd -> (4 O, I, k + 1, k + 1) stride-2 conv whose pixel shuffle is the same output
    (channel o * 4 + a * 2 + b is sub-pixel (a, b) of channel o). `taps`: `strided_taps(k)`, which a module
    keeps as a buffer so that torch.compile sees a constant."""
    out_channels, in_channels, k, _ = weight.shape
    taps = strided_taps(k).to(weight.device) if taps is None else taps
    flat = F.pad(weight.reshape(out_channels, in_channels, k * k), (0, 1))  # a zero tap at index k * k
    gathered = flat[:, :, taps]  # (O, I, a, b, jy, sy, jx, sx)
    return gathered.permute(0, 2, 3, 1, 4, 5, 6, 7).reshape(4 * out_channels, in_channels, k + 1, k + 1)


def interleave_subpixels(o4: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 4 O, H + 1, W + 1) from a `subpixel_weight` conv -> (B, O, 2 H, 2 W); sub-pixel (a, b) sits at
    offset (a, b) of its block."""
    batch, channels = o4.shape[0], o4.shape[1] // 4
    shape = (batch, channels, 2 * height, 2 * width)
    out = torch.empty(shape, dtype=o4.dtype, device=o4.device, memory_format=torch.channels_last)
    for k, (a, b) in enumerate(SUBPIXELS):
        out[:, :, a::2, b::2] = o4[:, k * channels : (k + 1) * channels, a : a + height, b : b + width]
    return out


def replicate_pad_1(x: torch.Tensor) -> torch.Tensor:
    """`F.pad(x, (1, 1, 1, 1), mode="replicate")` by concatenation: torch.compile (2.14) mis-strides the
    backward of the replicate pad on channels-last tensors."""
    x = torch.cat([x[..., :1, :], x, x[..., -1:, :]], dim=-2)
    return torch.cat([x[..., :1], x, x[..., -1:]], dim=-1)


def subpixel_conv(padded: torch.Tensor, folded: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The sub-pixel form on a replicate-padded (B, I, H + 2, W + 2) input with folded weights (`subpixel_weight`;
    bias repeated 4 times) -> (B, O, 2 H, 2 W)."""
    return interleave_subpixels(F.conv2d(padded, folded, bias), padded.shape[-2] - 2, padded.shape[-1] - 2)


def strided_conv(padded: torch.Tensor, folded: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The stride-2 form with folded weights (`strided_weight`; bias repeated 4 times, interleaved) + pixel shuffle."""
    return F.pixel_shuffle(F.conv2d(padded, folded, bias, stride=2), 2)


def upsample_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """conv3x3(reflect_pad(nearest_x2(x), 1)) in the sub-pixel form, folding `weight` (O, I, 3, 3) here."""
    with torch.autocast(x.device.type, enabled=False):  # fold the taps at the weight's precision
        folded = subpixel_weight(weight)
    return subpixel_conv(replicate_pad_1(x), folded, None if bias is None else bias.repeat(4))


def shuffled_conv(
    padded: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, taps: torch.Tensor | None = None
) -> torch.Tensor:
    """conv_kxk(padded) (k odd, even output sides) as a stride-2 conv + pixel shuffle, folding `weight` here."""
    with torch.autocast(padded.device.type, enabled=False):
        folded = strided_weight(weight, taps)
    return strided_conv(padded, folded, None if bias is None else bias.repeat_interleave(4))
