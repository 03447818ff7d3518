"""Synthetic corruptions for the restoration tasks (paper, Table 1; ../shared/docs/design.md, "Tasks").

- inpaint: 1-8 square holes, side 8-48 px at 256 x 256, each filled with its own constant colour.
- denoise: 1-10 random scratches, poly-lines of 2-5 segments, 1-5 px wide, each its own colour.

Sizes scale with the image's short side / 256. Both work on a whole batch (B, 3, H, W) in [0, 1],
draw every random number from the `torch.Generator` passed in (never the global RNG, so runs are
reproducible and resumable) and return `(corrupted, mask)` with mask (B, 1, H, W) in {0, 1}
marking exactly the pixels that were changed. Holes are boxes on a coordinate grid; scratches are
1-px centre lines drawn by OpenCV into a label map, grown to their width by a disk (dilation), so
there is no Python loop over pixels.
`CORRUPTIONS` is keyed by task kind (`mixtask.tasks.TASK_KINDS`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import cv2
import numpy as np
import torch

REFERENCE_SIDE = 256  # the paper's sizes are given for 256 x 256 images
MAX_HOLES, HOLE_SIDE = 8, (8, 48)
MAX_SCRATCHES, SCRATCH_SEGMENTS, SCRATCH_WIDTH = 10, (2, 5), (1, 5)
SEGMENT_LENGTH = (0.05, 0.35)  # of the short side

Corruption = Callable[[torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def _scaled(pixels: int, shape: torch.Size) -> int:
    return max(1, round(pixels * min(shape[-2:]) / REFERENCE_SIDE))


def _randint(low: int, high: int, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Integers in [low, high], both ends included."""
    return torch.randint(low, high + 1, shape, generator=generator)


def _paint(x: torch.Tensor, labels: torch.Tensor, colours: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Set every pixel with label k > 0 to colours[:, k - 1]; labels (B, H, W) uint8, colours (B, K, C)."""
    batch, channels, height, width = x.shape
    table = torch.cat([colours.new_zeros(batch, 1, channels), colours], dim=1).transpose(1, 2)  # (B, C, K + 1)
    labels = labels.to(x.device)
    index = labels.long().view(batch, 1, height * width).expand(batch, channels, height * width)
    fill = torch.gather(table.to(device=x.device, dtype=x.dtype), 2, index).view(x.shape)
    mask = (labels > 0)[:, None]
    return torch.where(mask, fill, x), mask.to(x.dtype)


def _hole_labels(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """(B, H, W) uint8: 0 outside holes, else the number (1-based) of the last hole drawn there."""
    batch, _, height, width = shape
    low, high = (min(_scaled(side, shape), height, width) for side in HOLE_SIDE)
    side = _randint(low, high, (batch, MAX_HOLES), generator)
    top = (torch.rand(batch, MAX_HOLES, generator=generator) * (height - side + 1)).long()
    left = (torch.rand(batch, MAX_HOLES, generator=generator) * (width - side + 1)).long()
    count = _randint(1, MAX_HOLES, (batch, 1), generator)
    number = torch.where(torch.arange(MAX_HOLES) < count, torch.arange(1, MAX_HOLES + 1), 0).to(torch.uint8)
    rows, cols = torch.arange(height), torch.arange(width)
    in_rows = ((rows >= top[..., None]) & (rows < (top + side)[..., None])).to(torch.uint8)  # (B, K, H)
    in_cols = ((cols >= left[..., None]) & (cols < (left + side)[..., None])).to(torch.uint8)  # (B, K, W)
    boxes = (in_rows * number[..., None])[..., :, None] * in_cols[..., None, :]  # (B, K, H, W), uint8 is fast
    return boxes.amax(dim=1)


def add_holes(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Inpainting input: 1-8 square holes of constant random colour; returns (corrupted, hole mask)."""
    labels = _hole_labels(x.shape, generator)
    colours = torch.rand(x.shape[0], MAX_HOLES, x.shape[1], generator=generator)
    return _paint(x, labels, colours)


def _polylines(shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """(B, K, S + 1, 2) vertices (x, y): a random start, then S steps of random direction and length."""
    batch, _, height, width = shape
    segments, short = SCRATCH_SEGMENTS[1], min(height, width)
    start = torch.rand(batch, MAX_SCRATCHES, 1, 2, generator=generator) * torch.tensor([width - 1, height - 1])
    angle = torch.rand(batch, MAX_SCRATCHES, segments, generator=generator) * 2 * math.pi
    low, high = SEGMENT_LENGTH
    length = (low + (high - low) * torch.rand(batch, MAX_SCRATCHES, segments, generator=generator)) * short
    steps = torch.stack([angle.cos(), angle.sin()], dim=-1) * length[..., None]
    points = torch.cat([start, start + steps.cumsum(dim=2)], dim=2)
    return torch.minimum(points.clamp(min=0), torch.tensor([width - 1.0, height - 1.0]))


def _disk(width: int) -> np.ndarray:
    """A filled disk of diameter `width` px, the brush that turns a 1-px centre line into a scratch."""
    centre = (width - 1) / 2
    yy, xx = np.mgrid[:width, :width]
    return ((yy - centre) ** 2 + (xx - centre) ** 2 <= (width / 2) ** 2).astype(np.uint8)


def _scratch_map(height: int, width: int, lines: list[tuple[int, np.ndarray, int]]) -> np.ndarray:
    """Label map of one image: 1-px centre lines grown by a disk per line width.

    `lines` holds (label, vertices, width). Where scratches cross, the higher label wins (max),
    both inside one width (drawn in label order) and across widths (dilation and np.maximum).
    OpenCV's own `thickness` only draws odd widths, hence the dilation.
    """
    labels = np.zeros((height, width), np.uint8)
    for size in sorted({line_width for _, _, line_width in lines}):
        centre = np.zeros_like(labels)
        for label, vertices, line_width in lines:
            if line_width == size:
                cv2.polylines(centre, [vertices], False, label, thickness=1, lineType=cv2.LINE_8)
        np.maximum(labels, cv2.dilate(centre, _disk(size)), out=labels)
    return labels


def _draw_scratches(shape, points, counts, segments, widths) -> torch.Tensor:
    """Label map (B, H, W) uint8 with poly-line k drawn as value k + 1 (higher labels on top)."""
    vertices = points.round().to(torch.int32).numpy()
    maps = []
    for b in range(shape[0]):
        lines = [
            (k + 1, np.ascontiguousarray(vertices[b, k, : int(segments[b, k]) + 1]), int(widths[b, k]))
            for k in range(int(counts[b]))
        ]
        maps.append(_scratch_map(shape[2], shape[3], lines))
    return torch.from_numpy(np.stack(maps))


def add_scratches(x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Denoising input: 1-10 poly-line scratches of random colour; returns (corrupted, scratch mask)."""
    batch = x.shape[0]
    points = _polylines(x.shape, generator)
    counts = _randint(1, MAX_SCRATCHES, (batch,), generator)
    segments = _randint(*SCRATCH_SEGMENTS, (batch, MAX_SCRATCHES), generator)
    widths = _randint(
        _scaled(SCRATCH_WIDTH[0], x.shape), _scaled(SCRATCH_WIDTH[1], x.shape), (batch, MAX_SCRATCHES), generator
    )
    colours = torch.rand(batch, MAX_SCRATCHES, x.shape[1], generator=generator)
    labels = _draw_scratches(x.shape, points, counts, segments, widths)
    return _paint(x, labels, colours)


CORRUPTIONS: dict[str, Corruption] = {"inpaint": add_holes, "denoise": add_scratches}


def corrupt(x: torch.Tensor, kinds: Iterable[str], generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the corruptions of several task kinds in turn (a mix's input, ../shared/docs/design.md Sec. 3.3).

    Kinds without a corruption (seg, style) are ignored. Returns (corrupted, union of the masks).
    """
    mask = x.new_zeros(x.shape[0], 1, *x.shape[2:])
    for kind in kinds:
        if kind in CORRUPTIONS:
            x, changed = CORRUPTIONS[kind](x, generator)
            mask = torch.maximum(mask, changed)
    return x, mask
