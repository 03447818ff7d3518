"""Loss curves of a training run from its `log.jsonl`: one line per job, smoothed, log scale.

Each job's `total` loss is averaged over windows of steps (a job trains on about one step in
K, so raw points are sparse and noisy). Plotting uses matplotlib (Agg, no display needed).
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

from mixtask.errors import MixtaskError
from mixtask.training.progress import LOG_NAME, read_records


def job_losses(log_path: Path) -> dict[str, list[tuple[int, float]]]:
    """job -> [(step, total loss)] from a run's JSONL log (joint steps: each job's own loss)."""
    if not log_path.is_file():
        raise MixtaskError(f"no training log at {log_path}")
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in read_records(log_path):
        if "job" not in row:
            continue  # start / stop events
        if row["job"] == "joint":
            for job, value in row["losses"].items():
                if "/" not in job and job not in ("total", "discriminator"):
                    series[job].append((row["step"], value))
        else:
            series[row["job"]].append((row["step"], row["losses"]["total"]))
    if not series:
        raise MixtaskError(f"{log_path} holds no training steps yet")
    return dict(series)


def windowed(points: list[tuple[int, float]], window: int) -> list[tuple[float, float]]:
    """Mean step and mean loss of each window of `window` steps."""
    buckets: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for step, value in points:
        buckets[step // window].append((step, value))
    return [
        (sum(s for s, _ in bucket) / len(bucket), sum(v for _, v in bucket) / len(bucket))
        for _, bucket in sorted(buckets.items())
    ]


def plot_curves(run_dir: Path, window: int = 100) -> bytes:
    """PNG of every job's windowed loss against the step."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    series = job_losses(Path(run_dir) / LOG_NAME)
    figure = Figure(figsize=(9, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.subplots()
    for job, points in sorted(series.items()):
        steps, values = zip(*windowed(points, window))
        axes.plot(steps, values, label=job)
    axes.set(xlabel="step", ylabel=f"loss (mean over {window}-step windows)", yscale="log", title=str(run_dir))
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
