"""Synthesised mixed samples, made ahead of training (paper, Sec. 3.3, Method 3).

`mixtask synth` runs a stage-1 model over clean crops of a dataset and writes, for each mix,
input/target PNG pairs built by the mixing rules of `mixtask.mixing` (input: clean plus the
restoration members' corruptions; target: clean, re-rendered by the stage-1 model per style
member, times the object mask if seg is a member). `manifest.jsonl` has one line per pair:

    {"index": 0, "input": "000000-denoise+style1-input.png", "target": "...-target.png",
     "mix": "denoise+style1", "tasks": ["denoise", "style1"],
     "task_names": ["inpaint", "denoise", "seg", "style1"], "vector": [0, 1, 0, 1]}

`vector` is the mix's task vector in `task_names` order (every member 1.0, Table 2).
`train --synth DIR` reads such a folder back through `SynthFolder`.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from mixtask.errors import MixtaskError
from mixtask.fileio import atomic_path, write_bytes_atomic
from mixtask.mixing import MixRule, corrupt_input, derive_mixes, make_stylizer, render_target
from mixtask.tasks import DEFAULT_MIXES, TaskSet
from mixtask.tensors import from_uint8, to_array
from mixtask.training import distributed as ddp

MANIFEST_NAME = "manifest.jsonl"
INFO_NAME = "synth.json"


@dataclass(frozen=True)
class SynthOptions:
    """What `mixtask synth` makes: `count` pairs of `size` px, spread evenly over `mixes`."""

    weights: str
    data: str
    out: str
    mixes: tuple[str, ...] | None = None  # None: the paper's mixes the model has the tasks for
    count: int = 100
    size: int = 256
    seed: int = 0
    batch: int = 8
    precision: str = "auto"
    device: str = "auto"
    command: str = ""


@dataclass(frozen=True)
class SynthResult:
    out: Path
    count: int
    per_mix: dict[str, int]


# ----------------------------------------------------------------------------- images


def write_png(path: Path, image: torch.Tensor) -> None:
    from mixtask.images import encode, to_pil

    write_bytes_atomic(path, encode(to_pil(to_array(image)), "png"))


def read_image(path: Path) -> torch.Tensor:
    """An image file -> (3, H, W) float in [0, 1]."""
    from mixtask.images import load_image

    return from_uint8(load_image(path).rgb)


def fit(image: torch.Tensor, size: int) -> torch.Tensor:
    """(C, H, W) -> (C, size, size): resized (antialiased) so the short side is `size`, centre crop."""
    height, width = image.shape[-2:]
    if (height, width) != (size, size):
        scale = size / min(height, width)
        shape = (max(size, round(height * scale)), max(size, round(width * scale)))
        image = F.interpolate(image[None], size=shape, mode="bilinear", antialias=True)[0]
    top, left = (image.shape[-2] - size) // 2, (image.shape[-1] - size) // 2
    return image[:, top : top + size, left : left + size]


def contact_sheet(rows, size: int, headers: tuple[str, ...]):
    """A PIL sheet: one row per (label, image, image, ...), images (3, H, W) or None (grey)."""
    from PIL import Image, ImageDraw

    label_width, header_height = 140, 16
    sheet = Image.new("RGB", (label_width + size * len(headers), header_height + size * len(rows)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    for column, header in enumerate(headers):
        draw.text((label_width + column * size + 4, 2), header, fill=(230, 230, 230))
    for row, (label, *images) in enumerate(rows):
        top = header_height + row * size
        draw.text((4, top + 4), label, fill=(230, 230, 230))
        for column, image in enumerate(images):
            if image is not None:
                tile = Image.fromarray(to_array(fit(image.detach().float().cpu(), size)))
                sheet.paste(tile, (label_width + column * size, top))
    return sheet


# ----------------------------------------------------------------------------- making pairs


def default_mix_texts(task_set: TaskSet) -> tuple[str, ...]:
    """The paper's mixes whose tasks the model has."""
    texts = tuple("+".join(mix) for mix in DEFAULT_MIXES if all(name in task_set.names for name in mix))
    if not texts:
        raise MixtaskError(f"no default mix fits this model's tasks; pass --mix, {task_set.valid_names_text()}")
    return texts


def split_count(count: int, rules: tuple[MixRule, ...]) -> list[tuple[MixRule, int]]:
    """`count` pairs spread as evenly as possible over the mixes, in order."""
    share, extra = divmod(count, len(rules))
    return [(rule, share + (1 if i < extra else 0)) for i, rule in enumerate(rules)]


def mixed_pair(rule: MixRule, sampler, corruptions: dict, generator, stylize, batch: int, device: str):
    """(inputs, targets) of `batch` fresh samples of one mix."""
    if rule.needs_mask:
        clean, mask = sampler.segmentation(batch)
    else:
        clean, mask = sampler.clean(batch), None
    inputs = corrupt_input(rule, clean, corruptions, generator)
    mask = None if mask is None else mask.to(device)
    return inputs, render_target(rule, clean.to(device), mask, stylize).cpu()


def manifest_record(index: int, rule: MixRule, task_set: TaskSet) -> dict:
    stem = f"{index:06d}-{rule.label}"
    return {
        "index": index,
        "input": f"{stem}-input.png",
        "target": f"{stem}-target.png",
        "mix": rule.label,
        "tasks": list(rule.names),
        "task_names": list(task_set.names),
        "vector": list(rule.vector),
    }


def write_pairs(out: Path, records: list[dict], inputs: torch.Tensor, targets: torch.Tensor) -> None:
    for record, image, target in zip(records, inputs, targets):
        write_png(out / record["input"], image)
        write_png(out / record["target"], target)


def check_synth_options(options: SynthOptions) -> None:
    if options.count < 1 or options.batch < 1:
        raise MixtaskError("--count and --batch must be at least 1")
    if options.size < 16 or options.size % 4:
        raise MixtaskError(f"--size must be a multiple of 4, at least 16 ({options.size})")
    if (Path(options.out) / MANIFEST_NAME).exists():
        raise MixtaskError(f"{options.out} already holds synthesised samples ({MANIFEST_NAME}); pick another --out")


def open_sources(options: SynthOptions):
    """(stage-1 model, its task set, the mix rules, a sample maker, the device, the precision)."""
    from mixtask.data import SampleMaker, default_max_side, load_dataset
    from mixtask.weights import load_weights

    model, info = load_weights(options.weights)
    rules = derive_mixes(info.task_set, options.mixes or default_mix_texts(info.task_set))
    if not Path(options.data).is_dir():
        raise MixtaskError(f"data folder {options.data} not found")
    dataset = load_dataset(options.data, "train", max_side=default_max_side(options.size))
    device = ddp.pick_device(options.device)
    dtype = ddp.autocast_dtype(options.precision, device)
    return model.to(device), info.task_set, rules, SampleMaker(dataset, options.size, seed=options.seed), device, dtype


def synthesize(options: SynthOptions, progress=None) -> SynthResult:
    """Write `count` mixed input/target pairs and their manifest into `out`."""
    from mixtask.data import CORRUPTIONS

    check_synth_options(options)
    model, task_set, rules, sampler, device, dtype = open_sources(options)
    stylize = make_stylizer(model, task_set, lambda: ddp.autocast(device, dtype))
    generator = torch.Generator().manual_seed(options.seed)
    out, records, per_mix = Path(options.out), [], {}
    for rule, count in split_count(options.count, rules):
        per_mix[rule.label] = count
        for start in range(0, count, options.batch):
            n = min(options.batch, count - start)
            batch_records = [manifest_record(len(records) + i, rule, task_set) for i in range(n)]
            write_pairs(out, batch_records, *mixed_pair(rule, sampler, CORRUPTIONS, generator, stylize, n, device))
            records += batch_records
            if progress is not None:
                progress(len(records), options.count)
    write_manifest(out, records, options)
    return SynthResult(out, len(records), per_mix)


def write_manifest(out: Path, records: list[dict], options: SynthOptions) -> None:
    """manifest.jsonl last, so a folder with a manifest is always complete; synth.json: provenance."""
    info = asdict(options) | {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    with atomic_path(out / INFO_NAME) as temp:
        temp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    with atomic_path(out / MANIFEST_NAME) as temp:
        temp.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")


# ----------------------------------------------------------------------------- reading a folder back


def read_manifest(folder: str | Path) -> list[dict]:
    """The records of a synth folder, checked: every line parses, names its files, and they exist."""
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    if not path.is_file():
        raise MixtaskError(f"--synth {folder}: no {MANIFEST_NAME} (make one with `mixtask synth`)")
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            records.append(_check_record(folder, number, line))
    if not records:
        raise MixtaskError(f"--synth {folder}: {MANIFEST_NAME} lists no samples")
    return records


def _check_record(folder: Path, number: int, line: str) -> dict:
    where = f"--synth {folder}: {MANIFEST_NAME} line {number}"
    try:
        record = json.loads(line)
        names, vector, members = record["task_names"], record["vector"], record["tasks"]
        files = (record["input"], record["target"])
    except (ValueError, KeyError, TypeError) as error:
        raise MixtaskError(f"{where} is not a valid record ({error})") from None
    if len(names) != len(vector) or {n for n, v in zip(names, vector) if v > 0} != set(members):
        raise MixtaskError(f"{where}: vector {vector} does not match mix {record.get('mix')}")
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise MixtaskError(f"{where}: missing file {folder / missing[0]}")
    return record


class SynthFolder:
    """Pairs of a synth folder grouped by mix; `sample` draws a random batch of one mix."""

    def __init__(self, folder: Path, records: list[dict], size: int):
        self.folder, self.size = folder, size
        self.by_mix: dict[str, list[dict]] = {}
        for record in records:
            self.by_mix.setdefault("+".join(record["tasks"]), []).append(record)

    @classmethod
    def open(cls, folder: str | Path, size: int) -> SynthFolder:
        return cls(Path(folder), read_manifest(folder), size)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.by_mix)

    def relabel(self, labels: dict[str, str]) -> None:
        """Rename mixes to a model's canonical labels (task-vector order may differ from the file's)."""
        self.by_mix = {labels[label]: records for label, records in self.by_mix.items()}

    def sample(self, label: str, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(inputs, targets), (B, 3, size, size) each: random pairs of mix `label`, fitted to size."""
        pool = self.by_mix[label]
        picks = torch.randint(len(pool), (batch,), generator=generator).tolist()
        pairs = [self._pair(pool[i]) for i in picks]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])

    def _pair(self, record: dict) -> tuple[torch.Tensor, torch.Tensor]:
        images = [read_image(self.folder / record[key]) for key in ("input", "target")]
        return fit(images[0], self.size), fit(images[1], self.size)
