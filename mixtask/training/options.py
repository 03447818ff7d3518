"""A run's options: what `mixtask train` parses, checks and stores in every checkpoint."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from mixtask.choices import (
    BALANCES,
    COMPOSITES,
    GATED_HEADS,
    HEADS,
    PRECISIONS,
    SCHEDULES,
    SEG_LOSSES,
    STYLE_LOSSES,
    WEIGHTINGS,
)
from mixtask.errors import MixtaskError, UsageError
from mixtask.mixing import RESTORATION_KINDS
from mixtask.nets import registry as archs

MIX_METHODS = (1, 2, 3)


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
    style_loss: str = "teacher"  # "teacher": L1 to the Magenta teacher's renderings; "perceptual": the paper's VGG loss
    seg_loss: str = "mask"  # "mask": L2 + L1 on the image, BCE + Dice on the gated head's gate; "l2": the paper's
    mask_weight: float = 1.0  # --seg-loss mask: weight of BCE + Dice against the L2
    seg_l1_weight: float = 1.0  # --seg-loss mask: weight of the L1 on the image (its pull to black, to the median)
    mix_l1_weight: float = 0.0  # Method 3 mixes with seg: an L1 to the synthesised target besides the L2, times this
    composites: str = "pasted"  # seg composites' backgrounds and labels (data.sampling.COMPOSITES)
    seg_photos: float | None = None  # share of seg's examples that are masked photos; None: data.sampling's default
    partial_strengths: float = 0.0  # share of single-task batches trained at strengths below 1 (training.step)
    ema_decay: float = 0.0  # exported weights: an exponential moving average of the trained ones (0: the raw weights)
    deep_seg_weight: float = 0.0  # film, --seg-loss mask: BCE + Dice of a training-only head on the bottleneck
    damage_weight: float = 0.0  # inpaint/denoise alone: extra L2 on the damaged pixels (their mean), times this
    keep_weight: float = 0.0  # inpaint/denoise alone: BCE of the gate against the undamaged pixels, times this
    keep_kinds: str = "inpaint,denoise"  # which restorations' gates --keep-weight supervises (task kinds, commas)
    keep_partial: bool = False  # their --partial-strengths batches too: the gate towards 1 - s on damaged pixels
    restoration_l1: float = 0.0  # inpaint/denoise alone: an L1 on the image besides the L2, times this
    style_texture: float = 0.0  # --style-loss teacher: add this times a Gram loss against the rendering (TextureLoss)
    teachers: str | None = None  # folder of the teachers' ONNX files; None: $MIXTASK_TEACHERS or ../shared/teachers
    mask_set: str | None = None  # masks/<name>/ to train seg on when the data has several; None: the only one
    init: str | None = None  # a weights file to start the network from (a warm start), same tasks and architecture
    balance: str = "ema"  # "ema": divide each job's loss by its running mean; "none": raw sums
    schedule: str = "per-batch"  # one uniformly drawn job per step (the paper), or "joint": every job each step
    weighting: str = "equal"  # joint schedule: how job losses combine (training.weighting)
    job_weights: str = ""  # per-batch schedule: "seg=3,inpaint=2" draws those jobs more often; "": uniform
    style_size: int | None = None  # short side of the style image for its Grams; None: `size`
    width: int = 32
    res_blocks: int = 5
    film_layers: int = 1
    context: int = 0  # film only: 3x3 convs of the global-context branch (nets.film.ContextBranch); 0: none
    context_backbone: str | None = None  # EfficientNet-Lite0 weights the context branch looks through; None: none
    context_scales: int = 1  # the backbone's scales the branch adds (nets.film.ModelConfig.context_scales)
    tune_backbone: bool = False  # train the context branch's backbone too (its own Adam group); False: frozen
    arch: str = "film"
    head: str = "gated"  # output head of the network (every arch): "gated", "gated-fill" or the paper's "rgb"
    precision: str = "auto"
    device: str = "auto"
    compile: bool = False  # torch.compile the network's forward and backward (same numerics, faster steps)
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
        values.setdefault("head", "rgb")  # runs started before output heads existed
        values.setdefault("style_loss", "perceptual")  # and before the teacher recipe (the paper's losses)
        values.setdefault("seg_loss", "l2")
        values["styles"] = tuple(StyleSpec(**style) for style in values.get("styles", ()))
        if values.get("mixes") is not None:
            values["mixes"] = tuple(values["mixes"])
        return cls(**values)


def parse_style(text: str) -> StyleSpec:
    """`style1=path/to/image.jpg` -> StyleSpec."""
    name, sep, image = (part.strip() for part in text.partition("="))
    if not sep or not name or not image:
        raise UsageError(f"--style {text!r}: write it as NAME=IMAGE, e.g. --style style1=starry.jpg")
    return StyleSpec(name.lower(), image)


def parse_job_weights(text: str) -> tuple[tuple[str, float], ...]:
    """`--job-weights seg=3,inpaint=2` -> (("seg", 3.0), ("inpaint", 2.0)); jobs not named keep weight 1."""
    pairs = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        weight = _job_weight(value) if sep else None
        if not name.strip() or weight is None:
            raise MixtaskError(f"--job-weights: {item!r} is not JOB=WEIGHT with a finite weight >= 0 (e.g. seg=3)")
        pairs.append((name.strip(), weight))
    return tuple(pairs)


def _job_weight(text: str) -> float | None:
    try:
        weight = float(text)
    except ValueError:
        return None
    return weight if math.isfinite(weight) and weight >= 0 else None


def trains_base_first(arch: str) -> bool:
    """Whether an architecture trains in two stages of its own: its base, then per-task parts (Piggyback)."""
    from mixtask.nets.registry import architecture_class, names  # imports the architecture, hence torch

    return arch in names() and bool(getattr(architecture_class(arch), "base_then_tasks", False))


def stage1_steps(options: TrainOptions) -> int:
    """Steps of stage 1 (Method 3, or an architecture's base stage); the whole run otherwise."""
    if options.mix_method != 3 and not trains_base_first(options.arch):
        return options.steps
    return options.steps // 2 if options.stage1_steps is None else options.stage1_steps


def check_options(options: TrainOptions) -> None:
    """Reject impossible numbers early, with the option's name."""
    from mixtask.nets.film import CONFIG_RANGES  # here, not at the top: `mixtask --help` imports this module

    low, high = CONFIG_RANGES["context"]
    scales_low, scales_high = CONFIG_RANGES["context_scales"]
    checks = [
        (options.mix_method in MIX_METHODS, f"--mix-method must be 1, 2 or 3, not {options.mix_method}"),
        (options.steps >= 1, "--steps must be at least 1"),
        (options.batch >= 1, "--batch must be at least 1"),
        (options.size >= 32 and options.size % 4 == 0, f"--size must be a multiple of 4, at least 32 ({options.size})"),
        (0 <= stage1_steps(options) <= options.steps, "--stage1-steps must be between 0 and --steps"),
        (options.lr > 0, "--lr must be positive"),
        (options.head in HEADS, f"--head must be one of {', '.join(HEADS)}"),
        (options.arch in archs.names(), f"--arch {options.arch!r} is unknown: use one of {', '.join(archs.names())}"),
        (options.precision in PRECISIONS, f"--precision must be one of {', '.join(PRECISIONS)}"),
        (options.balance in BALANCES, f"--balance must be one of {', '.join(BALANCES)}"),
        (options.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}"),
        (options.weighting in WEIGHTINGS, f"--weighting must be one of {', '.join(WEIGHTINGS)}"),
        (options.style_loss in STYLE_LOSSES, f"--style-loss must be one of {', '.join(STYLE_LOSSES)}"),
        (options.seg_loss in SEG_LOSSES, f"--seg-loss must be one of {', '.join(SEG_LOSSES)}"),
        (options.seg_loss == "l2" or options.head in GATED_HEADS, "--seg-loss mask needs a gated --head"),
        (math.isfinite(options.mask_weight) and options.mask_weight >= 0, "--mask-weight must be >= 0"),
        (math.isfinite(options.seg_l1_weight) and options.seg_l1_weight >= 0, "--seg-l1-weight must be >= 0"),
        (options.seg_l1_weight == 1 or options.seg_loss == "mask", "--seg-l1-weight needs --seg-loss mask"),
        (math.isfinite(options.mix_l1_weight) and options.mix_l1_weight >= 0, "--mix-l1-weight must be >= 0"),
        (options.mix_l1_weight == 0 or options.mix_method == 3, "--mix-l1-weight needs --mix-method 3"),
        (options.composites in COMPOSITES, f"--composites must be one of {', '.join(COMPOSITES)}"),
        (options.seg_photos is None or 0 <= options.seg_photos <= 1, "--seg-photos must be in [0, 1]"),
        (0 <= options.partial_strengths <= 1, "--partial-strengths must be in [0, 1]"),
        (
            options.partial_strengths == 0 or options.schedule == "per-batch",
            "--partial-strengths needs --schedule per-batch",
        ),
        (math.isfinite(options.deep_seg_weight) and options.deep_seg_weight >= 0, "--deep-seg-weight must be >= 0"),
        (0 <= options.ema_decay < 1, "--ema-decay must be in [0, 1)"),
        (low <= options.context <= high, f"--context must be {low}..{high}"),
        (options.context == 0 or options.arch == "film", "--context needs --arch film"),
        (not options.context_backbone or options.context > 0, "--context-backbone needs --context 1 or more"),
        (scales_low <= options.context_scales <= scales_high, f"--context-scales must be {scales_low}..{scales_high}"),
        (options.context_scales == 1 or options.context_backbone, "--context-scales 2 or 3 needs --context-backbone"),
        (not options.tune_backbone or options.context_backbone, "--tune-backbone needs --context-backbone"),
        (
            options.deep_seg_weight == 0
            or (options.arch == "film" and options.seg_loss == "mask" and options.schedule == "per-batch"),
            "--deep-seg-weight needs --arch film, --seg-loss mask and --schedule per-batch",
        ),
        (math.isfinite(options.damage_weight) and options.damage_weight >= 0, "--damage-weight must be >= 0"),
        (math.isfinite(options.keep_weight) and options.keep_weight >= 0, "--keep-weight must be >= 0"),
        (math.isfinite(options.restoration_l1) and options.restoration_l1 >= 0, "--restoration-l1 must be >= 0"),
        (math.isfinite(options.style_texture) and options.style_texture >= 0, "--style-texture must be >= 0"),
        (options.style_texture == 0 or options.style_loss == "teacher", "--style-texture needs --style-loss teacher"),
        (options.keep_weight == 0 or options.head in GATED_HEADS, "--keep-weight needs a gated --head"),
        (keep_kinds(options) <= set(RESTORATION_KINDS), f"--keep-kinds takes {' and '.join(RESTORATION_KINDS)}"),
        (
            not options.keep_partial or (options.keep_weight > 0 and options.partial_strengths > 0),
            "--keep-partial needs --keep-weight and --partial-strengths",
        ),
        (options.schedule == "joint" or options.weighting == "equal", weighting_needs_joint(options.weighting)),
        (options.schedule == "per-batch" or not options.job_weights, "--job-weights needs --schedule per-batch"),
        (options.synth is None or options.mix_method == 3, "--synth needs --mix-method 3 (L2 on synthesised mixes)"),
        (min(options.log_every, options.preview_every, options.checkpoint_every) >= 0, "intervals must be >= 0"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    parse_job_weights(options.job_weights)
    check_arch_can_mix(options)


def keep_kinds(options: TrainOptions) -> set[str]:
    """The restorations (task kinds) whose gate `--keep-weight` supervises."""
    return {kind.strip() for kind in options.keep_kinds.split(",") if kind.strip()}


def check_arch_can_mix(options: TrainOptions) -> None:
    """An architecture that cannot mix tasks trains single tasks only (Method 1)."""
    if options.mix_method == 1 and not options.mixes and options.synth is None:
        return
    from mixtask.nets.capabilities import of_arch  # imports the architecture, hence torch

    if not of_arch(options.arch).mixes:
        raise MixtaskError(
            f"the {options.arch} architecture cannot mix tasks: train it with --mix-method 1 (single tasks only), "
            "without --mix or --synth"
        )


def default_mix_method(arch: str) -> int:
    """Method 3 (synthesised mixes, the paper's best), or 1 for an architecture that cannot mix."""
    from mixtask.nets.capabilities import of_arch

    return 3 if of_arch(arch).mixes else 1


def weighting_needs_joint(weighting: str) -> str:
    return (
        f"--weighting {weighting} needs --schedule joint: the per-batch schedule trains one job per step, "
        "so there are no losses to weigh against each other (use --balance there)"
    )


# The options a resume may change besides its steps and the end of stage 1: one list for `resume_options`, the
# CLI's --resume and the sessions the training log records.
RESUME_OVERRIDES = (
    "size", "lr", "job_weights", "compile", "composites", "seg_photos", "partial_strengths", "ema_decay",
    "style_texture", "seg_l1_weight", "mix_l1_weight", "damage_weight", "keep_weight", "keep_kinds", "tune_backbone",
    "keep_partial",
)  # fmt: skip


def resume_options(
    run_dir: str | Path, steps: int | None = None, stage1: int | None = None, **overrides
) -> TrainOptions:
    """The options of an earlier run, optionally with more `steps`, a new end of stage 1 (`stage1`, only while
    the run is still in stage 1) and new values of `RESUME_OVERRIDES`: a new crop `size` (fine-tuning), learning
    rate `lr` (a step decay by hand), `job_weights`, `compile` on or off (speed only), seg `composites` or share of
    masked photos (`seg_photos`), share of batches at strengths below 1 (`partial_strengths`), weight of the
    styles' texture term (`style_texture`), of seg's L1 (`seg_l1_weight`), of the seg mixes' L1
    (`mix_l1_weight`), of the damaged pixels' L2 (`damage_weight`) or of the restorations' gate BCE
    (`keep_weight`, which restorations: `keep_kinds`, and whether below full strength too: `keep_partial`), the
    context backbone trained or frozen (`tune_backbone`), or `ema_decay` (turned on here, the average starts from
    the weights at the resume)."""
    from mixtask.training.checkpoint import load_checkpoint  # torch: only when resuming

    if unknown := sorted(set(overrides) - set(RESUME_OVERRIDES)):
        raise TypeError(f"a resume cannot change {', '.join(unknown)}")
    state = load_checkpoint(run_dir)
    options = replace(TrainOptions.from_json(state["options"]), out=str(run_dir))
    if steps is not None:
        if steps < state["step"]:
            raise MixtaskError(f"--steps {steps} is below the run's step {state['step']}")
        options = replace(options, steps=steps, stage1_steps=stage1_steps(options))
    if stage1 is not None:
        if state["step"] >= stage1_steps(options) or stage1 < state["step"]:
            # The stage-2 teacher is the network as it was at the end of stage 1: that end cannot move back.
            raise MixtaskError(
                f"--stage1-steps {stage1}: the run is at step {state['step']} and stage 1 ends at "
                f"{stage1_steps(options)}; stage 1's end can only move while the run is in it, and not before its step"
            )
        options = replace(options, stage1_steps=stage1)
    options = replace(options, **{name: value for name, value in overrides.items() if value is not None})
    check_options(options)
    return options


def default_command() -> str:
    import shlex
    import sys

    return " ".join(shlex.quote(arg) for arg in [Path(sys.argv[0]).name, *sys.argv[1:]])
