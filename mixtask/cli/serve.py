"""`mixtask serve`: an HTTP server with the network loaded once, and a page of strength sliders (mixtask.serve)."""

from __future__ import annotations

from pathlib import Path

import typer

from mixtask.cli.common import WEIGHTS_HELP, Precision, user_errors

HOST_HELP = "Address to bind; the default serves this machine only (0.0.0.0: every network, at your own risk)."


EXAMPLES = (  # shown after the options of --help
    "Examples:\n\n"
    "mixtask serve --port 8000\n\n"
    "curl -F image=@photo.jpg -F task=seg=1,style1=1 http://127.0.0.1:8000/v1/translate -o out.png\n\n"
)


def register(app: typer.Typer) -> None:
    app.command("serve", epilog=EXAMPLES)(serve_command)


@user_errors
def serve_command(
    weights: Path = typer.Option(None, "--weights", "-w", help=WEIGHTS_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help=HOST_HELP),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="TCP port."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps."),
    precision: Precision = typer.Option(Precision.auto, "--precision", help="Compute precision."),
    max_mb: float = typer.Option(20.0, "--max-mb", min=0.01, help="Largest request body, in megabytes."),
    max_waiting: int = typer.Option(8, "--max-waiting", min=1, help="Requests that may wait for the network."),
) -> None:
    """Serve the network over HTTP: a page with one slider per task at /, the API at /v1/.

    Example: mixtask serve --port 8000, then open http://127.0.0.1:8000/ or
    curl -F image=@photo.jpg -F task=seg=1,style1=1 http://127.0.0.1:8000/v1/translate -o out.png
    """
    import uvicorn  # a missing [serve] extra is reported by user_errors

    from mixtask.inference.translator import Translator
    from mixtask.serve.app import create_app

    translator = Translator.from_file(weights, device=device, precision=precision.value)
    app = create_app(translator, max_bytes=int(max_mb * 1024 * 1024), max_waiting=max_waiting)
    typer.echo(f"mixtask serve: http://{host}:{port}/ ({', '.join(translator.task_set.names)}; Ctrl-C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
