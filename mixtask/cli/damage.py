"""`mixtask damage IMAGE --kind denoise -o OUT`: the training corruptions on one photo."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors
from mixtask.errors import MixtaskError, UsageError

KIND_HELP = "inpaint (holes) or denoise (scratches), or their --task aliases; repeat for both."


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask damage photo.jpg -k inpaint -o holes.png --mask holes-mask.png\n\n"
    "mixtask damage photos/ -k scratches -o scratched/ --mask scratched-masks/\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("damage", epilog=EXAMPLES)(damage_command)


@user_errors
def damage_command(
    image: Path = typer.Argument(..., help="Input image, or a folder of them."),
    kind: list[str] = typer.Option(..., "--kind", "-k", help=KIND_HELP),
    output: Path = typer.Option(
        ..., "--output", "-o", help="Damaged image to write (.png keeps it exact); a folder for a folder input."
    ),
    mask: Path = typer.Option(
        None, "--mask", help="Also write the mask of the changed pixels (white); a folder for a folder input."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the holes/scratches (file i of a sorted folder: seed + i)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (never inputs)."),
) -> None:
    """Add square holes or scratches as in training, to try inpaint and denoise on."""
    from mixtask.images import is_input_name

    if not image.is_dir():
        _damage_one(image, tuple(kind), output, mask, seed, overwrite)
        typer.echo(f"wrote {output}")
        return
    failed = []
    files = sorted(
        path for path in image.iterdir()
        if path.is_file() and is_input_name(path.name)
    )  # fmt: skip
    if not files:
        raise MixtaskError(f"no images in {image}")
    for index, source in enumerate(files):  # a bad file is reported and the rest goes on, as in apply
        masks = None if mask is None else mask / f"{source.stem}.png"
        try:
            _damage_one(source, tuple(kind), output / f"{source.stem}.png", masks, seed + index, overwrite)
        except MixtaskError as error:
            if isinstance(error, UsageError):
                raise
            failed.append(str(error))
    typer.echo(f"{len(files) - len(failed)} damaged, {len(failed)} failed", err=True)
    for message in failed:
        typer.echo(f"  failed: {message}", err=True)
    if failed:
        raise typer.Exit(1)


def _damage_one(image: Path, kinds: tuple[str, ...], output: Path, mask: Path | None, seed: int, overwrite: bool):
    import numpy as np

    from mixtask.data.damage import damage
    from mixtask.fileio import check_output, write_bytes_atomic
    from mixtask.images import choose_format, encode, format_from_extension, load_image, to_pil

    def write(path: Path, rgb: np.ndarray) -> None:
        data = encode(to_pil(rgb), choose_format(format_from_extension(path), "png", False))
        write_bytes_atomic(path, data, replace=overwrite)

    for target in (output, mask):
        if target is not None:
            check_output(target, (image,), overwrite)
    damaged, changed = damage(load_image(image).rgb, kinds, seed)
    write(output, damaged)
    if mask is not None:
        write(mask, np.repeat(changed[..., None], 3, axis=2))
