"""Large images in bounded memory, with the result of one untiled pass (README: "Tiling").

InstanceNorm needs each layer's statistics over the *whole* image, and tiles normalised with
their own statistics disagree with each other (visible seams) and with the untiled result.
Statistics from a down-scaled copy do not fix it: on a full-width network they gave outputs
only 20-27 dB from the full-resolution result (x2 smaller copy). So the network is streamed
stage by stage with exact whole-image statistics:

1. Encoder (layers 0-2, full to 1/4 resolution), in tiles. Layer k's statistics are merged
   over the tiles' cores with layers < k frozen at their whole-image values; the last pass
   keeps the raw 1/4-resolution output (the bottleneck) of every tile.
2. Residual blocks (layers 3-12) on the whole bottleneck (1/16 of the pixels, 128 channels),
   conv by conv in row bands; each layer's statistics are exact.
3. Decoder (layers 13-14 + output conv), in tiles of the bottleneck: two statistics passes,
   then the output pass writes each tile's core.

Tiles overlap by a halo wider than the receptive field of the stage (8 px for the encoder,
16 px for the decoder) and only their cores are kept. With frozen statistics every core pixel
is then computed as in the untiled pass, so no blending is needed and there is no seam to
hide: tiled and untiled outputs differ by rounding only, spread evenly over the image (full-
width random network, 2048x1536, tiles of 1024: 59.5 dB in fp32, 44 dB in bf16, where bf16
rounding differs with the kernels' blocking; bf16 against fp32 is 45 dB). The price is the
repeated encoder/decoder layers of the statistics passes: 1.45x the untiled time, paid only
above the untiled memory budget. Peak memory is about two bottleneck tensors (2 x 128
channels x 1/16 of the pixels: 64 B/px in fp32, 32 B/px in bf16) plus one tile: 6000x4000
decoded, translated and encoded peaks at 1.97 GB RSS in bf16 and 3.14 GB in fp32.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from typing import Protocol

import torch

from mixtask.errors import MixtaskError

CL = torch.channels_last
NORM_EPS = 1e-5  # as model.NormFiLM and model.input_stats
MIN_TILE = 32
DEFAULT_TILE = {"cpu": 1024, "cuda": 2048}
ENCODER_HALO = 8  # full-resolution pixels; layers 0-2 see 7 px beyond a tile's core
DECODER_HALO = 4  # bottleneck pixels (16 full-resolution); layers 13-14 + output conv see 3
BAND_ROWS = 64  # bottleneck rows per residual-conv call in the streamed pass


# Peak memory of an untiled pass per pixel, measured (2048x2048, full-width model, output
# included); half precision keeps the first two layers in fp32, so it saves less than half.
class StreamableNet(Protocol):
    """What streaming needs from an engine (`translator.InferenceNet` is one): the network's stages run on any
    window, with the whole image's statistics passed in (`stats`: one entry per normed layer, filled here)."""

    device: torch.device
    dtype: torch.dtype
    gated: bool  # the gated head: its input statistics are whole-image too
    fill: bool  # the gated-fill head: its local fill reads the gate all around each pixel
    relus: list[bool]  # one per normed layer

    def prepare(self, x: torch.Tensor) -> torch.Tensor: ...
    def channel_stats(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...
    def encode(self, x: torch.Tensor, film, stats: list, stop: int | None = None) -> torch.Tensor: ...
    def normalize(self, index: int, y: torch.Tensor, film, stats: list) -> torch.Tensor: ...
    def image_features(self, x: torch.Tensor) -> list[torch.Tensor] | None: ...
    def bottleneck(
        self, h: torch.Tensor, film, stats: list, band: int | None = None, features=None
    ) -> torch.Tensor: ...
    def decode(self, h: torch.Tensor, film, stats: list, stop: int | None = None) -> torch.Tensor: ...
    def finish(self, raw: torch.Tensor, x: torch.Tensor, stats, known=None) -> torch.Tensor: ...


UNTILED_BYTES_PER_PIXEL = {"fp32": 420, "half": 320}
CPU_UNTILED_BUDGET = 2 << 30  # bytes (untiled up to 5.1 MP in fp32, 6.7 MP in bf16); at most RAM / 4


def check_tile(tile: int | None) -> int | None:
    """`tile` option -> None (automatic) or a tile side, a multiple of 4, at least MIN_TILE."""
    if tile is None or tile == 0:
        return None
    if not isinstance(tile, int) or isinstance(tile, bool) or tile < MIN_TILE:
        raise MixtaskError(f"--tile {tile!r}: use 0 (automatic) or a tile side of at least {MIN_TILE} pixels")
    return tile - tile % 4


def untiled_pixel_budget(device: torch.device, dtype: torch.dtype) -> int:
    """How many pixels one untiled pass may take on `device` in `dtype`."""
    per_pixel = UNTILED_BYTES_PER_PIXEL["fp32" if dtype == torch.float32 else "half"]
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5) // per_pixel
    budget = CPU_UNTILED_BUDGET
    with contextlib.suppress(ValueError, OSError, AttributeError):  # not every platform reports its RAM
        budget = min(budget, os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4)
    return budget // per_pixel


def use_tiles(height: int, width: int, tile: int | None, net: StreamableNet) -> bool:
    """Tile when asked to and the image is larger than one tile, or (automatic) when it is too big."""
    if tile is not None:
        return height > tile or width > tile
    return height * width > untiled_pixel_budget(net.device, net.dtype)


def spans(size: int, tile: int) -> list[tuple[int, int]]:
    """[start, stop) pieces of length `tile` (the last may be shorter) covering 0..size."""
    return [(start, min(start + tile, size)) for start in range(0, size, tile)]


def grid(height: int, width: int, tile: int) -> list[tuple[int, int, int, int]]:
    """Tile cores (top, bottom, left, right) covering a height x width image."""
    return [(top, bottom, left, right) for top, bottom in spans(height, tile) for left, right in spans(width, tile)]


class RunningStats:
    """Per-channel mean and (biased) variance merged over tiles (Chan et al.), in float64."""

    def __init__(self):
        self.count = 0
        self.mean: torch.Tensor | None = None
        self.m2: torch.Tensor | None = None

    def add(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        """Merge the statistics of `count` more pixels."""
        mean, var = mean.double(), var.double()
        if self.count == 0:
            self.count, self.mean, self.m2 = count, mean, var * count
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * (count / total)
        self.m2 = self.m2 + var * count + delta.square() * (self.count * count / total)
        self.count = total

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean.float(), (self.m2 / self.count).float()


def _window(start: int, stop: int, halo: int, size: int) -> tuple[int, int]:
    return max(start - halo, 0), min(stop + halo, size)


def _merge(running: RunningStats, net: StreamableNet, core: torch.Tensor) -> None:
    mean, var = net.channel_stats(core.contiguous(memory_format=CL))
    running.add(mean, var, core.shape[2] * core.shape[3])


def encode_streamed(net: StreamableNet, x: torch.Tensor, film, tile: int, stats: list) -> torch.Tensor:
    """Stage 1: the normalised bottleneck (1, C, H/4, W/4) of image x (1, 3, H, W), H, W multiples of 4."""
    height, width = x.shape[-2:]
    bottleneck = None
    for layer in range(3):
        running, scale = RunningStats(), 2**layer
        for top, bottom, left, right in grid(height, width, tile):
            y0, y1 = _window(top, bottom, ENCODER_HALO, height)
            x0, x1 = _window(left, right, ENCODER_HALO, width)
            raw = net.encode(net.prepare(x[:, :, y0:y1, x0:x1]), film, stats, stop=layer)
            core = raw[:, :, (top - y0) // scale : (bottom - y0) // scale, (left - x0) // scale : (right - x0) // scale]
            _merge(running, net, core)
            if layer == 2:
                if bottleneck is None:
                    size = (1, raw.shape[1], height // 4, width // 4)
                    bottleneck = torch.empty(size, dtype=raw.dtype, device=raw.device, memory_format=CL)
                bottleneck[:, :, top // 4 : bottom // 4, left // 4 : right // 4] = core
        stats.append(running.result())
    return net.normalize(2, bottleneck, film, stats)


def decode_streamed(net: StreamableNet, h: torch.Tensor, film, tile: int, stats: list, write: Callable) -> None:
    """Stage 3: decoder statistics passes, then `write(output_core, top, left)` per tile."""
    height, width = h.shape[-2:]
    first = len(net.relus) - 2
    cores = grid(height, width, max(tile // 4, 1))
    for layer, scale in ((first, 2), (first + 1, 4), (None, 4)):
        running = RunningStats()
        for top, bottom, left, right in cores:
            y0, y1 = _window(top, bottom, DECODER_HALO, height)
            x0, x1 = _window(left, right, DECODER_HALO, width)
            out = net.decode(h[:, :, y0:y1, x0:x1], film, stats, stop=layer)
            core = out[:, :, (top - y0) * scale : (bottom - y0) * scale, (left - x0) * scale : (right - x0) * scale]
            if layer is None:
                write(core, top * 4, left * 4)
            else:
                _merge(running, net, core)
        if layer is not None:
            stats.append(running.result())


@torch.inference_mode()
def stream(net: StreamableNet, x: torch.Tensor, film, tile: int | None, write: Callable, known=None) -> None:
    """Run `net` over image x (1, 3, H, W), H and W multiples of 4, tile by tile.

    x may be uint8 or float and stay on the CPU: each tile is moved and converted on its own.
    `write(core, top, left)` receives the output (1, 3, h, w) in the net's dtype tile by tile.
    `known`: None, or (1, 1, H, W) float on the net's device, the head's known pixels (`net.finish`).
    """
    tile = tile or DEFAULT_TILE.get(net.device.type, 1024)
    head_stats = input_stats_streamed(net, x, tile) if net.gated else None

    def finish(raw: torch.Tensor, top: int, left: int) -> None:
        rows, columns = slice(top, top + raw.shape[2]), slice(left, left + raw.shape[3])
        known_here = None if known is None else known[:, :, rows, columns]
        write(net.finish(raw, net.prepare(x[:, :, rows, columns]), head_stats, known_here), top, left)

    stats: list = []
    features = net.image_features(x)  # the context branch's backbone, if any: tiled on its own (bounded memory)
    h = encode_streamed(net, x, film, tile, stats)
    h = net.bottleneck(h, film, stats, band=BAND_ROWS, features=features)
    if not net.fill:
        decode_streamed(net, h, film, tile, stats, finish)
        return
    # The gated-fill head's pull-push fill reaches about a third of the short side: the raw output is kept whole
    # (5 channels in the net's dtype) and finished in one piece, about a quarter of an untiled pass's memory.
    raw = None

    def keep(core: torch.Tensor, top: int, left: int) -> None:
        nonlocal raw
        if raw is None:
            raw = core.new_empty((1, core.shape[1], *x.shape[-2:]))
        raw[:, :, top : top + core.shape[2], left : left + core.shape[3]] = core

    decode_streamed(net, h, film, tile, stats, keep)
    finish(raw, 0, 0)


def input_stats_streamed(net: StreamableNet, x: torch.Tensor, tile: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole input's per-channel (mean, std), (1, 3, 1, 1), merged over tiles."""
    running = RunningStats()
    for top, bottom, left, right in grid(*x.shape[-2:], tile):
        _merge(running, net, net.prepare(x[:, :, top:bottom, left:right]).float())
    mean, var = running.result()
    return mean[:, :, None, None], torch.sqrt(var + NORM_EPS)[:, :, None, None]
