"""`mixtask info WEIGHTS`: config, parameter count, tasks, mixes, provenance and metrics."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors

EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask info\n\nmixtask info runs/base/weights.safetensors\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("info", epilog=EXAMPLES)(info_command)


@user_errors
def info_command(weights: Path = typer.Argument(None, help="Weights file; default: the shipped model.")) -> None:
    """Describe a weights file: how it was made and what it measures."""
    from rich.console import Console

    from mixtask.cli.report import info_tables
    from mixtask.weights import load_weights

    model, info = load_weights(weights)
    console = Console()
    for table in info_tables(info, model):
        console.print(table)
