"""What `apply` runs on every image: a task vector (`TaskVector`) or a task map (`taskmaps.TaskMap`, per-pixel
strengths). `parse_condition` reads the options once, before any file is touched; both kinds then answer the
same questions:

- `slug`: the output-name form (`seg+style1`, `map-regions`);
- `uniform`: the one task vector when it is the same everywhere, else None (seg's cut-out and a user mask
  need one);
- `check(translator)`: a MixtaskError now if the architecture cannot take it (one error, not one per file);
- `run(translator, rgb)`: (H, W, 3) uint8 -> (H, W, 3) uint8.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mixtask.inference.taskmaps import TaskMap, check_options, load_task_map
from mixtask.tasks import TaskSet


@dataclass(frozen=True)
class TaskVector:
    """One strength per task, the same for every pixel."""

    strengths: tuple[float, ...]
    slug: str

    @property
    def uniform(self) -> tuple[float, ...]:
        return self.strengths

    def check(self, translator) -> None:
        translator.check_task(self.strengths)

    def run(self, translator, rgb: np.ndarray) -> np.ndarray:
        return translator.translate_array(rgb, self.strengths)


Condition = TaskVector | TaskMap


def task_vector(task_set: TaskSet, strengths: tuple[float, ...]) -> TaskVector:
    return TaskVector(tuple(strengths), task_set.slug(strengths))


def parse_condition(task: str | None, task_map: Path | None, map_tasks: str | None, task_set: TaskSet) -> Condition:
    """--task, or --task-map with --map-tasks (and --task as its base), checked and read once."""
    check_options(task, task_map, map_tasks)
    if task_map is None:
        return task_vector(task_set, task_set.parse(task))
    return load_task_map(task_map, map_tasks, task_set, base=task)
