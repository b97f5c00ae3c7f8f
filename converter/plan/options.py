"""The options of a run, checked once: what convert is asked to do besides the mapping."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum

from ..books.duplicates import DEFAULT_WINDOW, DuplicateMode
from ..encode.encoder import DEFAULT_MAX_STRING_BYTES
from ..formats import annotated
from ..mapping import Precision
from ..read.settings import PLAIN, ReadSettings
from ..read.expansion import DEFAULT_MAX_EXPANSION
from ..read.source import DEFAULT_BLOCK_SIZE, DEFAULT_MAX_COLUMNS


class OnError(str, Enum):
    """What a bad row does: saved and counted, only counted, or the end of the run."""

    QUARANTINE = "quarantine"
    SKIP = "skip"
    FAIL = "fail"


@dataclass(frozen=True)
class ConvertOptions:
    precision: Precision = Precision.NS
    on_error: OnError = OnError.QUARANTINE
    rejects_path: str = "csv2lp-rejects.csv"
    replace_control_chars: bool = False
    s2_level: int | None = None
    max_string_bytes: int | None = DEFAULT_MAX_STRING_BYTES  # longer string fields reject their row; None: no limit
    delimiter: str = ","
    block_size: int = DEFAULT_BLOCK_SIZE
    max_expansion: int = DEFAULT_MAX_EXPANSION  # a compressed input that expands more stops (read/expansion.py)
    max_columns: int = DEFAULT_MAX_COLUMNS  # a wider header refuses its file (read/source.py); 0: no limit
    # Encoder threads: Arrow's kernels release the GIL, so two encode while the caller reads.
    workers: int = field(default_factory=lambda: min(2, os.cpu_count() or 1))
    duplicates: DuplicateMode = DuplicateMode.WARN
    duplicates_window: int = DEFAULT_WINDOW
    input_format: annotated.InputFormat = annotated.InputFormat.AUTO  # plain or annotated CSV (annotated.py)
    read: ReadSettings = PLAIN  # where header and data are (Telegraf's CSV options, see telegraf_csv.py)
