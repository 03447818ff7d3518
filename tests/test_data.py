"""Datasets, sampling and corruptions on tiny generated folders (../shared/docs/design.md, "Tasks", Table 1)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from mixtask.data import (
    CORRUPTIONS,
    LAYOUTS,
    SampleMaker,
    add_holes,
    add_scratches,
    available_splits,
    corrupt,
    detect_layout,
    load_dataset,
)
from mixtask.data.corruptions import _draw_scratches
from mixtask.data.decode import voc_foreground
from mixtask.errors import MixtaskError
from mixtask.tasks import TASK_KINDS

SIZE = 32


def _save(path: Path, array: np.ndarray, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **options)
    return path


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _cutout(size: int = 24) -> np.ndarray:
    """Red disc: opaque centre, soft edge, transparent corners."""
    yy, xx = np.mgrid[:size, :size] - (size - 1) / 2
    alpha = np.clip((size / 2 - np.hypot(yy, xx)) * 80, 0, 255).astype(np.uint8)
    rgba = np.zeros((size, size, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, alpha
    return rgba


def _mixtask_tree(root: Path, split: bool = True) -> Path:
    sub = "train/" if split else ""
    _save(root / f"photos/{sub}a.jpg", _noise(60, 80, 1))
    _save(root / f"photos/{sub}b.png", _noise(50, 40, 2))
    _save(root / f"cutouts/{sub}disc.png", _cutout())
    mask = np.zeros((60, 80), np.uint8)
    mask[10:40, 20:60] = 255
    _save(root / f"masks/sal/{sub}a.png", mask)
    _save(root / f"masks/sal/{sub}orphan.png", mask)  # no photo: ignored
    if split:
        _save(root / "photos/val/c.jpg", _noise(40, 40, 3))
    return root


def _voc_tree(root: Path, lists: bool = True) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    _save(voc / "JPEGImages/2007_000001.jpg", _noise(40, 48, 4))
    _save(voc / "JPEGImages/2007_000002.jpg", _noise(40, 48, 5))
    ids = np.zeros((40, 48), np.uint8)
    ids[5:30, 10:40] = 15  # person
    ids[5:30, 8:10] = 255  # void border
    palette = Image.fromarray(ids, "P")
    palette.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
    (voc / "SegmentationClass").mkdir(parents=True)
    palette.save(voc / "SegmentationClass/2007_000001.png")
    palette.save(voc / "SegmentationClass/2007_000002.png")
    if lists:
        (voc / "ImageSets/Segmentation").mkdir(parents=True)
        (voc / "ImageSets/Segmentation/train.txt").write_text("2007_000001\n")
        (voc / "ImageSets/Segmentation/val.txt").write_text("2007_000002\n")
    return root


def _load(root: Path, split: str = "train", max_side: int = 64):
    messages: list[str] = []
    return load_dataset(root, split, max_side=max_side, warn=messages.append), messages


# --------------------------------------------------------------------------- layouts


def test_detects_mixtask_layout_with_and_without_splits(tmp_path):
    assert detect_layout(_mixtask_tree(tmp_path / "split")) == "mixtask"
    assert available_splits(tmp_path / "split") == ("train", "val")
    assert available_splits(_mixtask_tree(tmp_path / "flat", split=False)) == ("train",)
    with pytest.raises(MixtaskError, match="no 'val' split"):
        _load(tmp_path / "flat", "val")


@pytest.mark.parametrize("where", ["", "VOCdevkit", "VOCdevkit/VOC2012"])
def test_detects_voc_layout_from_root_or_parents(tmp_path, where):
    _voc_tree(tmp_path)
    assert detect_layout(tmp_path / where) == "voc"


def test_bad_folder_names_the_expected_layouts(tmp_path):
    (tmp_path / "stuff").mkdir()
    with pytest.raises(MixtaskError, match="not a dataset folder") as error:
        detect_layout(tmp_path)
    assert all(name in str(error.value) for name in LAYOUTS)
    assert "photos/" in str(error.value) and "JPEGImages" in str(error.value)
    with pytest.raises(MixtaskError, match="does not exist"):
        detect_layout(tmp_path / "missing")


# --------------------------------------------------------------------------- loading


def test_loads_photos_cutouts_and_masks_by_stem(tmp_path):
    dataset, messages = _load(_mixtask_tree(tmp_path))
    assert messages == []
    assert dataset.photo_names == ("a.jpg", "b.png") and dataset.cutout_names == ("disc.png",)
    assert dataset.num_masks == 1 and dataset.masks[1] is None  # orphan mask ignored
    assert "2 photos, 1 cut-outs, 1 masks (sal)" in dataset.summary()
    photo, mask = dataset.photos[0], dataset.masks[0]
    assert photo.dtype == torch.uint8 and photo.shape == (3, 60, 80) and mask.shape == (1, 60, 80)
    assert dataset.cutouts[0].shape[0] == 4


def test_resize_caps_the_short_side_and_never_enlarges(tmp_path):
    dataset, _ = _load(_mixtask_tree(tmp_path), max_side=30)
    assert dataset.photos[0].shape == (3, 30, 40) and dataset.masks[0].shape == (1, 30, 40)
    assert dataset.photos[1].shape == (3, 38, 30)
    big, _ = _load(tmp_path, max_side=500)
    assert big.photos[0].shape == (3, 60, 80)


def test_exif_orientation_is_applied(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees
    _save(tmp_path / "photos/turned.jpg", _noise(20, 60), exif=exif)
    dataset, _ = _load(tmp_path)
    assert dataset.photos[0].shape == (3, 60, 20)


def test_sixteen_bit_photos_are_scaled_not_clipped(tmp_path):
    from mixtask.data.decode import decode_photo

    levels = np.array([[0, 257 * 64, 257 * 128, 65535]], np.uint16).repeat(4, axis=0)
    Image.fromarray(levels).save(tmp_path / "deep.png")  # mode I;16
    rgb = decode_photo(tmp_path / "deep.png", max_side=100)
    assert rgb.shape == (4, 4, 3) and rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 64, 128, 255]  # a plain convert("RGB") gives 0, 255, 255, 255


def test_voc_masks_are_foreground_classes_and_void_is_background(tmp_path):
    ids = np.array([[0, 1, 15], [20, 255, 0]], np.uint8)
    assert voc_foreground(ids).tolist() == [[0, 255, 255], [255, 0, 0]]
    dataset, _ = _load(_voc_tree(tmp_path))
    assert dataset.layout == "voc" and dataset.exact_masks and dataset.photo_names == ("2007_000001.jpg",)
    mask = dataset.masks[0][0]
    assert mask[10, 20] == 255 and mask[10, 9] == 0 and mask[35, 20] == 0
    assert set(mask.unique().tolist()) == {0, 255}


def test_voc_without_lists_uses_every_labelled_image_as_train_and_finds_cutouts(tmp_path):
    _save(tmp_path / "cutouts/disc.png", _cutout())
    dataset, _ = _load(_voc_tree(tmp_path, lists=False))
    assert len(dataset.photos) == 2 and dataset.num_masks == 2 and dataset.cutout_names == ("disc.png",)


def test_corrupt_files_are_skipped_with_a_warning_naming_them(tmp_path):
    root = _mixtask_tree(tmp_path, split=False)
    (root / "photos/broken.jpg").write_bytes(b"not a jpeg at all")
    good = (root / "photos/a.jpg").read_bytes()
    (root / "photos/truncated.jpg").write_bytes(good[: len(good) // 2])
    _save(root / "cutouts/opaque.png", _noise(10, 10))
    dataset, messages = _load(root)
    assert dataset.photo_names == ("a.jpg", "b.png")
    text = "\n".join(messages)
    assert "broken.jpg" in text and "truncated.jpg" in text and "opaque.png" in text and "alpha" in text


def test_empty_or_unusable_folders_are_errors(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos/readme.txt").write_text("no images here")
    with pytest.raises(MixtaskError, match="no photos"):
        _load(tmp_path)
    (tmp_path / "photos/broken.png").write_bytes(b"\x89PNG garbage")
    with pytest.raises(MixtaskError, match="no usable photos"):
        _load(tmp_path)


# --------------------------------------------------------------------------- sampling


@pytest.fixture
def dataset(tmp_path):
    return _load(_mixtask_tree(tmp_path))[0]


def test_batches_have_the_right_shapes_and_ranges(dataset):
    maker = SampleMaker(dataset, SIZE, seed=0, mask_fraction=0.5)
    clean = maker.clean(4)
    images, masks = maker.segmentation(5)
    assert clean.shape == (4, 3, SIZE, SIZE) and clean.dtype == torch.float32
    assert images.shape == (5, 3, SIZE, SIZE) and masks.shape == (5, 1, SIZE, SIZE)
    for tensor in (clean, images, masks):
        assert tensor.min() >= 0 and tensor.max() <= 1


def test_same_seed_same_batches_and_state_resumes(dataset):
    first, second = SampleMaker(dataset, SIZE, seed=3), SampleMaker(dataset, SIZE, seed=3)
    assert torch.equal(first.clean(3), second.clean(3))
    assert all(torch.equal(a, b) for a, b in zip(first.segmentation(3), second.segmentation(3)))
    assert not torch.equal(first.clean(3), SampleMaker(dataset, SIZE, seed=4).clean(3))
    state = first.state_dict()
    expected = (first.clean(2), first.segmentation(2), first.corrupt("denoise", torch.zeros(2, 3, SIZE, SIZE)))
    resumed = SampleMaker(dataset, SIZE, seed=99)
    resumed.load_state_dict(state)
    got = (resumed.clean(2), resumed.segmentation(2), resumed.corrupt("denoise", torch.zeros(2, 3, SIZE, SIZE)))
    assert all(torch.equal(a, b) for a, b in zip([expected[0], *expected[1], *expected[2]], [got[0], *got[1], *got[2]]))


def test_composite_mask_is_exactly_the_pasted_alpha(tmp_path):
    _save(tmp_path / "photos/black.png", np.zeros((40, 50, 3), np.uint8))
    _save(tmp_path / "cutouts/disc.png", _cutout(30))
    dataset, _ = _load(tmp_path)
    images, masks = SampleMaker(dataset, SIZE, seed=1).segmentation(6)
    # red cut-out on black: red = alpha * 1 + (1 - alpha) * 0, so the red channel is the mask
    assert torch.equal(images[:, :1], masks) and images[:, 1:].abs().max() == 0
    soft = (masks > 0) & (masks < 1)
    assert masks.amax() == 1 and soft.any() and (masks == 0).any()


@pytest.mark.parametrize("composites", ["pasted", "plain", "union"])
def test_composite_backgrounds_and_labels_follow_the_mode(tmp_path, composites):
    """A green photo whose own mask is all foreground and a black one without a mask: `plain` pastes on the
    black one (the first of 8 draws that is plain), `union` labels the green photo's pixels foreground too."""
    _save(tmp_path / "photos/busy.png", np.tile(np.array([0, 255, 0], np.uint8), (40, 50, 1)))
    _save(tmp_path / "masks/m/busy.png", np.full((40, 50), 255, np.uint8))
    _save(tmp_path / "photos/plain.png", np.zeros((40, 50, 3), np.uint8))
    _save(tmp_path / "cutouts/disc.png", _cutout(30))
    dataset, _ = _load(tmp_path)
    images, masks = SampleMaker(dataset, SIZE, seed=1, mask_fraction=0.0, composites=composites).segmentation(32)
    busy = images[:, 1].amax(dim=(1, 2)) > 0.5  # green background
    alpha = images[:, :1]  # red disc on green or black: red = alpha
    if composites == "plain":
        assert not busy.any()
    else:
        assert 0 < busy.float().mean() < 1
    if composites == "union":
        assert torch.equal(masks[busy], torch.ones_like(masks[busy]))
        assert torch.equal(masks[~busy], alpha[~busy])
    else:
        assert torch.equal(masks, alpha)


def test_unknown_composites_mode_is_an_error(dataset):
    with pytest.raises(MixtaskError, match="composites must be one of pasted, plain, union"):
        SampleMaker(dataset, SIZE, seed=0, composites="busy")


def test_photo_mask_pairs_stay_aligned_and_skip_near_empty_masks(tmp_path):
    mask = (np.arange(40 * 50).reshape(40, 50) % 251).astype(np.uint8)
    _save(tmp_path / "photos/a.png", np.stack([mask, 0 * mask, 0 * mask], -1))
    _save(tmp_path / "masks/m/a.png", mask)
    _save(tmp_path / "photos/empty.png", _noise(40, 50))
    _save(tmp_path / "masks/m/empty.png", np.zeros((40, 50), np.uint8))
    dataset, _ = _load(tmp_path)
    maker = SampleMaker(dataset, SIZE, seed=2)
    assert maker.mask_pool == [0] and maker.mask_fraction == 1.0  # no cut-outs: pairs only
    images, masks = maker.segmentation(6)
    assert torch.equal(images[:, :1], masks)  # same window, scale and flip for photo and mask


def test_segmentation_without_cutouts_or_masks_is_an_error(tmp_path):
    _save(tmp_path / "photos/a.png", _noise(40, 40))
    with pytest.raises(MixtaskError, match="cut-outs"):
        SampleMaker(_load(tmp_path)[0], SIZE, seed=0).segmentation(2)


# --------------------------------------------------------------------------- corruptions


def _changed(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x != y).any(dim=1, keepdim=True)


def test_corruptions_are_keyed_by_task_kind_and_seeded():
    assert set(CORRUPTIONS) <= set(TASK_KINDS)
    x = torch.rand(2, 3, 64, 64)
    for corruption in CORRUPTIONS.values():
        a = corruption(x, torch.Generator().manual_seed(5))
        b = corruption(x, torch.Generator().manual_seed(5))
        assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


@pytest.mark.parametrize("side", [256, 512])
def test_holes_are_squares_within_spec_and_only_inside_the_mask(side):
    x = torch.full((4, 3, side, side), 0.5)
    out, mask = add_holes(x, torch.Generator().manual_seed(0))
    assert mask.shape == (4, 1, side, side) and set(mask.unique().tolist()) <= {0.0, 1.0}
    assert not (_changed(x, out) & (mask == 0)).any()
    scale = side / 256
    for image, hole in zip(out.permute(0, 2, 3, 1).numpy(), mask[:, 0].numpy().astype(np.uint8)):
        assert 1 <= len(np.unique(image[hole > 0], axis=0)) <= 8
        count, _, stats, _ = cv2.connectedComponentsWithStats(hole, connectivity=4)
        boxes = stats[1:]
        assert 1 <= count - 1 <= 8 and (boxes[:, 2:4] >= 8 * scale).all()
        assert hole.sum() <= 8 * (48 * scale) ** 2


def test_scratches_change_only_pixels_inside_the_mask():
    x = torch.rand(8, 3, 64, 64)
    out, mask = add_scratches(x, torch.Generator().manual_seed(1))
    assert mask.shape == (8, 1, 64, 64) and (mask.flatten(1).sum(1) > 0).all()
    assert not (_changed(x, out) & (mask == 0)).any()
    for image, scratch in zip(out, mask[:, 0] > 0):
        assert 1 <= len(image.permute(1, 2, 0)[scratch].unique(dim=0)) <= 10


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5])
def test_scratch_lines_have_the_requested_width(width):
    points = torch.zeros(1, 10, 6, 2)
    points[0, 0, :, 0] = torch.linspace(10, 50, 6)
    points[0, 0, :, 1] = 30
    labels = _draw_scratches((1, 3, 64, 64), points, [1], torch.full((1, 10), 5), torch.full((1, 10), width))
    assert (labels[0, :, 30] > 0).sum() == width and set(labels.unique().tolist()) == {0, 1}


def test_mixed_corruptions_union_their_masks():
    x = torch.rand(2, 3, 64, 64)
    out, mask = corrupt(x, ("denoise", "seg", "inpaint"), torch.Generator().manual_seed(2))
    assert not (_changed(x, out) & (mask == 0)).any() and mask.sum() > 0
    same, none = corrupt(x, ("seg", "style"), torch.Generator())
    assert torch.equal(same, x) and none.sum() == 0
