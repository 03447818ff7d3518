"""Pseudo-label masks for a user's own photos (`mixtask label`), made by a salient-object teacher.

A user's photos have no masks, and seg learns from photos with masks as well as from composites.
`label_folder` runs U²-Net-p (or any ONNX model with its input and output conventions; see
`mixtask.backbones.teachers.SaliencyTeacher`) on every photo of a split and writes
`masks/<name>/<split>/<stem>.png` (8-bit grey, 255 = object), the layout `mixtask train` reads.
Existing masks are kept unless `overwrite`; a photo that cannot be read is reported and skipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mixtask.errors import MixtaskError


@dataclass
class LabelReport:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def mask_folder(root: Path, name: str, split: str) -> Path:
    """masks/<name>/<split>/ when the photos are split into folders, else masks/<name>/ (the layout's rule)."""
    from mixtask.data.layouts import has_split_folders

    return root / "masks" / name / split if has_split_folders(root / "photos") else root / "masks" / name


def label_folder(root: Path, model: Path, name: str = "u2netp", split: str = "train", overwrite: bool = False):
    from PIL import Image

    from mixtask.backbones.teachers import SaliencyTeacher
    from mixtask.fileio import write_bytes_atomic
    from mixtask.images import encode, load_image

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
        write_bytes_atomic(target, encode(Image.fromarray(teacher.mask(rgb)), "png"))  # makes the folder too
        report.written.append(target)
    return report


def _photos(root: Path, split: str) -> tuple[Path, ...]:
    from mixtask.data.layouts import image_files, split_folder

    folder = split_folder(root / "photos", split)
    if folder is None:
        raise MixtaskError(f"{root} has no {split!r} split of photos (photos/{split}/, or photos/ for train)")
    return image_files(folder)
