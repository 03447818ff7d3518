"""Training: single tasks, then mixed tasks (paper, Sec. 3.3, Methods 1-3; losses of Table 1).

One task (or mix) per mini-batch, drawn uniformly from the jobs of the current stage;
reconstruction (task vector 0, L2 on the clean image) is one of them.

- Method 1: single tasks only.
- Method 2: mixes too, each trained with the sum of its members' own losses and targets.
- Method 3 (default): stage 1 trains single tasks for `stage1_steps`; then a frozen copy of the
  stage-1 model renders mixed targets on the fly (`mixtask.mixing`), and stage 2 trains single
  tasks and mixes together, mixes with L2 on the synthesised targets. `--synth DIR` adds mixed
  samples synthesised ahead by `mixtask synth` as further stage-2 jobs.

Losses (Table 1): L2 for recon, inpaint, denoise and synthesised mixes; L2 + PatchGAN for seg;
the perceptual loss against per-style Gram targets (computed once) for styles.

Checkpoints (`mixtask.checkpoint`) hold every state, so a resumed run continues bit-for-bit;
`mixtask.distributed` scales out with DDP under torchrun; the run ends by exporting a
self-describing safetensors file (`mixtask.weights.save_weights`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import platform
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import torch

from mixtask import distributed as ddp
from mixtask.checkpoint import capture_rng, checkpoint_path, load_checkpoint, restore_rng, save_checkpoint
from mixtask.errors import MixtaskError
from mixtask.mixing import (
    KIND_ROLES,
    MixRule,
    corrupt_input,
    derive_mixes,
    make_stylizer,
    render_target,
    single_rule,
)
from mixtask.tasks import DEFAULT_MIXES, DEFAULT_TASKS, Task, TaskSet

WEIGHTS_NAME = "weights.safetensors"
STAGE1_NAME = "stage1.safetensors"
LOG_NAME = "log.jsonl"
MIX_METHODS = (1, 2, 3)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RESTORATION_TASKS = tuple(task for task in DEFAULT_TASKS if task.kind != "style")
PREVIEW_SEED = 20240611
RANK_SEED_STRIDE = 7919  # decorrelates the data streams of the ranks


# ----------------------------------------------------------------------------- options


@dataclass(frozen=True)
class StyleSpec:
    """A style task to train: its name and its style image."""

    name: str
    image: str


@dataclass(frozen=True)
class TrainOptions:
    """Everything a run needs; stored in its checkpoints so `--resume` continues it unchanged."""

    data: str
    out: str
    styles: tuple[StyleSpec, ...] = ()
    mixes: tuple[str, ...] | None = None  # None: the default mixes whose tasks exist
    mix_method: int = 3
    steps: int = 2000
    stage1_steps: int | None = None  # Method 3; None: half of `steps`
    size: int = 256
    batch: int = 4
    lr: float = 1e-4
    seed: int = 0
    vgg: str | None = None  # None: $MIXTASK_VGG or the shared vgg16-features.safetensors
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 50.0
    adversarial_weight: float = 0.01  # 0 turns the PatchGAN off
    balance: str = "ema"  # "ema": divide each job's loss by its running mean; "none": raw sums
    style_size: int | None = None  # short side of the style image for its Grams; None: `size`
    width: int = 32
    res_blocks: int = 5
    film_layers: int = 1
    precision: str = "auto"
    device: str = "auto"
    synth: str | None = None
    log_every: int = 1
    preview_every: int = 250
    checkpoint_every: int = 500
    max_side: int | None = None  # photos' short side is capped to this on load; None: 2 x size
    evaluate: bool = False  # score the exported weights on the data's val split (RUN_DIR/eval.json)
    command: str = ""

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainOptions:
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        values["styles"] = tuple(StyleSpec(**style) for style in values.get("styles", ()))
        if values.get("mixes") is not None:
            values["mixes"] = tuple(values["mixes"])
        return cls(**values)


def parse_style(text: str) -> StyleSpec:
    """`style1=path/to/image.jpg` -> StyleSpec."""
    name, sep, image = (part.strip() for part in text.partition("="))
    if not sep or not name or not image:
        raise MixtaskError(f"--style {text!r}: write it as NAME=IMAGE, e.g. --style style1=starry.jpg")
    return StyleSpec(name.lower(), image)


def stage1_steps(options: TrainOptions) -> int:
    """Steps of stage 1 (Method 3); the whole run for Methods 1 and 2."""
    if options.mix_method != 3:
        return options.steps
    return options.steps // 2 if options.stage1_steps is None else options.stage1_steps


def check_options(options: TrainOptions) -> None:
    """Reject impossible numbers early, with the option's name."""
    checks = [
        (options.mix_method in MIX_METHODS, f"--mix-method must be 1, 2 or 3, not {options.mix_method}"),
        (options.steps >= 1, "--steps must be at least 1"),
        (options.batch >= 1, "--batch must be at least 1"),
        (options.size >= 32 and options.size % 4 == 0, f"--size must be a multiple of 4, at least 32 ({options.size})"),
        (0 <= stage1_steps(options) <= options.steps, "--stage1-steps must be between 0 and --steps"),
        (options.lr > 0, "--lr must be positive"),
        (options.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
        (options.synth is None or options.mix_method == 3, "--synth needs --mix-method 3 (L2 on synthesised mixes)"),
        (min(options.log_every, options.preview_every, options.checkpoint_every) >= 0, "intervals must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise MixtaskError(message)


# ----------------------------------------------------------------------------- tasks and jobs


def style_task(spec: StyleSpec) -> Task:
    """A style task; a name of the default set keeps its aliases and description."""
    for task in DEFAULT_TASKS:
        if task.kind == "style" and task.name == spec.name:
            return Task(spec.name, "style", task.aliases, f"{task.description} (image {Path(spec.image).name})")
    return Task(spec.name, "style", (), f"style of {Path(spec.image).name}")


def build_task_set(styles: tuple[StyleSpec, ...]) -> TaskSet:
    """inpaint, denoise, seg, then the named styles, in that task-vector order."""
    return TaskSet(RESTORATION_TASKS + tuple(style_task(spec) for spec in styles))


def default_mix_texts(task_set: TaskSet) -> tuple[str, ...]:
    """The paper's three mixes, keeping those whose tasks this run has."""
    return tuple("+".join(mix) for mix in DEFAULT_MIXES if all(name in task_set.names for name in mix))


@dataclass(frozen=True)
class Job:
    """What one mini-batch trains: recon, a single task or a mix, and where its target comes from.

    source: "recon" (L2 to clean), "members" (each member's own loss; singles and Method 2),
    "synthesized" (L2 to the stage-1 rendering; Method 3) or "folder" (L2 to pairs from --synth).
    """

    name: str
    rule: MixRule | None
    source: str
    vector: tuple[float, ...]


@dataclass(frozen=True)
class Plan:
    """The tasks, mixes and stages of a run."""

    task_set: TaskSet
    singles: tuple[MixRule, ...]
    mixes: tuple[MixRule, ...]
    folder_mixes: tuple[MixRule, ...]
    method: int
    steps: int
    stage1_steps: int

    def stage_at(self, step: int) -> int:
        return 2 if self.method == 3 and step >= self.stage1_steps else 1

    def jobs(self, stage: int) -> tuple[Job, ...]:
        recon = Job("recon", None, "recon", (0.0,) * len(self.task_set))
        jobs = [recon, *(Job(rule.label, rule, "members", rule.vector) for rule in self.singles)]
        if self.method == 2:
            jobs += [Job(rule.label, rule, "members", rule.vector) for rule in self.mixes]
        if self.method == 3 and stage == 2:
            jobs += [Job(rule.label, rule, "synthesized", rule.vector) for rule in self.mixes]
            jobs += [Job(f"{rule.label}@synth", rule, "folder", rule.vector) for rule in self.folder_mixes]
        return tuple(jobs)

    def trained_mixes(self, steps_done: int) -> tuple[tuple[str, ...], ...]:
        """Mixes trained in the first `steps_done` steps (for the weights' metadata)."""
        if self.method == 1 or (self.method == 3 and steps_done <= self.stage1_steps):
            return ()
        labels = dict.fromkeys(rule.names for rule in (*self.mixes, *self.folder_mixes))
        return tuple(labels)


def build_plan(options: TrainOptions, folder_labels: tuple[str, ...] = ()) -> Plan:
    task_set = build_task_set(options.styles)
    texts = options.mixes if options.mixes is not None else default_mix_texts(task_set)
    mixes = derive_mixes(task_set, texts) if options.mix_method != 1 else ()
    if options.mix_method == 1 and options.mixes:
        raise MixtaskError("--mix-method 1 trains single tasks only: drop --mix, or use method 2 or 3")
    singles = tuple(single_rule(task_set, name) for name in task_set.names)
    try:
        folder = derive_mixes(task_set, folder_labels)
    except MixtaskError as error:
        raise MixtaskError(f"--synth {options.synth}: {error}") from None
    return Plan(task_set, singles, mixes, folder, options.mix_method, options.steps, stage1_steps(options))


# ----------------------------------------------------------------------------- precision and hardware


def describe_hardware(device: str, dtype: torch.dtype | None, world_size: int) -> str:
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(torch.device(device))
    else:
        name = f"{cpu_model()} ({torch.get_num_threads()} threads)"
    precision = "fp32" if dtype is None else str(dtype).removeprefix("torch.")
    return f"{world_size} x {name}, {precision}, torch {torch.__version__}"


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


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


# ----------------------------------------------------------------------------- the run's state


@dataclass
class Run:
    """Everything a training process holds (mutable; one per rank)."""

    options: TrainOptions
    plan: Plan
    ctx: ddp.DistContext
    dtype: torch.dtype | None
    model: torch.nn.Module  # DDP-wrapped when distributed
    net: torch.nn.Module  # the bare network
    optimizer: torch.optim.Optimizer
    dataset: object
    sampler: object
    generators: dict[str, torch.Generator]
    corruptions: dict[str, Callable]
    disc: torch.nn.Module | None = None
    disc_optimizer: torch.optim.Optimizer | None = None
    perceptual: torch.nn.Module | None = None
    style_grams: dict[str, dict] = field(default_factory=dict)
    style_images: dict[str, torch.Tensor] = field(default_factory=dict)
    teacher: torch.nn.Module | None = None
    folder: object | None = None
    scaler: torch.amp.GradScaler | None = None  # only for fp16 on CUDA
    step: int = 0
    wall_seconds: float = 0.0
    loss_scales: dict[str, float] = field(default_factory=dict)  # running mean of each job's loss

    @property
    def device(self) -> str:
        return self.ctx.device

    @property
    def channels_last(self) -> bool:
        return self.device.startswith("cuda")


def rank_seed(options: TrainOptions, ctx: ddp.DistContext) -> int:
    return options.seed + RANK_SEED_STRIDE * ctx.rank


def load_training_data(options: TrainOptions):
    """The train split of the data folder (a clear MixtaskError when it is missing or empty)."""
    from mixtask.data import default_max_side, load_dataset

    if not Path(options.data).is_dir():
        raise MixtaskError(f"data folder {options.data} not found")
    max_side = options.max_side or default_max_side(options.size)
    return load_dataset(options.data, split="train", max_side=max_side, warn=_warn)


def _warn(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[yellow]warning:[/] {message}", highlight=False)


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


def build_network(options: TrainOptions, task_set: TaskSet, device: str) -> torch.nn.Module:
    from mixtask.model import ModelConfig, build_model

    config = ModelConfig(len(task_set), options.width, options.res_blocks, options.film_layers)
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


# ----------------------------------------------------------------------------- batches


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


# ----------------------------------------------------------------------------- losses


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


# ----------------------------------------------------------------------------- one step


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


# ----------------------------------------------------------------------------- stages, checkpoints, export


def frozen_copy(net: torch.nn.Module) -> torch.nn.Module:
    teacher = copy.deepcopy(net).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def enter_stage2(run: Run) -> None:
    """Method 3: freeze the stage-1 model (it renders mixed targets) and export it for `synth`."""
    if run.plan.stage_at(run.step) == 1 or run.teacher is not None:
        return
    run.teacher = frozen_copy(run.net)
    if run.ctx.is_main:
        export(run, Path(run.options.out) / STAGE1_NAME, stage=1)


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
        "teacher": run.teacher.state_dict() if run.teacher else None,
        "scaler": run.scaler.state_dict(),
        "loss_scales": dict(run.loss_scales),
        "rng": rng,
    }


def write_checkpoint(run: Run) -> None:
    state = checkpoint_state(run)
    if run.ctx.is_main:
        save_checkpoint(run.options.out, state)
    ddp.barrier(run.ctx)


def restore(run: Run, state: dict) -> None:
    """Put a checkpoint's state back into a freshly built run."""
    run.net.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.disc is not None and state["disc"] is not None:
        run.disc.load_state_dict(state["disc"])
        run.disc_optimizer.load_state_dict(state["disc_optimizer"])
    if state["teacher"] is not None:
        run.teacher = frozen_copy(run.net)
        run.teacher.load_state_dict(state["teacher"])
    if state["scaler"]:
        run.scaler.load_state_dict(state["scaler"])
    run.step, run.wall_seconds = state["step"], state["wall_seconds"]
    run.loss_scales = dict(state.get("loss_scales", {}))
    rng = state["rng"]
    if len(rng) == run.ctx.world_size:
        restore_rng(rng[run.ctx.rank], run.generators, run.sampler)
    else:
        _warn(f"checkpoint was written by {len(rng)} process(es), now {run.ctx.world_size}: data streams restart")


def provenance(run: Run, stage: int) -> dict:
    options = run.options
    return {
        "data": str(Path(options.data).resolve()),
        "command": options.command,
        "steps": run.step,
        "size": options.size,
        "batch": options.batch * run.ctx.world_size,
        "seed": options.seed,
        "mix_method": options.mix_method,
        "stage": stage,
        "styles": {spec.name: str(Path(spec.image).resolve()) for spec in options.styles},
        "loss_weights": asdict(loss_weights(options)),
        "hardware": describe_hardware(run.device, run.dtype, run.ctx.world_size),
        "wall_seconds": round(run.wall_seconds, 1),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }


def export(run: Run, path: Path, stage: int) -> Path:
    """Self-describing safetensors of the current network (task names, mixes, provenance)."""
    from mixtask.weights import save_weights

    task_set = TaskSet(run.plan.task_set.tasks, run.plan.trained_mixes(run.step))
    return save_weights(path, run.net, task_set, provenance(run, stage))


# ----------------------------------------------------------------------------- logging, preview, progress


class RunLog:
    """RUN_DIR/log.jsonl: one JSON object per line (events and steps); rank 0 only."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume, drop step lines the checkpoint does not contain (written after it)."""
        if not self.enabled or not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _logged_step(line) <= step]
        self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")


def _logged_step(line: str) -> float:
    """The step of a log line; a line cut short by a crash counts as after every step."""
    try:
        return json.loads(line).get("step", 0)
    except ValueError:
        return float("inf")


def step_record(run: Run, result: StepResult) -> dict:
    return {
        "step": run.step,
        "stage": run.plan.stage_at(run.step - 1),
        "job": result.job,
        "losses": {key: round(value, 6) for key, value in result.losses.items()},
        "seconds": round(result.seconds, 4),
        "data_seconds": round(result.data_seconds, 4),
    }


class Progress:
    """Rich progress bar with a running (exponential) mean of each job's loss; rank 0 only."""

    def __init__(self, run: Run, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.running: dict[str, float] = {}
        columns = [TextColumn("stage {task.fields[stage]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[losses]}")]  # fmt: skip
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(*columns, disable=quiet or not run.ctx.is_main, transient=False)
        self.task = self.bar.add_task("train", total=run.plan.steps, completed=run.step, stage=1, losses="")

    def update(self, run: Run, result: StepResult) -> None:
        old = self.running.get(result.job)
        total = result.losses["total"]
        self.running[result.job] = total if old is None else 0.9 * old + 0.1 * total
        text = "  ".join(f"{job} {value:.4f}" for job, value in sorted(self.running.items()))
        self.bar.update(self.task, completed=run.step, stage=run.plan.stage_at(run.step), losses=text)

    def __enter__(self) -> Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()


def preview_rows(run: Run) -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """(job, input, output, target) of one fixed sample per job of the current stage."""
    from mixtask.data import SampleMaker

    sampler = SampleMaker(run.dataset, run.options.size, seed=PREVIEW_SEED)
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
        return run.style_images[job.rule.names[0]][0]
    if job.rule is not None and not job.rule.styles:
        return (batch.clean * batch.mask)[0] if job.rule.needs_mask else batch.clean[0]
    return None


def write_preview(run: Run) -> Path:
    """RUN_DIR/previews/step-NNNNNN.png: a row per job, columns input / output / target."""
    from mixtask.fileio import atomic_path
    from mixtask.synth import contact_sheet

    sheet = contact_sheet(preview_rows(run), run.options.size, ("input", "output", "target"))
    path = Path(run.options.out) / "previews" / f"step-{run.step:06d}.png"
    with atomic_path(path) as temp:
        sheet.save(temp, format="PNG")
    return path


# ----------------------------------------------------------------------------- the loop


class StopFlag:
    """Set by SIGINT / SIGTERM: the loop checkpoints and stops after the current step."""

    def __init__(self):
        self.signal: int | None = None

    def __call__(self, signum, frame) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.signal = signum


@contextlib.contextmanager
def stop_on_signals():
    flag = StopFlag()
    if not _is_main_thread():
        yield flag
        return
    previous = {sig: signal.signal(sig, flag) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


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
    run = setup_run(options, ctx)
    log = RunLog(run_dir / LOG_NAME, ctx.is_main)
    if resume:
        restore(run, load_checkpoint(run_dir))
        log.truncate_after(run.step)
    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
    log.write({"event": "resume" if resume else "start", "step": run.step, "options": options.to_json(),
               "hardware": describe_hardware(run.device, run.dtype, ctx.world_size)})  # fmt: skip
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
    """Optional held-out scores of the exported weights (`mixtask.evaluate`); never fails the run."""
    try:
        from mixtask.evaluate import EvalOptions, run_evaluation, write_json
    except ImportError as error:
        _warn(f"evaluation skipped: {error}")
        return
    styles = tuple((spec.name, spec.image) for spec in options.styles)
    vgg = None if options.vgg is None else Path(options.vgg)
    eval_options = EvalOptions(Path(options.data), weights, size=options.size, vgg=vgg, styles=styles)
    try:
        result = run_evaluation(eval_options)
    except MixtaskError as error:
        _warn(f"evaluation skipped: {error}")
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
        run, log = open_run(options, resume, ctx)
        with stop_on_signals() as flag, Progress(run, quiet) as progress:
            interrupted, results = loop(run, log, flag, progress, callback)
        weights = finish(run, log, interrupted)
        per_step, data_fraction = summarize(results)
        return TrainResult(ctx.is_main, Path(options.out), run.step, weights, interrupted, per_step, data_fraction)
    finally:
        ddp.teardown(ctx)


def resume_options(run_dir: str | Path, steps: int | None = None) -> TrainOptions:
    """The options of an earlier run, optionally with more `steps`."""
    state = load_checkpoint(run_dir)
    options = replace(TrainOptions.from_json(state["options"]), out=str(run_dir))
    if steps is not None:
        if steps < state["step"]:
            raise MixtaskError(f"--steps {steps} is below the run's step {state['step']}")
        options = replace(options, steps=steps, stage1_steps=stage1_steps(options))
    return options


def default_command() -> str:
    import shlex
    import sys

    return " ".join(shlex.quote(arg) for arg in [Path(sys.argv[0]).name, *sys.argv[1:]])
