"""The `mixtask` command: one small module per sub-command, joined here.

Only typer is imported at start-up; each command imports torch and the pipeline it calls,
so `mixtask --help` and `--version` answer at once.
"""

from __future__ import annotations

import typer

from mixtask import __version__
from mixtask.cli import (
    apply,
    bench,
    compare,
    curves,
    damage,
    evaluate,
    info,
    label,
    serve,
    snapshot,
    sweep,
    synth,
    tasks,
    train,
)  # fmt: skip
from mixtask.cli.common import ReadableGroup, readable_metavars

app = typer.Typer(
    name="mixtask",
    cls=ReadableGroup,
    help="Many image translations, and mixes of them, from one FiLM-conditioned network.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion and --show-completion for bash, zsh, fish, PowerShell
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mixtask {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Many image translations, and mixes of them, from one FiLM-conditioned network."""


COMMANDS = (apply, sweep, damage, tasks, info, serve, label, train, synth, snapshot, curves, evaluate, bench, compare)
for module in COMMANDS:
    module.register(app)
readable_metavars(app)


def main() -> None:
    from mixtask.cli.common import terminate_like_interrupt

    terminate_like_interrupt()
    app()
