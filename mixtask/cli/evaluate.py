"""`mixtask eval`: deterministic held-out scores of every task and trained mix of a weights file."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import WEIGHTS_HELP, user_errors

EXAMPLES = (  # shown after the options of --help
    "Examples:\n\n"
    "mixtask eval --data ../shared/data --count 16 --size 256\n\n"
    "mixtask eval --data ../shared/data -w run.safetensors --only denoise,inpaint\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("eval", epilog=EXAMPLES)(eval_command)


def _style_pair(text: str) -> tuple[str, str]:
    from mixtask.errors import MixtaskError

    name, sep, image = (part.strip() for part in text.partition("="))
    if not sep or not name or not image:
        raise MixtaskError(f"--style {text!r}: write it as TASK=IMAGE, e.g. --style style2=autumn.jpg")
    return name.lower(), image


ONLY_HELP = "Score only these tasks and mixes (and recon), e.g. denoise,inpaint or seg+style1: for quick probes."


@user_errors
def eval_command(
    data: Path = typer.Option(..., "--data", "-d", help="Dataset folder (e.g. ../shared/data)."),
    weights: Path = typer.Option(None, "--weights", "-w", help=WEIGHTS_HELP),
    split: str = typer.Option("val", "--split", help="Split to score; 'train' is labelled NOT held-out."),
    size: int = typer.Option(256, "--size", help="Side of the square evaluation crops, px."),
    count: int = typer.Option(16, "--count", "-n", help="Samples per task and per mix (fixed seeds)."),
    json_path: Path = typer.Option(None, "--json", help="Also write every number to this JSON file."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the tables as Markdown (model cards)."),
    vgg: Path = typer.Option(None, "--vgg", help="VGG16 weights; default DATA/backbones/, else style metrics skipped."),
    effnet: Path = typer.Option(None, "--effnet", help="EfficientNet-Lite0 weights; default DATA/backbones/."),
    style: list[str] = typer.Option([], "--style", help="TASK=IMAGE: the style image of a style task."),
    strength_sweep: bool = typer.Option(False, "--strength-sweep", help="Score each task at strengths 0..1."),
    seed: int = typer.Option(0, "--seed", help="Seed of the crops and corruptions."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    record: bool = typer.Option(False, "--record", help="Store the results in the weights file's metrics."),
    only: str = typer.Option(None, "--only", help=ONLY_HELP, show_default=False),
) -> None:
    """Score every task and trained mix against the identity and classical baselines."""
    from rich.console import Console

    from mixtask.errors import MixtaskError
    from mixtask.evaluation.report import result_tables
    from mixtask.evaluation.run import EvalOptions, run_evaluation, write_json

    styles = tuple(_style_pair(text) for text in style)
    selection = tuple(name.strip() for name in only.split(",") if name.strip()) if only is not None else ()
    if only is not None and not selection:
        raise MixtaskError("--only needs task or mix names, e.g. --only denoise,inpaint")
    if record and selection:
        raise MixtaskError("--record stores a whole evaluation: drop --only to record")
    options = EvalOptions(
        data, weights, split, size, count, vgg, effnet, styles, strength_sweep, seed, device=device, only=selection
    )
    console, errors = Console(), Console(stderr=True)
    result = run_evaluation(options, log=lambda message: errors.print(message, style="dim", highlight=False))
    for table in result_tables(result):
        console.print(table)
    for note in result["notes"]:
        errors.print(f"[yellow]note:[/] {note}", highlight=False)
    if json_path is not None:
        write_json(result, json_path)
        console.print(f"wrote {json_path}")
    if markdown is not None:
        from mixtask.evaluation.report import result_markdown
        from mixtask.fileio import write_bytes_atomic

        write_bytes_atomic(markdown, result_markdown(result).encode())
        console.print(f"wrote {markdown}")
    if record:
        from mixtask.weights import record_metrics, resolve_weights_path

        record_metrics(resolve_weights_path(weights), result)
        console.print(f"recorded the results in {resolve_weights_path(weights)}")
