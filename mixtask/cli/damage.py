"""`mixtask damage IMAGE --kind denoise -o OUT`: the training corruptions on one photo."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors
from mixtask.errors import MixtaskError

KIND_HELP = "inpaint (holes) or denoise (scratches), or their --task aliases; repeat for both."


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask damage photo.jpg -k inpaint -o holes.png --mask holes-mask.png\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("damage", epilog=EXAMPLES)(damage_command)


@user_errors
def damage_command(
    image: Path = typer.Argument(..., help="Input image."),
    kind: list[str] = typer.Option(..., "--kind", "-k", help=KIND_HELP),
    output: Path = typer.Option(..., "--output", "-o", help="Damaged image to write (.png keeps it exact)."),
    mask: Path = typer.Option(None, "--mask", help="Also write the mask of the changed pixels (white)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the holes/scratches."),
) -> None:
    """Add square holes or scratches as in training, to try inpaint and denoise on."""
    import numpy as np

    from mixtask.data.damage import damage
    from mixtask.fileio import write_bytes_atomic
    from mixtask.images import choose_format, encode, format_from_extension, load_image, to_pil

    def write(path: Path, rgb: np.ndarray) -> None:
        write_bytes_atomic(path, encode(to_pil(rgb), choose_format(format_from_extension(path), "png", False)))

    for target in (output, mask):
        if target is not None and target.resolve() == image.resolve():
            raise MixtaskError(f"{target} is the input: write the result elsewhere")
    damaged, changed = damage(load_image(image).rgb, tuple(kind), seed)
    write(output, damaged)
    if mask is not None:
        write(mask, np.repeat(changed[..., None], 3, axis=2))
    typer.echo(f"wrote {output}")
