"""The faster conv forms compute exactly what the plain layers compute, values and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mixtask.nets.convforms import plain_forms, shuffled_conv, strided_weight, subpixel_weight, upsample_conv
from mixtask.nets.film import ConvLayer
from tests.conftest import make_tiny_model


def plain(layer: ConvLayer, x: torch.Tensor) -> torch.Tensor:
    """The layer as its docstring defines it: (nearest x2,) reflect pad, conv."""
    if layer.upsample:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    return layer.conv(layer.pad(x))


def seeded(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_subpixel_form_is_nearest_upsample_reflect_pad_conv():
    weight, x = seeded(5, 6, 3, 3), seeded(1, 6, 7, 9, seed=1)
    want = F.conv2d(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"), weight)
    assert torch.allclose(upsample_conv(x, weight, None), want, atol=1e-12)
    assert subpixel_weight(weight).shape == (20, 6, 2, 2)


@pytest.mark.parametrize("kernel", [3, 9])
def test_strided_form_is_the_plain_conv(kernel):
    weight, padded = seeded(3, 6, kernel, kernel), seeded(1, 6, 12 + kernel - 1, 16 + kernel - 1, seed=1)
    assert strided_weight(weight).shape == (12, 6, kernel + 1, kernel + 1)
    assert torch.allclose(shuffled_conv(padded, weight, None), F.conv2d(padded, weight), atol=1e-10)


@pytest.mark.parametrize(
    ("layer", "size"),
    [
        (ConvLayer(6, 4, 3, upsample=True), (5, 7)),
        (ConvLayer(6, 5, 9, shuffled=True), (12, 16)),
        (ConvLayer(6, 5, 9, shuffled=True), (11, 14)),  # odd side: the plain conv
    ],
)
def test_layers_match_their_plain_definition_in_values_and_gradients(layer, size):
    layer = layer.double()
    x = seeded(2, 6, *size, seed=2).requires_grad_()
    fast = layer(x)
    grads = torch.autograd.grad(fast.square().sum(), [x, layer.conv.weight, layer.conv.bias])
    slow = plain(layer, x)
    want = torch.autograd.grad(slow.square().sum(), [x, layer.conv.weight, layer.conv.bias])
    assert torch.allclose(fast, slow, atol=1e-10)
    for got, expected in zip(grads, want):
        assert torch.allclose(got, expected, atol=1e-9)


def test_layers_refuse_shapes_without_a_faster_form():
    with pytest.raises(ValueError, match="odd kernel"):
        ConvLayer(4, 4, 3, stride=2, upsample=True)
    with pytest.raises(ValueError, match="odd kernel"):
        ConvLayer(4, 4, 5, upsample=True)


def test_plain_forms_switch_gives_the_same_network_output():
    model = make_tiny_model()
    x, c = seeded(2, 3, 16, 20, seed=3).float().clamp(0, 1), torch.tensor([[0.0, 1.0, 0.0, 0.5, 0.0]] * 2)
    fast = model(x, c)
    with plain_forms():
        slow = model(x, c)
    assert model.output.shuffled and model.decoder[0].upsample
    assert torch.allclose(fast, slow, atol=1e-5)
