"""Streamed (tiled) inference agrees with one untiled pass; tile options and helpers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from mixtask.errors import MixtaskError
from mixtask.inference import devices, tiling
from mixtask.inference.translator import InferenceNet, Translator
from mixtask.nets.film import ModelConfig
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.tensors import psnr_db as psnr
from mixtask.weights import WeightsInfo
from tests.conftest import TINY_CONFIG, make_tiny_model

CPU = torch.device("cpu")
VECTOR = (0.0, 1.0, 0.0, 0.6, 0.0)
FULL_WIDTH = ModelConfig(num_tasks=5, width=32, res_blocks=5)


def smooth_image(height: int, width: int, seed: int = 0) -> torch.Tensor:
    """A photo-like test image: smooth colour fields plus a little noise, (1, 3, H, W) in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, max(height // 16, 2), max(width // 16, 2), generator=gen)
    base = torch.nn.functional.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
    return (base + 0.05 * torch.rand(1, 3, height, width, generator=gen)).clamp(0, 1)


def untiled_and_tiled(config, size, tile, dtype=torch.float32, known=None):
    net = InferenceNet(make_tiny_model(0, config), CPU, dtype)
    film = net.film(torch.tensor([VECTOR]))
    x = smooth_image(*size)
    with torch.inference_mode():
        whole = net.forward_any_size(net.prepare(x), film, known).float().clamp(0, 1)
    pieces = torch.zeros_like(whole)

    def write(core, top, left):
        pieces[:, :, top : top + core.shape[2], left : left + core.shape[3]] = core.float().clamp(0, 1)

    with devices.threads_for(0, CPU):  # tiny tiles: one thread (see devices.threads_for)
        tiling.stream(net, x, film, tile, write, known)
    return whole, pieces


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_tiled_matches_untiled_on_the_tiny_model(dtype):
    whole, pieces = untiled_and_tiled(TINY_CONFIG, (192, 256), 96, dtype)
    assert psnr(pieces, whole) >= (80 if dtype == torch.float32 else 35)


def test_tiled_matches_untiled_with_the_context_branch():
    """The branch pools the whole bottleneck, which the streamed path holds whole: tiles see the whole picture."""
    whole, pieces = untiled_and_tiled(replace(TINY_CONFIG, context=2), (192, 256), 96)
    plain, _ = untiled_and_tiled(TINY_CONFIG, (192, 256), 96)
    assert psnr(pieces, whole) >= 80 and psnr(plain, whole) < 60  # the branch changed the output


@pytest.mark.parametrize("scales", [1, 3])
def test_tiled_matches_untiled_with_the_context_backbone(scales):
    """The backbone sees the whole image in its own tiles (halo wider than its receptive field)."""
    config = replace(TINY_CONFIG, context=1, context_backbone="efficientnet-lite0", context_scales=scales)
    whole, pieces = untiled_and_tiled(config, (192, 256), 96)
    without, _ = untiled_and_tiled(replace(config, context_backbone="", context_scales=1), (192, 256), 96)
    assert psnr(pieces, whole) >= 80 and psnr(without, whole) < 60  # the backbone changed the output


def test_tiled_matches_untiled_with_the_gated_fill_head():
    """Its fill reads the gate all around: the streamed path keeps the raw output whole and finishes it at once."""
    config = replace(TINY_CONFIG, head="gated-fill")
    whole, pieces = untiled_and_tiled(config, (192, 256), 96)
    gated, _ = untiled_and_tiled(replace(config, head="gated"), (192, 256), 96)
    assert psnr(pieces, whole) >= 80 and psnr(gated, whole) < 60  # the fill changed the output


def test_tiled_matches_untiled_with_a_known_map():
    """A user mask's known pixels reach each tile's head (and the fill head's whole finish) where they belong."""
    known = torch.ones(1, 1, 192, 256)
    known[..., 40:90, 100:180] = 0
    config = replace(TINY_CONFIG, head="gated-fill")
    whole, pieces = untiled_and_tiled(config, (192, 256), 96, known=known)
    told_nothing, _ = untiled_and_tiled(config, (192, 256), 96)
    assert psnr(pieces, whole) >= 80 and psnr(told_nothing, whole) < 60


def test_tiled_matches_untiled_on_a_full_width_model():
    whole, pieces = untiled_and_tiled(FULL_WIDTH, (96, 128), 48)
    assert psnr(pieces, whole) >= 80


def test_translator_tiles_odd_sizes_like_untiled():
    info = WeightsInfo("tiny.safetensors", TINY_CONFIG, DEFAULT_TASK_SET)
    rgb = np.random.default_rng(1).integers(0, 256, (101, 67, 3), dtype=np.uint8)
    untiled = Translator(make_tiny_model(), info, device="cpu", precision="fp32")
    tiled = Translator(make_tiny_model(), info, device="cpu", precision="fp32", tile=32)
    assert tiling.use_tiles(101, 67, tiled.tile, tiled.net)
    a, b = untiled.translate_array(rgb, VECTOR), tiled.translate_array(rgb, VECTOR)
    assert a.shape == b.shape == rgb.shape and np.abs(a.astype(int) - b.astype(int)).max() <= 1
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    assert psnr(tiled.translate_tensor(x, VECTOR), untiled.translate_tensor(x, VECTOR)) >= 80


@pytest.mark.parametrize(("tile", "expected"), [(None, None), (0, None), (32, 32), (101, 100)])
def test_tile_option(tile, expected):
    assert tiling.check_tile(tile) == expected


@pytest.mark.parametrize("tile", [-1, 8, 31])
def test_bad_tile_is_a_user_error(tile):
    with pytest.raises(MixtaskError, match="--tile"):
        tiling.check_tile(tile)


def test_automatic_tiling_by_size(monkeypatch):
    net = InferenceNet(make_tiny_model(), CPU, torch.float32)
    assert not tiling.use_tiles(1024, 1024, None, net)
    assert tiling.use_tiles(6000, 4000, None, net)
    assert not tiling.use_tiles(100, 100, 128, net) and tiling.use_tiles(100, 200, 128, net)


def test_grid_covers_the_image_once():
    seen = np.zeros((50, 70), int)
    for top, bottom, left, right in tiling.grid(50, 70, 16):
        seen[top:bottom, left:right] += 1
    assert (seen == 1).all()


def test_running_stats_merge_equals_whole():
    y = torch.randn(1, 4, 30, 20) * 3 + 1
    running = tiling.RunningStats()
    for part in y.split([7, 13, 10], dim=2):
        running.add(part.mean(dim=(2, 3)), part.var(dim=(2, 3), correction=0), part.shape[2] * part.shape[3])
    mean, var = running.result()
    assert torch.allclose(mean, y.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(var, y.var(dim=(2, 3), correction=0), atol=1e-4)


@pytest.mark.parametrize(("band", "in_place"), [(5, False), (5, True), (1, True)])
def test_banded_residual_conv_equals_whole(band, in_place):
    net = InferenceNet(make_tiny_model(), CPU, torch.float64)
    h = torch.randn(1, 16, 23, 9, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        want = net.conv_same(h, 0)
        got = net.conv_same(h.clone() if in_place else h, 0, band=band, in_place=in_place)
    assert torch.allclose(got, want, atol=1e-12)
