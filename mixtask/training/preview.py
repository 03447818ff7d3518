"""Preview sheets: one fixed sample per job, input / output / target."""

from __future__ import annotations

from pathlib import Path

import torch

from mixtask.training import distributed as ddp
from mixtask.training.batches import Batch, add_synthesized_target, make_batch, teacher_rendering, to_device
from mixtask.training.plan import Job
from mixtask.training.state import Run

PREVIEW_SEED = 20240611


def preview_rows(run: Run) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(job, input, output, target) of one fixed sample per job of the current stage."""
    from mixtask.data import SampleMaker

    sampler = SampleMaker(run.dataset, run.options.size, seed=PREVIEW_SEED, styled=run.styled)
    rows = []
    for job in run.plan.jobs(run.plan.stage_at(run.step)):
        generator = torch.Generator().manual_seed(PREVIEW_SEED)
        batch = add_synthesized_target(run, job, to_device(make_batch(run, job, sampler, generator, 1), run))
        with torch.no_grad(), ddp.autocast(run.device, run.dtype):
            output = run.net(batch.input, batch.vector).float()
        rows.append((job.name, batch.input[0], output[0], preview_target(run, job, batch)))
    return rows


def preview_target(run: Run, job: Job, batch: Batch) -> torch.Tensor | None:
    """The pixel target; for a lone style task, its style image (it has no pixel target)."""
    if batch.target is not None:
        return batch.target[0]
    if job.rule is not None and job.rule.kinds == ("style",):
        if batch.styled is not None:  # --style-loss teacher: its rendering is the target
            return teacher_rendering(run, batch, job.rule.names[0])[0]
        return run.style_images[job.rule.names[0]][0]
    if job.rule is not None and not job.rule.styles:
        return (batch.clean * batch.mask)[0] if job.rule.needs_mask else batch.clean[0]
    return None


def write_preview(run: Run) -> Path:
    """RUN_DIR/previews/step-NNNNNN.png: a row per job, columns input / output / target."""
    from mixtask.fileio import atomic_path
    from mixtask.training.synth import contact_sheet

    sheet = contact_sheet(preview_rows(run), run.options.size, ("input", "output", "target"))
    path = Path(run.options.out) / "previews" / f"step-{run.step:06d}.png"
    with atomic_path(path) as temp:
        sheet.save(temp, format="PNG")
    return path
