"""Loss weighting for the joint schedule (`mixtask.training.weighting`) and `--schedule joint` runs.

The methods on tiny synthetic losses (each weight moves the way its paper says), then tiny
training runs: `per-batch` unchanged, `joint` with every weighting trains and resumes exactly.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch import nn
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.errors import MixtaskError
from mixtask.nets.base import TaskNet
from mixtask.training import StyleSpec, TrainOptions, enter_stage2, optimize, prepare, resume_options, setup_run, train
from mixtask.training import options as options_module
from mixtask.training.checkpoint import load_checkpoint
from mixtask.training.step import draw_job
from mixtask.training.weighting import (
    WEIGHTINGS,
    DynamicWeightAverage,
    Equal,
    GradNorm,
    Uncertainty,
    last_shared_weight,
)
from mixtask.weights import load_weights
from tests.conftest import interrupt_at, make_dataset, no_ddp
from tests.fakes import tiny_vgg_state

# ----------------------------------------------------------------------------- the methods alone


def test_equal_sums_the_losses_divided_by_their_scales():
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(12.0)}
    assert float(Equal(["a", "b"]).combine(losses, 0)) == 14.0
    weighting = Equal(["a", "b"])
    assert float(weighting.combine(losses, 0, scales={"a": 2.0, "b": 4.0})) == 4.0  # 2/2 + 12/4
    assert weighting.weights() == {"a": 1.0, "b": 1.0}


def test_uncertainty_gives_a_persistently_larger_loss_a_smaller_weight():
    weighting = Uncertainty(["big", "small"])
    optimizer = torch.optim.Adam(weighting.parameters(), lr=0.05)
    for step in range(400):
        optimizer.zero_grad()
        weighting.combine({"big": torch.tensor(10.0), "small": torch.tensor(0.1)}, step).backward()
        optimizer.step()
    weights = weighting.weights()
    assert weights["big"] < 1.0 < weights["small"]
    assert weights["big"] == pytest.approx(1 / 10.0, rel=0.3)  # the optimum: exp(-s_i) = 1 / L_i
    assert weights["small"] == pytest.approx(1 / 0.1, rel=0.3)


def test_uncertainty_is_the_regression_form_and_ignores_the_ema_scales():
    weighting = Uncertainty(["a", "b"])
    with torch.no_grad():
        weighting.log_vars.copy_(torch.tensor([1.0, -0.5]))
    losses = {"a": torch.tensor(3.0), "b": torch.tensor(0.2)}
    expected = math.exp(-1.0) * 3.0 + 1.0 + math.exp(0.5) * 0.2 - 0.5
    assert float(weighting.combine(losses, 0).detach()) == pytest.approx(expected)
    assert float(weighting.combine(losses, 0, scales={"a": 9.0, "b": 9.0}).detach()) == pytest.approx(expected)


def test_dwa_weighs_up_the_job_whose_window_loss_fell_less():
    weighting = DynamicWeightAverage(["fast", "slow"], window=2)
    losses = [(1.0, 2.0), (3.0, 2.0), (1.0, 2.0), (1.0, 2.0)]  # window means: fast 2 -> 1, slow 2 -> 2
    for step, (fast, slow) in enumerate(losses):
        weighting.combine({"fast": torch.tensor(fast), "slow": torch.tensor(slow)}, step)
        assert weighting.weights() == {"fast": 1.0, "slow": 1.0}  # fewer than two finished windows
    total = weighting.combine({"fast": torch.tensor(1.0), "slow": torch.tensor(2.0)}, 4)
    weights = weighting.weights()
    expected = 2 * torch.softmax(torch.tensor([0.5, 1.0], dtype=torch.float64) / 2.0, dim=0)  # r = 1/2 and 2/2, T = 2
    assert [weights["fast"], weights["slow"]] == pytest.approx(expected.tolist())
    assert weights["slow"] > weights["fast"] and sum(weights.values()) == pytest.approx(2.0)
    assert float(total) == pytest.approx(weights["fast"] * 1.0 + weights["slow"] * 2.0)


def _two_task_losses(shared: nn.Linear, scale_a: float, scale_b: float) -> dict[str, torch.Tensor]:
    out = shared(torch.linspace(-1, 1, 12).reshape(4, 3))
    return {"a": scale_a * out.pow(2).mean(), "b": scale_b * out.pow(2).mean()}


def test_gradnorm_lowers_the_weight_of_the_job_with_the_larger_gradient_norm():
    torch.manual_seed(0)
    shared = nn.Linear(3, 4)
    weighting = GradNorm(["a", "b"], shared.weight)
    optimizer = torch.optim.Adam([*shared.parameters(), weighting.task_weights], lr=0.01)
    losses = _two_task_losses(shared, 10.0, 1.0)  # same training rate (first step), 10x the gradient for a
    expected_grad = torch.autograd.grad(losses["a"] + losses["b"], shared.weight, retain_graph=True)[0]
    weighting.combine(losses, 0).backward()
    torch.testing.assert_close(shared.weight.grad, expected_grad)  # the network never sees L_grad
    optimizer.step()
    weighting.after_step()
    w_a, w_b = weighting.task_weights.tolist()
    assert w_a < 1.0 < w_b and w_a + w_b == pytest.approx(2.0)  # renormalised to K


def test_gradnorm_raises_the_weight_of_the_job_that_trains_slower():
    shared = nn.Linear(3, 4)
    weighting = GradNorm(["a", "b"], shared.weight)
    optimizer = torch.optim.Adam([weighting.task_weights], lr=0.01)
    weighting.combine(_two_task_losses(shared, 1.0, 1.0), 0)  # L_i(0)
    # b's loss is now a quarter of its start, a's unchanged: b trains faster, although its gradient is smaller
    optimizer.zero_grad()
    weighting.combine(_two_task_losses(shared, 1.0, 0.25), 1).backward()
    optimizer.step()
    weighting.after_step()
    w_a, w_b = weighting.task_weights.tolist()
    assert w_a > 1.0 > w_b and w_a + w_b == pytest.approx(2.0)


def test_gradnorm_watches_the_last_conv_of_the_film_network():
    from mixtask.nets.film import ModelConfig
    from mixtask.nets.registry import build_model

    net = build_model(ModelConfig(num_tasks=3, width=4, res_blocks=1))
    assert last_shared_weight(net) is net.output.conv.weight


def test_gradnorm_needs_a_named_shared_layer_in_a_network_with_per_task_parts():
    class Branches(TaskNet):
        unused_parameters = True  # as the per-task networks of mixtask.nets declare

        def __init__(self):
            super().__init__()
            self.trunk, self.heads = nn.Conv2d(3, 4, 3), nn.ModuleList(nn.Conv2d(4, 3, 3) for _ in range(2))

    with pytest.raises(MixtaskError, match="--weighting gradnorm needs the last layer every task shares"):
        last_shared_weight(Branches())
    named = Branches()
    named.shared_weight = lambda: named.trunk.weight
    assert last_shared_weight(named) is named.trunk.weight


def test_weighting_names_agree_with_the_options_and_the_cli():
    from mixtask.cli.train import Schedule, Weighting

    assert tuple(WEIGHTINGS) == options_module.WEIGHTINGS == tuple(item.value for item in Weighting)
    assert tuple(item.value for item in Schedule) == options_module.SCHEDULES
    assert TrainOptions.from_json({"data": "d", "out": "o"}).schedule == "per-batch"  # runs from before
    import typer.main

    defaults = {param.name: param.default for param in typer.main.get_command(app).commands["train"].params}
    fields = TrainOptions.__dataclass_fields__
    assert (defaults["schedule"].value, defaults["weighting"].value) == (fields["schedule"].default, "equal")


# ----------------------------------------------------------------------------- training runs


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("assets")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "style1.png")
    save_file(tiny_vgg_state(), str(root / "vgg.safetensors"))
    return {"data": make_dataset(root / "data"), "root": root, "vgg": root / "vgg.safetensors"}


def tiny_options(assets, out: Path, **changes) -> TrainOptions:
    """Method 3 with stage 2 from step 2: the jobs change between the two steps."""
    options = TrainOptions(
        str(assets["data"]), str(out), (StyleSpec("style1", str(assets["root"] / "style1.png")),), steps=2,
        stage1_steps=1, mixes=("denoise+seg",), size=32, batch=2, vgg=str(assets["vgg"]), width=4, res_blocks=1,
        precision="fp32", device="cpu", preview_every=0, checkpoint_every=0,
    )  # fmt: skip
    return replace(options, **changes)


def log_records(run_dir: Path) -> list[dict]:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [record for record in records if "job" in record]


def test_per_batch_default_is_unchanged(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "run", steps=3)
    assert (options.schedule, options.weighting) == ("per-batch", "equal")
    result = train(options, quiet=True)
    reference = setup_run(replace(options, out=str(tmp_path / "reference")), no_ddp())  # the step as it was
    expected = []
    for _ in range(3):
        enter_stage2(reference)
        job = draw_job(reference)
        expected.append((job.name, optimize(reference, job, prepare(reference, job))))
        reference.step += 1
    records = log_records(tmp_path / "run")
    assert [record["job"] for record in records] == ["style1", "seg", "denoise+seg"]  # the draws before joint existed
    assert [(r["job"], r["losses"]) for r in records] == [
        (name, {key: round(value, 6) for key, value in losses.items()}) for name, losses in expected
    ]
    assert all("weights" not in record for record in records)
    trained = load_weights(result.weights)[0].state_dict()
    for name, value in reference.net.state_dict().items():
        assert torch.equal(trained[name], value), name
    assert load_checkpoint(tmp_path / "run")["weighting"] is None and len(reference.optimizer.param_groups) == 1


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "dwa", "gradnorm"])
def test_joint_runs_train_and_resume_exactly(assets, tmp_path, weighting):
    options = tiny_options(assets, tmp_path / "straight", schedule="joint", weighting=weighting, checkpoint_every=1)
    straight = train(options, quiet=True)
    records = log_records(tmp_path / "straight")
    stage1, stage2 = ["recon", "inpaint", "denoise", "seg", "style1"], ["denoise+seg"]
    assert [list(record["weights"]) for record in records] == [stage1, stage1 + stage2]
    assert all(set(record["losses"]) >= {*stage1, "total", "discriminator"} for record in records)
    learns = weighting in ("uncertainty", "gradnorm")
    assert any(weight != 1.0 for weight in records[-1]["weights"].values()) == learns  # trained with the network
    resumed_options = replace(options, out=str(tmp_path / "resumed"))
    assert train(resumed_options, quiet=True, callback=interrupt_at(1)).interrupted
    checkpoint = load_checkpoint(tmp_path / "resumed")
    assert checkpoint["weighting"] is not None and checkpoint["options"]["weighting"] == weighting
    assert resume_options(tmp_path / "resumed").schedule == "joint"
    resumed = train(resumed_options, resume=True, quiet=True)
    a, b = load_weights(straight.weights)[0].state_dict(), load_weights(resumed.weights)[0].state_dict()
    for name, value in a.items():
        torch.testing.assert_close(value, b[name], rtol=1e-5, atol=1e-6, msg=name)
    assert [r["weights"] for r in log_records(tmp_path / "resumed")] == [r["weights"] for r in records]


def test_dwa_window_state_is_checkpointed(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "run", schedule="joint", weighting="dwa")
    train(options, quiet=True, callback=interrupt_at(1))
    state = load_checkpoint(tmp_path / "run")["weighting"]["_extra_state"]
    assert state["counts"] == {"recon": 1, "inpaint": 1, "denoise": 1, "seg": 1, "style1": 1}
    assert all(value > 0 for value in state["sums"].values())


def test_per_batch_rejects_a_weighting_other_than_equal(assets, tmp_path):
    with pytest.raises(MixtaskError, match="--weighting dwa needs --schedule joint"):
        train(tiny_options(assets, tmp_path / "run", weighting="dwa"), quiet=True)
    args = ["train", "--data", str(assets["data"]), "--out", str(tmp_path / "cli"), "--weighting", "gradnorm"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--weighting gradnorm needs --schedule joint" in result.output
    assert "Traceback" not in result.output


def test_cli_records_schedule_and_weighting(assets, tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", str(assets["data"]), "--out", str(out), "--style", f"style1={assets['root']}/style1.png",
            "--steps", "1", "--size", "32", "--batch", "1", "--width", "4", "--res-blocks", "1", "--vgg",
            str(assets["vgg"]), "--precision", "fp32", "--mix-method", "1", "--schedule", "joint",
            "--weighting", "uncertainty", "-q"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    options = resume_options(out)
    assert (options.schedule, options.weighting) == ("joint", "uncertainty")
    assert set(log_records(out)[0]["weights"]) == {"recon", "inpaint", "denoise", "seg", "style1"}
