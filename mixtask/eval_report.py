"""Rich tables of an evaluation result (`mixtask.evaluate.run_evaluation`): pixel, style, sweep.

Rendering only: every number comes from the JSON-ready result dict, so a saved eval.json
renders the same tables.
"""

from __future__ import annotations

from mixtask import metrics
from mixtask.evaluate import SWEEP_STRENGTHS

PIXEL_COLUMNS = {
    "psnr": ("PSNR", "{:.2f}"),
    "psnr_damaged": ("PSNR dmg", "{:.2f}"),
    "ssim": ("SSIM", "{:.3f}"),
    "mse_imagenet": ("MSE-IN", "{:.3f}"),
    "iou": ("IoU", "{:.3f}"),
}
STYLE_COLUMNS = {
    "style_distance": ("style dist.", "{:.3f}"),
    "content_distance": ("content dist.", "{:.3f}"),
    "fd": ("FD-EffNetLite0", "{:.1f}"),
}
PIXEL_CAPTION = (
    "PSNR dB vs target (100 = identical); PSNR dmg: holes / scratch pixels only; MSE-IN: ImageNet-normalised "
    "(paper Table 3); IoU: object read from the output (max channel > {threshold}); read-back ceiling: the same "
    "rule on the target; of several classical baselines only the best by PSNR is shown"
)
STYLE_CAPTION = "relative distances (0 = the style's Grams / the input's relu3_3); FD: {fd_label}, {count} vs {count}"


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


def _metrics_table(result: dict, columns: dict, title: str, caption: str):
    from rich import box
    from rich.table import Table

    groups = [g for g in result["groups"] if any(key in row for row in g["rows"].values() for key in columns)]
    used = [key for key in columns if any(key in row for g in groups for row in g["rows"].values())]
    table = Table(title=title, caption=caption, box=box.SIMPLE_HEAD)
    table.add_column("task / mix")
    table.add_column("method", no_wrap=True)
    for key in used:
        table.add_column(columns[key][0], justify="right")
    for group in groups:
        for i, (method, values) in enumerate(_shown_rows(group)):
            cells = [columns[key][1].format(values[key]) if key in values else "" for key in used]
            table.add_row(group["name"] if i == 0 else "", method, *cells, style="bold" if method == "model" else None)
        table.add_section()
    return table if groups else None


TRENDS = {"increasing": "rises", "decreasing": "falls", "constant": "flat", "not monotonic": "mixed"}


def sweep_table(result: dict):
    from rich import box
    from rich.table import Table

    table = Table(title="Strength sweep (paper, Fig. 8): each task's metric at strengths 0..1", box=box.SIMPLE_HEAD)
    for column in ("task", "metric", *(f"{s:g}" for s in SWEEP_STRENGTHS), "trend", "ok"):
        table.add_column(column, justify="right" if column[0].isdigit() else "left")
    for row in result["sweep"]:
        values = [f"{v:.4g}" for v in row["values"]] or ["n/a"] * len(SWEEP_STRENGTHS)
        ok = "n/a" if row["monotonic"] is None else "yes" if row["monotonic"] else "NO"
        table.add_row(row["task"], row["metric"], *values, TRENDS.get(row["direction"], "n/a"), ok)
    table.caption = "ok: the metric moves monotonically in the expected direction (quality up, style distance down)"
    return table


def not_applicable_table(result: dict):
    """What the architecture cannot do, so was not scored (not a failure); None when nothing."""
    from rich import box
    from rich.table import Table

    skipped = result.get("not_applicable") or {}  # absent from results written before architectures
    if not skipped:
        return None
    table = Table(title=f"Not applicable to the {result.get('arch', 'film')} architecture", box=box.SIMPLE_HEAD)
    table.add_column("part")
    table.add_column("why")
    for part, why in skipped.items():
        table.add_row(part, f"n/a: {why}")
    return table


def result_tables(result: dict) -> list:
    """Rich tables: pixel metrics, style metrics, strength sweep, n/a parts (each only when it has rows)."""
    pixel_caption = PIXEL_CAPTION.format(threshold=metrics.FOREGROUND_THRESHOLD)
    tables = [
        _metrics_table(result, PIXEL_COLUMNS, _title(result, "Restoration, segmentation, mixes"), pixel_caption),
        _metrics_table(result, STYLE_COLUMNS, _title(result, "Style"), STYLE_CAPTION.format(**result)),
        sweep_table(result) if result["sweep"] else None,
        not_applicable_table(result),
    ]
    return [table for table in tables if table is not None]
