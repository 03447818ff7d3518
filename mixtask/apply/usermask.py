"""Inpainting where the user says (IOPaint's conventions): `mixtask apply photo.jpg --task inpaint --mask mask.png`.

- The mask: white (bright) pixels are filled, dark ones kept; transparent pixels of a mask with alpha are kept.
  One mask file for every input, or a folder holding a mask per input with the input's stem (`DIR/<stem>.*`).
  A mask of another size is resized to the image (nearest neighbour, so it stays binary).
- The network fills the masked pixels and every pixel outside the mask is the input's, bit for bit
  (`mixtask.inference.inpainting`; `mixtask damage --mask` writes masks in this convention: they round-trip).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mixtask.errors import MixtaskError
from mixtask.tasks import TaskSet

if TYPE_CHECKING:  # numpy is imported where a mask is used: the CLI's help stays fast
    import numpy as np

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
