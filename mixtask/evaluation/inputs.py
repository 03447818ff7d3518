"""What `mixtask eval` scores on: its options, the fixed samples, the backbones and the style references.

`Context` carries them to the sections of `mixtask.evaluation.groups`, and runs the model (each output
computed once per input and task vector). Samples are seeded crops, composites and corruptions
of one data split, so two runs see the same inputs.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mixtask.backbones import efficientnet_lite
from mixtask.errors import MixtaskError
from mixtask.nets.capabilities import Capabilities
from mixtask.tasks import Task, TaskSet
from mixtask.tensors import from_uint8, to_array

if TYPE_CHECKING:
    from mixtask.inference.translator import Translator
    from mixtask.weights import WeightsInfo

MIN_SIZE, MIN_COUNT = 32, 2
VGG_FILE, EFFNET_FILE = "vgg16-features.safetensors", efficientnet_lite.FILE_NAME
STYLE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


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
    only: tuple[str, ...] = ()  # tasks and mixes ("denoise+style1") to score, besides recon; (): all of them

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
    teacher: Callable[[torch.Tensor], torch.Tensor] | None = None  # the Magenta teacher's rendering, when it runs here


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
    saliency: Callable[[torch.Tensor], torch.Tensor] | None = None  # U²-Net-p's masks, when it runs here
    info: WeightsInfo | None = None  # the weights' metadata, for `apply`'s own paths (`as_applied` and the like)
    _translator: Translator | None = field(default=None, repr=False)

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

    def as_applied(self, x: torch.Tensor, strengths: dict[str, float]) -> torch.Tensor:
        """A restoration alone as `mixtask apply` writes it (`mixtask.inference.blending.restore`: the gate
        sharpened, the generated pixels blended into the kept ones), 8-bit, on the CPU."""
        from mixtask.inference.blending import restore

        vector = self.task_set.vector(strengths)
        return torch.stack([from_uint8(restore(self._apply_translator(), to_array(image), vector)) for image in x])

    def inpaint_given_mask(self, damaged: torch.Tensor, mask: torch.Tensor, strengths: dict[str, float]):
        """`damaged` (B, 3, H, W) in [0, 1] with its holes `mask` (B, 1, H, W) filled as `mixtask apply --mask`
        fills them (`mixtask.inference.inpainting.inpaint`: the network told where the holes are, its fill blended into
        their rim, every other pixel kept), 8-bit, on the CPU."""
        from mixtask.inference.inpainting import inpaint

        vector = self.task_set.vector(strengths)
        filled = [
            from_uint8(inpaint(self._apply_translator(), to_array(image), hole[0].numpy() > 0.5, vector))
            for image, hole in zip(damaged, mask, strict=True)
        ]
        return torch.stack(filled)

    def _apply_translator(self) -> Translator:
        """`apply`'s engine around the evaluated model, in fp32 like the model's other rows."""
        from mixtask.inference.translator import Translator

        if self._translator is None:
            self._translator = Translator(self.model, self.info, device=self.options.device, precision="fp32")
        return self._translator

    def translate(self, x: torch.Tensor, strengths: dict[str, float]) -> torch.Tensor:
        """The model's output for `x` at the given strengths, clamped to [0, 1], on the CPU.

        Outputs are remembered per (input, vector): a style target of a mix or a sweep end point
        that equals a task's own output is computed once. Inputs must stay alive for the run.
        """
        return self._outputs(x, strengths)[0]

    def gate(self, x: torch.Tensor, strengths: dict[str, float]) -> torch.Tensor | None:
        """The gated head's gate (sigmoid of its logit, (B, 1, H, W), on the CPU) in the same pass as
        `translate`'s output, or None for a head without a gate. Under seg it is the object mask that
        `mixtask apply --cutout alpha` writes as alpha."""
        return self._outputs(x, strengths)[1]

    def _outputs(self, x: torch.Tensor, strengths: dict[str, float]) -> tuple[torch.Tensor, torch.Tensor | None]:
        vector = self.task_set.vector(strengths)
        key = (id(x), vector)
        if key not in self.cache:
            self.cache[key] = (x, *self._run_model(x, vector))  # keeping x keeps its id unique
        return self.cache[key][1:]

    @torch.inference_mode()
    def _run_model(self, x: torch.Tensor, vector: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor | None]:
        from mixtask.nets.film import recording_gates

        device = torch.device(self.options.device)
        c = torch.tensor(vector, device=device)
        outputs, gates = [], []
        for chunk in x.split(self.options.batch):
            chunk = chunk.to(device).contiguous(memory_format=torch.channels_last)
            with recording_gates() as logits:
                output = self.model.forward_any_size(chunk, c.expand(chunk.shape[0], -1))
            outputs.append(output.float().clamp(0, 1).cpu().contiguous())
            if logits:  # the padded network's last gate, cut back to the chunk as its output is
                gates.append(torch.sigmoid(logits[-1].float())[..., : output.shape[-2], : output.shape[-1]].cpu())
        return torch.cat(outputs), torch.cat(gates) if len(gates) == len(outputs) else None

    @torch.inference_mode()
    def features(self, network: torch.nn.Module, x: torch.Tensor, **kwargs):
        """Backbone features of `x` in chunks, concatenated (tensors or dicts of tensors)."""
        device = torch.device(self.options.device)
        parts = [network(chunk.to(device), **kwargs) for chunk in x.split(self.options.batch)]
        if isinstance(parts[0], dict):
            return {key: torch.cat([part[key].float().cpu() for part in parts]) for key in parts[0]}
        return torch.cat([part.float().cpu() for part in parts])


# ----------------------------------------------------------------------------- loading


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
    from mixtask.backbones.perceptual import resize_short_side, style_targets
    from mixtask.images import load_image

    rgb = from_uint8(load_image(path).rgb)[None]
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
    return StyleReference(path, grams, crops, floor, style_teacher(path, ctx.notes))


def teacher_runs(model: Path) -> bool:
    """Whether an ONNX teacher can run here: ONNX Runtime installed and its file present."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None and model.is_file()


def style_teacher(style_image: Path, notes: list[str]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The Magenta style teacher for one style image as a batch function (N, 3, H, W) in [0, 1] -> the same,
    or None (with a note) where ONNX Runtime or the teacher's files are missing. It is the reference the
    styles are judged against (a "Magenta teacher" row) and renders the style part of the mixes' targets."""
    from mixtask.backbones.teachers import STYLE_TRANSFORM, StyleTeacher, default_teacher_dir

    folder = default_teacher_dir()
    if not teacher_runs(folder / STYLE_TRANSFORM):
        note = f"no style teacher (ONNX Runtime and {folder}): mix targets use the model's own styles"
        if note not in notes:  # one note for all styles
            notes.append(note)
        return None
    teacher = StyleTeacher(folder, style_image)
    rendered: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id of a kept input -> (input, rendering)

    def render(x: torch.Tensor) -> torch.Tensor:
        """Once per input: the style row and a mix on the same clean samples share it (as `Context.translate`)."""
        if id(x) not in rendered:
            styled = [torch.from_numpy(teacher.render(to_array(image)).copy()) for image in x]
            rendered[id(x)] = (x, torch.stack(styled).permute(0, 3, 1, 2).float() / 255)  # keeping x keeps its id
        return rendered[id(x)][1]

    return render


def saliency_teacher(notes: list[str]) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """U²-Net-p (rembg's small salient-object net) as a batch function (N, 3, H, W) in [0, 1] -> (N, 1, H, W)
    masks in [0, 1], or None (with a note) where ONNX Runtime or its file is missing: the seg sections'
    "U2-Net-p teacher" row, the reference the seg bars are set against."""
    from mixtask.backbones.teachers import SALIENCY, SaliencyTeacher, default_teacher_dir

    path = default_teacher_dir() / SALIENCY
    if not teacher_runs(path):
        notes.append(f"no salient-object teacher (ONNX Runtime and {path}): no U2-Net-p row")
        return None
    teacher = SaliencyTeacher(path)

    def masks(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.from_numpy(teacher.mask(to_array(image)).copy()) for image in x])[:, None] / 255

    return masks


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
