"""Strength sweeps: the paper's Fig. 8 as one labelled contact sheet.

One axis (`x`) or two (`x` and `y`) of task strengths from 0 to 1; other entries can be held
fixed by a base task vector. Every cell is the model's output for that vector.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from mixtask.errors import UsageError

LABEL_HEIGHT = 18
MARGIN = 4


@dataclass(frozen=True)
class SweepSpec:
    x_task: str
    y_task: str | None = None
    steps: int = 5
    base: str | None = None  # fixed strengths of the other tasks, e.g. "denoise=1"
    cell: int = 256  # long side of each cell in pixels


def strengths(steps: int) -> list[float]:
    if steps < 2:
        raise UsageError(f"--steps must be at least 2 (got {steps})")
    return [i / (steps - 1) for i in range(steps)]


def sweep_vectors(task_set, spec: SweepSpec) -> list[list[tuple[float, ...]]]:
    """Rows (y strengths) of columns (x strengths) of task vectors."""
    base = list(task_set.parse(spec.base)) if spec.base else [0.0] * len(task_set)
    x_index = task_set.index(spec.x_task)
    y_index = task_set.index(spec.y_task) if spec.y_task else None
    if y_index == x_index:
        raise UsageError(f"--x and --y name the same task ({task_set.tasks[x_index].name})")
    rows = []
    for y_value in strengths(spec.steps) if y_index is not None else [None]:
        row = []
        for x_value in strengths(spec.steps):
            vector = list(base)
            vector[x_index] = x_value
            if y_index is not None:
                vector[y_index] = y_value
            row.append(tuple(vector))
        rows.append(row)
    return rows


def _thumbnail(rgb: np.ndarray, cell: int) -> np.ndarray:
    image = Image.fromarray(rgb)
    image.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    return np.array(image)


def _label(task_set, vector, spec: SweepSpec) -> str:
    names = [spec.x_task] + ([spec.y_task] if spec.y_task else [])
    return "  ".join(f"{name}={vector[task_set.index(name)]:.2f}" for name in names)


def make_sweep_sheet(translator, rgb: np.ndarray, spec: SweepSpec) -> Image.Image:
    """Run the model for every cell and paste the results into one labelled grid."""
    task_set = translator.task_set
    grid = sweep_vectors(task_set, spec)
    small = _thumbnail(rgb, spec.cell)
    height, width = small.shape[:2]
    sheet = Image.new("RGB", (len(grid[0]) * (width + MARGIN), len(grid) * (height + LABEL_HEIGHT + MARGIN)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row_index, row in enumerate(grid):
        for column_index, vector in enumerate(row):
            left = column_index * (width + MARGIN)
            top = row_index * (height + LABEL_HEIGHT + MARGIN)
            sheet.paste(Image.fromarray(translator.translate_array(small, vector)), (left, top + LABEL_HEIGHT))
            draw.text((left + 2, top + 3), _label(task_set, vector, spec), fill="black", font=font)
    return sheet
