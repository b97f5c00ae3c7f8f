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

import io
from dataclasses import replace
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from ..errors import InputError, MappingError
from ..mapping import FieldType
from .blocks import Block, InvalidRow, Pending, place
from .header import read_header
from .long_rows import LongRow, TooLong, find_long_row, first_record_is_one_line, is_too_long, unplaceable_row
from .quotes import Runaway
from .readahead import ReadAheadLimit
from .settings import (PLAIN, SKIPPED_COLUMN, CommentFilter, ReadSettings, blank_rows, constant_column,
                       read_header_rows, read_metadata, take_lines, trimmed)
from .streams import CountingReader, PrefixedReader, StoppedByLimit, WholeLines
from .utf8guard import FROM_STAND_IN_TEXT, Utf8Guard, restore_cells

# 2 MiB: every block costs ~1-2 ms of kernel calls whatever its size, so larger blocks are
# faster (fishers x 20: ~0.77 s in 1 MiB blocks, ~0.69 s in 2 MiB, ~0.67 s in 4 MiB), while
# peak memory grows with the blocks in flight (Arrow's read-ahead, readahead.py; blocks
# waiting for and in the encoders, pipeline.py): the 2 GB benchmark file peaks at ~264 MB
# in 2 MiB blocks; 4 MiB blocks would pass the 300 MB goal.
DEFAULT_BLOCK_SIZE = 2 << 20
# A row must fit in a block (longer ones are rejected, see CsvSource._skip_long_row); a few blocks
# are in memory at once, so 1 GiB blocks would take gigabytes, and Arrow counts them in 32 bits.
MIN_BLOCK_SIZE = 1 << 16
MAX_BLOCK_SIZE = 1 << 30
# Columns are typed and encoded one by one (~1 ms of Python and Arrow calls each, whatever the
# rows): 10,000 columns take ~10 s before the first line, 50,000 ~45 s and ~500 MB. A wider
# header is refused when it is read, in milliseconds; --max-columns raises the limit.
DEFAULT_MAX_COLUMNS = 10_000


class CsvSource:
    """One input: its header, then its blocks. Open with `open_source`.

    `header` holds the names the mapping sees: after skipped columns, followed by metadata keys
    that are not column names (constant columns, appended to every block). `metadata` holds the
    metadata lines' tags; `column_types` the types given by position, by column name.
    """

    def __init__(self, name: str, stream: io.RawIOBase, counter: CountingReader, *,
                 delimiter: str, block_size: int, settings: ReadSettings = PLAIN,
                 decompressed: WholeLines | None = None, max_columns: int = DEFAULT_MAX_COLUMNS) -> None:
        self.name = name
        self.delimiter = delimiter
        self.block_size = block_size
        self.settings = settings
        self.metadata: dict[str, str] = {}
        self.metadata_columns: tuple[str, ...] = ()
        self.column_types: dict[str, FieldType] = {}
        self._counter = counter
        self._decompressed = decompressed  # a compressed input's decompressed bytes: where damage shows
        self._comments: CommentFilter | None = None
        self._line_offset = 0  # physical lines before the stream Arrow's lines are counted in
        self._arrow_names: list[str] | None = None  # None: Arrow reads the header line itself
        self._header_only = False  # the header is the whole input
        if settings.plain:
            prefix, self.header, self.header_lines, self._header_only = read_header(name, stream, delimiter,
                                                                                    limit=block_size)
            self._data_line = 1 + self.header_lines
            rest: io.RawIOBase = PrefixedReader(prefix, stream)
        else:
            rest = self._read_preamble(stream)
        if max_columns and len(self.header) > max_columns:
            raise InputError(f"{name}: the header has {len(self.header):,} columns, more than the {max_columns:,} "
                             f"--max-columns allows (each column costs about a millisecond and memory: 50,000 "
                             f"take a minute and 500 MB). Raise --max-columns (execd: max_columns in [convert]) "
                             f"to convert it, or 0 for no limit.")
        # Arrow reads from the guard, whose read(n) fills whole blocks even where the streams
        # below return short reads (pipes, decompressors).
        self._guard = Utf8Guard(rest)

    def _read_preamble(self, stream) -> io.RawIOBase:
        """Skipped lines, metadata lines and header rows, none of which Arrow sees: it gets the names."""
        settings = self.settings
        taken, after = take_lines(self.name, stream, settings.skip_rows + settings.metadata_rows,
                                  limit=self.block_size)
        self.metadata = read_metadata(self.name, taken[settings.skip_rows:], settings.skip_rows + 1, settings)
        self._line_offset = len(taken)
        rest: io.RawIOBase = PrefixedReader(after, stream)
        if settings.comment:
            rest = self._comments = CommentFilter(rest, settings.comment, limit=self.block_size)
        names: list[str] = []
        lines = 0
        if settings.header_rows:
            after_header, names, lines = read_header_rows(self.name, rest, self.delimiter, settings,
                                                          limit=self.block_size)
            rest = PrefixedReader(after_header, rest)
        skipped = [SKIPPED_COLUMN.format(i) for i in range(settings.skip_columns)]
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
    def raw_stream(self):
        """The input's bytes from the first on (header included), decompressed but not passed through
        the UTF-8 guard, so they are exactly as in the file (annotated.py reads its tables from here)."""
        return self._guard._raw

    @property
    def bytes_read(self) -> int:
        return self._counter.count

    def blocks(self) -> Iterator[Block]:
        pending: list[Pending] = []

        def on_invalid(row: pa_csv.InvalidRow) -> str:
            text = row.text.translate(FROM_STAND_IN_TEXT) if self._guard.swapped else row.text
            pending.append(Pending(row.number if row.number is not None else -1, text,
                                    row.expected_columns, row.actual_columns))
            return "skip"

        if self._header_only or (self._arrow_names is not None and self._guard.at_end()):
            return  # nothing after the header; Arrow would call that an empty CSV file
        stream: io.RawIOBase = self._guard
        names = self._arrow_names
        # Arrow numbers records from 1: the header, unless it was given the column names.
        next_record = 1 if names is not None else 2
        next_line = self._data_line
        first_line = 1 if names is None else next_line  # the line the stream's first byte is on
        input_ended_in_row = False
        limit: ReadAheadLimit | None = None
        if self._decompressed is not None:
            self._decompressed.hold_failure = True  # damage ends the input for Arrow; checked below
        try:
            while True:  # an Arrow reader for each stretch of rows between rows too long for a block
                limit = ReadAheadLimit(stream, keep_pieces=True)
                taken = 0  # batches this reader gave
                piece_line: int | None = first_line  # the line the last batch's piece starts on (None: unknown)
                long_row: LongRow | None = None
                try:
                    reader = self._open_arrow(limit, on_invalid, names)
                    schema = reader.schema
                except TooLongAtOpen as exc:  # Arrow reads its first block when opened: the first row is that long
                    reader, schema = None, self._binary_schema(names)
                    long_row = find_long_row(limit, taken, piece_line, next_line,
                                             lambda: self._guard.read(self.block_size), self.delimiter)
                    if long_row is None:
                        raise InputError(_read_failure(self.name, self._physical_line(next_line), exc.error,
                                                       self.block_size)) from exc.error
                while reader is not None:
                    batch_line = next_line
                    try:
                        with limit.asking():
                            batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    except (pa.ArrowInvalid, OSError) as exc:
                        if is_too_long(exc):
                            long_row = find_long_row(limit, taken, piece_line, next_line,
                                                     lambda: self._guard.read(self.block_size), self.delimiter)
                        if long_row is None:
                            self._fail_if_damaged(next_line - 1, cut_row=False)  # damage can cut a row, failing the parse
                            raise InputError(_read_failure(self.name, self._physical_line(next_line), exc,
                                                           self.block_size)) from exc
                        break
                    taken += 1
                    if self._guard.swapped:
                        batch = restore_cells(batch)
                    block, next_record, next_line = place(self.name, batch, pending, next_record, next_line,
                                                           self.delimiter)
                    if taken > 1:
                        starts = [int(line) for line in block.row_lines()[:2]] + [row.line for row in block.invalid[:2]]
                        piece_line = batch_line if first_record_is_one_line(starts, next_line) else None
                    yield self._finish(block)
                if long_row is None:
                    break
                # The row too long for a block: one rejected row, and a new reader for the rows after it.
                empty = pa.RecordBatch.from_pylist([], schema=schema)
                if pending:  # rows Arrow could not split before it (none are expected: they come with their batch)
                    block, next_record, next_line = place(self.name, empty, pending, next_record, next_line,
                                                           self.delimiter, take_all=True)
                    yield self._finish(block)
                text = long_row.head.decode("utf-8", "surrogateescape")
                text = text.translate(FROM_STAND_IN_TEXT) if self._guard.swapped else text
                row = InvalidRow(next_line, text, len(schema), len(schema),
                                 too_long=TooLong(long_row.size, long_row.lines, long_row.quoted_lines,
                                                  long_row.ended, self.block_size))
                yield self._finish(Block(self.name, empty, next_line, [row], np.zeros(0, dtype=np.int64)))
                next_line += long_row.lines
                limit.end()
                if not long_row.ended:
                    input_ended_in_row = True
                    break
                if not long_row.rest and self._guard.at_end():
                    break
                stream = PrefixedReader(long_row.rest, self._guard)
                names = list(schema.names)
                next_record, first_line = 1, next_line
        finally:
            if limit is not None:
                limit.end()  # done with Arrow's reader (at its end, or early): it need not read on
            if self._decompressed is not None:
                self._decompressed.hold_failure = False
        damage = self._decompressed
        cut_row = (damage is not None and damage.failure is not None and bool(damage.cut_off)
                   and not isinstance(damage.failure, StoppedByLimit))  # a limit cuts no row: it stops before it
        if cut_row:  # the row the damage cut: the file's last, where rows without a record number go
            text = damage.cut_off.decode("utf-8", "surrogateescape").rstrip("\r")
            pending.append(Pending(-1, text, len(schema), text.count(self.delimiter) + 1, cut_off=True))
        ended_clean = (damage is None or damage.failure is None) and not input_ended_in_row
        notes = self._unterminated(next_line - 1) if ended_clean else []
        if pending or notes:  # invalid rows after the last good row; what the end of the input says
            empty = pa.RecordBatch.from_pylist([], schema=schema)
            block, _, next_line = place(self.name, empty, pending, next_record, next_line, self.delimiter,
                                         take_all=True)
            block.notes = notes
            yield self._finish(block)
        self._fail_if_damaged(next_line - 1, cut_row=cut_row)

    def _unterminated(self, last_line: int) -> list[str]:
        """A warning when the input's last line has no line break: a file cut short (a copy still in
        progress, a full disk) ends inside its last value, and that value is converted as if whole."""
        if self._guard.last_byte in (b"", b"\n", b"\r"):
            return []
        line = self._physical_line(last_line)
        return [f"{self.name}: line {line:,}, the last, has no line break at its end: if the file was cut short "
                f"(a copy still in progress), its last value is cut too, and was converted as it is; check "
                f"that row, or convert the whole file again"]

    def _fail_if_damaged(self, last_line: int, *, cut_row: bool) -> None:
        """Raise the compressed input's damage, if it had any: rows were read up to `last_line`, which
        is the row the damage cut (rejected) when `cut_row`."""
        damage = self._decompressed
        if damage is None or damage.failure is None:
            return
        line = self._physical_line(last_line)
        if isinstance(damage.failure, StoppedByLimit):
            raise InputError(f"{self.name}: stopped after line {line:,}: {damage.failure}; every row through line "
                             f"{line:,} was read, the rest of the file was not.") from None
        if cut_row:
            what = f"every row before line {line} was read, line {line} is cut off (rejected)"
        else:
            what = f"every row up to line {line} was read"
        raise InputError(f"{self.name}: cannot decompress past line {line}: {damage.failure}. The file is damaged "
                         f"or incomplete: {what}, and the rest of the file is lost.") from damage.failure

    def _open_arrow(self, stream: ReadAheadLimit, on_invalid, names: list[str] | None) -> pa_csv.CSVStreamingReader:
        read_options = pa_csv.ReadOptions(use_threads=False, block_size=self.block_size)
        if names is not None:
            read_options.column_names = names
        parse_options = pa_csv.ParseOptions(delimiter=self.delimiter, newlines_in_values=True,
                                            ignore_empty_lines=False, invalid_row_handler=on_invalid)
        convert_options = pa_csv.ConvertOptions(
            column_types={name: pa.binary() for name in (names if names is not None else self.header)},
            null_values=["", *self.settings.skip_values],
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
        )
        try:
            with stream.asking(for_batch=False):
                return pa_csv.open_csv(stream, read_options=read_options, parse_options=parse_options,
                                       convert_options=convert_options)
        except (pa.ArrowInvalid, OSError) as exc:
            if is_too_long(exc):
                raise TooLongAtOpen(exc) from exc  # blocks() reads past that row
            raise InputError(_read_failure(self.name, self._physical_line(self._data_line), exc,
                                           self.block_size)) from exc

    def _binary_schema(self, names: list[str] | None) -> pa.Schema:
        """The schema _open_arrow's reader would have: every column as bytes."""
        return pa.schema([(name, pa.binary()) for name in (names if names is not None else self.header)])

    # -------------------------------------------------------- ReadSettings after Arrow

    def _physical(self, lines: np.ndarray) -> np.ndarray:
        """Line numbers in the stream Arrow read -> lines of the file (skipped, metadata and comment lines back in)."""
        if self._comments is not None and self._comments.dropped_before:
            dropped = np.asarray(self._comments.dropped_before, dtype=np.int64)
            lines = lines + np.searchsorted(dropped, lines, side="left")
        return lines + self._line_offset

    def _physical_line(self, line: int) -> int:
        return int(self._physical(np.array([line], dtype=np.int64))[0])

    def _physical_span(self, runaway: Runaway | None) -> Runaway | None:
        if runaway is None:
            return None
        return replace(runaway, opened_at=self._physical_line(runaway.opened_at),
                       runs_to=self._physical_line(runaway.runs_to))

    def _finish(self, block: Block) -> Block:
        if self.settings.plain:
            return block
        block.first_line = self._physical_line(block.first_line)
        block._row_lines = self._physical(block.row_lines())
        block.invalid = [replace(row, line=self._physical_line(row.line), runaway=self._physical_span(row.runaway))
                         for row in block.invalid]
        if block.runaway is not None:
            block.runaway = replace(block.runaway, spans=[self._physical_span(r) for r in block.runaway.spans])
        # After the line numbers: those count the line breaks in every cell, skipped columns too.
        block.cells = self._shape(block.cells)
        return block

    def _shape(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """Skipped columns out, cells trimmed, metadata columns in."""
        settings = self.settings
        columns = list(batch.columns[settings.skip_columns:])
        if settings.trim_space:
            skip = pa.array([v.encode() for v in settings.skip_values], pa.binary()) if settings.skip_values else None
            columns = [trimmed(column, skip) for column in columns]
        if self.metadata:
            blank = blank_rows(columns)
            names = self.header
            for key, value in self.metadata.items():
                constant = constant_column(value, batch.num_rows, blank)
                if key in self.metadata_columns:
                    columns.append(constant)
                elif settings.metadata_wins:
                    columns[names.index(key)] = constant
        return pa.RecordBatch.from_arrays(columns, names=list(self.header))

    def close(self) -> None:
        self._counter.close()


class TooLongAtOpen(Exception):
    """Arrow's reader could not even open: the first row does not end within two blocks."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _read_failure(name: str, line: int, exc: Exception, block_size: int) -> str:
    text = str(exc)
    if is_too_long(exc):
        return unplaceable_row(name, line, block_size)
    if "compress" in text.lower() or "gzip" in text.lower() or "zstd" in text.lower() or "bz2" in text.lower():
        # No line number: Arrow reads ahead, so the damage lies somewhere after the rows converted so far.
        return (f"{name}: cannot decompress: {text}. The file is damaged or incomplete; "
                f"the lines written before this are whole.")
    return f"{name}: cannot read near line {line}: {text}."
