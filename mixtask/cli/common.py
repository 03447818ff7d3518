"""What every command shares: turning project errors into one line on stderr and an exit code."""

from __future__ import annotations

import copy
import errno
import functools
import sys
from enum import Enum

import typer

from mixtask.choices import PRECISIONS
from mixtask.errors import MixtaskError, UsageError

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
    """Decorator: MixtaskError -> one line on stderr, exit 1 (a UsageError: 2); Ctrl-C -> exit 130; SIGTERM -> 143."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except MixtaskError as error:
            raise fail(str(error), 2 if isinstance(error, UsageError) else 1) from None
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


# What an option's value looks like in --help, by annotation (Typer's own: <bool>, <list[str]>, <path>)
METAVARS = {"Path": "PATH", "str": "TEXT", "int": "INT", "float": "NUMBER"}  # flags: none (ReadableCommand)
LIST_METAVARS = {"style": "TASK=IMAGE", "mix": "TASK+TASK", "kind": "KIND", "arch": "ARCH"}


def _help_option_without_type(base: type) -> type:
    """`base` (a Typer command class) with click's help conventions: no value type after -h/--help or a named
    argument (Typer shows <bool>, <list[str]>), and `INPUT...` in the usage line (not `{INPUT}...`)."""

    class Readable(base):
        def get_help_option(self, ctx):
            option = super().get_help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

        def get_params(self, ctx):
            params = super().get_params(ctx)
            for param in params:
                if isinstance(param, typer.core.TyperArgument) and param.metavar:  # its name says it all
                    param.type = copy.copy(param.type)  # (click's type objects can be shared)
                    param.type.get_metavar = lambda param, ctx: ""  # no <path> or <str> after IMAGE
                elif isinstance(param, typer.core.TyperOption) and param.is_flag and param.metavar is None:
                    param.metavar = ""  # a flag takes no value (ours, and Typer's --install-completion)
            return params

        def collect_usage_pieces(self, ctx):  # `INPUT...` as click writes it, not Typer's `{INPUT}...`
            return [piece.replace("{", "").replace("}", "") for piece in super().collect_usage_pieces(ctx)]

        def main(self, *args, standalone_mode: bool = True, **kwargs):
            """Usage errors (a missing argument, a bad choice, a value out of range) as one line, exit 2, like
            every other error here; not Typer's framed block."""
            if not standalone_mode:
                return super().main(*args, standalone_mode=False, **kwargs)
            try:
                code = super().main(*args, standalone_mode=False, **kwargs)
            except typer._click.exceptions.UsageError as error:
                where = f" (see '{error.ctx.command_path} -h')" if error.ctx is not None else ""
                print(f"mixtask: error: {error.format_message()}{where}", file=sys.stderr)
                sys.exit(2)
            except typer._click.exceptions.ClickException as error:
                print(f"mixtask: error: {error.format_message()}", file=sys.stderr)
                sys.exit(error.exit_code)
            except typer.Abort:  # end of input at a prompt
                print("mixtask: aborted", file=sys.stderr)
                sys.exit(1)
            except OSError as error:  # stdout closed early (| head): quiet, as click does
                if error.errno != errno.EPIPE:
                    raise
                sys.stdout = typer._click.utils.PacifyFlushWrapper(sys.stdout)
                sys.exit(1)
            sys.exit(code if isinstance(code, int) else 0)

    return Readable


ReadableCommand = _help_option_without_type(typer.core.TyperCommand)
ReadableGroup = _help_option_without_type(typer.core.TyperGroup)


def readable_metavars(app: typer.Typer) -> None:
    """Give every option of `app`'s commands that names none a metavar as click-based tools show them: none
    for a flag, PATH, TEXT, INT, NUMBER, or what a repeatable option's items look like (TASK=IMAGE)."""
    import inspect

    for command in app.registered_commands:
        if command.cls in (None, typer.core.TyperCommand):
            command.cls = ReadableCommand
        for name, parameter in inspect.signature(command.callback).parameters.items():
            info = parameter.default
            if not isinstance(info, typer.models.OptionInfo | typer.models.ArgumentInfo) or info.metavar is not None:
                continue
            annotation = str(parameter.annotation)
            if isinstance(info, typer.models.ArgumentInfo):  # a positional argument: its name (IMAGE, RUN_DIR)
                metavar = name.upper()
            elif annotation.startswith("list["):
                metavar = LIST_METAVARS.get(name)
            else:
                metavar = METAVARS.get(annotation)
            if metavar is not None:
                info.metavar = metavar
