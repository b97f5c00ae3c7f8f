"""Unbalanced quotes: a cell that ran over the rows after it.

A stray `"` opens a quoted cell that CSV readers close only at the next `"`, however many
lines later: every row in between becomes part of one cell. Arrow then hands over one row
(ragged, or with the right number of cells by chance) where the file had hundreds, and
nobody would guess from "1 row rejected" that most of the file went with it.

A quoted cell may hold line breaks on purpose (an address, a comment), so a line break alone
proves nothing. What a runaway cell holds that a written value almost never does is the
delimiters of the rows it swallowed: a cell that opens in column k of line a and closes in
column j of line b holds (width - k) + (b - a - 1) * (width - 1) + (j - 1) delimiters, at
least a whole row's worth (width - 1) whenever it spans a line break and its row comes out
with the right number of cells (j = k). So the rule:

    a cell holding a line break is a runaway quote when it also holds at least as many
    delimiters as a row has between its cells (the header's cells - 1, files of two or
    more columns), or, in a row Arrow could not split, when its quote never closes.

A legitimate multi-line value is read as a runaway only if it holds that many delimiters
itself: never seen in a wide file, but a two- or three-column file with commas in its
multi-line texts is such a case (the README says so). A runaway row is rejected whatever
--control-chars says, with the line the quote opened on and the line its cell ends on, and
the summary counts the lines it swallowed.

All of it runs only for batches that hold a line break inside a cell (the reader knows that
already, from one memchr per column); the count of delimiters is one Arrow call per such
column, and Python runs per runaway row only.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..books.rowerrors import Reason


@dataclass(frozen=True)
class Runaway:
    """One row's runaway cell: where its quote opened and the line its cell ends on."""

    opened_at: int
    runs_to: int
    closed: bool = True  # False: the quote never closes, the cell runs to the end of the input

    @property
    def lines_swallowed(self) -> int:
        """Lines after the one the quote opened on, read into the cell."""
        return self.runs_to - self.opened_at

    @property
    def reason(self) -> Reason:
        end = (f"never closes: the cell runs to the end of the input (line {self.runs_to:,})" if not self.closed
               else f"runs to line {self.runs_to:,}")
        return Reason(
            f"unbalanced quote: the quote opened at line {self.opened_at:,} {end}: {self.lines_swallowed:,} "
            f"line{'' if self.lines_swallowed == 1 else 's'} read as one cell",
            f"the rows on those lines were read into this one; fix the quote at line {self.opened_at:,} (a quote "
            f"inside a quoted cell is written twice), and convert the file again",
        )


@dataclass(frozen=True)
class RunawayRows:
    """The runaway rows of one batch: their indices (ascending) and spans."""

    rows: np.ndarray
    spans: list[Runaway]

    def taken(self, keep: np.ndarray) -> "RunawayRows":
        """The same rows in a batch filtered by the boolean `keep` (which keeps every one of them)."""
        new_index = np.cumsum(keep) - 1
        return RunawayRows(new_index[self.rows], self.spans)


def line_breaks_per_column(columns: Sequence[pa.Array], holding: Sequence[int]) -> dict[int, np.ndarray]:
    """Line breaks in each cell of the columns `holding` (the ones with a line break somewhere)."""
    return {i: pc.fill_null(pc.count_substring(columns[i], "\n"), 0).to_numpy(zero_copy_only=False).astype(np.int64)
            for i in holding}


def runaway_rows(columns: Sequence[pa.Array], breaks: dict[int, np.ndarray], row_starts: np.ndarray,
                 delimiter: str) -> RunawayRows | None:
    """The rows holding a runaway cell (see the module's rule), or None. `breaks`: line breaks per
    cell of the columns that hold any (`line_breaks_per_column`); `row_starts`: each row's first line."""
    width = len(columns)
    if width < 2 or not breaks:
        return None
    runaway: dict[int, np.ndarray] = {}
    for i, counts in breaks.items():
        spanning = counts > 0
        delimiters = pc.fill_null(pc.count_substring(columns[i], delimiter), 0).to_numpy(zero_copy_only=False)
        found = spanning & (delimiters >= width - 1)
        if found.any():
            runaway[i] = found
    if not runaway:
        return None
    rows = np.flatnonzero(np.logical_or.reduce(list(runaway.values())))
    spans = []
    for row in rows.tolist():
        before = 0  # line breaks in the row's cells before the runaway cell
        first = last = None
        closed = True
        for i in range(width):
            n = int(breaks[i][row]) if i in breaks else 0
            if i in runaway and runaway[i][row]:
                if first is None:
                    first = int(row_starts[row]) + before
                last = int(row_starts[row]) + before + n
                # A cell that ends in a line break ran to the end of the input: Arrow ends a quote that
                # never closes there, with the input's last line break inside the cell.
                closed = not _ends_in_line_break(columns[i], row)
                last -= not closed
            before += n
        assert first is not None and last is not None
        spans.append(Runaway(first, last, closed))
    return RunawayRows(rows, spans)


def _ends_in_line_break(column: pa.Array, row: int) -> bool:
    cell = column[row].as_py()
    return bool(cell) and cell[-1:] in (b"\n", "\n")


def runaway_in_text(text: str, first_line: int, delimiter: str, width: int) -> Runaway | None:
    """The runaway cell of a row Arrow could not split (its raw text, from line `first_line`), or
    None: a cell with a line break and a row's worth of delimiters, or a quote that never closes
    across a line break. Quotes toggle a cell's quoting, so with an odd number of them the last
    one opened the cell that never closes."""
    if "\n" not in text:
        return None
    never_closed = text.count('"') % 2 == 1
    try:
        cells = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
    except csv.Error:
        cells = []
    before = 0
    for number, cell in enumerate(cells):
        n = cell.count("\n")
        if n and width >= 2 and cell.count(delimiter) >= width - 1:
            return Runaway(first_line + before, first_line + before + n,
                           closed=not (never_closed and number == len(cells) - 1))
        before += n
    if never_closed:
        opened = first_line + text[: text.rfind('"')].count("\n")
        if opened < first_line + text.count("\n"):
            return Runaway(opened, first_line + text.count("\n"), closed=False)
    return None
