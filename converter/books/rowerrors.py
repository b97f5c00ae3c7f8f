"""Why rows of one batch are rejected: the first reason per row, kept as Arrow arrays.

Checks run column by column over the whole batch; each one hands in a boolean mask, a
reason (the same text for every row it marks, so that the summary can count by reason)
and the offending cells. A row keeps the first reason it gets. Nothing is allocated for
a batch without a single bad row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_buffers import any_true


@dataclass(frozen=True)
class Reason:
    """A reject reason: `text` is what users count by, `fix` what --on-error fail suggests."""

    text: str
    fix: str


def invalid_value(type_name: str, column: str) -> Reason:
    return Reason(
        f"invalid {type_name} in column {column!r}",
        f"correct the value, or declare the column's type (--type {column}=string) if it holds text",
    )


def integer_changed_by_float(column: str) -> Reason:
    return Reason(
        f"integer a float would change in column {column!r} (typed float from its first values)",
        f"a float holds integers exactly up to 2**53 only: declare --type {column}=integer to keep every digit, "
        f"or --type {column}=float to accept the rounding",
    )


def invalid_utf8(column: str) -> Reason:
    return Reason(f"invalid UTF-8 in column {column!r}", "re-export the file as UTF-8")


def time_problem(kind: str, column: str, detail: str) -> Reason:
    """`detail`: the time format (unparseable), the time zone (local times), or the range of times
    the precision can carry (out of range: `-p ms: 1677-09-21T00:12:43.146Z to ...`)."""
    fixes = {
        "empty": "give the row a time, or drop it",
        "unparseable": f"fix the value, or set --time-format to match it ({detail})",
        "out of range": "InfluxDB refuses a line whose time is outside that range; fix the time, or use a finer "
                        "--precision if the time lies within a unit of the range's start",
        "nonexistent or ambiguous local": f"the local time does not exist or occurs twice in {detail}; give an offset or use UTC",
    }
    if kind == "out of range":
        return Reason(f"out of range time in column {column!r} (line protocol at {detail})", fixes[kind])
    return Reason(f"{kind} time in column {column!r}", fixes[kind])


def control_character(role: str, column: str) -> Reason:
    return Reason(
        f"control character in {role} column {column!r}",
        "remove it, or use --control-chars replace to turn control characters into spaces",
    )


def line_break(column: str) -> Reason:
    return Reason(
        f"line break in string column {column!r}",
        "an unbalanced quote makes a value swallow the lines after it; fix the quote, or use "
        "--control-chars replace if the line break is meant",
    )


def reserved_field_key(column: str) -> Reason:
    return Reason(
        f"field key 'time' in column {column!r}",
        "InfluxDB refuses a field named 'time', or drops it when the point has other fields; rename it in the source",
    )


def ambiguous_backslash(role: str, column: str) -> Reason:
    return Reason(
        f"backslash at the end or before ',', '=' or space in {role} column {column!r}",
        "parsers read such a backslash differently; change the value",
    )


def empty_measurement(column: str) -> Reason:
    return Reason(f"empty measurement in column {column!r}", "give the row a measurement, or use --measurement NAME")


def comment_measurement(column: str) -> Reason:
    return Reason(f"measurement starting with '#' in column {column!r}", "a line starting with '#' is a comment; rename it")


NO_FIELD = Reason(
    "no field: every field cell is empty, NaN or infinite",
    "line protocol needs at least one field per line; map another column as a field",
)


def string_too_long(column: str, limit: int) -> Reason:
    return Reason(
        f"string over {limit:,} bytes in column {column!r} (--max-string-bytes)",
        "InfluxDB documents 64 KB as the longest string field; shorten the value, or raise --max-string-bytes "
        "if your server stores longer strings",
    )


SERIES_KEY_TOO_LONG = Reason(
    "series key too long: measurement, tags and field key over 65,535 bytes",
    "InfluxDB refuses such a line (max key length exceeded); shorten the tag values, or make a long one a field",
)


def ragged_row(expected: int, actual: int) -> Reason:
    return Reason(
        f"ragged row: {actual} cells where the header has {expected}",
        "fix the row's delimiters or quotes",
    )


def row_too_long(block_size: str, lines: int, quoted_lines: bool, ended: bool) -> Reason:
    """A row that does not fit in the blocks the reader reads (`block_size`, as the option gives it)."""
    text = f"row longer than the block size ({block_size})"
    if quoted_lines:
        text += (f": a quoted value in it runs over {lines:,} lines" +
                 ("" if ended else ", to the end of the input (its quote never closes)"))
    return Reason(text, "raise --block-size (execd: block_size in [convert] of csv2lp.toml) above the row's length "
                        "if it is meant to be that long, or fix the row: a stray quote makes one value of the "
                        "lines after it")


CUT_OFF_ROW = Reason(
    "cut off: the compressed file is damaged or incomplete inside this row",
    "the rows after it are lost too: get a whole copy of the file",
)


class RowErrors:
    """First reject reason of each row in one batch of `length` rows.

    Kept in numpy: per row, which `add` call rejected it first. The offending values are
    taken from that call's cells only for the rejected rows, when asked for: a batch with a
    few bad cells then costs a few vector operations, not a copy of every column involved."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.reasons: dict[str, Reason] = {}
        self._first: np.ndarray | None = None  # int32 per row: the `add` that rejected it first, or -1
        self._added: list[tuple[Reason, pa.Array | pa.ChunkedArray | None]] = []  # each add's reason and cells
        self._mask: pa.Array | None = None

    def add(self, bad: pa.Array | None, reason: Reason, cells: pa.Array | None = None) -> None:
        """Mark the rows where `bad` is true (nulls in `bad` count as false)."""
        if not any_true(bad):
            return
        rows = pc.fill_null(bad, False).to_numpy(zero_copy_only=False)
        self.reasons[reason.text] = reason
        if self._first is None:
            self._first = np.full(self.length, -1, dtype=np.int32)
        self._first[rows & (self._first < 0)] = len(self._added)
        self._added.append((reason, cells))
        self._mask = None

    def add_each(self, rows: np.ndarray, reasons: list[Reason]) -> None:
        """Mark each of `rows` (indices, ascending) with a reason of its own (no cells): for the few
        rows whose reason names their own lines (an unbalanced quote's span)."""
        if not len(rows):
            return
        if self._first is None:
            self._first = np.full(self.length, -1, dtype=np.int32)
        for row, reason in zip(np.asarray(rows).tolist(), reasons):
            if self._first[row] >= 0:
                continue
            self.reasons[reason.text] = reason
            self._first[row] = len(self._added)
            self._added.append((reason, None))
        self._mask = None

    @property
    def mask(self) -> pa.Array | None:
        """True for every rejected row; None while no row is."""
        if self._first is None:
            return None
        if self._mask is None:
            self._mask = pa.array(self._first >= 0)
        return self._mask

    @property
    def any(self) -> bool:
        return self._first is not None

    def rows(self) -> np.ndarray:
        """Indices of rejected rows, in order."""
        if self._first is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self._first >= 0)

    def reason_at(self, indices: np.ndarray) -> list[str]:
        assert self._first is not None
        return [self._added[k][0].text for k in self._first[indices].tolist()]

    def value_at(self, indices: np.ndarray) -> list[bytes | None]:
        """The offending cell of each of these rejected rows (None where the reason has none)."""
        assert self._first is not None
        indices = np.asarray(indices, dtype=np.int64)
        firsts = self._first[indices]
        values: list[bytes | None] = [None] * len(indices)
        for k in np.unique(firsts).tolist():
            cells = self._added[k][1]
            if cells is None:
                continue
            at = np.flatnonzero(firsts == k)
            taken = cells.take(pa.array(indices[at])).cast(pa.binary()).to_pylist()
            for position, value in zip(at.tolist(), taken):
                values[position] = value
        return values

    def counts(self) -> dict[str, int]:
        """Rejected rows per reason (vectorized)."""
        if self._first is None:
            return {}
        per_add = np.bincount(self._first[self._first >= 0], minlength=len(self._added)).tolist()
        counted: dict[str, int] = {}
        for (reason, _), count in zip(self._added, per_add):
            if count:
                counted[reason.text] = counted.get(reason.text, 0) + count
        return counted
