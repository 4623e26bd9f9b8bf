"""Terminal rendering for the CLI: the job's progress bar and tables (rich). Off a terminal the
progress goes to the structured log instead."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich import box
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lrm.job.pipeline import STAGES
from lrm.job.pipeline import Progress as ProgressCallback
from lrm.reporting import Report


@contextmanager
def job_progress(dates: int) -> Iterator[ProgressCallback | None]:
    """A progress callback drawing one bar over every date's stages, or None off a terminal."""
    if not sys.stderr.isatty() or dates == 0:
        yield None
        return
    total = dates * len(STAGES)
    with Progress(TextColumn("[bold]{task.description:<14}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("nightly job", total=total)
        done_dates = -1
        last_fraction = 1.0

        def update(stage: str, fraction: float) -> None:
            nonlocal done_dates, last_fraction
            if fraction < last_fraction:
                done_dates += 1
            last_fraction = fraction
            bar.update(task, completed=(done_dates + fraction) * len(STAGES),
                       description=stage)

        yield update
        bar.update(task, completed=total, description="done")


def _console() -> Console:
    """On a terminal, its width; piped into a file or a pager, wide enough not to wrap."""
    return Console() if sys.stdout.isatty() else Console(width=250, no_color=True)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    table = Table(*headers, box=box.SIMPLE_HEAD)
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    _console().print(table)


def print_report(report: Report) -> None:
    request = report.request
    missing = ", ".join(d.isoformat() for d in report.missing) or "none"
    console = _console()
    console.print(f"[bold]{request.kind} report[/bold] {request.start} .. {request.end}, "
                  f"{request.granularity}; last complete date: "
                  f"{report.last_complete_date or 'none'}; missing dates: {missing}")
    table = Table(*report.columns, box=box.SIMPLE_HEAD)
    for row in report.rows:
        style = "bold red" if row.get("over_limit") else None
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in report.columns),
                      style=style)
    console.print(table)
