"""`mixtask eval` end to end on a tiny generated dataset, with tiny fake backbones injected."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.evaluation import inputs as eval_inputs
from mixtask.evaluation import run as evaluate
from mixtask.evaluation.run import Backbones, EvalOptions, run_evaluation
from mixtask.nets.base import TaskNet
from mixtask.nets.film import ModelConfig
from mixtask.tasks import Task, TaskSet
from mixtask.weights import read_info, save_weights
from tests.conftest import make_tiny_model
from tests.fakes import tiny_efficientnet, tiny_vgg

RNG = np.random.default_rng(3)
SIZE, COUNT = ["--size", "32"], ["--count", "3"]


def _smooth(height: int, width: int) -> np.ndarray:
    """A smooth random picture (photo-like: restoration baselines can work on it)."""
    small = RNG.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR))


def _save(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """photos (train, val), one pseudo-label mask, one RGBA cut-out, a style1 image; no backbones."""
    root = tmp_path_factory.mktemp("data")
    _save(root / "photos/train/t0.png", _smooth(48, 64))
    for name in ("v0", "v1"):
        _save(root / f"photos/val/{name}.png", _smooth(40, 56))
    mask = np.zeros((40, 56), np.uint8)
    mask[10:30, 15:40] = 255
    _save(root / "masks/isnet/val/v0.png", mask)
    _save(root / "masks/isnet/train/t0.png", np.zeros((48, 64), np.uint8))
    cutout = np.zeros((20, 16, 4), np.uint8)
    cutout[..., :3] = 200
    cutout[3:17, 3:13, 3] = 255
    _save(root / "cutouts/val/c0.png", cutout)
    _save(root / "cutouts/train/c1.png", cutout)
    _save(root / "styles/style1-test.png", RNG.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    return root


class IdentityModel(TaskNet):
    """The trivially perfect reconstruction: output = input, whatever the task vector."""

    config = ModelConfig(num_tasks=1)  # what a loaded model carries (`apply`'s Translator reads its architecture)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return x

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return x


class LeftHalfGateModel(TaskNet):
    """A gated head whose gate is 1 on the left half of every image (or `LEFT` of its width) and 0 on the right,
    black generated colours."""

    LEFT = 0.5
    config = IdentityModel.config

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        from mixtask.nets.film import apply_gated_head, input_stats

        raw = torch.zeros(x.shape[0], 5, *x.shape[-2:])
        raw[:, 3] = -10.0
        raw[:, 3, :, : round(x.shape[-1] * self.LEFT)] = 10.0
        raw[:, 4] = -10.0  # blend 0: the colours (0) are absolute
        return apply_gated_head(raw, x, *input_stats(x))

    def forward_any_size(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.forward(x, c)


@pytest.fixture
def fake_backbones(monkeypatch):
    monkeypatch.setattr(evaluate, "load_backbones", lambda options: Backbones(tiny_vgg(), tiny_efficientnet()))


def _eval(*args) -> object:
    return CliRunner().invoke(app, ["eval", *map(str, args)])


def test_identity_model_scores_perfect_recon_and_fills_every_row(
    tiny_weights, data_root, tmp_path, monkeypatch, fake_backbones
):
    monkeypatch.setattr(evaluate, "load_model", lambda path: (IdentityModel(), read_info(path)))
    monkeypatch.setattr(eval_inputs, "style_teacher", lambda image, notes: None)  # as where ONNX Runtime is missing
    out, markdown = tmp_path / "eval.json", tmp_path / "eval.md"
    outputs = ("--json", out, "--markdown", markdown)
    result = _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, *outputs, "--strength-sweep")
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    card = markdown.read_text()
    assert "| **recon** | **model** | **100.00** |" in card and "| task | metric | 0 | 0.2 |" in card
    groups = {g["name"]: g for g in report["groups"]}
    assert groups["recon"]["rows"]["model"]["psnr"] == pytest.approx(100.0)
    assert groups["recon"]["rows"]["model"]["ssim"] == pytest.approx(1.0, abs=1e-4)
    assert set(groups) >= {"inpaint", "denoise", "seg composites", "style1", "denoise+style1", "seg+style1"}
    assert any(name.startswith("seg photos") for name in groups)
    inpaint = groups["inpaint"]["rows"]
    assert inpaint["model"] == inpaint["identity"]  # the identity model leaves the holes
    assert inpaint["Telea (true mask)"]["psnr_damaged"] > inpaint["identity"]["psnr_damaged"]
    assert groups["denoise"]["best_baseline"] in groups["denoise"]["rows"]
    assert {"style_distance", "content_distance", "fd"} <= set(groups["style1"]["rows"]["model"])
    assert groups["style1"]["rows"]["model"]["content_distance"] == pytest.approx(0.0, abs=1e-6)
    mix, denoise = groups["denoise+style1"]["rows"]["model"], groups["denoise"]["rows"]["model"]
    assert mix["l2_ratio"] == pytest.approx(mix["mse"] / denoise["mse"], rel=1e-3)  # style1: no pixel L2
    seg_mix, seg = groups["seg+style1"]["rows"]["model"], groups["seg composites"]["rows"]["model"]
    assert seg_mix["l2_ratio"] == pytest.approx(seg_mix["mse"] / seg["mse"], rel=1e-3)
    assert "L2 / members" in card
    assert [row["task"] for row in report["sweep"]] == ["inpaint", "denoise", "seg", "style1", "style2"]
    assert all(row["direction"] == "constant" for row in report["sweep"])  # identity ignores strengths
    assert report["held_out"] and report["count"] == 3 and "style2" in " ".join(report["notes"])
    assert "FD-EffNetLite0, not comparable to published FID" in result.output


def test_two_runs_give_identical_json(tiny_weights, data_root, tmp_path, fake_backbones):
    paths = [tmp_path / "a.json", tmp_path / "b.json"]
    for path in paths:
        result = _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, "--json", path, "--strength-sweep")
        assert result.exit_code == 0, result.output
    assert paths[0].read_bytes() == paths[1].read_bytes()
    recon = json.loads(paths[0].read_text())["groups"][0]["rows"]["model"]
    assert 0 < recon["psnr"] < 100  # a random tiny model really ran


def test_only_scores_the_named_tasks_and_mixes(tiny_weights, data_root, tmp_path, fake_backbones):
    out = tmp_path / "only.json"
    only = ("--only", "denoise,seg+style1")
    result = _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, "--json", out, *only)
    assert result.exit_code == 0, result.output
    groups = [group["name"] for group in json.loads(out.read_text())["groups"]]
    assert groups == ["recon", "denoise", "seg+style1"]


def test_train_split_is_labelled_not_held_out(tiny_weights, data_root, tmp_path, fake_backbones):
    out = tmp_path / "train.json"
    result = _eval("-w", tiny_weights, "--data", data_root, "--split", "train", *SIZE, "--count", "2", "--json", out)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["held_out"] is False and "NOT held-out" in report["notes"][0]
    assert "NOT held-out" in result.output


def test_any_task_set_works_and_missing_backbones_are_notes(data_root, tmp_path):
    task_set = TaskSet((Task("fix", "denoise"), Task("paint", "style")))
    weights = tmp_path / "custom.safetensors"
    save_weights(weights, make_tiny_model(config=ModelConfig(num_tasks=2, width=4, res_blocks=1)), task_set)
    options = EvalOptions(data_root, weights, size=32, count=2)
    report = run_evaluation(options)
    assert [g["name"] for g in report["groups"]] == ["recon", "fix"]
    notes = " ".join(report["notes"])
    assert "no VGG16" in notes and "no EfficientNet-Lite0" in notes and "paint" in notes


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "/nonexistent/data"], "data folder /nonexistent/data does not exist"),
        (["--vgg", "/nonexistent/vgg.safetensors"], "--vgg /nonexistent/vgg.safetensors: file not found"),
        (["--style", "style1"], "write it as TASK=IMAGE"),
        (["--count", "1"], "--count must be at least 2"),
        (["--split", "test"], "no 'test' split"),
        (["--only", "denoise,bogus"], "--only: unknown task or mix bogus"),
        (["--only", " , "], "--only needs task or mix names"),
        (["--only", "denoise", "--record"], "drop --only to record"),
    ],
)
def test_bad_inputs_give_one_line_errors(tiny_weights, data_root, extra, message):
    args = ["-w", tiny_weights, *SIZE, *COUNT, *extra]
    if "--data" not in extra:
        args += ["--data", data_root]
    result = _eval(*args)
    assert result.exit_code == 1
    assert message in result.stderr.strip().splitlines()[-1]  # after any progress lines, one error line
    assert result.stderr.strip().splitlines()[-1].startswith("mixtask: error: ")


def test_bad_weights_file_is_a_one_line_error(data_root, tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_text("not weights")
    result = _eval("-w", bad, "--data", data_root, *SIZE, *COUNT)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and str(bad) in result.stderr


def test_record_stores_results_in_the_weights(tiny_weights, data_root, fake_backbones):
    result = _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, "--record")
    assert result.exit_code == 0, result.output
    metrics = read_info(tiny_weights).metrics
    assert metrics["held_out"] and {g["name"] for g in metrics["groups"]} >= {"recon", "denoise"}


def test_with_the_style_teacher_a_style_has_a_pixel_l2_and_its_mixes_are_measured_against_it(
    tiny_weights, data_root, tmp_path, monkeypatch, fake_backbones
):
    """A stand-in teacher (the image darkened) renders the style part of the targets and gets a row of its own."""
    monkeypatch.setattr(evaluate, "load_model", lambda path: (IdentityModel(), read_info(path)))
    monkeypatch.setattr(eval_inputs, "style_teacher", lambda image, notes: lambda x: x * 0.5)
    out = tmp_path / "eval.json"
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, "--json", out).exit_code == 0
    report = json.loads(out.read_text())
    groups = {g["name"]: g["rows"] for g in report["groups"]}
    style, teacher = groups["style1"]["model"], groups["style1"]["Magenta teacher"]
    assert teacher["layout_correlation"] == pytest.approx(1.0, abs=1e-5)  # darkening keeps the layout
    assert style["psnr_teacher"] < 30 and style["mse"] > 0  # the identity is not the teacher's rendering
    mix, denoise = groups["denoise+style1"]["model"], groups["denoise"]["model"]
    assert mix["l2_ratio"] == pytest.approx(mix["mse"] / max(denoise["mse"], style["mse"]), rel=1e-3)
    assert "mix targets: their style part is rendered by the Magenta style teacher" in report["notes"]


def test_the_salient_object_teacher_gets_a_seg_row_read_out_by_the_models_rule(
    tiny_weights, data_root, tmp_path, monkeypatch
):
    """A stand-in teacher that keeps the whole image scores the identity's IoU; one that keeps nothing, zero."""
    monkeypatch.setattr(evaluate, "load_model", lambda path: (IdentityModel(), read_info(path)))
    scores = {}
    for name, keep in {"all": 1.0, "none": 0.0}.items():
        monkeypatch.setattr(evaluate, "saliency_teacher", lambda notes, k=keep: lambda x: torch.full_like(x[:, :1], k))
        out = tmp_path / f"{name}.json"
        result = _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, "--only", "seg", "--json", out)
        assert result.exit_code == 0, result.output
        scores[name] = {g["name"]: g["rows"] for g in json.loads(out.read_text())["groups"]}["seg composites"]
    assert scores["all"]["U2-Net-p teacher"]["iou"] == pytest.approx(scores["all"]["identity"]["iou"])
    assert scores["all"]["identity"]["iou"] > 0 and scores["none"]["U2-Net-p teacher"]["iou"] == 0


def test_without_the_salient_object_teacher_eval_says_so_and_has_no_row(tiny_weights, data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXTASK_TEACHERS", str(tmp_path / "no-teachers"))
    out = tmp_path / "eval.json"
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, "--only", "seg", "--json", out).exit_code == 0
    report = json.loads(out.read_text())
    assert any("no salient-object teacher" in note for note in report["notes"])
    assert all("U2-Net-p teacher" not in g["rows"] for g in report["groups"])


def test_seg_gets_the_alpha_cutouts_iou_and_a_seg_mix_its_read_back_ceiling(
    tiny_weights, data_root, tmp_path, monkeypatch
):
    """The alpha row reads the cut-out's alpha at one half: the gate (here 1 on the left three quarters) averaged
    with the mirrored image's, so 1 on the middle half and 0.5 beside it; a head without a gate has no such row.
    The denoise+seg mix's target is seg's (x * mask of the clean composites), so their ceilings are the same."""
    from mixtask.evaluation.groups import ALPHA_ROW
    from mixtask.evaluation.inputs import make_samples
    from mixtask.evaluation.metrics import iou

    monkeypatch.setattr(LeftHalfGateModel, "LEFT", 0.75)
    monkeypatch.setattr(evaluate, "load_model", lambda path: (LeftHalfGateModel(), read_info(path)))
    out = tmp_path / "gate.json"
    only = ("--only", "seg,denoise+seg")
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, *only, "--json", out).exit_code == 0
    groups = {g["name"]: g["rows"] for g in json.loads(out.read_text())["groups"]}
    _, masks = make_samples(EvalOptions(data_root, tiny_weights, size=32, count=3), []).composites
    middle = torch.zeros_like(masks, dtype=torch.bool)
    middle[..., 8:24] = True
    assert groups["seg composites"][ALPHA_ROW]["iou"] == pytest.approx(float(iou(middle, masks > 0.5).mean()), abs=1e-6)
    assert groups["denoise+seg"]["read-back ceiling"] == groups["seg composites"]["read-back ceiling"]
    monkeypatch.setattr(evaluate, "load_model", lambda path: (IdentityModel(), read_info(path)))
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, *only, "--json", out).exit_code == 0
    assert all(ALPHA_ROW not in g["rows"] for g in json.loads(out.read_text())["groups"])


def test_inpaint_gets_the_row_of_apply_given_the_mask(tiny_weights, data_root, tmp_path):
    """The row runs `apply --mask`'s own path on the eval's holes: every pixel outside them is the input's, so
    an untrained network that garbles the whole image scores far higher on it than its blind row, and the
    holes' pixels are scored as the blind row's are. Denoise has no mask to give."""
    from mixtask.evaluation.groups import GIVEN_MASK_ROW

    out = tmp_path / "given.json"
    only = ("--only", "inpaint,denoise")
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, *only, "--json", out).exit_code == 0
    groups = {g["name"]: g["rows"] for g in json.loads(out.read_text())["groups"]}
    given, blind = groups["inpaint"][GIVEN_MASK_ROW], groups["inpaint"]["model"]
    assert given["psnr"] > blind["psnr"] + 10
    assert given["psnr"] > given["psnr_damaged"] + 3  # the error is in the holes alone
    assert GIVEN_MASK_ROW not in groups["denoise"]


def test_a_restoration_gets_the_row_of_its_blended_output(tiny_weights, data_root, tmp_path, monkeypatch):
    """The gate (1 on the left half, 0 on the right, black generated colours) marks the right half generated:
    `apply` blends it into the left half's pixels, which beats black; a head without a gate has no such row."""
    from mixtask.evaluation.groups import BLENDED_ROW

    monkeypatch.setattr(evaluate, "load_model", lambda path: (LeftHalfGateModel(), read_info(path)))
    out = tmp_path / "blend.json"
    only = ("--only", "inpaint,denoise")
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, *only, "--json", out).exit_code == 0
    groups = {g["name"]: g["rows"] for g in json.loads(out.read_text())["groups"]}
    for task in ("inpaint", "denoise"):
        assert groups[task][BLENDED_ROW]["psnr"] > groups[task]["model"]["psnr"] + 3, task
    monkeypatch.setattr(evaluate, "load_model", lambda path: (IdentityModel(), read_info(path)))
    assert _eval("-w", tiny_weights, "--data", data_root, *SIZE, *COUNT, *only, "--json", out).exit_code == 0
    assert all(BLENDED_ROW not in g["rows"] for g in json.loads(out.read_text())["groups"])
