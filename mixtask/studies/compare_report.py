"""What `mixtask compare` shows: one row per architecture, as Markdown, JSON and a plot (issue 5).

Rendering only: the numbers come from `mixtask.studies.compare` (training, `mixtask eval`'s result dict,
the inference timer), so a saved compare.json holds everything the table and the plot show.
Which headline number a task gets follows its kind, never its name: PSNR for recon, the
restoration tasks and every mix, IoU for seg, the Gram-distance ratio (output / input) for a style.
"""

from __future__ import annotations

import io
import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mixtask.fileio import write_bytes_atomic

MARKDOWN_NAME, JSON_NAME, PLOT_NAME = "compare.md", "compare.json", "compare.png"
RESTORATION_KINDS = ("recon", "inpaint", "denoise")
MISSING, CANNOT_MIX = "—", "n/a"
LEGEND = (
    "PSNR: dB against the target; IoU: the object read from the output (seg on composites: exact masks, on photos: "
    "pseudo-labels); Gram ratio: style distance of the output / of the input (below 1 = more like the style); "
    "mixes: PSNR against the synthesised target, whose style part the model renders itself; n/a: the architecture "
    "cannot mix (it trains single tasks only, Method 1); train img/s: batch / mean s per step over the run "
    "(warm-up step excluded); infer ms/MP: median time per megapixel of the loaded weights through "
    f"`Translator.translate_tensor`; {MISSING}: not measured"
)


@dataclass
class ArchRow:
    """One architecture's results; `status`: pending, ok, interrupted or failed (then `error` says why)."""

    arch: str
    status: str = "pending"
    error: str | None = None
    params: int | None = None
    mixes: bool | None = None  # class attributes of the architecture (mixtask.nets.registry)
    continuous: bool | None = None
    task_maps: bool | None = None
    steps: int | None = None
    s_per_step: float | None = None
    train_img_s: float | None = None
    infer_ms_per_mp: float | None = None
    tasks: dict[str, float] = field(default_factory=dict)  # column label -> headline number
    mix_scores: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)  # the plotted summaries
    eval_json: str | None = None


@dataclass
class Comparison:
    """The settings every architecture shared (`header`) and the rows, in registry order."""

    header: dict
    rows: list[ArchRow]
    interrupted: bool = False

    def failed(self) -> list[ArchRow]:
        return [row for row in self.rows if row.status == "failed"]


# ----------------------------------------------------------------------------- eval result -> numbers


def _headline(group: dict) -> dict[str, float]:
    """The one number a group of `mixtask eval`'s result is shown by, keyed by its column label."""
    model, identity = group["rows"].get("model", {}), group["rows"].get("identity", {})
    if group["kind"] == "style":
        if model.get("style_distance") is None or not identity.get("style_distance"):
            return {}
        return {f"{group['name']} Gram ratio": round(model["style_distance"] / identity["style_distance"], 4)}
    if group["kind"] == "seg" and "iou" in model:
        return {f"{group['name']} IoU": model["iou"]}
    return {f"{group['name']} PSNR": model["psnr"]} if "psnr" in model else {}


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def eval_numbers(result: dict) -> tuple[dict, dict, dict]:
    """(per-task, per-mix, plotted summaries) of an evaluation result (`mixtask.evaluation.run`)."""
    tasks, mixes = {}, {}
    restoration, iou = [], []
    for group in result["groups"]:
        (mixes if group["kind"] == "mix" else tasks).update(_headline(group))
        model = group["rows"].get("model", {})
        if group["kind"] in RESTORATION_KINDS and "psnr" in model:
            restoration.append(model["psnr"])
        if group["kind"] == "seg" and "iou" in model:
            iou.append(model["iou"])
    quality = {"restoration_psnr": _mean(restoration), "seg_iou": _mean(iou)}
    return tasks, mixes, {key: value for key, value in quality.items() if value is not None}


# ----------------------------------------------------------------------------- Markdown


def _columns(rows: list[ArchRow], attribute: str) -> list[str]:
    """Column labels in order of first appearance over the rows."""
    return list(dict.fromkeys(label for row in rows for label in getattr(row, attribute)))


def _number(value: float | None, label: str) -> str:
    if value is None:
        return MISSING
    digits = 3 if label.endswith(("IoU", "ratio")) else 2
    return f"{value:.{digits}f}"


def _status(row: ArchRow) -> str:
    if row.status != "failed":
        return row.status
    return "FAILED: " + (row.error or "").split(":", 1)[0]


def _cells(row: ArchRow, task_columns: list[str], mix_columns: list[str]) -> list[str]:
    mixes = [CANNOT_MIX if row.mixes is False else _number(row.mix_scores.get(label), label) for label in mix_columns]
    return [
        row.arch, _status(row), MISSING if row.params is None else f"{row.params:,}",
        *(_number(row.tasks.get(label), label) for label in task_columns), *mixes,
        MISSING if row.train_img_s is None else f"{row.train_img_s:.1f}",
        MISSING if row.infer_ms_per_mp is None else f"{row.infer_ms_per_mp:.0f}",
    ]  # fmt: skip


def markdown_table(comparison: Comparison) -> str:
    rows = comparison.rows
    task_columns, mix_columns = _columns(rows, "tasks"), _columns(rows, "mix_scores")
    names = ["arch", "status", "params", *task_columns, *mix_columns, "train img/s", "infer ms/MP"]
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(names))) + "|"
    body = ["| " + " | ".join(_cells(row, task_columns, mix_columns)) + " |" for row in rows]
    lines = ["| " + " | ".join(names) + " |", rule, *body]
    return "\n".join(lines) + "\n"


def header_lines(header: dict) -> list[str]:
    machine, timing, evaluation = header["machine"], header["timing"], header["eval"]
    styles = ", ".join(f"{name}={image}" for name, image in header["styles"].items()) or "none"
    return [
        f"- budget: {header['budget']} steps per architecture, {header['size']} px crops, batch {header['batch']}, "
        f"seed {header['seed']}, width {header['width']}, mix method {header['mix_method']}, "
        f"training precision {header['precision']}",
        f"- data: {header['data']}; styles: {styles}",
        f"- evaluation (the code of `mixtask eval`): {evaluation['split']} split, {evaluation['count']} samples per "
        f"task and mix, {evaluation['size']} px",
        f"- inference timing: {timing['precision']} on {timing['device']}, fixed random {timing['size']}x"
        f"{timing['size']} image, median of {timing['repeats']} runs after a warm-up",
        f"- machine: {machine['cpu']}, {machine['torch_threads']} threads ({machine['cores']} cores), "
        f"torch {machine['torch']}; date: {machine['date']}",
        f"- command: `{header['command']}`" if header.get("command") else "",
    ]


def to_markdown(comparison: Comparison) -> str:
    title = "# Architecture comparison" + (" (interrupted: partial)" if comparison.interrupted else "")
    head = [line for line in header_lines(comparison.header) if line]
    errors = [f"- {row.arch} failed at {row.error}" for row in comparison.failed()]
    parts = [title, "", *head, "", markdown_table(comparison), LEGEND, *(["", *errors] if errors else [])]
    return "\n".join(parts) + "\n"


# ----------------------------------------------------------------------------- JSON and plot


def to_json(comparison: Comparison) -> str:
    data = {**asdict(comparison), "failed": [row.arch for row in comparison.failed()]}
    return json.dumps(data, indent=2) + "\n"


PLOTS = (("restoration_psnr", "mean PSNR, dB (recon, inpaint, denoise)"), ("seg_iou", "seg IoU"))


def _log_ticks(axes, low: float, high: float) -> None:
    """Plain labels (mathtext costs 0.2 s a plot): decades, plus 2x and 5x within about one decade."""
    from matplotlib.ticker import EngFormatter, FuncFormatter, NullFormatter

    engineering = EngFormatter()
    ticks = FuncFormatter(lambda value, _: engineering(value) if f"{value:e}"[0] in "125" else "")
    axes.xaxis.set_major_formatter(ticks)
    axes.xaxis.set_minor_formatter(ticks if high < 15 * low else NullFormatter())


def _panel(axes, rows: list[ArchRow], key: str, label: str) -> None:
    """One quality summary against parameters (log x), a labelled point per architecture."""
    points = [(row.params, row.quality[key], row.arch) for row in rows if row.params and key in row.quality]
    axes.scatter([x for x, _, _ in points], [y for _, y, _ in points], color="tab:blue")
    axes.set_xscale("log")
    axes.margins(x=0.2, y=0.15)
    if points:
        _log_ticks(axes, min(x for x, _, _ in points), max(x for x, _, _ in points))
    axes.set(xlabel="parameters", ylabel=label)
    axes.grid(True, which="both", alpha=0.3)
    _label(axes, points)


LABEL_POINTS = 9  # font size
LINE = 1.3 * LABEL_POINTS  # the height a label takes, in points
SAME_SPOT = 6  # points closer than this on screen (in points) share one label


def _label(axes, points: list[tuple[float, float, str]]) -> None:
    """A name beside each point. Points on the same spot (the FiLM family: equal parameter counts,
    close scores) share one label, best first; a label that would overlap another moves up, with a
    thin line back to its point. The table has the exact numbers."""
    placed: list[tuple[float, float, float]] = []  # each label's (left, right, bottom), in points on screen
    for screen_x, screen_y, x, y, names in sorted(_spots(axes, points), key=lambda spot: spot[1]):
        text = ", ".join(names)
        box = (screen_x + 4, screen_x + 4 + 0.6 * LABEL_POINTS * len(text), screen_y + 4)
        for other in sorted(placed, key=lambda placed_box: placed_box[2]):
            if _overlap(box, other):
                box = (box[0], box[1], other[2] + LINE)
        placed.append(box)
        lifted = box[2] - screen_y > 4 + 1e-6
        axes.annotate(
            text, (x, y), textcoords="offset points", xytext=(4, box[2] - screen_y), fontsize=LABEL_POINTS,
            arrowprops={"arrowstyle": "-", "color": "0.6", "lw": 0.6} if lifted else None,
        )  # fmt: skip


def _spots(axes, points: list[tuple[float, float, str]]) -> list[tuple[float, float, float, float, list[str]]]:
    """Points grouped by where they fall on screen: (screen x, y in points, data x, y, names best first)."""
    axes.autoscale_view()  # the final limits, so that screen positions are final too
    points_per_pixel = 72 / axes.figure.dpi
    spots: list[tuple[float, float, float, float, list[str]]] = []
    for x, y, name in sorted(points, key=lambda point: -point[1]):
        screen_x, screen_y = (value * points_per_pixel for value in axes.transData.transform((x, y)))
        near = [spot for spot in spots if abs(spot[0] - screen_x) < SAME_SPOT and abs(spot[1] - screen_y) < SAME_SPOT]
        if near:
            near[0][4].append(name)
        else:
            spots.append((screen_x, screen_y, x, y, [name]))
    return spots


def _overlap(a: tuple[float, float, float], b: tuple[float, float, float]) -> bool:
    """Whether two labels (left, right, bottom) share screen space."""
    return a[0] < b[1] and b[0] < a[1] and abs(a[2] - b[2]) < LINE


def plot_png(comparison: Comparison) -> bytes:
    """Quality against parameter count, one labelled point per architecture."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(figure)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.13, top=0.88, wspace=0.25)  # a layout engine costs 0.4 s
    for axes, (key, label) in zip(figure.subplots(1, len(PLOTS)), PLOTS):
        _panel(axes, comparison.rows, key, label)
    header = comparison.header
    figure.suptitle(f"quality vs parameters: {header['budget']} steps, {header['size']} px, "
                    f"{header['eval']['split']} split")  # fmt: skip
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def write_report(comparison: Comparison, folder: Path, plot: bool = True) -> None:
    """DIR/compare.md and compare.json, and with `plot` compare.png (0.2-0.5 s), each written atomically."""
    write_bytes_atomic(Path(folder) / MARKDOWN_NAME, to_markdown(comparison).encode())
    write_bytes_atomic(Path(folder) / JSON_NAME, to_json(comparison).encode())
    if plot:
        write_bytes_atomic(Path(folder) / PLOT_NAME, plot_png(comparison))
