"""`mixtask sweep IMAGE --x TASK [--y TASK]`: strength transitions as one sheet (paper, Fig. 8)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import WEIGHTS_HELP, user_errors
from mixtask.errors import MixtaskError

SHEET_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask sweep photo.jpg --x style1 --y seg --steps 5 -o sweep.jpg\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("sweep", epilog=EXAMPLES)(sweep_command)


@user_errors
def sweep_command(
    image: Path = typer.Argument(..., help="Input image."),
    x: str = typer.Option(..., "--x", help="Task whose strength goes 0 -> 1 along the columns."),
    y: str = typer.Option(None, "--y", help="Optional task whose strength goes 0 -> 1 down the rows."),
    steps: int = typer.Option(5, "--steps", "-n", help="Strengths per axis (0 to 1, evenly spaced)."),
    task: str = typer.Option(None, "--task", "-t", help="Fixed strengths for the other tasks, e.g. denoise=1."),
    cell: int = typer.Option(256, "--cell", help="Long side of each cell in pixels."),
    output: Path = typer.Option(..., "--output", "-o", help="Sheet to write (.png/.jpg/.webp)."),
    weights: Path = typer.Option(None, "--weights", "-w", help=WEIGHTS_HELP),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing sheet (never the input)."),
) -> None:
    """Show how outputs change as task strengths go from 0 to 1 (one or two axes)."""
    from mixtask.fileio import atomic_path, check_output
    from mixtask.images import load_image
    from mixtask.inference.translator import Translator
    from mixtask.studies.sweep import SweepSpec, make_sweep_sheet

    if output.suffix.lower() not in SHEET_FORMATS:
        raise MixtaskError(f"cannot write a sheet as {output.suffix or 'no extension'}: use .png, .jpg or .webp")
    check_output(output, (image,), overwrite)
    spec = SweepSpec(x_task=x, y_task=y, steps=steps, base=task, cell=cell)
    translator = Translator.from_file(weights, device=device)
    sheet = make_sweep_sheet(translator, load_image(image).rgb, spec)
    with atomic_path(output, replace=overwrite) as temp:
        sheet.save(temp, format=SHEET_FORMATS[output.suffix.lower()])
    typer.echo(f"wrote {output}")
