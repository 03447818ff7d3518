"""encin, ccam, ccam-bias, sharedenc, single (issue 5): sizes, shapes, what c does, and end to end.

End to end: each architecture trains 2 tiny steps, its exported weights load into `Translator`,
`mixtask eval` scores it (what it cannot do as "n/a") and `mixtask info` names it.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.errors import MixtaskError
from mixtask.evaluation.run import Backbones, EvalOptions, run_evaluation
from mixtask.inference import tiling
from mixtask.inference.translator import ModuleNet, Translator
from mixtask.nets.film import ModelConfig, count_parameters
from mixtask.nets.registry import architecture_class, build_model, names
from mixtask.nets.sharedenc import branch_weights
from mixtask.nets.trunk import plain_johnson_params
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.tensors import psnr_db as psnr
from mixtask.training import TrainOptions, check_options, train
from mixtask.weights import WeightsInfo, load_weights, read_info
from tests.conftest import make_dataset, tiny_options
from tests.fakes import tiny_vgg_state

ARCHS = ("encin", "ccam", "ccam-bias", "sharedenc", "single")
TASKS = len(DEFAULT_TASK_SET)
TINY = ModelConfig(num_tasks=TASKS, width=4, res_blocks=1)
FULL = ModelConfig(num_tasks=TASKS, width=32, res_blocks=5, head="rgb")  # the paper's network
FULL_PARAMETERS = {  # rgb head, 5 task inputs; film is 1,695,235
    "encin": 1_692_995,
    "ccam": 1_698_467,
    "ccam-bias": 1_708_003,
    "sharedenc": 9_572_370,
    "single": 10_075_410,
}
CAN = {  # (mixes, continuous, task_maps)
    "encin": (True, True, False),
    "ccam": (True, True, False),
    "ccam-bias": (True, True, False),
    "sharedenc": (True, True, False),
    "single": (False, False, False),
}
ONE_HOT = torch.eye(TASKS)
WIDE = {"COLUMNS": "200"}  # Rich tables: no wrapped cells


def tiny(arch: str, seed: int = 0, **changes) -> torch.nn.Module:
    """A tiny network whose every parameter is random, so that every task changes the output."""
    torch.manual_seed(seed)
    model = build_model(replace(TINY, arch=arch, **changes)).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return model


def formula(config: ModelConfig) -> int:
    model_class = architecture_class(config.arch)
    return importlib.import_module(model_class.__module__).parameter_count(config)


# ----------------------------------------------------------------------------- sizes and shapes


def test_every_arch_is_registered():
    assert set(ARCHS) <= set(names())


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("config", [TINY, replace(TINY, head="rgb", num_tasks=2), FULL], ids=["tiny", "rgb", "full"])
def test_parameter_formula_counts_the_built_network(arch, config):
    config = replace(config, arch=arch)
    assert formula(config) == count_parameters(build_model(config))


@pytest.mark.parametrize("arch", ARCHS)
def test_full_width_parameter_counts_are_pinned(arch):
    assert formula(replace(FULL, arch=arch)) == FULL_PARAMETERS[arch]


def test_plain_johnson_closed_form():
    # (180 + 288 R) w^2 + (273 + 24 R) w + 81 o w + o; with w = 32, R = 5, o = 3: 1,679,235
    for w, blocks, head, o in [(32, 5, "rgb", 3), (4, 1, "gated", 5), (8, 2, "rgb", 3)]:
        expected = (180 + 288 * blocks) * w * w + (273 + 24 * blocks) * w + 81 * o * w + o
        assert plain_johnson_params(ModelConfig(1, w, blocks, head=head)) == expected


@pytest.mark.parametrize("arch", ARCHS)
def test_capabilities(arch):
    model_class = architecture_class(arch)
    assert (model_class.mixes, model_class.continuous, model_class.task_maps) == CAN[arch]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("size", [(1, 1), (17, 33), (32, 32), (6, 50)])
def test_any_size(arch, size):
    x = torch.rand(2, 3, *size)
    c = torch.stack([torch.zeros(TASKS), ONE_HOT[3]])
    with torch.no_grad():
        out = tiny(arch).forward_any_size(x, c)
    assert out.shape == (2, 3, *size) and torch.isfinite(out).all()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("head", ["rgb", "gated"])
def test_task_vector_changes_output(arch, head):
    model = tiny(arch, head=head)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        outputs = [model(x, c[None]) for c in (torch.zeros(TASKS), ONE_HOT[0], ONE_HOT[2])]
    assert (outputs[0] - outputs[1]).abs().max() > 1e-3 and (outputs[1] - outputs[2]).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ARCHS)
def test_each_sample_follows_its_own_vector(arch):
    model, x = tiny(arch), torch.rand(3, 3, 32, 32)
    c = torch.stack([ONE_HOT[1], torch.zeros(TASKS), ONE_HOT[4]])
    with torch.no_grad():
        batched = model(x, c)
        alone = torch.cat([model(x[i : i + 1], c[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, alone, atol=1e-4, rtol=1e-4)


def test_encin_modulates_only_after_the_encoder():
    model = tiny("encin")
    assert len(model.norms) == 2 * TINY.res_blocks + 2  # residual convs and the two up-sampling convs
    assert all(isinstance(layer.norm, torch.nn.InstanceNorm2d) and layer.norm.affine for layer in model.encoder)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.encoder(x), model.encoder(x.clone()))  # no task input at all
        a, b = model(x, ONE_HOT[:1]), model(x, ONE_HOT[1:2])
    assert (a - b).abs().max() > 1e-3


def test_ccam_bias_differs_from_ccam_only_by_the_bias_rows():
    plain, biased = tiny("ccam"), tiny("ccam-bias")
    for a, b in zip(plain.attention, biased.attention):
        assert b.out.out_features == 2 * a.out.out_features and a.hidden.in_features == b.hidden.in_features


def test_sharedenc_blends_branch_outputs():
    weights = branch_weights(torch.tensor([[0, 0, 0, 0, 0], [0, 0.6, 0, 0, 0], [1, 0, 0, 1, 0.0]]))
    expected = torch.tensor([[1, 0, 0, 0, 0, 0], [0.4, 0, 0.6, 0, 0, 0], [0, 0.5, 0, 0, 0.5, 0.0]])
    torch.testing.assert_close(weights, expected)
    model, x = tiny("sharedenc"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        recon, task = model(x, torch.zeros(1, TASKS)), model(x, ONE_HOT[1:2])
        torch.testing.assert_close(model(x, 0.6 * ONE_HOT[1:2]), 0.6 * task + 0.4 * recon)
        other = model(x, ONE_HOT[3:4])
        torch.testing.assert_close(model(x, ONE_HOT[1:2] + ONE_HOT[3:4]), 0.5 * task + 0.5 * other)


@pytest.mark.parametrize("vector", [[0.5, 0, 0, 0, 0], [1, 1, 0, 0, 0], [0, 0.2, 0.8, 0, 0]])
def test_single_refuses_mixes_and_strengths(vector):
    message = r"^single-task networks cannot mix tasks or take strengths between 0 and 1$"
    with pytest.raises(MixtaskError, match=message):
        tiny("single")(torch.rand(1, 3, 16, 16), torch.tensor([vector]))


def test_single_runs_only_the_chosen_network():
    model, x = tiny("single"), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x, ONE_HOT[2:3]), model.nets[3](x))
        torch.testing.assert_close(model(x, torch.zeros(1, TASKS)), model.nets[0](x))


# ----------------------------------------------------------------------------- inference


def translator(arch: str, precision: str = "fp32", **kwargs) -> Translator:
    info = WeightsInfo("tiny.safetensors", replace(TINY, arch=arch), DEFAULT_TASK_SET)
    return Translator(tiny(arch), info, device="cpu", precision=precision, **kwargs)


@pytest.mark.parametrize("arch", ARCHS)
def test_translator_runs_the_module_as_it_is(arch):
    engine = translator(arch)
    assert isinstance(engine.net, ModuleNet) and engine.capabilities.arch == arch
    x = torch.rand(2, 3, 21, 30)
    with torch.no_grad():
        want = tiny(arch).forward_any_size(x, torch.zeros(2, TASKS))
    # fp32 rounding differs with the CPU's conv kernels: 1.6e-5 on an AVX2-only EPYC (as test_infer's 1e-4)
    torch.testing.assert_close(engine.translate_tensor(x, "recon"), want.clamp(0, 1), atol=1e-4, rtol=0)
    rgb = np.random.default_rng(0).integers(0, 256, (19, 26, 3), dtype=np.uint8)
    assert engine.translate_array(rgb, "seg").shape == (19, 26, 3)


def test_half_precision_is_autocast_and_close_to_fp32():
    x = torch.rand(1, 3, 32, 32)
    full, half = translator("ccam"), translator("ccam", precision="bf16")
    assert half.net.dtype == torch.bfloat16 and half.precision == "bf16"
    quality = psnr(full.translate_tensor(x, "style1"), half.translate_tensor(x, "style1"))
    assert 30 < quality < 80  # bf16 rounding on a random tiny network, not the fp32 result again


@pytest.mark.parametrize(
    ("task", "message"),
    [("seg=1,style1=1", "cannot mix tasks"), ("style1=0.5", "cannot take strengths between 0 and 1")],
)
def test_translator_refuses_what_the_architecture_cannot_do(task, message):
    engine = translator("single")
    with pytest.raises(MixtaskError, match=f"^the single architecture {message}"):
        engine.translate_tensor(torch.rand(1, 3, 16, 16), task)
    with pytest.raises(MixtaskError, match=message):
        engine.check_task(task)
    engine.check_task("style1")  # a single task at 1 is fine


def test_mixing_architectures_take_mixes_and_strengths():
    engine = translator("sharedenc")
    engine.check_task("seg=1,style1=0.4")
    assert engine.translate_tensor(torch.rand(1, 3, 16, 16), "seg=1,style1=0.4").shape == (1, 3, 16, 16)


def test_only_film_runs_in_tiles(monkeypatch):
    with pytest.raises(MixtaskError, match="only film models run in tiles, not encin; use --tile 0"):
        translator("encin", tile=64)
    engine = translator("encin")
    monkeypatch.setattr(tiling, "untiled_pixel_budget", lambda device, dtype: 1000)
    with pytest.raises(MixtaskError, match=r"40x30 px does not fit one untiled pass.*downscale the image"):
        engine.translate_tensor(torch.rand(1, 3, 30, 40), "seg")


class MapNet(torch.nn.Module):
    """A stand-in for an architecture with per-pixel task vectors: output = input * mean strength."""

    mixes, continuous, task_maps = True, True, True

    def __init__(self):
        super().__init__()
        self.config = SimpleNamespace(arch="maps")

    def forward_any_size(self, x, c):
        return x * c.mean(dim=1, keepdim=True) if c.ndim == 4 else x * c.mean(dim=1)[:, None, None, None]


def test_task_maps_reach_an_architecture_that_takes_them():
    engine = Translator(MapNet(), WeightsInfo("maps", TINY, DEFAULT_TASK_SET), device="cpu", precision="fp32")
    x, maps = torch.rand(2, 3, 8, 12), torch.rand(2, TASKS, 8, 12)
    torch.testing.assert_close(engine.translate_tensor(x, maps), x * maps.mean(dim=1, keepdim=True))
    with pytest.raises(MixtaskError, match=r"or task maps of shape \(2, 5, 8, 12\)"):
        engine.translate_tensor(x, torch.rand(2, TASKS, 4, 12))


def test_task_maps_are_refused_by_an_architecture_without_them():
    with pytest.raises(MixtaskError, match="takes one task vector per image, not per-pixel task maps"):
        translator("ccam").translate_tensor(torch.rand(1, 3, 8, 8), torch.rand(1, TASKS, 8, 8))


# ----------------------------------------------------------------------------- training, end to end


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("arch-assets")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "style1.png")
    save_file(tiny_vgg_state(), str(root / "vgg.safetensors"))
    return {"data": make_dataset(root / "data"), "root": root, "vgg": root / "vgg.safetensors"}


@pytest.fixture(scope="module")
def trained(assets, tmp_path_factory) -> dict[str, Path]:
    """Weights of every architecture after 2 steps: Method 3 (one step per stage), or 1 where it cannot mix."""
    root = tmp_path_factory.mktemp("arch-runs")
    weights = {}
    for arch in ARCHS:
        method = 3 if CAN[arch][0] else 1
        options = tiny_options(assets, root / arch, arch=arch, steps=2, mix_method=method, mixes=None)
        weights[arch] = train(options, quiet=True).weights
    return weights


@pytest.mark.parametrize("arch", ARCHS)
def test_trained_weights_load_and_translate(trained, arch):
    model, info = load_weights(trained[arch])
    assert info.config.arch == arch and type(model) is architecture_class(arch)
    assert info.provenance["mix_method"] == (3 if CAN[arch][0] else 1)
    assert bool(info.task_set.mixes) == CAN[arch][0]  # stage 2 trained the default mixes
    engine = Translator.from_file(trained[arch], device="cpu", precision="fp32")
    rgb = np.random.default_rng(2).integers(0, 256, (23, 37, 3), dtype=np.uint8)
    for task in ("recon", "denoise", "style1", *(("denoise=1,style1=0.5",) if CAN[arch][0] else ())):
        out = engine.translate_array(rgb, task)
        assert out.shape == rgb.shape and out.dtype == np.uint8


def test_an_architecture_that_cannot_mix_refuses_mix_options():
    options = TrainOptions("data", "out", arch="single")  # the library default is Method 3
    with pytest.raises(MixtaskError, match="the single architecture cannot mix tasks: train it with --mix-method 1"):
        check_options(options)
    with pytest.raises(MixtaskError, match="cannot mix"):
        check_options(replace(options, mix_method=1, mixes=("denoise+style1",)))
    check_options(replace(options, mix_method=1))


def test_unknown_arch_lists_the_known_ones():
    with pytest.raises(MixtaskError, match="--arch 'resnet' is unknown: use one of film, ") as error:
        check_options(TrainOptions("data", "out", arch="resnet"))
    assert all(arch in str(error.value) for arch in ARCHS)


def _train_args(assets, out: Path, *extra: str) -> list[str]:
    return [
        "train", "--data", str(assets["data"]), "--out", str(out), "--style", f"style1={assets['root'] / 'style1.png'}",
        "--vgg", str(assets["vgg"]), "--steps", "1", "--size", "32", "--batch", "2", "--width", "4",
        "--res-blocks", "1", "--precision", "fp32", "--device", "cpu", "--preview-every", "0",
        "--checkpoint-every", "0", "-q", *extra,
    ]  # fmt: skip


def test_cli_trains_an_arch_that_cannot_mix_with_method_1(assets, tmp_path):
    result = CliRunner().invoke(app, _train_args(assets, tmp_path / "run", "--arch", "single"))
    assert result.exit_code == 0, result.output
    assert "--arch single cannot mix tasks: training single tasks only (--mix-method 1)" in result.output
    info = read_info(tmp_path / "run" / "weights.safetensors")
    assert info.config.arch == "single" and info.provenance["mix_method"] == 1


@pytest.mark.parametrize("extra", [["--mix-method", "3"], ["--mix-method", "1", "--mix", "denoise+style1"]])
def test_cli_refuses_mixes_for_an_arch_that_cannot_mix(assets, tmp_path, extra):
    result = CliRunner().invoke(app, _train_args(assets, tmp_path / "run", "--arch", "single", *extra))
    assert result.exit_code == 1
    assert "cannot mix tasks: train it with --mix-method 1" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run" / "weights.safetensors").exists()


def test_cli_arch_choices_come_from_the_registry(assets, tmp_path):
    result = CliRunner().invoke(app, _train_args(assets, tmp_path / "run", "--arch", "resnet"))
    assert result.exit_code == 2 and "resnet" in result.output
    help_text = CliRunner().invoke(app, ["train", "--help"], env=WIDE).output
    assert all(arch in help_text for arch in ("ccam-bias", "sharedenc", "single"))


# ----------------------------------------------------------------------------- eval, info, apply


def _evaluate(weights: Path, data: Path) -> dict:
    options = EvalOptions(data, weights, split="train", size=32, count=2, strength_sweep=True)
    return run_evaluation(options, backbones=Backbones())


def test_eval_reports_what_single_cannot_do_as_not_applicable(trained, assets):
    result = _evaluate(trained["single"], assets["data"])
    assert result["arch"] == "single"
    assert set(result["not_applicable"]) == {"mixes", "strength sweep"}
    assert {group["name"] for group in result["groups"]} >= {"recon", "inpaint", "denoise"}
    assert [row["task"] for row in result["sweep"]] == ["inpaint", "denoise", "seg", "style1"]
    assert all(row["monotonic"] is None and row["values"] == [] for row in result["sweep"])
    recon = next(group for group in result["groups"] if group["name"] == "recon")
    assert 0 < recon["rows"]["model"]["psnr"] < 100


def test_eval_scores_mixes_and_sweeps_of_a_mixing_arch(trained, assets):
    result = _evaluate(trained["sharedenc"], assets["data"])
    assert result["not_applicable"] == {}
    assert "denoise+style1" in {group["name"] for group in result["groups"]}
    assert all(len(row["values"]) == 6 for row in result["sweep"])


def test_eval_cli_shows_not_applicable(trained, assets, tmp_path):
    out = tmp_path / "eval.json"
    args = ["eval", "-w", str(trained["single"]), "--data", str(assets["data"]), "--split", "train"]
    more = ["--size", "32", "--count", "2", "--strength-sweep", "--json", str(out)]
    result = CliRunner().invoke(app, [*args, *more], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "Not applicable to the single architecture" in result.output and "n/a" in result.output
    assert json.loads(out.read_text())["not_applicable"]["mixes"].startswith("the single architecture cannot mix")


def test_info_names_the_architecture(trained):
    result = CliRunner().invoke(app, ["info", str(trained["single"])], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "single (mixes: no, strengths 0..1: no, task maps: no)" in result.output


def test_apply_refuses_a_soft_task_map_once_for_a_folder(trained, tmp_path):
    for name in ("a", "b"):
        Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(tmp_path / f"{name}.png")
    split = np.zeros((20, 24), np.uint8)
    split[:, 12:] = 255  # left seg, right style1: one task per pixel, which `single` can do
    Image.fromarray(np.stack([split, 255 - split, np.zeros_like(split)], axis=-1)).save(tmp_path / "split.png")
    ramp = np.tile(np.linspace(0, 255, 24).astype(np.uint8), (20, 1))  # fractional strengths
    Image.fromarray(ramp).save(tmp_path / "ramp.png")

    def apply(task_map: str, out: str, map_tasks: str = "style1,seg"):
        args = ["--task-map", str(tmp_path / task_map), "--map-tasks", map_tasks, "-o", str(tmp_path / out)]
        return CliRunner().invoke(app, ["apply", str(tmp_path / "a.png"), str(tmp_path / "b.png"), *args,
                                        "-w", str(trained["single"])])  # fmt: skip

    assert apply("split.png", "split").exit_code == 0
    result = apply("ramp.png", "ramp", "style1")
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "mixtask: error: the single architecture cannot take strengths between 0 and 1 (only 0 or 1)"
    ]
    assert not (tmp_path / "ramp").exists()


def test_apply_refuses_a_mix_in_one_line(trained, tmp_path):
    image = tmp_path / "photo.png"
    Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(image)
    result = CliRunner().invoke(app, ["apply", str(image), "--task", "seg+style1", "-w", str(trained["single"])])
    assert result.exit_code == 1
    message = "mixtask: error: the single architecture cannot mix tasks (one task at a time)"
    assert result.output.strip().splitlines() == [message]
    assert not list(tmp_path.glob("photo.*.png"))


def test_every_registered_architecture_keeps_the_contract():
    from mixtask.nets.base import TaskNet

    for name in names():
        cls = architecture_class(name)
        assert issubclass(cls, TaskNet), name
        assert all(isinstance(getattr(cls, flag), bool) for flag in ("mixes", "continuous", "task_maps"))
        assert cls.forward is not TaskNet.forward and cls.forward_any_size is not TaskNet.forward_any_size, name
