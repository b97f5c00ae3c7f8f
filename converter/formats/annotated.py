"""Annotated CSV input: the format of `influx write` and of Flux query results.

    #group,false,false,true,true,false,false,true,true,true
    #datatype,string,long,dateTime:RFC3339,dateTime:RFC3339,dateTime:RFC3339,double,string,string,string
    #default,_result,,,,,,,,
    ,result,table,_start,_stop,_time,_value,_field,_measurement,host
    ,,0,2020-02-25T22:17:54Z,2020-02-25T22:22:54Z,2020-02-25T22:17:57Z,2.7,usage_user,cpu,h1

means `cpu,host=h1 usage_user=2.7 1582669077000000000`. The annotations (and the shorthand
header `name|datatype|default`) say which column is the measurement, a tag, a field of which
type, or the time; this module reads them the way InfluxData's converter does (pkg/csv2lp,
which `influx write` runs on CSV input; tests/test_annotated.py compares the two) and turns
each table of the file into a section for the ordinary machinery: a `Plan` and a `CsvSource`
over the section's rows. Arrow reads the rows and the encoder writes the lines, as for any
CSV; Python only reads the annotation and header lines.

A file is cut into sections where a line starts with '#' (an annotation or a comment): a
byte search over whole chunks, not a parse of rows. pkg/csv2lp's rules, kept here:
- a column annotation (#group, #datatype, #default) after data starts a new table: new
  columns, and the next line that is not an annotation is its header; #constant and
  #timezone add to the current table, and #timezone stays for the tables after it;
- the measurement is the column labelled `_measurement` or typed `measurement`, the time the
  last column labelled `_time` or typed `dateTime`/`time` (Flux's `_start`/`_stop` lose to
  `_time`); columns without a label or typed `ignored` are left out; tags are typed `tag` or
  grouped (`#group` true); with a `_field` column ("long" layout) each row is one field, its
  key in `_field` and its value in `_value`, and untyped columns are left out; without one,
  every other column is a field;
- a `#default` (or `name|type|default`) value fills the column's empty cells.
Where we differ on purpose (times follow --precision; a row without a time is rejected, not
stamped by the server; ...), tests/test_annotated.py says so next to the case.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from dataclasses import replace
from enum import Enum
from typing import NoReturn

from ..errors import InputError, MappingError
from ..mapping import MappingSpec, Plan
from ..read.header import size_text
from ..read.quotes import Runaway, RunawayRows
from ..read.source import Block, CsvSource
from ..read.streams import PrefixedReader
from . import annotated_types as types
from .annotated_tables import COLUMN_ANNOTATIONS, Section, Table, _without_annotation_name, compile_table


class InputFormat(str, Enum):
    """What the input is: found out from its first line, plain CSV, or annotated CSV."""

    AUTO = "auto"
    CSV = "csv"
    ANNOTATED = "annotated"


TABLE_ANNOTATIONS = ("#constant", "#timezone", "#concat")
ANNOTATIONS = (*COLUMN_ANNOTATIONS, *TABLE_ANNOTATIONS)
# Datatypes a `name|datatype` header cell may name (`ignore...` counts too).
SHORTHAND_TYPES = frozenset({"measurement", "tag", "field", "time", "dateTime", "string", "double", "long",
                             "unsignedLong", "boolean", "duration", "base64Binary"})
CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"


# ---------------------------------------------------------------- detection


def is_annotated(source: CsvSource, wanted: InputFormat) -> bool:
    """Whether `source` is read as annotated CSV: asked for, or (auto) its first record says so.

    Not with Telegraf's CSV options (skipped lines, header rows, ...): those describe a plain
    CSV file, and the annotations would be read from lines they have already moved.
    """
    if wanted is InputFormat.CSV:
        return False
    if not source.settings.plain:
        if wanted is InputFormat.ANNOTATED:
            raise MappingError(f"{source.name}: --format annotated does not combine with the header and line "
                               f"options of a Telegraf CSV config; annotated CSV says where its header is itself.")
        return False
    return wanted is InputFormat.ANNOTATED or looks_annotated(source.header)


def looks_annotated(header: Sequence[str]) -> bool:
    """An annotation (`#datatype ...`), a `sep=;` line, or a header cell `name|datatype`."""
    if not header:
        return False
    first = header[0].lstrip("\ufeff")
    if _annotation(first) is not None:
        return True
    if len(header) == 1 and first.startswith("sep=") and len(first) > 4:
        return True
    return any(_shorthand_type(cell) for cell in header)


def _annotation(cell: str) -> str | None:
    """The annotation a first cell starts (`#datatype` or `#datatype double`), else None."""
    lowered = cell.lower()
    for name in ANNOTATIONS:
        if lowered.startswith(name) and (len(cell) == len(name) or cell[len(name)] == " "):
            return name
    return None


def _shorthand_type(cell: str) -> bool:
    pipe = cell.find("|")
    if pipe <= 0:
        return False
    datatype = cell[pipe + 1:].split("|", 1)[0].split(":", 1)[0]
    return datatype in SHORTHAND_TYPES or datatype.startswith("ignore")


# ---------------------------------------------------------------- a table, as annotations describe it


# ---------------------------------------------------------------- a table -> plan and cell rewrites


# ---------------------------------------------------------------- reading a file: annotation lines and data runs


class _Lines:
    """The input's bytes, taken line by line (annotation and header lines) or run by run (rows)."""

    def __init__(self, raw, *, name: str, limit: int) -> None:
        self._raw = raw
        self._name = name
        self._limit = limit  # the longest annotation or header record: the block size
        self._buffer = b""
        self._eof = False
        self.line = 1  # number of the next line
        if self._fill_to(3) and self._buffer.startswith(_BOM):
            self._buffer = self._buffer[3:]

    def _fill_to(self, size: int) -> bool:
        while len(self._buffer) < size and not self._eof:
            chunk = self._raw.read(CHUNK)
            if not chunk:
                self._eof = True
            else:
                self._buffer += chunk
        return len(self._buffer) >= size

    def at_end(self) -> bool:
        return not self._fill_to(1)

    def next_byte(self) -> bytes:
        return self._buffer[:1] if self._fill_to(1) else b""

    def record(self) -> bytes:
        """One CSV record's lines: a quoted cell may span lines (an odd count of quotes goes on)."""
        first = self.line
        text = self._line()
        while text.count(b'"') % 2 and not self.at_end():
            text += self._line()
            if len(text) > self._limit:
                self._too_long(first, "holds a quote that opens a value which does not end there")
        return text

    def _too_long(self, line: int, what: str) -> NoReturn:
        raise InputError(f"{self._name}:{line}: the annotation or header line does not end within "
                         f"{size_text(self._limit)} (the block size): it {what}. Fix the line, or raise --block-size "
                         f"if it really is that long.")

    def _line(self) -> bytes:
        start = 0
        while True:
            end = self._buffer.find(b"\n", start)
            if end >= 0:
                line, self._buffer = self._buffer[: end + 1], self._buffer[end + 1:]
                self.line += 1
                return line
            start = len(self._buffer)
            if start > self._limit:
                self._too_long(self.line, "has no line break")
            if not self._fill_to(start + 1):
                line, self._buffer = self._buffer, b""
                return line

    def run(self) -> _Run:
        return _Run(self)


class _Run(io.RawIOBase):
    """The rows up to the next line that starts with '#' (or the end), as a stream for Arrow."""

    def __init__(self, lines: _Lines) -> None:
        self._lines = lines
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        lines = self._lines
        while not self._done:
            data = lines._buffer
            cut = data.find(b"\n#")
            if cut >= 0:
                return self._serve(buffer, cut + 1, last=True)
            if lines._eof:
                return self._serve(buffer, len(data), last=True)
            # Keep a final line break back: the '#' that may follow it is in the next chunk.
            keep = 1 if data.endswith(b"\n") else 0
            if len(data) - keep > 0:
                return self._serve(buffer, len(data) - keep, last=False)
            lines._fill_to(len(data) + 1)
        return 0

    def _serve(self, buffer, available: int, *, last: bool) -> int:
        n = min(len(buffer), available)
        lines = self._lines
        taken = lines._buffer[:n]
        buffer[:n] = taken
        lines._buffer = lines._buffer[n:]
        lines.line += taken.count(b"\n")
        if last and n == available:
            self._done = True
        return n

    def drain(self) -> None:
        """Skip what the reader left (a run whose reading stopped early)."""
        sink = bytearray(CHUNK)
        while self.readinto(sink):
            pass


class _Progress:
    """A section counts progress in the whole input's bytes (and closing it closes nothing)."""

    def __init__(self, source: CsvSource) -> None:
        self._source = source

    @property
    def count(self) -> int:
        return self._source.bytes_read

    def close(self) -> None:
        pass


class SectionSource(CsvSource):
    """One table's rows: a CsvSource over them, with the table's cells shaped for its plan and
    line numbers counted in the whole file."""

    def __init__(self, outer: CsvSource, run: _Run, section: Section, *, first_line: int, delimiter: str,
                 block_size: int) -> None:
        # Arrow gets a header line of our unique names, then the rows as they are in the file.
        header = io.StringIO()
        csv.writer(header, delimiter=delimiter, lineterminator="\n").writerow(section.names[: section.data_width])
        stream = PrefixedReader(header.getvalue().encode("utf-8"), run)
        super().__init__(outer.name, stream, _Progress(outer), delimiter=delimiter,  # type: ignore[arg-type]
                         block_size=block_size, decompressed=outer._decompressed)
        self.header = section.names
        self._section = section
        self._shift = first_line - 2  # Arrow counts our header as line 1, the first row as line 2
        self._line_offset = self._shift  # for the line numbers in messages

    def blocks(self) -> Iterator[Block]:
        shift = self._shift
        for block in super().blocks():
            yield Block(block.source, self._section.shape(block.cells), block.first_line + shift,
                        [replace(row, line=row.line + shift, runaway=_shifted(row.runaway, shift))
                         for row in block.invalid],
                        _row_lines=block.row_lines() + shift, runaway=_shifted_rows(block.runaway, shift),
                        notes=block.notes)


def _shifted(runaway: Runaway | None, shift: int) -> Runaway | None:
    return None if runaway is None else replace(runaway, opened_at=runaway.opened_at + shift,
                                                runs_to=runaway.runs_to + shift)


def _shifted_rows(runaway: RunawayRows | None, shift: int) -> RunawayRows | None:
    return None if runaway is None else RunawayRows(runaway.rows, [_shifted(r, shift) for r in runaway.spans])


def _original_bytes(source: CsvSource):
    """The input's bytes from the first on, exactly as in the file (decompressed).

    Read from under the reader's UTF-8 guard, so that cells keep their bytes (invalid UTF-8 is
    then rejected per row, as in plain CSV).
    """
    return source.raw_stream


def sections(source: CsvSource, *, mapping: MappingSpec, delimiter: str,
             block_size: int) -> Iterator[tuple[SectionSource, Plan]]:
    """Each table section of an annotated input, in file order: its source and its plan.

    Read lazily: a section's rows are read when its source's blocks are, and the next
    section's annotations after that. The mapping flags do not apply (the file carries its
    own mapping) except --measurement, used for tables that name no measurement.
    """
    fallback_measurement = _check_mapping(mapping, source.name)
    lines = _Lines(_original_bytes(source), name=source.name, limit=block_size)
    table = Table()
    timezone = "UTC"
    compiled: tuple[int, int, Section] | None = None  # (table version, width, section)
    width = 0
    first = True
    while not lines.at_end():
        if lines.next_byte() == b"#" or first or not table.header_read:
            start = lines.line
            text = lines.record()
            row = _parse_record(text, delimiter, f"{source.name}:{start}")
            if first:
                first = False
                if len(row) == 1 and row[0].startswith("sep=") and len(row[0]) > 4:
                    delimiter = row[0][4]
                    continue
            if not row or (len(row) == 1 and row[0] == ""):
                continue  # blank lines are not records
            where = f"{source.name}:{start}"
            if row[0].startswith("#"):
                name = _annotation(row[0])
                if name in COLUMN_ANNOTATIONS:
                    table.column_annotation(name, row)
                elif name == "#constant":
                    table.constant(row)
                elif name == "#timezone":
                    value = _without_annotation_name(row[0]) or (row[1] if len(row) > 1 else "")
                    try:
                        timezone = types.parse_timezone(value)
                    except MappingError as exc:
                        raise MappingError(f"{where}: {exc}") from None
                elif name == "#concat":
                    raise MappingError(f"{where}: #concat is not supported; compute the column before converting.")
                # Any other line that starts with '#' is a comment.
                table.version += 1
                continue
            if not table.header_read:
                table.header(row)
                table.header_line = start
                width = len(row)
                table.version += 1
                continue
            raise AssertionError("unreachable")  # pragma: no cover
        # Rows, up to the next line that starts with '#'.
        first_line = lines.line
        where = f"{source.name}:{table.header_line}"
        if compiled is None or compiled[:2] != (table.version, width):
            compiled = (table.version, width, compile_table(table, width, timezone=timezone, where=where,
                                                            measurement=fallback_measurement))
        run = lines.run()
        yield SectionSource(source, run, compiled[2], first_line=first_line, delimiter=delimiter,
                            block_size=block_size), compiled[2].plan
        run.drain()


def _parse_record(text: bytes, delimiter: str, where: str) -> list[str]:
    decoded = text.decode("utf-8", errors="replace").rstrip("\r\n")
    try:
        return next(csv.reader(io.StringIO(decoded, newline=""), delimiter=delimiter), [])
    except csv.Error as exc:
        raise MappingError(f"{where}: cannot read the annotation or header line {decoded[:80]!r}: {exc}.") from None


def _check_mapping(mapping: MappingSpec, name: str) -> str | None:
    """Annotated CSV carries its mapping; of the mapping flags only --measurement applies."""
    if replace(mapping, measurement=None) != MappingSpec():
        raise MappingError(f"{name}: annotated CSV carries its own mapping (#datatype, name|type headers); "
                           f"--preset, --config and the tag/field/time flags do not apply to it. Give only "
                           f"--measurement (for tables without one), or --format csv to read it as plain CSV.")
    return mapping.measurement


def check(source: CsvSource, *, mapping: MappingSpec, delimiter: str, block_size: int) -> Plan | None:
    """The first table's plan (its annotations and header read, no row): checks a file up front."""
    for _, plan in sections(source, mapping=mapping, delimiter=delimiter, block_size=block_size):
        return plan
    return None
