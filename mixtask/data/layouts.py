"""Dataset folder layouts: how a training folder is recognised and which files it holds.

../shared/docs/design.md, "Tasks and their training targets": segmentation examples come from composites of
cut-outs on photos (exact masks), from photos with pseudo-label masks, or from a Pascal VOC folder.
`LAYOUTS` is the registry (style.md, point 4) that detection, error messages and CLI help share.
This module only looks at file names; decoding lives in `mixtask.data.decode`. No torch here, so
CLI help that lists the layouts stays fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mixtask.errors import MixtaskError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
SPLIT_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
VOC_VOID = 255  # VOC's "void" label (object borders, ambiguous pixels): treated as background


@dataclass(frozen=True)
class SourceFiles:
    """The files of one split, before decoding. `masks` maps a photo's path to its mask's path."""

    root: Path
    layout: str
    split: str
    photos: tuple[Path, ...]
    cutouts: tuple[Path, ...] = ()
    masks: dict[Path, Path] = field(default_factory=dict)
    mask_kind: str = "gray"  # "gray": 0..255 foreground; "voc": class ids, 0 and 255 background
    mask_set: str = ""  # name of the mask folder (masks/<name>/), or "SegmentationClass"
    exact_masks: bool = False  # True for hand labels (VOC), False for pseudo-labels


@dataclass(frozen=True)
class Layout:
    """One way of arranging a dataset folder."""

    name: str
    description: str  # one line for CLI help
    expected: str  # the folder tree, for help text and error messages
    find: Callable[[Path], Path | None]  # the layout's own root under `root`, or None
    splits: Callable[[Path], tuple[str, ...]]  # splits present, given the layout's root
    files: Callable[[Path, str, str | None], SourceFiles]  # (folder given, split, mask set) -> files


# --------------------------------------------------------------------------- helpers


def image_files(folder: Path) -> tuple[Path, ...]:
    """Image files directly in `folder` (not recursive, no hidden files), sorted by name."""
    return tuple(
        sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and p.name[0] != ".")
    )


def has_split_folders(base: Path) -> bool:
    return (base / "train").is_dir()


def split_folder(base: Path, split: str) -> Path | None:
    """`base/<split>/` when `base/train/` exists; else `base` itself is the train split."""
    if not base.is_dir():
        return None
    if has_split_folders(base):
        folder = base / split
        return folder if folder.is_dir() else None
    return base if split == "train" else None


def _check_split_name(split: str) -> None:
    if not SPLIT_PATTERN.match(split):
        raise MixtaskError(f"invalid split name {split!r}: use letters, digits, '_' or '-' (e.g. train, val)")


# --------------------------------------------------------------------------- mixtask layout


def _mixtask_find(root: Path) -> Path | None:
    return root if (root / "photos").is_dir() else None


def _mixtask_splits(root: Path) -> tuple[str, ...]:
    photos = root / "photos"
    if not has_split_folders(photos):
        return ("train",)
    return tuple(sorted(p.name for p in photos.iterdir() if p.is_dir() and SPLIT_PATTERN.match(p.name)))


def _mask_sets(root: Path) -> tuple[str, ...]:
    masks = root / "masks"
    return tuple(sorted(p.name for p in masks.iterdir() if p.is_dir())) if masks.is_dir() else ()


def _choose_mask_set(root: Path, wanted: str | None) -> str | None:
    """The mask folder to use: `wanted`, or the only one present, or None when there is none."""
    present = _mask_sets(root)
    if wanted is not None:
        if wanted not in present:
            raise MixtaskError(f"no mask folder {root / 'masks' / wanted}; present: {', '.join(present) or 'none'}")
        return wanted
    if len(present) > 1:
        raise MixtaskError(f"{root / 'masks'} holds several mask sets ({', '.join(present)}): choose one by name")
    return present[0] if present else None


def _masks_by_stem(root: Path, mask_set: str | None, split: str) -> dict[str, Path]:
    if mask_set is None:
        return {}
    folder = split_folder(root / "masks" / mask_set, split)
    return {p.stem: p for p in image_files(folder)} if folder else {}


def _mixtask_files(root: Path, split: str, mask_set: str | None) -> SourceFiles:
    photo_dir = split_folder(root / "photos", split)
    if photo_dir is None:
        raise MixtaskError(
            f"{root} has no {split!r} split (splits: {', '.join(_mixtask_splits(root))}); "
            f"put its photos in {root / 'photos' / split}"
        )
    photos = image_files(photo_dir)
    cutout_dir = split_folder(root / "cutouts", split)
    mask_set = _choose_mask_set(root, mask_set)
    stems = _masks_by_stem(root, mask_set, split)
    masks = {p: stems[p.stem] for p in photos if p.stem in stems}  # masks without a photo are ignored
    cutouts = image_files(cutout_dir) if cutout_dir else ()
    return SourceFiles(root, "mixtask", split, photos, cutouts, masks, "gray", mask_set or "", exact_masks=False)


# --------------------------------------------------------------------------- Pascal VOC layout


def _is_voc_root(folder: Path) -> bool:
    return (folder / "JPEGImages").is_dir() and (folder / "SegmentationClass").is_dir()


def _voc_find(root: Path) -> Path | None:
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if _is_voc_root(candidate):
            return candidate
    return None


def _voc_lists(root: Path) -> Path:
    return root / "ImageSets" / "Segmentation"


def _voc_splits(root: Path) -> tuple[str, ...]:
    lists = _voc_lists(root)
    names = sorted(p.stem for p in lists.glob("*.txt")) if lists.is_dir() else []
    return tuple(names) or ("train",)


def _voc_ids(root: Path, split: str) -> list[str]:
    """Image ids of a split: its list file, or (without lists) every image that has a mask, as train."""
    list_file = _voc_lists(root) / f"{split}.txt"
    if list_file.is_file():
        return [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if split == "train" and not _voc_lists(root).is_dir():
        return sorted(p.stem for p in (root / "SegmentationClass").glob("*.png"))
    raise MixtaskError(
        f"{root} has no {split!r} split: {list_file} is missing (splits: {', '.join(_voc_splits(root))})"
    )


def _voc_cutouts(given: Path, root: Path, split: str) -> tuple[Path, ...]:
    """Optional cut-outs for composites: `cutouts/` in the folder given or beside JPEGImages/."""
    for base in dict.fromkeys((given, root)):
        folder = split_folder(base / "cutouts", split)
        if folder:
            return image_files(folder)
    return ()


def _voc_files(given: Path, split: str, mask_set: str | None) -> SourceFiles:
    root = _voc_find(given)
    assert root is not None, "called only on a detected VOC folder"
    photos, masks = [], {}
    for image_id in _voc_ids(root, split):
        photo = root / "JPEGImages" / f"{image_id}.jpg"
        mask = root / "SegmentationClass" / f"{image_id}.png"
        photos.append(photo)  # a missing photo is reported (and skipped) when decoding
        if mask.is_file():
            masks[photo] = mask
    cutouts = _voc_cutouts(given, root, split)
    return SourceFiles(root, "voc", split, tuple(photos), cutouts, masks, "voc", "SegmentationClass", exact_masks=True)


# --------------------------------------------------------------------------- registry

LAYOUTS: dict[str, Layout] = {
    "mixtask": Layout(
        name="mixtask",
        description="photos/, optional cutouts/ (RGBA) and masks/<name>/, each optionally split into train/ and val/",
        expected=(
            "ROOT/photos/[train|val/]*.jpg|png   (any size)\n"
            "ROOT/cutouts/[train|val/]*.png      (optional: RGBA objects for segmentation composites)\n"
            "ROOT/masks/<name>/[train|val/]<photo stem>.png   (optional: grayscale masks, 255 = object)"
        ),
        find=_mixtask_find,
        splits=_mixtask_splits,
        files=_mixtask_files,
    ),
    "voc": Layout(
        name="voc",
        description="Pascal VOC: JPEGImages/ + SegmentationClass/ (every class but background and void is foreground)",
        expected=(
            "ROOT[/VOCdevkit]/VOC2012/JPEGImages/<id>.jpg\n"
            "ROOT[/VOCdevkit]/VOC2012/SegmentationClass/<id>.png\n"
            "ROOT[/VOCdevkit]/VOC2012/ImageSets/Segmentation/{train,val}.txt   (optional split lists)"
        ),
        find=_voc_find,
        splits=_voc_splits,
        files=_voc_files,
    ),
}


def layouts_help() -> str:
    """Text listing every layout, for CLI help and error messages."""
    return "\n".join(f"{layout.name}: {layout.description}\n{layout.expected}" for layout in LAYOUTS.values())


def _check_folder(root: Path) -> None:
    if not root.exists():
        raise MixtaskError(f"dataset folder {root} does not exist")
    if not root.is_dir():
        raise MixtaskError(f"dataset path {root} is not a folder")


def find_layout(root: Path | str) -> tuple[Layout, Path]:
    """The layout of `root` and the folder it is rooted at (e.g. `root/VOCdevkit/VOC2012`)."""
    root = Path(root)
    _check_folder(root)
    for layout in LAYOUTS.values():
        found = layout.find(root)
        if found is not None:
            return layout, found
    raise MixtaskError(f"{root} is not a dataset folder; expected one of these layouts:\n{layouts_help()}")


def detect_layout(root: Path | str) -> str:
    """Name of the layout of `root` (a key of `LAYOUTS`); MixtaskError if it matches none."""
    return find_layout(root)[0].name


def available_splits(root: Path | str) -> tuple[str, ...]:
    """Splits present in `root`, e.g. ("train", "val"), or ("train",) for an unsplit folder."""
    layout, found = find_layout(root)
    return layout.splits(found)


def list_files(root: Path | str, split: str = "train", mask_set: str | None = None) -> SourceFiles:
    """The photo, cut-out and mask files of one split of `root`."""
    _check_split_name(split)
    layout, _ = find_layout(root)
    return layout.files(Path(root), split, mask_set)
