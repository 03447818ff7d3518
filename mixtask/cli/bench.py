"""`mixtask bench`: model-only and end-to-end ms per megapixel per size and precision (mixtask/studies/bench.py)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import WEIGHTS_HELP, user_errors

EXAMPLES = (  # shown after the options of --help
    "Examples:\n\nmixtask bench\n\nmixtask bench --sizes 256,1024x768 --precision fp32,bf16\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("bench", epilog=EXAMPLES)(bench_command)


@user_errors
def bench_command(
    sizes: str = typer.Option("256,512,1024", "--sizes", help="Comma-separated sizes: N (square) or WxH."),
    precision: str = typer.Option("fp32,bf16", "--precision", "-p", help="Comma-separated: fp32, bf16, fp16."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    weights: Path = typer.Option(None, "--weights", "-w", help=WEIGHTS_HELP),
    random: bool = typer.Option(False, "--random", help="A random full-width model instead of weights."),
    repeats: int = typer.Option(3, "--repeats", min=1, help="Timed runs per row (best is kept)."),
    tile: int = typer.Option(0, "--tile", help="Tile side in pixels; 0 = automatic."),
    model_only: bool = typer.Option(True, "--model-only/--no-model-only", help="Also time the model alone."),
    threads: int = typer.Option(0, "--threads", min=0, help="CPU threads for torch; 0 = one per core."),
    json_file: Path = typer.Option(None, "--json", help="Also write the results as JSON."),
    markdown: Path = typer.Option(None, "--markdown", help="Also write the table as Markdown."),
) -> None:
    """Measure speed (s per megapixel), quality against fp32 and peak memory."""
    from rich.console import Console

    from mixtask.fileio import write_bytes_atomic
    from mixtask.studies.bench import BenchOptions, bench_table, parse_size, run_bench, to_json, to_markdown

    options = BenchOptions(
        sizes=tuple(parse_size(text) for text in sizes.split(",") if text.strip()),
        precisions=tuple(text.strip().lower() for text in precision.split(",") if text.strip()),
        device=device, weights=weights, random=random, repeats=repeats, tile=tile or None, model_only=model_only,
        threads=threads or None,
    )  # fmt: skip
    console = Console(stderr=True)
    with console.status("benchmarking") as status:
        report = run_bench(options, lambda text: status.update(f"benchmarking {text}"))
    Console().print(bench_table(report))
    for path, text in ((json_file, to_json(report)), (markdown, to_markdown(report))):
        if path is not None:
            write_bytes_atomic(path, text.encode())
            console.print(f"wrote {path}")
