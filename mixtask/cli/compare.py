"""`mixtask compare`: every architecture trained, scored and timed the same way (mixtask/studies/compare.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors

ARCH_HELP = "Architecture to include (repeat); default: every registered one (see mixtask.nets.registry)."
STYLE_HELP = "A style task and its image, NAME=IMAGE (repeat), as for `mixtask train`."


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask compare --data ../shared/data --out runs/compare --budget 1000 --size 64\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("compare", epilog=EXAMPLES)(compare_command)


@user_errors
def compare_command(
    data: Path = typer.Option(..., "--data", help="Dataset folder (train split to train, val split to score)."),
    budget: int = typer.Option(..., "--budget", min=1, help="Training steps per architecture."),
    size: int = typer.Option(..., "--size", help="Training and evaluation crop side, px (multiple of 4)."),
    out: Path = typer.Option(..., "--out", help="Folder: runs/<arch>/, compare.md, compare.json, compare.png."),
    arch: list[str] = typer.Option([], "--arch", help=ARCH_HELP),
    batch: int = typer.Option(4, "--batch", help="Images per mini-batch."),
    seed: int = typer.Option(0, "--seed"),
    style: list[str] = typer.Option([], "--style", help=STYLE_HELP),
    width: int = typer.Option(32, "--width", help="Base channels of every network."),
    eval_count: int = typer.Option(16, "--eval-count", help="Evaluation samples per task and per mix."),
    vgg: Path = typer.Option(None, "--vgg", help="VGG16 weights for style losses \\[default: $MIXTASK_VGG or shared]"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No training progress bars."),
) -> None:
    """Train every architecture at the same budget; table and plot of quality, size and speed."""
    from rich.console import Console

    from mixtask.studies.compare import CompareOptions, run_compare
    from mixtask.studies.compare_report import markdown_table
    from mixtask.training import TrainOptions, default_command, parse_style

    train = TrainOptions(str(data), str(out), tuple(parse_style(text) for text in style), steps=budget, size=size,
                         batch=batch, seed=seed, vgg=None if vgg is None else str(vgg), width=width,
                         command=default_command())  # fmt: skip
    errors = Console(stderr=True)
    options = CompareOptions(train, out, tuple(arch), eval_count=eval_count, quiet=quiet)
    comparison = run_compare(options, log=lambda message: errors.print(message, style="dim", highlight=False))
    typer.echo(markdown_table(comparison) + f"wrote {out / 'compare.md'}, compare.json, compare.png")
    if comparison.interrupted:
        typer.echo("stopped; run the same command again to continue", err=True)
        raise typer.Exit(130)
    if comparison.failed():
        typer.echo(f"failed: {', '.join(row.arch for row in comparison.failed())} (see compare.md)", err=True)
        raise typer.Exit(1)
