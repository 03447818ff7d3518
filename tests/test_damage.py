"""`mixtask damage`: the training corruptions on one photo, seeded, never over the input."""

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.data.damage import damage


def _photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)


def test_same_seed_same_damage_and_mask_marks_the_changes():
    rgb = _photo()
    first, mask = damage(rgb, ("denoise",), seed=3)
    again, _ = damage(rgb, ("denoise",), seed=3)
    other, _ = damage(rgb, ("denoise",), seed=4)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    changed = (first != rgb).any(axis=2)
    assert mask.any() and not (changed & (mask == 0)).any()  # nothing changed outside the mask


def test_cli_writes_image_and_mask(tmp_path):
    source = tmp_path / "photo.png"
    Image.fromarray(_photo()).save(source)
    out, mask = str(tmp_path / "holes.png"), str(tmp_path / "m.png")
    result = CliRunner().invoke(app, ["damage", str(source), "-k", "inpaint", "-o", out, "--mask", mask])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "holes.png") as out, Image.open(tmp_path / "m.png") as mask:
        assert out.size == (80, 64) and mask.size == (80, 64)


def test_cli_refuses_unknown_kind_and_overwriting_the_input(tmp_path):
    source = tmp_path / "photo.png"
    Image.fromarray(_photo()).save(source)
    before = source.read_bytes()
    unknown = CliRunner().invoke(app, ["damage", str(source), "-k", "blur", "-o", str(tmp_path / "x.png")])
    same = CliRunner().invoke(app, ["damage", str(source), "-k", "denoise", "-o", str(source)])
    assert unknown.exit_code == 2 and "unknown damage blur" in unknown.output
    assert same.exit_code == 2 and "would overwrite an input" in same.output
    assert source.read_bytes() == before


def test_kinds_take_the_task_aliases(tmp_path):
    rgb = _photo()
    aliases = {"holes": "inpaint", "inpainting": "inpaint", "scratches": "denoise", "denoising": "denoise"}
    for alias, kind in aliases.items():
        assert np.array_equal(damage(rgb, (alias,), seed=1)[0], damage(rgb, (kind,), seed=1)[0]), alias
    source = tmp_path / "photo.png"
    Image.fromarray(rgb).save(source)
    unknown = CliRunner().invoke(app, ["damage", str(source), "-k", "seg", "-o", str(tmp_path / "y.png")])
    assert unknown.exit_code == 2 and "unknown damage seg" in unknown.output  # a task without a damage


def test_cli_damages_a_folder_goes_past_a_bad_file_and_keeps_existing_outputs(tmp_path):
    for index in range(2):
        Image.fromarray(np.roll(_photo(), index, axis=1)).save(tmp_path / f"p{index}.jpg")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    out, masks = tmp_path / "out", tmp_path / "masks"
    args = ["damage", str(tmp_path), "-k", "holes", "-o", str(out), "--mask", str(masks), "--seed", "5"]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 1 and "2 damaged, 1 failed" in first.output and "bad.png" in first.output
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in masks.iterdir()) == ["p0.png", "p1.png"]
    with Image.open(tmp_path / "p1.jpg") as p1:  # file i of the sorted folder (bad.png is 0) gets seed + i
        expected = damage(np.asarray(p1.convert("RGB")), ("inpaint",), seed=7)[0]
    assert np.array_equal(np.asarray(Image.open(out / "p1.png")), expected)
    stamp = (out / "p0.png").stat().st_mtime_ns
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 1 and "exists; it was kept (--overwrite replaces it)" in again.output
    assert (out / "p0.png").stat().st_mtime_ns == stamp
    assert CliRunner().invoke(app, [*args, "--overwrite"]).exit_code == 1  # only bad.png fails now
