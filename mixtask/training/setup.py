"""Building a run: data, network, optimisers, VGG and Gram targets, discriminator, generators."""

from __future__ import annotations

from pathlib import Path

import torch

from mixtask import distributed as ddp
from mixtask.errors import MixtaskError
from mixtask.tasks import TaskSet
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
    return load_dataset(options.data, split="train", max_side=max_side, warn=warn)


def load_style_image(spec: StyleSpec) -> torch.Tensor:
    """The style image as (1, 3, H, W) float in [0, 1]."""
    from mixtask.images import load_image

    path = Path(spec.image)
    if not path.is_file():
        raise MixtaskError(f"style image for {spec.name!r} not found: {path}")
    rgb = load_image(path).rgb
    return torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255.0)


def loss_weights(options: TrainOptions):
    from mixtask.losses import LossWeights

    return LossWeights(options.content_weight, options.style_weight, options.tv_weight, options.adversarial_weight)


def setup_styles(run: Run) -> None:
    """VGG, the perceptual loss and each style's Gram targets, computed once (Table 1)."""
    if not run.options.styles:
        return
    from mixtask.backbones import load_vgg
    from mixtask.losses import PerceptualLoss, style_targets

    images = {spec.name: load_style_image(spec) for spec in run.options.styles}
    vgg = load_vgg(run.options.vgg).to(run.device)
    run.perceptual = PerceptualLoss(vgg, loss_weights(run.options))
    size = run.options.style_size or run.options.size
    for name, image in images.items():
        run.style_grams[name] = style_targets(vgg, image.to(run.device), sizes=[size])
        run.style_images[name] = image


def setup_discriminator(run: Run) -> None:
    """PatchGAN for seg (conditional on the network input); none when its weight is 0."""
    if run.options.adversarial_weight <= 0:
        return
    from mixtask.losses import PatchDiscriminator

    run.disc = PatchDiscriminator(in_channels=6, width=run.options.width).to(run.device)
    run.disc_optimizer = torch.optim.Adam(run.disc.parameters(), lr=run.options.lr, betas=(0.5, 0.999))


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
    from mixtask.model import ModelConfig, build_model

    config = ModelConfig(
        len(task_set), options.width, options.res_blocks, options.film_layers, arch=options.arch, head=options.head
    )
    net = build_model(config).to(device)
    if device.startswith("cuda"):
        net = net.to(memory_format=torch.channels_last)
    return net


def setup_run(options: TrainOptions, ctx: ddp.DistContext) -> Run:
    """Build data, model, optimisers and losses for a new run (or one about to be restored)."""
    from mixtask.data import CORRUPTIONS, SampleMaker

    check_options(options)
    folder = load_folder(options)
    plan = build_plan(options, folder.labels if folder else ())
    if folder is not None:
        folder.relabel({label: rule.label for label, rule in zip(folder.labels, plan.folder_mixes)})
    dataset = load_training_data(options)
    torch.manual_seed(options.seed)  # same initial weights on every rank
    net = build_network(options, plan.task_set, ctx.device)
    sampler = SampleMaker(dataset, options.size, seed=rank_seed(options, ctx))
    run = Run(
        options, plan, ctx, ddp.autocast_dtype(options.precision, ctx.device), ddp.wrap_model(net, ctx), net,
        torch.optim.Adam(net.parameters(), lr=options.lr), dataset, sampler, make_generators(options, ctx),
        dict(CORRUPTIONS), folder=folder,
    )  # fmt: skip
    run.scaler = torch.amp.GradScaler("cuda", enabled=run.dtype == torch.float16)
    setup_styles(run)
    setup_discriminator(run)
    setup_weighting(run)
    return run


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
    from mixtask.synth import SynthFolder

    return SynthFolder.open(options.synth, options.size)
