"""Training losses of the paper's Table 1: L2, perceptual (content + style + TV), PatchGAN.

- L2 for reconstruction, inpainting, denoising, segmentation and every synthesised mix.
- Perceptual loss for the style tasks, Johnson et al. (2016), "Perceptual Losses for
  Real-Time Style Transfer and Super-Resolution" (https://arxiv.org/abs/1603.08155): content =
  feature distance at VGG relu2_2 / relu3_3, style = Gram-matrix distance at relu1_2 ... relu4_3
  (Gatys et al. 2016, https://arxiv.org/abs/1508.06576), plus total variation.
  Each layer's term is divided by the (detached) squared norm of its target, so every layer
  counts about equally and the weights do not depend on the VGG's input scale (our HED VGG
  takes 0-255 Caffe input; torchvision's takes mean/std-normalised input: activations differ
  by two orders of magnitude, relative errors do not).
- Adversarial loss for segmentation: a conditional PatchGAN (Isola et al. 2017, pix2pix,
  https://arxiv.org/abs/1611.07004) trained with the least-squares objective (Mao et al. 2017,
  LSGAN, https://arxiv.org/abs/1611.04076). Conditional, because the seg target is a masked copy
  of the input: without the input a discriminator can only learn "object on black" and would
  accept a wrong mask; with it, it can judge whether the kept region is the object. LSGAN
  rather than BCE-with-logits because its gradients do not vanish for confidently rejected
  fakes and it trains stably with the small batches we can afford on a CPU (CycleGAN's choice).

All losses compute in float32 even under `torch.autocast("cpu", torch.bfloat16)`: the networks
may run in bf16, but Gram matrices (sums over H*W products) and the reductions do not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mixtask.backbones.perceptual import CONTENT_LAYERS, STYLE_LAYERS, StyleGrams, gram_matrix, relative_error


@dataclass(frozen=True)
class LossWeights:
    """Every loss weight in one place; a weight of 0 turns its term off.

    Perceptual terms are relative (see the module docstring): content is 0 for the input itself
    and about 1 when the features are as far off as their own size; style starts near 0.7 on a
    photo. style=10, tv=50 were calibrated with the shared HED VGG16 and The Starry Night by
    optimising pixels from a photo (docs/training.md, "Losses"): clearly stylised, still recognisable;
    style 30 swamps detail, tv 200 blurs it. `adversarial` scales the LSGAN generator loss
    against an L2 of weight 1, the pix2pix ratio (GAN 1 : L1 100); not yet calibrated.
    """

    content: float = 1.0
    style: float = 10.0
    tv: float = 50.0
    adversarial: float = 0.01


def l2(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over all pixels and the batch (float32)."""
    return F.mse_loss(output.float(), target.float())


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (float32): the pixel loss against a style teacher's rendering (`--style-loss
    teacher`); sharper than L2 where the student cannot match the teacher's brush strokes exactly."""
    return F.l1_loss(output.float(), target.float())


def mask_losses(gate_logit: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Direct supervision of the object mask (`--seg-loss mask`): BCE on the gated head's gate logit and
    soft Dice on its sigmoid, against the mask (both (B, 1, H, W); float32 scalars).

    Why: the L2 to `x * mask` gives a gradient proportional to pixel brightness, and its optimum under
    uncertainty is a dimmed photo. BCE gives every pixel the same pull towards in or out, and Dice
    weighs the object as a whole, so small objects are not drowned by background pixels.
    """
    logit, mask = gate_logit.float(), mask.float()
    bce = F.binary_cross_entropy_with_logits(logit, mask)
    probability = torch.sigmoid(logit)
    overlap = (probability * mask).flatten(1).sum(1)
    total = probability.flatten(1).sum(1) + mask.flatten(1).sum(1)
    dice = 1 - ((2 * overlap + 1) / (total + 1)).mean()
    return {"bce": bce, "dice": dice}


def keep_loss(gate_logit: torch.Tensor, keep: torch.Tensor, damaged_target: torch.Tensor | None = None) -> torch.Tensor:
    """Direct supervision of a restoration's gate (`--keep-weight`): BCE of the gated head's gate logit against
    the pixels to keep (1: undamaged, passed through; 0: a hole or scratch, generated), the two classes weighed
    equally (the damaged pixels are a few per cent of a crop). Why: under the image L2 alone the gate settles
    near 0.93 on undamaged pixels, so they come back at about 35 dB instead of exactly, and half the output's
    error is in pixels the input had right. `damaged_target` (broadcast to the logit, in [0, 1]): the gate's
    target on the damaged pixels instead of 0 (`--keep-partial`: 1 - s at strength s)."""
    logit, keep = gate_logit.float(), keep.float()
    target = keep if damaged_target is None else keep + (1 - keep) * damaged_target.float()
    per_pixel = F.binary_cross_entropy_with_logits(logit, target, reduction="none")
    kept, damaged = (per_pixel * keep).sum() / keep.sum().clamp_min(1), (per_pixel * (1 - keep)).sum()
    return 0.5 * kept + 0.5 * damaged / (1 - keep).sum().clamp_min(1)


class TextureLoss(nn.Module):
    """`--style-texture`: the Gram-matrix error of a frozen EfficientNet-Lite0's early features (strides 2 to 16)
    of the output against those of the style teacher's rendering of the same photo, relative per layer.

    Why: the L1 to the teacher's rendering is a pixel loss, and where the student cannot place the teacher's
    brush strokes exactly its optimum is their average, a smoother picture (style1 at full strength ends
    further from its style than at 0.8). Grams ask for the strokes' statistics, not their places. Not the VGG
    of the perceptual loss and the eval's style metric: the context branch's backbone (a copy of its file), whose
    early stages cost a fraction of VGG's, so the metric stays a measure the loss did not see."""

    TAPS = (0, 2, 4, 7)  # Lite0's blocks ending at strides 2, 4, 8, 16 (16, 24, 40, 80 channels)

    def __init__(self, trunk: nn.Module):
        super().__init__()
        self.trunk = trunk

    def grams(self, image: torch.Tensor) -> list[torch.Tensor]:
        return [gram_matrix(f) for f in self.trunk.trunk(self.trunk.normalized(image), self.TAPS)]

    def forward(self, output: torch.Tensor, rendering: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            targets = self.grams(rendering)
        errors = [relative_error(gram, target) for gram, target in zip(self.grams(output), targets)]
        return torch.stack(errors).mean()


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation: mean squared difference of vertical plus horizontal neighbours."""
    x = x.float()
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() + (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean()


class PerceptualLoss(nn.Module):
    """Johnson et al.'s loss for one style: content + style + TV, each weighted by LossWeights.

    Call with the network output, the content image (the clean input) and the style's Grams
    from `style_targets`; returns a dict of float32 scalars: content, style, tv, total.
    """

    def __init__(
        self,
        vgg: nn.Module,
        weights: LossWeights = LossWeights(),
        content_layers: Sequence[str] = CONTENT_LAYERS,
        style_layers: Sequence[str] = STYLE_LAYERS,
    ):
        super().__init__()
        self.vgg = vgg
        self.weights = weights
        self.content_layers = tuple(content_layers)
        self.style_layers = tuple(style_layers)

    def needed_layers(self) -> tuple[str, ...]:
        """VGG layers read by the terms with a non-zero weight (the VGG stops at the deepest)."""
        w = self.weights
        layers = (self.content_layers if w.content else ()) + (self.style_layers if w.style else ())
        return tuple(dict.fromkeys(layers))

    def forward(self, output: torch.Tensor, content: torch.Tensor, style_grams: StyleGrams) -> dict[str, torch.Tensor]:
        w = self.weights
        layers = self.needed_layers()
        features = self.vgg(output, layers=layers) if layers else {}
        zero = output.new_zeros((), dtype=torch.float32)
        terms = {
            "content": self.content_term(features, content) if w.content else zero,
            "style": self.style_term(features, style_grams) if w.style else zero,
            "tv": tv_loss(output),
        }
        terms["total"] = w.content * terms["content"] + w.style * terms["style"] + w.tv * terms["tv"]
        return terms

    def content_term(self, features: dict[str, torch.Tensor], content: torch.Tensor) -> torch.Tensor:
        """Mean over content layers of the relative feature error against the content image."""
        with torch.no_grad():
            reference = self.vgg(content, layers=self.content_layers)
        errors = [relative_error(features[n], reference[n]) for n in self.content_layers]
        return sum(errors) / len(errors)

    def style_term(self, features: dict[str, torch.Tensor], style_grams: StyleGrams) -> torch.Tensor:
        """Mean over style layers of the relative Gram-matrix error against the style's Grams."""
        errors = [relative_error(gram_matrix(features[n]), style_grams[n]) for n in self.style_layers]
        return sum(errors) / len(errors)


class PatchDiscriminator(nn.Module):
    """pix2pix PatchGAN: 4x4 convs, stride 2 then 1, LeakyReLU 0.2; one logit per image patch.

    With `layers=3` each output sees a 70x70 patch. `in_channels=6` is the conditional form
    (input image and candidate output, concatenated); `norm` is "instance" or "none".
    """

    def __init__(self, in_channels: int = 6, width: int = 32, layers: int = 3, norm: str = "instance"):
        super().__init__()
        if norm not in ("instance", "none"):
            raise ValueError(f"norm must be 'instance' or 'none', not {norm!r}")
        widths = [width * min(2**i, 8) for i in range(layers + 1)]
        blocks = [nn.Conv2d(in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(1, layers + 1):
            stride = 2 if i < layers else 1
            blocks += [nn.Conv2d(widths[i - 1], widths[i], 4, stride, 1), *norm_layer(norm, widths[i])]
            blocks.append(nn.LeakyReLU(0.2))
        blocks.append(nn.Conv2d(widths[-1], 1, 4, 1, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, 1, H', W') patch logits (about H/8 - 2 for 3 layers)."""
        return self.net(x)


def norm_layer(norm: str, channels: int) -> list[nn.Module]:
    return [nn.InstanceNorm2d(channels)] if norm == "instance" else []


def with_condition(image: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
    """The discriminator's input: the candidate image, after its condition when there is one."""
    return image if condition is None else torch.cat([condition.to(image.dtype), image], dim=1)


def adversarial_losses(
    disc: nn.Module, fake: torch.Tensor, real: torch.Tensor, condition: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """LSGAN losses -> (generator loss, discriminator loss), float32 scalars.

    generator: mean (D(fake) - 1)²; discriminator: ½ [mean (D(real) - 1)² + mean D(fake)²], with
    `fake` detached for the discriminator. `condition` (the network input) is concatenated in
    front of both images for a conditional discriminator. The generator loss also back-propagates
    into the discriminator's parameters: zero the discriminator's gradients before its own step.
    """
    generator = (disc(with_condition(fake, condition)).float() - 1).pow(2).mean()
    real_term = (disc(with_condition(real, condition)).float() - 1).pow(2).mean()
    fake_term = disc(with_condition(fake.detach(), condition)).float().pow(2).mean()
    return generator, 0.5 * (real_term + fake_term)
