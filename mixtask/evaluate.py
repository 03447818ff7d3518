"""Deterministic held-out evaluation of a weights file (paper, Sec. 4: Table 3 and Fig. 8).

Every task of the weights' TaskSet, and every mix it was trained on, is scored on fixed samples
of one data split: seeded crops, composites and corruptions, so two runs give the same numbers.
Which metrics apply is decided by the task's *kind* (registry `SECTIONS`), never by its name:

- recon, inpaint, denoise, seg and mixes: PSNR, SSIM, MSE in ImageNet-normalised space against
  the target; inpaint/denoise also PSNR over the damaged pixels only; seg (and mixes with seg)
  also the IoU of the object read from the cut-out output, on composites (exact masks) and,
  separately, on photos with pseudo-label masks;
- style: relative Gram distance to the style image (VGG), relative relu3_3 distance to the input
  and a Fréchet distance on EfficientNet-Lite0 features against random crops of the style image.

Context rows put each number in perspective: the identity (input as output) everywhere, and the
classical baselines of `mixtask.baselines`. `strength_sweep` scores each task at strengths
0, 0.2, ..., 1 and says whether its metric moves monotonically (the paper's Fig. 8).
What the model's architecture cannot do (mixes, strengths between 0 and 1; `capabilities`)
is skipped and reported as "n/a", not scored as a failure.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from mixtask import metrics
from mixtask.capabilities import Capabilities, not_applicable, of_class
from mixtask.errors import MixtaskError
from mixtask.tasks import Task, TaskSet

FD_LABEL = "FD-EffNetLite0, not comparable to published FID"
SWEEP_STRENGTHS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
MIN_SIZE, MIN_COUNT = 32, 2
VGG_FILE, EFFNET_FILE = "vgg16-features.safetensors", "efficientnet-lite0.safetensors"
STYLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MIX_STYLE_NOTE = "mix targets: their style part is rendered by the evaluated model itself (standing in for stage 1)"
Log = Callable[[str], None]


@dataclass(frozen=True)
class EvalOptions:
    """What to evaluate, on what, and how."""

    data: Path
    weights: Path | None = None  # None: the shipped model
    split: str = "val"
    size: int = 256  # side of the square crops
    count: int = 16  # samples per task (and per mix)
    vgg: Path | None = None  # None: DATA/backbones/vgg16-features.safetensors if present, else skipped
    effnet: Path | None = None  # None: DATA/backbones/efficientnet-lite0.safetensors if present, else skipped
    styles: tuple[tuple[str, str], ...] = ()  # (task, image) overrides of the style images
    strength_sweep: bool = False
    seed: int = 0
    batch: int = 4
    device: str = "cpu"

    def check(self) -> None:
        if self.size < MIN_SIZE:
            raise MixtaskError(f"--size must be at least {MIN_SIZE} px (got {self.size})")
        if self.count < MIN_COUNT:
            raise MixtaskError(f"--count must be at least {MIN_COUNT} (got {self.count})")
        if not Path(self.data).is_dir():
            raise MixtaskError(f"data folder {self.data} does not exist (pass --data DIR, e.g. ../shared/data)")


@dataclass
class Backbones:
    """Feature extractors for the style metrics; None when unavailable (metric skipped)."""

    vgg: torch.nn.Module | None = None
    effnet: torch.nn.Module | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Samples:
    """Fixed evaluation inputs, all (N, C, size, size) in [0, 1]."""

    clean: torch.Tensor
    composites: tuple[torch.Tensor, torch.Tensor] | None  # images, exact alpha masks
    photos: tuple[torch.Tensor, torch.Tensor] | None  # images, (pseudo-)label masks
    photo_label: str  # "pseudo-label" or "exact"


@dataclass(frozen=True)
class StyleReference:
    """A style image's Gram targets and its random crops (features) for the Fréchet distance."""

    image: Path
    grams: dict[str, torch.Tensor] | None
    crop_features: torch.Tensor | None
    floor_features: torch.Tensor | None  # a second set of crops: the FD of style vs style


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


@dataclass
class Context:
    """Everything the sections share: the model, its tasks, the samples, the backbones."""

    model: torch.nn.Module
    task_set: TaskSet
    options: EvalOptions
    samples: Samples
    backbones: Backbones
    styles: dict[str, StyleReference]
    notes: list[str]
    cache: dict = field(default_factory=dict)  # (id of a kept input, vector) -> output
    can: Capabilities = field(default_factory=lambda: Capabilities("film"))  # what the architecture can do

    def generator(self, label: str) -> torch.Generator:
        """A fresh generator per task / mix: its corruptions do not depend on what ran before."""
        return torch.Generator().manual_seed(self.options.seed * 1_000_003 + zlib.crc32(label.encode()))

    def damaged(self, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean samples with `task`'s corruption, made once (the sweep reuses them)."""
        from mixtask.data import CORRUPTIONS

        key = ("damaged", task.name)
        if key not in self.cache:
            self.cache[key] = CORRUPTIONS[task.kind](self.samples.clean, self.generator(task.name))
        return self.cache[key]

    def translate(self, x: torch.Tensor, strengths: dict[str, float]) -> torch.Tensor:
        """The model's output for `x` at the given strengths, clamped to [0, 1], on the CPU.

        Outputs are remembered per (input, vector): a style target of a mix or a sweep end point
        that equals a task's own output is computed once. Inputs must stay alive for the run.
        """
        vector = self.task_set.vector(strengths)
        key = (id(x), vector)
        if key not in self.cache:
            self.cache[key] = (x, self._run_model(x, vector))  # keeping x keeps its id unique
        return self.cache[key][1]

    @torch.inference_mode()
    def _run_model(self, x: torch.Tensor, vector: tuple[float, ...]) -> torch.Tensor:
        device = torch.device(self.options.device)
        c = torch.tensor(vector, device=device)
        outputs = []
        for chunk in x.split(self.options.batch):
            chunk = chunk.to(device).contiguous(memory_format=torch.channels_last)
            output = self.model.forward_any_size(chunk, c.expand(chunk.shape[0], -1))
            outputs.append(output.float().clamp(0, 1).cpu().contiguous())
        return torch.cat(outputs)

    @torch.inference_mode()
    def features(self, network: torch.nn.Module, x: torch.Tensor, **kwargs):
        """Backbone features of `x` in chunks, concatenated (tensors or dicts of tensors)."""
        device = torch.device(self.options.device)
        parts = [network(chunk.to(device), **kwargs) for chunk in x.split(self.options.batch)]
        if isinstance(parts[0], dict):
            return {key: torch.cat([part[key].float().cpu() for part in parts]) for key in parts[0]}
        return torch.cat([part.float().cpu() for part in parts])


# ----------------------------------------------------------------------------- loading


def load_model(path: Path | None):
    """(model, WeightsInfo) of a weights file; tests replace this to inject a model."""
    from mixtask.weights import load_weights

    return load_weights(path)


def _backbone_path(explicit: Path | None, data: Path, filename: str, flag: str) -> Path | None:
    if explicit is not None:
        if not Path(explicit).is_file():
            raise MixtaskError(f"{flag} {explicit}: file not found")
        return Path(explicit)
    candidate = Path(data) / "backbones" / filename
    return candidate if candidate.is_file() else None


def load_backbones(options: EvalOptions) -> Backbones:
    """VGG and EfficientNet-Lite0 from the given paths or DATA/backbones/; a missing default is a note."""
    from mixtask.backbones import load_efficientnet_lite0, load_vgg

    backbones = Backbones()
    vgg_path = _backbone_path(options.vgg, options.data, VGG_FILE, "--vgg")
    effnet_path = _backbone_path(options.effnet, options.data, EFFNET_FILE, "--effnet")
    if vgg_path is None:
        backbones.notes.append(f"no VGG16 ({options.data}/backbones/{VGG_FILE}, or --vgg): style/content skipped")
    else:
        backbones.vgg = load_vgg(vgg_path).to(options.device)
    if effnet_path is None:
        where = f"{options.data}/backbones/{EFFNET_FILE}, or --effnet"
        backbones.notes.append(f"no EfficientNet-Lite0 ({where}): Fréchet distance skipped")
    else:
        backbones.effnet = load_efficientnet_lite0(effnet_path).to(options.device)
    return backbones


def make_samples(options: EvalOptions, notes: list[str]) -> Samples:
    """Seeded crops of the split: clean photos, composites with exact masks, photos with masks."""
    from mixtask.data import SampleMaker, default_max_side, load_dataset

    dataset = load_dataset(options.data, options.split, max_side=default_max_side(options.size), warn=notes.append)
    count, size, seed = options.count, options.size, options.seed
    clean = SampleMaker(dataset, size, seed).clean(count)
    composites = photos = None
    if dataset.cutouts:
        composites = SampleMaker(dataset, size, seed + 1, mask_fraction=0.0).segmentation(count)
    else:
        notes.append(f"no cut-outs in the {options.split} split: no composite segmentation scores")
    with_masks = SampleMaker(dataset, size, seed + 2, mask_fraction=1.0)
    if with_masks.mask_pool:
        photos = with_masks.segmentation(count)
    else:
        notes.append(f"no photo masks with >= 1% foreground in the {options.split} split: no photo IoU")
    label = "exact" if dataset.exact_masks else "pseudo-label"
    return Samples(clean, composites, photos, label)


def _style_image_path(task: Task, options: EvalOptions, provenance: dict) -> Path | None:
    """--style override, else the image recorded in the weights' provenance, else DATA/styles/<name>-*."""
    given = dict(options.styles)
    if task.name in given:
        path = Path(given[task.name])
        if not path.is_file():
            raise MixtaskError(f"--style {task.name}={path}: file not found")
        return path
    recorded = (provenance.get("styles") or {}).get(task.name)
    if recorded and Path(recorded).is_file():
        return Path(recorded)
    folder = Path(options.data) / "styles"
    found = sorted(p for p in folder.glob(f"{task.name}-*") if p.suffix.lower() in STYLE_SUFFIXES)
    return found[0] if found else None


def _random_crops(image: torch.Tensor, size: int, count: int, generator: torch.Generator) -> torch.Tensor:
    height, width = image.shape[-2:]
    tops = torch.randint(0, height - size + 1, (count,), generator=generator).tolist()
    lefts = torch.randint(0, width - size + 1, (count,), generator=generator).tolist()
    return torch.stack([image[0, :, t : t + size, left : left + size] for t, left in zip(tops, lefts)])


def load_style_reference(ctx: Context, task: Task, path: Path) -> StyleReference:
    """Grams of the style image with its short side at `size` (as in training); crops of that image."""
    from mixtask.images import load_image
    from mixtask.losses import resize_short_side, style_targets

    rgb = torch.from_numpy(load_image(path).rgb).permute(2, 0, 1)[None].float() / 255
    image = resize_short_side(rgb, ctx.options.size)
    vgg, effnet = ctx.backbones.vgg, ctx.backbones.effnet
    grams = None
    if vgg is not None:
        grams = {k: v.cpu() for k, v in style_targets(vgg, image.to(ctx.options.device)).items()}
    crops = floor = None
    if effnet is not None:
        generator = ctx.generator(f"style crops {task.name}")
        crops = ctx.features(effnet, _random_crops(image, ctx.options.size, ctx.options.count, generator))
        floor = ctx.features(effnet, _random_crops(image, ctx.options.size, ctx.options.count, generator))
    return StyleReference(path, grams, crops, floor)


def load_styles(ctx: Context, provenance: dict) -> dict[str, StyleReference]:
    references = {}
    for task in ctx.task_set.tasks:
        if task.kind != "style":
            continue
        path = _style_image_path(task, ctx.options, provenance)
        if path is None:
            ctx.notes.append(f"{task.name}: no style image (--style {task.name}=IMAGE): its style metrics skipped")
        else:
            references[task.name] = load_style_reference(ctx, task, path)
    return references


# ----------------------------------------------------------------------------- metric bundles


def _means(per_image: dict[str, torch.Tensor]) -> dict[str, float]:
    return {name: round(float(values.double().mean()), 6) for name, values in per_image.items()}


def pixel_metrics(output: torch.Tensor, target: torch.Tensor, damaged: torch.Tensor | None = None):
    """PSNR, SSIM and ImageNet-space MSE against the target (+ PSNR on the damaged pixels)."""
    values = {
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
    values: dict[str, float] = {}
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
    from mixtask.baselines import BASELINES

    clean = ctx.samples.clean
    damaged, mask = ctx.damaged(task)
    rows = {
        "model": pixel_metrics(ctx.translate(damaged, {task.name: 1.0}), clean, mask),
        "identity": pixel_metrics(damaged, clean, mask),
    }
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
    return Group(name, task.kind, source, len(images), rows)


def seg_groups(ctx: Context, task: Task) -> list[Group]:
    """seg on composites (exact masks) and on photos with their (pseudo-)label masks."""
    groups = []
    if ctx.samples.composites is not None:
        source = "cut-outs pasted on crops (exact masks)"
        groups.append(_seg_group(ctx, task, f"{task.name} composites", source, *ctx.samples.composites))
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
    rows = {
        "model": style_metrics(ctx, reference, ctx.translate(clean, {task.name: 1.0}), clean),
        "identity": style_metrics(ctx, reference, clean, clean),
    }
    if not rows["model"]:
        ctx.notes.append(f"{task.name}: no VGG16 and no EfficientNet-Lite0, so no style metrics")
        return []
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
    """A trained mix against its synthesised target (design.md, "Mixed tasks"), the model as stage 1."""
    from mixtask.data import CORRUPTIONS
    from mixtask.mixing import corrupt_input, derive_mix, render_target

    rule = derive_mix(ctx.task_set, "+".join(mix))
    if rule.needs_mask and ctx.samples.composites is None:
        ctx.notes.append(f"mix {rule.label}: skipped (needs composites, and the split has no cut-outs)")
        return None
    if rule.styles and MIX_STYLE_NOTE not in ctx.notes:
        ctx.notes.append(MIX_STYLE_NOTE)
    clean, mask = ctx.samples.composites if rule.needs_mask else (ctx.samples.clean, None)
    inputs = corrupt_input(rule, clean, CORRUPTIONS, ctx.generator(rule.label))
    target = render_target(rule, clean, mask, lambda x, name: ctx.translate(x, {name: 1.0}))
    output = ctx.translate(inputs, dict.fromkeys(rule.names, 1.0))
    if mask is None:
        rows = {"model": pixel_metrics(output, target), "identity": pixel_metrics(inputs, target)}
    else:
        rows = {"model": seg_metrics(output, target, mask > 0.5), "identity": seg_metrics(inputs, target, mask > 0.5)}
    source = "composites" if rule.needs_mask else "clean crops"
    return Group(rule.label, "mix", f"{source}, synthesised target", len(clean), rows)


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


# ----------------------------------------------------------------------------- the run


def _split_notes(split: str) -> list[str]:
    if split == "train":
        return ["split 'train': these samples were seen in training; the numbers are NOT held-out"]
    return []


def _all_groups(ctx: Context, log: Log) -> list[Group]:
    groups = [recon_group(ctx)]
    for task in ctx.task_set.tasks:
        log(f"evaluating {task.name}")
        groups += SECTIONS[task.kind](ctx, task)
    for mix in ctx.task_set.mixes if ctx.can.mixes else ():
        log(f"evaluating mix {'+'.join(mix)}")
        groups += [group for group in [mix_group(ctx, mix)] if group is not None]
    return groups


def _strength_sweep(ctx: Context, log: Log) -> list[dict]:
    if not ctx.can.continuous:  # n/a rows: the architecture takes strengths 0 and 1 only
        na = {"metric": "n/a", "values": [], "direction": "n/a", "monotonic": None, "reason": ctx.can.not_continuous}
        return [{"task": task.name, **na} for task in ctx.task_set.tasks]
    rows = []
    for task in ctx.task_set.tasks:
        log(f"strength sweep of {task.name}")
        rows.append(sweep_task(ctx, task))
    return [row for row in rows if row is not None]


def run_evaluation(options: EvalOptions, backbones: Backbones | None = None, log: Log | None = None) -> dict:
    """Evaluate every task and trained mix of `options.weights`; returns the JSON-ready result."""
    log = log or (lambda message: None)
    options.check()
    model, info = load_model(options.weights)
    model = model.to(options.device, memory_format=torch.channels_last).eval()
    notes = _split_notes(options.split)
    log(f"sampling {options.count} fixed examples per task from the {options.split} split")
    samples = make_samples(options, notes)
    if backbones is None:
        has_style = any(task.kind == "style" for task in info.task_set.tasks)
        backbones = load_backbones(options) if has_style else Backbones()
    can = of_class(info.config.arch, type(model))
    ctx = Context(model, info.task_set, options, samples, backbones, {}, notes + backbones.notes, can=can)
    ctx.styles = load_styles(ctx, info.provenance)
    groups = _all_groups(ctx, log)
    sweep = _strength_sweep(ctx, log) if options.strength_sweep else []
    skipped = {part: why for part, why in not_applicable(can).items() if options.strength_sweep or part == "mixes"}
    return _result(options, info, groups, sweep, ctx.notes) | {"arch": can.arch, "not_applicable": skipped}


def _result(options: EvalOptions, info, groups: list[Group], sweep: list[dict], notes: list[str]) -> dict:
    return {
        "weights": str(info.path),
        "data": str(options.data),
        "split": options.split,
        "held_out": options.split != "train",
        "size": options.size,
        "count": options.count,
        "seed": options.seed,
        "fd_label": FD_LABEL,
        "fd_samples": options.count,
        "notes": notes,
        "groups": [asdict(group) for group in groups],
        "sweep": sweep,
    }


def write_json(result: dict, path: Path) -> None:
    from mixtask.fileio import write_bytes_atomic

    write_bytes_atomic(Path(path), (json.dumps(result, indent=2) + "\n").encode())
