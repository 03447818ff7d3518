"""What a run reports: RUN_DIR/log.jsonl and the progress bar (rank 0 only)."""

from __future__ import annotations

import json
from pathlib import Path

from mixtask.fileio import write_bytes_atomic
from mixtask.training.options import RESUME_OVERRIDES
from mixtask.training.state import Run
from mixtask.training.step import StepResult

LOG_NAME = "log.jsonl"


class RunLog:
    """RUN_DIR/log.jsonl: one JSON object per line (events and steps); rank 0 only."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled

    def write(self, record: dict) -> None:
        if not self.enabled:
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def truncate_after(self, step: int) -> None:
        """On resume, drop step lines the checkpoint does not contain (written after it)."""
        if not self.enabled or not self.path.is_file():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        kept = [line for line in lines if _logged_step(line) <= step]
        write_bytes_atomic(self.path, "".join(line + "\n" for line in kept).encode("utf-8"))


def read_records(path: Path) -> list[dict]:
    """Every record of a run's log.jsonl, in order (for `curves` and `compare`)."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def read_sessions(path: Path) -> list[dict]:
    """Each start and resume of a run: the step it began at, its hardware and, where logged, its command
    line (for the weights' provenance: a run resumed with other options is not told by its first command)."""
    if not path.is_file():
        return []
    records = [record for record in read_records(path) if record.get("event") in ("start", "resume")]
    return [_session(record) for record in records]


def _session(record: dict) -> dict:
    """One start or resume record's facts, plus the options a resume can change that it trained with (compile,
    which changes only the speed, left out)."""
    session = {key: record[key] for key in ("event", "step", "hardware", "command") if key in record}
    options = record.get("options", {})
    keys = [key for key in RESUME_OVERRIDES if key != "compile"]
    return session | {key: options[key] for key in keys if options.get(key) not in (None, "")}


def _logged_step(line: str) -> float:
    """The step of a log line; a line cut short by a crash counts as after every step."""
    try:
        return json.loads(line).get("step", 0)
    except ValueError:
        return float("inf")


def step_record(run: Run, result: StepResult) -> dict:
    record = {
        "step": run.step,
        "stage": run.plan.stage_at(run.step - 1),
        "job": result.job,
        "losses": {key: round(value, 6) for key, value in result.losses.items()},
        "seconds": round(result.seconds, 4),
        "data_seconds": round(result.data_seconds, 4),
    }
    if result.weights is not None:  # schedule joint
        record["weights"] = {job: round(weight, 6) for job, weight in result.weights.items()}
    return record


class Progress:
    """Rich progress bar with a running (exponential) mean of each job's loss; rank 0 only."""

    def __init__(self, run: Run, quiet: bool):
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.running: dict[str, float] = {}
        columns = [TextColumn("stage {task.fields[stage]}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[losses]}")]  # fmt: skip
        from rich.progress import Progress as RichProgress

        self.bar = RichProgress(*columns, disable=quiet or not run.ctx.is_main, transient=False)
        self.task = self.bar.add_task("train", total=run.plan.steps, completed=run.step, stage=1, losses="")

    def update(self, run: Run, result: StepResult) -> None:
        old = self.running.get(result.job)
        total = result.losses["total"]
        self.running[result.job] = total if old is None else 0.9 * old + 0.1 * total
        text = "  ".join(f"{job} {value:.4f}" for job, value in sorted(self.running.items()))
        self.bar.update(self.task, completed=run.step, stage=run.plan.stage_at(run.step), losses=text)

    def __enter__(self) -> Progress:
        self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.stop()
