"""A training split held in memory: every photo, mask and cut-out decoded once per run.

../shared/docs/design.md, "Tasks and their training targets" and "Performance": the data for all tasks of
Table 1 is drawn from these pre-decoded uint8 tensors by `mixtask.data.sampling`, so the CPU
spends its time on the model, not on JPEG decoding. Unreadable files are skipped with a warning
that names them; a split with no usable photo is a `MixtaskError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mixtask.data.decode import UnusableImage, decode_cutout, decode_mask, decode_photo
from mixtask.data.layouts import IMAGE_SUFFIXES, SourceFiles, list_files
from mixtask.errors import MixtaskError

MIN_MAX_SIDE = 16
Warn = Callable[[str], None]


@dataclass(frozen=True)
class Dataset:
    """One split, decoded. Tensors are uint8, channels first (views of HWC memory)."""

    root: Path
    layout: str
    split: str
    max_side: int
    photos: tuple[torch.Tensor, ...]  # (3, H, W), short side <= max_side
    photo_names: tuple[str, ...]
    masks: tuple[torch.Tensor | None, ...]  # (1, H, W) 0..255 foreground, aligned with photos
    cutouts: tuple[torch.Tensor, ...]  # (4, h, w) straight RGBA, long side <= max_side
    cutout_names: tuple[str, ...]
    mask_set: str = ""
    exact_masks: bool = False  # hand labels (VOC) rather than pseudo-labels

    @property
    def num_masks(self) -> int:
        return sum(mask is not None for mask in self.masks)

    @property
    def nbytes(self) -> int:
        tensors = [*self.photos, *self.cutouts, *(m for m in self.masks if m is not None)]
        return sum(t.numel() * t.element_size() for t in tensors)

    def summary(self) -> str:
        masks = f"{self.num_masks} masks ({self.mask_set})" if self.mask_set else "no masks"
        return (
            f"{self.root} ({self.layout} layout, {self.split} split): {len(self.photos)} photos, "
            f"{len(self.cutouts)} cut-outs, {masks}; {self.nbytes / 2**20:.0f} MiB decoded"
        )


def _default_warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _to_tensor(array: np.ndarray) -> torch.Tensor:
    """HWC (or HW) numpy -> CHW tensor view; HWC memory is what uint8 resizing is fastest on."""
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)


def _attempt(function, *args):
    """(result, None) or (None, reason) for a file that cannot be used."""
    try:
        return function(*args), None
    except UnusableImage as error:
        return None, str(error)


def _decode_pair(photo: Path, mask: Path | None, max_side: int, mask_kind: str):
    """Decode a photo and its mask (if any): (photo, photo problem, mask, mask problem)."""
    image, problem = _attempt(decode_photo, photo, max_side)
    if image is None or mask is None:
        return image, problem, None, None
    size = (image.shape[1], image.shape[0])
    return (image, None, *_attempt(decode_mask, mask, size, mask_kind))


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _decode_photos(files: SourceFiles, max_side: int, warn: Warn):
    jobs = [(p, files.masks.get(p), max_side, files.mask_kind) for p in files.photos]
    with ThreadPoolExecutor(_workers()) as pool:  # PIL releases the GIL while decoding
        results = list(pool.map(lambda job: _decode_pair(*job), jobs))
    photos, names, masks = [], [], []
    for (path, mask_path, *_), (image, problem, mask, mask_problem) in zip(jobs, results):
        if image is None:
            warn(f"skipped photo {path}: {problem}")
            continue
        if mask_problem:
            warn(f"ignored mask {mask_path}: {mask_problem}")
        photos.append(_to_tensor(image))
        names.append(path.name)
        masks.append(None if mask is None else _to_tensor(mask))
    return photos, names, masks


def _decode_cutouts(files: SourceFiles, max_side: int, warn: Warn):
    with ThreadPoolExecutor(_workers()) as pool:
        results = list(pool.map(lambda path: _attempt(decode_cutout, path, max_side), files.cutouts))
    cutouts, names = [], []
    for path, (image, problem) in zip(files.cutouts, results):
        if image is None:
            warn(f"skipped cut-out {path}: {problem}")
            continue
        cutouts.append(_to_tensor(image))
        names.append(path.name)
    return cutouts, names


def _check_found(files: SourceFiles) -> None:
    if not files.photos:
        suffixes = " ".join(IMAGE_SUFFIXES)
        raise MixtaskError(f"no photos in the {files.split!r} split of {files.root} (looked for {suffixes})")


def _check_usable(files: SourceFiles, photos: list) -> None:
    if not photos:
        raise MixtaskError(
            f"no usable photos in the {files.split!r} split of {files.root}: "
            f"none of its {len(files.photos)} files could be read (see the warnings above)"
        )


def load_dataset(
    root: Path | str,
    split: str = "train",
    *,
    max_side: int,
    warn: Warn | None = None,
    mask_set: str | None = None,
) -> Dataset:
    """Decode one split of a dataset folder (any layout of `LAYOUTS`) into memory.

    `max_side` caps the photos' short side and the cut-outs' long side (use
    `default_max_side(size)` = 2 x the training crop size). `warn` receives one message per
    skipped file (default: `warnings.warn`). `mask_set` picks `masks/<name>/` when there are several.
    """
    if max_side < MIN_MAX_SIDE:
        raise MixtaskError(f"max_side must be at least {MIN_MAX_SIDE} px (got {max_side})")
    warn = warn or _default_warn
    files = list_files(root, split, mask_set)
    _check_found(files)
    photos, photo_names, masks = _decode_photos(files, max_side, warn)
    _check_usable(files, photos)
    cutouts, cutout_names = _decode_cutouts(files, max_side, warn)
    return Dataset(
        root=Path(root),
        layout=files.layout,
        split=split,
        max_side=max_side,
        photos=tuple(photos),
        photo_names=tuple(photo_names),
        masks=tuple(masks),
        cutouts=tuple(cutouts),
        cutout_names=tuple(cutout_names),
        mask_set=files.mask_set,
        exact_masks=files.exact_masks,
    )
