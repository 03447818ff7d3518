"""Spatial task maps: a task vector per pixel, read from an image (issue 5).

`mixtask apply photo.jpg --task-map map.png --map-tasks style1,denoise,seg`: the map's R, G
and B channels give each pixel's strength (0..255 -> 0..1) of the named tasks, in order. A
grayscale map drives one task; fewer names than channels use the first channels. Alpha scales
the strengths (transparent = task off), so a map painted on a transparent layer works. The map
is resized to each image, bilinearly (antialiased when shrinking). `--task` gives the other
tasks' strengths, the same everywhere.

Two ways to run, chosen by the architecture's `task_maps` flag (`mixtask.nets.capabilities`):

- native (`task_maps = True`): the per-pixel vectors, (1, tasks, H, W), go to the model in one pass.
- blend (FiLM, `MixNet`: one vector per image). Each channel's strengths are quantised to
  levels: its flat values (those covering at least 1% of the pixels: exact), its minimum and
  maximum, and equal steps of about 1/4 between them. The levels of all channels form a grid,
  and a pixel interpolates linearly between the grid vectors around it: the corners of its
  simplex in Kuhn's triangulation of the grid, at most channels + 1 of them. So a flat region
  of strength v gets exactly the output for v, and a soft edge blends smoothly. The network runs
  once per grid vector in use, on the whole image: InstanceNorm statistics are whole-image, so
  the output for vector v at a pixel is what the whole image under v gives there, and the blend
  of full-image outputs is the right thing to interpolate. At most `MAX_RUNS` (16) runs: beyond
  that the steps grow to 1/2, then to none (flat values, minimum and maximum only), then only
  flat values covering 5% / 20% count, then none (at most 2**channels <= 8 runs).
  To save runs, the triangulation is oriented along the map's edges (of the channel flips, the
  one needing the fewest runs: an edge between (1, 0) and (0, 1) then runs on its own diagonal),
  and a grid vector that never gets 4% of a pixel is dropped (its share goes to the others: the
  1/255 rounding of soft edges would otherwise add runs).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from mixtask import images
from mixtask.errors import MixtaskError, UsageError
from mixtask.tasks import IDENTITY_NAMES, TaskSet
from mixtask.tensors import from_uint8, to_array

MAX_CHANNELS = 3
MAX_RUNS = 16
PRUNE = 0.04  # a grid vector whose weight never reaches this anywhere gets no run
# (share of the pixels that makes a value "flat" or None, level step): coarser and coarser
LADDER = tuple((share, step) for share in (0.01, 0.05, 0.2, None) for step in (0.25, 0.5, 1.0))
GRAY_MODES = ("1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N")
CACHED_SIZES = 4
LOOKUP_LIMIT = 1 << 20  # grids up to this many vertices are indexed directly, larger ones by np.unique


@dataclass(frozen=True)
class Blend:
    """Runs and per-pixel weights: pixel (y, x) = sum over r of weights[r, inverse[y, x]] * run r."""

    strengths: np.ndarray  # (runs, channels) in 0..1: the mapped tasks' strengths of each run
    weights: np.ndarray  # (runs, distinct map vectors) float32; each column sums to 1
    inverse: np.ndarray  # (H, W): each pixel's distinct map vector
    share: float | None  # the ladder rung used: flat-value share ...
    step: float  # ... and level step

    def weight_map(self, run: int) -> np.ndarray:
        return self.weights[run][self.inverse]


@dataclass(frozen=True)
class TaskMap:
    """A loaded map: per-pixel strengths of some tasks, and a uniform vector for the others."""

    name: str  # the map's path, for messages
    codes: np.ndarray  # (h, w, channels) uint8: strength x 255 of each mapped task, alpha applied
    indices: tuple[int, ...]  # task-vector position of each channel
    base: tuple[float, ...]  # the whole task vector where the map is 0
    slug: str  # output-name form, e.g. `map-regions`, `seg+map-regions`
    _blends: dict = field(default_factory=dict, repr=False, compare=False)

    def codes_for(self, width: int, height: int) -> np.ndarray:
        """The map at an image's size: bilinear (antialiased when shrinking), in 1/255 steps."""
        if self.codes.shape[:2] == (height, width):
            return self.codes
        channels = [Image.fromarray(np.ascontiguousarray(self.codes[..., t])) for t in range(self.codes.shape[2])]
        resized = [channel.resize((width, height), Image.Resampling.BILINEAR) for channel in channels]
        return np.stack([np.asarray(channel) for channel in resized], axis=-1)

    def vector(self, strengths) -> tuple[float, ...]:
        """The whole task vector for one value of the mapped channels (each in 0..1)."""
        values = list(self.base)
        for index, value in zip(self.indices, strengths):
            values[index] = float(value)
        return tuple(values)

    def vectors(self, codes: np.ndarray) -> np.ndarray:
        """(H, W, channels) codes -> (tasks, H, W) float32 per-pixel task vectors."""
        out = np.empty((len(self.base), *codes.shape[:2]), np.float32)
        out[:] = np.asarray(self.base, np.float32)[:, None, None]
        for channel, index in enumerate(self.indices):
            out[index] = codes[..., channel] / np.float32(255)
        return out

    def blend(self, codes: np.ndarray) -> Blend:
        """`plan_blend` of the map at one image size, cached (a folder's images often share a size)."""
        key = codes.shape[:2]
        if key not in self._blends:
            if len(self._blends) >= CACHED_SIZES:
                self._blends.pop(next(iter(self._blends)))
            self._blends[key] = plan_blend(codes)
        return self._blends[key]

    # the interface it shares with `conditions.TaskVector`

    uniform = None  # strengths vary per pixel: no one task vector

    def check(self, translator) -> None:
        """The task vectors this map runs at its own size, checked against the architecture once up front: per
        pixel, (1, tasks, h, w), when it takes maps, else one per blend run, (runs, tasks)."""
        if takes_maps(translator):
            translator.check_task(self.vectors(self.codes)[None])
        else:
            translator.check_task(np.array([self.vector(strengths) for strengths in self.blend(self.codes).strengths]))

    def run(self, translator, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 under this map -> (H, W, 3) uint8."""
        import torch

        codes = self.codes_for(rgb.shape[1], rgb.shape[0])
        x = from_uint8(rgb)[None]
        with torch.inference_mode():
            if takes_maps(translator):
                y = translator.translate_tensor(x, torch.from_numpy(self.vectors(codes))[None])[0]
            else:
                y = _blended(translator, x, self, self.blend(codes))
            return to_array(y)


# ----------------------------------------------------------------------------- options and loading


def check_options(task: str | None, task_map: Path | None, map_tasks: str | None) -> None:
    """The combinations of --task, --task-map and --map-tasks that mean something."""
    if task_map is None and map_tasks:
        raise UsageError("--map-tasks names the channels of a task map: give the map too (--task-map MAP)")
    if task_map is not None and not map_tasks:
        raise UsageError("--task-map needs --map-tasks: the tasks its R, G, B channels drive, e.g. style1,seg")
    if task is None and task_map is None:
        raise UsageError("give --task (e.g. --task seg), or a task map: --task-map MAP --map-tasks NAMES")


def load_task_map(path: Path | str, map_tasks: str, task_set: TaskSet, base: str | None = None) -> TaskMap:
    """Read and check a map; `map_tasks` names its channels, `base` (task text) sets the other tasks."""
    path = Path(path)
    indices = parse_map_tasks(map_tasks, task_set)
    vector = task_set.parse(base) if base else (0.0,) * len(task_set)
    both = [task_set.names[i] for i in indices if vector[i] > 0]
    if both:
        raise UsageError(f"{', '.join(both)} is in both --task and --map-tasks; give each task in one of them")
    codes = read_map(path, len(indices))
    return TaskMap(str(path), codes, indices, vector, map_slug(path, task_set, vector))


def parse_map_tasks(text: str, task_set: TaskSet) -> tuple[int, ...]:
    """`style1,denoise,seg` -> task-vector positions for the map's R, G and B channels."""
    labels = [label.strip().lower() for label in re.split(r"[,+]", text or "")]
    if not all(labels):
        raise UsageError(f"--map-tasks {text!r}: give 1 to 3 task names separated by commas, e.g. style1,seg")
    if len(labels) > MAX_CHANNELS:
        raise UsageError(f"--map-tasks names {len(labels)} tasks, but a map has 3 channels (R, G, B) at most")
    for label in labels:
        if label in IDENTITY_NAMES:
            raise UsageError(f"--map-tasks: {label!r} means all strengths 0 and has no channel; name real tasks")
    try:
        indices = tuple(task_set.index(label) for label in labels)
    except MixtaskError as error:
        raise UsageError(f"--map-tasks: {error}") from None
    if len(set(indices)) < len(indices):
        raise UsageError(f"--map-tasks {text!r} names a task twice")
    return indices


def read_map(path: Path, channels: int) -> np.ndarray:
    """(h, w, channels) uint8 strengths x 255 from a map file; alpha multiplies them."""
    loaded = images.load_image(path, f"task map {path}")
    if channels > 1 and _is_grayscale(path):
        raise MixtaskError(f"task map {path} is grayscale, so it drives one task, but --map-tasks names {channels}")
    codes = loaded.rgb[..., :channels]
    if loaded.alpha is not None:
        codes = (codes.astype(np.uint16) * loaded.alpha[..., None] + 127) // 255
    return np.ascontiguousarray(codes, dtype=np.uint8)


def _is_grayscale(path: Path) -> bool:
    with Image.open(path) as image:
        return image.mode in GRAY_MODES


def map_slug(path: Path, task_set: TaskSet, base: tuple[float, ...]) -> str:
    """`map-<stem>` (file-name safe), after the base vector's slug when --task is given."""
    slug = "map-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)
    return f"{task_set.slug(base)}+{slug}" if any(base) else slug


# ----------------------------------------------------------------------------- running


def takes_maps(translator) -> bool:
    """Whether the translator's architecture takes per-pixel task vectors (its `task_maps` flag)."""
    capabilities = getattr(translator, "capabilities", None)
    return bool(getattr(capabilities, "task_maps", False))


def _blended(translator, x, task_map: TaskMap, blend: Blend):
    """One whole-image run per grid vector, blended per pixel with the blend's weights -> (3, H, W)."""
    import torch

    total = None
    for run, strengths in enumerate(blend.strengths):
        y = translator.translate_tensor(x, task_map.vector(strengths))[0]
        if len(blend.strengths) == 1:
            return y
        weight = torch.from_numpy(blend.weight_map(run)).to(y.device)
        total = y.mul_(weight) if total is None else total.addcmul_(y, weight)
    return total


# ----------------------------------------------------------------------------- quantisation


def plan_blend(codes: np.ndarray, max_runs: int = MAX_RUNS) -> Blend:
    """The runs and weights for a map at image size: the first `LADDER` rung within `max_runs` runs."""
    channels = codes.shape[2]
    if max_runs < 2**channels:
        raise ValueError(f"max_runs must be at least {2**channels} for {channels} channels")
    points, counts, inverse = _distinct(codes)
    for share, step in LADDER:
        levels = [_levels(points[:, t], counts, share, step) for t in range(channels)]
        grids = [_Grid(points, levels, flips) for flips in _orientations(channels)]
        grid = min(grids, key=lambda g: g.runs)
        if grid.runs <= max_runs:
            strengths, weights = grid.blend()
            return Blend(strengths, weights, inverse.reshape(codes.shape[:2]), share, step)
    raise AssertionError("the last rung has at most 2**channels runs")


def _distinct(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct map vectors (n, channels) float, how many pixels have each, each pixel's index."""
    keys = np.zeros(codes.shape[:2], np.int32)
    for t in range(codes.shape[2]):
        keys |= codes[..., t].astype(np.int32) << (8 * t)
    unique, inverse, counts = np.unique(keys.ravel(), return_inverse=True, return_counts=True)
    points = np.stack([(unique >> (8 * t)) & 255 for t in range(codes.shape[2])], axis=1)
    return points.astype(np.float64), counts, inverse.ravel()


def _levels(values: np.ndarray, counts: np.ndarray, share: float | None, step: float) -> np.ndarray:
    """One channel's levels (0..255 units): flat values, min and max, equal parts of about `step` between."""
    anchors = {float(values.min()), float(values.max())}
    if share is not None:
        histogram = np.bincount(values.astype(np.int64), weights=counts, minlength=256)
        anchors |= {float(v) for v in np.flatnonzero(histogram >= share * counts.sum())}
    anchors = sorted(anchors)
    levels = [anchors[0]]
    for low, high in itertools.pairwise(anchors):
        parts = max(1, round((high - low) / (255 * step)))
        levels += list(np.linspace(low, high, parts + 1)[1:])
    return np.array(levels)


def _orientations(channels: int) -> list[tuple[bool, ...]]:
    """Which channels to flip (the first never: flipping all gives the same triangulation)."""
    return [(False, *rest) for rest in itertools.product((False, True), repeat=channels - 1)]


class _Grid:
    """Each distinct map vector as a convex combination of level-grid vectors (Kuhn's triangulation).

    In a grid cell with fractional position f (per channel, in 0..1), the simplex holding a point
    has corners v0 = the cell's low corner, then one channel stepped up at a time, in order of
    decreasing f; the weights are 1 - f(1), f(1) - f(2), ..., f(last). Flipped channels count
    from 255 down, which turns the cells' diagonal.
    """

    def __init__(self, points: np.ndarray, levels: list[np.ndarray], flips: tuple[bool, ...]):
        self.flips = flips
        self.levels = [255 - lv[::-1] if flip else lv for lv, flip in zip(levels, flips)]
        sizes = [len(lv) + 1 for lv in self.levels]  # a spare index per channel: vertex ids never collide
        self.radix = np.cumprod([1, *sizes[:-1]])
        vertices, self.weights = self._simplices(np.where(flips, 255 - points, points))
        self.ids, self.slots = _compact(vertices, int(np.prod(sizes)))
        self.kept = np.bincount(self.slots[self.weights >= PRUNE], minlength=len(self.ids)) > 0
        self.runs = int(self.kept.sum())

    def _simplices(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's simplex: corner vertex ids and weights, both (n, channels + 1)."""
        cells, fractions = zip(*(_cell(coords[:, t], lv) for t, lv in enumerate(self.levels)))
        cells, fractions = np.stack(cells, axis=1), np.stack(fractions, axis=1)
        order = np.argsort(-fractions, axis=1, kind="stable")
        bounds = np.pad(np.take_along_axis(fractions, order, axis=1), ((0, 0), (1, 1)), constant_values=(1, 0))
        steps = np.pad(self.radix[order], ((0, 0), (1, 0))).cumsum(axis=1)
        return (cells @ self.radix)[:, None] + steps, bounds[:, :-1] - bounds[:, 1:]

    def blend(self) -> tuple[np.ndarray, np.ndarray]:
        """(strengths of each run, weights (runs, n)): dropped corners' weight shared by the others."""
        weights = np.where(self.kept[self.slots], self.weights, 0.0)
        weights /= weights.sum(axis=1, keepdims=True)
        run = (np.cumsum(self.kept) - 1)[self.slots]  # -1 (dropped) only where the weight is 0
        matrix = np.zeros((self.runs, len(weights)), np.float32)
        points = np.arange(len(weights))
        for corner in range(weights.shape[1]):  # one entry per point and column: no index repeats
            used = weights[:, corner] > 0
            matrix[run[used, corner], points[used]] += weights[used, corner]
        return self._strengths(self.ids[self.kept]), matrix

    def _strengths(self, ids: np.ndarray) -> np.ndarray:
        columns = []
        for t, (levels, flip) in enumerate(zip(self.levels, self.flips)):
            value = levels[(ids // self.radix[t]) % (len(levels) + 1)]
            columns.append(255 - value if flip else value)
        return np.stack(columns, axis=1) / 255


def _compact(vertices: np.ndarray, space: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertex ids, each corner's position in them): all ids of a small grid, else those in use."""
    if space <= LOOKUP_LIMIT:
        return np.arange(space), vertices
    ids, inverse = np.unique(vertices, return_inverse=True)
    return ids, inverse.reshape(vertices.shape)


def _cell(x: np.ndarray, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's grid cell (index of its lower level) and position in it (0..1)."""
    if len(levels) == 1:
        return np.zeros(len(x), np.int64), np.zeros(len(x))
    cell = np.clip(np.searchsorted(levels, x, side="right") - 1, 0, len(levels) - 2)
    low, high = levels[cell], levels[cell + 1]
    return cell, np.clip((x - low) / (high - low), 0.0, 1.0)
