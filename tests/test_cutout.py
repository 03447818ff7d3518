"""Seg's cut-outs (`--cutout alpha|black|mask`, `--bgcolor`): rembg's conventions, the network's own mask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mixtask.apply.cutout import MASK_SIDE, on_background
from mixtask.cli import app
from mixtask.inference.translator import Translator
from mixtask.nets.film import ModelConfig, sharpen_gate
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import save_weights
from tests.conftest import make_tiny_model

RGB = np.random.default_rng(5).integers(0, 256, (40, 56, 3), dtype=np.uint8)


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.fromarray(RGB).save(path, quality=95)
    return path


@pytest.fixture
def tiny_weights(tmp_path) -> Path:
    """The tiny model with a gate that varies over the image (a new network's gate is 0.5 everywhere)."""
    import torch

    model = make_tiny_model()
    with torch.no_grad():
        model.output.conv.weight[3].normal_(0, 0.05)
    return save_weights(tmp_path / "gated.safetensors", model, DEFAULT_TASK_SET)


@pytest.fixture
def translator(tiny_weights):
    return Translator.from_file(tiny_weights, device="cpu", precision="fp32")


def apply(weights, *args) -> object:
    return CliRunner().invoke(app, ["apply", *map(str, args), "-w", str(weights), "--precision", "fp32"])


def decoded(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def alpha_of(translator, rgb: np.ndarray) -> np.ndarray:
    """The cut-out's mask: seg's gate averaged with the mirrored image's, mirrored back, and sharpened (the ramp's
    values are pinned in test_blending.py)."""
    vector = DEFAULT_TASK_SET.vector({"seg": 1.0})
    gate = translator.gate_array(rgb, vector, max_side=MASK_SIDE)
    mirrored = translator.gate_array(np.ascontiguousarray(rgb[:, ::-1]), vector, max_side=MASK_SIDE)[:, ::-1]
    return sharpen_gate((gate + mirrored) / 2)


def premultiplied(colours: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.rint(colours.astype(np.float32) * mask[..., None]).astype(np.uint8)


def test_seg_gives_the_photo_with_the_gate_as_alpha_by_default(tiny_weights, photo, translator, tmp_path):
    result = apply(tiny_weights, photo, "-t", "seg", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = Image.open(tmp_path / "out" / "photo.png")  # JPEG cannot hold alpha: PNG
    assert out.mode == "RGBA" and out.size == (56, 40)
    rgba = np.asarray(out)
    gate = alpha_of(translator, decoded(photo))
    np.testing.assert_array_equal(rgba[..., 3], np.rint(gate * 255).astype(np.uint8))
    one_way = translator.gate_array(decoded(photo), DEFAULT_TASK_SET.vector({"seg": 1.0}), max_side=MASK_SIDE)
    assert np.abs(gate - sharpen_gate(one_way)).max() > 0.01  # the mirrored pass counts
    # rembg's colours: the input's times the mask, so dropping the alpha leaves the object on black
    np.testing.assert_array_equal(rgba[..., :3], premultiplied(decoded(photo), gate))
    assert ((gate > 0) & (gate < 1)).mean() > 0.5 and gate.max() - gate.min() > 0.1  # a soft mask, not a constant


def test_black_is_the_networks_own_output_and_mask_the_alpha_alone(tiny_weights, photo, translator, tmp_path):
    assert apply(tiny_weights, photo, "-t", "seg", "--cutout", "alpha", "-o", tmp_path / "a.png").exit_code == 0
    assert apply(tiny_weights, photo, "-t", "seg", "--cutout", "black", "-o", tmp_path / "b.png").exit_code == 0
    assert apply(tiny_weights, photo, "-t", "seg", "--cutout", "mask", "-o", tmp_path / "m.png").exit_code == 0
    black = Image.open(tmp_path / "b.png")
    assert black.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(black), translator.translate_array(decoded(photo), "seg"))
    mask = Image.open(tmp_path / "m.png")
    assert mask.mode == "L"
    np.testing.assert_array_equal(np.asarray(mask), np.asarray(Image.open(tmp_path / "a.png"))[..., 3])


def test_a_mix_with_seg_is_the_rest_of_the_mix_on_a_transparent_background(tiny_weights, photo, translator, tmp_path):
    assert apply(tiny_weights, photo, "-t", "seg=1,style1=1", "-o", tmp_path / "mix.png").exit_code == 0
    rgba = np.asarray(Image.open(tmp_path / "mix.png"))
    alone = alpha_of(translator, decoded(photo))
    styled = translator.translate_array(decoded(photo), "style1")
    np.testing.assert_array_equal(rgba[..., :3], premultiplied(styled, alone))
    np.testing.assert_array_equal(rgba[..., 3], np.rint(alone * 255).astype(np.uint8))


def test_bgcolor_composites_the_cutout(tiny_weights, photo, translator, tmp_path):
    assert apply(tiny_weights, photo, "-t", "seg", "--bgcolor", "255,0,0", "-o", tmp_path / "red.jpg").exit_code == 0
    assert Image.open(tmp_path / "red.jpg").mode == "RGB"  # opaque: JPEG is fine
    assert apply(tiny_weights, photo, "-t", "seg", "--bgcolor", "0,0,255,128", "-o", tmp_path / "t.png").exit_code == 0
    rgba = np.asarray(Image.open(tmp_path / "t.png"))
    mask = alpha_of(translator, decoded(photo))
    assert rgba.shape[2] == 4 and rgba[..., 3].min() >= 127  # at least the background's own opacity
    expected_rgb, expected_alpha, _ = on_background(decoded(photo), mask, (0, 0, 255, 128))
    np.testing.assert_array_equal(rgba[..., 3], expected_alpha)
    np.testing.assert_array_equal(rgba[..., :3], expected_rgb)


def test_on_background_opaque_is_the_alpha_blend():
    colours = np.full((1, 2, 3), 200, np.uint8)
    rgb, alpha, _ = on_background(colours, np.array([[1.0, 0.25]], np.float32), (0, 0, 0))
    assert alpha is None and rgb[0, 0].tolist() == [200] * 3 and rgb[0, 1].tolist() == [50] * 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-t", "denoise", "--cutout", "mask"], "need seg in --task"),
        (["-t", "seg", "--bgcolor", "red"], "give R,G,B or R,G,B,A"),
        (["-t", "seg", "--bgcolor", "1,2,300"], "give R,G,B or R,G,B,A"),
        (["-t", "seg", "--cutout", "mask", "--bgcolor", "0,0,0"], "does not go with --cutout mask"),
        (["-t", "seg", "-o", "{tmp}/x.jpg"], "write -o NAME.png or .webp (or --bgcolor"),
    ],
)
def test_cutout_errors_are_one_line(tiny_weights, photo, tmp_path, args, message):
    result = apply(tiny_weights, photo, *(arg.replace("{tmp}", str(tmp_path)) for arg in args))
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_the_rgb_head_reads_its_mask_from_the_output(tmp_path, photo):
    config = ModelConfig(num_tasks=len(DEFAULT_TASK_SET), width=4, res_blocks=1, head="rgb")
    weights = save_weights(tmp_path / "rgb.safetensors", make_tiny_model(config=config), DEFAULT_TASK_SET)
    translator = Translator.from_file(weights, device="cpu", precision="fp32")
    assert translator.gate_array(decoded(photo), DEFAULT_TASK_SET.vector({"seg": 1.0})) is None
    assert apply(weights, photo, "-t", "seg", "--cutout", "mask", "-o", tmp_path / "m.png").exit_code == 0
    output = translator.translate_array(decoded(photo), "seg").astype(np.float32) / 255
    expected = np.rint(np.clip(output.max(axis=2) / 0.2, 0, 1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "m.png")), expected)


def test_the_mask_of_a_large_image_is_read_small_and_resized_back(translator):
    big = np.asarray(Image.fromarray(RGB).resize((700, 500), Image.BILINEAR))
    gate = translator.gate_array(big, DEFAULT_TASK_SET.vector({"seg": 1.0}), max_side=MASK_SIDE)
    assert gate.shape == (500, 700) and gate.dtype == np.float32 and 0 <= gate.min() <= gate.max() <= 1
    small = translator.gate_array(big, DEFAULT_TASK_SET.vector({"seg": 1.0}), max_side=140)
    assert np.abs(gate - small).mean() > 0  # the working size is honoured
