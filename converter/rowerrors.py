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

from .cells import any_true


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


def invalid_utf8(column: str) -> Reason:
    return Reason(f"invalid UTF-8 in column {column!r}", "re-export the file as UTF-8")


def time_problem(kind: str, column: str, detail: str) -> Reason:
    fixes = {
        "empty": "give the row a time, or drop it",
        "unparseable": f"fix the value, or set --time-format to match it ({detail})",
        "out of range": "line protocol times must lie between 1677-09-21 and 2262-04-11",
        "nonexistent or ambiguous local": f"the local time does not exist or occurs twice in {detail}; give an offset or use UTC",
    }
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


def ragged_row(expected: int, actual: int) -> Reason:
    return Reason(
        f"ragged row: {actual} cells where the header has {expected}",
        "fix the row's delimiters or quotes",
    )


class RowErrors:
    """First reject reason of each row in one batch of `length` rows."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.mask: pa.Array | None = None
        self._reason: pa.Array | None = None
        self._value: pa.Array | None = None
        self.reasons: dict[str, Reason] = {}

    def add(self, bad: pa.Array | None, reason: Reason, cells: pa.Array | None = None) -> None:
        """Mark the rows where `bad` is true (nulls in `bad` count as false)."""
        if not any_true(bad):
            return
        bad = pc.fill_null(bad, False)
        self.reasons[reason.text] = reason
        value = cells.cast(pa.binary()) if cells is not None else pa.nulls(self.length, pa.binary())
        if self.mask is None:
            self.mask = bad
            self._reason = pc.if_else(bad, pa.scalar(reason.text), pa.scalar(None, pa.string()))
            self._value = pc.if_else(bad, value, pa.scalar(None, pa.binary()))
            return
        new = pc.and_(bad, pc.invert(self.mask))
        self._reason = pc.if_else(new, pa.scalar(reason.text), self._reason)
        self._value = pc.if_else(new, value, self._value)
        self.mask = pc.or_(self.mask, bad)

    @property
    def any(self) -> bool:
        return self.mask is not None

    def rows(self) -> np.ndarray:
        """Indices of rejected rows, in order."""
        if self.mask is None:
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(self.mask.to_numpy(zero_copy_only=False))

    def reason_at(self, indices: np.ndarray) -> list[str]:
        assert self._reason is not None
        return self._reason.take(pa.array(indices)).to_pylist()

    def value_at(self, indices: np.ndarray) -> list[bytes | None]:
        assert self._value is not None
        return self._value.take(pa.array(indices)).to_pylist()

    def counts(self) -> dict[str, int]:
        """Rejected rows per reason (vectorized)."""
        if self._reason is None:
            return {}
        counted = pc.value_counts(pc.drop_null(self._reason))
        return {item["values"]: item["counts"] for item in counted.to_pylist()}
