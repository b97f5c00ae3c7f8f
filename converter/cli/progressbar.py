"""A rich progress bar on stderr (bytes and rows/s), only where a person is watching."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from ..books.progress import Progress, ProgressCallback


@contextmanager
def progress_reporter(enabled: bool) -> Iterator[ProgressCallback | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress as Bar, TextColumn, TimeRemainingColumn

    bar = Bar(TextColumn("converting"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[rate]}"),
              TimeRemainingColumn(), console=Console(stderr=True), transient=True)
    with bar:
        task = bar.add_task("convert", total=None, rate="")

        def report(progress: Progress) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{progress.rows / elapsed:,.0f} rows/s" if elapsed > 0 else ""
            bar.update(task, completed=progress.bytes_done, total=progress.bytes_total, rate=rate)

        yield report
