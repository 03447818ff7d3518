"""`mixtask synth`: mixed input/target pairs from a stage-1 model (paper, Sec. 3.3, Method 3)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import user_errors

MIX_HELP = "A mix to synthesise, e.g. denoise+style1 (repeat; default: the paper's mixes the model has)."


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask synth --data ../shared/data --weights stage1.safetensors --out synth/\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("synth", epilog=EXAMPLES)(synth_command)


@user_errors
def synth_command(
    weights: Path = typer.Option(..., "--weights", "-w", help="Stage-1 weights (e.g. RUN_DIR/stage1.safetensors)."),
    data: Path = typer.Option(..., "--data", help="Dataset folder to draw clean crops (and masks) from."),
    out: Path = typer.Option(..., "--out", help="Folder for the PNG pairs and manifest.jsonl."),
    mix: list[str] = typer.Option([], "--mix", help=MIX_HELP),
    count: int = typer.Option(100, "--count", help="Number of pairs, spread evenly over the mixes."),
    size: int = typer.Option(256, "--size", help="Side of the square samples in pixels."),
    seed: int = typer.Option(0, "--seed"),
    batch: int = typer.Option(8, "--batch", help="Samples rendered per forward pass."),
    precision: str = typer.Option("auto", "--precision", help="auto, fp32, bf16 or fp16 (CUDA)."),
) -> None:
    """Write mixed samples (input/target PNGs + manifest.jsonl) for `mixtask train --synth`."""
    from rich.progress import Progress

    from mixtask.training import default_command
    from mixtask.training.synth import SynthOptions, synthesize

    options = SynthOptions(
        weights=str(weights), data=str(data), out=str(out), mixes=tuple(mix) or None, count=count, size=size,
        seed=seed, batch=batch, precision=precision, command=default_command(),
    )  # fmt: skip
    with Progress(transient=True) as bar:
        task = bar.add_task("synthesising", total=count)
        result = synthesize(options, progress=lambda done, total: bar.update(task, completed=done))
    shares = ", ".join(f"{label}: {n}" for label, n in result.per_mix.items())
    typer.echo(f"{result.count} pairs in {result.out} ({shares})")
