"""The Rich progress bar of a multi-image `mixtask apply` on a terminal: the last file, count, img/s, elapsed,
ETA. Its own module because `rich.progress` takes about 0.03 s to import, which a one-image run (most of them)
does not need (README, "Start-up")."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column
from rich.text import Text


class RateColumn(ProgressColumn):
    """Images per second so far."""

    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} img/s" if speed else "- img/s")


def progress_bar(terminal) -> Progress:
    """A transient bar on `terminal` (a text stream that is a terminal)."""
    return Progress(
        TextColumn("{task.description}", table_column=Column(max_width=40, no_wrap=True)),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=Console(file=terminal),
        transient=True,
    )
