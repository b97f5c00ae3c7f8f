"""numpy views of a binary/string Arrow array's buffers, for the byte-level scans (no copies)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def offsets_of(cells: pa.Array) -> np.ndarray:
    """The n + 1 int32 offsets where each cell starts and ends in the data buffer (slices included)."""
    buffer = cells.buffers()[1]
    if buffer is None:
        return np.zeros(len(cells) + 1, dtype=np.int32)
    return np.frombuffer(buffer, dtype=np.int32, count=len(cells) + 1, offset=cells.offset * 4)


def bytes_of(cells: pa.Array) -> np.ndarray:
    """The whole data buffer as uint8 (index it with `offsets_of`); empty when there is none."""
    data = cells.buffers()[2]
    return np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(0, dtype=np.uint8)


def cell_bytes(cells: pa.Array) -> np.ndarray:
    """Every cell's bytes, one after the other: the data buffer from the first cell's start to
    the last cell's end (a slice of an array starts and ends inside its buffer)."""
    offsets = offsets_of(cells)
    return bytes_of(cells)[offsets[0]:offsets[-1]]


def byte_table(chars: bytes, *, value: bool = True) -> np.ndarray:
    """A 256-entry lookup table, `value` at the bytes of `chars`: `table[cell_bytes(...)]`
    classifies every byte of a column in one numpy step."""
    table = np.full(256, not value, dtype=bool)
    table[np.frombuffer(chars, dtype=np.uint8)] = value
    return table


def holds_any(cells: pa.Array, chars: bytes) -> bool:
    """Whether any cell holds one of the bytes `chars`: a memchr per byte over one copy of the
    cells' part of the data buffer, ~2.5x faster than comparing every byte in numpy."""
    data = cells.buffers()[2]
    if data is None or not len(cells):
        return False
    offsets = offsets_of(cells)
    start, end = int(offsets[0]), int(offsets[-1])
    text = data.slice(start, end - start).to_pybytes()
    return any(char in text for char in chars)


def cells_at(offsets: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The cell each byte position `at` (an index into the data buffer) lies in: the first cell
    whose end is past it (empty and null cells end where they start, so they hold no byte)."""
    return np.searchsorted(offsets[1:], at, side="right")


def any_true(mask: pa.Array | None) -> bool:
    """Whether a boolean mask (or None, "no row") marks any row."""
    return mask is not None and bool(pc.any(mask).as_py())
