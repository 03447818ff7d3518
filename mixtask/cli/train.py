"""`mixtask train`: train single tasks and mixes (paper, Sec. 3.3); the loop is `mixtask.training`."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.choices import BALANCES, COMPOSITES, HEADS, SCHEDULES, SEG_LOSSES, STYLE_LOSSES, WEIGHTINGS
from mixtask.cli.common import Precision, choice_enum, user_errors
from mixtask.nets import registry as archs
from mixtask.training.options import RESUME_OVERRIDES, TrainOptions  # no torch: the defaults

STYLE_HELP = "A style task and its image, NAME=IMAGE (repeat for more styles), e.g. style1=starry.jpg."
MIX_HELP = "A mix of 2-3 tasks to train, e.g. denoise+style1 (repeat; default: the paper's three that fit)."
METHOD_HELP = (
    "1: single tasks only; 2: mixes with the summed member losses; 3: synthesise mixes (two stages).  "
    "\\[default: 3; 1 for an --arch that cannot mix]"
)
ARCH_HELP = "Network: film (the paper's FiLM network) or another conditioning scheme to compare (mixtask.nets)."
RESUME_FLAGS = ", ".join(["--steps", *(f"--{name.replace('_', '-')}" for name in RESUME_OVERRIDES)])
RESUME_HELP = (
    f"Continue the run in this folder (its options are reused; only {RESUME_FLAGS} and, in stage 1, "
    "--stage1-steps may change)."
)
TUNE_BACKBONE_HELP = (
    "Train the context backbone's weights too, through its 1/32 features (its BatchNorms keep their ImageNet "
    "statistics); --freeze-backbone: keep them.  \\[default: frozen]"
)
EMA_HELP = (
    "Export an exponential moving average of the weights, updated every step with this decay (e.g. 0.999: about "
    "the last 1,000 steps), steadier than the last step's weights; 0: off.  \\[default: 0]"
)
DEEP_SEG_HELP = (
    "Seg deep supervision (film, --seg-loss mask, per-batch): this times BCE + Dice of a training-only 1x1 head on the "
    "bottleneck against the mask at 1/4 resolution; 0: off."
)
COMPOSITES_HELP = (
    "Seg composites: pasted = any background crop, the mask is the cut-out's; plain = backgrounds whose own "
    "mask covers < 2 %; union = any background, its own mask joined to the cut-out's.  \\[default: pasted]"
)
SEG_PHOTOS_HELP = (
    "Share of seg's examples that are photos with masks (the rest: cut-outs pasted on photos), with --resume "
    "from here on.  \\[default: 0.3, 0.5 with exact masks]"
)
PARTIAL_STRENGTHS_HELP = (
    "Share of single-task batches trained at random strengths in [0, 1) against the blend of input and target, "
    "to teach what strengths between 0 and 1 mean; with --resume from here on."
)
STYLE_TEXTURE_HELP = (
    "--style-loss teacher: add this times a Gram loss of frozen EfficientNet-Lite0 features (DATA/backbones/, or "
    "--context-backbone's file) against the teacher's rendering; asks for its brush strokes, not their places; "
    "with --resume from here on.  \\[default: 0, off]"
)
SEG_L1_HELP = (
    "--seg-loss mask: weight of the L1 on seg's image (the L2's is 1); it pulls each pixel to the median of what it "
    "may be, the object or black, where BCE keeps the gate a probability; with --resume from here on.  \\[default: 1]"
)
MIX_L1_HELP = (
    "Method 3 mixes with seg (their background black): add this times an L1 to the synthesised target to the L2, "
    "whose pull fades near black and leaves faint traces the read-out counts as object; with --resume from here "
    "on.  \\[default: 0, off]"
)
COMPILE_HELP = "torch.compile the network: about 30 s once, then faster steps (same numerics; needs a C++ compiler)."
CONTEXT_HELP = (
    "3x3 convs of a global-context branch at 1/32 of the image (film only; 0: none, the paper's network). "
    "With --init from weights without one, the branch starts at zero."
)
CONTEXT_BACKBONE_HELP = (
    "EfficientNet-Lite0 weights (e.g. DATA/backbones/efficientnet-lite0.safetensors) whose frozen features the "
    "context branch adds (needs --context; the weights go into the network's file)."
)
CONTEXT_SCALES_HELP = (
    "The backbone's scales the context branch adds: 1, its 1/32 features (to the pooled context); 2 also adds "
    "its 1/16 stage and 3 also its 1/8 stage, to the bottleneck features (zero-started: --init stays exact)."
)
HEAD_HELP = "Output head: gated (input pass-through + exposure re-applied, see README) or the paper's rgb."
SCHEDULE_HELP = "per-batch: one uniformly drawn task per step (the paper); joint: every task in each step."
WEIGHTING_HELP = "How --schedule joint combines the task losses (equal, Kendall uncertainty, DWA, GradNorm)."
STYLE_LOSS_HELP = (
    "teacher: L1 to renderings by the Magenta style teacher (--teachers), made once per photo; "
    "perceptual: the paper's VGG content + Gram loss."
)
SEG_LOSS_HELP = "mask: L2 + L1 on the image, BCE + Dice on the gated head's gate (the mask); l2: the paper's L2 alone."
DAMAGE_WEIGHT_HELP = (
    "inpaint/denoise alone: add this times the L2 over the damaged pixels only; with --resume from here on.  "
    "\\[default: 0, off]"
)
KEEP_WEIGHT_HELP = (
    "inpaint/denoise alone: BCE of the gated head's gate against the undamaged pixels, times this; with --resume "
    "from here on.  \\[default: 0, off]"
)
KEEP_KINDS_HELP = (
    "Which restorations' gates --keep-weight supervises: inpaint, denoise or both (commas); with --resume from here "
    f"on.  \\[default: {TrainOptions.keep_kinds}]"
)
KEEP_PARTIAL_HELP = (
    "--keep-weight below full strength too: in a --partial-strengths batch at strength s the gate is trained "
    "towards 1 - s on the damaged pixels (the input's share of the blended target); with --resume from here on.  "
    "\\[default: off]"
)
RESTORATION_L1_HELP = "inpaint/denoise alone: add this times an L1 on the image (it pulls kept pixels to exact)."
INIT_HELP = "Start the network from these weights (same --arch, sizes, head and tasks): a warm start."
JOB_WEIGHTS_HELP = (
    "Per-batch schedule: draw some jobs more (or less) often, JOB=WEIGHT,... e.g. seg=3,inpaint=2 "
    "(jobs: recon, the tasks, the mixes; others keep 1).  \\[default: uniform]"
)


Arch = choice_enum("Arch", archs.names())  # one place to add one: the registry
Head = choice_enum("Head", HEADS)
StyleLoss = choice_enum("StyleLoss", STYLE_LOSSES)
SegLoss = choice_enum("SegLoss", SEG_LOSSES)
Composites = choice_enum("Composites", COMPOSITES)
Balance = choice_enum("Balance", BALANCES)
Schedule = choice_enum("Schedule", SCHEDULES)
Weighting = choice_enum("Weighting", WEIGHTINGS)


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\n"
    "mixtask train --data ../shared/data --out runs/try --style style1=starry.jpg --steps 2000 --size 128\n\n"
    "mixtask train --resume runs/try --steps 4000\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("train", epilog=EXAMPLES)(train_command)


@user_errors
def train_command(
    data: Path = typer.Option(None, "--data", help="Dataset folder (photos/, masks/, cutouts/ or Pascal VOC)."),
    out: Path = typer.Option(None, "--out", help="Run folder: checkpoint, log.jsonl, previews/, weights."),
    style: list[str] = typer.Option([], "--style", help=STYLE_HELP),
    mix: list[str] = typer.Option([], "--mix", help=MIX_HELP),
    mix_method: int = typer.Option(None, "--mix-method", min=1, max=3, help=METHOD_HELP, show_default=False),
    steps: int = typer.Option(None, "--steps", help=f"Optimiser steps in all (default {TrainOptions.steps})."),
    stage1_steps: int = typer.Option(None, "--stage1-steps", help="Method 3: steps of stage 1 \\[default: half]"),
    size: int = typer.Option(
        None, "--size", help=f"Training crop side in pixels, a multiple of 4 (default {TrainOptions.size})."
    ),
    batch: int = typer.Option(
        TrainOptions.batch, "--batch", help="Images per mini-batch (per process under torchrun)."
    ),
    lr: float = typer.Option(
        None, "--lr", help=f"Adam learning rate, with --resume from here on (default {TrainOptions.lr:g})."
    ),
    seed: int = typer.Option(TrainOptions.seed, "--seed"),
    vgg: Path = typer.Option(None, "--vgg", help="VGG16 weights for style losses \\[default: $MIXTASK_VGG or shared]"),
    content_weight: float = typer.Option(
        TrainOptions.content_weight, "--content-weight", help="Perceptual loss: content term."
    ),
    style_weight: float = typer.Option(
        TrainOptions.style_weight, "--style-weight", help="Perceptual loss: Gram (style) term."
    ),
    tv_weight: float = typer.Option(
        TrainOptions.tv_weight, "--tv-weight", help="Perceptual loss: total variation term."
    ),
    adversarial_weight: float = typer.Option(
        TrainOptions.adversarial_weight, "--adversarial-weight", help="Seg PatchGAN weight; 0: off."
    ),
    style_loss: StyleLoss = typer.Option(StyleLoss(TrainOptions.style_loss), "--style-loss", help=STYLE_LOSS_HELP),
    seg_loss: SegLoss = typer.Option(SegLoss(TrainOptions.seg_loss), "--seg-loss", help=SEG_LOSS_HELP),
    mask_weight: float = typer.Option(
        TrainOptions.mask_weight, "--mask-weight", help="--seg-loss mask: weight of BCE + Dice."
    ),
    seg_l1_weight: float = typer.Option(None, "--seg-l1-weight", help=SEG_L1_HELP, show_default=False),
    mix_l1_weight: float = typer.Option(None, "--mix-l1-weight", help=MIX_L1_HELP, show_default=False),
    composites: Composites = typer.Option(None, "--composites", help=COMPOSITES_HELP, show_default=False),
    seg_photos: float = typer.Option(None, "--seg-photos", help=SEG_PHOTOS_HELP, show_default=False),
    partial_strengths: float = typer.Option(
        None, "--partial-strengths", help=PARTIAL_STRENGTHS_HELP, show_default=False
    ),
    deep_seg_weight: float = typer.Option(TrainOptions.deep_seg_weight, "--deep-seg-weight", help=DEEP_SEG_HELP),
    ema_decay: float = typer.Option(None, "--ema-decay", help=EMA_HELP, show_default=False),
    damage_weight: float = typer.Option(None, "--damage-weight", help=DAMAGE_WEIGHT_HELP, show_default=False),
    keep_weight: float = typer.Option(None, "--keep-weight", help=KEEP_WEIGHT_HELP, show_default=False),
    keep_kinds: str = typer.Option(None, "--keep-kinds", metavar="KINDS", help=KEEP_KINDS_HELP, show_default=False),
    keep_partial: bool = typer.Option(
        None, "--keep-partial/--no-keep-partial", help=KEEP_PARTIAL_HELP, show_default=False
    ),
    restoration_l1: float = typer.Option(TrainOptions.restoration_l1, "--restoration-l1", help=RESTORATION_L1_HELP),
    style_texture: float = typer.Option(None, "--style-texture", help=STYLE_TEXTURE_HELP, show_default=False),
    teachers: Path = typer.Option(None, "--teachers", help="Teachers' ONNX folder \\[default: ../shared/teachers]"),
    init: Path = typer.Option(None, "--init", help=INIT_HELP),
    masks: str = typer.Option(None, "--masks", help="Mask set masks/NAME/ when the data has several."),
    balance: Balance = typer.Option(
        Balance(TrainOptions.balance), "--balance", help="ema: divide each task's loss by its running mean."
    ),
    schedule: Schedule = typer.Option(Schedule(TrainOptions.schedule), "--schedule", help=SCHEDULE_HELP),
    weighting: Weighting = typer.Option(Weighting(TrainOptions.weighting), "--weighting", help=WEIGHTING_HELP),
    job_weights: str = typer.Option(None, "--job-weights", help=JOB_WEIGHTS_HELP, show_default=False),
    width: int = typer.Option(TrainOptions.width, "--width", help="Base channels of the network (the paper: 32)."),
    res_blocks: int = typer.Option(TrainOptions.res_blocks, "--res-blocks", help="Residual blocks (the paper: 5)."),
    film_layers: int = typer.Option(
        TrainOptions.film_layers, "--film-layers", help="Depth of the FiLM generator (the paper: 1, 3 or 5)."
    ),
    context: int = typer.Option(TrainOptions.context, "--context", min=0, max=8, help=CONTEXT_HELP),
    context_backbone: Path = typer.Option(
        None, "--context-backbone", help=CONTEXT_BACKBONE_HELP, show_default=False, exists=True, dir_okay=False
    ),
    context_scales: int = typer.Option(
        TrainOptions.context_scales, "--context-scales", min=1, max=3, help=CONTEXT_SCALES_HELP
    ),
    tune_backbone: bool = typer.Option(
        None, "--tune-backbone/--freeze-backbone", help=TUNE_BACKBONE_HELP, show_default=False
    ),
    arch: Arch = typer.Option(TrainOptions.arch, "--arch", help=ARCH_HELP),
    head: Head = typer.Option(Head(TrainOptions.head), "--head", help=HEAD_HELP),
    precision: Precision = typer.Option(
        Precision(TrainOptions.precision), "--precision", help="auto: bf16 where the CPU/GPU has it."
    ),
    device: str = typer.Option(TrainOptions.device, "--device", help="auto, cpu or cuda."),
    compile: bool = typer.Option(None, "--compile/--no-compile", help=COMPILE_HELP, show_default=False),
    synth: Path = typer.Option(None, "--synth", help="Folder from `mixtask synth`: extra mixed samples (method 3)."),
    preview_every: int = typer.Option(
        TrainOptions.preview_every, "--preview-every", help="Preview sheet every N steps; 0: never."
    ),
    checkpoint_every: int = typer.Option(
        TrainOptions.checkpoint_every, "--checkpoint-every", help="Checkpoint every N steps (and on Ctrl-C)."
    ),
    evaluate: bool = typer.Option(False, "--eval", help="Score the final weights on DATA's val split (eval.json)."),
    resume: Path = typer.Option(None, "--resume", help=RESUME_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display."),
) -> None:
    """Train the FiLM network on inpaint, denoise, seg, the given styles and their mixes."""
    given = dict(locals())  # the parameters, for the options a resume may change
    from mixtask.errors import UsageError
    from mixtask.training import default_command, parse_style, resume_options, train

    if resume is not None:
        if data or out or style:
            raise UsageError(f"--resume takes the run's own options: give only {RESUME_FLAGS}, --stage1-steps")
        overrides = {name: given[name] for name in RESUME_OVERRIDES} | {"composites": composites and composites.value}
        options = resume_options(resume, steps=steps, stage1=stage1_steps, **overrides)
    elif data is None or out is None:
        raise UsageError("give --data DIR and --out RUN_DIR (or --resume RUN_DIR)")
    else:
        options = TrainOptions(
            data=str(data), out=str(out), styles=tuple(parse_style(text) for text in style), mixes=tuple(mix) or None,
            mix_method=resolve_mix_method(mix_method, arch.value), arch=arch.value, steps=steps or TrainOptions.steps,
            stage1_steps=stage1_steps, size=size or TrainOptions.size, batch=batch,
            lr=TrainOptions.lr if lr is None else lr,  # None: not given (on --resume: keep the run's)
            seed=seed, vgg=None if vgg is None else str(vgg), content_weight=content_weight,
            style_weight=style_weight, tv_weight=tv_weight, adversarial_weight=adversarial_weight, width=width,
            style_loss=style_loss.value, seg_loss=seg_loss.value, mask_weight=mask_weight,
            seg_l1_weight=TrainOptions.seg_l1_weight if seg_l1_weight is None else seg_l1_weight,
            mix_l1_weight=mix_l1_weight or 0.0,
            composites=composites.value if composites else TrainOptions.composites,
            seg_photos=seg_photos,
            partial_strengths=partial_strengths or 0.0,
            ema_decay=TrainOptions.ema_decay if ema_decay is None else ema_decay,
            deep_seg_weight=deep_seg_weight,
            damage_weight=damage_weight or 0.0,
            keep_weight=keep_weight or 0.0,
            keep_kinds=keep_kinds or TrainOptions.keep_kinds,
            keep_partial=bool(keep_partial),
            restoration_l1=restoration_l1,
            style_texture=style_texture or 0.0,
            teachers=None if teachers is None else str(teachers), init=None if init is None else str(init),
            mask_set=masks,
            balance=balance.value, schedule=schedule.value, weighting=weighting.value, job_weights=job_weights or "",
            res_blocks=res_blocks, film_layers=film_layers, context=context,
            context_backbone=None if context_backbone is None else str(context_backbone),
            context_scales=context_scales, tune_backbone=bool(tune_backbone), head=head.value,
            precision=precision.value,
            device=device,
            compile=bool(compile),
            synth=None if synth is None else str(synth), preview_every=preview_every,
            checkpoint_every=checkpoint_every, evaluate=evaluate, command=default_command(),
        )  # fmt: skip
    report(train(options, resume=resume is not None, quiet=quiet))


def resolve_mix_method(given: int | None, arch: str) -> int:
    """--mix-method as given, else 3, or 1 (said on stderr) for an architecture that cannot mix."""
    from mixtask.training.options import default_mix_method

    if given is not None:
        return given
    method = default_mix_method(arch)
    if method == 1:
        typer.echo(f"--arch {arch} cannot mix tasks: training single tasks only (--mix-method 1)", err=True)
    return method


def report(result) -> None:
    if not result.is_main:
        return
    if result.interrupted:
        typer.echo(f"stopped at step {result.steps}; continue with: mixtask train --resume {result.run_dir}", err=True)
        raise typer.Exit(130)
    typer.echo(f"{result.steps} steps, {result.seconds_per_step:.3f} s/step ({result.data_fraction:.1%} data)")
    typer.echo(f"weights: {result.weights}")
