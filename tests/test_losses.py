"""Losses: known values, zero cases, bf16 autocast, optimisation on a tiny fake VGG, PatchGAN."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mixtask.backbones.perceptual import gram_matrix, relative_error, style_targets
from mixtask.training.losses import LossWeights, PatchDiscriminator, PerceptualLoss, adversarial_losses, l2, tv_loss
from tests.fakes import tiny_discriminator, tiny_vgg


@pytest.fixture
def images() -> tuple[torch.Tensor, torch.Tensor]:
    """(content batch of 2, style image of 1), 32x32."""
    generator = torch.Generator().manual_seed(0)
    return torch.rand(2, 3, 32, 32, generator=generator), torch.rand(1, 3, 32, 32, generator=generator)


def test_l2_known_value():
    assert l2(torch.zeros(1, 3, 2, 2), torch.full((1, 3, 2, 2), 0.5)).item() == pytest.approx(0.25)


def test_gram_matrix_known_value():
    features = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)  # C=2, H=1, W=2
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 4
    assert torch.allclose(gram_matrix(features), expected)


def test_gram_matrix_is_float32_under_bf16_autocast():
    with torch.autocast("cpu", torch.bfloat16):
        gram = gram_matrix(torch.rand(2, 4, 8, 8).bfloat16())
    assert gram.dtype == torch.float32 and gram.shape == (2, 4, 4)


def test_tv_of_constant_image_is_zero():
    assert tv_loss(torch.full((2, 3, 8, 8), 0.3)).item() == 0.0


def test_tv_known_value():
    stripes = torch.tensor([0.0, 1.0]).repeat(4).view(1, 1, 1, 8).expand(1, 1, 8, 8)  # vertical stripes
    assert tv_loss(stripes).item() == pytest.approx(1.0)


def test_relative_error_is_scale_free():
    target = torch.rand(2, 5)
    assert relative_error(2 * target, target).item() == pytest.approx(1.0)
    assert relative_error(200 * target, 100 * target).item() == pytest.approx(1.0)


def test_style_targets_shapes_and_multiscale(images):
    vgg, (_, style) = tiny_vgg(), images
    grams = style_targets(vgg, style)
    assert {name: tuple(g.shape) for name, g in grams.items()} == {
        "relu1_2": (1, 4, 4),
        "relu2_2": (1, 8, 8),
        "relu3_3": (1, 8, 8),
        "relu4_3": (1, 8, 8),
    }
    multi = style_targets(vgg, style, sizes=[32, 48])
    assert not torch.allclose(multi["relu1_2"], grams["relu1_2"])


def test_perceptual_loss_zero_for_identity_without_style(images):
    content, _ = images
    loss = PerceptualLoss(tiny_vgg(), LossWeights(content=1.0, style=0.0, tv=0.0))
    terms = loss(content, content, style_targets(loss.vgg, content[:1]))
    assert terms["content"].item() == 0.0 and terms["total"].item() == 0.0
    assert set(terms) == {"content", "style", "tv", "total"}


def test_zero_weight_skips_its_vgg_layers(images):
    content, _ = images
    loss = PerceptualLoss(tiny_vgg(), LossWeights(style=0.0))
    calls = []
    loss.vgg.features[17].register_forward_hook(lambda *_: calls.append(1))  # conv4_1: style only
    loss(content.flip(-1), content, {})
    assert loss.needed_layers() == ("relu2_2", "relu3_3") and not calls


def test_style_term_zero_on_the_style_image_itself(images):
    _, style = images
    loss = PerceptualLoss(tiny_vgg())
    assert loss(style, style, style_targets(loss.vgg, style))["style"].item() == pytest.approx(0.0, abs=1e-6)


def test_perceptual_loss_decreases_when_optimising_pixels(images):
    content, style = images
    loss = PerceptualLoss(tiny_vgg())
    grams = style_targets(loss.vgg, style)
    x = content.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([x], lr=0.05)
    start = loss(x, content, grams)["total"].item()
    for _ in range(5):
        optimiser.zero_grad()
        loss(x, content, grams)["total"].backward()
        optimiser.step()
    assert loss(x, content, grams)["total"].item() < 0.5 * start


def test_perceptual_loss_under_bf16_autocast_matches_fp32(images):
    content, style = images
    loss = PerceptualLoss(tiny_vgg())
    grams = style_targets(loss.vgg, style)
    output = content.flip(-1)
    reference = loss(output, content, grams)
    with torch.autocast("cpu", torch.bfloat16):
        low = loss(output, content, grams)
    for name, value in low.items():
        assert value.dtype == torch.float32
        assert value.item() == pytest.approx(reference[name].item(), rel=0.05), name


def test_loss_weights_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        LossWeights().style = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("norm", ["instance", "none"])
def test_patch_discriminator_output_shape(norm: str):
    disc = PatchDiscriminator(in_channels=6, width=4, layers=3, norm=norm)
    assert disc(torch.rand(2, 6, 64, 64)).shape == (2, 1, 6, 6)


def test_patch_discriminator_rejects_unknown_norm():
    with pytest.raises(ValueError, match="norm"):
        PatchDiscriminator(norm="batch")


def test_adversarial_losses_conditional():
    disc = tiny_discriminator()
    condition, real = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    fake = torch.rand(2, 3, 32, 32, requires_grad=True)
    generator, discriminator = adversarial_losses(disc, fake, real, condition=condition)
    assert generator.shape == () and discriminator.shape == ()
    assert torch.autograd.grad(discriminator, fake, allow_unused=True)[0] is None  # fake detached for D
    assert torch.autograd.grad(generator, fake)[0].abs().sum() > 0


def test_adversarial_losses_unconditional():
    disc = tiny_discriminator(in_channels=3)
    generator, discriminator = adversarial_losses(disc, torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))
    assert torch.isfinite(generator) and torch.isfinite(discriminator)
