"""`mixtask apply INPUT... --task SPEC`: translate images, folders or stdin (pipeline in mixtask/apply/run.py).

`--task-map MAP --map-tasks NAMES`: per-pixel strengths from an image (mixtask/inference/taskmaps.py).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from mixtask.choices import CUTOUT_MODES
from mixtask.cli.common import WEIGHTS_HELP, Precision, choice_enum, user_errors


class OutputFormat(str, Enum):
    png = "png"
    jpg = "jpg"
    webp = "webp"


SUFFIX_HELP = (
    "Name outputs <stem><SUFFIX>.<ext>, e.g. --suffix _cut: photo_cut.png (default: photo.seg.png beside the "
    "input, photo.png in an -o folder)."
)
MASK_HELP = (
    "With --task inpaint: fill where this mask is white and keep every other pixel exactly (PNG output unless "
    "--format); a folder: one mask per input, named like it."
)
CUTOUT_HELP = (
    "With seg in the task: alpha (RGBA, alpha = the object mask, colours times the mask as rembg writes them), "
    "black (the network's output, background black) or mask (the mask, 8-bit grey).  \\[default: alpha]"
)


Cutout = choice_enum("Cutout", CUTOUT_MODES)


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\n"
    "mixtask apply photo.jpg --task seg=1,style1=1 -o cut.png\n\n"
    "mixtask apply photos/ -t denoise -o clean/ --recursive\n\n"
    "mixtask apply photo.jpg -t inpaint --mask mask.png\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("apply", epilog=EXAMPLES)(apply_command)


@user_errors
def apply_command(
    inputs: list[str] = typer.Argument(
        ..., metavar="INPUT...", help="Image files, folders, or - to read one image from stdin (./- is a file)."
    ),
    task: list[str] = typer.Option(
        None,
        "--task",
        "-t",
        metavar="TASK",
        help="Task vector, e.g. seg, denoise+style1, style1=0.6. With --task-map: the other tasks, everywhere.",
    ),
    task_map: Path = typer.Option(
        None,
        "--task-map",
        help="Image of per-pixel strengths (0-255 -> 0-1) of the --map-tasks: R, G, B (or gray) in order; "
        "alpha scales them. Resized bilinearly to each image whose size differs.",
    ),
    map_tasks: str = typer.Option(
        None, "--map-tasks", help="Tasks the --task-map channels drive, in order R,G,B, e.g. style1,seg."
    ),
    output: str = typer.Option(
        None, "--output", "-o", help="FILE (.png/.jpg/.webp; one input), DIR, or - for stdout. Default: beside input."
    ),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Walk sub-folders; mirror them under -o DIR."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (never inputs)."),
    skip_existing: bool = typer.Option(False, "--skip-existing", help="Quietly skip images whose output exists."),
    suffix: str = typer.Option(None, "--suffix", help=SUFFIX_HELP, show_default=False),
    format: OutputFormat = typer.Option(None, "--format", "-f", help="Output format; default: the input's."),
    quality: int = typer.Option(92, "--quality", "-q", min=1, max=100, help="JPEG/WebP quality (WebP 100: lossless)."),
    weights: Path = typer.Option(None, "--weights", "-w", help=WEIGHTS_HELP),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    precision: Precision = typer.Option(Precision.auto, "--precision", help="Compute precision."),
    tile: int = typer.Option(0, "--tile", min=0, help="Tile side in pixels for big images; 0 = automatic."),
    cutout: Cutout = typer.Option(None, "--cutout", help=CUTOUT_HELP, show_default=False),
    bgcolor: str = typer.Option(None, "--bgcolor", metavar="R,G,B[,A]", help="Put the alpha cut-out on this colour."),
    mask: Path = typer.Option(None, "--mask", metavar="FILE|DIR", help=MASK_HELP, show_default=False),
) -> None:
    """Apply a task (a mix of tasks, or a per-pixel task map) to images; exits 1 if any image failed."""
    import sys

    from mixtask.apply.plan import argument_path
    from mixtask.apply.run import ApplyOptions, apply_paths
    from mixtask.errors import MixtaskError

    if task and len(task) > 1:  # a second --task would silently replace the first
        raise MixtaskError(f"--task given {len(task)} times; give it once, tasks joined by ',' (e.g. seg,style1)")
    options = ApplyOptions(
        task=task[0] if task else None,
        output=None if output is None else argument_path(output),
        recursive=recursive,
        overwrite=overwrite,
        skip_existing=skip_existing,
        suffix=suffix,
        format=format.value if format else None,
        quality=quality,
        weights=weights,
        device=device,
        precision=precision.value,
        tile=tile or None,
        task_map=task_map,
        map_tasks=map_tasks,
        cutout=cutout.value if cutout else None,
        bgcolor=bgcolor,
        mask=mask,
    )
    summary = apply_paths([argument_path(text) for text in inputs], options, log=sys.stderr)
    raise typer.Exit(summary.exit_code)
