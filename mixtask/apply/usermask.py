"""Inpainting where the user says (IOPaint's conventions): `mixtask apply photo.jpg --task inpaint --mask mask.png`.

- The mask: white (bright) pixels are filled, dark ones kept; transparent pixels of a mask with alpha are kept.
  One mask file for every input, or a folder holding a mask per input with the input's stem (`DIR/<stem>.*`).
  A mask of another size is resized to the image (nearest neighbour, so it stays binary).
- The masked pixels are prepared the way training holes are (`mixtask.data.corruptions`: a constant colour the
  network learnt to see as "missing"), the network fills them, and every pixel outside the mask is the input's,
  bit for bit (`mixtask damage --mask` writes masks in this convention: they round-trip).
- The network is told where the holes are: the gated head takes the mask as its gate, in place of its own guess,
  and the fill head's local fill reads the known pixels alone (`Translator.translate_array(..., known=)`).
- The fill colour changes the result, so FILL_PASSES seeded colours are run and their fills averaged.
- The averaged fill is Poisson-blended into the known pixels around each hole (`mixtask.inference.blending`): its
  gradients kept, its values made to meet the hole's rim. The network's fill leans towards the colour its hole
  was given and steps at the rim; the blend removes both (+0.46 dB inside the holes on the val photos with the
  shipped file, told where the holes are; +1.26 dB when the head read them from its gate).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mixtask.errors import MixtaskError
from mixtask.inference.blending import poisson_blend
from mixtask.tasks import TaskSet

if TYPE_CHECKING:  # numpy is imported where a mask is used: the CLI's help stays fast
    import numpy as np

# Hole PSNR of the shipped step-5,030 file on 16 val crops at 256 px with the training holes (Telea: 20.40 dB):
# one colour per hole as in training 16.24 dB, one seeded colour for all holes 16.10, mid-grey 15.14, the image's
# mean 14.82; the fills of 2 / 4 / 8 seeded colours averaged: 16.38 / 16.78 / 16.98 dB.
FILL_PASSES = 4
FILL_SEED = 0
MASK_SUFFIXES = (".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".jpg", ".jpeg")


@dataclass
class UserMask:
    """The --mask of one apply run: a file for every input, or a folder of masks named like the inputs."""

    source: Path
    _shared: np.ndarray | None = field(default=None, repr=False)  # the one mask file, decoded at planning

    def for_image(self, image_path: Path | None, height: int, width: int) -> np.ndarray:
        """(H, W) bool, True = fill, for an input (its path picks the mask in a folder)."""
        if self.source.is_dir():
            return _resized(read_mask(self._in_folder(image_path)), height, width)
        return _resized(self._shared, height, width)

    def _in_folder(self, image_path: Path | None) -> Path:
        if image_path is None:
            raise MixtaskError(f"--mask {self.source} is a folder: its masks go by the input's name, stdin has none")
        for suffix in (*MASK_SUFFIXES, *(suffix.upper() for suffix in MASK_SUFFIXES)):
            candidate = self.source / f"{image_path.stem}{suffix}"
            if candidate.is_file():
                return candidate
        raise MixtaskError(f"no mask for it in {self.source} (looked for {image_path.stem}.png and the like)")


def plan_user_mask(path: Path | None, task_set: TaskSet, vector) -> UserMask | None:
    """The user mask of a run, or None; checked before any image is read."""
    if path is None:
        return None
    inpaint = [i for i, task in enumerate(task_set.tasks) if task.kind == "inpaint"]
    if not inpaint or vector is None or [i for i, v in enumerate(vector) if v > 0] != inpaint[:1]:  # None: a map
        raise MixtaskError("--mask goes with --task inpaint alone (every pixel outside the mask is kept as it is)")
    if not path.exists():
        raise MixtaskError(f"--mask {path}: no such file or folder")
    return UserMask(path, None if path.is_dir() else read_mask(path))  # a bad file fails here, once


def read_mask(path: Path) -> np.ndarray:
    """A mask image -> (H, W) bool: bright (grey > 127) and not transparent (alpha > 127)."""
    import numpy as np

    from mixtask.images import load_image

    loaded = load_image(path, f"mask {path}")
    fill = loaded.rgb.max(axis=2) > 127
    if loaded.alpha is not None:
        fill &= loaded.alpha > 127
    return np.ascontiguousarray(fill)


def _resized(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    if mask.shape == (height, width):
        return mask
    import numpy as np
    from PIL import Image

    return np.asarray(Image.fromarray(mask).resize((width, height), Image.Resampling.NEAREST), dtype=bool)


def inpaint(translator, rgb: np.ndarray, mask: np.ndarray, vector: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8 with `mask` (H, W) bool -> the same image with the masked pixels filled by the network and
    blended into their rim; every other pixel is the input's."""
    if not mask.any():
        return rgb.copy()
    return poisson_blend(rgb, network_fill(translator, rgb, mask, vector), mask)


def network_fill(translator, rgb: np.ndarray, mask: np.ndarray, vector: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8: the network's output with the masked pixels prepared as training holes, averaged over
    FILL_PASSES seeded colours (before the blend; the unmasked pixels are the network's too)."""
    import numpy as np

    rng = np.random.default_rng(FILL_SEED)
    total = np.zeros(rgb.shape, dtype=np.float32)
    for _ in range(FILL_PASSES):
        prepared = rgb.copy()
        prepared[mask] = rng.integers(0, 256, 3, dtype=np.uint8)  # one constant colour, as a training hole
        total += translator.translate_array(prepared, vector, known=~mask)
    return np.clip(np.rint(total / FILL_PASSES), 0, 255).astype(np.uint8)
