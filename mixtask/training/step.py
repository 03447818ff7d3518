"""One training step: draw a job, its batch, its losses (Table 1), the optimiser steps."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from mixtask import distributed as ddp
from mixtask.mixing import KIND_ROLES
from mixtask.training.batches import Batch, add_synthesized_target, make_batch, to_device
from mixtask.training.plan import Job
from mixtask.training.state import Run


def member_loss(run: Run, name: str, kind: str, output: torch.Tensor, batch: Batch):
    """One member's own loss (Table 1) -> (terms, discriminator inputs or None)."""
    loss = KIND_ROLES[kind].loss
    if loss == "perceptual":
        terms = run.perceptual(output, batch.clean, run.style_grams[name])
        return {f"{name}.{key}": value for key, value in terms.items() if key != "total"} | {name: terms["total"]}, None
    from mixtask.losses import adversarial_losses, l2

    target = batch.clean * batch.mask if KIND_ROLES[kind].masks_target else batch.clean
    terms = {name: l2(output, target)}
    if loss != "l2+adversarial" or run.disc is None:
        return terms, None
    generator_loss, _ = adversarial_losses(run.disc, output, target, condition=batch.input)
    terms[f"{name}.adversarial"] = generator_loss
    terms[name] = terms[name] + run.options.adversarial_weight * generator_loss
    return terms, (output.detach(), target, batch.input)


def job_losses(run: Run, job: Job, output: torch.Tensor, batch: Batch):
    """All loss terms of a job, with `total`; plus the discriminator's inputs for a seg job."""
    from mixtask.losses import l2

    if job.source != "members":
        return {"total": l2(output, batch.target)}, None
    terms, disc_inputs = {}, None
    for name, kind in zip(job.rule.names, job.rule.kinds):
        member_terms, member_disc = member_loss(run, name, kind, output, batch)
        terms |= member_terms
        disc_inputs = disc_inputs or member_disc
    terms["total"] = sum(terms[name] for name in job.rule.names)
    return terms, disc_inputs


def discriminator_step(run: Run, fake: torch.Tensor, real: torch.Tensor, condition: torch.Tensor) -> float:
    """One PatchGAN update on (real, fake) pairs; its gradients are averaged over ranks by hand."""
    from mixtask.losses import adversarial_losses

    run.disc_optimizer.zero_grad(set_to_none=True)
    with ddp.autocast(run.device, run.dtype):
        _, disc_loss = adversarial_losses(run.disc, fake, real, condition=condition)
    run.scaler.scale(disc_loss).backward()
    ddp.average_gradients(run.disc, run.ctx)
    run.scaler.step(run.disc_optimizer)
    return float(disc_loss.detach())


@dataclass(frozen=True)
class StepResult:
    job: str
    losses: dict[str, float]
    seconds: float
    data_seconds: float


def draw_job(run: Run) -> Job:
    """One job of the current stage, uniformly (the same draw on every rank)."""
    jobs = run.plan.jobs(run.plan.stage_at(run.step))
    index = int(torch.randint(len(jobs), (1,), generator=run.generators["jobs"]))
    return jobs[index]


def prepare(run: Run, job: Job) -> Batch:
    batch = make_batch(run, job, run.sampler, run.generators[_generator_name(job)], run.options.batch)
    return to_device(batch, run)


def _generator_name(job: Job) -> str:
    return "folder" if job.source == "folder" else "corrupt"


def optimize(run: Run, job: Job, batch: Batch) -> dict[str, float]:
    """Forward, loss, backward and Adam step for the network, then the discriminator's turn."""
    run.model.train()
    with ddp.autocast(run.device, run.dtype):
        batch = add_synthesized_target(run, job, batch)
        output = run.model(batch.input, batch.vector)
        terms, disc_inputs = job_losses(run, job, output.float(), batch)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(terms["total"] / loss_scale(run, job.name, terms["total"])).backward()
    run.scaler.step(run.optimizer)
    losses = {key: float(value.detach()) for key, value in terms.items()}
    if disc_inputs is not None:
        losses["discriminator"] = discriminator_step(run, *disc_inputs)
    run.scaler.update()
    return losses


def loss_scale(run: Run, job_name: str, total: torch.Tensor) -> float:
    """Running mean of a job's loss, to divide it by.

    Style losses start near 50 while L2 losses fall to 1e-3: summed raw under one shared Adam,
    the style gradients would set every weight's step size and starve the restoration tasks.
    Normalised, each job pulls on the shared weights with comparable force.
    """
    if run.options.balance == "none":
        return 1.0
    value = float(total.detach())
    previous = run.loss_scales.get(job_name, value)
    run.loss_scales[job_name] = 0.99 * previous + 0.01 * value
    return max(run.loss_scales[job_name], 1e-8)


def train_step(run: Run) -> StepResult:
    start = time.perf_counter()
    job = draw_job(run)
    batch = prepare(run, job)
    data_seconds = time.perf_counter() - start
    losses = optimize(run, job, batch)
    run.step += 1
    return StepResult(job.name, losses, time.perf_counter() - start, data_seconds)
