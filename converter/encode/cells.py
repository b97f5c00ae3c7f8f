"""Cell text -> typed Arrow arrays, one column at a time, with the rows that failed.

Arrow's casts are all-or-nothing: one bad cell fails the whole column. The fast path
casts the whole column once. Only when that fails do we look for the bad cells: a regex
that describes what the cast accepts marks most of them in one vectorized pass, and a
bisection finds any the regex let through (it costs O(bad * log rows) casts, and nothing
when the column is clean). Bad cells become nulls in the result and `True` in `bad`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_buffers import any_true, byte_table, cell_bytes, cells_at, offsets_of

# What Arrow's string->number casts accept (checked against pyarrow 26): a plain decimal
# with optional sign/exponent, inf/infinity, nan; integers without a '+'.
FLOAT_SHAPE = r"^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))$"
INTEGER_SHAPE = r"^-?[0-9]+$"
UNSIGNED_SHAPE = r"^[0-9]+$"

def _spellings(words: list[str]) -> list[bytes]:
    # is_in on raw bytes, so list the usual spellings instead of lowercasing every cell.
    return sorted({v.encode() for w in words for v in (w, w.upper(), w.capitalize())})


TRUE_WORDS = _spellings(["true", "t", "yes", "y", "1"])
FALSE_WORDS = _spellings(["false", "f", "no", "n", "0"])


@dataclass(frozen=True)
class Converted:
    """A typed column and the mask of cells that could not be converted (None: all fine)."""

    values: pa.Array
    bad: pa.Array | None


def _null_like(target: pa.DataType, length: int) -> pa.Array:
    return pa.nulls(length, type=target)


class TooManyRefused(Exception):
    """More cells were refused than the caller allowed (see `cast_per_element`)."""


def cast_per_element(cells: pa.Array, convert: Callable[[pa.Array], pa.Array], target: pa.DataType,
                     *, shape: str | None = None, suspects: np.ndarray | None = None,
                     max_bad: int | None = None) -> Converted:
    """Apply an all-or-nothing `convert` to `cells` and find the cells it refuses.

    Cells that do not match `shape` (a regex), or that `suspects` (the caller's own cheaper test,
    True where a cell may be refused) points at, are set aside as bad without a cast.
    `suspects` need not be exact: a cell it clears that `convert` still refuses is found by the
    bisection, and the cells it sets aside are the caller's to look at again (timestamps.py). A
    caller with `suspects` has seen `convert` refuse the whole column: it is not tried again.
    With `max_bad`, the search stops with TooManyRefused as soon as more cells than that are
    bad: bisection pays about log2(rows) casts per refused cell, which is cheap for a few and
    ruinous for a column that is mostly of another shape (the caller has a better plan then)."""
    if suspects is None:
        try:
            return Converted(convert(cells), None)
        except pa.ArrowInvalid:
            pass
    bad = np.zeros(len(cells), dtype=bool) if suspects is None else suspects.copy()
    if shape is not None:
        quick = _misfits_among_odd_cells(cells, shape)
        try:  # the usual bad cell has a letter or a space: nulled, the rest casts at once
            return Converted(convert(pc.if_else(pa.array(quick), pa.scalar(None, cells.type), cells)), pa.array(quick))
        except pa.ArrowInvalid:
            bad |= pc.invert(pc.fill_null(pc.match_substring_regex(cells, shape), True)).to_numpy(zero_copy_only=False)
    if bad.any():
        cells = pc.if_else(pa.array(bad), pa.scalar(None, cells.type), cells)
    chunks: list[pa.Array] = []
    budget = [len(cells) + 1 if max_bad is None else max_bad - int(bad.sum())]
    if budget[0] < 0:
        raise TooManyRefused()
    _bisect(cells, 0, len(cells), convert, target, chunks, bad, budget)
    return Converted(pa.concat_arrays(chunks) if chunks else _null_like(target, 0), pa.array(bad))


# Bytes no number is written with (FLOAT_SHAPE's and INTEGER_SHAPE's words aside).
_ODD_BYTES = byte_table(b"0123456789.eE+-", value=False)


def _misfits_among_odd_cells(cells: pa.Array, shape: str) -> np.ndarray:
    """Cells with a byte no number has (numpy over the data buffer) that do not match `shape`
    either (the regex runs on those few cells only: `nan` and `inf` are odd but fit)."""
    offsets = offsets_of(cells)
    odd = np.zeros(len(cells), dtype=bool)
    odd_at = np.flatnonzero(_ODD_BYTES[cell_bytes(cells)])
    if not odd_at.size:
        return odd
    rows = np.unique(cells_at(offsets, odd_at + offsets[0]))
    fits = pc.fill_null(pc.match_substring_regex(cells.take(pa.array(rows)), shape), True)
    odd[rows] = ~fits.to_numpy(zero_copy_only=False)
    return odd


def _bisect(cells: pa.Array, lo: int, hi: int, convert: Callable[[pa.Array], pa.Array],
            target: pa.DataType, chunks: list[pa.Array], bad: np.ndarray, budget: list[int]) -> None:
    if lo == hi:
        return
    try:
        chunks.append(convert(cells.slice(lo, hi - lo)))
        return
    except pa.ArrowInvalid:
        if hi - lo == 1:
            budget[0] -= 1
            if budget[0] < 0:
                raise TooManyRefused() from None
            chunks.append(_null_like(target, 1))
            bad[lo] = True
            return
    mid = (lo + hi) // 2
    _bisect(cells, lo, mid, convert, target, chunks, bad, budget)
    _bisect(cells, mid, hi, convert, target, chunks, bad, budget)


def to_text(cells: pa.Array) -> Converted:
    """Binary cells -> UTF-8 strings; undecodable cells are bad."""
    return cast_per_element(cells, lambda a: a.cast(pa.string()), pa.string())


def to_float(cells: pa.Array) -> Converted:
    return cast_per_element(cells, lambda a: a.cast(pa.float64()), pa.float64(), shape=FLOAT_SHAPE)


def to_integer(cells: pa.Array) -> Converted:
    return cast_per_element(cells, lambda a: a.cast(pa.int64()), pa.int64(), shape=INTEGER_SHAPE)


def to_unsigned(cells: pa.Array) -> Converted:
    return cast_per_element(cells, lambda a: a.cast(pa.uint64()), pa.uint64(), shape=UNSIGNED_SHAPE)


def same_cell_everywhere(cells: pa.Array) -> bytes | None:
    """The cell when every cell of the column holds the same bytes (none empty), else None:
    a flag like Movebank's `visible` is `true` in whole files. numpy over the data buffer."""
    if not len(cells) or cells.null_count:
        return None
    offsets = offsets_of(cells)
    width = int(offsets[1] - offsets[0])
    if not width or not (np.diff(offsets) == width).all():
        return None
    rows = cell_bytes(cells).reshape(len(cells), width)
    return rows[0].tobytes() if (rows == rows[0]).all() else None


def to_boolean(cells: pa.Array) -> Converted:
    """true/t/yes/y/1 and false/f/no/n/0 (lower, UPPER or Capitalized); anything else is bad."""
    is_true = pc.is_in(cells, value_set=pa.array(TRUE_WORDS, cells.type))
    is_false = pc.is_in(cells, value_set=pa.array(FALSE_WORDS, cells.type))
    present = pc.is_valid(cells)
    bad = pc.and_(present, pc.invert(pc.or_(is_true, is_false)))
    values = pc.if_else(pc.and_(present, pc.invert(bad)), is_true, pa.scalar(None, pa.bool_()))
    return Converted(values, bad if any_true(bad) else None)


def looks_like(cells: pa.Array, kind: str) -> bool:
    """For type inference: do all non-empty cells convert to `kind` ('float' or 'boolean')?"""
    present = pc.drop_null(cells)
    if len(present) == 0:
        return False
    converted = to_float(present) if kind == "float" else to_boolean(present)
    return converted.bad is None
