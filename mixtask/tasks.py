"""Tasks, their registry, and the task-vector language (paper, Sec. 3.1 and Table 1).

A model has one task-vector entry per non-identity task; all zeros is reconstruction. Task
names, aliases and descriptions travel in the weights file, so retrained weights with other
tasks work unchanged. `--task denoise=1,style1=0.6` is parsed against that `TaskSet`.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field

from mixtask.errors import UsageError

IDENTITY_NAMES = ("recon", "reconstruction", "identity")
TASK_KINDS = ("inpaint", "denoise", "seg", "style")
# seg renders the object on black: an output pixel is foreground when its brightest channel exceeds this
FOREGROUND_THRESHOLD = 0.1
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Task:
    """One entry of the task vector."""

    name: str
    kind: str  # one of TASK_KINDS: decides how training data and mixes are made
    aliases: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self):
        if self.kind not in TASK_KINDS:
            raise UsageError(f"task {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(TASK_KINDS)})")
        for label in (self.name, *self.aliases):
            if not NAME_PATTERN.match(label) or label in IDENTITY_NAMES:
                raise UsageError(f"task name {label!r} is not allowed: use lower-case letters, digits and _")


DEFAULT_TASKS = (
    Task("inpaint", "inpaint", ("inpainting", "holes"), "fill square holes"),
    Task("denoise", "denoise", ("denoising", "scratches"), "remove scratches"),
    Task("seg", "seg", ("segment", "segmentation", "cutout"), "cut out salient objects, background black"),
    Task("style1", "style", ("starry", "starry_night"), "Van Gogh, The Starry Night"),
    Task("style2", "style", ("autumn",), "Autumn digital painting (plasma wallpaper)"),
)
DEFAULT_MIXES = (("denoise", "style1"), ("denoise", "seg"), ("seg", "style1"))


@dataclass(frozen=True)
class TaskSet:
    """The tasks of one model, in task-vector order, and the mixes it was trained on."""

    tasks: tuple[Task, ...]
    mixes: tuple[tuple[str, ...], ...] = field(default=())

    def __post_init__(self):
        labels = [label for task in self.tasks for label in (task.name, *task.aliases)]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            raise UsageError(f"task names/aliases used twice: {', '.join(duplicates)}")
        for mix in self.mixes:
            for name in mix:
                self.index(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(task.name for task in self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def index(self, label: str) -> int:
        """Position of a task given its name or one of its aliases."""
        for i, task in enumerate(self.tasks):
            if label == task.name or label in task.aliases:
                return i
        raise UsageError(f"unknown task {label!r}; {self.valid_names_text()}")

    def valid_names_text(self) -> str:
        entries = [f"{t.name} ({', '.join(t.aliases)})" if t.aliases else t.name for t in self.tasks]
        return "valid tasks: recon, " + ", ".join(entries)

    def parse(self, text: str) -> tuple[float, ...]:
        """Turn `denoise=1,style1=0.6` (or `seg+style1`, or `recon`) into a task vector."""
        return parse_task_vector(text, self)

    def vector(self, strengths: dict[str, float]) -> tuple[float, ...]:
        """{name or alias: strength} -> task vector; an unknown or repeated task or a non-number is a UsageError
        (the range is checked where the vector is used)."""
        values: list[float | None] = [None] * len(self.tasks)
        for label, value in strengths.items():
            index = self.index(str(label))
            if values[index] is not None:
                raise UsageError(f"task {self.tasks[index].name!r} given twice in {dict(strengths)!r}")
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UsageError(f"task {label!r}: strength {value!r} is not a number")
            values[index] = float(value)
        return tuple(0.0 if value is None else value for value in values)

    def describe(self, vector) -> str:
        """Canonical text of a vector, e.g. `denoise=1,style1=0.6`; `recon` for zeros."""
        parts = [f"{t.name}={_format_value(v)}" for t, v in zip(self.tasks, vector) if v > 0]
        return ",".join(parts) or "recon"

    def slug(self, vector) -> str:
        """File-name-safe form of a vector, e.g. `denoise+style1_0.6`; `recon` for zeros."""
        parts = [t.name if v == 1 else f"{t.name}_{_format_value(v)}" for t, v in zip(self.tasks, vector) if v > 0]
        return "+".join(parts) or "recon"

    def to_json(self) -> dict:
        return {"tasks": [asdict(t) for t in self.tasks], "mixes": [list(m) for m in self.mixes]}

    @classmethod
    def from_json(cls, data: dict) -> TaskSet:
        tasks = tuple(
            Task(t["name"], t["kind"], tuple(t.get("aliases", ())), t.get("description", "")) for t in data["tasks"]
        )
        return cls(tasks, tuple(tuple(m) for m in data.get("mixes", ())))


DEFAULT_TASK_SET = TaskSet(DEFAULT_TASKS, DEFAULT_MIXES)


def _format_value(value: float) -> str:
    return f"{value:.4g}"


ASCII_NUMBER = re.compile(r"[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)", re.ASCII | re.IGNORECASE)


def _parse_value(label: str, text: str, task_set: TaskSet) -> float:
    try:
        if not ASCII_NUMBER.fullmatch(text):  # float() also takes '١' and '1_0', which no one means here
            raise ValueError(text)
        value = float(text)
    except ValueError:
        raise UsageError(f"task {label!r}: {text!r} is not a number (use e.g. {label}=0.5)") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise UsageError(f"task {label!r}: strength {text!r} is outside [0, 1]")
    return value


def parse_task_vector(text: str, task_set: TaskSet) -> tuple[float, ...]:
    """Parse `name[=value]` items separated by `,` or `+` into a task vector.

    A bare name means strength 1. `recon` (or `identity`) stands alone and means all zeros.
    Every error names the problem and lists the valid task names.
    """
    items = [item.strip() for item in re.split(r"[,+]", text or "")]
    if not any(items):
        raise UsageError(f"empty task; {task_set.valid_names_text()}")
    if not all(items):
        raise UsageError(f"empty item in task {text!r} (stray ',' or '+'); {task_set.valid_names_text()}")
    values = [0.0] * len(task_set)
    seen: set[int] = set()
    for item in items:
        label, has_value, value_text = (part.strip() for part in item.partition("="))
        label = label.lower()
        if label in IDENTITY_NAMES:
            if has_value:
                raise UsageError(f"{label!r} takes no strength (it means all strengths 0): write --task {label}")
            if len(items) > 1:
                raise UsageError(f"{label!r} means all strengths 0: give it alone, e.g. --task recon")
            continue
        index = task_set.index(label)
        if index in seen:
            raise UsageError(f"task {task_set.tasks[index].name!r} given twice in {text!r}")
        seen.add(index)
        values[index] = _parse_value(label, value_text, task_set) if has_value else 1.0
    return tuple(values)
