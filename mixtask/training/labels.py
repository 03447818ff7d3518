"""Pseudo-label masks for a user's own photos (`mixtask label`), made by a salient-object teacher.

A user's photos have no masks, and seg learns from photos with masks as well as from composites.
`label_folder` runs U²-Net-p (or any ONNX model with its input and output conventions; see
`mixtask.training.teachers.SaliencyTeacher`) on every photo of a split and writes
`masks/<name>/<split>/<stem>.png` (8-bit grey, 255 = object), the layout `mixtask train` reads.
Existing masks are kept unless `overwrite`; a photo that cannot be read is reported and skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mixtask.errors import MixtaskError


@dataclass
class LabelReport:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def mask_folder(root: Path, name: str, split: str) -> Path:
    """masks/<name>/<split>/ when the photos are split into folders, else masks/<name>/."""
    return root / "masks" / name / split if (root / "photos" / "train").is_dir() else root / "masks" / name


def label_folder(
    root: Path, model: Path, name: str = "u2netp", split: str = "train", overwrite: bool = False,
    progress: Callable[[Path], None] | None = None,
) -> LabelReport:  # fmt: skip
    from PIL import Image

    from mixtask.fileio import write_bytes_atomic
    from mixtask.images import encode, load_image
    from mixtask.training.teachers import SaliencyTeacher

    photos = _photos(Path(root), split)
    if not photos:
        raise MixtaskError(f"no photos in the {split!r} split of {root}")
    teacher = SaliencyTeacher(model)
    out = mask_folder(Path(root), name, split)
    report = LabelReport()
    for photo in photos:
        target = out / f"{photo.stem}.png"
        if target.exists() and not overwrite:
            report.kept.append(target)
            continue
        try:
            rgb = load_image(photo).rgb
        except MixtaskError as error:
            report.failed.append((photo, str(error)))
            continue
        out.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(target, encode(Image.fromarray(teacher.mask(rgb)), "png"))
        report.written.append(target)
        if progress:
            progress(photo)
    return report


def _photos(root: Path, split: str) -> tuple[Path, ...]:
    from mixtask.data.layouts import image_files

    folder = root / "photos" / split if (root / "photos" / "train").is_dir() else root / "photos"
    if split != "train" and folder == root / "photos":
        raise MixtaskError(f"{root / 'photos'} has no split folders: only the train split can be labelled")
    if not folder.is_dir():
        raise MixtaskError(f"no photo folder {folder}")
    return image_files(folder)
