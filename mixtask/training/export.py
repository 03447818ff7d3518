"""Exporting self-describing weights with their provenance (data, command, hardware, commit)."""

from __future__ import annotations

import datetime
import subprocess
from dataclasses import asdict
from pathlib import Path

import torch

from mixtask.inference.devices import cpu_model
from mixtask.tasks import TaskSet
from mixtask.training.options import stage1_steps
from mixtask.training.progress import LOG_NAME, read_sessions
from mixtask.training.setup import loss_weights
from mixtask.training.state import Run

WEIGHTS_NAME = "weights.safetensors"
STAGE1_NAME = "stage1.safetensors"


def describe_hardware(device: str, dtype: torch.dtype | None, world_size: int) -> str:
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = f"{cpu_model()} ({torch.get_num_threads()} threads)"
    precision = "fp32" if dtype is None else str(dtype).removeprefix("torch.")
    return f"{world_size} x {name}, {precision}, torch {torch.__version__}"


def git_commit() -> str:
    """The source's git commit (with `-dirty` for local changes), or `unknown`."""
    here = Path(__file__).resolve().parent
    try:
        run = lambda *args: subprocess.run(  # noqa: E731
            ["git", *args], cwd=here, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        return run("rev-parse", "HEAD") + ("-dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(run: Run, stage: int) -> dict:
    options = run.options
    sessions = read_sessions(Path(options.out) / LOG_NAME)
    # the machines that trained these steps (a snapshot is often exported on another one)
    trained_on = [session["hardware"] for session in sessions if "hardware" in session and session["step"] < run.step]
    hardware = " + ".join(dict.fromkeys(trained_on)) or describe_hardware(run.device, run.dtype, run.ctx.world_size)
    return {
        "data": str(Path(options.data).resolve()),
        "command": options.command,
        "steps": run.step,
        "size": options.size,
        "batch": options.batch * run.ctx.world_size,
        "seed": options.seed,
        "mix_method": options.mix_method,
        "schedule": options.schedule,
        "weighting": options.weighting,
        "stage": stage,
        "stage1_steps": stage1_steps(options) if options.mix_method == 3 else None,
        "styles": {spec.name: str(Path(spec.image).resolve()) for spec in options.styles},
        "loss_weights": asdict(loss_weights(options)),
        "style_loss": options.style_loss,
        "seg_loss": options.seg_loss,
        "mask_weight": options.mask_weight,
        "seg_l1_weight": options.seg_l1_weight,
        "mix_l1_weight": options.mix_l1_weight,
        "composites": options.composites,
        "seg_photos": options.seg_photos,
        "partial_strengths": options.partial_strengths,
        "deep_seg_weight": options.deep_seg_weight,
        "ema_decay": options.ema_decay,
        "damage_weight": options.damage_weight,
        "keep_weight": options.keep_weight,
        "keep_kinds": options.keep_kinds,
        "keep_partial": options.keep_partial,
        "restoration_l1": options.restoration_l1,
        "style_texture": options.style_texture,
        "tune_backbone": options.tune_backbone,
        "style_teachers": run.style_teachers,
        "init": options.init,
        "hardware": hardware,
        "wall_seconds": round(run.wall_seconds, 1),
        "sessions": sessions,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }


def export(run: Run, path: Path, stage: int) -> Path:
    """Self-describing safetensors of the current network, or of its moving average with --ema-decay (task names,
    mixes, provenance)."""
    from mixtask.weights import save_weights

    task_set = TaskSet(run.plan.task_set.tasks, run.plan.trained_mixes(run.step))
    network = run.net if run.ema is None else run.ema.module
    return save_weights(path, network, task_set, provenance(run, stage))
