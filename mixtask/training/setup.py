"""Building a run: data, network, optimisers, VGG and Gram targets, discriminator, generators."""

from __future__ import annotations

from pathlib import Path

import torch

from mixtask.errors import MixtaskError
from mixtask.tasks import TaskSet
from mixtask.tensors import from_uint8
from mixtask.training import distributed as ddp
from mixtask.training.console import warn
from mixtask.training.options import StyleSpec, TrainOptions, check_options
from mixtask.training.plan import build_plan
from mixtask.training.state import Run, rank_seed


def load_training_data(options: TrainOptions):
    """The train split of the data folder (a clear MixtaskError when it is missing or empty)."""
    from mixtask.data import default_max_side, load_dataset

    if not Path(options.data).is_dir():
        raise MixtaskError(f"data folder {options.data} not found")
    max_side = options.max_side or default_max_side(options.size)
    return load_dataset(options.data, split="train", max_side=max_side, warn=warn, mask_set=options.mask_set)


def load_style_image(spec: StyleSpec) -> torch.Tensor:
    """The style image as (1, 3, H, W) float in [0, 1]."""
    from mixtask.images import load_image

    path = Path(spec.image)
    if not path.is_file():
        raise MixtaskError(f"style image for {spec.name!r} not found: {path}")
    rgb = load_image(path).rgb
    return from_uint8(rgb)[None]


def loss_weights(options: TrainOptions):
    from mixtask.training.losses import LossWeights

    return LossWeights(options.content_weight, options.style_weight, options.tv_weight, options.adversarial_weight)


def setup_styles(run: Run) -> None:
    """VGG, the perceptual loss and each style's Gram targets, computed once (Table 1); or, with
    --style-loss teacher, the teacher's renderings of every training photo and cut-out."""
    if not run.options.styles:
        return
    if run.options.style_loss == "teacher":
        run.style_images = {spec.name: load_style_image(spec) for spec in run.options.styles}
        if run.options.style_texture > 0:
            run.texture = texture_loss(run.options).to(run.device)
        return
    from mixtask.backbones import load_vgg
    from mixtask.backbones.perceptual import style_targets
    from mixtask.training.losses import PerceptualLoss

    images = {spec.name: load_style_image(spec) for spec in run.options.styles}
    vgg = load_vgg(run.options.vgg).to(run.device)
    run.perceptual = PerceptualLoss(vgg, loss_weights(run.options))
    size = run.options.style_size or run.options.size
    for name, image in images.items():
        run.style_grams[name] = style_targets(vgg, image.to(run.device), sizes=[size])
        run.style_images[name] = image


def texture_loss(options: TrainOptions):
    """--style-texture: the Gram loss through a frozen EfficientNet-Lite0 trunk, read from --context-backbone's
    file or the data folder's backbones/."""
    from mixtask.backbones.efficientnet_lite import FILE_NAME, EfficientNetTrunk, load_trunk_weights
    from mixtask.training.losses import TextureLoss

    path = options.context_backbone or Path(options.data) / "backbones" / FILE_NAME
    if not Path(path).is_file():
        raise MixtaskError(f"--style-texture needs EfficientNet-Lite0 weights: {path} not found (--context-backbone)")
    return TextureLoss(load_trunk_weights(EfficientNetTrunk(), path))


def setup_discriminator(run: Run) -> None:
    """PatchGAN for seg (conditional on the network input); none when its weight is 0."""
    if run.options.adversarial_weight <= 0:
        return
    from mixtask.training.losses import PatchDiscriminator

    run.disc = PatchDiscriminator(in_channels=6, width=run.options.width).to(run.device)
    run.disc_optimizer = torch.optim.Adam(run.disc.parameters(), lr=run.options.lr, betas=(0.5, 0.999))


def setup_deep_seg(run: Run) -> None:
    """--deep-seg-weight: a 1x1 conv from the bottleneck to a mask logit at 1/4 resolution, trained with the
    network (a second Adam group) and never exported: deep supervision, a short path from the seg loss to the
    encoder and residual blocks."""
    if run.options.deep_seg_weight <= 0:
        return
    run.deep_seg_head = torch.nn.Conv2d(4 * run.options.width, 1, 1).to(run.device)
    run.optimizer.add_param_group({"params": list(run.deep_seg_head.parameters())})


def setup_weighting(run: Run) -> None:
    """Schedule joint: the `--weighting` over the jobs of every stage; learnable weights join Adam as a group."""
    if run.options.schedule != "joint":
        return
    from functools import partial

    from mixtask.training.weighting import build_weighting

    names = tuple(dict.fromkeys(job.name for stage in (1, 2) for job in run.plan.jobs(stage)))
    reduce = partial(ddp.mean_over_ranks, ctx=run.ctx)
    run.weighting = build_weighting(run.options.weighting, names, run.net, reduce).to(run.device)
    parameters = list(run.weighting.parameters())
    if parameters:
        run.optimizer.add_param_group({"params": parameters})


def build_network(options: TrainOptions, task_set: TaskSet, device: str) -> torch.nn.Module:
    from mixtask.nets.film import ModelConfig
    from mixtask.nets.registry import build_model

    config = ModelConfig(
        len(task_set),
        options.width,
        options.res_blocks,
        options.film_layers,
        arch=options.arch,
        head=options.head,
        context=options.context,
        context_backbone="efficientnet-lite0" if options.context_backbone else "",
        context_scales=options.context_scales,
    )
    net = build_model(config)
    if options.context_backbone:
        from mixtask.backbones.efficientnet_lite import load_trunk_weights

        load_trunk_weights(net.context.backbone, options.context_backbone)
    net = net.to(device)
    if device.startswith("cuda"):
        net = net.to(memory_format=torch.channels_last)
    return net


def render_styles(options: TrainOptions, dataset) -> tuple[tuple | None, dict[str, dict]]:
    """--style-loss teacher: every photo and cut-out rendered once per style by the Magenta teacher, cached
    (`teachers.render_cache`) -> ((photos, cut-outs) with 3 channels a style, each style's teacher provenance)."""
    if options.style_loss != "teacher" or not options.styles:
        return None, {}
    from mixtask.backbones.teachers import StyleTeacher, default_teacher_dir, render_cache, render_dataset

    folder = Path(options.teachers) if options.teachers else default_teacher_dir()
    photos, cutouts, provenance = [], [], {}
    for spec in options.styles:
        if not Path(spec.image).is_file():
            raise MixtaskError(f"style image for {spec.name!r} not found: {spec.image}")
        teacher = StyleTeacher(folder, Path(spec.image))
        provenance[spec.name] = teacher.provenance()
        styled = render_dataset(dataset, teacher, render_cache(dataset, provenance[spec.name]))
        photos.append(styled[0])
        cutouts.append(styled[1])
    joined = tuple(tuple(torch.cat(parts) for parts in zip(*per_style)) for per_style in (photos, cutouts))
    return joined, provenance


def warm_start(net: torch.nn.Module, path: str, task_set: TaskSet) -> None:
    """--init: the network's weights from a weights file with the same architecture and tasks."""
    from mixtask.weights import load_weights

    model, info = load_weights(path)
    if info.task_set.names != task_set.names:
        theirs, ours = ", ".join(info.task_set.names), ", ".join(task_set.names)
        raise MixtaskError(f"--init {path}: its tasks ({theirs}) are not this run's ({ours})")
    same = "--arch, --width, --res-blocks, --film-layers and --head"
    try:
        missing, unexpected = net.load_state_dict(model.state_dict(), strict=False)
    except RuntimeError:
        raise MixtaskError(f"--init {path}: its network is not this run's: give the same {same}") from None
    # A network given the context branch starts from weights without one: the branch's zero output conv
    # keeps the warm start exact (nets.film.ContextBranch). Anything else missing or extra is a mismatch.
    if unexpected or any(not key.startswith("context.") for key in missing):
        raise MixtaskError(f"--init {path}: its network is not this run's: give the same {same}")


def setup_run(options: TrainOptions, ctx: ddp.DistContext, restoring: bool = False) -> Run:
    """Build data, model, optimisers and losses for a new run (or, `restoring`, one about to be restored from its
    checkpoint: then --init is not read again, the checkpoint holds the weights)."""
    from mixtask.data import CORRUPTIONS, SampleMaker

    check_options(options)
    folder = load_folder(options)
    plan = build_plan(options, folder.labels if folder else (), start_step=None if restoring else 0)
    if folder is not None:
        folder.relabel({label: rule.label for label, rule in zip(folder.labels, plan.folder_mixes)})
    dataset = load_training_data(options)
    torch.manual_seed(options.seed)  # same initial weights on every rank
    net = build_network(options, plan.task_set, ctx.device)
    if options.init and not restoring:
        warm_start(net, options.init, plan.task_set)
    if options.tune_backbone:
        net.context.backbone.requires_grad_(True)  # before the DDP wrap, which registers what is trained
    styled, style_teachers = render_styles(options, dataset)
    sampler = SampleMaker(
        dataset, options.size, seed=rank_seed(options, ctx), styled=styled, composites=options.composites,
        mask_fraction=options.seg_photos,
    )  # fmt: skip
    model = compiled(ddp.wrap_model(net, ctx), options)
    run = Run(
        options, plan, ctx, ddp.autocast_dtype(options.precision, ctx.device), model, net,
        torch.optim.Adam(trainable(net), lr=options.lr), dataset, sampler, make_generators(options, ctx),
        dict(CORRUPTIONS), folder=folder,
    )  # fmt: skip
    run.styled, run.style_teachers = styled, style_teachers
    run.scaler = torch.amp.GradScaler("cuda", enabled=run.dtype == torch.float16)
    setup_styles(run)
    setup_discriminator(run)
    setup_deep_seg(run)
    setup_weighting(run)
    setup_backbone_tuning(run)  # Adam's last group
    setup_ema(run)
    return run


def trainable(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters of Adam's first group: all but the context branch's backbone (frozen, or tuned in a
    group of its own)."""
    backbone = {id(parameter) for parameter in backbone_parameters(net)}
    return [parameter for parameter in net.parameters() if parameter.requires_grad and id(parameter) not in backbone]


def backbone_parameters(net: torch.nn.Module) -> list[torch.nn.Parameter]:
    context = getattr(net, "context", None)
    backbone = getattr(context, "backbone", None)
    return list(backbone.parameters()) if backbone is not None else []


BACKBONE_GROUP = "backbone"  # the name of --tune-backbone's Adam group (a resume may add or drop it)


def setup_backbone_tuning(run: Run) -> None:
    """--tune-backbone: the context branch's backbone joins Adam as a group of its own, so a resume can turn the
    tuning on or off (`checkpointing.matched_optimizer_state`)."""
    if run.options.tune_backbone:
        run.optimizer.add_param_group({"params": backbone_parameters(run.net), "name": BACKBONE_GROUP})


def setup_ema(run: Run) -> None:
    """--ema-decay: torch's `AveragedModel` keeps the exponential moving average of the network's parameters
    (its first update copies them); checkpoints carry it and export writes it."""
    if run.options.ema_decay > 0:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        run.ema = AveragedModel(run.net, multi_avg_fn=get_ema_multi_avg_fn(run.options.ema_decay))


def compiled(model: torch.nn.Module, options: TrainOptions) -> torch.nn.Module:
    """`--compile`: the model under torch.compile (Inductor fuses the norms, FiLM, pads and activations between
    the convolutions; about 30 s to compile once, then every step is faster). Weights and checkpoints are the
    bare network's, so a run can resume with or without it. Static shapes: a run has one crop size, and the
    sub-pixel forms' slicing does not compile for symbolic sizes (torch 2.14)."""
    return torch.compile(model, dynamic=False) if options.compile else model


def make_generators(options: TrainOptions, ctx: ddp.DistContext) -> dict[str, torch.Generator]:
    """The task draw is the same on every rank (one task per global step); data draws differ."""
    seed = rank_seed(options, ctx)
    return {
        "jobs": torch.Generator().manual_seed(options.seed),
        "corrupt": torch.Generator().manual_seed(seed),
        "folder": torch.Generator().manual_seed(seed + 1),
    }


def load_folder(options: TrainOptions):
    if options.synth is None:
        return None
    from mixtask.training.synth import SynthFolder

    return SynthFolder.open(options.synth, options.size)
