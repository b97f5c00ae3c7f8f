"""The rejects file: every rejected row with its file, physical line, reason and original cells.

Columns: `file,line,reason,value,` then the input's own header. Cells are written back
byte for byte (undecodable bytes included), so a fixed row can be pasted back into the
source. Inputs with another header get a file of their own (`rejects.2.csv`, ...). The
file is created only when a row is rejected.

The bytes are exactly what Python's `csv.writer(lineterminator="\\n")` writes on a UTF-8
stream with errors="surrogateescape" (QUOTE_MINIMAL: a cell holding the delimiter, the
quote or a line break is quoted, its quotes doubled). A `writerow` per row cost some 20 µs
per rejected row on the main thread, so the rows the encoder rejected are formatted with
Arrow compute, rows and columns in a fixed number of calls: about a µs per row plus a few
hundred µs per call, which is why rows are held back until a few thousand have come. Rows
Arrow could not split still go through Python's csv module one by one, as they must be
re-split the way it splits them.
"""

from __future__ import annotations

import csv
import errno
import io
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import BinaryIO, Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..arrow_buffers import byte_table, bytes_of, cell_bytes, cells_at, holds_any, offsets_of
from ..errors import OutputError, os_error_text

LEAD_COLUMNS = ["file", "line", "reason", "value"]


def _csv_writer(into: list[str]):
    """A csv.writer (QUOTE_MINIMAL, "\\n") that appends each row it writes to `into`.

    csv.writer calls `write` once per row, so each row comes out as a string of its own
    (rows Arrow could not split are merged in among the others one by one).
    """
    return csv.writer(SimpleNamespace(write=into.append), lineterminator="\n")


def _file_bytes(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def csv_line(fields: Sequence[str]) -> bytes:
    """One row as csv.writer writes it, in the bytes the file holds."""
    written: list[str] = []
    _csv_writer(written).writerow(fields)
    return _file_bytes(written[0])


def _quoting_bytes() -> bytes:
    """The characters that make csv.writer quote a field, asked of the running csv module.

    ',', '"' and '\\n'; a bare '\\r' only from CPython 3.11.9 / 3.12.3 on (gh-67044), so the
    answer depends on the interpreter. Only ASCII can count (the delimiter, the quote, line
    breaks), and an ASCII character is the same single byte in the cell as in its
    surrogateescape-decoded text, so the test can run on the raw bytes.
    """
    return bytes(c for c in range(128) if csv_line(["", chr(c)]) != b"," + bytes([c]) + b"\n")


_QUOTING = _quoting_bytes()
_QUOTING_TABLE = byte_table(_QUOTING)


def _cells_to_quote(cells: pa.Array) -> np.ndarray:
    """Indices of the cells csv.writer would quote: those holding a byte of `_QUOTING`."""
    # Most rejected rows hold no such byte: a memchr per byte over the whole array settles them.
    if not holds_any(cells, _QUOTING):
        return np.zeros(0, dtype=np.int64)
    offsets = offsets_of(cells)
    return np.unique(cells_at(offsets, np.flatnonzero(_QUOTING_TABLE[cell_bytes(cells)]) + offsets[0]))


def csv_cells(cells: pa.Array) -> pa.Array:
    """Binary cells as csv.writer writes them: quoted (quotes doubled) when needed; nulls stay null.

    (csv.writer also quotes an empty field when it is a row's sole field; rejects rows have
    at least the four lead columns, so empty stays empty here.)
    """
    to_quote = _cells_to_quote(cells)
    if not to_quote.size:
        return cells
    picked = cells.take(pa.array(to_quote))
    quoted = pc.binary_join_element_wise(b'"', pc.replace_substring(picked, b'"', b'""'), b'"', b"")
    mask = np.zeros(len(cells), dtype=bool)
    mask[to_quote] = True
    return pc.replace_with_mask(cells, pa.array(mask), quoted)


def csv_rows(first: bytes, columns: Sequence[pa.Array]) -> pa.Array:
    """CSV lines (each ending in "\\n"): the field `first`, already as csv.writer writes it, then
    the cells of equal-length binary `columns` (null as empty), one line per row.

    The columns go through `csv_cells` as one array, so that the number of compute calls
    does not grow with the number of columns.
    """
    n = len(columns[0])
    cells = csv_cells(pa.concat_arrays(columns))
    fields = [cells.slice(i * n, n) for i in range(len(columns))]
    joined = pc.binary_join_element_wise(first, *fields, b",", null_handling="replace", null_replacement="")
    return pc.binary_join_element_wise(joined, b"\n", b"")


def _binary(values: pa.Array | Sequence, source_type: pa.DataType) -> pa.Array:
    """`values` as a binary array: text as its UTF-8 bytes, bytes as they are."""
    array = values if isinstance(values, pa.Array) else pa.array(values, source_type)
    return array if array.type == pa.binary() else array.cast(pa.binary())


def _unsplit_lines(file: str, rows: Sequence[tuple[int, str, str]], delimiter: str) -> list[bytes]:
    """Rows Arrow could not split, as (line, reason, raw text): their cells as Python's csv module splits them."""
    written: list[str] = []
    writer = _csv_writer(written)
    for line, reason, text in rows:
        cells = next(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), [])
        writer.writerow([file, line, reason, "", *cells])
    return [_file_bytes(line) for line in written]


class _Lines:
    """A binary array of whole lines, handed out by ranges of rows without copying."""

    def __init__(self, lines: pa.Array) -> None:
        self._offsets = offsets_of(lines)
        self._data = memoryview(bytes_of(lines))

    def between(self, start: int, stop: int) -> memoryview:
        return self._data[self._offsets[start]: self._offsets[stop]]


_NO_LINES = pa.array([], pa.binary())


PENDING_ROWS = 4096


@dataclass
class _Pending:
    """Rejected rows of one (header, file, delimiter) not written yet, block by block."""

    key: tuple[tuple[str, ...], str, str]
    lines: list[np.ndarray] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    values: list[bytes | None] = field(default_factory=list)
    cells: list[list[pa.Array]] = field(default_factory=list)
    unsplit: list[tuple[int, str, str]] = field(default_factory=list)
    rows: int = 0


class RejectsWriter:
    """`claim(path)`, when given, is asked before a numbered file (rejects.2.csv) is made: the
    caller's check that it is no input or other output (write_paths.WriteGuard.claim).

    A write that fails raises OutputError; the rows it held are counted in `rows_unsaved`.
    Files are written unbuffered, so what a write took is on disk when the next row comes."""

    def __init__(self, path: str | Path, *, claim: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self._claim = claim
        self._files: dict[tuple[str, ...], BinaryIO] = {}
        self.paths: list[str] = []
        self._pending: _Pending | None = None
        self.rows_unsaved = 0

    def _file_for(self, header: tuple[str, ...]) -> BinaryIO:
        if header not in self._files:
            n = len(self._files) + 1
            path = self.path if n == 1 else self.path.with_name(f"{self.path.stem}.{n}{self.path.suffix}")
            if n > 1 and self._claim is not None:
                self._claim(str(path))
            try:
                out = open(path, "wb", buffering=0)
            except OSError as exc:
                raise OutputError(f"rejects file {path}: cannot create it: {os_error_text(exc)}.") from None
            self._files[header] = out
            self.paths.append(str(path))
            self._write(out, csv_line(LEAD_COLUMNS + list(header)))
        return self._files[header]

    @staticmethod
    def _write(out: BinaryIO, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = out.write(view)
                if not written:
                    raise OSError(errno.EIO, "the file took no bytes")
                view = view[written:]
        except OSError as exc:
            raise OutputError(f"rejects file {out.name}: cannot write: {os_error_text(exc)}.", errno=exc.errno) from None

    def write_rows(self, header: Sequence[str], file: str, lines: np.ndarray, reasons: pa.Array | Sequence[str],
                   values: pa.Array | Sequence[bytes | None], cells: Sequence[pa.Array], *,
                   unsplit: Sequence[tuple[int, str, str]] = (), delimiter: str = ",") -> None:
        """One block's rejected rows, in line order (blocks in file order).

        The encoder's rejects, one entry per row, lines ascending: source line, reason,
        offending value (or None), and the row's cells as binary columns (null for empty).
        `unsplit`: rows Arrow could not split, as (line, reason, raw text), merged in by line.
        Rows are held back until PENDING_ROWS have come (or another file, or close()): the
        formatting costs a few hundred µs a call however few rows it gets, and with 1 % bad
        rows every block has some.
        """
        key = (tuple(header), file, delimiter)
        if self._pending is not None and self._pending.key != key:
            self._flush()
        if self._pending is None:
            self._pending = _Pending(key)
        pending = self._pending
        pending.lines.append(np.asarray(lines, dtype=np.int64))
        pending.reasons += list(reasons.to_pylist() if isinstance(reasons, pa.Array) else reasons)
        pending.values += list(values.to_pylist() if isinstance(values, pa.Array) else values)
        pending.cells.append([_binary(column, pa.binary()) for column in cells])
        pending.unsplit += unsplit
        pending.rows += len(lines) + len(unsplit)
        if pending.rows >= PENDING_ROWS:
            self._flush()

    def _flush(self) -> None:
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            self._write_pending(pending)
        except OutputError:
            self.rows_unsaved += pending.rows
            raise

    def _write_pending(self, pending: _Pending) -> None:
        header, file, delimiter = pending.key
        out = self._file_for(header)
        lines = np.concatenate(pending.lines)
        blocks = [columns for columns in pending.cells if columns and len(columns[0])]
        cells = [pa.concat_arrays([columns[i] for columns in blocks]) for i in range(len(blocks[0]))] if blocks else []
        checked = _Lines(self._checked_lines(file, lines, pending.reasons, pending.values, cells)
                         if len(lines) else _NO_LINES)
        unsplit = sorted(pending.unsplit, key=lambda row: row[0])
        # Each unsplit row goes after the checked rows of its line too (`right`), as the stable
        # sort by line of the per-row writer left them.
        stops = np.searchsorted(lines, [row[0] for row in unsplit], side="right").tolist()
        pieces: list[bytes | memoryview] = []
        done = 0
        for stop, raw_line in zip(stops, _unsplit_lines(file, unsplit, delimiter)):
            pieces += [checked.between(done, stop), raw_line]
            done = stop
        pieces.append(checked.between(done, len(lines)))
        self._write(out, b"".join(pieces))

    @staticmethod
    def _checked_lines(file: str, lines: np.ndarray, reasons, values, cells: Sequence[pa.Array]) -> pa.Array:
        """The encoder's rejected rows as CSV lines: file, line, reason, value, cells."""
        file_field = csv_line([file, ""])[: -len(b",\n")]  # the same in every row: quoted (or not) once
        lead = [pa.array(lines, pa.int64()).cast(pa.string()), _binary(reasons, pa.string()),
                _binary(values, pa.binary())]
        return csv_rows(file_field, [_binary(column, pa.binary()) for column in lead + list(cells)])

    def close(self) -> None:
        """Write the rows held back and close the files (again after a failure: nothing is lost twice)."""
        try:
            self._flush()
        finally:
            for out in self._files.values():
                out.close()  # unbuffered: nothing is left to write that could fail here
