"""Random training batches from a pre-decoded `Dataset` (paper, Table 1; ../shared/docs/design.md, "Tasks").

- `clean`: a random photo, a random square crop whose side is uniform in [size, short side]
  (so 1x to 2x zoom-out with the default `max_side = 2 * size`), resized to `size`, randomly
  mirrored. Inputs of recon / inpaint / denoise / style, and the targets of the restoration tasks.
- `styled`: optional renderings of every photo and cut-out by a style teacher
  (`mixtask.backbones.teachers`), cropped with the same window: `clean(batch, styled=True)` and
  `segmentation(batch, styled=True)` return them as channels after RGB (3 per style).
- `segmentation`: images and masks in [0, 1]. Each sample is either a composite (a random cut-out
  with its long side 25-70 % of `size`, alpha-pasted at a random place on a clean crop; the mask
  is exactly the pasted alpha; people are drawn twice as often, `CUTOUT_CATEGORY_WEIGHTS`; a 1-bit
  alpha is feathered once) or a photo + mask pair (pseudo-labels: 30 % of samples by default,
  exact VOC labels: 50 %; all samples when there are no cut-outs). Masks with less than 1 %
  foreground are never used. `composites` (COMPOSITES) says what a composite's background may hold:
  `pasted`, any crop, whose own objects count as background although a photo + mask pair would call
  them foreground; `plain`, crops whose own mask covers under 2 % (the labels agree); `union`, any
  crop, its own mask joined to the cut-out's.

Every random number comes from one `torch.Generator` owned by the `SampleMaker`, so the same
seed gives the same batches and `state_dict()` / `load_state_dict()` resume a run exactly.
Work is done with torch on uint8 tensors, one thread (the tensors are small: a second thread
only adds synchronisation, and costs a lot when the other core is busy).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from mixtask.choices import COMPOSITES
from mixtask.data.corruptions import CORRUPTIONS
from mixtask.data.dataset import Dataset
from mixtask.errors import MixtaskError

CUTOUT_SCALE = (0.25, 0.70)  # cut-out long side, as a fraction of the crop side
MASK_FRACTION_PSEUDO, MASK_FRACTION_EXACT = 0.3, 0.5
MIN_MASK_COVERAGE = 0.01  # fraction of pixels above 127
PLAIN_MAX_COVERAGE, PLAIN_TRIES = 0.02, 8  # `plain` backgrounds: own-mask share of the crop, draws before the least
# Cut-outs whose name starts with one of these categories (shared/data/README.md: `<category>-...`) are drawn
# more often: people are what users cut out most, and they are a sixth of the cut-outs.
CUTOUT_CATEGORY_WEIGHTS = {"people": 2.0, "hands": 2.0}


def cutout_weights(names) -> torch.Tensor | None:
    """Relative draw weight of each cut-out by its name's category, or None when all weigh the same."""
    weights = torch.tensor([CUTOUT_CATEGORY_WEIGHTS.get(name.split("-")[0], 1.0) for name in names])
    return None if len(weights) == 0 or bool((weights == weights[0]).all()) else weights


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run small tensor ops on one thread, then restore the thread count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resize(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(C, h, w) uint8 or float -> (C, height, width) float; antialiased when shrinking."""
    if image.shape[-2:] == (height, width):
        return image.float()
    return F.interpolate(image[None], size=(height, width), mode="bilinear", antialias=True)[0].float()


def composite(background: torch.Tensor, cutout: torch.Tensor, top: int, left: int):
    """Alpha-paste a premultiplied float RGBA `cutout` (4, h, w) onto `background` (3, S, S).

    Returns (image, mask): the mask is the cut-out's alpha where it was pasted, 0 elsewhere.
    Extra colour channels (styled renderings) follow alpha in the cut-out and RGB in the background.
    """
    height, width = cutout.shape[-2:]
    image, alpha = background.clone(), cutout[3:4]
    region = image[:, top : top + height, left : left + width]
    region.mul_(1 - alpha).add_(torch.cat([cutout[:3], cutout[4:]]))
    mask = background.new_zeros(1, *background.shape[-2:])
    mask[:, top : top + height, left : left + width] = alpha
    return image, mask


def premultiplied(cutout: torch.Tensor, max_side: int) -> torch.Tensor:
    """Straight RGBA uint8 (plus optional colour channels after alpha) -> premultiplied uint8, long side at
    most `max_side`.

    Done once per run: resizing premultiplied colour leaves no dark fringes, and resizing a
    small uint8 cut-out per sample is cheap. A 1-bit alpha (Scratch costumes) is feathered first,
    so that pasted cut-outs have no jagged edge that would tell the network where to cut.
    """
    rgba = cutout.float()
    alpha = feathered(rgba[3:4])
    rgba = torch.cat([rgba[:3] * alpha / 255, alpha, rgba[4:] * alpha / 255])
    scale = min(1.0, max_side / max(rgba.shape[-2:]))
    height, width = (max(1, round(n * scale)) for n in rgba.shape[-2:])
    return resize(rgba, height, width).round_().clamp_(0, 255).to(torch.uint8)


FEATHER_SIGMA = 0.8  # pixels, at the cut-out's decoded size


def feathered(alpha: torch.Tensor) -> torch.Tensor:
    """(1, h, w) float alpha in 0..255; a 1-bit one (only 0 and 255) gets a slight Gaussian blur."""
    if bool(((alpha > 0) & (alpha < 255)).any()):
        return alpha
    radius = 2
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (offsets / FEATHER_SIGMA) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(alpha[None], (radius, radius, radius, radius), mode="replicate")
    blurred = F.conv2d(F.conv2d(padded, kernel.view(1, 1, 1, -1)), kernel.view(1, 1, -1, 1))
    return blurred[0]


def usable_masks(dataset: Dataset) -> list[int]:
    """Indices of the photos whose mask has at least 1 % foreground (pixels above 127)."""
    coverage = [(m > 127).float().mean().item() if m is not None else 0.0 for m in dataset.masks]
    return [i for i, value in enumerate(coverage) if value >= MIN_MASK_COVERAGE]


class SampleMaker:
    """Seeded batches of clean crops and segmentation examples from one `Dataset`."""

    def __init__(
        self,
        dataset: Dataset,
        size: int,
        seed: int,
        *,
        mask_fraction: float | None = None,
        styled=None,
        composites: str = "pasted",
    ):
        """`styled`: (photos, cut-outs), each a tuple of (3 x styles, H, W) uint8 renderings aligned with
        the dataset's photos and cut-outs, or None. `composites`: one of COMPOSITES (module docstring)."""
        if size < 8:
            raise MixtaskError(f"training size must be at least 8 px (got {size})")
        if composites not in COMPOSITES:
            raise MixtaskError(f"composites must be one of {', '.join(COMPOSITES)} (got {composites!r})")
        self.dataset, self.size, self.composites = dataset, size, composites
        self.generator = torch.Generator().manual_seed(seed)
        self.styled_photos = styled[0] if styled else None
        cutouts = dataset.cutouts if not styled else [torch.cat(pair) for pair in zip(dataset.cutouts, styled[1])]
        with one_thread():
            self.mask_pool = usable_masks(dataset)
            self.cutouts = [premultiplied(c, math.ceil(CUTOUT_SCALE[1] * size)) for c in cutouts]
        self.cutout_weights = cutout_weights(dataset.cutout_names)
        self.mask_fraction = self._mask_fraction(mask_fraction)

    def _mask_fraction(self, requested: float | None) -> float:
        if not self.mask_pool:
            return 0.0
        if not self.dataset.cutouts:
            return 1.0
        if requested is not None:
            return requested
        return MASK_FRACTION_EXACT if self.dataset.exact_masks else MASK_FRACTION_PSEUDO

    # ------------------------------------------------------------------ RNG state

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        if "generator" not in state:
            raise MixtaskError("sampler state has no 'generator' entry: the checkpoint is not from this version")
        self.generator.set_state(state["generator"])

    # ------------------------------------------------------------------ random numbers

    def _randint(self, low: int, high: int) -> int:
        """An integer in [low, high], both ends included."""
        return int(torch.randint(low, high + 1, (1,), generator=self.generator))

    def _uniform(self, low: float, high: float) -> float:
        return low + (high - low) * float(torch.rand(1, generator=self.generator))

    def _coin(self, probability: float = 0.5) -> bool:
        return float(torch.rand(1, generator=self.generator)) < probability

    # ------------------------------------------------------------------ samples

    def _crop(self, *images: torch.Tensor) -> torch.Tensor:
        """One random square window of side [size, short side] cut from `images` (same size, stacked
        along channels), resized to size and maybe mirrored."""
        height, width = images[0].shape[-2:]
        short = min(height, width)
        side = self._randint(min(self.size, short), short)
        top, left = self._randint(0, height - side), self._randint(0, width - side)
        window = torch.cat([image[:, top : top + side, left : left + side] for image in images])
        crop = resize(window, self.size, self.size)
        return crop.flip(-1) if self._coin() else crop

    def _photo(self, index: int, styled: bool) -> list[torch.Tensor]:
        """Photo `index`, and its styled renderings after it when asked for."""
        if not styled:
            return [self.dataset.photos[index]]
        if self.styled_photos is None:
            raise MixtaskError("styled samples were asked for, but this sample maker has no style renderings")
        return [self.dataset.photos[index], self.styled_photos[index]]

    def _clean_one(self, styled: bool = False) -> torch.Tensor:
        index = self._randint(0, len(self.dataset.photos) - 1)
        return self._crop(*self._photo(index, styled)) / 255

    def _with_mask(self, index: int, styled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """One crop of photo `index` and the same crop of its mask (zeros when the photo has none)."""
        mask = self.dataset.masks[index] if self.dataset.masks else None
        if mask is None:
            crop = self._crop(*self._photo(index, styled)) / 255
            return crop, crop.new_zeros(1, *crop.shape[-2:])
        crop = self._crop(*self._photo(index, styled), mask) / 255
        return crop[:-1], crop[-1:]

    def _pair_one(self, styled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return self._with_mask(self.mask_pool[self._randint(0, len(self.mask_pool) - 1)], styled)

    def _cutout_one(self, styled: bool = False) -> torch.Tensor:
        """A random cut-out, premultiplied, long side 25-70 % of size, maybe mirrored: (4, h, w) float
        (with its styled colours after alpha when `styled`)."""
        if self.cutout_weights is None:
            index = self._randint(0, len(self.cutouts) - 1)
        else:
            index = int(torch.multinomial(self.cutout_weights, 1, generator=self.generator))
        cutout = self.cutouts[index]
        cutout = cutout if styled else cutout[:4]
        scale = self._uniform(*CUTOUT_SCALE) * self.size / max(cutout.shape[-2:])
        height, width = (max(1, round(n * scale)) for n in cutout.shape[-2:])
        cutout = resize(cutout, height, width) / 255
        return cutout.flip(-1) if self._coin() else cutout

    def _background_one(self, styled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A clean crop of any photo and the same crop of its own mask."""
        return self._with_mask(self._randint(0, len(self.dataset.photos) - 1), styled)

    def _plain_background(self, styled: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """The first of PLAIN_TRIES background crops whose own mask covers < PLAIN_MAX_COVERAGE, else the
        least covered."""
        best, best_coverage = None, 2.0
        for _ in range(PLAIN_TRIES):
            background, mask = self._background_one(styled)
            coverage = float((mask > 0.5).float().mean())
            if coverage < best_coverage:
                best, best_coverage = (background, mask), coverage
            if coverage < PLAIN_MAX_COVERAGE:
                break
        return best

    def _composite_one(self, styled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        if self.composites == "pasted":
            background, own_mask = self._clean_one(styled), None
        elif self.composites == "plain":
            background, own_mask = self._plain_background(styled)
        else:
            background, own_mask = self._background_one(styled)
        cutout = self._cutout_one(styled)
        top = self._randint(0, self.size - cutout.shape[-2])
        left = self._randint(0, self.size - cutout.shape[-1])
        image, mask = composite(background, cutout, top, left)
        if self.composites == "union":
            mask = mask + (1 - mask) * own_mask
        return image, mask

    def _segmentation_one(self, styled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return self._pair_one(styled) if self._coin(self.mask_fraction) else self._composite_one(styled)

    # ------------------------------------------------------------------ batches

    def clean(self, batch: int, styled: bool = False) -> torch.Tensor:
        """(B, 3, size, size) float in [0, 1]: random crops of random photos (3 more channels per style
        after RGB, the same crops of the styled renderings, when `styled`)."""
        with one_thread():
            return torch.stack([self._clean_one(styled) for _ in range(batch)])

    def segmentation(self, batch: int, styled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, 3, size, size) and masks (B, 1, size, size), both float in [0, 1] (with styled
        channels after RGB when `styled`, as in `clean`)."""
        if not self.dataset.cutouts and not self.mask_pool:
            raise MixtaskError(
                f"{self.dataset.root} has no segmentation examples: add RGBA cut-outs in cutouts/ or masks "
                f"in masks/<name>/ (masks with < {MIN_MASK_COVERAGE:.0%} foreground are not used)"
            )
        with one_thread():
            images, masks = zip(*(self._segmentation_one(styled) for _ in range(batch)))
            return torch.stack(images), torch.stack(masks)

    def corrupt(self, kind: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The corruption of task kind `kind` (see `CORRUPTIONS`), drawn from this maker's generator."""
        if kind not in CORRUPTIONS:
            raise MixtaskError(f"task kind {kind!r} has no corruption (kinds with one: {', '.join(CORRUPTIONS)})")
        with one_thread():
            return CORRUPTIONS[kind](x, self.generator)
