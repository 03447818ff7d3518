"""Image-quality metrics for held-out evaluation (paper, Sec. 4 and Table 3).

Every function takes batches (B, C, H, W) with values in [0, 1] and returns one value per image
(a tensor of shape (B,)) unless it says otherwise, so callers can average or inspect per image.
No function here knows about tasks, files or models.
"""

from __future__ import annotations

import itertools

import torch

from mixtask.backbones.perceptual import gram_matrix, relative_errors
from mixtask.tasks import FOREGROUND_THRESHOLD
from mixtask.tensors import mse, psnr  # noqa: F401 (pixel metrics live with the tensor bridge; callers say metrics.psnr)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def ssim(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Structural similarity (pytorch-msssim, 11-px Gaussian window, data_range=1)."""
    from pytorch_msssim import ssim as _ssim

    return _ssim(output.float(), target.float(), data_range=1.0, size_average=False)


def imagenet_normalise(x: torch.Tensor) -> torch.Tensor:
    mean = x.new_tensor(IMAGENET_MEAN)[None, :, None, None]
    std = x.new_tensor(IMAGENET_STD)[None, :, None, None]
    return (x - mean) / std


def imagenet_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE after ImageNet mean/std normalisation: the space of the paper's Table 3."""
    return mse(imagenet_normalise(output.float()), imagenet_normalise(target.float()))


def foreground(cutout: torch.Tensor, threshold: float = FOREGROUND_THRESHOLD) -> torch.Tensor:
    """Read the object mask (B, 1, H, W, bool) from a cut-out image: not-black pixels."""
    return cutout.amax(dim=1, keepdim=True) > threshold


def iou(predicted: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Intersection over union of boolean masks; 1.0 when both are empty (they agree)."""
    predicted, truth = predicted.bool().flatten(1), truth.bool().flatten(1)
    intersection = (predicted & truth).sum(dim=1).float()
    union = (predicted | truth).sum(dim=1).float()
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


LAYOUT_SIDE = 32


def layout_correlation(output: torch.Tensor, content: torch.Tensor, side: int = LAYOUT_SIDE) -> torch.Tensor:
    """Per image, the Pearson correlation of the grey layouts of output and content, each box-downsampled
    to side x side: whether a stylised image still shows its photo (1: the same light and dark layout,
    0: none of it, < 0: inverted). Grey is the mean of R, G and B."""

    def layout(x: torch.Tensor) -> torch.Tensor:
        grey = x.float().mean(dim=1, keepdim=True)
        small = torch.nn.functional.adaptive_avg_pool2d(grey, side).flatten(1)
        return small - small.mean(dim=1, keepdim=True)

    a, b = layout(output), layout(content)
    norms = a.norm(dim=1) * b.norm(dim=1)
    return (a * b).sum(dim=1) / norms.clamp_min(1e-12)


def style_distance(features: dict[str, torch.Tensor], style_grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Relative Gram-matrix error, averaged over the layers in `features` (0 = the style's statistics).

    `style_grams` holds one (1, C, C) Gram per layer (`mixtask.backbones.perceptual.style_targets`). Relative
    errors, as in the training loss, make the number independent of the VGG's input scale.
    """

    errors = [relative_errors(gram_matrix(value), style_grams[name]) for name, value in features.items()]
    return torch.stack(errors).mean(dim=0)


def content_distance(features: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Relative feature error of one layer (e.g. VGG relu3_3): 0 = same content as the reference."""
    return relative_errors(features, reference)


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (N, D) and (M, D): one number. (Not
    torchmetrics' FID: that one takes images and an extractor per update; here the features are computed once
    and shared with the other metrics.)

    ||mu_a - mu_b||² + Tr(Sa) + Tr(Sb) - 2 Tr(sqrt(Sa Sb)), in float64, without scipy. With
    centred data A, B the non-zero eigenvalues of Sa Sb are the squared singular values of
    A Bᵀ / sqrt((N-1)(M-1)), so Tr(sqrt(Sa Sb)) is that matrix's nuclear norm: exact, cheap and
    stable when N, M << D (singular covariances), where a D x D matrix square root is neither.
    With more samples than dimensions the D x D form is used. Few samples bias the value upward:
    report N with it, and compare with the distance between two samples of the same set.
    """
    a, b = features_a.double(), features_b.double()
    n, m = a.shape[0], b.shape[0]
    if n < 2 or m < 2:
        raise ValueError("a Fréchet distance needs at least 2 samples per set")
    mean_term = (a.mean(0) - b.mean(0)).pow(2).sum()
    centred_a, centred_b = a - a.mean(0), b - b.mean(0)
    trace_a, trace_b = centred_a.pow(2).sum() / (n - 1), centred_b.pow(2).sum() / (m - 1)
    if max(n, m) <= a.shape[1]:
        cross = torch.linalg.svdvals(centred_a @ centred_b.T).sum() / ((n - 1) * (m - 1)) ** 0.5
    else:
        cross = _trace_sqrt_product(centred_a.T @ centred_a / (n - 1), centred_b.T @ centred_b / (m - 1))
    return float((mean_term + trace_a + trace_b - 2 * cross).clamp_min(0))


def _trace_sqrt_product(cov_a: torch.Tensor, cov_b: torch.Tensor) -> torch.Tensor:
    """Tr(sqrt(Sa Sb)) = sum of sqrt(eigenvalues) of the symmetric PSD sqrt(Sa) Sb sqrt(Sa)."""
    values, vectors = torch.linalg.eigh(cov_a)
    root_a = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
    return torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp_min(0).sqrt().sum()


def monotonic_direction(values: list[float], tolerance: float = 1e-6) -> str:
    """'increasing', 'decreasing', 'constant' or 'not monotonic' (steps within tolerance are flat)."""
    steps = [b - a for a, b in itertools.pairwise(values)]
    if all(abs(s) <= tolerance for s in steps):
        return "constant"
    if all(s >= -tolerance for s in steps):
        return "increasing"
    if all(s <= tolerance for s in steps):
        return "decreasing"
    return "not monotonic"
