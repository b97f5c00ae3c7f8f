"""Blocks of raw cells with their line numbers: Arrow's good rows and the rows it could not split.

Arrow does not report physical line numbers, so they are counted: a record spans one line plus
the line breaks inside its quoted cells. Rows Arrow cannot split (wrong cell count) reach the
reader through `invalid_row_handler` with their record number (`Pending`), which tells where
they sat between the good rows (`place`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from ..arrow_buffers import holds_any
from ..books.rowerrors import CUT_OFF_ROW, Reason, ragged_row, row_too_long
from .header import size_text
from .long_rows import TooLong
from .quotes import Runaway, RunawayRows, line_breaks_per_column, runaway_in_text, runaway_rows


@dataclass(frozen=True)
class InvalidRow:
    """A row Arrow could not split into the header's cells."""

    line: int
    text: str
    expected: int
    actual: int
    cut_off: bool = False  # the incomplete last row of a damaged compressed file, not a ragged one
    runaway: Runaway | None = None  # an unbalanced quote ran over the rows after it (quotes.py)
    too_long: TooLong | None = None  # longer than a block: `text` holds its start only

    @property
    def reason(self) -> Reason:
        if self.too_long is not None:
            long = self.too_long
            return row_too_long(size_text(long.block_size), long.lines, long.quoted_lines, long.ended)
        if self.cut_off:
            return CUT_OFF_ROW
        return self.runaway.reason if self.runaway is not None else ragged_row(self.expected, self.actual)


@dataclass
class Block:
    """One Arrow record batch of raw cells, and where its rows sit in the file."""

    source: str
    cells: pa.RecordBatch
    first_line: int
    invalid: list[InvalidRow]
    _row_lines: np.ndarray | None = field(default=None, repr=False)
    runaway: RunawayRows | None = None  # rows of `cells` an unbalanced quote ran through (quotes.py)
    notes: list[str] = field(default_factory=list)  # warnings about the input, for the summary

    @property
    def runaways(self) -> list[Runaway]:
        """Every unbalanced quote of the block: in rows Arrow split and in rows it could not."""
        spans = list(self.runaway.spans) if self.runaway is not None else []
        return spans + [row.runaway for row in self.invalid if row.runaway is not None]

    def row_lines(self) -> np.ndarray:
        """Physical line number of each row of `cells` (computed only when asked for)."""
        if self._row_lines is None:
            raise RuntimeError("row_lines was not prepared")  # pragma: no cover
        return self._row_lines


@dataclass
class Pending:
    number: int  # Arrow's record number (1 = header); -1: none (placed after every other row)
    text: str
    expected: int
    actual: int
    cut_off: bool = False


def _columns_with_line_breaks(batch: pa.RecordBatch) -> list[int]:
    """The columns with a line break in some cell (a memchr per column; most batches have none)."""
    return [i for i, column in enumerate(batch.columns) if holds_any(column, b"\n")]


def place(name: str, batch: pa.RecordBatch, pending: list[Pending], first_record: int, first_line: int,
           delimiter: str, take_all: bool = False) -> tuple[Block, int, int]:
    """Interleave the batch's good rows with the invalid rows Arrow skipped, number the lines, and
    find the unbalanced quotes (quotes.py) among the rows whose cells hold line breaks."""
    n = batch.num_rows
    # Rows without a record number last: they take the last places (below), and rows pair with places in order.
    pending.sort(key=lambda p: (p.number < 0, p.number))
    end = first_record + n
    mine: list[Pending] = []
    while pending and (take_all or 0 <= pending[0].number < end):
        mine.append(pending.pop(0))
        end += 1
    holding = _columns_with_line_breaks(batch)
    if not mine and not holding:
        lines = first_line + np.arange(n, dtype=np.int64)
        return Block(name, batch, first_line, [], lines), end, first_line + n
    breaks = line_breaks_per_column(batch.columns, holding)
    per_row = sum(breaks.values(), np.zeros(n, dtype=np.int64))
    total = n + len(mine)
    invalid_at = np.zeros(total, dtype=bool)
    for p in mine:
        if p.number >= first_record:
            invalid_at[min(p.number - first_record, total - 1)] = True
    # Rows without a record number go last: the row a damage cut (and rows Arrow would not number,
    # never seen with the serial reader).
    unplaced = len(mine) - int(invalid_at.sum())
    if unplaced:
        invalid_at[np.flatnonzero(~invalid_at)[-unplaced:]] = True
    span = np.ones(total, dtype=np.int64)
    span[~invalid_at] += per_row
    span[invalid_at] += np.array([p.text.count("\n") for p in mine], dtype=np.int64)
    starts = first_line + np.concatenate(([0], np.cumsum(span)[:-1]))
    invalid_lines = starts[invalid_at]
    invalid = [InvalidRow(int(line), p.text, p.expected, p.actual, p.cut_off,
                          None if p.cut_off else runaway_in_text(p.text, int(line), delimiter, p.expected))
               for line, p in zip(invalid_lines, mine)]
    row_lines = starts[~invalid_at]
    block = Block(name, batch, first_line, invalid, row_lines,
                  runaway=runaway_rows(batch.columns, breaks, row_lines, delimiter))
    return block, end, first_line + int(span.sum())

