"""One training step: draw a job, its batch, its losses (Table 1), the optimiser steps.

`--schedule joint` instead trains every job of the stage in each step, their losses combined by
`run.weighting` (`mixtask.training.weighting`) into one backward pass.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from mixtask.mixing import KIND_ROLES
from mixtask.nets.film import recording_bottlenecks, recording_gates
from mixtask.training import distributed as ddp
from mixtask.training.batches import Batch, add_synthesized_target, make_batch, teacher_rendering, to_device
from mixtask.training.options import keep_kinds
from mixtask.training.plan import Job
from mixtask.training.state import Run


def member_loss(run: Run, name: str, kind: str, output: torch.Tensor, batch: Batch, gate: torch.Tensor | None):
    """One member's own loss (Table 1, or our recipe's: `--style-loss`, `--seg-loss`) -> (terms, discriminator
    inputs or None). `gate`: the gated head's gate logit when the seg mask is supervised directly."""
    loss = KIND_ROLES[kind].loss
    if loss == "perceptual" and run.options.style_loss == "teacher":
        from mixtask.training.losses import l1

        rendering = target_image(run, name, kind, batch)
        terms = {name: l1(output, rendering)}
        if run.texture is not None:
            terms[f"{name}.texture"] = run.texture(output, rendering)
            terms[name] = terms[name] + run.options.style_texture * terms[f"{name}.texture"]
        return terms, None
    if loss == "perceptual":
        terms = run.perceptual(output, batch.clean, run.style_grams[name])
        return {f"{name}.{key}": value for key, value in terms.items() if key != "total"} | {name: terms["total"]}, None
    from mixtask.training.losses import adversarial_losses, l1, l2, mask_losses

    target = target_image(run, name, kind, batch)
    terms = {name: l2(output, target)}
    if gate is not None and KIND_ROLES[kind].masks_target:
        mask_terms = mask_losses(gate, batch.mask)
        terms |= {f"{name}.{key}": value for key, value in mask_terms.items()}
        # L1 on the image too: it pulls the background to exact black, where the L2's pull fades near zero
        terms[f"{name}.l1"] = l1(output, target)
        mask_term = run.options.mask_weight * sum(mask_terms.values())
        terms[name] = terms[name] + mask_term + run.options.seg_l1_weight * terms[f"{name}.l1"]
    if loss != "l2+adversarial" or run.disc is None:
        return terms, None
    generator_loss, _ = adversarial_losses(run.disc, output, target, condition=batch.input)
    terms[f"{name}.adversarial"] = generator_loss
    terms[name] = terms[name] + run.options.adversarial_weight * generator_loss
    return terms, (output.detach(), target, batch.input)


def add_deep_seg(run: Run, terms: dict, name: str, bottleneck: torch.Tensor, mask: torch.Tensor) -> None:
    """--deep-seg-weight: BCE + Dice of the training-only head's logit (1/4 resolution) against the mask
    averaged down to it, added to the job's loss."""
    from mixtask.training.losses import mask_losses

    logit = run.deep_seg_head(bottleneck.float())
    deep = mask_losses(logit, F.adaptive_avg_pool2d(mask.float(), logit.shape[-2:]))
    terms[f"{name}.deep"] = sum(deep.values())
    terms[name] = terms[name] + run.options.deep_seg_weight * terms[f"{name}.deep"]
    terms["total"] = terms["total"] + run.options.deep_seg_weight * terms[f"{name}.deep"]


def supervises_gate(run: Run, job: Job, batch: Batch) -> bool:
    """Whether the job's gate logit is trained directly on this batch: the single seg task's against the mask
    (--seg-loss mask), a single restoration's against its undamaged pixels (--keep-weight; below full strength
    only with --keep-partial). In a mix the gate is neither: scratches inside the object are generated, a styled
    object is not passed through."""
    rule = job.rule
    if job.source != "members" or rule.is_mix:
        return False
    if batch.strengths is not None and not (rule.corruptions and run.options.keep_partial):
        return False
    if rule.needs_mask:
        return run.options.seg_loss == "mask"
    return bool(rule.corruptions) and run.options.keep_weight > 0 and rule.kinds[0] in keep_kinds(run.options)


def damaged_pixels(batch: Batch) -> torch.Tensor:
    """(B, 1, H, W) bool: where a restoration's input differs from the clean image (a restoration task alone:
    nothing but its holes or scratches changed them)."""
    return (batch.input.float() - batch.clean.float()).abs().amax(dim=1, keepdim=True) > 0


def damaged_l2(output: torch.Tensor, batch: Batch, damaged: torch.Tensor) -> torch.Tensor:
    """The L2 over the `damaged` pixels alone (`--damage-weight`): holes and scratches cover a few per cent of a
    crop, so the whole-image L2 is mostly the easy pass-through."""
    squared = (output.float() - batch.clean.float()).square() * damaged
    return squared.sum() / (damaged.sum() * output.shape[1]).clamp_min(1)


def takes_partial_strengths(run: Run, job: Job) -> bool:
    """Single tasks whose full-strength target a batch holds: restorations, seg and, under --style-loss teacher,
    styles (the perceptual loss has no target image to blend towards)."""
    if job.source != "members" or job.rule.is_mix:
        return False
    return not job.rule.styles or run.options.style_loss == "teacher"


def draw_partial_strengths(run: Run, job: Job, batch: Batch) -> Batch:
    """--partial-strengths: with that probability a single task's batch is trained below full strength, each
    sample at its own strength s drawn uniformly from [0, 1) (its task vector scaled by s). Without it the
    network only ever sees strengths 0 and 1, and a sweep between them may stall or overshoot."""
    share = run.options.partial_strengths
    if share == 0 or not takes_partial_strengths(run, job):
        return batch
    generator = run.generators["jobs"]
    if float(torch.rand((), generator=generator)) >= share:
        return batch
    strengths = torch.rand(len(batch.input), generator=generator).to(batch.vector.device)
    return replace(batch, vector=batch.vector * strengths[:, None], strengths=strengths)


def target_image(run: Run, name: str, kind: str, batch: Batch) -> torch.Tensor:
    """Task `name`'s target image at strength 1: the clean image, the object alone, or (a style under
    --style-loss teacher) the teacher's rendering."""
    if KIND_ROLES[kind].transforms_target:
        return teacher_rendering(run, batch, name)
    return batch.clean * batch.mask if KIND_ROLES[kind].masks_target else batch.clean


def held_target_losses(run: Run, job: Job, output: torch.Tensor, batch: Batch) -> dict:
    """L2 to a target the batch holds (recon, Method 3's synthesised mixes, --synth pairs); a Method-3 mix with seg
    adds --mix-l1-weight x L1: the L2's pull fades near its black background, whose faint traces the read-out
    counts as object."""
    from mixtask.training.losses import l1, l2

    terms = {"total": l2(output, batch.target)}
    if run.options.mix_l1_weight and job.source == "synthesized" and job.rule.needs_mask:
        terms[f"{job.name}.l1"] = l1(output, batch.target)
        terms["total"] = terms["total"] + run.options.mix_l1_weight * terms[f"{job.name}.l1"]
    return terms


def partial_strength_losses(
    run: Run, job: Job, output: torch.Tensor, batch: Batch, gate: torch.Tensor | None = None
) -> dict:
    """A batch below full strength: L2 + L1 to input + s (target - input), the blend a strength slider should show
    between identity (s = 0) and the task (s = 1). With a restoration's `gate` (`--keep-partial`) also the gate's
    BCE towards that blend's share of the input: 1 on undamaged pixels, 1 - s on damaged ones. Why: trained at
    full strength alone, the gate shuts on the damaged pixels well before s = 1 and the top of the sweep goes
    flat (inpaint at 0.8 scored above 1.0)."""
    from mixtask.training.losses import keep_loss, l1, l2

    inputs = batch.input.float()
    strengths = batch.strengths.view(-1, 1, 1, 1)
    (name,), (kind,) = job.rule.names, job.rule.kinds
    blend = inputs + strengths * (target_image(run, name, kind, batch).float() - inputs)
    terms = {f"{job.name}.partial": l2(output, blend) + l1(output, blend)}
    total = terms[f"{job.name}.partial"]
    if gate is not None:
        terms[f"{job.name}.partial.keep"] = keep_loss(gate, ~damaged_pixels(batch), 1 - strengths)
        total = total + run.options.keep_weight * terms[f"{job.name}.partial.keep"]
    return terms | {"total": total}


def job_losses(run: Run, job: Job, output: torch.Tensor, batch: Batch, gate: torch.Tensor | None = None):
    """All loss terms of a job, with `total`; plus the discriminator's inputs for a seg job."""

    if batch.strengths is not None:
        return partial_strength_losses(run, job, output, batch, gate), None
    if job.source != "members":
        return held_target_losses(run, job, output, batch), None
    terms, disc_inputs = {}, None
    for name, kind in zip(job.rule.names, job.rule.kinds):
        member_terms, member_disc = member_loss(run, name, kind, output, batch, gate)
        terms |= member_terms
        disc_inputs = disc_inputs or member_disc
    if job.rule.corruptions and not job.rule.is_mix:  # a restoration alone
        (name,) = job.rule.names
        damaged = damaged_pixels(batch) if run.options.damage_weight or gate is not None else None
        if run.options.restoration_l1:
            from mixtask.training.losses import l1

            terms[f"{name}.l1"] = l1(output, batch.clean)
            terms[name] = terms[name] + run.options.restoration_l1 * terms[f"{name}.l1"]
        if run.options.damage_weight:
            terms[f"{name}.damaged"] = damaged_l2(output, batch, damaged)
            terms[name] = terms[name] + run.options.damage_weight * terms[f"{name}.damaged"]
        if gate is not None:
            from mixtask.training.losses import keep_loss

            terms[f"{name}.keep"] = keep_loss(gate, ~damaged)
            terms[name] = terms[name] + run.options.keep_weight * terms[f"{name}.keep"]
    terms["total"] = sum(terms[name] for name in job.rule.names)
    return terms, disc_inputs


def discriminator_step(run: Run, fake: torch.Tensor, real: torch.Tensor, condition: torch.Tensor) -> float:
    """One PatchGAN update on (real, fake) pairs; its gradients are averaged over ranks by hand."""
    from mixtask.training.losses import adversarial_losses

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
    weights: dict[str, float] | None = None  # schedule joint: each job's weight in the combined loss


def draw_job(run: Run) -> Job:
    """One job of the current stage, uniformly or by --job-weights (the same draw on every rank)."""
    jobs = run.plan.jobs(run.plan.stage_at(run.step))
    weights = run.plan.draw_weights(jobs)
    if weights is None:
        index = int(torch.randint(len(jobs), (1,), generator=run.generators["jobs"]))
    else:
        index = int(torch.multinomial(torch.tensor(weights), 1, generator=run.generators["jobs"]))
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
        with recording_gates() as gates, recording_bottlenecks() as bottlenecks:
            output = run.model(batch.input, batch.vector)
        gate = gates[-1] if gates and supervises_gate(run, job, batch) else None
        terms, disc_inputs = job_losses(run, job, output.float(), batch, gate)
        if gate is not None and run.deep_seg_head is not None and job.rule.needs_mask and bottlenecks:
            add_deep_seg(run, terms, job.name, bottlenecks[-1], batch.mask)
    run.optimizer.zero_grad(set_to_none=True)
    # Below full strength a job's loss has another size: it keeps a running mean of its own
    scale_key = job.name if batch.strengths is None else f"{job.name}.partial"
    run.scaler.scale(terms["total"] / loss_scale(run, scale_key, terms["total"])).backward()
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
    if run.options.schedule == "joint":
        return joint_step(run)
    start = time.perf_counter()
    job = draw_job(run)
    batch = draw_partial_strengths(run, job, prepare(run, job))
    data_seconds = time.perf_counter() - start
    losses = optimize(run, job, batch)
    update_ema(run)
    run.step += 1
    return StepResult(job.name, losses, time.perf_counter() - start, data_seconds)


def update_ema(run: Run) -> None:
    if run.ema is not None:
        run.ema.update_parameters(run.net)


def joint_step(run: Run) -> StepResult:
    """Schedule joint: every job of the stage, each on its own `--batch` images, one weighted backward."""
    start = time.perf_counter()
    jobs = run.plan.jobs(run.plan.stage_at(run.step))
    batches = [prepare(run, job) for job in jobs]
    data_seconds = time.perf_counter() - start
    losses = optimize_joint(run, jobs, batches)
    update_ema(run)
    run.step += 1
    return StepResult("joint", losses, time.perf_counter() - start, data_seconds, run.weighting.weights())


def joint_losses(run: Run, jobs: tuple[Job, ...], batches: list[Batch]) -> list:
    """(terms, discriminator inputs) per job, from one forward over all batches (each sample has its job's vector)."""
    batches = [add_synthesized_target(run, job, batch) for job, batch in zip(jobs, batches)]
    inputs, vectors = torch.cat([batch.input for batch in batches]), torch.cat([batch.vector for batch in batches])
    sizes = [len(batch.input) for batch in batches]
    with recording_gates() as recorded:
        outputs = run.model(inputs, vectors).float().split(sizes)
    gates = recorded[-1].split(sizes) if recorded else [None] * len(jobs)
    return [
        job_losses(run, job, output, batch, gate if supervises_gate(run, job, batch) else None)
        for job, output, batch, gate in zip(jobs, outputs, batches, gates)
    ]


def optimize_joint(run: Run, jobs: tuple[Job, ...], batches: list[Batch]) -> dict[str, float]:
    """Every job's loss, combined by `run.weighting`; one backward and Adam step, then the discriminator's turn."""
    run.model.train()
    with ddp.autocast(run.device, run.dtype):
        results = joint_losses(run, jobs, batches)
    totals = {job.name: terms["total"] for job, (terms, _) in zip(jobs, results)}
    scales = {name: loss_scale(run, name, total) for name, total in totals.items()}
    run.optimizer.zero_grad(set_to_none=True)
    objective = run.weighting.combine(totals, run.step, scales)
    run.scaler.scale(objective).backward()
    ddp.average_gradients(run.weighting, run.ctx)  # learnable weights sit outside DDP
    run.scaler.step(run.optimizer)
    run.weighting.after_step()
    losses = joint_log(jobs, results) | {"total": float(objective.detach())}
    disc_inputs = [inputs for _, inputs in results if inputs is not None]
    if disc_inputs:
        losses["discriminator"] = discriminator_step(run, *(torch.cat(part) for part in zip(*disc_inputs)))
    run.scaler.update()
    return losses


def joint_log(jobs: tuple[Job, ...], results: list) -> dict[str, float]:
    """Each job's loss under its name, its other terms as JOB/TERM (e.g. `style1/style1.tv`)."""
    losses = {}
    for job, (terms, _) in zip(jobs, results):
        losses[job.name] = float(terms["total"].detach())
        parts = {key: value for key, value in terms.items() if key not in ("total", job.name)}
        losses |= {f"{job.name}/{key}": float(value.detach()) for key, value in parts.items()}
    return losses
