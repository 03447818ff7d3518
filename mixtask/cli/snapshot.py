"""`mixtask snapshot RUN_DIR -o FILE`: the weights of a training run's last checkpoint, mid-run."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors

EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask snapshot runs/base -o try.safetensors\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("snapshot", epilog=EXAMPLES)(snapshot_command)


@user_errors
def snapshot_command(
    run_dir: Path = typer.Argument(..., help="A training run folder (holds checkpoint.pt)."),
    output: Path = typer.Option(..., "--output", "-o", help="Weights file to write (.safetensors)."),
) -> None:
    """Export the weights of a run's last checkpoint, to try or evaluate while it trains on."""
    from mixtask.training import export_snapshot

    typer.echo(f"wrote {export_snapshot(run_dir, output)}")
