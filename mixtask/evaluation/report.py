"""Rich tables of an evaluation result (`mixtask.evaluation.run.run_evaluation`): pixel, style, sweep.

Rendering only: every number comes from the JSON-ready result dict, so a saved eval.json
renders the same tables.
"""

from __future__ import annotations

from mixtask.evaluation import metrics
from mixtask.evaluation.run import SWEEP_STRENGTHS

PIXEL_COLUMNS = {
    "psnr": ("PSNR", "{:.2f}"),
    "psnr_damaged": ("PSNR dmg", "{:.2f}"),
    "ssim": ("SSIM", "{:.3f}"),
    "mse_imagenet": ("MSE-IN", "{:.3f}"),
    "iou": ("IoU", "{:.3f}"),
    "l2_ratio": ("L2 / members", "{:.2f}"),
}
STYLE_COLUMNS = {
    "style_distance": ("style dist.", "{:.3f}"),
    "content_distance": ("content dist.", "{:.3f}"),
    "layout_correlation": ("layout corr.", "{:.3f}"),
    "psnr_teacher": ("PSNR vs teacher", "{:.2f}"),
    "fd": ("FD-EffNetLite0", "{:.1f}"),
}
PIXEL_CAPTION = (
    "PSNR dB vs target (100 = identical); PSNR dmg: holes / scratch pixels only; MSE-IN: ImageNet-normalised "
    "(paper Table 3); IoU: object read from the output (max channel > {threshold}); read-back ceiling: the same "
    "rule on the target; model alpha > 0.5: the object read from the gated head's gate instead, averaged with the"
    " mirrored image's (the alpha of `apply --cutout alpha`); model, blended (apply): the restoration as `mixtask"
    " apply` writes it, its generated pixels Poisson-blended into the pixels around them; U2-Net-p teacher: "
    "rembg's salient-object net's cut-out, the same rule; L2 / members: a mix's L2 to its target over its "
    "members' largest single-task L2 (restoration, seg and, where the style teacher runs, style members; issue "
    "bar <= 1.5); of several classical baselines only the best by PSNR is shown"
)
STYLE_CAPTION = (
    "relative distances (0 = the style's Grams / the input's relu3_3); layout corr.: correlation of the 32x32 grey "
    "layouts of output and input (1: the photo is kept); PSNR vs teacher: against the Magenta teacher's rendering; "
    "FD: {fd_label}, {count} vs {count}"
)


def _title(result: dict, what: str) -> str:
    held = "held-out" if result["held_out"] else "NOT held-out: seen in training"
    return f"{what}: {result['split']} split ({held}), n={result['count']} per row, {result['size']} px"


def _shown_rows(group: dict) -> list[tuple[str, dict]]:
    """Every row but the baselines that lost: only the best classical method is shown."""
    return [
        (method, values)
        for method, values in group["rows"].items()
        if method not in group["baselines"] or method == group["best_baseline"]
    ]


class Grid:
    """One table's content, rendered as a Rich table or as Markdown."""

    def __init__(self, title: str, headers: list[str], caption: str = "", right: set[int] = frozenset()):
        self.title, self.headers, self.caption, self.right = title, headers, caption, right
        self.rows: list[tuple[list[str], bool]] = []  # (cells, bold)
        self.sections: set[int] = set()  # row indices that start a new section

    def add(self, cells: list[str], bold: bool = False, section: bool = False) -> None:
        if section and self.rows:
            self.sections.add(len(self.rows))
        self.rows.append((cells, bold))

    def rich(self):
        from rich import box
        from rich.table import Table

        table = Table(title=self.title, caption=self.caption or None, box=box.SIMPLE_HEAD)
        for i, header in enumerate(self.headers):
            table.add_column(header, justify="right" if i in self.right else "left", no_wrap=header == "method")
        for i, (cells, bold) in enumerate(self.rows):
            if i in self.sections:
                table.add_section()
            table.add_row(*cells, style="bold" if bold else None)
        return table

    def markdown(self) -> str:
        align = ["---:" if i in self.right else "---" for i in range(len(self.headers))]
        lines = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |", "|" + "|".join(align) + "|"]
        for cells, bold in self.rows:
            lines.append("| " + " | ".join(f"**{c}**" if bold and c else c for c in cells) + " |")
        return "\n".join(lines + ([f"\n{self.caption}"] if self.caption else []))


def _metrics_grid(result: dict, columns: dict, title: str, caption: str) -> Grid | None:
    groups = [g for g in result["groups"] if any(key in row for row in g["rows"].values() for key in columns)]
    used = [key for key in columns if any(key in row for g in groups for row in g["rows"].values())]
    headers = ["task / mix", "method", *(columns[key][0] for key in used)]
    grid = Grid(title, headers, caption, right=set(range(2, len(headers))))
    for group in groups:
        for i, (method, values) in enumerate(_shown_rows(group)):
            cells = [columns[key][1].format(values[key]) if key in values else "" for key in used]
            grid.add([group["name"] if i == 0 else "", method, *cells], bold=method == "model", section=i == 0)
    return grid if groups else None


TRENDS = {"increasing": "rises", "decreasing": "falls", "constant": "flat", "not monotonic": "mixed"}
SWEEP_CAPTION = "ok: the metric moves monotonically in the expected direction (quality up, style distance down)"


def _sweep_grid(result: dict) -> Grid:
    headers = ["task", "metric", *(f"{s:g}" for s in SWEEP_STRENGTHS), "trend", "ok"]
    title = "Strength sweep (paper, Fig. 8): each task's metric at strengths 0..1"
    grid = Grid(title, headers, SWEEP_CAPTION, set(range(2, 2 + len(SWEEP_STRENGTHS))))
    for row in result["sweep"]:
        values = [f"{v:.4g}" for v in row["values"]] or ["n/a"] * len(SWEEP_STRENGTHS)
        ok = "n/a" if row["monotonic"] is None else "yes" if row["monotonic"] else "NO"
        grid.add([row["task"], row["metric"], *values, TRENDS.get(row["direction"], "n/a"), ok])
    return grid


def _not_applicable_grid(result: dict) -> Grid | None:
    """What the architecture cannot do, so was not scored (not a failure); None when nothing."""
    skipped = result.get("not_applicable") or {}  # absent from results written before architectures
    if not skipped:
        return None
    grid = Grid(f"Not applicable to the {result.get('arch', 'film')} architecture", ["part", "why"])
    for part, why in skipped.items():
        grid.add([part, f"n/a: {why}"])
    return grid


def result_grids(result: dict) -> list[Grid]:
    """Pixel metrics, style metrics, strength sweep, n/a parts (each only when it has rows)."""
    pixel_caption = PIXEL_CAPTION.format(threshold=metrics.FOREGROUND_THRESHOLD)
    grids = [
        _metrics_grid(result, PIXEL_COLUMNS, _title(result, "Restoration, segmentation, mixes"), pixel_caption),
        _metrics_grid(result, STYLE_COLUMNS, _title(result, "Style"), STYLE_CAPTION.format(**result)),
        _sweep_grid(result) if result["sweep"] else None,
        _not_applicable_grid(result),
    ]
    return [grid for grid in grids if grid is not None]


def result_tables(result: dict) -> list:
    """Rich tables of the result."""
    return [grid.rich() for grid in result_grids(result)]


def result_markdown(result: dict) -> str:
    """The same tables in Markdown (for model cards)."""
    return "\n\n".join(grid.markdown() for grid in result_grids(result)) + "\n"
