"""Mini-batches: a job's input, task vectors and targets, moved to the device."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from mixtask import distributed as ddp
from mixtask.mixing import MixRule, corrupt_input, make_stylizer, render_target
from mixtask.training.plan import Job
from mixtask.training.state import Run


@dataclass
class Batch:
    """One mini-batch: network input, task vectors, the clean images, mask and pixel target."""

    input: torch.Tensor
    vector: torch.Tensor
    clean: torch.Tensor
    mask: torch.Tensor | None = None
    target: torch.Tensor | None = None


def draw_clean(sampler, rule: MixRule | None, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clean images, plus object masks when seg is a member."""
    if rule is not None and rule.needs_mask:
        return sampler.segmentation(batch)
    return sampler.clean(batch), None


def make_batch(run: Run, job: Job, sampler, generator: torch.Generator, batch: int) -> Batch:
    """Input, vector and targets of one job (the data-preparation part of a step)."""
    if job.source == "folder":
        inputs, targets = run.folder.sample(job.rule.label, batch, generator)
        return Batch(inputs, _vectors(job, batch), targets, None, targets)
    clean, mask = draw_clean(sampler, job.rule, batch)
    inputs = clean if job.rule is None else corrupt_input(job.rule, clean, run.corruptions, generator)
    target = clean if job.source == "recon" else None
    return Batch(inputs, _vectors(job, batch), clean, mask, target)


def _vectors(job: Job, batch: int) -> torch.Tensor:
    return torch.tensor(job.vector, dtype=torch.float32).expand(batch, -1).contiguous()


def to_device(batch: Batch, run: Run) -> Batch:
    memory_format = torch.channels_last if run.channels_last else torch.contiguous_format

    def move(x):
        if x is None or x.dim() != 4:
            return None if x is None else x.to(run.device, non_blocking=True)
        return x.to(run.device, non_blocking=True).contiguous(memory_format=memory_format)

    return Batch(move(batch.input), move(batch.vector), move(batch.clean), move(batch.mask), move(batch.target))


def stylizer(run: Run) -> Callable:
    """`stylize(images, style_name)` with the frozen stage-1 model (sequential mixing)."""
    return make_stylizer(run.teacher, run.plan.task_set, lambda: ddp.autocast(run.device, run.dtype))


def add_synthesized_target(run: Run, job: Job, batch: Batch) -> Batch:
    """Method 3: the stage-1 model renders the mix's target (on the device, after the move)."""
    if job.source != "synthesized":
        return batch
    target = render_target(job.rule, batch.clean, batch.mask, stylizer(run))
    return replace(batch, target=target)
