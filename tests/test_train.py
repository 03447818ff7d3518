"""Training (paper, Sec. 3.3): every job kind, Methods 1-3, resume, export, errors, DDP, CLI.

Everything is tiny: width-4 network with 1 residual block, 32 px crops, batch 2, a tiny random
VGG written to a file (the real one is never needed), a generated 4-photo dataset.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.cli.train import resolve_mix_method
from mixtask.errors import MixtaskError, UsageError
from mixtask.training import (
    STAGE1_NAME,
    StyleSpec,
    TrainOptions,
    check_options,
    enter_stage2,
    optimize,
    prepare,
    setup_run,
    train,
)
from mixtask.training.checkpoint import load_checkpoint
from mixtask.training.options import RESUME_OVERRIDES, resume_options
from mixtask.training.progress import read_records
from mixtask.weights import load_weights, read_info
from tests.conftest import interrupt_at, no_ddp, tiny_options


def params(net) -> list[torch.Tensor]:
    return [p.detach().clone() for p in net.parameters()]


# ----------------------------------------------------------------------------- every job kind


@pytest.mark.parametrize("method", [2, 3])
def test_every_job_takes_a_finite_step(assets, tmp_path, method):
    run = setup_run(tiny_options(assets, tmp_path / "run", n_styles=2, mix_method=method, steps=2), no_ddp())
    if method == 3:
        run.step = run.plan.stage1_steps
        enter_stage2(run)
    jobs = run.plan.jobs(run.plan.stage_at(run.step))
    sources = {job.source for job in jobs}
    assert sources == ({"recon", "members"} if method == 2 else {"recon", "members", "synthesized"})
    assert {job.name for job in jobs} >= {"recon", "inpaint", "denoise", "seg", "style1", "style2", "denoise+seg"}
    for job in jobs:
        before = params(run.net)
        losses = optimize(run, job, prepare(run, job))
        assert all(np.isfinite(value) for value in losses.values()), job.name
        assert any(not torch.equal(a, b) for a, b in zip(before, run.net.parameters())), job.name
        if job.rule is not None and "seg" in job.rule.names and job.source == "members":
            assert "discriminator" in losses and "seg.adversarial" in losses


def test_seg_without_adversarial_has_no_discriminator(assets, tmp_path):
    run = setup_run(tiny_options(assets, tmp_path / "run", adversarial_weight=0.0), no_ddp())
    job = next(job for job in run.plan.jobs(1) if job.name == "seg")
    assert run.disc is None
    assert set(optimize(run, job, prepare(run, job))) == {"seg", "seg.bce", "seg.dice", "seg.l1", "total"}
    run = setup_run(tiny_options(assets, tmp_path / "l2", adversarial_weight=0.0, seg_loss="l2"), no_ddp())
    assert set(optimize(run, job, prepare(run, job))) == {"seg", "total"}


@pytest.mark.parametrize("task", ["inpaint", "denoise"])
def test_damage_weight_adds_the_l2_over_the_damaged_pixels(assets, tmp_path, task):
    from mixtask.training.step import job_losses

    run = setup_run(tiny_options(assets, tmp_path / "run", damage_weight=3.0, mix_method=2), no_ddp())
    job = next(job for job in run.plan.jobs(1) if job.name == task)
    batch = prepare(run, job)
    damaged = (batch.input != batch.clean).any(dim=1, keepdim=True)
    assert 0 < damaged.float().mean() < 0.5
    output = batch.clean.clone()
    output[:, :, :1] = 0  # wrong on the first row only
    terms, _ = job_losses(run, job, output, batch)
    expected = ((output - batch.clean) ** 2 * damaged).sum() / (3 * damaged.sum())
    assert float(terms[f"{task}.damaged"]) == pytest.approx(float(expected), rel=1e-5)
    whole = float(((output - batch.clean) ** 2).mean())
    assert float(terms["total"]) == pytest.approx(whole + 3.0 * float(expected), rel=1e-5)
    mix = next(job for job in run.plan.jobs(1) if job.rule is not None and job.rule.is_mix and job.rule.corruptions)
    assert not any(name.endswith(".damaged") for name in job_losses(run, mix, output, prepare(run, mix))[0])


@pytest.mark.parametrize("task", ["inpaint", "denoise"])
def test_keep_weight_trains_the_gate_towards_the_undamaged_pixels(assets, tmp_path, task):
    from mixtask.training.losses import keep_loss

    run = setup_run(tiny_options(assets, tmp_path / "run", keep_weight=1.0, adversarial_weight=0.0), no_ddp())
    job = next(job for job in run.plan.jobs(1) if job.name == task)
    losses = optimize(run, job, prepare(run, job))
    assert set(losses) == {task, f"{task}.keep", "total"} and 0 < losses[f"{task}.keep"] < 10
    keep = torch.zeros(1, 1, 4, 4, dtype=torch.bool)
    keep[..., :2] = True
    right, wrong = torch.where(keep, 9.0, -9.0), torch.where(keep, -9.0, 9.0)
    assert float(keep_loss(right, keep)) < 1e-3 < 8 < float(keep_loss(wrong, keep))
    # the two classes weigh the same, however few damaged pixels there are
    mostly_kept = torch.ones(1, 1, 10, 10, dtype=torch.bool)
    mostly_kept[..., 0, 0] = False
    assert float(keep_loss(torch.full((1, 1, 10, 10), 9.0), mostly_kept)) == pytest.approx(0.5 * 9, abs=0.01)


def test_keep_kinds_chooses_which_restorations_gates_are_supervised(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "run", keep_weight=0.02, keep_kinds="inpaint", adversarial_weight=0.0)
    run = setup_run(options, no_ddp())
    inpaint, denoise = (next(job for job in run.plan.jobs(1) if job.name == name) for name in ("inpaint", "denoise"))
    assert "inpaint.keep" in optimize(run, inpaint, prepare(run, inpaint))
    assert "denoise.keep" not in optimize(run, denoise, prepare(run, denoise))
    with pytest.raises(UsageError, match="--keep-kinds"):
        check_options(replace(options, keep_kinds="inpaint,seg"))


def test_keep_partial_trains_the_gate_towards_the_inputs_share_below_full_strength(assets, tmp_path):
    from mixtask.training.losses import keep_loss
    from mixtask.training.step import draw_partial_strengths

    options = tiny_options(assets, tmp_path / "run", keep_weight=0.5, partial_strengths=1.0, adversarial_weight=0.0)
    for keep_partial in (False, True):
        run = setup_run(replace(options, keep_partial=keep_partial), no_ddp())
        job = next(job for job in run.plan.jobs(1) if job.name == "inpaint")
        batch = draw_partial_strengths(run, job, prepare(run, job))
        assert batch.strengths is not None  # --partial-strengths 1: every single-task batch
        losses = optimize(run, job, batch)
        assert ("inpaint.partial.keep" in losses) is keep_partial
        if keep_partial:
            assert losses["total"] == pytest.approx(losses["inpaint.partial"] + 0.5 * losses["inpaint.partial.keep"])
    # at strength s a damaged pixel's gate is best at 1 - s (the input's share of the blended target)
    keep = torch.tensor([True, False]).view(1, 1, 1, 2)

    def loss_at(gate: float) -> float:
        logit = torch.logit(torch.tensor([0.999, gate])).view(1, 1, 1, 2)
        return float(keep_loss(logit, keep, torch.tensor(0.3)))

    assert loss_at(0.3) < loss_at(0.2) and loss_at(0.3) < loss_at(0.4) and loss_at(0.3) < loss_at(0.001)
    with pytest.raises(UsageError, match="--keep-partial"):
        check_options(replace(options, keep_partial=True, partial_strengths=0.0))


def test_restoration_l1_adds_an_l1_on_the_image(assets, tmp_path):
    from mixtask.training.step import job_losses

    run = setup_run(tiny_options(assets, tmp_path / "run", restoration_l1=2.0), no_ddp())
    job = next(job for job in run.plan.jobs(1) if job.name == "denoise")
    batch = prepare(run, job)
    output = batch.clean + 0.1
    terms, _ = job_losses(run, job, output, batch)
    assert float(terms["denoise.l1"]) == pytest.approx(0.1, rel=1e-4)
    assert float(terms["total"]) == pytest.approx(0.01 + 2 * 0.1, rel=1e-4)


def test_seg_l1_weight_scales_the_l1_on_seg_image(assets, tmp_path):
    from mixtask.training.options import resume_options
    from mixtask.training.step import job_losses

    run = setup_run(tiny_options(assets, tmp_path / "run", seg_l1_weight=3.0, adversarial_weight=0.0), no_ddp())
    job = next(job for job in run.plan.jobs(1) if job.name == "seg")
    batch = prepare(run, job)
    target = batch.clean * batch.mask
    gate = torch.zeros_like(batch.mask)
    terms, _ = job_losses(run, job, target + 0.1, batch, gate)
    assert float(terms["seg.l1"]) == pytest.approx(0.1, rel=1e-4)
    mask_terms = float(terms["seg.bce"]) + float(terms["seg.dice"])
    assert float(terms["total"]) == pytest.approx(0.01 + mask_terms + 3 * 0.1, rel=1e-4)
    with pytest.raises(MixtaskError, match="--seg-l1-weight"):
        check_options(replace(run.options, seg_l1_weight=-1.0))
    out = tmp_path / "short"  # a probe's branch changes it on resume, and the weights record it
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)
    train(resume_options(out, steps=3, seg_l1_weight=8.0), resume=True, quiet=True)
    provenance = read_info(out / "weights.safetensors").provenance
    assert provenance["seg_l1_weight"] == 8.0
    assert [session.get("seg_l1_weight") for session in provenance["sessions"]] == [1.0, 8.0]
    with pytest.raises(MixtaskError, match="needs --seg-loss mask"):
        check_options(replace(run.options, seg_loss="l2", seg_l1_weight=2.0))


def test_compiled_steps_match_eager_ones(assets, tmp_path):
    """--compile is a speed setting only: the same seg steps (gate supervised through the compiled graph) give
    the same losses and weights as eager ones."""
    results = []
    for compile in (False, True):
        options = tiny_options(assets, tmp_path / f"compile{compile}", adversarial_weight=0.0, compile=compile)
        run = setup_run(options, no_ddp())
        job = next(job for job in run.plan.jobs(1) if job.name == "seg")
        batches = [prepare(run, job) for _ in range(2)]
        losses = [optimize(run, job, batch) for batch in batches]
        results.append((losses, [p.grad.clone() for p in run.net.parameters() if p.grad is not None]))
    (eager_losses, eager_grads), (compiled_losses, compiled_grads) = results
    for eager, compiled in zip(eager_losses, compiled_losses):
        assert compiled.keys() == eager.keys()
        for name in eager:
            assert compiled[name] == pytest.approx(eager[name], rel=1e-4, abs=1e-6), name
    # Gradients, not weights: Adam turns the float noise of a zero gradient (a bias before a norm) into a full step.
    assert len(compiled_grads) == len(eager_grads) > 0
    for x, y in zip(eager_grads, compiled_grads):
        torch.testing.assert_close(y, x, rtol=1e-3, atol=1e-6 + 1e-3 * float(x.abs().max()))


# ----------------------------------------------------------------------------- Methods 1-3, export


@pytest.mark.parametrize(
    ("method", "mixes"),
    [(1, ()), (2, (("denoise", "style1"), ("denoise", "seg"), ("seg", "style1"))), (3, (("denoise", "seg"),))],
)
def test_methods_train_and_export_self_describing_weights(assets, tmp_path, method, mixes):
    out = tmp_path / "run"
    extra = {"mixes": ("seg+denoise",)} if method == 3 else {}
    result = train(tiny_options(assets, out, mix_method=method, **extra), quiet=True)
    assert result.steps == 4 and not result.interrupted
    model, info = load_weights(result.weights)
    assert info.task_set.names == ("inpaint", "denoise", "seg", "style1")
    assert info.task_set.tasks[3].aliases == ("starry", "starry_night")
    assert info.task_set.mixes == mixes
    assert (model.config.width, model.config.res_blocks) == (4, 1)
    provenance = info.provenance
    for key in ("data", "command", "steps", "size", "hardware", "wall_seconds", "date", "git_commit", "mix_method"):
        assert key in provenance, key
    assert (provenance["mix_method"], provenance["steps"], provenance["size"]) == (method, 4, 32)
    assert provenance["stage"] == (2 if method == 3 else 1)
    assert (out / STAGE1_NAME).is_file() == (method == 3)
    if method == 3:
        stage1 = read_info(out / STAGE1_NAME)
        assert (stage1.provenance["stage"], stage1.provenance["steps"], stage1.task_set.mixes) == (1, 2, ())


def test_log_and_previews(assets, tmp_path):
    out = tmp_path / "run"
    train(tiny_options(assets, out, preview_every=2), quiet=True)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in records if "job" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all("total" in r["losses"] and r["seconds"] >= r["data_seconds"] >= 0 for r in steps)
    assert records[0]["event"] == "start" and records[-1]["event"] == "done"
    previews = sorted((out / "previews").glob("*.png"))
    assert [p.name for p in previews] == ["step-000002.png", "step-000004.png"]
    width, height = Image.open(previews[-1]).size
    assert width > 3 * 32 and height >= 32 * 7  # stage 2: recon, 4 singles, 2 mixes


# ----------------------------------------------------------------------------- resume


@pytest.mark.parametrize("partial_strengths", [0.0, 0.5])
def test_two_plus_two_resumed_steps_equal_four_straight(assets, tmp_path, partial_strengths):
    options = tiny_options(
        assets, tmp_path / "straight", stage1_steps=2, checkpoint_every=1, partial_strengths=partial_strengths
    )
    straight = train(options, quiet=True)
    stopped = train(replace(options, out=str(tmp_path / "resumed")), quiet=True, callback=interrupt_at(2))
    assert stopped.interrupted and stopped.steps == 2 and stopped.weights is None
    assert load_checkpoint(tmp_path / "resumed")["step"] == 2
    resumed = train(replace(options, out=str(tmp_path / "resumed")), resume=True, quiet=True)
    assert resumed.steps == 4
    a, b = load_weights(straight.weights)[0], load_weights(resumed.weights)[0]
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)
    assert logged_jobs(tmp_path / "resumed") == logged_jobs(tmp_path / "straight")


def logged_jobs(run_dir: Path) -> list[str]:
    records = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [record["job"] for record in records if "job" in record]


def test_resume_in_stage2_restores_the_stage1_model(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "a", steps=5, stage1_steps=2, mixes=("denoise+style1",))
    straight = train(options, quiet=True)
    train(replace(options, out=str(tmp_path / "b")), quiet=True, callback=interrupt_at(3))
    assert load_checkpoint(tmp_path / "b")["teacher"] is not None
    resumed = train(replace(options, out=str(tmp_path / "b")), resume=True, quiet=True)
    a, b = load_weights(straight.weights)[0], load_weights(resumed.weights)[0]
    for x, y in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6)


def test_resume_can_extend_steps(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)
    options = resume_options(out, steps=3)
    assert options.steps == 3
    assert train(options, resume=True, quiet=True).steps == 3
    with pytest.raises(MixtaskError, match="below the run's step 3"):
        resume_options(out, steps=1)


def test_resume_can_fine_tune_at_a_larger_size(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)  # 32 px crops
    options = resume_options(out, steps=3, size=64)
    assert options.size == 64
    assert train(options, resume=True, quiet=True).steps == 3
    sessions = read_info(out / "weights.safetensors").provenance["sessions"]  # each session's crop size on record
    assert [(session["event"], session["size"]) for session in sessions] == [("start", 32), ("resume", 64)]
    with pytest.raises(MixtaskError, match="--size"):
        resume_options(out, size=30)


def test_resume_with_a_new_learning_rate_sets_it_in_the_optimiser(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)
    assert load_checkpoint(out)["optimizer"]["param_groups"][0]["lr"] != 3e-5
    train(resume_options(out, steps=3, lr=3e-5), resume=True, quiet=True)
    state = load_checkpoint(out)
    assert state["options"]["lr"] == 3e-5
    assert {group["lr"] for group in state["optimizer"]["param_groups"]} == {3e-5}
    with pytest.raises(MixtaskError, match="--lr"):
        resume_options(out, lr=0.0)


def test_resume_can_change_the_seg_composites_and_they_are_on_record(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)
    train(resume_options(out, steps=3, composites="plain"), resume=True, quiet=True)
    info = read_info(out / "weights.safetensors")
    assert info.provenance["composites"] == "plain"
    assert [session.get("composites") for session in info.provenance["sessions"]] == ["pasted", "plain"]
    with pytest.raises(MixtaskError, match="--composites"):
        resume_options(out, composites="busy")


def test_resume_can_change_the_share_of_masked_photos_and_it_is_on_record(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)
    options = resume_options(out, steps=3, seg_photos=0.0)
    assert setup_run(options, no_ddp(), restoring=True).sampler.mask_fraction == 0.0  # composites only
    train(options, resume=True, quiet=True)
    info = read_info(out / "weights.safetensors")
    assert info.provenance["seg_photos"] == 0.0
    assert [session.get("seg_photos") for session in info.provenance["sessions"]] == [None, 0.0]
    with pytest.raises(MixtaskError, match="--seg-photos"):
        resume_options(out, seg_photos=1.5)


def test_partial_strengths_train_single_tasks_towards_the_blend_and_are_on_record(assets, tmp_path):
    from mixtask.training import resume_options
    from mixtask.training.step import draw_partial_strengths, partial_strength_losses

    out = tmp_path / "run"
    options = tiny_options(assets, out, steps=3, mix_method=1, partial_strengths=1.0)
    run = setup_run(options, no_ddp())
    jobs = {job.name: job for job in run.plan.jobs(run.plan.stage_at(0))}
    seg = jobs["seg"]
    batch = draw_partial_strengths(run, seg, prepare(run, seg))
    strengths = batch.strengths
    assert strengths.shape == (2,) and bool(((strengths >= 0) & (strengths < 1)).all())
    torch.testing.assert_close(batch.vector[:, run.plan.task_set.index("seg")], strengths)
    cutout = batch.clean * batch.mask
    blend = batch.input + strengths.view(-1, 1, 1, 1) * (cutout - batch.input)
    assert float(partial_strength_losses(run, seg, blend, batch)["total"]) < 1e-10
    assert float(partial_strength_losses(run, seg, cutout, batch)["total"]) > 1e-4  # the full cut-out overshoots
    for name in ("recon", "style1"):  # recon is no task; style1's perceptual loss has no target image to blend to
        full = prepare(run, jobs[name])
        assert draw_partial_strengths(run, jobs[name], full) is full
    assert set(optimize(run, seg, batch)) == {"seg.partial", "total"}

    train(options, quiet=True)
    logged = [key for record in read_records(out / "log.jsonl") for key in record.get("losses", {})]
    assert any(key.endswith(".partial") for key in logged)
    train(resume_options(out, steps=4, partial_strengths=0.0), resume=True, quiet=True)
    info = read_info(out / "weights.safetensors")
    assert info.provenance["partial_strengths"] == 0.0
    assert [session.get("partial_strengths") for session in info.provenance["sessions"]] == [1.0, 0.0]
    with pytest.raises(MixtaskError, match="--partial-strengths"):
        resume_options(out, partial_strengths=1.5)


def test_job_weights_draw_the_weighted_jobs_and_are_on_record(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    weighted = "recon=0,inpaint=0,seg=0,style1=0"  # only denoise left to draw
    train(tiny_options(assets, out, steps=3, mix_method=1, job_weights=weighted), quiet=True)
    assert set(logged_jobs(out)) == {"denoise"}
    train(resume_options(out, steps=6, job_weights="denoise=0,inpaint=0,seg=0,style1=0"), resume=True, quiet=True)
    assert logged_jobs(out)[3:] == ["recon"] * 3
    sessions = read_info(out / "weights.safetensors").provenance["sessions"]
    assert [session.get("job_weights") for session in sessions] == [weighted, "denoise=0,inpaint=0,seg=0,style1=0"]


def test_job_weights_shift_the_draw_in_proportion():
    from types import SimpleNamespace

    from mixtask.training.plan import build_plan
    from mixtask.training.step import draw_job

    options = TrainOptions("data", "out", (StyleSpec("style1", "s.png"),), steps=10, job_weights="seg=5")
    run = SimpleNamespace(plan=build_plan(options), step=0, generators={"jobs": torch.Generator().manual_seed(0)})
    names = [draw_job(run).name for _ in range(3000)]
    # 5 jobs in stage 1 (recon, inpaint, denoise, seg, style1): seg is drawn 5 / 9 of the time
    assert abs(names.count("seg") / len(names) - 5 / 9) < 0.03
    assert abs(names.count("recon") / len(names) - 1 / 9) < 0.02


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("seg", "not JOB=WEIGHT"),
        ("seg=-1", "not JOB=WEIGHT"),
        ("seg=nan", "not JOB=WEIGHT"),
        ("seg=inf", "not JOB=WEIGHT"),
        ("sharpen=2", "this run has no job 'sharpen'"),
        ("recon=0,inpaint=0,denoise=0,seg=0,style1=0", "every job of stage 1 has weight 0"),
    ],
)
def test_bad_job_weights_are_named(assets, tmp_path, text, message):
    with pytest.raises(MixtaskError, match=message):
        train(tiny_options(assets, tmp_path / "run", job_weights=text), quiet=True)


def test_a_run_past_stage1_may_zero_its_jobs_but_not_one_still_in_it(assets, tmp_path):
    from mixtask.training.options import resume_options

    out = tmp_path / "run"  # stage 1 ends at step 2: a probe's branch from step 3 trains the mix alone
    train(tiny_options(assets, out, steps=3, stage1_steps=2, mixes=("denoise+style1",)), quiet=True)
    mix_only = "recon=0,inpaint=0,denoise=0,seg=0,style1=0,denoise+style1=1"
    train(resume_options(out, steps=5, job_weights=mix_only), resume=True, quiet=True)
    assert logged_jobs(out)[3:] == ["denoise+style1"] * 2
    early = tmp_path / "early"
    train(tiny_options(assets, early, steps=4, stage1_steps=2, mixes=("denoise+style1",)), quiet=True,
          callback=interrupt_at(1))  # fmt: skip
    with pytest.raises(MixtaskError, match="every job of stage 1 has weight 0"):
        train(resume_options(early, steps=5, job_weights=mix_only), resume=True, quiet=True)


def test_damage_weight_is_a_resume_override(assets, tmp_path):
    from mixtask.training.options import resume_options

    out = tmp_path / "run"  # the holes' probe turns their extra L2 on in a branch
    train(tiny_options(assets, out, steps=2, mix_method=1), quiet=True)
    assert resume_options(out, steps=3).damage_weight == 0.0
    assert resume_options(out, steps=3, damage_weight=2.0).damage_weight == 2.0


def test_job_weights_need_the_per_batch_schedule(assets, tmp_path):
    with pytest.raises(MixtaskError, match="--job-weights needs --schedule per-batch"):
        train(tiny_options(assets, tmp_path / "run", schedule="joint", job_weights="seg=2"), quiet=True)


def test_resume_can_move_the_end_of_stage1_while_in_it(assets, tmp_path):
    from mixtask.training import resume_options

    out = tmp_path / "run"
    options = tiny_options(assets, out, steps=6, stage1_steps=5, mixes=("denoise+style1",), checkpoint_every=1)
    train(options, quiet=True, callback=interrupt_at(2))
    options = resume_options(out, stage1=3)
    assert (options.steps, options.stage1_steps) == (6, 3)
    train(options, resume=True, quiet=True)
    assert load_checkpoint(out)["teacher"] is not None
    assert [record["stage"] for record in read_records(out / "log.jsonl") if "stage" in record] == [1, 1, 1, 2, 2, 2]
    provenance = read_info(out / "weights.safetensors").provenance  # the resume's change is on record
    assert provenance["stage1_steps"] == 3
    assert [(session["event"], session["step"]) for session in provenance["sessions"]] == [("start", 0), ("resume", 2)]
    assert all(session["hardware"] and session["command"] for session in provenance["sessions"])
    with pytest.raises(MixtaskError, match="stage 1's end can only move while the run is in it"):
        resume_options(out, steps=8, stage1=7)  # already in stage 2
    with pytest.raises(MixtaskError, match="--stage1-steps"):
        resume_options(tmp_path / "run", stage1=1)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"styles": (StyleSpec("style1", "/nowhere/starry.jpg"),)}, "style image for 'style1' not found"),
        ({"mixes": ("denoise+sharpen",)}, "unknown task 'sharpen'; valid tasks: recon, inpaint"),
        ({"mixes": ("seg+style1+style2",)}, "FiLM interpolation"),
        ({"mix_method": 1, "mixes": ("denoise+seg",)}, "single tasks only"),
        ({"mix_method": 2, "synth": "x"}, "--synth needs --mix-method 3"),
        ({"size": 30}, "multiple of 4"),
        ({"stage1_steps": 9}, "--stage1-steps"),
        ({"data": "/nowhere/data"}, "data folder /nowhere/data not found"),
    ],
)
def test_bad_options_fail_with_a_clear_message(assets, tmp_path, changes, message):
    with pytest.raises(MixtaskError, match=message):
        train(tiny_options(assets, tmp_path / "run", n_styles=2, **changes), quiet=True)


def test_empty_data_folder(assets, tmp_path):
    (tmp_path / "empty" / "photos").mkdir(parents=True)
    with pytest.raises(MixtaskError, match="photo"):
        train(tiny_options(assets, tmp_path / "run", data=str(tmp_path / "empty")), quiet=True)


def test_missing_vgg_is_explained(assets, tmp_path):
    with pytest.raises(MixtaskError, match="not found"):
        train(tiny_options(assets, tmp_path / "run", vgg=str(tmp_path / "none.safetensors")), quiet=True)


def test_existing_run_needs_resume(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "run", steps=1, mix_method=1)
    train(options, quiet=True)
    with pytest.raises(MixtaskError, match="--resume"):
        train(options, quiet=True)


# ----------------------------------------------------------------------------- CLI


def test_cli_trains_and_reports(assets, tmp_path, monkeypatch):
    out = tmp_path / "run"
    args = ["train", "--data", str(assets["data"]), "--out", str(out), "--style", f"style1={assets['root']}/style1.png",
            "--steps", "2", "--size", "32", "--batch", "1", "--width", "4", "--res-blocks", "1", "--vgg",
            str(assets["vgg"]), "--precision", "fp32", "--mix", "denoise+seg", "-q"]  # fmt: skip
    monkeypatch.setattr("sys.argv", ["/venv/bin/mixtask", *args])  # what the provenance records
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "weights:" in result.output
    info = read_info(out / "weights.safetensors")
    assert info.task_set.mixes == (("denoise", "seg"),)
    assert info.provenance["command"].startswith("mixtask train --data ")
    assert "--mix denoise+seg" in info.provenance["command"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--style", "style1"], "write it as NAME=IMAGE"),
        (["--mix", "style1+style2", "--style", "style2=x.png"], "unknown task 'style1'"),
        ([], "give --data DIR and --out RUN_DIR"),
    ],
)
def test_cli_errors_are_one_line(assets, tmp_path, args, message):
    base = ["train"] if not args else ["train", "--data", str(assets["data"]), "--out", str(tmp_path / "r")]
    result = CliRunner().invoke(app, base + args)
    assert result.exit_code == 2  # asked wrongly: a usage error
    assert message in result.output
    assert "Traceback" not in result.output


def test_cli_resume_takes_a_new_learning_rate_and_job_weights(assets, tmp_path):
    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=1, mix_method=1), quiet=True)
    args = ["train", "--resume", str(out), "--steps", "2", "--lr", "2e-5", "--job-weights", "seg=2", "-q"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    state = load_checkpoint(out)
    assert state["optimizer"]["param_groups"][0]["lr"] == 2e-5
    assert state["options"]["job_weights"] == "seg=2"
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--steps", "3", "--job-weights", "", "-q"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out)["options"]["job_weights"] == ""  # uniform again


def test_cli_defaults_match_train_options():
    import typer.main

    command = typer.main.get_command(app).commands["train"]
    defaults = {param.name: param.default for param in command.params}
    fields = TrainOptions.__dataclass_fields__
    assert defaults["head"].value == fields["head"].default
    assert defaults["arch"] == fields["arch"].default
    assert defaults["lr"] is None  # so --resume can tell a new rate from none; a new run takes the field's
    names = ["batch", "seed", "content_weight", "style_weight", "tv_weight"]
    names += ["adversarial_weight", "width", "res_blocks", "film_layers", "preview_every", "checkpoint_every"]
    for name in names:
        assert defaults[name] == fields[name].default, name
    # --mix-method has no fixed default: 3, or 1 for an architecture that cannot mix (cli.train)
    assert defaults["mix_method"] is None and resolve_mix_method(None, "film") == fields["mix_method"].default


def test_every_resume_override_is_a_cli_option_that_defaults_to_none_and_a_train_option():
    import typer.main

    command = typer.main.get_command(app).commands["train"]
    defaults = {param.name: param.default for param in command.params}
    for name in RESUME_OVERRIDES:
        # None: not given on --resume, so the run's own value stays
        assert name in TrainOptions.__dataclass_fields__ and defaults[name] is None, name
    with pytest.raises(TypeError, match="cannot change batch"):
        resume_options("no-such-run", batch=4)


def test_cli_resume_refuses_new_data_naming_the_options_it_takes(assets, tmp_path):
    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=1, mix_method=1), quiet=True)
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--data", str(assets["data"]), "-q"])
    assert result.exit_code == 2 and "--mix-l1-weight" in result.output and "--damage-weight" in result.output


# ----------------------------------------------------------------------------- DDP


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, options: TrainOptions, port: int) -> None:
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
    )  # fmt: skip
    torch.set_num_threads(1)
    train(options, quiet=True)


def test_two_cpu_processes_with_ddp(assets, tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "run"
    options = tiny_options(assets, out, steps=3, stage1_steps=1, mixes=("denoise+seg",), checkpoint_every=2)
    mp.spawn(_ddp_worker, args=(options, _free_port()), nprocs=2, join=True)
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["event"] for r in records if "event" in r] == ["start", "done"]  # rank 0 only
    assert [r["step"] for r in records if "job" in r] == [1, 2, 3]
    checkpoint = load_checkpoint(out)
    assert len(checkpoint["rng"]) == 2
    assert not torch.equal(checkpoint["rng"][0]["sampler"]["generator"], checkpoint["rng"][1]["sampler"]["generator"])
    info = read_info(out / "weights.safetensors")
    assert info.provenance["batch"] == 4 and info.provenance["hardware"].startswith("2 x")


# ----------------------------------------------------------------------------- optional evaluation


def test_optional_evaluation_writes_eval_json(assets, tmp_path, monkeypatch):
    import mixtask.evaluation.run

    seen = []

    def fake_evaluation(options):  # the real one is tested with the evaluator; here: the hand-over
        seen.append(options)
        return {"split": options.split, "groups": []}

    monkeypatch.setattr(mixtask.evaluation.run, "run_evaluation", fake_evaluation)
    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=2, evaluate=True), quiet=True)
    assert json.loads((out / "eval.json").read_text()) == {"split": "val", "groups": []}
    assert seen[0].weights == out / "weights.safetensors" and seen[0].styles == (
        ("style1", str(assets["root"] / "style1.png")),
    )
    assert "evaluated" in [json.loads(line).get("event") for line in (out / "log.jsonl").read_text().splitlines()]


def test_evaluation_problems_do_not_fail_the_run(assets, tmp_path):
    out = tmp_path / "run"
    result = train(tiny_options(assets, out, steps=1, mix_method=1, evaluate=True), quiet=True)  # no val split
    assert result.weights.is_file() and not (out / "eval.json").exists()


def test_resume_drops_log_lines_after_the_checkpoint(tmp_path):
    from mixtask.training import RunLog

    log = RunLog(tmp_path / "log.jsonl", enabled=True)
    for step in (1, 2, 3):
        log.write({"step": step, "job": "recon"})
    with (tmp_path / "log.jsonl").open("a") as handle:
        handle.write('{"step": 4, "jo')  # cut short by a crash
    log.truncate_after(2)
    assert [json.loads(line)["step"] for line in (tmp_path / "log.jsonl").read_text().splitlines()] == [1, 2]


def test_loss_balancing_divides_by_each_jobs_running_mean(assets, tmp_path):
    from types import SimpleNamespace

    from mixtask.training import loss_scale

    run = SimpleNamespace(options=tiny_options(assets, tmp_path), loss_scales={})
    assert loss_scale(run, "style1", torch.tensor(50.0)) == pytest.approx(50.0)
    assert loss_scale(run, "recon", torch.tensor(0.001)) == pytest.approx(0.001)
    assert loss_scale(run, "style1", torch.tensor(40.0)) == pytest.approx(49.9)  # 0.99 * 50 + 0.01 * 40
    run.options = replace(run.options, balance="none")
    assert loss_scale(run, "style1", torch.tensor(40.0)) == 1.0


def test_snapshot_exports_the_last_checkpoint_mid_run(assets, tmp_path):
    from typer.testing import CliRunner

    from mixtask.cli import app
    from mixtask.training.checkpoint import load_checkpoint as read_checkpoint

    options = tiny_options(assets, tmp_path / "run", steps=6, checkpoint_every=1)
    assert train(options, quiet=True, callback=interrupt_at(2)).interrupted
    result = CliRunner().invoke(app, ["snapshot", str(tmp_path / "run"), "-o", str(tmp_path / "snap.safetensors")])
    assert result.exit_code == 0, result.output
    model, info = load_weights(tmp_path / "snap.safetensors")
    assert info.provenance["steps"] == 2 and info.provenance["stage"] == 1 and info.task_set.mixes == ()
    for key, value in read_checkpoint(tmp_path / "run")["model"].items():
        torch.testing.assert_close(model.state_dict()[key], value.float(), msg=key)


def test_a_snapshot_names_the_hardware_that_trained_it_not_the_one_exporting_it(assets, tmp_path):
    import json

    from typer.testing import CliRunner

    from mixtask.cli import app

    options = tiny_options(assets, tmp_path / "run", steps=6, checkpoint_every=1)
    assert train(options, quiet=True, callback=interrupt_at(2)).interrupted
    log = tmp_path / "run" / "log.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    for record in records:  # as if the run had trained on another machine
        if record.get("event") == "start":
            record["hardware"] = "1 x TRAINING-CPU (2 threads), bfloat16"
    records.append({"event": "resume", "step": 2, "hardware": "1 x EXPORTING-CPU (2 threads), fp32"})  # no steps yet
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    result = CliRunner().invoke(app, ["snapshot", str(tmp_path / "run"), "-o", str(tmp_path / "snap.safetensors")])
    assert result.exit_code == 0, result.output
    assert read_info(tmp_path / "snap.safetensors").provenance["hardware"] == "1 x TRAINING-CPU (2 threads), bfloat16"


@pytest.mark.parametrize(
    ("crafted", "message"),
    [
        (lambda state: state.pop("options"), "no valid 'options'"),
        (lambda state: state.update(step="12"), "no valid 'step'"),
        (lambda state: state.pop("model"), "no valid 'model'"),
        (lambda state: state.update(step=-3), "negative step"),
    ],
)
def test_crafted_checkpoints_are_one_line(assets, tmp_path, crafted, message):
    out = tmp_path / "run"
    train(tiny_options(assets, out, steps=1), quiet=True)
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    crafted(state)
    torch.save(state, out / "checkpoint.pt")
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "--steps", "2", "-q"])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_random_bytes_as_a_checkpoint_never_suggest_unsafe_loading(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(os.urandom(3000))
    result = CliRunner().invoke(app, ["train", "--resume", str(out), "-q"])
    assert result.exit_code == 1 and "is damaged" in result.output
    assert "weights_only" not in result.output and len(result.output.strip().splitlines()) == 1


def test_deep_seg_supervision_trains_a_head_that_resumes_exactly_and_is_not_exported(assets, tmp_path):
    seg_only = "recon=0,inpaint=0,denoise=0,style1=0,seg=1"
    options = tiny_options(
        assets, tmp_path / "straight", steps=4, mix_method=1, seg_loss="mask", adversarial_weight=0,
        deep_seg_weight=0.5, job_weights=seg_only, checkpoint_every=1,
    )  # fmt: skip
    straight = train(options, quiet=True)
    records = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    deep = [r["losses"]["seg.deep"] for r in records if "losses" in r]
    assert len(deep) == 4 and all(value > 0 for value in deep)
    assert load_checkpoint(tmp_path / "straight")["deep_seg_head"]["weight"].shape == (1, 16, 1, 1)
    model, info = load_weights(straight.weights)
    assert info.provenance["deep_seg_weight"] == 0.5 and not any("deep" in key for key in model.state_dict())
    train(replace(options, out=str(tmp_path / "resumed")), quiet=True, callback=interrupt_at(2))
    resumed = train(replace(options, out=str(tmp_path / "resumed")), resume=True, quiet=True)
    a, b = load_weights(straight.weights)[0], load_weights(resumed.weights)[0]
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)
    for wrong in ({"seg_loss": "l2"}, {"schedule": "joint", "job_weights": ""}):  # the joint step has no head
        with pytest.raises(MixtaskError, match="--deep-seg-weight needs --arch film, --seg-loss mask and --sched"):
            check_options(replace(options, **wrong))


def test_ema_weights_are_exported_resume_exactly_and_can_start_on_a_resume(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "straight", steps=4, mix_method=1, ema_decay=0.5, checkpoint_every=1)
    straight = train(options, quiet=True)
    state = load_checkpoint(tmp_path / "straight")
    assert int(state["ema"]["n_averaged"]) == 4
    raw, (averaged, info) = state["model"], load_weights(straight.weights)
    assert info.provenance["ema_decay"] == 0.5
    exported = averaged.state_dict()
    average = {key.removeprefix("module."): value for key, value in state["ema"].items() if key != "n_averaged"}
    assert average.keys() == exported.keys()
    assert all(torch.equal(exported[key], value.float()) for key, value in average.items())
    assert any(not torch.equal(exported[key], value) for key, value in raw.items())  # the average, not the last
    train(replace(options, out=str(tmp_path / "resumed")), quiet=True, callback=interrupt_at(2))
    resumed = train(replace(options, out=str(tmp_path / "resumed")), resume=True, quiet=True)
    for (name, x), y in zip(exported.items(), load_weights(resumed.weights)[0].state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)
    # Turned on at a resume: the average starts from the restored weights, and the checkpoint carries it on.
    from mixtask.training import resume_options

    plain = tmp_path / "plain"
    train(tiny_options(assets, plain, steps=2, mix_method=1), quiet=True)
    assert load_checkpoint(plain)["ema"] is None
    train(resume_options(plain, steps=3, ema_decay=0.9), resume=True, quiet=True)
    assert int(load_checkpoint(plain)["ema"]["n_averaged"]) == 1
    with pytest.raises(MixtaskError, match="--ema-decay"):
        resume_options(plain, ema_decay=1.0)


def test_the_context_backbone_is_frozen_in_training_and_exported_in_the_file(assets, tmp_path):
    from safetensors.torch import save_file

    from mixtask.backbones.efficientnet_lite import EfficientNetLite

    torch.manual_seed(0)
    source = EfficientNetLite()
    save_file(source.state_dict(), str(tmp_path / "lite0.safetensors"))
    # 64 px: a 2x2 context grid (at 1x1 the branch's InstanceNorm leaves the backbone no gradient)
    options = tiny_options(assets, tmp_path / "run", steps=3, size=64, mix_method=1, context=1,
                           context_backbone=str(tmp_path / "lite0.safetensors"))  # fmt: skip
    model, info = load_weights(train(options, quiet=True).weights)
    assert info.config.context_backbone == "efficientnet-lite0"
    assert model.context.project.weight.abs().max() > 0  # it left its zero start
    torch.testing.assert_close(model.context.backbone._blocks[5]._project_conv.weight,
                               source._blocks[5]._project_conv.weight, rtol=0, atol=0)  # fmt: skip
    with pytest.raises(MixtaskError, match="--context-backbone needs --context"):
        check_options(replace(options, context=0))
    fine = replace(options, out=str(tmp_path / "fine"), context_scales=3, init=str(info.path))
    model, info = load_weights(train(fine, quiet=True).weights)
    assert info.config.context_scales == 3 and all(skip.weight.abs().max() > 0 for skip in model.context.skips)
    with pytest.raises(MixtaskError, match="--context-scales 2 or 3 needs --context-backbone"):
        check_options(replace(options, context_scales=2, context_backbone=None))
    with pytest.raises(MixtaskError, match=r"--context-scales must be 1\.\.3"):
        check_options(replace(options, context_scales=4))


def test_a_tuned_backbone_trains_resumes_exactly_and_can_be_turned_on_and_off_at_a_resume(assets, tmp_path):
    from safetensors.torch import save_file

    from mixtask.backbones.efficientnet_lite import EfficientNetLite
    from mixtask.training import resume_options

    torch.manual_seed(0)
    source = EfficientNetLite()
    save_file(source.state_dict(), str(tmp_path / "lite0.safetensors"))
    options = tiny_options(assets, tmp_path / "straight", steps=4, size=64, mix_method=1, context=1,
                           context_backbone=str(tmp_path / "lite0.safetensors"), tune_backbone=True,
                           checkpoint_every=1)  # fmt: skip
    straight = train(options, quiet=True)
    model, info = load_weights(straight.weights)
    assert info.provenance["tune_backbone"] is True
    tuned = {name: value.clone() for name, value in model.context.backbone.named_parameters()}
    assert any(not torch.equal(value, source.get_parameter(name)) for name, value in tuned.items())  # it learnt
    torch.testing.assert_close(model.context.backbone._bn0.running_mean, source._bn0.running_mean)  # eval-mode BN
    train(replace(options, out=str(tmp_path / "resumed")), quiet=True, callback=interrupt_at(2))
    resumed = train(replace(options, out=str(tmp_path / "resumed")), resume=True, quiet=True)
    for (name, x), y in zip(model.state_dict().items(), load_weights(resumed.weights)[0].state_dict().values()):
        torch.testing.assert_close(x, y, rtol=1e-5, atol=1e-6, msg=name)
    # Off, then on again, at a resume: the backbone's Adam group is dropped, then added with fresh moments.
    frozen = load_weights(train(resume_options(tmp_path / "resumed", steps=5, tune_backbone=False), resume=True,
                                quiet=True).weights)[0].context.backbone  # fmt: skip
    for name, value in frozen.named_parameters():
        torch.testing.assert_close(value, tuned[name], rtol=0, atol=0, msg=name)
    state = load_checkpoint(tmp_path / "resumed")
    assert len(state["optimizer"]["param_groups"]) == 1
    train(resume_options(tmp_path / "resumed", steps=6, tune_backbone=True), resume=True, quiet=True)
    groups = load_checkpoint(tmp_path / "resumed")["optimizer"]["param_groups"]
    assert [group.get("name") for group in groups] == [None, "backbone"]
    with pytest.raises(MixtaskError, match="--tune-backbone needs --context-backbone"):
        check_options(replace(options, context_backbone=None, context_scales=1))


def test_the_gated_fill_head_warm_starts_from_the_gated_head_and_trains(assets, tmp_path):
    gated = train(tiny_options(assets, tmp_path / "gated", steps=2, mix_method=1), quiet=True).weights
    options = tiny_options(assets, tmp_path / "fill", steps=2, mix_method=1, head="gated-fill", init=str(gated),
                           seg_loss="mask", adversarial_weight=0)  # fmt: skip
    model, info = load_weights(train(options, quiet=True).weights)
    assert info.config.head == "gated-fill"
    assert not torch.equal(model.output.conv.bias, load_weights(gated)[0].output.conv.bias)  # it trained


def test_the_context_branch_trains_and_is_exported_with_its_config(assets, tmp_path):
    options = tiny_options(assets, tmp_path / "run", steps=3, mix_method=1, context=1)
    model, info = load_weights(train(options, quiet=True).weights)
    assert info.config.context == 1 and model.context is not None
    assert model.context.out.weight.abs().max() > 0  # it left its zero start
    with pytest.raises(MixtaskError, match="--context needs --arch film"):
        check_options(replace(options, arch="ccam"))
    with pytest.raises(MixtaskError, match=r"--context must be 0\.\.8"):
        check_options(replace(options, context=9))
