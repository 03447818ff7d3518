"""Metric functions on inputs with known answers, and classical baselines on known damage."""

from __future__ import annotations

import math

import pytest
import torch

from mixtask.backbones.perceptual import gram_matrix
from mixtask.evaluation import baselines, metrics


def _smooth_images(batch: int = 2, size: int = 32) -> torch.Tensor:
    ramp = torch.linspace(0.2, 0.8, size)
    channels = [ramp[None, :].expand(size, size), ramp[:, None].expand(size, size), torch.full((size, size), 0.5)]
    image = torch.stack(channels)
    return image[None].repeat(batch, 1, 1, 1)


def test_psnr_of_identical_images_is_the_cap():
    x = torch.rand(2, 3, 16, 16)
    assert torch.allclose(metrics.psnr(x, x), torch.full((2,), 100.0))


def test_psnr_of_known_noise():
    x = torch.full((1, 3, 16, 16), 0.5)
    noisy = x + 0.1 * torch.tensor([1.0, -1.0]).repeat(384)[: 3 * 16 * 16].reshape(1, 3, 16, 16)
    assert metrics.psnr(noisy, x).item() == pytest.approx(20.0, abs=1e-4)  # MSE 0.01


def test_masked_psnr_only_counts_masked_pixels():
    x = torch.zeros(1, 3, 8, 8)
    y = x.clone()
    y[..., :4, :] = 0.1  # error only in the top half
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 4:, :] = 1
    assert metrics.psnr(y, x, mask).item() == pytest.approx(100.0)
    assert metrics.psnr(y, x, 1 - mask).item() == pytest.approx(20.0, abs=1e-4)


def test_ssim_is_one_for_identical_and_lower_for_noisy():
    x = _smooth_images()
    assert torch.allclose(metrics.ssim(x, x), torch.ones(2), atol=1e-5)
    noisy = (x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0))).clamp(0, 1)
    assert (metrics.ssim(noisy, x) < 0.9).all()


def test_imagenet_mse_scales_with_std():
    x = torch.zeros(1, 3, 4, 4)
    y = x + 0.1
    expected = sum(0.01 / s**2 for s in metrics.IMAGENET_STD) / 3
    assert metrics.imagenet_mse(y, x).item() == pytest.approx(expected, rel=1e-5)


def test_iou_of_known_masks():
    a = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    b = torch.zeros(3, 1, 4, 4, dtype=torch.bool)
    a[0, :, :2] = True  # 8 pixels
    b[0, :, 1:3] = True  # 8 pixels, 4 shared -> 4 / 12
    a[1] = True  # full vs empty -> 0
    result = metrics.iou(a, b)  # image 2: both empty -> 1
    assert result.tolist() == pytest.approx([1 / 3, 0.0, 1.0])


def test_foreground_reads_non_black_pixels():
    cutout = torch.zeros(1, 3, 4, 4)
    cutout[0, 1, 0, 0] = 0.5
    cutout[0, 0, 1, 1] = 0.05  # below the threshold: near-black counts as background
    mask = metrics.foreground(cutout)
    assert mask.shape == (1, 1, 4, 4) and mask.sum() == 1 and mask[0, 0, 0, 0]


def test_style_distance_zero_for_identical_and_positive_otherwise():
    features = {"a": torch.rand(2, 4, 5, 5), "b": torch.rand(2, 8, 3, 3)}
    grams = {name: gram_matrix(value[:1]) for name, value in features.items()}
    distance = metrics.style_distance(features, grams)
    assert distance[0].item() == pytest.approx(0.0, abs=1e-6) and distance[1].item() > 0
    doubled = {name: 2 * value for name, value in features.items()}  # Gram x4: relative error 9
    assert metrics.style_distance(doubled, grams)[0].item() == pytest.approx(9.0, rel=1e-5)


def test_content_distance_is_relative():
    f = torch.rand(2, 4, 3, 3) + 0.1
    assert torch.allclose(metrics.content_distance(f, f), torch.zeros(2))
    assert metrics.content_distance(2 * f, f).tolist() == pytest.approx([1.0, 1.0], rel=1e-5)


def test_frechet_distance_zero_for_identical_and_grows_with_shift():
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(20, 64, generator=generator)  # fewer samples than dimensions: singular covariance
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    near, far = metrics.frechet_distance(a, a + 0.5), metrics.frechet_distance(a, a + 2.0)
    assert near == pytest.approx(64 * 0.25, rel=1e-6) and far > near
    b = torch.randn(20, 64, generator=generator)
    assert math.isfinite(metrics.frechet_distance(a, b)) and metrics.frechet_distance(a, b) > 0


def test_frechet_distance_low_rank_and_full_rank_forms_agree():
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(12, 8, generator=generator), torch.randn(9, 8, generator=generator) * 2 + 1
    full = metrics.frechet_distance(a, b)  # more samples than dimensions: D x D form
    low = metrics.frechet_distance(torch.cat([a, torch.zeros(12, 8)], 1), torch.cat([b, torch.zeros(9, 8)], 1))
    assert low == pytest.approx(full, rel=1e-6)  # padded to D = 16 > N: nuclear-norm form


def test_monotonic_direction():
    assert metrics.monotonic_direction([1, 2, 2, 3]) == "increasing"
    assert metrics.monotonic_direction([3, 1, 0]) == "decreasing"
    assert metrics.monotonic_direction([1, 3, 2]) == "not monotonic"
    assert metrics.monotonic_direction([1, 1, 1]) == "constant"


def test_denoising_baselines_improve_a_scratched_image():
    clean = _smooth_images(1)
    scratched = clean.clone()
    scratched[..., 10, :] = 1.0  # one-pixel white scratch across the image
    scratched[..., :, 20] = 0.0
    before = metrics.psnr(scratched, clean).item()
    mask = (scratched != clean).any(dim=1, keepdim=True).float()
    for name, denoise in baselines.BASELINES["denoise"].items():
        out = denoise(scratched, mask)
        assert out.shape == clean.shape
        if name.startswith("median"):
            assert metrics.psnr(out, clean).item() > before + 3, name


def test_telea_improves_a_holed_image():
    clean = _smooth_images(1)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:16, 12:20] = 1
    holed = clean * (1 - mask)  # black hole
    out = baselines.telea_inpaint(holed, mask)
    assert metrics.psnr(out, clean, mask).item() > metrics.psnr(holed, clean, mask).item() + 10
