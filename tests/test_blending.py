"""Poisson blending of generated pixels into the pixels around them (`mixtask.inference.blending`): `apply --mask`'s
holes, and a plain restoration where the gated head's gate says the network generated."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.inference.blending import GENERATED_BELOW, blend_generated, blends, poisson_blend, restore
from mixtask.inference.translator import Translator
from mixtask.nets.film import sharpen_gate
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import save_weights
from tests.conftest import make_tiny_model

RGB = np.random.default_rng(7).integers(0, 256, (40, 56, 3), dtype=np.uint8)


def test_poisson_blend_meets_the_rim_and_keeps_every_other_pixel():
    rows, cols = np.mgrid[0:48, 0:64]
    ramp = np.stack([rows * 3, cols * 2, 200 - rows * 2], axis=2).astype(np.uint8)  # linear: its own harmonic fill
    mask = np.zeros((48, 64), dtype=bool)
    mask[10:30, 3:25] = True
    mask[2:46, 40:62] = True  # a large one: the coarse-to-fine solve must reach its middle
    flat = np.full_like(ramp, 90)  # a fill with no gradient and the wrong level: the blend brings back the ramp
    blended = poisson_blend(ramp, flat, mask)
    np.testing.assert_array_equal(blended[~mask], ramp[~mask])
    assert np.abs(blended.astype(int) - ramp.astype(int))[mask].max() <= 2
    tinted = ramp + 40  # the right texture, tinted: the tint goes, up to the ramp's step across the rim (3), which
    # the blend takes from the known pixel and not from the fill
    assert np.abs(poisson_blend(ramp, tinted, mask).astype(int) - ramp.astype(int))[mask].max() <= 3


def test_poisson_blend_at_the_image_edge_keeps_the_known_pixels():
    mask = np.zeros(RGB.shape[:2], dtype=bool)
    mask[:, :10] = True  # no rim on the image's side: the correction's slope is 0 across the edge
    blended = poisson_blend(RGB, np.zeros_like(RGB), mask)
    np.testing.assert_array_equal(blended[~mask], RGB[~mask])
    assert blended[mask].mean() > 60  # lifted from black towards the known pixels beside it (mean about 127)


def test_poisson_blend_without_a_rim_keeps_the_fill():
    fill = np.full(RGB.shape, 77, dtype=np.uint8)
    np.testing.assert_array_equal(poisson_blend(RGB, fill, np.ones(RGB.shape[:2], bool)), fill)
    np.testing.assert_array_equal(poisson_blend(RGB, fill, np.zeros(RGB.shape[:2], bool)), RGB)


def test_a_restoration_is_blended_where_its_gate_says_generated():
    rows, cols = np.mgrid[0:40, 0:56]
    ramp = np.stack([rows * 4, cols * 3, 220 - rows * 3], axis=2).astype(np.uint8)
    output = ramp.copy()
    output[10:30, 15:40] += 50  # a fill with the right texture and a tint
    gate = np.ones((40, 56), dtype=np.float32)
    gate[10:30, 15:40] = 0.02  # generated there
    finished = blend_generated(output, gate)
    passed = gate >= GENERATED_BELOW
    np.testing.assert_array_equal(finished[passed], output[passed])  # the passed-through pixels stay
    assert np.abs(finished.astype(int) - ramp)[~passed].max() <= 4  # the tint is gone
    np.testing.assert_array_equal(blend_generated(output, np.ones_like(gate)), output)  # nothing generated


def test_the_blend_fades_out_as_the_gate_rises_towards_its_threshold():
    output = RGB.copy()
    output[10:30, 15:40] = 255
    full, faded, none = (np.full((40, 56), 1.0, dtype=np.float32) for _ in range(3))
    full[10:30, 15:40], faded[10:30, 15:40], none[10:30, 15:40] = 0.1, 0.4, GENERATED_BELOW
    change = [np.abs(blend_generated(output, g).astype(int) - output).mean() for g in (full, faded, none)]
    assert change[0] > change[1] > change[2] == 0


@pytest.mark.parametrize(
    ("strengths", "expected"),
    [
        ({"inpaint": 1.0}, True),
        ({"denoise": 0.5}, True),
        ({"inpaint": 1.0, "denoise": 1.0}, True),
        ({}, False),  # recon: nothing generated
        ({"seg": 1.0}, False),  # seg's gate is the object, not what was missing
        ({"style1": 1.0}, False),
        ({"denoise": 1.0, "style1": 1.0}, False),
    ],
)
def test_only_restorations_are_blended(strengths, expected):
    assert blends(DEFAULT_TASK_SET, DEFAULT_TASK_SET.vector(strengths)) is expected


@pytest.fixture
def translator(tmp_path) -> Translator:
    """The tiny model with a gate that varies over the image (a new network's gate is 0.5 everywhere)."""
    import torch

    model = make_tiny_model()
    with torch.no_grad():
        model.output.conv.weight[3].normal_(0, 0.5)
    weights = save_weights(tmp_path / "gated.safetensors", model, DEFAULT_TASK_SET)
    return Translator.from_file(weights, device="cpu", precision="fp32")


@pytest.mark.parametrize("size", [(40, 56), (12, 20)])  # as it is, and enlarged to the training side
def test_translate_with_gate_reads_the_gate_of_the_same_pass(translator, size):
    rgb = np.ascontiguousarray(RGB[: size[0], : size[1]])
    vector = DEFAULT_TASK_SET.vector({"inpaint": 1.0})
    output, gate = translator.translate_with_gate(rgb, vector)
    np.testing.assert_array_equal(output, translator.translate_array(rgb, vector))
    np.testing.assert_allclose(gate, translator.gate_array(rgb, vector), atol=1e-5)


def test_a_sharpened_pass_is_the_pass_told_its_sharpened_gate(translator):
    """`sharpen`: the head mixes with its gate ramped (0 below 0.3, 1 above 0.7) and reads it as the kept pixels, as
    it reads a known map; the gate returned is the ramped one, and the gate of the plain pass is the same."""
    vector = DEFAULT_TASK_SET.vector({"inpaint": 1.0})
    output, soft = translator.translate_with_gate(RGB, vector)
    sharp_output, sharp = translator.translate_with_gate(RGB, vector, sharpen=True)
    np.testing.assert_allclose(sharp, sharpen_gate(soft), atol=1e-5)
    assert ((soft > 0) & (soft < 0.3)).any() and (sharp[soft < 0.3] == 0).all() and (sharp[soft > 0.7] == 1).all()
    np.testing.assert_array_equal(sharp_output, translator.translate_array(RGB, vector, known=sharp))
    assert (sharp_output != output).any()


def test_apply_writes_the_blended_restoration(translator, tmp_path):
    photo, out = tmp_path / "photo.png", tmp_path / "o.png"
    Image.fromarray(RGB).save(photo)
    weights = translator.info.path
    args = ["apply", f"{photo}", "-t", "inpaint", "-w", f"{weights}", "--precision", "fp32", "-o", f"{out}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    output, gate = translator.translate_with_gate(RGB, DEFAULT_TASK_SET.vector({"inpaint": 1.0}), sharpen=True)
    assert (gate < GENERATED_BELOW).any() and (gate >= GENERATED_BELOW).any()
    written = np.asarray(Image.open(out))
    np.testing.assert_array_equal(written, blend_generated(output, gate))
    assert (written != output).any()


@pytest.mark.parametrize(("strength", "sharpened"), [(1.0, True), (0.8, False)])
def test_restore_sharpens_the_gate_at_full_strength_only(translator, strength, sharpened):
    """Below full strength the soft gate is the input's share the strength asks for: `restore` keeps it."""
    vector = DEFAULT_TASK_SET.vector({"inpaint": strength})
    written = restore(translator, RGB, vector)
    np.testing.assert_array_equal(written, blend_generated(*translator.translate_with_gate(RGB, vector, sharpened)))
    assert (written != blend_generated(*translator.translate_with_gate(RGB, vector, not sharpened))).any()
