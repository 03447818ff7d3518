"""The sections of `mixtask eval`: each task kind's rows of numbers, the mixes, the strength sweep.

Which metrics apply is decided by the task's *kind* (registry `SECTIONS`), never by its name.
Every section puts the model's numbers beside context rows: the identity (input as output) and
the classical baselines of `mixtask.evaluation.baselines`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mixtask.evaluation import metrics
from mixtask.evaluation.inputs import Context, StyleReference
from mixtask.tasks import Task

SWEEP_STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
ALPHA_ROW = "model alpha > 0.5"  # seg's IoU from the cut-out's alpha (the flip-averaged gate; its ramp keeps 0.5)
BLENDED_ROW = "model, blended (apply)"  # a restoration as `apply` finishes it: `blending.restore`
GIVEN_MASK_ROW = "model given the mask (apply --mask)"  # inpaint told where the holes are, as Telea is
MIX_STYLE_NOTE = "mix targets: their style part is rendered by the evaluated model itself (standing in for stage 1)"
MIX_TEACHER_NOTE = "mix targets: their style part is rendered by the Magenta style teacher"


@dataclass
class Group:
    """One block of results: a task (or mix) on one kind of sample, several methods as rows."""

    name: str
    kind: str
    source: str
    samples: int
    rows: dict[str, dict[str, float]]
    baselines: list[str] = field(default_factory=list)  # rows that are classical baselines
    best_baseline: str | None = None  # the baseline with the highest PSNR


# ----------------------------------------------------------------------------- metric bundles


def _means(per_image: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: round(float(values.double().mean()), 6) for name, values in per_image.items()}


def pixel_metrics(output: torch.Tensor, target: torch.Tensor, damaged: torch.Tensor | None = None):
    """PSNR, SSIM and ImageNet-space MSE against the target (+ PSNR on the damaged pixels)."""
    values = {
        "mse": metrics.mse(output, target),
        "psnr": metrics.psnr(output, target),
        "ssim": metrics.ssim(output, target),
        "mse_imagenet": metrics.imagenet_mse(output, target),
    }
    if damaged is not None:
        values["psnr_damaged"] = metrics.psnr(output, target, damaged)
    return _means(values)


def seg_metrics(output: torch.Tensor, target: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    return {**pixel_metrics(output, target), **_means({"iou": metrics.iou(metrics.foreground(output), truth)})}


def style_metrics(ctx: Context, reference: StyleReference, output: torch.Tensor, content: torch.Tensor):
    """Style and content distances (VGG) and the Fréchet distance to the style's crops (EffNet)."""
    values = _means({"layout_correlation": metrics.layout_correlation(output, content)})
    vgg, effnet = ctx.backbones.vgg, ctx.backbones.effnet
    if vgg is not None and reference.grams is not None:
        features = ctx.features(vgg, output)
        content_features = ctx.features(vgg, content, layers=("relu3_3",))["relu3_3"]
        per_image = {
            "style_distance": metrics.style_distance(features, reference.grams),
            "content_distance": metrics.content_distance(features["relu3_3"], content_features),
        }
        values.update(_means(per_image))
    if effnet is not None and reference.crop_features is not None:
        values["fd"] = round(metrics.frechet_distance(ctx.features(effnet, output), reference.crop_features), 4)
    return values


# ----------------------------------------------------------------------------- sections


def recon_group(ctx: Context) -> Group:
    clean = ctx.samples.clean
    rows = {"model": pixel_metrics(ctx.translate(clean, {}), clean), "identity": pixel_metrics(clean, clean)}
    return Group("recon", "recon", "clean crops", len(clean), rows)


def restoration_groups(ctx: Context, task: Task) -> list[Group]:
    """inpaint / denoise: the model against the identity and the classical baselines."""
    from mixtask.evaluation.baselines import BASELINES

    clean = ctx.samples.clean
    damaged, mask = ctx.damaged(task)
    output = ctx.translate(damaged, {task.name: 1.0})
    rows = {"model": pixel_metrics(output, clean, mask)}
    if ctx.gate(damaged, {task.name: 1.0}) is not None:
        rows[BLENDED_ROW] = pixel_metrics(ctx.as_applied(damaged, {task.name: 1.0}), clean, mask)
    if task.kind == "inpaint":
        rows[GIVEN_MASK_ROW] = pixel_metrics(ctx.inpaint_given_mask(damaged, mask, {task.name: 1.0}), clean, mask)
    rows["identity"] = pixel_metrics(damaged, clean, mask)
    baselines = {name: pixel_metrics(fn(damaged, mask), clean, mask) for name, fn in BASELINES[task.kind].items()}
    best = max(baselines, key=lambda name: baselines[name]["psnr"]) if baselines else None
    source = f"clean crops with {'holes' if task.kind == 'inpaint' else 'scratches'}"
    return [Group(task.name, task.kind, source, len(clean), {**rows, **baselines}, list(baselines), best)]


def _seg_group(ctx: Context, task: Task, name: str, source: str, images: torch.Tensor, masks: torch.Tensor):
    target, truth = images * masks, masks > 0.5
    rows = {
        "model": seg_metrics(ctx.translate(images, {task.name: 1.0}), target, truth),
        "identity": seg_metrics(images, target, truth),
        "read-back ceiling": _means({"iou": metrics.iou(metrics.foreground(target), truth)}),
    }
    gate = ctx.gate(images, {task.name: 1.0})
    if gate is not None:  # the gated head's mask as `apply --cutout alpha` writes it (flip-averaged), at one half
        alpha = (gate + ctx.gate(images.flip(-1), {task.name: 1.0}).flip(-1)) / 2
        rows[ALPHA_ROW] = _means({"iou": metrics.iou(alpha > 0.5, truth)})
    if ctx.saliency is not None:  # the salient-object teacher's cut-out, read out by the same rule as the model's
        rows["U2-Net-p teacher"] = seg_metrics(images * ctx.saliency(images), target, truth)
    return Group(name, task.kind, source, len(images), rows)


def composites_group_name(task_name: str) -> str:
    """The group of a seg task's scores on composites (exact masks), e.g. `seg composites`."""
    return f"{task_name} composites"


def seg_groups(ctx: Context, task: Task) -> list[Group]:
    """seg on composites (exact masks) and on photos with their (pseudo-)label masks."""
    groups = []
    if ctx.samples.composites is not None:
        source = "cut-outs pasted on crops (exact masks)"
        groups.append(_seg_group(ctx, task, composites_group_name(task.name), source, *ctx.samples.composites))
    if ctx.samples.photos is not None:
        label = ctx.samples.photo_label
        source = f"photo crops, {label} masks > 0.5"
        groups.append(_seg_group(ctx, task, f"{task.name} photos ({label})", source, *ctx.samples.photos))
    return groups


def style_groups(ctx: Context, task: Task) -> list[Group]:
    reference = ctx.styles.get(task.name)
    if reference is None:
        return []
    clean = ctx.samples.clean
    output = ctx.translate(clean, {task.name: 1.0})
    rows = {
        "model": style_metrics(ctx, reference, output, clean),
        "identity": style_metrics(ctx, reference, clean, clean),
    }
    if not {"style_distance", "fd"} & set(rows["model"]):
        ctx.notes.append(f"{task.name}: no VGG16 and no EfficientNet-Lite0, so no style metrics")
        return []
    if reference.teacher is not None:
        rendering = reference.teacher(clean)
        rows["Magenta teacher"] = style_metrics(ctx, reference, rendering, clean)
        # A pixel target too: the style's own L2, against which its mixes' L2 is measured (`add_member_ratios`).
        rows["model"] |= _means(
            {"mse": metrics.mse(output, rendering), "psnr_teacher": metrics.psnr(output, rendering)}
        )
    if reference.floor_features is not None:
        fd = metrics.frechet_distance(reference.floor_features, reference.crop_features)
        rows["style crops (FD floor)"] = {"fd": round(fd, 4)}
    return [Group(task.name, task.kind, f"clean crops vs {reference.image.name}", len(clean), rows)]


SECTIONS: dict[str, Callable[[Context, Task], list[Group]]] = {
    "inpaint": restoration_groups,
    "denoise": restoration_groups,
    "seg": seg_groups,
    "style": style_groups,
}


def mix_group(ctx: Context, mix: tuple[str, ...]) -> Group | None:
    """A trained mix against its synthesised target (../shared/docs/design.md, "Mixed tasks"), the model as stage 1."""
    from mixtask.data import CORRUPTIONS
    from mixtask.mixing import corrupt_input, derive_mix, render_target

    rule = derive_mix(ctx.task_set, "+".join(mix))
    if rule.needs_mask and ctx.samples.composites is None:
        ctx.notes.append(f"mix {rule.label}: skipped (needs composites, and the split has no cut-outs)")
        return None
    teachers = {name: ctx.styles[name].teacher for name in rule.styles if name in ctx.styles}
    by_teacher = bool(rule.styles) and all(teachers.get(name) for name in rule.styles)
    note = MIX_TEACHER_NOTE if by_teacher else MIX_STYLE_NOTE
    if rule.styles and note not in ctx.notes:
        ctx.notes.append(note)
    clean, mask = ctx.samples.composites if rule.needs_mask else (ctx.samples.clean, None)
    inputs = corrupt_input(rule, clean, CORRUPTIONS, ctx.generator(rule.label))
    if by_teacher:
        target = render_target(rule, clean, mask, lambda x, name: teachers[name](x))
    else:
        target = render_target(rule, clean, mask, lambda x, name: ctx.translate(x, {name: 1.0}))
    output = ctx.translate(inputs, dict.fromkeys(rule.names, 1.0))
    if mask is None:
        rows = {"model": pixel_metrics(output, target), "identity": pixel_metrics(inputs, target)}
    else:
        truth = mask > 0.5
        rows = {
            "model": seg_metrics(output, target, truth),
            "identity": seg_metrics(inputs, target, truth),
            "read-back ceiling": _means({"iou": metrics.iou(metrics.foreground(target), truth)}),
        }
    source = "composites" if rule.needs_mask else "clean crops"
    return Group(rule.label, "mix", f"{source}, synthesised target", len(clean), rows)


def add_member_ratios(groups: list[Group]) -> None:
    """The issue's mix bar, on each mix's model row as `l2_ratio`: its L2 to the synthesised target over
    the largest single-task L2 of its members. A member counts where it has a pixel target: a
    restoration task (its own group), seg (on composites), or a style where the style teacher runs (its
    rendering; without the teacher a style's target is perceptual, not pixels)."""
    model_rows = {group.name: group.rows["model"] for group in groups}
    for group in groups:
        if group.kind != "mix":
            continue
        member_mse = [
            model_rows[name]["mse"]
            for member in group.name.split("+")  # a mix's label is its members' names
            for name in (member, composites_group_name(member))
            if name in model_rows and "mse" in model_rows[name]
        ]
        if member_mse and max(member_mse) > 0:
            group.rows["model"]["l2_ratio"] = round(group.rows["model"]["mse"] / max(member_mse), 4)


# ----------------------------------------------------------------------------- strength sweep


def _mean_psnr(reference: torch.Tensor) -> Callable[[torch.Tensor], float]:
    def score(output: torch.Tensor) -> float:
        return float(metrics.psnr(output, reference).mean())

    return score


def _mean_iou(masks: torch.Tensor) -> Callable[[torch.Tensor], float]:
    def score(output: torch.Tensor) -> float:
        return float(metrics.iou(metrics.foreground(output), masks > 0.5).mean())

    return score


def _mean_style_distance(ctx: Context, grams: dict[str, torch.Tensor]) -> Callable[[torch.Tensor], float]:
    def score(output: torch.Tensor) -> float:
        return float(metrics.style_distance(ctx.features(ctx.backbones.vgg, output), grams).mean())

    return score


def _sweep_probe(ctx: Context, task: Task):
    """(inputs, score(outputs) -> float, metric name, expected direction) for one task, or None."""
    from mixtask.data import CORRUPTIONS

    clean = ctx.samples.clean
    if task.kind in CORRUPTIONS:
        return ctx.damaged(task)[0], _mean_psnr(clean), "psnr", "increasing"
    if task.kind == "seg":
        pair = ctx.samples.composites or ctx.samples.photos
        return None if pair is None else (pair[0], _mean_iou(pair[1]), "iou", "increasing")
    reference = ctx.styles.get(task.name)
    if reference is not None and reference.grams is not None and ctx.backbones.vgg is not None:
        return clean, _mean_style_distance(ctx, reference.grams), "style_distance", "decreasing"
    return clean, _mean_psnr(clean), "psnr vs input", "decreasing"


def sweep_task(ctx: Context, task: Task) -> dict | None:
    probe = _sweep_probe(ctx, task)
    if probe is None:
        return None
    inputs, score, metric, expected = probe
    values = [round(score(ctx.translate(inputs, {task.name: s})), 6) for s in SWEEP_STRENGTHS]
    direction = metrics.monotonic_direction(values)
    return {
        "task": task.name,
        "metric": metric,
        "strengths": list(SWEEP_STRENGTHS),
        "values": values,
        "direction": direction,
        "expected": expected,
        "monotonic": direction == expected,
    }
