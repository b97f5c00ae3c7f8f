"""Numeric field text: cells already written as Arrow writes their value are used as they are.

A number field is written in line protocol as Arrow formats the parsed value. Most cells of
a real file are written that way already (`42.7915`, `-73.5`, `170635808`), and parsing
them only to format the value again gives back the same bytes at ~20 ns (parse) + ~65 ns
(format, a double) a cell. A scan of the data buffer (numpy, no Python per row) picks out
the cells whose bytes are certainly Arrow's text for their value, which also makes them
certainly valid numbers; those pass through. Only the other cells (`NaN`, `1e5`, `52.10`,
`+3`, bad ones) are parsed and formatted: a few per batch in the usual file.

The test for floats is exact, not a guess: a decimal of at most 15 significant digits
survives the trip to a double and back (DBL_DIG), so the shortest text that reads back as
that double has those same digits (two different decimals of <= 15 digits never land on
one double), and Arrow writes such a double in plain notation, without trailing zeros or
a trailing point, when 1e-6 <= |x| < 1e10 (checked against pyarrow 26; the tests compare
every passed cell with Arrow's own formatting). Integers: digits with an optional '-', no
leading zero, no "-0", and few enough digits to fit (18 signed, 19 unsigned).

An integer cell in a float column keeps its value only while it has at most 15 digits: a double
holds every integer up to 2**53 (16 digits) and not all beyond. A cell of 16 bytes or more is
never passed through as it is (it has more digits than the plain test allows), so the check of
such integers (`float_changes`) runs among the other cells only: nothing on a clean column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import cells
from ..arrow_buffers import bytes_of, cells_at, offsets_of
from ..mapping import FieldType

_MINUS, _ZERO = ord("-"), ord("0")

# Digits before the point that still give plain notation (floats: |x| < 1e10) or fit the type.
_MAX_INTEGER_DIGITS = {FieldType.FLOAT: 10, FieldType.INTEGER: 18, FieldType.UNSIGNED: 19}
_MAX_FLOAT_DIGITS = 15  # DBL_DIG
_SMALLEST_PLAIN_FRACTION = 6  # 1e-6 is written 0.000001, 1e-7 as 1e-7
_CONVERTERS = {FieldType.FLOAT: cells.to_float, FieldType.INTEGER: cells.to_integer,
               FieldType.UNSIGNED: cells.to_unsigned}


@dataclass(frozen=True)
class NumberText:
    """A number column as field text."""

    text: pa.Array  # string: null where the cell is empty, bad, or NaN/±Inf
    bad: pa.Array | None  # cells that are not numbers of the kind (None: none)
    non_finite: pa.Array | None  # floats: NaN/±Inf cells, which line protocol cannot carry (None: none)
    changed: pa.Array | None = None  # floats, when asked: integer cells a double does not hold exactly


def number_text(raw: pa.Array, kind: FieldType, *, exact_integers: bool = False) -> NumberText:
    """`raw` (binary cells) as the text of `kind` numbers, as Arrow would format their values.
    With `exact_integers` (floats), also the integer cells whose value a double would change."""
    plain = written_as_arrow_writes(raw, kind)
    present = pc.is_valid(raw).to_numpy(zero_copy_only=False) if raw.null_count else np.ones(len(raw), dtype=bool)
    others = present & ~plain
    if not others.any():
        return NumberText(_as_string(raw), None, None)
    changed = float_changes(raw, others) if exact_integers and kind is FieldType.FLOAT else None
    if 2 * int(others.sum()) > len(raw):  # mostly other shapes: one cast of the whole column is cheaper
        return replace(_parsed_and_formatted(raw, kind), changed=changed)
    rows = np.flatnonzero(others)
    taken = raw.take(pa.array(rows))
    parsed = _parsed_and_formatted_few(taken, kind) if len(rows) <= FEW_CELLS else _parsed_and_formatted(taken, kind)
    if parsed.text.null_count == len(rows):  # bad cells, NaN: no text to put in, only cells to leave out
        text = _as_string(raw, valid=present & plain)
    else:
        text = _as_string(pc.replace_with_mask(raw, pa.array(others), parsed.text.cast(pa.binary())))
    return NumberText(text, _spread(parsed.bad, rows, len(raw)), _spread(parsed.non_finite, rows, len(raw)), changed)


# Integers of up to 15 digits (and a sign) fit a double exactly; 16 bytes may be more than 2**53.
_EXACT_IN_FLOAT_BYTES = 16


def float_changes(raw: pa.Array, among: np.ndarray | None = None) -> pa.Array | None:
    """Cells (of those marked in `among`) that are integers a double does not hold exactly:
    `9007199254740993` reads back as 9007199254740992. Integers beyond int64 count as changed."""
    lengths = np.diff(offsets_of(raw))
    long = lengths >= _EXACT_IN_FLOAT_BYTES
    if among is not None:
        long &= among
    rows = np.flatnonzero(long)
    if not rows.size:
        return None
    taken = raw.take(pa.array(rows))
    integer = pc.fill_null(pc.match_substring_regex(taken, cells.INTEGER_SHAPE), False).to_numpy(zero_copy_only=False)
    if not integer.any():
        return None
    converted = cells.to_integer(taken)
    values = pc.fill_null(converted.values, 0).to_numpy(zero_copy_only=False)
    with np.errstate(invalid="ignore"):  # values near 2**63 round to 2**63, which int64 cannot hold: changed
        back = values.astype(np.float64).astype(np.int64)
    beyond = pc.fill_null(converted.bad, False).to_numpy(zero_copy_only=False) if converted.bad is not None \
        else np.zeros(len(rows), dtype=bool)
    changed = integer & (beyond | (back != values))
    if not changed.any():
        return None
    full = np.zeros(len(raw), dtype=bool)
    full[rows[changed]] = True
    return pa.array(full)


def _parsed_and_formatted(raw: pa.Array, kind: FieldType) -> NumberText:
    converted = _CONVERTERS[kind](raw)
    values, non_finite = converted.values, None
    if kind is FieldType.FLOAT:
        # NaN and ±Inf do not exist in line protocol: the caller leaves the field out and counts it.
        dropped = pc.fill_null(pc.invert(pc.is_finite(values)), False)
        if cells.any_true(dropped):
            non_finite = dropped
            values = pc.if_else(dropped, pa.scalar(None, pa.float64()), values)
    return NumberText(values.cast(pa.string()), converted.bad, non_finite)


# Up to this many other cells, Python reads them one by one (~1 µs a cell) faster than Arrow's
# cast of them, which costs ~0.4 ms a batch when one of them is bad (the refused cast, then
# finding the bad ones). With 1 % bad rows most batches have a few dozen.
FEW_CELLS = 64
_SHAPES = {FieldType.FLOAT: re.compile(cells.FLOAT_SHAPE.encode()),
           FieldType.INTEGER: re.compile(cells.INTEGER_SHAPE.encode()),
           FieldType.UNSIGNED: re.compile(cells.UNSIGNED_SHAPE.encode())}
_ARROW_TYPES = {FieldType.FLOAT: pa.float64(), FieldType.INTEGER: pa.int64(), FieldType.UNSIGNED: pa.uint64()}
_INTEGER_RANGES = {FieldType.INTEGER: range(-(1 << 63), 1 << 63), FieldType.UNSIGNED: range(1 << 64)}


def _parsed_and_formatted_few(raw: pa.Array, kind: FieldType) -> NumberText:
    """The same as `_parsed_and_formatted` for a few non-empty cells, read one by one: a cell of
    the shape Arrow's cast accepts has the value Python reads (both round a decimal correctly,
    and both read inf/infinity/nan in any case), integers must fit their type.
    tests/test_number_text.py holds the two equal."""
    shape, values, bad, non_finite = _SHAPES[kind], [], [], []
    for cell in raw.to_pylist():
        value = None
        if shape.fullmatch(cell):
            value = float(cell) if kind is FieldType.FLOAT else int(cell)
            if kind is not FieldType.FLOAT and value not in _INTEGER_RANGES[kind]:
                value = None
        bad.append(value is None)
        non_finite.append(value is not None and kind is FieldType.FLOAT and not math.isfinite(value))
        values.append(None if non_finite[-1] else value)
    return NumberText(pa.array(values, _ARROW_TYPES[kind]).cast(pa.string()),
                      pa.array(bad) if any(bad) else None, pa.array(non_finite) if any(non_finite) else None)


def _spread(mask: pa.Array | None, rows: np.ndarray, length: int) -> pa.Array | None:
    """A mask over `rows` only -> the same mask over all `length` rows."""
    if mask is None:
        return None
    full = np.zeros(length, dtype=bool)
    full[rows] = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
    return pa.array(full)


def _as_string(cells_: pa.Array, valid: np.ndarray | None = None) -> pa.Array:
    """The same buffers as a string array, or with the cells outside `valid` made null (a new
    validity bitmap; the bytes stay where they are). Every cell left valid is ASCII: digits,
    '-' and '.', or Arrow's own formatting."""
    buffers = cells_.buffers()
    null_count = cells_.null_count
    if valid is not None:
        bits = np.concatenate((np.zeros(cells_.offset, dtype=bool), valid))  # the bitmap counts from the buffers' start
        buffers = [pa.py_buffer(np.packbits(bits, bitorder="little")), *buffers[1:]]
        null_count = len(valid) - int(np.count_nonzero(valid))
    return pa.Array.from_buffers(pa.string(), len(cells_), buffers, null_count, cells_.offset)


def written_as_arrow_writes(raw: pa.Array, kind: FieldType) -> np.ndarray:
    """True for each cell whose bytes are exactly Arrow's text for its value as a `kind`
    number (so it is a valid one); False for empty cells and every other cell.

    ~0.2 ms for 15,000 coordinates (Arrow: 0.26 ms to parse them, 0.94 ms to format them):
    a few passes over the data buffer, then a few steps per cell; a search per byte only
    for bytes out of place."""
    offsets = offsets_of(raw).astype(np.int64)  # numpy gathers are twice as fast with int64 indices
    starts, ends = offsets[:-1], offsets[1:]
    ok = ends > starts
    data = bytes_of(raw)
    if not ok.any():
        return ok

    def byte_at(positions: np.ndarray) -> np.ndarray:  # positions past the end (empty cells) are clipped
        return np.take(data, positions, mode="clip")

    code = data[offsets[0]:offsets[-1]] - np.uint8(ord("-"))  # '-' 0, '.' 1, '/' 2, digits 3..12, others above
    odd = np.zeros(0, dtype=np.int64)  # cells with a byte no such number has (`x`, `nan`, `1e5`): few, if any
    if np.count_nonzero(code > 12) or np.count_nonzero(code == 2):
        odd = np.unique(cells_at(offsets, np.flatnonzero((code > 12) | (code == 2)) + offsets[0]))
        ok[odd] = False
    signed = ok & (byte_at(starts) == _MINUS)
    # Every '-' must be the first byte of its cell: count them (those in odd cells are out already).
    if np.count_nonzero(code == 0) - np.count_nonzero(_codes_in(code, offsets, odd) == 0) != np.count_nonzero(signed):
        minus = np.flatnonzero(code == 0) + offsets[0]
        cells_ = cells_at(offsets, minus)
        ok[cells_[minus != starts[cells_]]] = False
    if kind is FieldType.FLOAT:
        point = _point_or_end(_outside(np.flatnonzero(code == 1) + offsets[0], offsets, odd), offsets, ok)
    elif np.count_nonzero(code == 1):
        ok[cells_at(offsets, np.flatnonzero(code == 1) + offsets[0])] = False
    digits_start = starts + signed
    leading_zero = byte_at(digits_start) == _ZERO
    if kind is not FieldType.FLOAT:
        digits = ends - digits_start
        ok &= (digits >= 1) & (digits <= _MAX_INTEGER_DIGITS[kind]) & (~leading_zero | (digits == 1))
        ok &= ~signed if kind is FieldType.UNSIGNED else ~(signed & leading_zero)  # "-0" is written "0"
        return ok

    integer_digits = point - digits_start
    fraction_digits = ends - point - 1  # -1: no point
    ok &= (integer_digits >= 1) & (integer_digits <= _MAX_INTEGER_DIGITS[kind])
    ok &= ~leading_zero | (integer_digits == 1)  # "0" and "0.5", never "007"
    # "5." and "5.10" are written "5" and "5.1": after a point, at least one digit and no trailing zero.
    ok &= (fraction_digits < 0) | ((fraction_digits >= 1) & (byte_at(ends - 1) != _ZERO))
    ok &= integer_digits + fraction_digits <= _MAX_FLOAT_DIGITS
    # Below 1: "0.000001" is plain, "0.0000001" is written 1e-7: a nonzero digit must come
    # within the first six after the point (when the fraction is longer, look at those six).
    tiny = np.flatnonzero(ok & leading_zero & (fraction_digits > _SMALLEST_PLAIN_FRACTION))
    if tiny.size:
        window = data[point[tiny, None] + np.arange(1, _SMALLEST_PLAIN_FRACTION + 1)]
        ok[tiny] = (window != _ZERO).any(axis=1)
    return ok


def _codes_in(code: np.ndarray, offsets: np.ndarray, cells_: np.ndarray) -> np.ndarray:
    """The bytes (`code`, counted from the first cell's start) of a few cells, one after the other."""
    if not cells_.size:
        return code[:0]
    lengths = offsets[cells_ + 1] - offsets[cells_]
    into = np.repeat(offsets[cells_] - offsets[0] - np.cumsum(lengths) + lengths, lengths)
    return code[into + np.arange(int(lengths.sum()))]


def _outside(at: np.ndarray, offsets: np.ndarray, cells_: np.ndarray) -> np.ndarray:
    """The byte positions `at` (sorted, in the data buffer) that lie in none of the cells `cells_`
    (sorted, distinct): a few searches per such cell, none per position."""
    if not cells_.size:
        return at
    first = np.searchsorted(at, offsets[cells_])
    past = np.searchsorted(at, offsets[cells_ + 1])
    depth = np.cumsum(np.bincount(first, minlength=len(at) + 1) - np.bincount(past, minlength=len(at) + 1))
    return at[depth[:-1] == 0]


def _point_or_end(at: np.ndarray, offsets: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Where each cell's decimal point is (`at`: the points' positions in the data buffer), or
    the cell's end when it has none; cells with two points are marked not ok. In the usual
    column every non-empty cell still ok has one point: the k-th point then belongs to the
    k-th such cell (one comparison per cell confirms it), which saves a search per point."""
    starts, ends = offsets[:-1], offsets[1:]
    point = ends.copy()
    filled = slice(None) if len(at) == len(ok) and ok.all() else np.flatnonzero(ok)
    if len(at) == len(starts[filled]) and ((starts[filled] <= at) & (at < ends[filled])).all():
        point[filled] = at
        return point
    cells_ = cells_at(offsets, at)
    ok[cells_[1:][np.diff(cells_) == 0]] = False  # two points in one cell
    point[cells_] = at
    return point
