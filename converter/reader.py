"""Streaming CSV input: files, globs, stdin; gzip/bz2/zstd; blocks of raw cells with line numbers.

Every column is read as raw bytes (Arrow `binary`), never inferred: Arrow infers types from
the first block only, which breaks on columns that are empty for thousands of rows, and
its UTF-8 check would fail a whole file for one bad byte. Types are applied later, column
by column, where a bad cell can reject just its row (see cells.py).

Arrow does not report physical line numbers, so we count them: a record spans one line
plus the line breaks inside its quoted cells. Rows Arrow cannot parse (wrong cell count)
reach us through `invalid_row_handler` with their record number, which tells where they
sat between the good rows. This needs Arrow's serial reader (`use_threads=False`): the
threaded one does not report record numbers.

`ReadSettings` describes files whose header is not simply their first line (Telegraf's CSV
parser options: lines to skip, metadata lines, comment lines, several header rows, given
column names, columns to skip, trimmed cells, values that mean "empty"). Arrow does what it
can (given column names, null values); lines are dropped by byte-level filters before Arrow
sees them, and cells are trimmed column by column after. Line numbers stay physical.
"""

from __future__ import annotations

import codecs
import csv
import glob
import io
import os
import re
import struct
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from .errors import InputError, MappingError
from .mapping import FieldType

COMPRESSION_BY_SUFFIX = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".zst": "zstd", ".zstd": "zstd"}
GZIP_MAGIC = b"\x1f\x8b"
DEFAULT_BLOCK_SIZE = 4 << 20
STDIN = "-"


def expand_inputs(inputs: Sequence[str]) -> list[str]:
    """Paths and globs (sorted within each pattern) in the order given; '-' is stdin."""
    expanded: list[str] = []
    for item in inputs:
        if item == STDIN or not glob.has_magic(item):
            expanded.append(item)
            continue
        matches = sorted(glob.glob(item, recursive=True))
        if not matches:
            raise InputError(f"{item}: the pattern matches no file.")
        expanded.extend(matches)
    return expanded


class _CountingReader(io.RawIOBase):
    """Counts the bytes taken from the underlying file: progress in on-disk bytes."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


class _PrefixedReader(io.RawIOBase):
    """Gives back bytes already taken from a stream (to read the header), then the rest."""

    def __init__(self, prefix: bytes, rest) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


# pyarrow decodes the text of a row it cannot split as strict UTF-8 before it calls
# `invalid_row_handler`; a ragged row holding a byte that is not UTF-8 makes that decoding
# fail and stops the whole file (pyarrow 26, _csv.pyx `_handle_invalid_row`). So, in chunks
# that are not valid UTF-8 (and only there), each such byte 0xXY travels through Arrow as the
# private-use character U+10FFXY, and is turned back into the same byte in the cells of each
# batch and in the text of each invalid row. Cells keep their exact bytes, so the encoder
# still rejects them as invalid UTF-8. (A genuine U+10FF80..U+10FFFF in such a chunk would
# come back as a raw byte: that plane is private use and unheard of in CSV exports.)
_STAND_IN_BASE = 0x10FF00
_TO_STAND_IN = {0xDC00 + b: _STAND_IN_BASE + b for b in range(0x80, 0x100)}
_FROM_STAND_IN_TEXT = {v: k for k, v in _TO_STAND_IN.items()}  # to surrogateescape's U+DCXY
_STAND_IN_LEAD = chr(_STAND_IN_BASE + 0x80).encode()[:2]  # every stand-in starts with these bytes
_STAND_IN_BYTES = re.compile(b"\xf4\x8f[\xbe\xbf][\x80-\xbf]")


class _Utf8Guard(io.RawIOBase):
    """Passes valid UTF-8 through untouched; swaps undecodable bytes for stand-ins (see above)."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._carry = b""  # an incomplete character at the end of the last chunk
        self._out = b""
        self.swapped = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out:
            chunk = self._raw.read(len(buffer))
            final = not chunk
            data = self._carry + (chunk or b"")
            if not data:
                return 0
            self._out, self._carry = self._guard(data, final)
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _guard(self, data: bytes, final: bool) -> tuple[bytes, bytes]:
        if data.isascii():
            return data, b""
        cut = len(data) if final else _without_incomplete_tail(data)
        head = data if cut == len(data) else data[:cut]
        if _is_utf8(head):
            return head, data[cut:]
        text, used = codecs.utf_8_decode(data, "surrogateescape", final)
        self.swapped = True
        return text.translate(_TO_STAND_IN).encode("utf-8"), data[used:]


def _is_utf8(data: bytes) -> bool:
    """Arrow's SIMD UTF-8 check, ten times faster than decoding the chunk in Python."""
    text = pa.Array.from_buffers(pa.string(), 1, [None, pa.py_buffer(struct.pack("<ii", 0, len(data))),
                                                  pa.py_buffer(data)])
    try:
        text.validate(full=True)
        return True
    except pa.ArrowInvalid:
        return False


def _without_incomplete_tail(data: bytes) -> int:
    """Length of `data` without a multi-byte character cut off at its end (it comes with the next chunk)."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:  # the lead byte of the last character
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) - back if needed > back else len(data)
    return len(data)


def _restore_cells(batch: pa.RecordBatch) -> pa.RecordBatch:
    """Give back the original bytes of cells that went through Arrow as stand-ins."""
    columns = list(batch.columns)
    changed = False
    for i, column in enumerate(columns):
        data = column.buffers()[2]
        if data is None or data.to_pybytes().find(_STAND_IN_LEAD) < 0:
            continue
        cells = column.to_pylist()
        columns[i] = pa.array([None if c is None else _STAND_IN_BYTES.sub(_original_byte, c) for c in cells],
                              pa.binary())
        changed = True
    return pa.RecordBatch.from_arrays(columns, schema=batch.schema) if changed else batch


def _original_byte(match: re.Match) -> bytes:
    return bytes([ord(match.group().decode("utf-8")) - _STAND_IN_BASE])


@dataclass(frozen=True)
class ReadSettings:
    """Where a file's header and data are, and how its cells are cleaned (Telegraf's CSV parser
    options, see telegraf_csv.py). The defaults read a plain CSV: the first record is the header."""

    skip_rows: int = 0  # physical lines dropped first
    metadata_rows: int = 0  # the next physical lines: `key<separator>value` tags for every row
    metadata_separators: tuple[str, ...] = ()  # tried longest first
    metadata_trim_set: str = ""  # characters stripped from both ends of metadata keys and values
    metadata_wins: bool = True  # a metadata key that names a column replaces that column's cells
    comment: str = ""  # lines starting with it are dropped (after the metadata lines)
    header_rows: int = 1  # records that name the columns, their cells joined per column
    column_names: tuple[str, ...] = ()  # given names: header rows are then read and ignored
    skip_columns: int = 0  # cells dropped from the left of every row (and of the header)
    trim_space: bool = False  # spaces and tabs before cells, and spaces after them, are dropped
    skip_values: tuple[str, ...] = ()  # cells equal to one of these are empty
    column_types: tuple[FieldType, ...] = ()  # one type per column, by position

    @property
    def plain(self) -> bool:
        return self == ReadSettings()


PLAIN = ReadSettings()
_BOM = b"\xef\xbb\xbf"
_SKIPPED_COLUMN = "\x00skipped column {}"  # Arrow's name for a skipped column: no header has NUL


class _CommentFilter(io.RawIOBase):
    """Drops the lines that start with `comment`, and remembers where, to keep line numbers physical.

    The search is for b"\\n" + comment in whole lines, so the work is per comment line, not per
    row. (A line inside a quoted cell that starts with the comment character is dropped too;
    Telegraf's Go reader would keep it. Comment lines inside quoted cells are unheard of.)
    """

    def __init__(self, raw, comment: str) -> None:
        self._raw = raw
        self._comment = comment.encode("utf-8")
        self._marker = b"\n" + self._comment
        self._carry = b""  # the start of a line that goes on in the next chunk
        self._out = b""
        self._kept_lines = 0
        self.dropped_before: list[int] = []  # for each dropped line: how many kept lines came before it

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out:
            chunk = self._raw.read(max(len(buffer), 1 << 16))
            if not chunk:
                data, self._carry = self._carry, b""
                if not data:
                    return 0
            else:
                data = self._carry + chunk
                cut = data.rfind(b"\n") + 1  # whole lines only: a comment marker never straddles chunks
                data, self._carry = data[:cut], data[cut:]
            self._out = self._drop_comments(data)
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _drop_comments(self, data: bytes) -> bytes:
        kept: list[bytes] = []
        pos = 0  # always the start of a line
        while pos < len(data):
            if data.startswith(self._comment, pos):
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end + 1
                self.dropped_before.append(self._kept_lines)
                continue
            found = data.find(self._marker, pos)
            stop = len(data) if found < 0 else found + 1
            self._kept_lines += data.count(b"\n", pos, stop)
            kept.append(data[pos:stop])
            pos = stop
        return b"".join(kept)


def _take_lines(name: str, stream, count: int) -> tuple[list[bytes], bytes]:
    """The first `count` physical lines of `stream` (a leading BOM dropped), and the bytes read past them."""
    data = stream.read(64 << 10) or b""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    while data.count(b"\n") < count:
        chunk = stream.read(64 << 10)
        if not chunk:
            break
        data += chunk
    lines: list[bytes] = []
    pos = 0
    while len(lines) < count and pos < len(data):
        end = data.find(b"\n", pos)
        end = len(data) if end < 0 else end + 1
        lines.append(data[pos:end])
        pos = end
    if len(lines) < count:
        raise InputError(f"{name}: the file has {len(lines)} lines, fewer than the {count} to skip and read "
                         f"as metadata before the header.")
    return lines, data[pos:]


def _metadata(name: str, lines: Sequence[bytes], first_line: int, settings: ReadSettings) -> dict[str, str]:
    """`key<separator>value` lines -> tags; lines without a separator, or with an empty key, give none."""
    separators = sorted(dict.fromkeys(settings.metadata_separators), key=len, reverse=True)
    found: dict[str, str] = {}
    for number, raw in enumerate(lines, start=first_line):
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError:
            raise InputError(f"{name}:{number}: the metadata line is not valid UTF-8; re-export the file as UTF-8.") from None
        for separator in separators:
            key, sep, value = line.partition(separator)
            key = key.strip(settings.metadata_trim_set)
            if sep and key:
                found[key] = value.strip(settings.metadata_trim_set)
                break
    return found


def _read_header_rows(name: str, stream, delimiter: str, settings: ReadSettings) -> tuple[bytes, list[str], int]:
    """Read `settings.header_rows` records (blank lines between them are skipped), join their cells per
    column, and return the bytes after them, the names and the lines they took."""
    prefix = b""
    size = 64 << 10
    while True:
        chunk = stream.read(size)
        prefix += chunk or b""
        at_eof = not chunk
        parsed = _parse_header_rows(prefix, delimiter, settings, at_eof)
        if parsed is not None or at_eof:
            break
        size *= 2
    if parsed is None:
        raise InputError(f"{name}: the file ends before its {settings.header_rows} header line(s); "
                         f"a CSV file with a header is expected.")
    names, used, lines = parsed
    _check_header_text(name, prefix, tuple(names))
    return prefix[used:], names, lines


def _parse_header_rows(prefix: bytes, delimiter: str, settings: ReadSettings,
                       at_eof: bool) -> tuple[list[str], int, int] | None:
    text = prefix.decode("utf-8", errors="surrogateescape")
    if not at_eof:
        text = text[: max(text.rfind("\n"), text.rfind("\r")) + 1]  # whole lines only
    taken = 0  # characters of `text` the csv module has read

    def lines():
        nonlocal taken
        for line in io.StringIO(text, newline=""):
            taken += len(line)
            yield line

    rows = csv.reader(lines(), delimiter=delimiter)
    names: list[str] = []
    found = 0
    try:
        while found < settings.header_rows:
            row = next(rows)
            if not row:
                continue  # Go's CSV reader skips blank lines, in the header too
            found += 1
            for i, cell in enumerate(row):
                if settings.trim_space:
                    cell = cell.lstrip().strip(" ")
                if i < len(names):
                    names[i] += cell
                else:
                    names.append(cell)
    except (StopIteration, csv.Error):
        return None
    if not at_eof and taken == len(text):
        return None  # the last record may go on in a quoted cell beyond what was read: read more
    head = text[:taken]
    return names, len(head.encode("utf-8", errors="surrogateescape")), head.count("\n")


@dataclass(frozen=True)
class InvalidRow:
    """A row Arrow could not split into the header's cells."""

    line: int
    text: str
    expected: int
    actual: int


@dataclass
class Block:
    """One Arrow record batch of raw cells, and where its rows sit in the file."""

    source: str
    cells: pa.RecordBatch
    first_line: int
    invalid: list[InvalidRow]
    _row_lines: np.ndarray | None = field(default=None, repr=False)

    def row_lines(self) -> np.ndarray:
        """Physical line number of each row of `cells` (computed only when asked for)."""
        if self._row_lines is None:
            raise RuntimeError("row_lines was not prepared")  # pragma: no cover
        return self._row_lines


@dataclass
class _Pending:
    number: int  # Arrow's record number (1 = header)
    text: str
    expected: int
    actual: int


class CsvSource:
    """One input: its header, then its blocks. Open with `open_source`.

    `header` holds the names the mapping sees: after skipped columns, followed by metadata keys
    that are not column names (constant columns, appended to every block). `metadata` holds the
    metadata lines' tags; `column_types` the types given by position, by column name.
    """

    def __init__(self, name: str, stream: io.RawIOBase, counter: _CountingReader, *,
                 delimiter: str, block_size: int, settings: ReadSettings = PLAIN) -> None:
        self.name = name
        self.delimiter = delimiter
        self.block_size = block_size
        self.settings = settings
        self.metadata: dict[str, str] = {}
        self.metadata_columns: tuple[str, ...] = ()
        self.column_types: dict[str, FieldType] = {}
        self._counter = counter
        self._comments: _CommentFilter | None = None
        self._line_offset = 0  # physical lines before the stream Arrow's lines are counted in
        self._arrow_names: list[str] | None = None  # None: Arrow reads the header line itself
        if settings.plain:
            prefix, self.header, self.header_lines = _read_header(name, stream, delimiter)
            self._data_line = 1 + self.header_lines
            rest: io.RawIOBase = _PrefixedReader(prefix, stream)
        else:
            rest = self._read_preamble(stream)
        self._guard = _Utf8Guard(rest)
        # BufferedReader.read(n) fills whole blocks even where the raw streams return short reads.
        self._stream = io.BufferedReader(self._guard, buffer_size=1 << 16)

    def _read_preamble(self, stream) -> io.RawIOBase:
        """Skipped lines, metadata lines and header rows, none of which Arrow sees: it gets the names."""
        settings = self.settings
        taken, after = _take_lines(self.name, stream, settings.skip_rows + settings.metadata_rows)
        self.metadata = _metadata(self.name, taken[settings.skip_rows:], settings.skip_rows + 1, settings)
        self._line_offset = len(taken)
        rest: io.RawIOBase = _PrefixedReader(after, stream)
        if settings.comment:
            rest = self._comments = _CommentFilter(rest, settings.comment)
        names: list[str] = []
        lines = 0
        if settings.header_rows:
            after_header, names, lines = _read_header_rows(self.name, rest, self.delimiter, settings)
            rest = _PrefixedReader(after_header, rest)
        skipped = [_SKIPPED_COLUMN.format(i) for i in range(settings.skip_columns)]
        if settings.column_names:
            names = list(settings.column_names)
        else:
            names = names[settings.skip_columns:]
        self._arrow_names = skipped + names
        self._data_line = 1 + lines
        self.header_lines = self._physical_line(self._data_line) - 1
        if settings.column_types:
            if len(settings.column_types) != len(names):
                raise MappingError(f"{self.name}: {len(settings.column_types)} column types are given for "
                                   f"{len(names)} columns ({', '.join(names)}); give one type per column.")
            self.column_types = dict(zip(names, settings.column_types))
        self.metadata_columns = tuple(key for key in self.metadata if key not in names)
        self.header = tuple(names) + self.metadata_columns
        return rest

    @property
    def bytes_read(self) -> int:
        return self._counter.count

    def blocks(self) -> Iterator[Block]:
        pending: list[_Pending] = []

        def on_invalid(row: pa_csv.InvalidRow) -> str:
            text = row.text.translate(_FROM_STAND_IN_TEXT) if self._guard.swapped else row.text
            pending.append(_Pending(row.number if row.number is not None else -1, text,
                                    row.expected_columns, row.actual_columns))
            return "skip"

        if self._arrow_names is not None and not self._stream.peek(1):
            return  # nothing after the header; Arrow would call that an empty CSV file
        reader = self._open_arrow(on_invalid)
        # Arrow numbers records from 1: the header, unless it was given the column names.
        next_record = 1 if self._arrow_names is not None else 2
        next_line = self._data_line
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                break
            except (pa.ArrowInvalid, OSError) as exc:
                raise InputError(_read_failure(self.name, self._physical_line(next_line), exc,
                                               self.block_size)) from exc
            if self._guard.swapped:
                batch = _restore_cells(batch)
            block, next_record, next_line = _place(self.name, batch, pending, next_record, next_line)
            yield self._finish(block)
        if pending:  # invalid rows after the last good row
            empty = pa.RecordBatch.from_pylist([], schema=reader.schema)
            block, _, _ = _place(self.name, empty, pending, next_record, next_line, take_all=True)
            yield self._finish(block)

    def _open_arrow(self, on_invalid) -> pa_csv.CSVStreamingReader:
        names = self._arrow_names
        read_options = pa_csv.ReadOptions(use_threads=False, block_size=self.block_size)
        if names is not None:
            read_options.column_names = names
        try:
            return pa_csv.open_csv(
                self._stream,
                read_options=read_options,
                parse_options=pa_csv.ParseOptions(
                    delimiter=self.delimiter,
                    newlines_in_values=True,
                    ignore_empty_lines=False,
                    invalid_row_handler=on_invalid,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types={name: pa.binary() for name in (names if names is not None else self.header)},
                    null_values=["", *self.settings.skip_values],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=True,
                ),
            )
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(_read_failure(self.name, self._physical_line(self._data_line), exc,
                                           self.block_size)) from exc

    # -------------------------------------------------------- ReadSettings after Arrow

    def _physical(self, lines: np.ndarray) -> np.ndarray:
        """Line numbers in the stream Arrow read -> lines of the file (skipped, metadata and comment lines back in)."""
        if self._comments is not None and self._comments.dropped_before:
            dropped = np.asarray(self._comments.dropped_before, dtype=np.int64)
            lines = lines + np.searchsorted(dropped, lines, side="left")
        return lines + self._line_offset

    def _physical_line(self, line: int) -> int:
        return int(self._physical(np.array([line], dtype=np.int64))[0])

    def _finish(self, block: Block) -> Block:
        if self.settings.plain:
            return block
        block.first_line = self._physical_line(block.first_line)
        block._row_lines = self._physical(block.row_lines())
        block.invalid = [replace(row, line=self._physical_line(row.line)) for row in block.invalid]
        # After the line numbers: those count the line breaks in every cell, skipped columns too.
        block.cells = self._shape(block.cells)
        return block

    def _shape(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Skipped columns out, cells trimmed, metadata columns in."""
        settings = self.settings
        columns = list(batch.columns[settings.skip_columns:])
        if settings.trim_space:
            skip = pa.array([v.encode() for v in settings.skip_values], pa.binary()) if settings.skip_values else None
            columns = [_trimmed(column, skip) for column in columns]
        if self.metadata:
            blank = _blank_rows(columns)
            names = self.header
            for key, value in self.metadata.items():
                constant = _constant(value, batch.num_rows, blank)
                if key in self.metadata_columns:
                    columns.append(constant)
                elif settings.metadata_wins:
                    columns[names.index(key)] = constant
        return pa.RecordBatch.from_arrays(columns, names=list(self.header))

    def close(self) -> None:
        self._counter.close()


def _trimmed(column: pa.Array, skip_values: pa.Array | None) -> pa.Array:
    """Spaces and tabs before a cell and spaces after it dropped (what Go's TrimLeadingSpace and
    strings.Trim(value, " ") do in Telegraf); cells left empty, or equal to a skip value once
    trimmed, become null. The ASCII kernels work on bytes, so cells that are not UTF-8 keep theirs."""
    text = pc.ascii_rtrim(pc.ascii_ltrim(column.view(pa.string()), " \t"), " ").view(pa.binary())
    empty = pc.equal(pc.binary_length(text), 0)
    if skip_values is not None:
        empty = pc.or_(empty, pc.is_in(text, value_set=skip_values))
    return pc.if_else(pc.fill_null(empty, False), pa.scalar(None, pa.binary()), text)


def _blank_rows(columns: Sequence[pa.Array]) -> pa.Array | None:
    """Rows with no cell at all (None when there is none): metadata stays out of them, so they stay blank."""
    if not columns or min(column.null_count for column in columns) == 0:
        return None
    blank = pc.is_null(columns[0])
    for column in columns[1:]:
        blank = pc.and_(blank, pc.is_null(column))
    return blank


def _constant(value: str, length: int, blank: pa.Array | None) -> pa.Array:
    if value == "":
        return pa.nulls(length, pa.binary())
    constant = pa.repeat(pa.scalar(value.encode("utf-8"), pa.binary()), length)
    return constant if blank is None else pc.if_else(blank, pa.scalar(None, pa.binary()), constant)


def _read_failure(name: str, line: int, exc: Exception, block_size: int) -> str:
    text = str(exc)
    if "straddling" in text or "block" in text.lower() and "size" in text.lower():
        return (f"{name}: near line {line}: a quoted value does not end within {_size_text(block_size)}, "
                f"most likely an unbalanced quote; the rest of the file could not be read. Fix the quote, "
                f"or raise --block-size if a value really is that long.")
    if "compress" in text.lower() or "gzip" in text.lower() or "zstd" in text.lower() or "bz2" in text.lower():
        # No line number: Arrow reads ahead, so the damage lies somewhere after the rows converted so far.
        return (f"{name}: cannot decompress: {text}. The file is damaged or incomplete; "
                f"the lines written before this are whole.")
    return f"{name}: cannot read near line {line}: {text}."


def _size_text(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size >> 10} KiB"


def _newline_count(batch: pa.RecordBatch) -> int:
    """Line breaks inside the cells of a batch (numpy over the raw data buffers: no per-row work)."""
    total = 0
    for column in batch.columns:
        data = column.buffers()[2]
        if data is not None and data.size:
            offsets = np.frombuffer(column.buffers()[1], dtype=np.int32, count=len(column) + 1,
                                    offset=column.offset * 4)
            view = np.frombuffer(data, dtype=np.uint8)[offsets[0]:offsets[-1]]
            total += int(np.count_nonzero(view == 10))
    return total


def _row_newlines(batch: pa.RecordBatch) -> np.ndarray:
    import pyarrow.compute as pc

    counts = np.zeros(batch.num_rows, dtype=np.int64)
    for column in batch.columns:
        counts += pc.fill_null(pc.count_substring(column, "\n"), 0).to_numpy(zero_copy_only=False)
    return counts


def _place(name: str, batch: pa.RecordBatch, pending: list[_Pending], first_record: int, first_line: int,
           take_all: bool = False) -> tuple[Block, int, int]:
    """Interleave the batch's good rows with the invalid rows Arrow skipped, and number the lines."""
    n = batch.num_rows
    pending.sort(key=lambda p: p.number)
    end = first_record + n
    mine: list[_Pending] = []
    while pending and (take_all or pending[0].number < end or pending[0].number < 0):
        mine.append(pending.pop(0))
        end += 1
    newlines = _newline_count(batch)
    if not mine and newlines == 0:
        lines = first_line + np.arange(n, dtype=np.int64)
        return Block(name, batch, first_line, [], lines), end, first_line + n
    per_row = _row_newlines(batch) if newlines else np.zeros(n, dtype=np.int64)
    total = n + len(mine)
    invalid_at = np.zeros(total, dtype=bool)
    for p in mine:
        if p.number >= first_record:
            invalid_at[min(p.number - first_record, total - 1)] = True
    # Rows with an unknown record number (never seen with the serial reader) go last.
    unplaced = len(mine) - int(invalid_at.sum())
    if unplaced:
        invalid_at[np.flatnonzero(~invalid_at)[-unplaced:]] = True
    span = np.ones(total, dtype=np.int64)
    span[~invalid_at] += per_row
    span[invalid_at] += np.array([p.text.count("\n") for p in mine], dtype=np.int64)
    starts = first_line + np.concatenate(([0], np.cumsum(span)[:-1]))
    invalid_lines = starts[invalid_at]
    invalid = [InvalidRow(int(line), p.text, p.expected, p.actual) for line, p in zip(invalid_lines, mine)]
    block = Block(name, batch, first_line, invalid, starts[~invalid_at])
    return block, end, first_line + int(span.sum())


def _read_header(name: str, stream, delimiter: str) -> tuple[bytes, tuple[str, ...], int]:
    """Take enough bytes to hold the header record, parse it, and hand the bytes back."""
    prefix = b""
    size = 64 << 10
    while True:
        chunk = stream.read(size)
        prefix += chunk or b""
        at_eof = not chunk
        complete = _parse_header(prefix, delimiter, at_eof)
        if complete is not None or at_eof:
            break
        size *= 2
    if complete is None or not prefix.strip(b"\xef\xbb\xbf\r\n"):
        raise InputError(f"{name}: the file is empty; a CSV file with a header line is expected.")
    header, lines = complete
    _check_header_text(name, prefix, header)
    return prefix, header, lines


COMPRESSION_MAGIC = {GZIP_MAGIC: ".gz", b"BZh": ".bz2", b"\x28\xb5\x2f\xfd": ".zst"}


def _check_header_text(name: str, prefix: bytes, header: tuple[str, ...]) -> None:
    """Refuse, with the reason, inputs that are not UTF-8 CSV text (binary, UTF-16, compressed)."""
    for magic, suffix in COMPRESSION_MAGIC.items():
        if prefix.startswith(magic) and any("\x00" in cell or _undecodable(cell) for cell in header):
            raise InputError(f"{name}: the file is compressed ({suffix}) but its name does not end in {suffix}; "
                             f"rename it so that csv2lp decompresses it.")
    if prefix.startswith((b"\xff\xfe", b"\xfe\xff")) or any("\x00" in cell for cell in header):
        raise InputError(f"{name}: the header line holds NUL bytes: this is not UTF-8 CSV text (a binary file, "
                         f"or UTF-16 text?). Re-export it as UTF-8, e.g. iconv -f UTF-16 -t UTF-8.")
    for number, cell in enumerate(header, start=1):
        if _undecodable(cell):
            shown = cell.encode("utf-8", errors="surrogateescape")
            raise InputError(f"{name}: the header is not valid UTF-8 (column {number}: {shown!r}); "
                             f"re-export the file as UTF-8.")


def _undecodable(cell: str) -> bool:
    """True for a cell decoded with surrogateescape from bytes that are not UTF-8."""
    return any("\udc80" <= char <= "\udcff" for char in cell)


def _parse_header(prefix: bytes, delimiter: str, at_eof: bool) -> tuple[tuple[str, ...], int] | None:
    if prefix.startswith(b"\xef\xbb\xbf"):
        prefix = prefix[3:]
    if not at_eof:
        cut = prefix.rfind(b"\n")
        if cut < 0:
            return None
        prefix = prefix[: cut + 1]
    # surrogateescape keeps undecodable bytes recognisable, so they are refused by name, not guessed at.
    text = prefix.decode("utf-8", errors="surrogateescape")
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(rows)
    except StopIteration:
        return None
    except csv.Error:
        return None
    consumed = rows.line_num
    if not at_eof and consumed >= text.count("\n") and not text.endswith("\n"):
        return None
    return tuple(header), consumed


def open_source(item: str, *, delimiter: str = ",", block_size: int = DEFAULT_BLOCK_SIZE,
                stdin: BinaryIO | None = None, settings: ReadSettings = PLAIN) -> CsvSource:
    """Open one input ('-' for stdin) and read its header (where `settings` say it is)."""
    if item == STDIN:
        raw = stdin if stdin is not None else sys.stdin.buffer
        counter = _CountingReader(raw)
        head = counter.read(2)
        source: io.RawIOBase = _PrefixedReader(head, counter)
        if head == GZIP_MAGIC:
            source = _decompressing(source, "gzip")
        return CsvSource("<stdin>", source, counter, delimiter=delimiter, block_size=block_size, settings=settings)
    path = Path(item)
    try:
        counter = _CountingReader(open(path, "rb"))
    except FileNotFoundError:
        raise InputError(f"{item}: no such file.") from None
    except IsADirectoryError:
        raise InputError(f"{item}: is a directory; give the files in it (for example {item}/*.csv).") from None
    except OSError as exc:
        raise InputError(f"{item}: cannot open: {exc.strerror or exc}.") from None
    codec = COMPRESSION_BY_SUFFIX.get(path.suffix.lower())
    stream: io.RawIOBase = counter
    if codec is not None:
        stream = _decompressing(counter, codec)
    try:
        return CsvSource(str(item), stream, counter, delimiter=delimiter, block_size=block_size, settings=settings)
    except (OSError, pa.ArrowInvalid) as exc:
        counter.close()
        raise InputError(f"{item}: cannot read ({codec or 'uncompressed'}): {exc}. Check the file and its extension.") from exc


class _NativeAsRaw(io.RawIOBase):
    """A pyarrow NativeFile seen as a Python raw stream."""

    def __init__(self, native) -> None:
        self._native = native

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        data = self._native.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        return n


def _decompressing(raw: io.RawIOBase, codec: str) -> io.RawIOBase:
    return _NativeAsRaw(pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), codec))


def file_size(item: str) -> int | None:
    try:
        return os.path.getsize(item) if item != STDIN else None
    except OSError:
        return None
