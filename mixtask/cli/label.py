"""`mixtask label DATA`: pseudo-label masks for the photos of a data folder, by a salient-object teacher."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors

MODEL_HELP = "Salient-object ONNX model (U²-Net-p conventions) \\[default: u2netp.onnx in --teachers' default folder]"


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask label my-data --model ../shared/teachers/u2netp.onnx\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("label", epilog=EXAMPLES)(label_command)


@user_errors
def label_command(
    data: Path = typer.Argument(..., help="Data folder in mixtask's layout (photos/[train/])."),
    model: Path = typer.Option(None, "--model", help=MODEL_HELP),
    name: str = typer.Option("u2netp", "--name", help="Mask set to write: masks/NAME/ (train with --masks NAME)."),
    split: str = typer.Option("train", "--split", help="Split to label."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace masks that exist."),
) -> None:
    """Write pseudo-label masks for a photo folder with a salient-object teacher (exits 1 if a photo failed)."""
    from mixtask.backbones.teachers import SALIENCY, default_teacher_dir
    from mixtask.training.labels import label_folder

    report = label_folder(data, model or default_teacher_dir() / SALIENCY, name, split, overwrite)
    for photo, reason in report.failed:
        typer.echo(f"mixtask: skipped {photo}: {reason}", err=True)
    typer.echo(f"{len(report.written)} masks written, {len(report.kept)} kept, {len(report.failed)} failed")
    if report.failed:
        raise typer.Exit(1)
