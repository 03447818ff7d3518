"""`mixtask tasks`: the tasks, aliases, descriptions and trained mixes of a weights file."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import WEIGHTS_HELP, user_errors

EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask tasks\n\nmixtask tasks -w my.safetensors\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("tasks", epilog=EXAMPLES)(tasks_command)


@user_errors
def tasks_command(weights: Path = typer.Option(None, "--weights", "-w", help=WEIGHTS_HELP)) -> None:
    """List the tasks and trained mixes of the default (or given) weights."""
    from rich.console import Console

    from mixtask.cli.report import tasks_table
    from mixtask.weights import load_weights

    _, info = load_weights(weights)  # the tensors too: a file whose weights are broken is not a usable model
    Console().print(tasks_table(info))
