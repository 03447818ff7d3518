"""`mixtask curves RUN_DIR -o loss.png`: a training run's loss curves, one line per job."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors

EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask curves runs/base -o curves.png\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("curves", epilog=EXAMPLES)(curves_command)


@user_errors
def curves_command(
    run_dir: Path = typer.Argument(..., help="A training run folder (holds log.jsonl)."),
    output: Path = typer.Option(..., "--output", "-o", help="PNG to write."),
    window: int = typer.Option(100, "--window", min=1, help="Steps per averaging window."),
) -> None:
    """Plot each job's loss over the steps of a run (log scale, windowed means)."""
    from mixtask.fileio import write_bytes_atomic
    from mixtask.training.curves import plot_curves

    write_bytes_atomic(output, plot_curves(run_dir, window))
    typer.echo(f"wrote {output}")
