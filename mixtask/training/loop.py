"""The training loop: open (or resume) a run, step until done or stopped, checkpoint, export."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from mixtask.errors import MixtaskError
from mixtask.training import distributed as ddp
from mixtask.training.checkpoint import checkpoint_path, load_checkpoint
from mixtask.training.checkpointing import restore, write_checkpoint
from mixtask.training.console import warn
from mixtask.training.export import WEIGHTS_NAME, describe_hardware, export
from mixtask.training.options import TrainOptions, default_command, resume_options, stage1_steps
from mixtask.training.preview import write_preview
from mixtask.training.progress import LOG_NAME, Progress, RunLog, step_record
from mixtask.training.setup import setup_run
from mixtask.training.signals import StopFlag, stop_on_signals
from mixtask.training.stages import enter_stage2
from mixtask.training.state import Run
from mixtask.training.step import StepResult, train_step


@dataclass(frozen=True)
class TrainResult:
    is_main: bool  # rank 0 (the one that reports)
    run_dir: Path
    steps: int
    weights: Path | None  # None when stopped early
    interrupted: bool
    seconds_per_step: float
    data_fraction: float


def due(step: int, every: int) -> bool:
    return every > 0 and step % every == 0


def after_step(run: Run, result: StepResult, log: RunLog) -> None:
    if due(run.step, run.options.log_every):
        log.write(step_record(run, result))
    if run.ctx.is_main and due(run.step, run.options.preview_every):
        write_preview(run)
    if due(run.step, run.options.checkpoint_every) and run.step < run.plan.steps:
        write_checkpoint(run)


def loop(run: Run, log: RunLog, flag: StopFlag, progress: Progress, callback: Callable | None) -> tuple[bool, list]:
    """Steps until done or stopped; returns (interrupted, step results of this session)."""
    results = []
    enter_stage2(run)
    while run.step < run.plan.steps:
        start = time.perf_counter()
        result = train_step(run)
        run.wall_seconds += time.perf_counter() - start
        results.append(result)
        enter_stage2(run)
        progress.update(run, result)
        after_step(run, result, log)
        if callback is not None:
            callback(run.step)
        if ddp.any_rank(flag.signal is not None, run.ctx):
            return True, results
    return False, results


def open_run(options: TrainOptions, resume: bool, ctx: ddp.DistContext) -> tuple[Run, RunLog]:
    run_dir = Path(options.out)
    if not resume and checkpoint_path(run_dir).exists():
        raise MixtaskError(f"{run_dir} already holds a run; continue it with --resume {run_dir}, or pick another --out")
    if not resume:
        options = replace(options, stage1_steps=stage1_steps(options))  # fixed now: --steps may grow on resume
    run = setup_run(options, ctx, restoring=resume)
    log = RunLog(run_dir / LOG_NAME, ctx.is_main)
    if resume:
        restore(run, load_checkpoint(run_dir))
        log.truncate_after(run.step)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    log.write({"event": "resume" if resume else "start", "step": run.step, "options": options.to_json(),
               "hardware": describe_hardware(run.device, run.dtype, ctx.world_size),
               "command": default_command()})  # fmt: skip
    return run, log


def finish(run: Run, log: RunLog, interrupted: bool) -> Path | None:
    """Checkpoint; when the run is complete, export the weights too."""
    write_checkpoint(run)
    if interrupted or not run.ctx.is_main:
        log.write({"event": "stopped", "step": run.step})
        return None
    path = export(run, Path(run.options.out) / WEIGHTS_NAME, stage=run.plan.stage_at(run.step - 1))
    log.write({"event": "done", "step": run.step, "weights": str(path)})
    if run.options.evaluate:
        evaluate_weights(run.options, path, log)
    return path


def evaluate_weights(options: TrainOptions, weights: Path, log: RunLog) -> None:
    """Optional held-out scores of the exported weights (`mixtask.evaluation.run`); never fails the run."""
    try:
        from mixtask.evaluation.run import EvalOptions, run_evaluation, write_json
    except ImportError as error:
        warn(f"evaluation skipped: {error}")
        return
    styles = tuple((spec.name, spec.image) for spec in options.styles)
    vgg = None if options.vgg is None else Path(options.vgg)
    eval_options = EvalOptions(Path(options.data), weights, size=options.size, vgg=vgg, styles=styles)
    try:
        result = run_evaluation(eval_options)
    except MixtaskError as error:
        warn(f"evaluation skipped: {error}")
        return
    path = Path(options.out) / "eval.json"
    write_json(result, path)
    log.write({"event": "evaluated", "step": options.steps, "eval": str(path)})


def summarize(results: list[StepResult]) -> tuple[float, float]:
    """(mean seconds per step, fraction of it spent preparing data), skipping the warm-up step."""
    timed = results[1:] or results
    total = sum(result.seconds for result in timed)
    if not timed or total == 0:
        return 0.0, 0.0
    return total / len(timed), sum(result.data_seconds for result in timed) / total


def train(options: TrainOptions, resume: bool = False, quiet: bool = False, callback: Callable | None = None):
    """Run (or continue) training; returns a TrainResult. `callback(step)` is called after each step."""
    ctx = ddp.setup(options.device)
    try:
        return run_training(options, resume, quiet, callback, ctx)
    finally:
        ddp.teardown(ctx)  # after run_training's frame, and with it the run, is gone


def run_training(options: TrainOptions, resume: bool, quiet: bool, callback: Callable | None, ctx) -> TrainResult:
    run, log = open_run(options, resume, ctx)
    with stop_on_signals() as flag, Progress(run, quiet) as progress:
        interrupted, results = loop(run, log, flag, progress, callback)
    weights = finish(run, log, interrupted)
    per_step, data_fraction = summarize(results)
    return TrainResult(ctx.is_main, Path(options.out), run.step, weights, interrupted, per_step, data_fraction)


def export_snapshot(run_dir: str | Path, path: str | Path) -> Path:
    """The weights of a run's last checkpoint, while the run goes on (to try, evaluate or ship)."""
    options = replace(resume_options(run_dir), device="cpu")
    run = setup_run(options, ddp.DistContext(), restoring=True)
    restore(run, load_checkpoint(run_dir))
    return export(run, Path(path), stage=run.plan.stage_at(max(run.step - 1, 0)))
