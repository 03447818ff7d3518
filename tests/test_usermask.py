"""Inpainting with a user mask (`apply --task inpaint --mask FILE|DIR`): IOPaint's conventions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mixtask.apply.usermask import plan_user_mask, read_mask
from mixtask.cli import app
from mixtask.inference.inpainting import inpaint
from mixtask.inference.translator import Translator
from mixtask.tasks import DEFAULT_TASK_SET

RGB = np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8)


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(RGB).save(path, quality=95)
    return path


def square_mask(height=40, width=56) -> np.ndarray:
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[height // 4 : height // 2, width // 4 : width // 2] = 255
    return mask


def apply(weights, *args):
    return CliRunner().invoke(app, ["apply", *map(str, args), "-w", str(weights), "--precision", "fp32"])


def test_the_masked_pixels_are_filled_and_every_other_pixel_is_kept_exactly(tiny_weights, photo, tmp_path):
    Image.fromarray(square_mask()).save(tmp_path / "mask.png")
    result = apply(tiny_weights, photo, "-t", "inpaint", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "out" / "photo.png"))  # PNG by default: the kept pixels stay exact
    original = np.asarray(Image.open(photo).convert("RGB"))
    hole = square_mask() > 0
    np.testing.assert_array_equal(out[~hole], original[~hole])
    assert (out[hole] != original[hole]).any()


def test_an_explicit_jpeg_output_is_the_users_choice(tiny_weights, photo, tmp_path):
    Image.fromarray(square_mask()).save(tmp_path / "mask.png")
    result = apply(tiny_weights, photo, "-t", "inpaint", "--mask", tmp_path / "mask.png", "-o", tmp_path / "out.jpg")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out.jpg").format == "JPEG"


def test_a_damage_mask_round_trips_into_apply(tiny_weights, photo, tmp_path):
    damaged, mask = tmp_path / "damaged.png", tmp_path / "mask.png"
    result = CliRunner().invoke(app, ["damage", str(photo), "-k", "inpaint", "-o", str(damaged), "--mask", str(mask)])
    assert result.exit_code == 0, result.output
    holes = read_mask(mask)
    source = np.asarray(Image.open(damaged))
    assert holes.any() and (source[holes] != np.asarray(Image.open(photo).convert("RGB"))[holes]).any()
    result = apply(tiny_weights, damaged, "-t", "inpaint", "--mask", mask, "-o", tmp_path / "filled.png")
    assert result.exit_code == 0, result.output
    filled = np.asarray(Image.open(tmp_path / "filled.png"))
    np.testing.assert_array_equal(filled[~holes], source[~holes])


def test_a_mask_folder_gives_each_input_its_own_resized_mask(tiny_weights, tmp_path):
    inputs, masks = tmp_path / "in", tmp_path / "masks"
    inputs.mkdir(), masks.mkdir()
    for name in ("a", "b"):
        Image.fromarray(RGB).save(inputs / f"{name}.png")
    Image.fromarray(square_mask(20, 28)).save(masks / "a.png")  # half size: resized to the image
    result = apply(tiny_weights, inputs, "-t", "inpaint", "--mask", masks, "-o", tmp_path / "out")
    assert result.exit_code == 1  # b has no mask: reported, and a is still done
    assert "b.png: no mask for it in" in result.output
    out = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    hole = square_mask() > 0
    np.testing.assert_array_equal(out[~hole], RGB[~hole])
    assert not (tmp_path / "out" / "b.png").exists()


def test_mask_rules_bright_and_opaque_pixels_fill(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[:2, :, :3] = 255  # white top half
    rgba[:, :2, 3] = 255  # opaque left half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    expected = np.zeros((4, 4), dtype=bool)
    expected[:2, :2] = True
    np.testing.assert_array_equal(read_mask(tmp_path / "mask.png"), expected)


def test_an_empty_mask_returns_the_input_and_a_full_one_runs_the_network(tiny_weights):
    translator = Translator.from_file(tiny_weights, device="cpu", precision="fp32")
    vector = DEFAULT_TASK_SET.vector({"inpaint": 1.0})
    np.testing.assert_array_equal(inpaint(translator, RGB, np.zeros(RGB.shape[:2], bool), vector), RGB)
    filled = inpaint(translator, RGB, np.ones(RGB.shape[:2], bool), vector)
    assert filled.shape == RGB.shape and filled.dtype == np.uint8 and (filled != RGB).any()


@pytest.mark.parametrize(
    ("task", "mask", "message"),
    [
        ("denoise", "mask.png", "--mask goes with --task inpaint alone"),
        ("inpaint=1,style1=1", "mask.png", "--mask goes with --task inpaint alone"),
        ("inpaint", "missing.png", "no such file or folder"),
        ("inpaint", "broken.png", "mask"),
    ],
)
def test_bad_masks_and_tasks_are_one_line_errors(tiny_weights, photo, tmp_path, task, mask, message):
    Image.fromarray(square_mask()).save(tmp_path / "mask.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    result = apply(tiny_weights, photo, "-t", task, "--mask", tmp_path / mask, "-o", tmp_path / "out.png")
    assert result.exit_code == 1
    last = result.output.strip().splitlines()[-1]
    assert message in last and last.startswith("mixtask: error: ")


def test_plan_refuses_a_mask_without_inpaint():
    with pytest.raises(Exception, match="inpaint alone"):
        plan_user_mask(Path("x.png"), DEFAULT_TASK_SET, DEFAULT_TASK_SET.vector({"seg": 1.0}))
