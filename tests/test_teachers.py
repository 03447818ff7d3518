"""The training recipe that learns fast on a CPU: style teacher, direct mask supervision, warm start.

The teachers' own tests use the real ONNX files in ../shared/teachers (skipped where they or ONNX
Runtime are missing); everything else runs on tiny data with a stand-in teacher.
"""

from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixtask.backbones import teachers
from mixtask.data import SampleMaker, load_dataset
from mixtask.data.sampling import feathered
from mixtask.errors import MixtaskError
from mixtask.evaluation import metrics
from mixtask.nets.film import MixNet, ModelConfig, recording_gates
from mixtask.training import prepare, setup_run, train
from mixtask.training.losses import mask_losses
from mixtask.training.step import optimize, supervises_gate
from mixtask.weights import load_weights
from tests.conftest import no_ddp, tiny_options

SHARED = Path(__file__).resolve().parents[2] / "shared"
needs_teachers = pytest.mark.skipif(
    not (SHARED / "teachers" / teachers.STYLE_TRANSFORM).is_file() or importlib.util.find_spec("onnxruntime") is None,
    reason="needs ONNX Runtime and ../shared/teachers",
)


class BrightnessTeacher:
    """Stands in for the Magenta teacher: a rendering anyone can predict (the photo, inverted)."""

    calls = 0

    def __init__(self, folder, style_image):
        self.style_image = Path(style_image)

    def render(self, rgb: np.ndarray) -> np.ndarray:
        BrightnessTeacher.calls += 1
        return 255 - rgb

    def provenance(self) -> dict:
        return {"teacher": "inverted photo (test)", "style_image_sha256": teachers.file_sha256(self.style_image)}


@pytest.fixture
def stand_in_teacher(monkeypatch, tmp_path):
    monkeypatch.setattr(teachers, "StyleTeacher", BrightnessTeacher)
    monkeypatch.setenv("MIXTASK_CACHE", str(tmp_path / "cache"))
    BrightnessTeacher.calls = 0
    return BrightnessTeacher


# ----------------------------------------------------------------------------- the real teachers


@needs_teachers
def test_style_teacher_renders_a_photo_in_its_style_at_its_size():
    photo = np.asarray(Image.open(SHARED / "data/photos/train/skimage-chelsea.jpg").convert("RGB").resize((150, 100)))
    teacher = teachers.StyleTeacher(SHARED / "teachers", SHARED / "data/styles/style1-starry-night.jpg")
    styled = teacher.render(photo)
    assert styled.shape == photo.shape and styled.dtype == np.uint8
    assert np.abs(styled.astype(float) - photo).mean() > 20  # visibly restyled
    layout = metrics.layout_correlation(*(torch.tensor(a).permute(2, 0, 1)[None] / 255.0 for a in (styled, photo)))
    assert float(layout) > 0.5  # and the photo is still there
    assert len(teacher.provenance()["files"]) == 2


@needs_teachers
def test_saliency_teacher_agrees_with_the_isnet_pseudo_label():
    stem = "gcompris-rhinoceros"
    photo = np.asarray(Image.open(SHARED / f"data/photos/train/{stem}.jpg").convert("RGB"))
    isnet = np.asarray(Image.open(SHARED / f"data/masks/isnet/train/{stem}.png")) > 127
    mask = teachers.SaliencyTeacher(SHARED / "teachers" / teachers.SALIENCY).mask(photo)
    assert mask.shape == photo.shape[:2] and mask.dtype == np.uint8
    assert float(metrics.iou(torch.from_numpy(mask > 127)[None], torch.from_numpy(isnet)[None])) > 0.8


def test_a_missing_teacher_file_is_a_clear_error(tmp_path):
    with pytest.raises(MixtaskError, match=r"teacher model not found|ONNX Runtime"):
        teachers.SaliencyTeacher(tmp_path / "nowhere.onnx")


# ----------------------------------------------------------------------------- styled samples


def test_styled_channels_are_the_same_crop_as_the_photo(assets):
    dataset = load_dataset(assets["data"], max_side=64)
    styled = (dataset.photos, tuple(cutout[:3] for cutout in dataset.cutouts))  # a "rendering" equal to the photo
    plain, with_styles = SampleMaker(dataset, 32, seed=3), SampleMaker(dataset, 32, seed=3, styled=styled)
    clean = with_styles.clean(4, styled=True)
    assert clean.shape == (4, 6, 32, 32)
    torch.testing.assert_close(clean[:, 3:], clean[:, :3])
    torch.testing.assert_close(clean[:, :3], plain.clean(4))  # the same draws as without styles
    images, masks = with_styles.segmentation(6, styled=True)
    torch.testing.assert_close(images[:, 3:], images[:, :3], atol=2 / 255, rtol=0)  # composites too (uint8 rounding)
    assert masks.shape == (6, 1, 32, 32)


def test_styled_samples_need_renderings(assets):
    dataset = load_dataset(assets["data"], max_side=64)
    with pytest.raises(MixtaskError, match="no style renderings"):
        SampleMaker(dataset, 32, seed=0).clean(1, styled=True)


def test_one_bit_alpha_is_feathered_and_soft_alpha_kept():
    hard = torch.zeros(1, 9, 9)
    hard[:, 3:6, 3:6] = 255
    soft = feathered(hard)
    assert 0 < float(soft[0, 2, 4]) < 255 and 0 < float(soft[0, 3, 4]) < 255  # the edge is soft now
    assert float(soft[0, 0, 0]) == 0 and abs(float(soft.sum()) - float(hard.sum())) < 1e-3  # nothing added
    graded = hard.clone()
    graded[0, 4, 4] = 128
    assert torch.equal(feathered(graded), graded)


# ----------------------------------------------------------------------------- losses


def test_gate_is_recorded_and_mask_loss_rewards_the_right_mask():
    torch.manual_seed(0)
    net = MixNet(ModelConfig(num_tasks=3, width=4, res_blocks=1))
    with recording_gates() as gates:
        net(torch.rand(2, 3, 16, 16), torch.zeros(2, 3))
    assert len(gates) == 1 and gates[0].shape == (2, 1, 16, 16)
    with recording_gates() as outside:
        pass
    net(torch.rand(1, 3, 16, 16), torch.zeros(1, 3))
    assert outside == []  # nothing recorded outside the block
    mask = (torch.rand(2, 1, 16, 16) > 0.5).float()
    right, wrong = mask_losses(8 * (2 * mask - 1), mask), mask_losses(-8 * (2 * mask - 1), mask)
    assert right["bce"] < 0.01 < 5 < wrong["bce"] and right["dice"] < 0.01 and wrong["dice"] > 0.9


def test_teacher_recipe_trains_styles_and_seg_against_their_targets(assets, tmp_path, stand_in_teacher):
    options = tiny_options(assets, tmp_path / "run", n_styles=2, style_loss="teacher", seg_loss="mask",
                           mixes=("seg+style1", "denoise+seg"), stage1_steps=0)  # fmt: skip
    run = setup_run(options, no_ddp())
    rendered = stand_in_teacher.calls
    assert rendered == 2 * (4 + 2) and run.perceptual is None  # 4 photos, 2 cut-outs, 2 styles; no VGG
    jobs = {job.name: job for job in run.plan.jobs(2)}
    batch = prepare(run, jobs["style1"])
    torch.testing.assert_close(batch.styled[:, :3], 1 - batch.clean, atol=1.5 / 255, rtol=0)
    assert set(optimize(run, jobs["style1"], batch)) == {"style1", "total"}
    seg_batch, mix_batch = prepare(run, jobs["seg"]), prepare(run, jobs["denoise+seg"])
    seg_losses = optimize(run, jobs["seg"], seg_batch)
    assert {"seg.bce", "seg.dice"} <= set(seg_losses)
    assert supervises_gate(run, jobs["seg"], seg_batch) and not supervises_gate(run, jobs["denoise+seg"], mix_batch)
    assert run.teacher is None  # mixes take their style part from the renderings, not a stage-1 model
    mix = prepare(run, jobs["seg+style1"])
    from mixtask.training.batches import add_synthesized_target

    target = add_synthesized_target(run, jobs["seg+style1"], mix).target
    torch.testing.assert_close(target, mix.styled[:, :3] * mix.mask)
    setup_run(replace(options, out=str(tmp_path / "again")), no_ddp())
    assert stand_in_teacher.calls == rendered  # the second run reads the cache


def test_mix_l1_weight_adds_an_l1_to_the_seg_mixes_targets_alone(assets, tmp_path, stand_in_teacher):
    from mixtask.training.batches import add_synthesized_target
    from mixtask.training.options import check_options, resume_options
    from mixtask.training.step import job_losses

    options = tiny_options(assets, tmp_path / "run", style_loss="teacher", seg_loss="mask", stage1_steps=0,
                           mixes=("seg+style1", "denoise+style1"), mix_l1_weight=3.0)  # fmt: skip
    run = setup_run(options, no_ddp())
    jobs = {job.name: job for job in run.plan.jobs(2)}
    for name, has_l1 in (("seg+style1", True), ("denoise+style1", False)):
        batch = add_synthesized_target(run, jobs[name], prepare(run, jobs[name]))
        terms, _ = job_losses(run, jobs[name], batch.target + 0.1, batch)
        assert (f"{name}.l1" in terms) == has_l1
        assert float(terms["total"]) == pytest.approx(0.01 + (3 * 0.1 if has_l1 else 0), rel=1e-4)
    with pytest.raises(MixtaskError, match="--mix-l1-weight must be >= 0"):
        check_options(replace(options, mix_l1_weight=-1.0))
    with pytest.raises(MixtaskError, match="--mix-l1-weight needs --mix-method 3"):
        check_options(replace(options, mix_method=1))
    out = tmp_path / "short"  # a probe's branch turns it on at a resume, and the weights record it
    train(replace(options, mix_l1_weight=0.0, out=str(out), steps=2), quiet=True)
    train(resume_options(out, steps=3, mix_l1_weight=8.0), resume=True, quiet=True)
    provenance = load_weights(out / "weights.safetensors")[1].provenance
    assert provenance["mix_l1_weight"] == 8.0
    assert [session.get("mix_l1_weight") for session in provenance["sessions"]] == [0.0, 8.0]


def test_a_style_below_full_strength_aims_at_the_blend_of_photo_and_rendering(assets, tmp_path, stand_in_teacher):
    from mixtask.training.step import draw_partial_strengths, partial_strength_losses, target_image

    options = tiny_options(assets, tmp_path / "run", style_loss="teacher", mix_method=1, partial_strengths=1.0)
    run = setup_run(options, no_ddp())
    style = next(job for job in run.plan.jobs(0) if job.name == "style1")
    batch = draw_partial_strengths(run, style, prepare(run, style))
    rendering = target_image(run, "style1", "style", batch)
    torch.testing.assert_close(rendering, batch.styled[:, :3])
    blend = batch.clean + batch.strengths.view(-1, 1, 1, 1) * (rendering - batch.clean)
    assert float(partial_strength_losses(run, style, blend, batch)["total"]) < 1e-10
    assert float(partial_strength_losses(run, style, rendering, batch)["total"]) > 1e-4


def test_the_texture_term_asks_for_the_renderings_statistics_not_its_places(assets, tmp_path, stand_in_teacher):
    from safetensors.torch import save_file

    from mixtask.backbones.efficientnet_lite import EfficientNetLite
    from mixtask.training.options import check_options, resume_options
    from mixtask.training.setup import texture_loss
    from mixtask.training.step import job_losses

    torch.manual_seed(0)
    save_file(EfficientNetLite().state_dict(), str(tmp_path / "lite0.safetensors"))
    options = tiny_options(assets, tmp_path / "run", size=64, style_loss="teacher", mix_method=1, style_texture=0.5,
                           context_backbone=str(tmp_path / "lite0.safetensors"), context=1)  # fmt: skip
    run = setup_run(options, no_ddp())
    style = next(job for job in run.plan.jobs(0) if job.name == "style1")
    batch = prepare(run, style)
    rendering = batch.styled[:, :3]
    exact, _ = job_losses(run, style, rendering, batch)
    assert float(exact["style1.texture"]) < 1e-6 and float(exact["total"]) < 1e-5
    # the rendering mirrored (its strokes elsewhere) against blurred (its strokes averaged, what an L1 settles on
    # when it cannot place them): the L1 prefers the blur, the texture term the mirrored strokes
    strokes_elsewhere, strokes_averaged = rendering.flip(-1), torch.nn.functional.avg_pool2d(rendering, 5, 1, 2)
    mirrored, _ = job_losses(run, style, strokes_elsewhere, batch)
    blurred, _ = job_losses(run, style, strokes_averaged, batch)
    mirrored_l1 = float(torch.nn.functional.l1_loss(strokes_elsewhere, rendering))
    blurred_l1 = float(torch.nn.functional.l1_loss(strokes_averaged, rendering))
    assert blurred_l1 < mirrored_l1 and float(mirrored["style1.texture"]) < float(blurred["style1.texture"])
    assert float(mirrored["total"]) == pytest.approx(float(mirrored["style1"]))
    assert float(mirrored["style1"]) == pytest.approx(mirrored_l1 + 0.5 * float(mirrored["style1.texture"]), rel=1e-4)
    assert set(optimize(run, style, batch)) == {"style1", "style1.texture", "total"}
    result = train(replace(options, out=str(tmp_path / "short"), steps=2), quiet=True)
    assert load_weights(result.weights)[1].provenance["style_texture"] == 0.5
    assert resume_options(tmp_path / "short", style_texture=0.1).style_texture == 0.1  # a probe's branch changes it
    with pytest.raises(MixtaskError, match="--style-texture needs --style-loss teacher"):
        check_options(replace(options, style_loss="perceptual"))
    with pytest.raises(MixtaskError, match="--style-texture must be >= 0"):
        check_options(replace(options, style_texture=-1.0))
    with pytest.raises(MixtaskError, match="EfficientNet-Lite0 weights"):
        texture_loss(replace(options, context_backbone=None, data=str(tmp_path)))


def test_teacher_provenance_and_losses_are_in_the_weights(assets, tmp_path, stand_in_teacher):
    options = tiny_options(assets, tmp_path / "run", style_loss="teacher", steps=2, mix_method=1)
    result = train(options, quiet=True)
    _, info = load_weights(result.weights)
    assert info.provenance["style_loss"] == "teacher" and info.provenance["seg_loss"] == "mask"
    assert info.provenance["style_teachers"]["style1"]["teacher"] == "inverted photo (test)"


def test_warm_start_takes_the_weights_and_refuses_other_tasks(assets, tmp_path):
    first = train(tiny_options(assets, tmp_path / "a", steps=2, mix_method=1), quiet=True)
    model, _ = load_weights(first.weights)
    run = setup_run(tiny_options(assets, tmp_path / "b", init=str(first.weights), mix_method=1), no_ddp())
    for name, value in model.state_dict().items():
        torch.testing.assert_close(run.net.state_dict()[name], value)
    with pytest.raises(MixtaskError, match=r"--init .*tasks"):
        setup_run(tiny_options(assets, tmp_path / "c", init=str(first.weights), n_styles=2, mix_method=1), no_ddp())
    with pytest.raises(MixtaskError, match=r"--init .*network"):
        setup_run(tiny_options(assets, tmp_path / "d", init=str(first.weights), width=8, mix_method=1), no_ddp())
    # a network given the context branch takes everything else; the branch starts at zero
    run = setup_run(tiny_options(assets, tmp_path / "e", init=str(first.weights), context=1, mix_method=1), no_ddp())
    for name, value in model.state_dict().items():
        torch.testing.assert_close(run.net.state_dict()[name], value)
    assert not run.net.context.out.weight.any()


def test_layout_correlation_sees_the_photo_and_its_inversion():
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(metrics.layout_correlation(x, x), torch.ones(2))
    assert torch.allclose(metrics.layout_correlation(1 - x, x), -torch.ones(2))
    assert torch.allclose(metrics.layout_correlation(0.5 * x + 0.2, x), torch.ones(2), atol=1e-5)  # gain-blind


# ----------------------------------------------------------------------------- mixtask label


class CentreTeacher:
    """Stands in for U²-Net-p: the centre of every photo is the object."""

    def __init__(self, model):
        pass

    def mask(self, rgb: np.ndarray) -> np.ndarray:
        mask = np.zeros(rgb.shape[:2], np.uint8)
        h, w = mask.shape
        mask[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] = 255
        return mask


def test_label_writes_masks_a_run_can_train_on(assets, tmp_path, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    from mixtask.cli import app

    monkeypatch.setattr(teachers, "SaliencyTeacher", CentreTeacher)
    data = tmp_path / "data"
    shutil.copytree(assets["data"], data)
    (data / "photos/train/broken.jpg").write_bytes(b"not a jpeg")
    result = CliRunner().invoke(app, ["label", str(data), "--model", "any.onnx"])
    assert result.exit_code == 1 and "broken.jpg" in result.output and "4 masks written" in result.output
    mask = np.asarray(Image.open(data / "masks/u2netp/train/p0.png"))
    photo = np.asarray(Image.open(data / "photos/train/p0.jpg"))
    assert mask.shape == photo.shape[:2] and mask[24, 32] == 255 and mask[0, 0] == 0
    result = CliRunner().invoke(app, ["label", str(data), "--model", "any.onnx"])
    assert "0 masks written, 4 kept" in result.output
    (data / "photos/train/broken.jpg").unlink()
    with pytest.raises(MixtaskError, match="several mask sets"):
        setup_run(tiny_options(assets, tmp_path / "run", data=str(data), mix_method=1), no_ddp())
    run = setup_run(tiny_options(assets, tmp_path / "run", data=str(data), mix_method=1, mask_set="u2netp"), no_ddp())
    assert run.dataset.mask_set == "u2netp" and run.dataset.num_masks == 4


def test_people_cutouts_are_drawn_more_often():
    from mixtask.data.sampling import cutout_weights

    assert cutout_weights(["birds-a.png", "mammals-b.png"]) is None  # equal weights: the plain uniform draw
    weights = cutout_weights(["people-a.png", "birds-b.png", "hands-c.png", "c0.png"])
    assert weights.tolist() == [2.0, 1.0, 2.0, 1.0]


def test_a_resume_does_not_read_the_init_weights_again(assets, tmp_path):
    from mixtask.training.options import resume_options

    first = train(tiny_options(assets, tmp_path / "a", steps=2, mix_method=1), quiet=True)
    init = tmp_path / "init.safetensors"
    init.write_bytes(first.weights.read_bytes())
    out = tmp_path / "b"
    train(tiny_options(assets, out, steps=2, mix_method=1, init=str(init)), quiet=True)
    init.unlink()  # gone (or replaced by a better snapshot): the run goes on from its checkpoint
    assert train(resume_options(out, steps=3), resume=True, quiet=True).steps == 3
