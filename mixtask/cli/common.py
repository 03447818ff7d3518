"""What every command shares: turning project errors into one line on stderr and an exit code."""

from __future__ import annotations

import functools
import sys
from enum import Enum

import typer

from mixtask.choices import PRECISIONS
from mixtask.errors import MixtaskError

WEIGHTS_HELP = "Weights file (.safetensors); default: the shipped model in weights/."
# Optional dependencies (pyproject.toml's extras): a command that needs a missing one says which extra has it.
OPTIONAL_MODULES = {
    "cv2": "eval", "pytorch_msssim": "eval", "matplotlib": "train", "onnxruntime": "train",
    "fastapi": "serve", "uvicorn": "serve", "multipart": "serve", "starlette": "serve",
}  # fmt: skip


def choice_enum(name: str, values: tuple[str, ...]) -> type[Enum]:
    """A str Enum whose members are `values` (a list from mixtask.choices), for a Typer option's choices."""
    return Enum(name, {value: value for value in values}, type=str)


Precision = choice_enum("Precision", PRECISIONS)  # --precision of `train` and `apply`


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"mixtask: error: {message}", err=True)
    return typer.Exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is: the same clean-up as Ctrl-C (no half-written output), exit 143."""


def terminate_like_interrupt() -> None:
    """Turn SIGTERM into `Terminated` (training installs its own handler: checkpoint, then stop)."""
    import signal

    def handler(signum, frame):
        raise Terminated

    signal.signal(signal.SIGTERM, handler)


def user_errors(command):
    """Decorator: MixtaskError -> one line on stderr, exit 1; Ctrl-C -> exit 130; SIGTERM -> exit 143."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MixtaskError as error:
            raise fail(str(error)) from None
        except ModuleNotFoundError as error:
            extra = OPTIONAL_MODULES.get((error.name or "").split(".")[0])
            if extra is None:
                raise
            raise fail(
                f"this command needs {error.name}, from the [{extra}] extra: pip install 'mixtask[{extra}]'"
            ) from None
        except Terminated:
            print("mixtask: terminated", file=sys.stderr)
            raise typer.Exit(143) from None
        except KeyboardInterrupt:
            print("mixtask: interrupted", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper
