"""Progress of a long run, as the pipeline reports it to whoever shows it (cli/progressbar.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Progress:
    bytes_done: int
    bytes_total: int | None
    rows: int


ProgressCallback = Callable[[Progress], None]
