"""Checkpoints of a run: every state (RNGs of every rank included), so a resume is bit-for-bit."""

from __future__ import annotations

import torch

from mixtask.training import distributed as ddp
from mixtask.training.checkpoint import capture_rng, restore_rng, save_checkpoint
from mixtask.training.console import warn
from mixtask.training.plan import check_stage_weights
from mixtask.training.setup import BACKBONE_GROUP
from mixtask.training.stages import frozen_copy
from mixtask.training.state import Run


def checkpoint_state(run: Run) -> dict:
    """The run's state; RNG states of every rank (gathered to all, saved by rank 0)."""
    rng = ddp.gather(capture_rng(run.generators, run.sampler), run.ctx)
    return {
        "options": run.options.to_json(),
        "step": run.step,
        "wall_seconds": run.wall_seconds,
        "model": run.net.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "disc": run.disc.state_dict() if run.disc else None,
        "disc_optimizer": run.disc_optimizer.state_dict() if run.disc_optimizer else None,
        "deep_seg_head": run.deep_seg_head.state_dict() if run.deep_seg_head else None,
        "teacher": run.teacher.state_dict() if run.teacher else None,
        "scaler": run.scaler.state_dict(),
        "loss_scales": dict(run.loss_scales),
        "weighting": run.weighting.state_dict() if run.weighting is not None else None,
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "rng": rng,
    }


def set_learning_rate(run: Run, lr: float) -> None:
    """An optimiser's state dict carries its learning rate; a resume with a new --lr overrides it."""
    for optimizer in (run.optimizer, run.disc_optimizer):
        for group in optimizer.param_groups if optimizer is not None else ():
            group["lr"] = lr


def write_checkpoint(run: Run) -> None:
    state = checkpoint_state(run)
    if run.ctx.is_main:
        save_checkpoint(run.options.out, state)
    ddp.barrier(run.ctx)


def restore(run: Run, state: dict) -> None:
    """Put a checkpoint's state back into a freshly built run."""
    run.net.load_state_dict(state["model"])
    if run.deep_seg_head is not None and state.get("deep_seg_head") is not None:
        run.deep_seg_head.load_state_dict(state["deep_seg_head"])
    run.optimizer.load_state_dict(matched_optimizer_state(state["optimizer"], run.optimizer))
    if run.disc is not None and state["disc"] is not None:
        run.disc.load_state_dict(state["disc"])
        run.disc_optimizer.load_state_dict(state["disc_optimizer"])
    set_learning_rate(run, run.options.lr)
    if state["teacher"] is not None:
        run.teacher = frozen_copy(run.net)
        run.teacher.load_state_dict(state["teacher"])
    if state["scaler"]:
        run.scaler.load_state_dict(state["scaler"])
    run.step, run.wall_seconds = state["step"], state["wall_seconds"]
    check_stage_weights(run.plan, run.step)
    run.loss_scales = dict(state.get("loss_scales", {}))
    if run.weighting is not None and state.get("weighting") is not None:
        run.weighting.load_state_dict(state["weighting"])
    if run.ema is not None:
        if state.get("ema") is not None:
            run.ema.load_state_dict(state["ema"])
        else:  # --ema-decay given on this resume: the average starts from the restored weights
            run.ema.module.load_state_dict(run.net.state_dict())
    rng = state["rng"]
    if len(rng) == run.ctx.world_size:
        restore_rng(rng[run.ctx.rank], run.generators, run.sampler)
    else:
        warn(f"checkpoint was written by {len(rng)} process(es), now {run.ctx.world_size}: data streams restart")


def matched_optimizer_state(saved: dict, optimizer: torch.optim.Optimizer) -> dict:
    """The saved optimiser state fitted to this run's groups: a resume that turns --tune-backbone on adds the
    backbone's group (fresh moments), one that turns it off drops it (the group is always the last)."""
    tuned_then = any(group.get("name") == BACKBONE_GROUP for group in saved["param_groups"])
    tuned_now = any(group.get("name") == BACKBONE_GROUP for group in optimizer.param_groups)
    if tuned_then == tuned_now:
        return saved
    groups, state = list(saved["param_groups"]), dict(saved["state"])
    if tuned_then:
        for index in groups.pop()["params"]:
            state.pop(index, None)
    else:
        first = 1 + max((index for group in groups for index in group["params"]), default=-1)
        added = {key: value for key, value in optimizer.param_groups[-1].items() if key != "params"}
        groups.append(added | {"params": list(range(first, first + len(optimizer.param_groups[-1]["params"])))})
    return {"state": state, "param_groups": groups}
