"""Warnings of a training run, on stderr."""

from __future__ import annotations


def warn(message: str) -> None:
    from rich.console import Console

    Console(stderr=True).print(f"[yellow]warning:[/] {message}", highlight=False)
