"""Decode one photo, mask or cut-out file into a uint8 numpy array, once per run.

../shared/docs/design.md, "Tasks and their training targets" (segmentation masks and cut-outs) and
"Performance": decoding happens here, at load time, so that sampling never touches PIL.

Resize rule: a photo is shrunk (never enlarged) so that its SHORT side is at most `max_side`;
a cut-out so that its LONG side is at most `max_side`. Pass `max_side = 2 * training size`
(`default_max_side`): random crops of side [size, short side] then span 1x to 2x zoom-out, i.e.
from native detail up to half of the photo's short side in view, while a 1024 px photo costs
only ~0.8 MB. JPEGs are decoded directly at a reduced scale (libjpeg DCT scaling, `draft`)
when that is still larger than the target, then resized with Lanczos. EXIF orientation is applied.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from mixtask.data.layouts import VOC_VOID
from mixtask.images import rgb_of

EXIF_ORIENTATION = 0x0112
SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees
VOC_VOID_RGB = (224, 224, 192)  # the void colour of VOC's colour-coded masks
ASPECT_TOLERANCE = 0.02


class UnusableImage(Exception):
    """A file that cannot be used; the message says why. Callers skip it with a warning."""


def default_max_side(size: int) -> int:
    """The photo short-side cap used for training crops of `size` px (see the module docstring)."""
    return 2 * size


def shrunk_size(width: int, height: int, max_short_side: int) -> tuple[int, int]:
    """(width, height) scaled down so that the short side is at most `max_short_side`."""
    scale = min(1.0, max_short_side / min(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _open(path) -> Image.Image:
    try:
        image = Image.open(path)
    except FileNotFoundError:
        raise UnusableImage("file is missing") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise UnusableImage(f"not a readable image ({error})") from None
    return image


def _load(image: Image.Image) -> Image.Image:
    """Decode the pixels and apply EXIF orientation; a truncated or corrupt file raises here."""
    try:
        image.load()
        return ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise UnusableImage(f"cannot decode ({error})") from None


def _orientation_swaps(image: Image.Image) -> bool:
    try:
        return image.getexif().get(EXIF_ORIENTATION, 1) in SWAPPING_ORIENTATIONS
    except (OSError, ValueError, SyntaxError):
        return False


def decode_photo(path, max_side: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB, short side at most `max_side`."""
    with _open(path) as image:
        width, height = shrunk_size(*image.size, max_side)
        swaps = _orientation_swaps(image)
        if (width, height) != image.size:
            image.draft(image.mode, (width, height))  # JPEG only: decode at 1/2, 1/4 or 1/8 scale
        image = Image.fromarray(rgb_of(_load(image)))  # 16-bit and float photos scaled as `apply` does
    target = (height, width) if swaps else (width, height)
    if image.size != target:
        image = image.resize(target, Image.Resampling.LANCZOS)
    return np.array(image)


def voc_foreground(class_ids: np.ndarray) -> np.ndarray:
    """VOC class ids -> 255 for every object class, 0 for background (0) and void (255)."""
    return np.where((class_ids != 0) & (class_ids != VOC_VOID), 255, 0).astype(np.uint8)


def _voc_rgb_foreground(rgb: np.ndarray) -> np.ndarray:
    """Colour-coded VOC masks: black is background, (224, 224, 192) is void."""
    void = np.all(rgb == VOC_VOID_RGB, axis=-1)
    return np.where(rgb.any(axis=-1) & ~void, 255, 0).astype(np.uint8)


def _mask_values(image: Image.Image, kind: str) -> np.ndarray:
    if kind == "gray":
        return np.asarray(image.convert("L"))
    if image.mode in ("P", "L"):
        return voc_foreground(np.asarray(image))
    if image.mode == "RGB":
        return _voc_rgb_foreground(np.asarray(image))
    raise UnusableImage(f"mode {image.mode} is not a VOC class-id mask (expected a palette PNG)")


def _check_aspect(mask_size: tuple[int, int], photo_size: tuple[int, int]) -> None:
    mask_aspect, photo_aspect = mask_size[0] / mask_size[1], photo_size[0] / photo_size[1]
    if abs(mask_aspect / photo_aspect - 1) > ASPECT_TOLERANCE:
        raise UnusableImage(f"its size {mask_size[0]}x{mask_size[1]} does not match the photo's shape")


def decode_mask(path, size: tuple[int, int], kind: str = "gray") -> np.ndarray:
    """(H, W) uint8 foreground (0..255) resized to the decoded photo's `size` = (width, height)."""
    with _open(path) as image:
        values = _mask_values(_load(image), kind)
    mask = Image.fromarray(values)
    _check_aspect(mask.size, size)
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return np.array(mask)


def _has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def decode_cutout(path, max_side: int) -> np.ndarray:
    """(h, w, 4) uint8 straight RGBA, trimmed to its visible pixels, long side at most `max_side`."""
    with _open(path) as image:
        image = _load(image)
        if not _has_alpha(image):
            raise UnusableImage("has no alpha channel; cut-outs must be RGBA with a transparent background")
        image = image.convert("RGBA")
    alpha = image.getchannel("A")
    if alpha.getextrema()[0] == 255:
        raise UnusableImage("has no transparent pixels; cut-outs need a transparent background")
    box = alpha.getbbox()
    if box is None:
        raise UnusableImage("is fully transparent")
    image = image.crop(box)
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:  # Pillow resizes RGBA premultiplied, so no dark fringes
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.LANCZOS)
    return np.array(image)
